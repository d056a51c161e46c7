//! AppRole through the real server, on both backends: roles, role ids, secret
//! ids with uses and TTLs, and a counted secret id raced by 24 logins.

use std::sync::Arc;

use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

const CONTENDERS: usize = 24;

async fn with_approle(backend: Backend) -> Option<(Arc<TestServer>, String)> {
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    let (st, body) = s
        .call(
            "POST",
            "sys/auth/approle",
            t,
            Some(json!({"type": "approle"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    Some((Arc::new(s), root))
}

async fn secret_id(s: &TestServer, root: &str, role: &str, body: Value) -> (String, String) {
    let (st, out) = s
        .call(
            "POST",
            &format!("auth/approle/role/{role}/secret-id"),
            Some(root),
            Some(body),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    (
        out["data"]["secret_id"].as_str().unwrap().to_owned(),
        out["data"]["secret_id_accessor"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

async fn login(s: &TestServer, role_id: &str, secret: &str) -> (u16, Value) {
    s.call(
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret})),
    )
    .await
}

async fn roles_secret_ids_and_logins(backend: Backend) {
    let Some((s, root)) = with_approle(backend).await else {
        return;
    };
    let t = Some(root.as_str());
    let (st, body) = s
        .call(
            "POST",
            "auth/approle/role/Deploy",
            t,
            Some(json!({"token_policies": "read-only", "token_ttl": "10m", "secret_id_ttl": "1h"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    // Role names are case-insensitive.
    let (_, role) = s.call("GET", "auth/approle/role/deploy", t, None).await;
    assert_eq!(role["data"]["token_policies"], json!(["read-only"]));
    assert_eq!(role["data"]["secret_id_ttl"], 3600);
    let (_, listed) = s.call("LIST", "auth/approle/role", t, None).await;
    assert_eq!(listed["data"]["keys"], json!(["deploy"]));
    let (_, rid) = s
        .call("GET", "auth/approle/role/deploy/role-id", t, None)
        .await;
    let role_id = rid["data"]["role_id"].as_str().unwrap().to_owned();

    let (secret, accessor) = secret_id(
        &s,
        &root,
        "deploy",
        json!({"metadata": "{\"pipeline\":\"web\"}"}),
    )
    .await;
    let (st, out) = login(&s, &role_id, &secret).await;
    assert_eq!(st, 200, "{out}");
    let auth = &out["auth"];
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!(auth["metadata"]["role_name"], "deploy");
    assert_eq!(auth["metadata"]["pipeline"], "web");
    assert!(auth["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("read-only")));

    // Wrong values look alike; the secret id is never stored as written.
    for (r, sid) in [(role_id.as_str(), "nope"), ("nope", secret.as_str())] {
        let (st, out) = login(&s, r, sid).await;
        assert_eq!(st, 400, "{out}");
        assert_eq!(out["errors"][0], "invalid role or secret ID");
    }
    if backend == Backend::Sqlite {
        let raw = s.raw_sqlite_bytes();
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    // Lookup by value and by accessor; LIST shows accessors; destroy ends it.
    let (st, info) = s
        .call(
            "POST",
            "auth/approle/role/deploy/secret-id/lookup",
            t,
            Some(json!({"secret_id": secret})),
        )
        .await;
    assert_eq!(
        (st, info["data"]["secret_id_accessor"].clone()),
        (200, json!(accessor))
    );
    let (_, accessors) = s
        .call("LIST", "auth/approle/role/deploy/secret-id", t, None)
        .await;
    assert_eq!(accessors["data"]["keys"], json!([accessor]));
    let (st, _) = s
        .call(
            "POST",
            "auth/approle/role/deploy/secret-id-accessor/destroy",
            t,
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(login(&s, &role_id, &secret).await.0, 400);

    // A custom role id and a custom secret id.
    let (st, _) = s
        .call(
            "POST",
            "auth/approle/role/deploy/role-id",
            t,
            Some(json!({"role_id": "web-deploy"})),
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(
            "POST",
            "auth/approle/role/deploy/custom-secret-id",
            t,
            Some(json!({"secret_id": "a-long-custom-secret-value"})),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        login(&s, "web-deploy", "a-long-custom-secret-value")
            .await
            .0,
        200
    );
    assert_eq!(
        login(&s, &role_id, "a-long-custom-secret-value").await.0,
        400
    );

    // A role without any constraint is refused.
    let (st, out) = s
        .call(
            "POST",
            "auth/approle/role/open",
            t,
            Some(json!({"bind_secret_id": false})),
        )
        .await;
    assert_eq!(st, 400, "{out}");

    // Tiers: an emergency admin cannot mint secret ids.
    let (_, ea) = s
        .call(
            "POST",
            "auth/token/create",
            t,
            Some(json!({"policies": ["emergency-admin"]})),
        )
        .await;
    let ea = ea["auth"]["client_token"].as_str().unwrap().to_owned();
    let (st, _) = s
        .call(
            "POST",
            "auth/approle/role/deploy/secret-id",
            Some(&ea),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn roles_secret_ids_and_logins_sqlite() {
    roles_secret_ids_and_logins(Backend::Sqlite).await;
}

#[tokio::test]
async fn roles_secret_ids_and_logins_postgres() {
    roles_secret_ids_and_logins(Backend::Postgres).await;
}

async fn counted_secret_id_race(backend: Backend) {
    let Some((s, root)) = with_approle(backend).await else {
        return;
    };
    let t = Some(root.as_str());
    s.call(
        "POST",
        "auth/approle/role/ci",
        t,
        Some(json!({"secret_id_num_uses": 3, "token_policies": "read-only"})),
    )
    .await;
    let (_, rid) = s.call("GET", "auth/approle/role/ci/role-id", t, None).await;
    let role_id = rid["data"]["role_id"].as_str().unwrap().to_owned();
    let (secret, _) = secret_id(&s, &root, "ci", json!({})).await;

    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let (s, start, role_id, secret) =
            (s.clone(), start.clone(), role_id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            login(&s, &role_id, &secret).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        let (st, body) = task.await.unwrap();
        match st {
            200 => wins += 1,
            400 => assert_eq!(body["errors"][0], "invalid role or secret ID"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(wins, 3, "a secret id with 3 uses logs in exactly 3 times");
    assert_eq!(login(&s, &role_id, &secret).await.0, 400);

    // A single-use secret id: one winner.
    let (once, _) = secret_id(&s, &root, "ci", json!({"num_uses": 1})).await;
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let (s, start, role_id, once) = (s.clone(), start.clone(), role_id.clone(), once.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            login(&s, &role_id, &once).await.0
        }));
    }
    let mut single = 0;
    for task in tasks {
        single += usize::from(task.await.unwrap() == 200);
    }
    assert_eq!(single, 1, "a one-use secret id logs in once");
}

#[tokio::test]
async fn counted_secret_id_race_sqlite() {
    counted_secret_id_race(Backend::Sqlite).await;
}

#[tokio::test]
async fn counted_secret_id_race_postgres() {
    counted_secret_id_race(Backend::Postgres).await;
}

#[tokio::test]
async fn cidr_bindings_are_enforced() {
    let Some((s, root)) = with_approle(Backend::Sqlite).await else {
        return;
    };
    let t = Some(root.as_str());
    // The role accepts logins from 10.0.0.0/8 only; the test connects from 127.0.0.1.
    s.call(
        "POST",
        "auth/approle/role/far",
        t,
        Some(json!({"secret_id_bound_cidrs": "10.0.0.0/8"})),
    )
    .await;
    let (_, rid) = s
        .call("GET", "auth/approle/role/far/role-id", t, None)
        .await;
    let far_id = rid["data"]["role_id"].as_str().unwrap().to_owned();
    let (far_secret, _) = secret_id(&s, &root, "far", json!({})).await;
    let (st, out) = login(&s, &far_id, &far_secret).await;
    assert_eq!(st, 400, "{out}");
    assert!(out.to_string().contains("source address"), "{out}");
    // Secret ids bound elsewhere, on a role that allows loopback.
    s.call("POST", "auth/approle/role/near", t, Some(json!({})))
        .await;
    let (_, rid) = s
        .call("GET", "auth/approle/role/near/role-id", t, None)
        .await;
    let near_id = rid["data"]["role_id"].as_str().unwrap().to_owned();
    let (bound, _) = secret_id(&s, &root, "near", json!({"cidr_list": "192.168.0.0/16"})).await;
    assert_eq!(login(&s, &near_id, &bound).await.0, 400);
    let (loopback, _) = secret_id(&s, &root, "near", json!({"cidr_list": "127.0.0.0/8"})).await;
    assert_eq!(login(&s, &near_id, &loopback).await.0, 200);
    // The token of a secret id with token_bound_cidrs elsewhere is refused here.
    let (tb, _) = secret_id(
        &s,
        &root,
        "near",
        json!({"token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let (st, out) = login(&s, &near_id, &tb).await;
    assert_eq!(st, 200, "{out}");
    let token = out["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .0,
        403
    );
}

#[tokio::test]
async fn an_expired_secret_id_is_refused() {
    let Some((s, root)) = with_approle(Backend::Sqlite).await else {
        return;
    };
    let t = Some(root.as_str());
    s.call("POST", "auth/approle/role/short", t, Some(json!({})))
        .await;
    let (_, rid) = s
        .call("GET", "auth/approle/role/short/role-id", t, None)
        .await;
    let role_id = rid["data"]["role_id"].as_str().unwrap().to_owned();
    let (secret, _) = secret_id(&s, &root, "short", json!({"ttl": "1s"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, out) = login(&s, &role_id, &secret).await;
    assert_eq!(st, 400, "{out}");
}
