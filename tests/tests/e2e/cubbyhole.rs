//! `cubbyhole/` through the real server: each token sees only its own, not even
//! root sees another's, and it ends with the token; the mount is built in.

use coffer_tests::{Backend, TestServer};
use serde_json::json;

async fn child_token(s: &TestServer, root: &str, body: serde_json::Value) -> String {
    let (status, body) = s
        .call("POST", "auth/token/create", Some(root), Some(body))
        .await;
    assert_eq!(status, 200, "{body}");
    body["auth"]["client_token"].as_str().unwrap().to_owned()
}

async fn cubbyhole_is_per_token(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());

    let (status, body) = s.call("GET", "sys/mounts", r, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["cubbyhole/"]["type"], "cubbyhole", "{body}");
    let (status, _) = s.call("DELETE", "sys/mounts/cubbyhole", r, None).await;
    assert_eq!(status, 400, "the built-in mount cannot be disabled");
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/other",
            r,
            Some(json!({"type": "cubbyhole"})),
        )
        .await;
    assert_eq!(status, 400, "nor mounted a second time");

    assert_eq!(
        s.call("POST", "cubbyhole/app", r, Some(json!({"k": "root's"})))
            .await
            .0,
        204
    );
    let (status, body) = s.call("GET", "cubbyhole/app", r, None).await;
    assert_eq!(
        (status, body["data"].clone()),
        (200, json!({"k": "root's"}))
    );
    let (status, _) = s.call("POST", "cubbyhole/empty", r, Some(json!({}))).await;
    assert_eq!(status, 400, "an empty write is refused, as Vault does");

    // Another token (a child of root, with only `default`) has its own.
    let child = child_token(&s, &root, json!({"policies": ["default"]})).await;
    let c = Some(child.as_str());
    assert_eq!(s.call("GET", "cubbyhole/app", c, None).await.0, 404);
    assert_eq!(
        s.call(
            "POST",
            "cubbyhole/dir/mine",
            c,
            Some(json!({"k": "child's"}))
        )
        .await
        .0,
        204
    );
    let (_, body) = s.call("LIST", "cubbyhole/", c, None).await;
    assert_eq!(body["data"]["keys"], json!(["dir/"]));
    let (_, body) = s.call("LIST", "cubbyhole/dir/", c, None).await;
    assert_eq!(body["data"]["keys"], json!(["mine"]));
    // Not even root lists or reads another token's cubbyhole (listed as
    // hvac does it too: GET with list=True, Go's spelling of true).
    let (_, body) = s.call("LIST", "cubbyhole/", r, None).await;
    assert_eq!(body["data"]["keys"], json!(["app"]));
    let (_, body) = s.call("GET", "cubbyhole?list=True", r, None).await;
    assert_eq!(body["data"]["keys"], json!(["app"]));
    assert_eq!(s.call("GET", "cubbyhole/dir/mine", r, None).await.0, 404);
    // Without a token there is none.
    assert_eq!(s.call("GET", "cubbyhole/app", None, None).await.0, 403);

    // It ends with the token: revoked, the token and its data are gone.
    let (status, _) = s
        .call("POST", "auth/token/revoke-self", c, Some(json!({})))
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.call("GET", "cubbyhole/dir/mine", c, None).await.0, 403);

    // A token with one use: the use that writes is its last, and the data
    // goes with it (a new token cannot find it either way; the server's
    // token-store tests check the storage itself is cleared).
    let once = child_token(&s, &root, json!({"policies": ["default"], "num_uses": 1})).await;
    let o = Some(once.as_str());
    assert_eq!(
        s.call("POST", "cubbyhole/x", o, Some(json!({"k": "v"})))
            .await
            .0,
        204
    );
    assert_eq!(s.call("GET", "cubbyhole/x", o, None).await.0, 403);

    assert_eq!(s.call("DELETE", "cubbyhole/app", r, None).await.0, 204);
    assert_eq!(s.call("GET", "cubbyhole/app", r, None).await.0, 404);
}

#[tokio::test]
async fn cubbyhole_is_per_token_sqlite() {
    cubbyhole_is_per_token(Backend::Sqlite).await;
}

#[tokio::test]
async fn cubbyhole_is_per_token_postgres() {
    cubbyhole_is_per_token(Backend::Postgres).await;
}
