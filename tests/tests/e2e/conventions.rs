//! Vault's request conventions, driven by the real `bao` CLI where it is the
//! client that sends them: `write -f` (a body of `null`), key-value maps in the
//! `k=v` form (one string, comma lists, repeated keys), and form-encoded bodies.

use coffer_tests::bao::Bao;
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

async fn server() -> (TestServer, String) {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (_, root) = server.ready().await;
    (server, root)
}

#[tokio::test]
async fn write_f_sends_null_and_is_an_empty_request() {
    let (server, root) = server().await;
    let Some(bao) = Bao::new(&server.addr) else {
        return;
    };
    let created = bao
        .run(
            Some(&root),
            &["write", "-f", "-format=json", "auth/token/create"],
        )
        .json();
    let child = created["auth"]["client_token"].as_str().unwrap();
    let (status, body) = server
        .call("GET", "auth/token/lookup-self", Some(child), None)
        .await;
    assert_eq!(status, 200, "{body}");

    let (_, before) = server
        .call("GET", "sys/key-status", Some(&root), None)
        .await;
    let rotated = bao.run(Some(&root), &["write", "-f", "sys/rotate"]);
    assert_eq!(rotated.code, 0, "{rotated:?}");
    let (_, after) = server
        .call("GET", "sys/key-status", Some(&root), None)
        .await;
    assert_eq!(
        after["data"]["term"].as_u64(),
        before["data"]["term"].as_u64().map(|t| t + 1),
        "{before} -> {after}"
    );

    // The same body by hand, with the JSON media type.
    let resp = server
        .http
        .post(format!("{}/v1/auth/token/create", server.addr))
        .header("X-Vault-Token", &root)
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn maps_take_the_k_v_form_from_the_cli() {
    let (server, root) = server().await;
    let Some(bao) = Bao::new(&server.addr) else {
        return;
    };
    let want = json!({"team": "payments", "env": "prod"});

    // Token metadata: a comma list in one argument, and a repeated argument.
    for args in [
        &["meta=team=payments,env=prod"][..],
        &["meta=team=payments", "meta=env=prod"][..],
    ] {
        let mut cmd = vec!["write", "-format=json", "auth/token/create"];
        cmd.extend_from_slice(args);
        let out = bao.run(Some(&root), &cmd).json();
        assert_eq!(out["auth"]["metadata"], want, "{args:?}: {out}");
    }

    // The README's create-user command, with two pairs.
    let enabled = bao.run(Some(&root), &["auth", "enable", "userpass"]);
    assert_eq!(enabled.code, 0, "{enabled:?}");
    let created = bao.run(
        Some(&root),
        &[
            "write",
            "auth/userpass/users/alice",
            "password=correct-horse-battery",
            "token_policies=developer",
            "metadata=team=payments,env=prod",
        ],
    );
    assert_eq!(created.code, 0, "{created:?}");
    let user = bao
        .run(
            Some(&root),
            &["read", "-format=json", "auth/userpass/users/alice"],
        )
        .json();
    assert_eq!(user["data"]["metadata"], want, "{user}");

    // KV v2 custom metadata.
    let put = bao.run(Some(&root), &["kv", "put", "secret/app", "k=v"]);
    assert_eq!(put.code, 0, "{put:?}");
    let meta = bao.run(
        Some(&root),
        &[
            "write",
            "secret/metadata/app",
            "custom_metadata=team=payments,env=prod",
        ],
    );
    assert_eq!(meta.code, 0, "{meta:?}");
    let read = bao
        .run(
            Some(&root),
            &["kv", "metadata", "get", "-format=json", "secret/app"],
        )
        .json();
    assert_eq!(read["data"]["custom_metadata"], want, "{read}");

    // Mount options, as `bao write sys/mounts/<path> options=version=2`.
    let mounted = bao.run(
        Some(&root),
        &["write", "sys/mounts/kv-b", "type=kv", "options=version=2"],
    );
    assert_eq!(mounted.code, 0, "{mounted:?}");
    let (status, mount) = server
        .call("GET", "sys/mounts/kv-b", Some(&root), None)
        .await;
    assert_eq!(status, 200, "{mount}");
    assert_eq!(mount["data"]["options"]["version"], "2", "{mount}");

    // A piece that is not a pair is a clear 400, not a silent value.
    let bad = bao.run(
        Some(&root),
        &["write", "auth/token/create", "meta=team=payments,prod"],
    );
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr
            .contains("field 'meta': pair 2 is not of the form key=value"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn form_bodies_are_read_as_vault_reads_them() {
    let (server, root) = server().await;
    let post = |body: &'static str, content_type: &'static str| {
        server
            .http
            .post(format!("{}/v1/auth/token/create", server.addr))
            .header("X-Vault-Token", &root)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let resp = post(
        "display_name=ci&meta=team%3Dpayments&meta=env%3Dprod&ttl=1h",
        form,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["auth"]["metadata"],
        json!({"team": "payments", "env": "prod"}),
        "{body}"
    );
    assert_eq!(body["auth"]["lease_duration"], 3600, "{body}");
    // curl -d '{...}' sends JSON with the form type: it stays JSON.
    let resp = post(r#"{"meta": {"team": "payments"}}"#, form)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["auth"]["metadata"],
        json!({"team": "payments"}),
        "{body}"
    );
}
