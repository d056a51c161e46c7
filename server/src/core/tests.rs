use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::*;
use crate::clock::ManualClock;
use crate::logical::{LogicalError, Operation, Request, ResponseBody};
use crate::storage::MigrationMode;

async fn core() -> (Core, Arc<ManualClock>) {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let clock = ManualClock::new(1_000_000);
    (
        Core::new(storage, clock.clone(), CoreConfig::default()),
        clock,
    )
}

fn req(op: Operation, path: &str, token: Option<&str>, data: Value) -> Request {
    Request {
        id: "test".into(),
        operation: op,
        path: path.into(),
        data: data.as_object().cloned().unwrap_or_else(Map::new),
        content_type: None,
        client_token: token.map(SecretString::from),
        list_after: None,
        list_limit: None,
        mfa_header: None,
        connection: Default::default(),
        unauthenticated_metrics: false,
    }
}

fn auth_token(resp: &Response) -> String {
    match &resp.body {
        ResponseBody::Envelope { auth: Some(a), .. } => {
            a["client_token"].as_str().unwrap().to_owned()
        }
        other => panic!("no auth in {other:?}"),
    }
}

#[tokio::test]
async fn sealed_core_refuses_everything_but_status_paths() {
    let (c, _) = core().await;
    assert!(matches!(
        c.handle(req(Operation::Read, "secret/data/x", Some("t"), json!({})))
            .await,
        Err(CoreError::Sealed)
    ));
    let health = c
        .handle(req(Operation::Read, "sys/health", None, json!({})))
        .await
        .unwrap();
    assert_eq!(health.status, 501);
    let init = c
        .handle(req(Operation::Read, "sys/init", None, json!({})))
        .await
        .unwrap();
    assert_eq!(init.body, ResponseBody::Raw(json!({"initialized": false})));
}

