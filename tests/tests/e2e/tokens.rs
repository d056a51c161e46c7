//! Token lifecycle through the real server.

use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

async fn create(s: &TestServer, parent: &str, body: Value) -> (String, String) {
    let (status, resp) = s
        .call("POST", "auth/token/create", Some(parent), Some(body))
        .await;
    assert_eq!(status, 200, "{resp}");
    (
        resp["auth"]["client_token"].as_str().unwrap().to_owned(),
        resp["auth"]["accessor"].as_str().unwrap().to_owned(),
    )
}

async fn token_lifecycle(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;

    // Create with every option; lookup shows them.
    let (status, resp) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["app", "ops"], "ttl": "1h", "explicit_max_ttl": "2h", "display_name": "ci", "meta": {"team": "a"}, "renewable": true})),
        )
        .await;
    assert_eq!(status, 200);
    let auth = &resp["auth"];
    assert_eq!(auth["policies"], json!(["app", "default", "ops"]));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["metadata"], json!({"team": "a"}));
    let tok = auth["client_token"].as_str().unwrap().to_owned();
    let acc = auth["accessor"].as_str().unwrap().to_owned();

    let (status, me) = s
        .call("GET", "auth/token/lookup-self", Some(&tok), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["display_name"], "token-ci");
    assert_eq!(me["data"]["explicit_max_ttl"], 7200);
    assert_eq!(me["data"]["id"], json!(tok));
    assert_eq!(me["data"]["path"], "auth/token/create");
    let (_, by_token) = s
        .call(
            "POST",
            "auth/token/lookup",
            Some(&root),
            Some(json!({"token": tok})),
        )
        .await;
    assert_eq!(by_token["data"]["accessor"], json!(acc));
    let (_, by_acc) = s
        .call(
            "POST",
            "auth/token/lookup-accessor",
            Some(&root),
            Some(json!({"accessor": acc})),
        )
        .await;
    assert_eq!(
        by_acc["data"]["id"], "",
        "accessor lookup never reveals the token"
    );
    assert_eq!(by_acc["data"]["policies"], json!(["app", "default", "ops"]));

    // Bearer works as well as X-Vault-Token.
    let r = s
        .http
        .get(format!("{}/v1/auth/token/lookup-self", s.addr))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A non-root token may only serve itself (until the policy engine lands).
    assert_eq!(s.call("GET", "sys/mounts", Some(&tok), None).await.0, 403);
    assert_eq!(
        s.call("POST", "auth/token/create", Some(&tok), Some(json!({})))
            .await
            .0,
        403
    );
    assert_eq!(
        s.call("GET", "secret/data/x", Some(&tok), None).await.0,
        403
    );

    // Renew: self and by token; capped by explicit max.
    let (status, r) = s
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&tok),
            Some(json!({"increment": "30m"})),
        )
        .await;
    assert_eq!(
        (status, r["auth"]["lease_duration"].clone()),
        (200, json!(1800))
    );
    let (_, r) = s
        .call(
            "POST",
            "auth/token/renew",
            Some(&root),
            Some(json!({"token": tok, "increment": "10h"})),
        )
        .await;
    let capped = r["auth"]["lease_duration"].as_u64().unwrap();
    assert!(
        (7100..=7200).contains(&capped),
        "capped by explicit_max_ttl: {capped}"
    );
    assert!(r["warnings"].is_array());

    // Non-renewable tokens refuse renewal.
    let (nr, _) = create(
        &s,
        &root,
        json!({"policies": ["x"], "renewable": false, "ttl": "1h"}),
    )
    .await;
    assert_eq!(
        s.call("POST", "auth/token/renew-self", Some(&nr), None)
            .await
            .0,
        400
    );

    // Parent/child: revoking the parent revokes children; orphans survive.
    let (parent, _) = create(&s, &root, json!({"policies": ["root"], "ttl": "1h"})).await;
    let (child, _) = create(&s, &parent, json!({"policies": ["p"]})).await;
    let (grandchild, _) = create(&s, &parent, json!({"policies": ["p"]})).await;
    let (orphan, _) = create(&s, &parent, json!({"policies": ["p"], "no_parent": true})).await;
    let (_, o) = s
        .call("GET", "auth/token/lookup-self", Some(&orphan), None)
        .await;
    assert_eq!(o["data"]["orphan"], true);
    let (_, c) = s
        .call("GET", "auth/token/lookup-self", Some(&child), None)
        .await;
    assert!(
        c["data"]["ttl"].as_u64().unwrap() <= 3600,
        "child capped by parent's life"
    );
    assert_eq!(
        s.call(
            "POST",
            "auth/token/revoke",
            Some(&root),
            Some(json!({"token": parent}))
        )
        .await
        .0,
        204
    );
    for t in [&parent, &child, &grandchild] {
        assert_eq!(
            s.call("GET", "auth/token/lookup-self", Some(t), None)
                .await
                .0,
            403
        );
    }
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&orphan), None)
            .await
            .0,
        200
    );

    // revoke-orphan keeps the children.
    let (p2, _) = create(&s, &root, json!({"policies": ["root"], "ttl": "1h"})).await;
    let (c2, _) = create(&s, &p2, json!({"policies": ["p"]})).await;
    assert_eq!(
        s.call(
            "POST",
            "auth/token/revoke-orphan",
            Some(&root),
            Some(json!({"token": p2}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&p2), None)
            .await
            .0,
        403
    );
    let (status, c) = s
        .call("GET", "auth/token/lookup-self", Some(&c2), None)
        .await;
    assert_eq!((status, c["data"]["orphan"].clone()), (200, json!(true)));

    // revoke-accessor and revoke-self.
    assert_eq!(
        s.call(
            "POST",
            "auth/token/revoke-accessor",
            Some(&root),
            Some(json!({"accessor": acc}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&tok), None)
            .await
            .0,
        403
    );
    assert_eq!(
        s.call("POST", "auth/token/revoke-self", Some(&c2), None)
            .await
            .0,
        204
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&c2), None)
            .await
            .0,
        403
    );

    // Use limits: the token dies after its last use.
    let (limited, _) = create(&s, &root, json!({"policies": ["p"], "num_uses": 2})).await;
    let (_, l) = s
        .call("GET", "auth/token/lookup-self", Some(&limited), None)
        .await;
    assert_eq!(l["data"]["num_uses"], 1);
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await
            .0,
        403
    );

    // Expired tokens are rejected.
    let (short, _) = create(&s, &root, json!({"policies": ["p"], "ttl": "1s"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&short), None)
            .await
            .0,
        403
    );

    // Tokens survive a restart (stored, not in memory).
    let (keep, _) = create(&s, &root, json!({"policies": ["p"], "ttl": "1h"})).await;
    let mut s = s;
    let keys = {
        let (_, st) = s.call("GET", "sys/seal-status", None, None).await;
        assert_eq!(st["n"], 1);
        st
    };
    drop(keys);
    s.restart();
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&keep), None)
            .await
            .0,
        503
    );
    let log = s.log();
    assert!(
        !log.contains(&keep) && !log.contains(&root),
        "a token reached the log"
    );
}

