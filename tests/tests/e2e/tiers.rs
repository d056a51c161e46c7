//! The three tiers through the real HTTP API: for each tier a token, and for a
//! realistic set of paths and operations the expected allow (2xx/404 from the
//! handler) or deny (403). Below a mount, denials come before the route check,
//! so paths of engines not built yet (database) are still decided here. Every
//! served route's decision per tier is in server/src/core/routes/tests.rs.

use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

const A: bool = true; // allowed: the request reached its handler
const D: bool = false; // denied: 403 permission denied

/// (method, path, body, read-only, developer, emergency-admin)
fn table() -> Vec<(&'static str, &'static str, Value, bool, bool, bool)> {
    vec![
        ("GET", "secret/data/app/config", json!(null), A, D, A),
        ("GET", "secret/metadata/app/config", json!(null), A, D, A),
        ("LIST", "secret/metadata/app/", json!(null), A, D, A),
        (
            "POST",
            "secret/data/app/config",
            json!({"data": {"x": "1"}}),
            D,
            D,
            A,
        ),
        ("DELETE", "secret/data/app/scratch", json!(null), D, D, A),
        // Developer team paths need the team from a login identity; token-store
        // tokens have none, so the templated rules grant nothing here (the
        // pipeline test in server/src/core/tests.rs covers the templated case).
        (
            "GET",
            "secret/data/teams/payments/api",
            json!(null),
            A,
            D,
            A,
        ),
        ("GET", "sys/policies/acl/developer", json!(null), D, D, A),
        ("LIST", "sys/policies/acl", json!(null), D, D, A),
        (
            "PUT",
            "sys/policies/acl/new",
            json!({"policy": "path \"x\" { capabilities = [\"read\"] }"}),
            D,
            D,
            D,
        ),
        ("DELETE", "sys/policies/acl/read-only", json!(null), D, D, D),
        ("PUT", "sys/audit/file", json!({"type": "file"}), D, D, D),
        ("DELETE", "sys/audit/file", json!(null), D, D, D),
        ("PUT", "sys/seal", json!(null), D, D, D),
        ("PUT", "sys/rotate", json!(null), D, D, D),
        (
            "POST",
            "sys/auth/userpass",
            json!({"type": "userpass"}),
            D,
            D,
            D,
        ),
        ("GET", "sys/mounts", json!(null), D, D, A),
        // Mounts are tuned, never enabled or disabled, by emergency-admin.
        (
            "POST",
            "sys/mounts/scratch-kv",
            json!({"type": "kv-v2"}),
            D,
            D,
            D,
        ),
        (
            "POST",
            "sys/mounts/secret/tune",
            json!({"max_lease_ttl": "2h"}),
            D,
            D,
            A,
        ),
        (
            "POST",
            "auth/token/create",
            json!({"policies": ["default"], "ttl": "5m"}),
            D,
            A,
            D,
        ),
        (
            "POST",
            "auth/token/create-orphan",
            json!({"ttl": "5m"}),
            D,
            D,
            D,
        ),
        ("GET", "database/creds/deploy-app", json!(null), D, A, D),
        ("GET", "database/creds/admin", json!(null), D, D, D),
        ("GET", "auth/token/lookup-self", json!(null), A, A, A),
        (
            "POST",
            "sys/capabilities-self",
            json!({"path": "secret/data/app/config"}),
            A,
            A,
            A,
        ),
    ]
}

