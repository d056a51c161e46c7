//! The typed calls of `coffer_client` against the real server, on both backends:
//! what the library parses out of each answer is what the server meant.

use coffer_client::{ClientError, TokenCreateRequest, Ttl};
use coffer_tests::{Backend, TestServer};
use serde_json::json;

async fn kv_versions_through_the_typed_client(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let c = s.client(Some(&root));

    let first = c
        .kv_put(
            "secret",
            "app/db",
            &json!({"user": "app", "pass": "p1"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.data.as_ref().unwrap()["version"], 1);
    c.kv_put(
        "secret",
        "app/db",
        &json!({"user": "app", "pass": "p2"}),
        Some(1),
    )
    .await
    .unwrap();
    let stale = c
        .kv_put("secret", "app/db", &json!({"pass": "x"}), Some(1))
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(400), "{stale}");
    assert!(stale.to_string().contains("check-and-set"), "{stale}");

    let latest = c.kv_get("secret", "app/db", None).await.unwrap().unwrap();
    assert_eq!(latest.metadata.version, 2);
    assert_eq!(latest.data.as_ref().unwrap()["pass"], "p2");
    let v1 = c
        .kv_get("secret", "app/db", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.data.as_ref().unwrap()["pass"], "p1");
    assert!(c.kv_get("secret", "nope", None).await.unwrap().is_none());

    c.kv_patch(
        "secret",
        "app/db",
        &json!({"pass": "p3", "user": null}),
        None,
    )
    .await
    .unwrap();
    let patched = c.kv_get("secret", "app/db", None).await.unwrap().unwrap();
    assert_eq!(patched.metadata.version, 3);
    assert_eq!(
        patched.data.as_ref().unwrap(),
        json!({"pass": "p3"}).as_object().unwrap()
    );

    c.kv_put("secret", "app/cache", &json!({"url": "redis://"}), None)
        .await
        .unwrap();
    let mut listed = c.kv_list("secret", "app/").await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["cache".to_string(), "db".to_string()]);

    c.kv_delete("secret", "app/db", &[2]).await.unwrap();
    let deleted = c
        .kv_get("secret", "app/db", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.is_deleted() && deleted.data.is_none());
    c.kv_undelete("secret", "app/db", &[2]).await.unwrap();
    let back = c
        .kv_get("secret", "app/db", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.data.as_ref().unwrap()["pass"], "p2");
    c.kv_destroy("secret", "app/db", &[1]).await.unwrap();
    let gone = c
        .kv_get("secret", "app/db", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert!(gone.is_destroyed() && gone.data.is_none());

    // Without a token the typed call fails with the server's refusal.
    let anonymous = s.client(None);
    let refused = anonymous
        .kv_get("secret", "app/db", None)
        .await
        .unwrap_err();
    assert!(refused.is_permission_denied(), "{refused}");
}

#[tokio::test]
async fn kv_versions_through_the_typed_client_sqlite() {
    kv_versions_through_the_typed_client(Backend::Sqlite).await;
}

#[tokio::test]
async fn kv_versions_through_the_typed_client_postgres() {
    kv_versions_through_the_typed_client(Backend::Postgres).await;
}

async fn tokens_through_the_typed_client(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let c = s.client(Some(&root));

    let request = TokenCreateRequest {
        policies: vec!["default".into()],
        ttl: Some(Ttl::Seconds(600)),
        display_name: Some("typed".into()),
        ..Default::default()
    };
    let created = c.token_create(&request).await.unwrap();
    let auth = created.auth.as_ref().unwrap();
    assert_eq!(auth.lease_duration, 600);
    assert!(auth.renewable);
    assert!(auth.policies.contains(&"default".to_string()));

    let child = s.client(Some(auth.client_token.expose()));
    let me = child.token_lookup_self().await.unwrap();
    let data = me.data.as_ref().unwrap();
    assert_eq!(data["accessor"], json!(auth.accessor));
    assert_eq!(data["display_name"], "token-typed");
    let by_accessor = c.token_lookup_accessor(&auth.accessor).await.unwrap();
    assert_eq!(
        by_accessor.data.as_ref().unwrap()["accessor"],
        json!(auth.accessor)
    );

    let renewed = child
        .token_renew_self(Some(Ttl::Seconds(300)))
        .await
        .unwrap();
    assert_eq!(renewed.auth.as_ref().unwrap().lease_duration, 300);

    child.token_revoke_self().await.unwrap();
    let after = child.token_lookup_self().await.unwrap_err();
    assert!(after.is_permission_denied(), "{after}");
    assert!(matches!(after, ClientError::Api { .. }), "{after:?}");
}

#[tokio::test]
async fn tokens_through_the_typed_client_sqlite() {
    tokens_through_the_typed_client(Backend::Sqlite).await;
}

#[tokio::test]
async fn tokens_through_the_typed_client_postgres() {
    tokens_through_the_typed_client(Backend::Postgres).await;
}

#[tokio::test]
async fn seal_status_and_health_through_the_typed_client() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let c = s.client(None);
    let status = c.seal_status().await.unwrap();
    assert!(!status.initialized && status.sealed);
    let (keys, root) = s.init(3, 2).await;
    assert!(c.seal_status().await.unwrap().sealed);
    let partial = c.unseal(&keys[0]).await.unwrap();
    assert_eq!((partial.sealed, partial.progress), (true, 1));
    let open = c.unseal(&keys[1]).await.unwrap();
    assert!(!open.sealed);
    let health = c.health().await.unwrap();
    assert!(health.initialized && !health.sealed);
    s.client(Some(&root)).seal().await.unwrap();
    let sealed = s
        .client(Some(&root))
        .kv_get("secret", "x", None)
        .await
        .unwrap_err();
    assert!(sealed.is_sealed(), "{sealed:?}");
}