#[tokio::test]
async fn token_lifecycle_sqlite() {
    token_lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn token_lifecycle_postgres() {
    token_lifecycle(Backend::Postgres).await;
}

/// Huge durations are capped, never wrapped into a past expiry: every answer
/// that says 200 leaves a token that still works.
#[tokio::test]
async fn huge_durations_never_make_a_dead_token() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    const HUGE: u64 = u64::MAX;
    async fn alive(s: &TestServer, token: &str, what: &str) {
        let (status, me) = s
            .call("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        assert_eq!(status, 200, "{what}: the token died: {me}");
        assert!(me["data"]["ttl"].as_u64().unwrap() > 0, "{what}: {me}");
    }
    let bodies = [
        ("ttl", json!({"policies": ["p"], "ttl": HUGE})),
        (
            "explicit_max_ttl",
            json!({"policies": ["p"], "ttl": "1h", "explicit_max_ttl": HUGE}),
        ),
        (
            "explicit_max_ttl as text",
            json!({"policies": ["p"], "ttl": "1h", "explicit_max_ttl": HUGE.to_string()}),
        ),
        ("period", json!({"policies": ["p"], "period": HUGE})),
    ];
    for (what, body) in bodies {
        let (status, resp) = s
            .call("POST", "auth/token/create", Some(&root), Some(body))
            .await;
        if status != 200 {
            assert_eq!(status, 400, "{what}: {resp}");
            continue;
        }
        let tok = resp["auth"]["client_token"].as_str().unwrap().to_owned();
        assert!(
            resp["auth"]["lease_duration"].as_u64().unwrap() <= 768 * 3600,
            "{what}: {resp}"
        );
        alive(&s, &tok, what).await;
        for increment in [
            json!(HUGE),
            json!(HUGE.to_string()),
            json!(i64::MAX as u64 + 1),
        ] {
            let (status, r) = s
                .call(
                    "POST",
                    "auth/token/renew-self",
                    Some(&tok),
                    Some(json!({"increment": increment})),
                )
                .await;
            assert_eq!(status, 200, "{what}: a huge increment is capped: {r}");
            assert!(
                r["auth"]["lease_duration"].as_u64().unwrap() > 0,
                "{what}: {r}"
            );
            alive(&s, &tok, &format!("{what}, renewed by {increment}")).await;
        }
        let (status, r) = s
            .call(
                "POST",
                "auth/token/renew",
                Some(&root),
                Some(json!({"token": tok, "increment": HUGE})),
            )
            .await;
        assert_eq!(status, 200, "{what}: {r}");
        alive(&s, &tok, &format!("{what}, renewed by root")).await;
    }
}
