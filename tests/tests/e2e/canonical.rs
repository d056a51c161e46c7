//! The object the policy decides on is the object the handler acts on, end to
//! end on both backends: a token denied on a protected user, policy, mount,
//! auth method, lockout or audit device tries other spellings of its name
//! (case, doubled or trailing slashes, padding, control characters, dot
//! segments). Every attempt is refused, and each protected object is checked
//! unchanged afterwards.
//!
//! Every request here goes through `raw_call`: the paths are sent exactly as written,
//! percent-escapes and all, which is the point of these tests.

use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PW: &str = "correct horse battery staple";
const NEW_PW: &str = "an attacker's new password";
const ADMIN_POLICY: &str = "path \"secret/*\" { capabilities = [\"read\"] }";

/// What the attacker may do: wide wildcards, each protected object denied by
/// its exact, canonical name (as an operator writes it).
fn attacker_policy(accessor: &str) -> String {
    let all = r#"capabilities = ["create", "read", "update", "delete", "list", "sudo"]"#;
    format!(
        r#"
path "auth/userpass/users/*" {{ {all} }}
path "auth/userpass/users/admin" {{ capabilities = ["deny"] }}
path "auth/userpass/users/admin/*" {{ capabilities = ["deny"] }}
path "sys/policies/acl/*" {{ {all} }}
path "sys/policies/acl/admin" {{ capabilities = ["deny"] }}
path "sys/policy/*" {{ {all} }}
path "sys/policy/admin" {{ capabilities = ["deny"] }}
path "sys/mounts/*" {{ {all} }}
path "sys/mounts/secret" {{ capabilities = ["deny"] }}
path "sys/mounts/secret/tune" {{ capabilities = ["deny"] }}
path "sys/auth/*" {{ {all} }}
path "sys/auth/userpass" {{ capabilities = ["deny"] }}
path "sys/auth/userpass/tune" {{ capabilities = ["deny"] }}
path "sys/audit/*" {{ {all} }}
path "sys/audit/file" {{ capabilities = ["deny"] }}
path "sys/locked-users/*" {{ {all} }}
path "sys/locked-users/{accessor}/unlock/admin" {{ capabilities = ["deny"] }}
"#
    )
}

/// Sends a request with a request-target exactly as given (reqwest would
/// resolve `.`/`..` and `%2e` segments before sending).
async fn raw(s: &TestServer, method: &str, target: &str, token: &str) -> (u16, Value) {
    let host = s.addr.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    (status, json)
}

struct Setup {
    s: TestServer,
    root: String,
    attacker: String,
    accessor: String,
}

