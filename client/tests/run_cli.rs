//! `coffer run --auth cert` against the local stub: the login goes to
//! `auth/<mount>/login` with the role name and no token, the KV read carries the token
//! it answered (not COFFER_TOKEN), and the fields reach the child.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::coffer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_login_then_secrets_into_the_child() {
    let stub = common::start(|req| match (req.target.as_str(), req.header("x-vault-token")) {
        ("/v1/auth/svc-cert/login", None) => (
            200,
            json!({"auth": {"client_token": "hvs.FROM-CERT", "lease_duration": 60, "renewable": true}})
                .to_string(),
        ),
        ("/v1/secret/data/app/db", Some("hvs.FROM-CERT")) => (
            200,
            json!({"data": {"data": {"password": "p4ss", "pool-size": 8},
                            "metadata": {"version": 1, "destroyed": false, "deletion_time": ""}}})
            .to_string(),
        ),
        _ => (403, json!({"errors": ["permission denied"]}).to_string()),
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["svc".into()]).unwrap();
    let cert = home.path().join("svc.pem");
    let key = home.path().join("svc-key.pem");
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "run",
            "-client-cert",
            &cert,
            "-client-key",
            &key,
            "--auth=cert",
            "--mount",
            "svc-cert",
            "--name",
            "web",
            "--secret",
            "secret/app/db",
            "--",
            "/bin/sh",
            "-c",
            r#"test "$PASSWORD" = p4ss && test "$POOL_SIZE" = 8"#,
        ],
        &[("COFFER_TOKEN", "hvs.NOT-THIS-ONE")],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].json(), json!({"name": "web"}));
    assert_eq!(reqs[1].header("x-vault-token"), Some("hvs.FROM-CERT"));

    // The client key from the environment, the certificate missing: named, exit 1.
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "run",
            "--auth=cert",
            "--secret",
            "secret/app/db",
            "--",
            "/bin/true",
        ],
        &[
            ("COFFER_CLIENT_CERT", "/nonexistent/svc.pem"),
            ("COFFER_CLIENT_KEY", &key),
        ],
        "",
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("/nonexistent/svc.pem") && r.stderr.contains("COFFER_CLIENT_CERT"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("PRIVATE KEY"), "{}", r.stderr);
}