#[tokio::test]
async fn tiers_decide_as_documented() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    for p in ["app/config", "app/scratch", "teams/payments/api"] {
        let (st, _) = s
            .call(
                "POST",
                &format!("secret/data/{p}"),
                Some(&root),
                Some(json!({"data": {"v": "1"}})),
            )
            .await;
        assert_eq!(st, 200);
    }
    let mut tokens = Vec::new();
    for tier in ["read-only", "developer", "emergency-admin"] {
        let (st, body) = s
            .call(
                "POST",
                "auth/token/create",
                Some(&root),
                Some(json!({"policies": [tier], "ttl": "1h"})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        tokens.push(body["auth"]["client_token"].as_str().unwrap().to_owned());
    }
    let mut failures = Vec::new();
    for (method, path, body, ro, dev, ea) in table() {
        for (i, expect_allowed) in [ro, dev, ea].into_iter().enumerate() {
            let tier = ["read-only", "developer", "emergency-admin"][i];
            let body = if body.is_null() {
                None
            } else {
                Some(body.clone())
            };
            let (status, answer) = s.call(method, path, Some(&tokens[i]), body).await;
            let allowed = status != 403;
            if allowed != expect_allowed {
                failures.push(format!("{tier}: {method} {path} -> {status} {answer}"));
            }
            if !expect_allowed && status == 403 {
                assert_eq!(
                    answer,
                    json!({"errors": ["permission denied"]}),
                    "{tier} {method} {path}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected decisions:\n{}",
        failures.join("\n")
    );

    // A developer cannot hand out policies it does not hold.
    let (status, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&tokens[1]),
            Some(json!({"policies": ["emergency-admin"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("subset"));

    // capabilities-self answers exactly what the engine decides.
    let (_, caps) = s
        .call(
            "POST",
            "sys/capabilities-self",
            Some(&tokens[0]),
            Some(json!({"paths": ["secret/data/app/config", "sys/seal"]})),
        )
        .await;
    assert_eq!(caps["data"]["secret/data/app/config"], json!(["read"]));
    assert_eq!(caps["data"]["sys/seal"], json!(["deny"]));
    let (_, caps) = s
        .call(
            "POST",
            "sys/capabilities",
            Some(&root),
            Some(json!({"token": tokens[2], "path": "sys/seal"})),
        )
        .await;
    assert_eq!(caps["data"]["capabilities"], json!(["deny"]));
    let (_, looked) = s
        .call("GET", "auth/token/lookup-self", Some(&tokens[2]), None)
        .await;
    let acc = looked["data"]["accessor"].as_str().unwrap();
    let (_, caps) = s
        .call(
            "POST",
            "sys/capabilities-accessor",
            Some(&root),
            Some(json!({"accessor": acc, "path": "secret/data/x"})),
        )
        .await;
    assert_eq!(
        caps["data"]["capabilities"],
        json!(["create", "delete", "patch", "read", "update"])
    );
}

#[tokio::test]
async fn policy_store_crud_and_enforcement() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (keys, root) = s.ready().await;
    let r = Some(root.as_str());
    let policy = "path \"secret/data/app/*\" {\n  capabilities = [\"read\", \"create\", \"update\"]\n  allowed_parameters = { \"env\" = [\"dev\", \"stage\"] }\n}\n";
    assert_eq!(
        s.call(
            "PUT",
            "sys/policies/acl/App",
            r,
            Some(json!({"policy": policy}))
        )
        .await
        .0,
        204
    );
    let (_, got) = s.call("GET", "sys/policies/acl/app", r, None).await;
    assert_eq!(got["data"]["name"], "app");
    assert_eq!(got["data"]["policy"], policy);
    let (_, list) = s.call("LIST", "sys/policies/acl", r, None).await;
    for name in [
        "app",
        "default",
        "root",
        "read-only",
        "developer",
        "emergency-admin",
    ] {
        assert!(
            list["data"]["keys"]
                .as_array()
                .unwrap()
                .contains(&json!(name)),
            "{name} in {list}"
        );
    }
    // A bad policy is refused with line and reason; nothing is stored.
    let (status, body) = s
        .call(
            "PUT",
            "sys/policies/acl/bad",
            r,
            Some(json!({"policy": "path \"a\" {\n capabilities = [\"reed\"]\n}"})),
        )
        .await;
    assert_eq!(status, 400);
    let msg = body["errors"][0].as_str().unwrap();
    assert!(msg.contains("line 1") && msg.contains("reed"), "{msg}");
    assert_eq!(s.call("GET", "sys/policies/acl/bad", r, None).await.0, 404);
    assert_eq!(
        s.call(
            "PUT",
            "sys/policies/acl/root",
            r,
            Some(json!({"policy": policy}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        s.call("DELETE", "sys/policies/acl/root", r, None).await.0,
        400
    );
    assert_eq!(
        s.call("DELETE", "sys/policies/acl/default", r, None)
            .await
            .0,
        400
    );
    // Legacy path.
    let (_, legacy) = s.call("GET", "sys/policy/app", r, None).await;
    assert_eq!(legacy["data"]["rules"], policy);

    // Enforcement, including allowed_parameters inside a KV v2 write's data.
    let (_, t) = s
        .call(
            "POST",
            "auth/token/create",
            r,
            Some(json!({"policies": ["app"]})),
        )
        .await;
    let t = t["auth"]["client_token"].as_str().unwrap().to_owned();
    let tk = Some(t.as_str());
    assert_eq!(
        s.call(
            "POST",
            "secret/data/app/a",
            tk,
            Some(json!({"data": {"env": "dev"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.call(
            "POST",
            "secret/data/app/a",
            tk,
            Some(json!({"data": {"env": "prod"}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "secret/data/app/a",
            tk,
            Some(json!({"data": {"other": "x"}}))
        )
        .await
        .0,
        403
    );
    assert_eq!(s.call("GET", "secret/data/app/a", tk, None).await.0, 200);
    assert_eq!(s.call("GET", "secret/data/other", tk, None).await.0, 403);
    // Changing the policy takes effect at once (the compiled cache is invalidated).
    assert_eq!(
        s.call(
            "PUT",
            "sys/policies/acl/app",
            r,
            Some(json!({"policy": "path \"secret/data/other\" { capabilities = [\"read\"] }"}))
        )
        .await
        .0,
        204
    );
    assert_eq!(s.call("GET", "secret/data/app/a", tk, None).await.0, 403);
    assert_eq!(s.call("GET", "secret/data/other", tk, None).await.0, 404);
    assert_eq!(
        s.call("DELETE", "sys/policies/acl/app", r, None).await.0,
        204
    );
    assert_eq!(s.call("GET", "secret/data/other", tk, None).await.0, 403);
    // Create vs update: a create-only policy may write a new secret but not overwrite it.
    s.call(
        "PUT",
        "sys/policies/acl/create-only",
        r,
        Some(json!({"policy": "path \"secret/data/drop/*\" { capabilities = [\"create\"] }"})),
    )
    .await;
    let (_, t2) = s
        .call(
            "POST",
            "auth/token/create",
            r,
            Some(json!({"policies": ["create-only"]})),
        )
        .await;
    let t2 = t2["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(
            "POST",
            "secret/data/drop/new",
            Some(&t2),
            Some(json!({"data": {"a": "1"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.call(
            "POST",
            "secret/data/drop/new",
            Some(&t2),
            Some(json!({"data": {"a": "2"}}))
        )
        .await
        .0,
        403
    );
    // Policies survive a restart.
    let mut s = s;
    s.restart();
    s.unseal(&keys).await;
    let (status, got) = s
        .call("GET", "sys/policies/acl/create-only", Some(&root), None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        s.call(
            "POST",
            "secret/data/drop/new",
            Some(&t2),
            Some(json!({"data": {"a": "3"}}))
        )
        .await
        .0,
        403
    );
}

/// A token holding only `policies`, made by root.
async fn token_with(s: &TestServer, root: &str, policies: &[&str]) -> String {
    let (st, body) = s
        .call(
            "POST",
            "auth/token/create",
            Some(root),
            Some(json!({"policies": policies, "ttl": "1h"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    body["auth"]["client_token"].as_str().unwrap().to_owned()
}

async fn key_term(s: &TestServer, root: &str) -> u64 {
    let (st, body) = s.call("GET", "sys/key-status", Some(root), None).await;
    assert_eq!(st, 200, "{body}");
    body["data"]["term"].as_u64().unwrap()
}

const PW: &str = "correct horse battery staple";
/// What an admin sets at creation; enrolment replaces it with [`PW`].
const ADMIN_PW: &str = "admin-chosen first password";

/// emergency-admin fixes production; it never administers people, their
/// factors, the userpass configuration or the keys, so nothing it does
/// outlives its grant.
#[tokio::test]
async fn emergency_admin_cannot_administer_people_or_keys() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());
    let (st, _) = s
        .call(
            "POST",
            "sys/auth/userpass",
            r,
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(st, 204);
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            r,
            Some(json!({"password": PW, "token_policies": ["developer"]})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let ea = token_with(&s, &root, &["emergency-admin"]).await;
    let ea = Some(ea.as_str());

    // A user of its own, with its own policy and a TTL beyond the grant.
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/mallory",
            ea,
            Some(
                json!({"password": PW, "token_policies": ["emergency-admin"], "token_ttl": "768h"}),
            ),
        )
        .await;
    assert_eq!(st, 403, "create a user: {body}");
    assert_eq!(
        s.call("GET", "auth/userpass/users/mallory", r, None)
            .await
            .0,
        404,
        "no user was made"
    );
    // The mount's second-factor requirement.
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/config",
            ea,
            Some(json!({"require_mfa": false})),
        )
        .await;
    assert_eq!(st, 403, "require_mfa off: {body}");
    let (_, config) = s.call("GET", "auth/userpass/config", r, None).await;
    assert_eq!(config["data"]["require_mfa"], true);
    // Another person's password, factor and policies.
    for (method, path, body) in [
        (
            "POST",
            "auth/userpass/users/alice/password",
            json!({"password": "another long enough password"}),
        ),
        ("DELETE", "auth/userpass/users/alice/totp", json!(null)),
        (
            "POST",
            "auth/userpass/users/alice/policies",
            json!({"token_policies": ["emergency-admin"]}),
        ),
        ("DELETE", "auth/userpass/users/alice", json!(null)),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (st, answer) = s.call(method, path, ea, body).await;
        assert_eq!(st, 403, "{method} {path}: {answer}");
    }
    // The keyring, by either name.
    let term = key_term(&s, &root).await;
    for path in ["sys/rotate/keyring", "sys/rotate"] {
        let (st, body) = s.call("POST", path, ea, None).await;
        assert_eq!(st, 403, "{path}: {body}");
    }
    assert_eq!(
        key_term(&s, &root).await,
        term,
        "the keyring did not rotate"
    );

    // What it is for still works: every team's secrets, and revoking a token.
    let (st, body) = s
        .call(
            "POST",
            "secret/data/teams/search/api",
            ea,
            Some(json!({"data": {"k": "rotated"}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let victim = token_with(&s, &root, &["read-only"]).await;
    let (st, body) = s
        .call(
            "POST",
            "auth/token/revoke",
            ea,
            Some(json!({"token": victim})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&victim), None)
            .await
            .0,
        403
    );
}

/// Rotating the keyring is root-protected under both of its names: `update`
/// alone is not enough, `update` with `sudo` is.
#[tokio::test]
async fn keyring_rotation_needs_sudo_under_every_name() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());
    for (name, caps) in [
        ("rotator", r#"["update"]"#),
        ("rotator-sudo", r#"["update", "sudo"]"#),
    ] {
        let policy = format!(
            "path \"sys/rotate\" {{ capabilities = {caps} }}\npath \"sys/rotate/keyring\" {{ capabilities = {caps} }}\n"
        );
        let (st, body) = s
            .call(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                r,
                Some(json!({ "policy": policy })),
            )
            .await;
        assert_eq!(st, 204, "{body}");
    }
    let plain = token_with(&s, &root, &["rotator"]).await;
    let sudo = token_with(&s, &root, &["rotator-sudo"]).await;
    let term = key_term(&s, &root).await;
    for path in ["sys/rotate", "sys/rotate/keyring"] {
        let (st, body) = s.call("POST", path, Some(&plain), None).await;
        assert_eq!(st, 403, "{path} without sudo: {body}");
    }
    assert_eq!(key_term(&s, &root).await, term);
    let mut expected = term;
    for path in ["sys/rotate", "sys/rotate/keyring"] {
        let (st, body) = s.call("POST", path, Some(&sudo), None).await;
        assert_eq!(st, 204, "{path} with sudo: {body}");
        expected += 1;
        assert_eq!(key_term(&s, &root).await, expected, "{path} rotated");
    }
    // Other spellings reach no handler at all.
    for path in ["sys/rotate/keyring/", "sys/rotate/", "sys/Rotate"] {
        let (st, body) = s.call("POST", path, Some(&sudo), None).await;
        assert_ne!(st / 100, 2, "{path}: {st} {body}");
    }
    assert_eq!(key_term(&s, &root).await, expected);
}

/// A developer (a person of team payments, logged in with password and code)
/// cannot destroy versions: not through `destroy/`, not by deleting the
/// metadata, not by shrinking `max_versions` or setting `delete_version_after`.
#[tokio::test]
async fn developer_cannot_destroy_versions() {
    use coffer_tests::totp::{code, enrol, seconds_left_in_step};
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());
    if seconds_left_in_step() < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    s.call(
        "POST",
        "sys/auth/userpass",
        r,
        Some(json!({"type": "userpass"})),
    )
    .await;
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            r,
            Some(json!({"password": ADMIN_PW, "token_policies": ["developer"], "metadata": {"team": "payments"}})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let enrolled = enrol(&s, &root, "alice", ADMIN_PW, PW).await;
    let (st, login) = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": PW, "totp": code(&enrolled.secret, 0)})),
        )
        .await;
    assert_eq!(st, 200, "{login}");
    let alice = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let a = Some(alice.as_str());
    let secret = "teams/payments/api";
    for v in 1..=3 {
        let (st, body) = s
            .call(
                "POST",
                &format!("secret/data/{secret}"),
                a,
                Some(json!({"data": {"v": v}})),
            )
            .await;
        assert_eq!(st, 200, "write {v}: {body}");
    }
    for (method, path, body) in [
        ("DELETE", format!("secret/metadata/{secret}"), json!(null)),
        (
            "POST",
            format!("secret/metadata/{secret}"),
            json!({"max_versions": 1}),
        ),
        (
            "POST",
            format!("secret/metadata/{secret}"),
            json!({"delete_version_after": "1s"}),
        ),
        (
            "POST",
            format!("secret/metadata/{secret}"),
            json!({"max_versions": 1, "custom_metadata": {"owner": "payments"}}),
        ),
        (
            "POST",
            format!("secret/destroy/{secret}"),
            json!({"versions": [1]}),
        ),
    ] {
        let sent = (!body.is_null()).then(|| body.clone());
        let (st, answer) = s.call(method, &path, a, sent).await;
        assert_eq!(st, 403, "{method} {path} {body}: {answer}");
    }
    // One more write would prune beyond max_versions if it had been lowered.
    let (st, _) = s
        .call(
            "POST",
            &format!("secret/data/{secret}"),
            a,
            Some(json!({"data": {"v": 4}})),
        )
        .await;
    assert_eq!(st, 200);
    for v in 1..=4 {
        let (st, body) = s
            .call("GET", &format!("secret/data/{secret}?version={v}"), r, None)
            .await;
        assert_eq!(st, 200, "version {v} survives: {body}");
        assert_eq!(body["data"]["data"]["v"], v);
    }
    // What a developer may still do with its metadata.
    let (st, body) = s
        .call(
            "POST",
            &format!("secret/metadata/{secret}"),
            a,
            Some(json!({"custom_metadata": {"owner": "payments"}, "cas_required": false})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = s
        .call("GET", &format!("secret/metadata/{secret}"), a, None)
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["current_version"], 4);
}