#[tokio::test]
async fn the_canonical_path_comes_before_everything() {
    let (c, _) = core().await;
    // Sealed, and the unauthenticated status paths: still refused first.
    for path in [
        "sys//health",
        "/sys/init",
        "sys/seal-status\0",
        "./sys/health",
    ] {
        let got = c.handle(req(Operation::Read, path, None, json!({}))).await;
        assert!(
            matches!(got, Err(CoreError::NonCanonicalPath(_))),
            "{path:?}: {got:?}"
        );
    }
    c.dev_setup(Some(&SecretString::from("root-id")))
        .await
        .unwrap();
    // Root is refused too: the check is not a policy decision.
    let got = c
        .handle(req(
            Operation::Delete,
            "sys/mounts//secret",
            Some("root-id"),
            json!({}),
        ))
        .await;
    assert!(
        matches!(got, Err(CoreError::NonCanonicalPath(_))),
        "{got:?}"
    );
    // The folded name is the one the handler acts on and answers with.
    let resp = c
        .handle(req(
            Operation::Read,
            "sys/policies/acl/DEFAULT",
            Some("root-id"),
            json!({}),
        ))
        .await
        .unwrap();
    match resp.body {
        ResponseBody::Envelope { data: Some(d), .. } => assert_eq!(d["name"], json!("default")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn default_policy_allows_only_self_service() {
    let (c, clock) = core().await;
    let (_, root) = c
        .dev_setup(Some(&SecretString::from("root-id")))
        .await
        .unwrap();
    assert_eq!(root.as_str(), "root-id");
    let created = c
        .handle(req(
            Operation::Update,
            "auth/token/create",
            Some("root-id"),
            json!({"policies": ["dev"], "ttl": "10m"}),
        ))
        .await
        .unwrap();
    let child = auth_token(&created);
    for (op, path) in [
        (Operation::Read, "secret/data/x"),
        (Operation::Read, "sys/mounts"),
        (Operation::Update, "auth/token/create"),
        (Operation::Update, "sys/seal"),
    ] {
        let r = c.handle(req(op, path, Some(&child), json!({}))).await;
        assert!(matches!(r, Err(CoreError::PermissionDenied)), "{path}");
    }
    assert!(c
        .handle(req(
            Operation::Read,
            "auth/token/lookup-self",
            Some(&child),
            json!({})
        ))
        .await
        .is_ok());
    // The injected clock expires the child without sleeping.
    clock.advance(std::time::Duration::from_secs(601));
    assert!(matches!(
        c.handle(req(
            Operation::Read,
            "auth/token/lookup-self",
            Some(&child),
            json!({})
        ))
        .await,
        Err(CoreError::TokenRefused(crate::core::TokenRefusal::Expired))
    ));
    // And tidy removes it through the expiry index; then it is unknown.
    assert_eq!(c.tidy().await.unwrap(), 1);
    assert!(matches!(
        c.handle(req(
            Operation::Read,
            "auth/token/lookup-self",
            Some(&child),
            json!({})
        ))
        .await,
        Err(CoreError::TokenRefused(crate::core::TokenRefusal::Unknown))
    ));
    assert!(c
        .handle(req(
            Operation::Read,
            "auth/token/lookup-self",
            Some("root-id"),
            json!({})
        ))
        .await
        .is_ok());
}

#[tokio::test]
async fn unknown_paths_are_no_handler() {
    let (c, _) = core().await;
    c.dev_setup(Some(&SecretString::from("r"))).await.unwrap();
    for path in ["sys/nope", "auth/token/nope"] {
        let r = c
            .handle(req(Operation::Read, path, Some("r"), json!({})))
            .await;
        assert!(matches!(r, Err(CoreError::NoHandler(_))), "{path}: {r:?}");
    }
    // Below no mount, the answer says what is missing and how to enable it.
    for (path, hint) in [
        ("nothing/here", "coffer secrets enable -path=nothing kv-v2"),
        (
            "auth/people/login/x",
            "coffer auth enable -path=people <type>",
        ),
    ] {
        let r = c
            .handle(req(Operation::Read, path, Some("r"), json!({})))
            .await;
        let message = r.unwrap_err().to_string();
        assert!(message.starts_with("no handler for route"), "{message}");
        assert!(message.contains(hint), "{message}");
    }
}

#[tokio::test]
async fn seal_drops_state_and_unseal_restores_it() {
    let (c, _) = core().await;
    let (key, _) = c.dev_setup(Some(&SecretString::from("r"))).await.unwrap();
    c.handle(req(
        Operation::Update,
        "secret/data/a",
        Some("r"),
        json!({"data": {"v": 1}}),
    ))
    .await
    .unwrap();
    c.handle(req(Operation::Update, "sys/seal", Some("r"), json!({})))
        .await
        .unwrap();
    assert!(c.is_sealed());
    assert!(c.barrier.is_sealed());
    c.unseal(&key).await.unwrap();
    let r = c
        .handle(req(Operation::Read, "secret/data/a", Some("r"), json!({})))
        .await
        .unwrap();
    match r.body {
        ResponseBody::Envelope { data: Some(d), .. } => assert_eq!(d["data"], json!({"v": 1})),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn developer_tier_reaches_its_team_through_the_pipeline() {
    let (c, _) = core().await;
    c.dev_setup(Some(&SecretString::from("r"))).await.unwrap();
    for p in ["teams/payments/api", "teams/search/api"] {
        c.handle(req(
            Operation::Update,
            &format!("secret/data/{p}"),
            Some("r"),
            json!({"data": {"k": "v"}}),
        ))
        .await
        .unwrap();
    }
    // A login would set the entity; the token store API is what logins call.
    let state = c.unsealed().unwrap();
    let entity = crate::policy::Entity {
        id: "ent-1".into(),
        name: "alice".into(),
        metadata: [("team".to_owned(), "payments".to_owned())].into(),
    };
    let params = crate::token::CreateParams {
        policies: vec!["developer".into()],
        ttl: Some(600),
        renewable: true,
        entity: Some(entity),
        ..Default::default()
    };
    let (alice, _) = state.tokens.create(params, None, c.now()).await.unwrap();
    let alice = alice.as_str();
    let read = |path: &str| req(Operation::Read, path, Some(alice), json!({}));
    assert!(c
        .handle(read("secret/data/teams/payments/api"))
        .await
        .is_ok());
    assert!(matches!(
        c.handle(read("secret/data/teams/search/api")).await,
        Err(CoreError::PermissionDenied)
    ));
    let write = req(
        Operation::Update,
        "secret/data/teams/payments/new",
        Some(alice),
        json!({"data": {"a": "b"}}),
    );
    assert!(c.handle(write).await.is_ok(), "create on a new team secret");
    let patch_other = req(
        Operation::Update,
        "secret/data/teams/search/api",
        Some(alice),
        json!({"data": {}}),
    );
    assert!(matches!(
        c.handle(patch_other).await,
        Err(CoreError::PermissionDenied)
    ));
    // Children of a login token keep its identity, so templates still apply.
    let child = c
        .handle(req(
            Operation::Update,
            "auth/token/create",
            Some(alice),
            json!({"policies": ["developer"]}),
        ))
        .await
        .unwrap();
    let child = auth_token(&child);
    assert!(c
        .handle(req(
            Operation::Read,
            "secret/data/teams/payments/api",
            Some(&child),
            json!({})
        ))
        .await
        .is_ok());
}

#[tokio::test]
async fn tidy_removes_expired_pending_mfa_requests_and_lockout_counters() {
    let (c, clock) = core().await;
    c.dev_setup(Some(&SecretString::from("r"))).await.unwrap();
    c.handle(req(
        Operation::Update,
        "sys/auth/userpass",
        Some("r"),
        json!({"type": "userpass"}),
    ))
    .await
    .unwrap();
    c.handle(req(
        Operation::Update,
        "auth/userpass/users/alice",
        Some("r"),
        json!({"password": "correct horse battery staple"}),
    ))
    .await
    .unwrap();
    // A wrong password leaves a lockout counter.
    let wrong = req(
        Operation::Update,
        "auth/userpass/login/alice",
        None,
        json!({"password": "not the password at all"}),
    );
    assert!(c.handle(wrong).await.is_err());
    let state = c.unsealed().unwrap();
    let mount = state.auth.read().await.entries["userpass/"].storage_prefix();
    let lockout_prefix = format!("{mount}lockout/");
    assert_eq!(state.barrier.count(&lockout_prefix).await.unwrap(), 1);
    // A pending MFA request, as a password-only login leaves one.
    state
        .barrier
        .apply(vec![crate::barrier::BarrierOp::Put {
            key: format!("{}abc", login::PENDING_PREFIX),
            value: zeroize::Zeroizing::new(b"{}".to_vec()),
            expires_at: Some(c.now().secs() + 300),
        }])
        .await
        .unwrap();
    // Not yet due: both stay.
    c.tidy().await.unwrap();
    assert_eq!(state.barrier.count(&lockout_prefix).await.unwrap(), 1);
    assert_eq!(state.barrier.count(login::PENDING_PREFIX).await.unwrap(), 1);
    // Past every window: both go.
    clock.advance(std::time::Duration::from_secs(24 * 3600));
    c.tidy().await.unwrap();
    assert_eq!(state.barrier.count(&lockout_prefix).await.unwrap(), 0);
    assert_eq!(state.barrier.count(login::PENDING_PREFIX).await.unwrap(), 0);
}

#[tokio::test]
async fn a_creator_cannot_set_the_auth_methods_metadata_keys() {
    let (c, _) = core().await;
    c.dev_setup(Some(&SecretString::from("root-id")))
        .await
        .unwrap();
    for key in ["username", "mfa", "USERNAME"] {
        let r = c
            .handle(req(
                Operation::Update,
                "auth/token/create",
                Some("root-id"),
                json!({"policies": ["dev"], "meta": {key: "admin", "team": "a"}}),
            ))
            .await;
        match r {
            Err(CoreError::Logical(LogicalError::InvalidRequest(m))) => {
                assert!(m.contains("reserved"), "{key}: {m}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    let ok = c
        .handle(req(
            Operation::Update,
            "auth/token/create",
            Some("root-id"),
            json!({"policies": ["dev"], "meta": {"team": "a"}}),
        ))
        .await
        .unwrap();
    match &ok.body {
        ResponseBody::Envelope { auth: Some(a), .. } => {
            assert_eq!(a["metadata"], json!({"team": "a"}))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn issuing_an_enrollment_token_needs_update_on_the_user() {
    let (c, _) = core().await;
    c.dev_setup(Some(&SecretString::from("root-id")))
        .await
        .unwrap();
    let root = |op, path: &str, data: Value| req(op, path, Some("root-id"), data);
    c.handle(root(
        Operation::Update,
        "sys/auth/userpass",
        json!({"type": "userpass"}),
    ))
    .await
    .unwrap();
    c.handle(root(
        Operation::Update,
        "auth/userpass/users/alice",
        json!({"password": "a long first password"}),
    ))
    .await
    .unwrap();
    for (name, text) in [
        (
            "only-token-path",
            r#"path "auth/userpass/users/alice/enrollment-token" { capabilities = ["update"] }"#,
        ),
        (
            "user-admin",
            r#"path "auth/userpass/users/alice" { capabilities = ["update"] }
path "auth/userpass/users/alice/enrollment-token" { capabilities = ["update"] }"#,
        ),
    ] {
        c.handle(root(
            Operation::Update,
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": text }),
        ))
        .await
        .unwrap();
    }
    let token_with = |policy: &str| {
        let c = &c;
        let policy = policy.to_owned();
        async move {
            let r = c
                .handle(root(
                    Operation::Update,
                    "auth/token/create",
                    json!({ "policies": [policy] }),
                ))
                .await
                .unwrap();
            auth_token(&r)
        }
    };
    let narrow = token_with("only-token-path").await;
    let r = c
        .handle(req(
            Operation::Update,
            "auth/userpass/users/alice/enrollment-token",
            Some(&narrow),
            json!({}),
        ))
        .await;
    assert!(
        matches!(r, Err(CoreError::PermissionDenied)),
        "without update on the user: {r:?}"
    );
    let admin = token_with("user-admin").await;
    let r = c
        .handle(req(
            Operation::Update,
            "auth/userpass/users/alice/enrollment-token",
            Some(&admin),
            json!({}),
        ))
        .await
        .unwrap();
    match &r.body {
        ResponseBody::Envelope { data: Some(d), .. } => {
            assert!(d["enrollment_token"].as_str().unwrap().starts_with("cet."))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tidy_removes_expired_enrollment_tokens() {
    let (c, clock) = core().await;
    c.dev_setup(Some(&SecretString::from("r"))).await.unwrap();
    let r = |path: &str, data: Value| req(Operation::Update, path, Some("r"), data);
    c.handle(r("sys/auth/userpass", json!({"type": "userpass"})))
        .await
        .unwrap();
    c.handle(r(
        "auth/userpass/users/alice",
        json!({"password": "correct horse battery staple"}),
    ))
    .await
    .unwrap();
    c.handle(r(
        "auth/userpass/users/alice/enrollment-token",
        json!({"ttl": "10m"}),
    ))
    .await
    .unwrap();
    let state = c.unsealed().unwrap();
    let mount = state.auth.read().await.entries["userpass/"].storage_prefix();
    let prefix = format!("{mount}enrollment-token/");
    assert_eq!(state.barrier.count(&prefix).await.unwrap(), 1);
    c.tidy().await.unwrap();
    assert_eq!(
        state.barrier.count(&prefix).await.unwrap(),
        1,
        "not yet due"
    );
    clock.advance(std::time::Duration::from_secs(601));
    c.tidy().await.unwrap();
    assert_eq!(state.barrier.count(&prefix).await.unwrap(), 0);
}
