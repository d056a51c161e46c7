//! The `coffer` binary against a local stub server: what it sends, what it prints on
//! stdout/stderr, its exit codes, and the token file it writes.

// Test helpers outside #[test] fns may panic: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{coffer, has_row};
use serde_json::json;

const TOKEN: &str = "hvs.CLI-TOKEN-456";

const KV_ANSWER: &str = r#"{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":0,
 "data":{"data":{"password":"p4ss","user":"admin"},
 "metadata":{"created_time":"2024-05-01T10:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":3}},
 "wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_get_table_json_and_field() {
    let stub = common::start_fixed(200, KV_ANSWER).await;
    let home = tempfile::tempdir().unwrap();
    let env = [("COFFER_TOKEN", TOKEN)];

    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "get", "secret/app/db"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("secret/data/app/db\n"), "{}", r.stdout);
    let meta = r.stdout.find(" Metadata ").unwrap();
    let data = r.stdout.find(" Data ").unwrap();
    assert!(meta < data);
    // Data rows sorted by key, aligned.
    assert!(
        r.stdout.contains("\npassword    p4ss\nuser        admin\n"),
        "{}",
        r.stdout
    );
    assert!(has_row(&r.stdout, "version", "3"), "{}", r.stdout);
    assert!(r.stderr.is_empty());

    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "kv",
            "get",
            "-format=json",
            "-mount=secret",
            "-version=3",
            "app/db",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["data"]["data"]["user"], "admin");
    assert_eq!(v["mount_type"], "kv");

    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "get", "-field=password", "secret/app/db"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "p4ss", "no newline when stdout is not a terminal");

    let reqs = stub.requests();
    assert_eq!(reqs[0].target, "/v1/secret/data/app/db");
    assert_eq!(reqs[1].target, "/v1/secret/data/app/db?version=3");
    assert!(reqs
        .iter()
        .all(|r| r.header("x-vault-token") == Some(TOKEN)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_without_token() {
    let home = tempfile::tempdir().unwrap();
    let env = [("VAULT_TOKEN", TOKEN)];

    let stub = common::start_fixed(403, r#"{"errors":["permission denied"]}"#).await;
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "get", "secret/foo"],
        &env,
        "",
    )
    .await;
    // Vault's exit codes: 2 for what the server said, 1 for usage and local errors.
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "Error: permission denied (403)\n");
    assert!(r.stdout.is_empty());

    let stub = common::start_fixed(404, r#"{"errors":[]}"#).await;
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "get", "secret/foo"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "Error: no secret at secret/foo\n");

    // A server that echoes the token back must not get it printed.
    let stub = common::start_fixed(400, &format!(r#"{{"errors":["bad token {TOKEN}"]}}"#)).await;
    let r = coffer(&stub.addr, home.path(), &["token", "lookup"], &env, "").await;
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "Error: bad token [redacted] (400)\n");

    // Usage errors: one line, exit 1, nothing sent.
    let r = coffer(&stub.addr, home.path(), &["kv", "get"], &env, "").await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("Error: "), "{}", r.stderr);
    let r = coffer(&stub.addr, home.path(), &["kv", "get", "secret"], &env, "").await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("missing secret path"), "{}", r.stderr);
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("http://127.0.0.1:{port}");
    // `status` is 1 on any error, as `vault status` (2 means sealed) ...
    let r = coffer(&addr, home.path(), &["status"], &[], "").await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("Error: cannot connect to server at http://127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    // ... every other command is 2 when the connection fails.
    let r = coffer(&addr, home.path(), &["read", "sys/mounts"], &[], "").await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("check that the server runs there"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    let sealed = common::start_fixed(200, r#"{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":1,"nonce":"n1","version":"0.1.0","storage_type":"sqlite"}"#).await;
    let r = coffer(&sealed.addr, home.path(), &["status"], &[], "").await;
    assert_eq!(r.code, 2);
    assert!(has_row(&r.stdout, "Sealed", "true"), "{}", r.stdout);
    assert!(has_row(&r.stdout, "Unseal Progress", "1/3"), "{}", r.stdout);

    let open = common::start_fixed(200, r#"{"type":"shamir","initialized":true,"sealed":false,"t":3,"n":5,"progress":0,"nonce":"","version":"0.1.0","storage_type":"sqlite","cluster_name":"c","cluster_id":"id"}"#).await;
    let r = coffer(
        &open.addr,
        home.path(),
        &["status", "-format=json"],
        &[],
        "",
    )
    .await;
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["cluster_name"], "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_verifies_and_stores_token_0600() {
    let stub = common::start(|req| {
        if req.header("x-vault-token") == Some(TOKEN) {
            (200, r#"{"data":{"id":"hvs.CLI-TOKEN-456","accessor":"acc9","display_name":"token-ci","policies":["default","ci"],"ttl":3600,"expire_time":"2030-01-01T00:00:00Z","renewable":true}}"#.into())
        } else {
            (403, r#"{"errors":["permission denied"]}"#.into())
        }
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("tok");
    let file_s = file.display().to_string();
    let env = [("COFFER_TOKEN_FILE", file_s.as_str())];

    let r = coffer(&stub.addr, home.path(), &["login", "hvs.WRONG"], &env, "").await;
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "Error: permission denied (403)\n");
    assert!(!file.exists());

    let r = coffer(&stub.addr, home.path(), &["login", TOKEN], &env, "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(TOKEN), "{}", r.stdout);
    assert!(
        has_row(&r.stdout, "token_policies", "[default ci]"),
        "{}",
        r.stdout
    );
    assert!(
        has_row(&r.stdout, "display_name", "token-ci"),
        "{}",
        r.stdout
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), TOKEN);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The stored token is used by later commands; `-` reads a token from stdin.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["token", "lookup", "-format=json"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = coffer(
        &stub.addr,
        home.path(),
        &["login", "-no-store", "-"],
        &[],
        &format!("{TOKEN}\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("not stored"));
    let reqs = stub.requests();
    assert!(reqs
        .iter()
        .all(|r| r.target == "/v1/auth/token/lookup-self"));
    assert_eq!(reqs[2].header("x-vault-token"), Some(TOKEN));
    assert_eq!(reqs[3].header("x-vault-token"), Some(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_put_list_delete_send_the_right_requests() {
    let stub = common::start(|req| match (req.method.as_str(), req.target.as_str()) {
        ("LIST", _) => (200, r#"{"data":{"keys":["a","b/"]}}"#.into()),
        ("POST", "/v1/secret/data/app") | ("PATCH", _) => (
            200,
            r#"{"data":{"created_time":"t","deletion_time":"","destroyed":false,"version":1}}"#
                .into(),
        ),
        _ => (204, String::new()),
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let env = [("COFFER_TOKEN", TOKEN)];
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    std::fs::write(&cert, "PEM\n").unwrap();
    let cert_arg = format!("cert=@{}", cert.display());

    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "kv",
            "put",
            "-cas=0",
            "secret/app",
            "user=bob",
            "pw=-",
            &cert_arg,
        ],
        &env,
        "s3cret",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(has_row(&r.stdout, "version", "1"), "{}", r.stdout);
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "patch", "secret/app", "user=al"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "list", "secret/"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.stdout, "Keys\n----\na\nb/\n");
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "delete", "-versions=1,2", "secret/app"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "kv",
            "metadata",
            "put",
            "-max-versions=5",
            "-cas-required",
            "-custom-metadata=owner=ops",
            "secret/app",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Success! Data written to: secret/metadata/app\n");

    let reqs = stub.requests();
    assert_eq!(
        reqs[0].json(),
        json!({"data": {"user": "bob", "pw": "s3cret", "cert": "PEM\n"}, "options": {"cas": 0}})
    );
    assert_eq!(reqs[1].method, "PATCH");
    assert_eq!(
        reqs[1].header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        (reqs[2].method.as_str(), reqs[2].target.as_str()),
        ("LIST", "/v1/secret/metadata")
    );
    assert_eq!(
        (reqs[3].method.as_str(), reqs[3].target.as_str()),
        ("POST", "/v1/secret/delete/app")
    );
    assert_eq!(reqs[3].json(), json!({"versions": [1, 2]}));
    assert_eq!(
        reqs[4].json(),
        json!({"max_versions": 5, "cas_required": true, "custom_metadata": {"owner": "ops"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_version_is_reported() {
    let stub = common::start_fixed(404, r#"{"data":{"data":null,"metadata":{"created_time":"t","custom_metadata":null,"deletion_time":"2024-05-02T00:00:00Z","destroyed":false,"version":2}}}"#).await;
    let home = tempfile::tempdir().unwrap();
    let r = coffer(
        &stub.addr,
        home.path(),
        &["kv", "get", "secret/app"],
        &[("COFFER_TOKEN", TOKEN)],
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        has_row(&r.stdout, "deletion_time", "2024-05-02T00:00:00Z"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stderr,
        "Error: version 2 of secret/app has been deleted (restore it with: coffer kv undelete -versions=2 secret/app)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_prints_token_and_field() {
    let stub = common::start_fixed(200, r#"{"auth":{"client_token":"hvs.CHILD","accessor":"acc","policies":["default","ops"],"token_policies":["default","ops"],"metadata":null,"lease_duration":3600,"renewable":true,"orphan":false,"num_uses":0,"entity_id":"","token_type":"service"}}"#).await;
    let home = tempfile::tempdir().unwrap();
    let env = [("COFFER_TOKEN", TOKEN)];
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "token",
            "create",
            "-policy=ops",
            "-ttl=1h",
            "-renewable=false",
            "-orphan",
            "-metadata=team=a",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(has_row(&r.stdout, "token", "hvs.CHILD"), "{}", r.stdout);
    assert!(has_row(&r.stdout, "token_duration", "1h"), "{}", r.stdout);
    let r = coffer(
        &stub.addr,
        home.path(),
        &["token", "create", "-field=token"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.stdout, "hvs.CHILD");
    let reqs = stub.requests();
    assert_eq!(
        reqs[0].json(),
        json!({"policies": ["ops"], "ttl": "1h", "renewable": false, "no_parent": true, "meta": {"team": "a"}})
    );
    assert_eq!(reqs[1].json(), json!({}));
}

/// `write` sends `k=v` pairs as a JSON object, `-f` no body at all; without either it is a
/// usage error and nothing is sent. `delete` and `read` pass `k=v` as the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_write_read_delete_requests() {
    let stub = common::start_fixed(204, "").await;
    let home = tempfile::tempdir().unwrap();
    let env = [("VAULT_TOKEN", TOKEN)];
    let r = coffer(&stub.addr, home.path(), &["write", "sys/rotate"], &env, "").await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(stub.requests().is_empty());
    let r = coffer(
        &stub.addr,
        home.path(),
        &["write", "-f", "sys/rotate"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Success! Data written to: sys/rotate\n");
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "write",
            "auth/userpass/users/a",
            "token_policies=dev",
            "note=-",
        ],
        &env,
        "from stdin",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = coffer(
        &stub.addr,
        home.path(),
        &["delete", "secret/metadata/x", "versions=1"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reqs = stub.requests();
    assert_eq!((reqs[0].method.as_str(), reqs[0].body.len()), ("POST", 0));
    assert_eq!(reqs[0].target, "/v1/sys/rotate");
    assert_eq!(
        reqs[1].json(),
        json!({"token_policies": "dev", "note": "from stdin"})
    );
    assert_eq!(reqs[2].method, "DELETE");
    assert_eq!(reqs[2].target, "/v1/secret/metadata/x?versions=1");
}

/// `--version`, `version` and `completion` work offline, whatever the settings say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_completion_need_no_server() {
    let home = tempfile::tempdir().unwrap();
    let env = [("VAULT_SKIP_VERIFY", "perhaps")];
    let addr = "http://127.0.0.1:9";
    let want = format!("coffer {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["version"][..]] {
        let r = coffer(addr, home.path(), args, &env, "").await;
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, want.as_str()),
            "{}",
            r.stderr
        );
    }
    let r = coffer(addr, home.path(), &["completion", "bash"], &env, "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("complete -F _coffer"), "{}", r.stdout);
    let r = coffer(addr, home.path(), &["completion", "zsh"], &env, "").await;
    assert!(r.stdout.starts_with("#compdef coffer"), "{}", r.stdout);
    let r = coffer(addr, home.path(), &["completion", "powershell"], &env, "").await;
    assert_eq!(r.code, 1, "an unknown shell is a usage error");
}