async fn setup(backend: Backend) -> Option<Setup> {
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());
    let ok = |(st, body): (u16, Value), what: &str| assert!(st < 300, "{what}: {st} {body}");
    ok(
        s.raw_call(
            "POST",
            "sys/auth/userpass",
            r,
            Some(json!({"type": "userpass"})),
        )
        .await,
        "enable userpass",
    );
    ok(
        s.raw_call(
            "POST",
            "auth/userpass/config",
            r,
            Some(json!({"require_mfa": false})),
        )
        .await,
        "config",
    );
    ok(
        s.raw_call(
            "POST",
            "auth/userpass/users/admin",
            r,
            Some(json!({"password": PW, "token_policies": ["admin"]})),
        )
        .await,
        "create admin",
    );
    ok(
        s.raw_call(
            "PUT",
            "sys/policies/acl/admin",
            r,
            Some(json!({"policy": ADMIN_POLICY})),
        )
        .await,
        "admin policy",
    );
    ok(
        s.raw_call(
            "POST",
            "secret/data/app",
            r,
            Some(json!({"data": {"k": "v"}})),
        )
        .await,
        "secret",
    );
    let log = s.dir().join("audit.log");
    ok(
        s.raw_call(
            "PUT",
            "sys/audit/file",
            r,
            Some(json!({"type": "file", "options": {"file_path": log.display().to_string()}})),
        )
        .await,
        "audit device",
    );
    let (_, auth) = s.raw_call("GET", "sys/auth", r, None).await;
    let accessor = auth["data"]["userpass/"]["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        s.raw_call(
            "PUT",
            "sys/policies/acl/attacker",
            r,
            Some(json!({"policy": attacker_policy(&accessor)})),
        )
        .await,
        "attacker policy",
    );
    let (st, body) = s
        .raw_call(
            "POST",
            "auth/token/create",
            r,
            Some(json!({"policies": ["attacker"], "ttl": "1h"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let attacker = body["auth"]["client_token"].as_str().unwrap().to_owned();
    Some(Setup {
        s,
        root,
        attacker,
        accessor,
    })
}

/// Every attempt must be refused (4xx); collects those that were not.
async fn attempts(t: &Setup, list: &[(&str, &str, Option<Value>)], failures: &mut Vec<String>) {
    for (method, path, body) in list {
        let (st, answer) =
            t.s.raw_call(method, path, Some(&t.attacker), body.clone())
                .await;
        if !(400..500).contains(&st) {
            failures.push(format!("{method} {path} -> {st} {answer}"));
        }
    }
}

async fn login(s: &TestServer, user: &str, password: &str) -> u16 {
    s.raw_call(
        "POST",
        &format!("auth/userpass/login/{user}"),
        None,
        Some(json!({ "password": password })),
    )
    .await
    .0
}

async fn userpass_names(t: &Setup) {
    let mut failures = Vec::new();
    let pw = || Some(json!({"password": NEW_PW, "token_policies": ["root-ish"]}));
    attempts(
        t,
        &[
            ("POST", "auth/userpass/users/ADMIN", pw()),
            ("POST", "auth/userpass/users/Admin/password", pw()),
            ("POST", "auth/userpass/users/ADMIN/policies", pw()),
            ("POST", "auth/userpass/users/%20admin/password", pw()),
            ("POST", "auth/userpass/users/admin%20/password", pw()),
            ("POST", "auth/userpass/users/admin%09/password", pw()),
            ("POST", "auth/userpass/users/%0aadmin/password", pw()),
            ("POST", "auth/userpass/users//admin/password", pw()),
            ("POST", "auth/userpass/users/admin/", pw()),
            ("DELETE", "auth/userpass/users/ADMIN/totp", None),
            ("DELETE", "auth/userpass/users/ADMIN", None),
        ],
        &mut failures,
    )
    .await;
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    let (st, user) =
        t.s.raw_call("GET", "auth/userpass/users/admin", Some(&t.root), None)
            .await;
    assert_eq!(st, 200, "admin still exists: {user}");
    assert_eq!(user["data"]["token_policies"], json!(["admin"]));
    assert_eq!(
        login(&t.s, "admin", NEW_PW).await,
        400,
        "password unchanged"
    );
    assert_eq!(login(&t.s, "admin", PW).await, 200, "password unchanged");
    // Vault's behaviour for valid input: user names are case-insensitive.
    assert_eq!(login(&t.s, "ADMIN", PW).await, 200);
    // A padded name is not silently trimmed into another user's name.
    assert_eq!(login(&t.s, "%20admin", PW).await, 400);
    // sys/capabilities-self answers for the path a request would be decided on.
    for path in ["auth/userpass/users/ADMIN", "auth/userpass/users/ admin"] {
        let (st, caps) =
            t.s.raw_call(
                "POST",
                "sys/capabilities-self",
                Some(&t.attacker),
                Some(json!({ "path": path })),
            )
            .await;
        assert_eq!(
            (st, &caps["capabilities"]),
            (200, &json!(["deny"])),
            "{path}: {caps}"
        );
    }
}

async fn policy_names(t: &Setup) {
    let mut failures = Vec::new();
    let grab = || {
        Some(
            json!({"policy": "path \"*\" { capabilities = [\"sudo\", \"read\", \"update\", \"create\", \"delete\", \"list\"] }"}),
        )
    };
    attempts(
        t,
        &[
            ("PUT", "sys/policies/acl/ADMIN", grab()),
            ("PUT", "sys/policies/acl/Admin", grab()),
            ("PUT", "sys/policies/acl/%20admin", grab()),
            ("PUT", "sys/policies/acl/admin%0a", grab()),
            ("PUT", "sys/policies/acl/admin/", grab()),
            ("PUT", "sys/policy/ADMIN", grab()),
            ("DELETE", "sys/policies/acl/ADMIN", None),
            ("DELETE", "sys/policy/Admin", None),
        ],
        &mut failures,
    )
    .await;
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    let (st, p) =
        t.s.raw_call("GET", "sys/policies/acl/admin", Some(&t.root), None)
            .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["data"]["policy"], json!(ADMIN_POLICY), "policy unchanged");
    // Valid input as in Vault: a policy name is read case-insensitively.
    let (st, p) =
        t.s.raw_call("GET", "sys/policies/acl/ADMIN", Some(&t.root), None)
            .await;
    assert_eq!((st, &p["data"]["name"]), (200, &json!("admin")), "{p}");
}

async fn mounts_and_auth(t: &Setup) {
    let mut failures = Vec::new();
    let tune = || Some(json!({"description": "pwned", "default_lease_ttl": "1s"}));
    attempts(
        t,
        &[
            ("DELETE", "sys/mounts//secret", None),
            ("DELETE", "sys/mounts/secret/", None),
            ("DELETE", "sys/mounts/secret//", None),
            ("DELETE", "sys/mounts/%2Fsecret", None),
            ("DELETE", "sys/mounts/%20secret", None),
            ("POST", "sys/mounts//secret/tune", tune()),
            ("POST", "sys/mounts/secret//tune", tune()),
            ("POST", "sys/mounts/secret/tune/", tune()),
            ("DELETE", "sys/auth//userpass", None),
            ("DELETE", "sys/auth/userpass/", None),
            ("DELETE", "sys/auth/%2Fuserpass", None),
            ("POST", "sys/auth//userpass/tune", tune()),
        ],
        &mut failures,
    )
    .await;
    for target in [
        "/v1/sys/mounts/x/../secret",
        "/v1/sys/mounts/./secret",
        "/v1/sys/mounts/x/%2e%2e/secret",
        "/v1/sys/auth/x/../userpass",
        "/v1//sys/mounts/secret",
    ] {
        let (st, answer) = raw(&t.s, "DELETE", target, &t.attacker).await;
        if st != 400 {
            failures.push(format!("DELETE {target} -> {st} {answer}"));
        }
    }
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    let r = Some(t.root.as_str());
    let (_, mounts) = t.s.raw_call("GET", "sys/mounts", r, None).await;
    assert_eq!(mounts["data"]["secret/"]["type"], json!("kv"), "{mounts}");
    assert_eq!(mounts["data"]["secret/"]["description"], json!(""));
    let (st, secret) = t.s.raw_call("GET", "secret/data/app", r, None).await;
    assert_eq!(
        (st, &secret["data"]["data"]),
        (200, &json!({"k": "v"})),
        "data kept"
    );
    let (_, auth) = t.s.raw_call("GET", "sys/auth", r, None).await;
    assert_eq!(auth["data"]["userpass/"]["type"], json!("userpass"));
    let (st, _) =
        t.s.raw_call("GET", "auth/userpass/users/admin", r, None)
            .await;
    assert_eq!(st, 200, "users kept");
    // Valid input as in Vault: a mount path may be given with one trailing slash.
    let (st, body) =
        t.s.raw_call(
            "POST",
            "sys/mounts/scratch/",
            r,
            Some(json!({"type": "kv-v2"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (_, mounts) = t.s.raw_call("GET", "sys/mounts", r, None).await;
    assert_eq!(mounts["data"]["scratch/"]["type"], json!("kv"));
}

async fn audit_devices(t: &Setup) {
    let mut failures = Vec::new();
    attempts(
        t,
        &[
            ("DELETE", "sys/audit//file", None),
            ("DELETE", "sys/audit/file/", None),
            ("DELETE", "sys/audit/%2Ffile", None),
            ("DELETE", "sys/audit/file%00", None),
            (
                "PUT",
                "sys/audit//file",
                Some(json!({"type": "file", "options": {"file_path": "/tmp/x"}})),
            ),
        ],
        &mut failures,
    )
    .await;
    let (st, answer) = raw(&t.s, "DELETE", "/v1/sys/audit/x/../file", &t.attacker).await;
    if st != 400 {
        failures.push(format!("DELETE sys/audit/x/../file -> {st} {answer}"));
    }
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    let (_, listed) = t.s.raw_call("GET", "sys/audit", Some(&t.root), None).await;
    assert_eq!(listed["data"]["file/"]["type"], json!("file"), "{listed}");
}

async fn locked_users(t: &Setup) {
    for _ in 0..5 {
        assert_eq!(login(&t.s, "admin", "wrong password").await, 400);
    }
    let locked = || async {
        let (_, l) =
            t.s.raw_call("GET", "sys/locked-users", Some(&t.root), None)
                .await;
        l["data"]["by_namespace"][0]["mount_accessors"][0]["alias_identifiers"].clone()
    };
    assert_eq!(locked().await, json!(["admin"]));
    let acc = &t.accessor;
    let mut failures = Vec::new();
    attempts(
        t,
        &[
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock/ADMIN"),
                None,
            ),
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock/Admin"),
                None,
            ),
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock/%20admin"),
                None,
            ),
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock/admin%09"),
                None,
            ),
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock/admin/"),
                None,
            ),
            (
                "POST",
                &format!("sys/locked-users/{acc}/unlock//admin"),
                None,
            ),
        ],
        &mut failures,
    )
    .await;
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    assert_eq!(locked().await, json!(["admin"]), "still locked");
    // Root unlocks with any case, as in Vault.
    let path = format!("sys/locked-users/{acc}/unlock/ADMIN");
    let (st, body) = t.s.raw_call("POST", &path, Some(&t.root), None).await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(locked().await, Value::Null);
}

/// Control characters anywhere, including percent-decoded ones, are refused
/// with a message that says why, not a 404 or a rewritten path.
async fn refusals_say_why(t: &Setup) {
    let r = Some(t.root.as_str());
    for path in [
        "secret/data/a%00b",
        "secret/data/a%0ab",
        "secret/data/a%09b",
        "secret/data//app",
        "secret/data/%20app",
        "sys/seal-status%00",
    ] {
        let (st, body) = t.s.raw_call("GET", path, r, None).await;
        assert_eq!(st, 400, "{path}: {body}");
        let message = body["errors"][0].as_str().unwrap_or_default();
        assert!(message.contains("path"), "{path}: {body}");
    }
    // KV paths stay case-sensitive (as in Vault): no folding there.
    let (st, _) = t.s.raw_call("GET", "secret/data/APP", r, None).await;
    assert_eq!(st, 404);
    // LIST keeps its one trailing slash.
    let (st, body) = t.s.raw_call("LIST", "secret/metadata/", r, None).await;
    assert_eq!(
        (st, &body["data"]["keys"]),
        (200, &json!(["app"])),
        "{body}"
    );
}

/// One test per case and backend, so each shows on its own.
macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $case() {
                if let Some(t) = super::setup(super::Backend::Sqlite).await {
                    super::$case(&t).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $case() {
                if let Some(t) = super::setup(super::Backend::Postgres).await {
                    super::$case(&t).await;
                }
            })*
        }
    };
}

cases!(
    userpass_names,
    policy_names,
    mounts_and_auth,
    audit_devices,
    locked_users,
    refusals_say_why,
);
