//! Every error status the API promises, and that nothing secret leaks into the
//! answers or the server's log.

use coffer_tests::{Backend, Options, TestServer};
use serde_json::json;

#[tokio::test]
async fn error_statuses() {
    let Some(s) = TestServer::start_with(
        Backend::Sqlite,
        Options {
            listener_extra: "max_request_size = 4096\n".into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, root) = s.ready().await;
    let secret_value = "leak-canary-7f3a9c";
    s.call(
        "POST",
        "secret/data/canary",
        Some(&root),
        Some(json!({"data": {"v": secret_value}})),
    )
    .await;

    // 400: malformed JSON, non-object JSON, invalid parameters.
    let bad = s
        .http
        .post(format!("{}/v1/secret/data/x", s.addr))
        .header("X-Vault-Token", &root)
        .body(format!("{{\"data\": {{\"v\": \"{secret_value}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let text = bad.text().await.unwrap();
    assert!(
        text.contains("failed to parse JSON") && !text.contains(secret_value),
        "{text}"
    );
    let arr = s
        .http
        .post(format!("{}/v1/secret/data/x", s.addr))
        .header("X-Vault-Token", &root)
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(arr.status().as_u16(), 400);
    let (status, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"ttl": "forever"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        s.call(
            "POST",
            "secret/data/x",
            Some(&root),
            Some(json!({"data": "not-an-object"}))
        )
        .await
        .0,
        400
    );

    // 403: no token, unknown token, expired token: each says which, after
    // Vault's "permission denied" (which is what clients look for).
    let (status, body) = s.call("GET", "secret/data/canary", None, None).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"errors": ["permission denied: no token was sent; log in, or set VAULT_TOKEN"]})
        )
    );
    let (status, body) = s
        .call("GET", "secret/data/canary", Some("hvs.unknown"), None)
        .await;
    assert_eq!(
        (status, body),
        (403, json!({"errors": ["permission denied: invalid token"]}))
    );
    let (_, created) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"ttl": "1s", "policies": ["default"]})),
        )
        .await;
    let short = created["auth"]["client_token"].as_str().unwrap().to_owned();
    // Waiting for an expiry is the one thing a test cannot fake against the
    // real server's wall clock; the step below asserts nothing about timing.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = s
        .call("GET", "auth/token/lookup-self", Some(&short), None)
        .await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"errors": ["permission denied: the token has expired; log in again"]})
        )
    );
    // A token whose policies forbid the path: the plain answer.
    let (status, body) = s
        .call(
            "GET",
            "secret/data/canary",
            Some(&short_lived_other(&s, &root).await),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (403, json!({"errors": ["permission denied"]}))
    );
    // 404 below no mount: what is missing and how to enable it.
    let (status, body) = s.call("GET", "payments/data/x", Some(&root), None).await;
    assert_eq!(status, 404);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("coffer secrets enable -path=payments kv-v2"),
        "{body}"
    );

    // 404: unknown route (with a message), missing secret (empty errors).
    let (status, body) = s.call("GET", "nowhere/at/all", Some(&root), None).await;
    assert_eq!(status, 404);
    assert!(body["errors"][0]
        .as_str()
        .unwrap()
        .contains("no handler for route"));
    assert_eq!(
        s.call("GET", "sys/not-a-thing", Some(&root), None).await.0,
        404
    );

    // 405: a method the path does not support.
    assert_eq!(s.call("DELETE", "sys/seal-status", None, None).await.0, 405);
    assert_eq!(
        s.call("OPTIONS", "secret/data/x", Some(&root), None)
            .await
            .0,
        405
    );
    assert_eq!(
        s.call("LIST", "secret/data/x", Some(&root), None).await.0,
        405
    );

    // 413: body over max_request_size.
    let big = json!({"data": {"v": "x".repeat(8192)}});
    let (status, body) = s
        .call("POST", "secret/data/big", Some(&root), Some(big))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        s.call("GET", "secret/data/big", Some(&root), None).await.0,
        404,
        "nothing was written"
    );

    // 415: PATCH without merge-patch+json.
    assert_eq!(
        s.call(
            "PATCH",
            "secret/data/canary",
            Some(&root),
            Some(json!({"data": {}}))
        )
        .await
        .0,
        415
    );

    // 400: a namespace other than root.
    let ns = s
        .http
        .get(format!("{}/v1/secret/data/canary", s.addr))
        .header("X-Vault-Token", &root)
        .header("X-Vault-Namespace", "team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(ns.status().as_u16(), 400);
    assert!(ns.text().await.unwrap().contains("namespace"));

    // 400: response wrapping is refused rather than answered unwrapped.
    let wrapped = s
        .http
        .get(format!("{}/v1/secret/data/canary", s.addr))
        .header("X-Vault-Token", &root)
        .header("X-Vault-Wrap-TTL", "60s")
        .send()
        .await
        .unwrap();
    assert_eq!(wrapped.status().as_u16(), 400);
    let text = wrapped.text().await.unwrap();
    assert!(text.contains("wrapping"), "{text}");
    assert!(!text.contains(secret_value), "no secret in the refusal");

    // 503: sealed.
    assert_eq!(s.call("PUT", "sys/seal", Some(&root), None).await.0, 204);
    let (status, body) = s.call("GET", "secret/data/canary", Some(&root), None).await;
    assert_eq!(status, 503);
    assert!(body["errors"][0].as_str().unwrap().contains("sealed"));

    // The whole debug-level log holds neither the secret nor the root token.
    let log = s.log();
    assert!(log.contains("request"), "log was captured");
    assert!(!log.contains(secret_value), "secret value in the log");
    assert!(!log.contains(&root), "root token in the log");
}

#[tokio::test]
async fn bad_config_is_a_clear_error_and_nonzero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::process::Command::new(coffer_tests::binary("cofferd"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run("[storage]\nurl = 'sqlite::memory:'\nbogus = 1\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("bogus") && !err.contains("panic"), "{err}");
    let (code, err) = run("[storage]\nurl = 'postgres://postgres:pw-canary@127.0.0.1:1/db'\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n");
    assert_eq!(code, Some(1));
    assert!(
        err.contains("(PostgreSQL at 127.0.0.1:1/db): cannot connect: Connection refused")
            && !err.contains("pw-canary"),
        "{err}"
    );
    let (code, err) =
        run("[storage]\nurl = 'sqlite::memory:'\n[listener]\naddress = '127.0.0.1:0'\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("tls_cert_file"), "{err}");
    let out = std::process::Command::new(coffer_tests::binary("cofferd"))
        .args(["--config", "/nonexistent/coffer.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("No such file or directory: /nonexistent/coffer.toml"));
    let out = std::process::Command::new(coffer_tests::binary("cofferd"))
        .args(["--dev", "--dev-listen-address", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev-listen-address"));
}

#[tokio::test]
async fn migrate_subcommand_then_verify_only_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        format!("[storage]\nurl = 'sqlite://{}'\nmigrate_on_start = false\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n", db.display()),
    )
    .unwrap();
    // Without migrations, a verify-only start refuses with a pointer to `migrate`.
    let out = std::process::Command::new(coffer_tests::binary("cofferd"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cofferd migrate"));
    let out = std::process::Command::new(coffer_tests::binary("cofferd"))
        .arg("migrate")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}

/// `sys/health` with a chosen 204 answers a 204 without a body (a body with
/// a 204 breaks HTTP/1.1 framing for the next response on the connection).
#[tokio::test]
async fn health_with_code_204_has_no_body() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    s.ready().await;
    let resp = s
        .http
        .get(format!("{}/v1/sys/health?activecode=204", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let length = resp
        .headers()
        .get("content-length")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        length.is_none() || length.as_deref() == Some("0"),
        "{length:?}"
    );
    assert_eq!(resp.text().await.unwrap(), "");
}

/// A token with only the default policy.
async fn short_lived_other(s: &TestServer, root: &str) -> String {
    let (_, created) = s
        .call(
            "POST",
            "auth/token/create",
            Some(root),
            Some(json!({"ttl": "10m", "policies": ["default"]})),
        )
        .await;
    created["auth"]["client_token"].as_str().unwrap().to_owned()
}
