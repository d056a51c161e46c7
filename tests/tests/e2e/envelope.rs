//! Every answer is one the client libraries decode: a walk over every path the
//! server serves (`Core::served_paths`: the fixed `sys/` and `auth/token/`
//! paths and every registered engine's, so a new one is walked without
//! touching this file) and every operation it serves,
//! called with a root token on a dev server. Each 200 answer carries Vault's
//! whole envelope in Vault's types (vaultrs refuses one without `request_id`,
//! `lease_id`, `lease_duration` or `renewable`; node-vault reads `auth` and
//! `data` without checking), each 204 is empty, and each error is
//! `{"errors": [strings]}` and nothing else.

use coffer_tests::TestServer;
use serde_json::{json, Value};

const ROOT: &str = "envelope-walk-root";

/// Answers Vault gives bare (no envelope) on these paths.
const BARE: &[&str] = &[
    "sys/init",
    "sys/seal-status",
    "sys/unseal",
    "sys/health",
    "sys/leader",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/rekey/init",
    "sys/rekey/update",
    // OpenID documents, bare as Vault serves them
    "identity/oidc/.well-known/openid-configuration",
    "identity/oidc/.well-known/keys",
];

#[derive(Debug)]
struct Row {
    /// "fixed", or the engine kind of the mount it is below
    kind: String,
    pattern: String,
    /// "R", "L", "W", "P", "D"
    ops: Vec<String>,
}

/// Every served path, as the server declares them.
fn rows() -> Vec<Row> {
    use coffer_server::logical::Operation;
    let registry = coffer_server::engines::builtin();
    coffer_server::core::Core::served_paths(&registry)
        .into_iter()
        .map(|(kind, spec)| Row {
            kind: kind.unwrap_or("fixed").to_owned(),
            pattern: spec.pattern.to_owned(),
            ops: [
                ("R", Operation::Read),
                ("L", Operation::List),
                ("W", Operation::Update),
                ("P", Operation::Patch),
                ("D", Operation::Delete),
            ]
            .into_iter()
            .filter(|(_, op)| spec.ops.has(*op))
            .map(|(name, _)| name.to_owned())
            .collect(),
        })
        .collect()
}

/// Whether a JSON value has the expected type.
type TypeCheck = fn(&Value) -> bool;

/// Asserts Vault's envelope, in Vault's types.
fn assert_envelope(what: &str, v: &Value) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for key in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(o.contains_key(key), "{what}: no {key}: {v}");
    }
    assert!(
        o["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: request_id {v}"
    );
    assert!(o["lease_id"].is_string(), "{what}: lease_id {v}");
    assert!(o["renewable"].is_boolean(), "{what}: renewable {v}");
    assert!(o["lease_duration"].is_u64(), "{what}: lease_duration {v}");
    assert!(
        o["data"].is_null() || o["data"].is_object(),
        "{what}: data {v}"
    );
    assert!(
        o["wrap_info"].is_null() || o["wrap_info"].is_object(),
        "{what}: wrap_info {v}"
    );
    assert!(
        o["warnings"].is_null()
            || o["warnings"]
                .as_array()
                .is_some_and(|w| !w.is_empty() && w.iter().all(Value::is_string)),
        "{what}: warnings must be null or a non-empty list of strings: {v}"
    );
    match &o["auth"] {
        Value::Null => {}
        Value::Object(a) => {
            let types: [(&str, TypeCheck); 9] = [
                ("client_token", Value::is_string),
                ("accessor", Value::is_string),
                ("policies", |p| p.is_null() || p.is_array()),
                ("token_policies", |p| p.is_null() || p.is_array()),
                ("metadata", |m| m.is_null() || m.is_object()),
                ("lease_duration", Value::is_u64),
                ("renewable", Value::is_boolean),
                ("entity_id", Value::is_string),
                ("orphan", Value::is_boolean),
            ];
            for (key, ok) in types {
                assert!(
                    a.get(key).is_some_and(ok),
                    "{what}: auth.{key} missing or of the wrong type: {v}"
                );
            }
            assert!(
                a.get("token_type").is_some_and(Value::is_string),
                "{what}: {v}"
            );
        }
        other => panic!("{what}: auth is {other}"),
    }
    assert!(
        o["data"].is_object() || o["auth"].is_object() || o["warnings"].is_array(),
        "{what}: a 200 envelope says something: {v}"
    );
}

/// Asserts `{"errors": [strings]}` and nothing else.
fn assert_errors(what: &str, v: &Value) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: error body is not a JSON object: {v}"));
    assert_eq!(o.len(), 1, "{what}: only 'errors' in an error body: {v}");
    assert!(
        o["errors"]
            .as_array()
            .is_some_and(|e| e.iter().all(Value::is_string)),
        "{what}: errors is a list of strings: {v}"
    );
}

/// The body sent with a write or patch of `path`.
fn body_for(path: &str, op: &str) -> Option<Value> {
    if op == "P" {
        return Some(match path {
            p if p.contains("/metadata/") => json!({"max_versions": 7}),
            _ => json!({"data": {"patched": "yes"}}),
        });
    }
    if op != "W" {
        return None;
    }
    Some(match path {
        "sys/mounts/walk-kv" => json!({"type": "kv", "options": {"version": "2"}}),
        "sys/mounts/secret/tune" => json!({"max_lease_ttl": "768h"}),
        "sys/auth/walk-up" => json!({"type": "userpass"}),
        "sys/policies/acl/walk-acl" => {
            json!({"policy": "path \"secret/data/walk/*\" {\n  capabilities = [\"read\"]\n}\n"})
        }
        "sys/policy/walk-legacy" => {
            json!({"rules": "path \"secret/data/walk/*\" {\n  capabilities = [\"read\"]\n}\n"})
        }
        "sys/capabilities-self" => json!({"paths": ["secret/data/walk/a"]}),
        "sys/capabilities" => json!({"token": ROOT, "paths": ["secret/data/walk/a"]}),
        "sys/audit-hash/walk-file" => json!({"input": "x"}),
        "sys/mfa/validate" => json!({"mfa_request_id": "nope", "mfa_payload": {"x": ["1"]}}),
        "sys/unseal" => json!({"key": "not-a-key"}),
        "sys/init" => json!({"secret_shares": 1, "secret_threshold": 1}),
        "auth/token/create" | "auth/token/create-orphan" => json!({"ttl": "1h"}),
        "auth/userpass/login/walker" => json!({"password": WALKER_PW}),
        "auth/userpass/totp/enroll/walker" | "auth/userpass/totp/confirm/walker" => {
            json!({"password": WALKER_PW})
        }
        "auth/userpass/config" => json!({"lockout_threshold": 5}),
        "auth/cert/certs/walk" => {
            json!({"certificate": walk_ca().pem, "token_policies": "default"})
        }
        "auth/cert/crls/walk" => json!({"crl": walk_ca().crl(&[])}),
        "auth/userpass/users/walk-del" => json!({"password": WALKER_PW, "token_ttl": "1h"}),
        "auth/userpass/users/walker/password" => json!({"password": WALKER_PW}),
        "auth/userpass/users/walker/policies" => json!({"token_policies": ["default"]}),
        "secret/config" => json!({"max_versions": 10}),
        "pki/root/generate/internal" | "pki/intermediate/generate/internal" => {
            json!({"common_name": "walk", "key_type": "ec"})
        }
        "pki/roles/walk" => json!({"allow_any_name": true, "key_type": "ec"}),
        "pki/issue/walk" => json!({"common_name": "walk.example"}),
        "pki/config/urls" => json!({"issuing_certificates": "http://127.0.0.1/ca"}),
        "pki/tidy" => json!({"tidy_cert_store": true}),
        // A database nobody listens for: the walk sees Coffer's answers, and
        // creds (which must reach it) the upstream failure below.
        "database/config/walk" => json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/walk",
            "verify_connection": false, "allowed_roles": "*",
        }),
        "database/roles/walk" => json!({"db_name": "walk", "creation_statements": "SELECT 1"}),
        "identity/oidc/key/walk" => json!({"algorithm": "ES256"}),
        "identity/oidc/role/walk" => json!({"key": "walk", "ttl": "5m"}),
        "secret/metadata/walk/meta" => json!({"max_versions": 5}),
        p if p.starts_with("secret/data/") => json!({"data": {"k": "v"}}),
        p if p.starts_with("cubbyhole/") => json!({"k": "v"}),
        p if p.starts_with("secret/delete/")
            || p.starts_with("secret/undelete/")
            || p.starts_with("secret/destroy/") =>
        {
            json!({"versions": [1]})
        }
        _ => json!({}),
    })
}

const WALKER_PW: &str = "a long enough walker password";

/// The CA the walk trusts in auth/cert (its certificate and a CRL of it).
fn walk_ca() -> &'static coffer_tests::tls::TestCa {
    static CA: std::sync::OnceLock<coffer_tests::tls::TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| coffer_tests::tls::TestCa::new("walk CA"))
}

#[tokio::test]
async fn every_route_answers_in_vaults_shapes() {
    let s = TestServer::start_dev(ROOT).await;
    let root = Some(ROOT);
    // Fixtures the routes name.
    let setup: Vec<(&str, &str, Option<Value>)> = vec![
        (
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        ),
        ("POST", "sys/auth/cert", Some(json!({"type": "cert"}))),
        (
            "POST",
            "auth/userpass/users/walker",
            Some(json!({"password": WALKER_PW, "token_policies": ["default"]})),
        ),
        ("POST", "sys/mounts/pki", Some(json!({"type": "pki"}))),
        (
            "POST",
            "sys/mounts/database",
            Some(json!({"type": "database"})),
        ),
        ("POST", "sys/auth/approle", Some(json!({"type": "approle"}))),
        ("POST", "sys/auth/jwt", Some(json!({"type": "jwt"}))),
        (
            "POST",
            "secret/data/walk/a",
            Some(json!({"data": {"k": "v"}})),
        ),
        (
            "POST",
            "secret/data/walk/meta",
            Some(json!({"data": {"k": "v"}})),
        ),
    ];
    for (method, path, body) in setup {
        let (st, answer) = s.call(method, path, root, body).await;
        assert!(
            st == 200 || st == 204,
            "setup {method} {path}: {st} {answer}"
        );
    }
    let (_, auths) = s.call("GET", "sys/auth", root, None).await;
    let up_accessor = auths["data"]["userpass/"]["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    // Tokens and accessors for the auth/token routes (each used up by one).
    let mut spare = Vec::new();
    for _ in 0..5 {
        let (_, t) = s
            .call(
                "POST",
                "auth/token/create",
                root,
                Some(json!({"ttl": "1h"})),
            )
            .await;
        spare.push((
            t["auth"]["client_token"].as_str().unwrap().to_owned(),
            t["auth"]["accessor"].as_str().unwrap().to_owned(),
        ));
    }

    let rows = rows();
    assert!(
        rows.len() >= 60,
        "ROUTES parsed: {} rows (routes.rs changed shape?)",
        rows.len()
    );
    let mut enveloped = 0;
    let mut errors = 0;
    let mut walked = Vec::new();
    // What to call: every operation of every row, writes first (they create what
    // the reads read); then every delete, last rows first.
    let mut plan: Vec<(String, String)> = Vec::new();
    let mut deletes: Vec<(String, String)> = Vec::new();
    for row in &rows {
        let concrete = |op: &str| -> String {
            let sub = row
                .pattern
                .split('/')
                .map(|seg| match seg {
                    ":user" if row.pattern == "users/:user" => "walk-del".to_owned(),
                    ":user" => "walker".to_owned(),
                    ":accessor" => up_accessor.clone(),
                    ":name" => "walk".to_owned(),
                    ":policy" if row.pattern.starts_with("sys/policies/") => "walk-acl".to_owned(),
                    ":policy" => "walk-legacy".to_owned(),
                    "*mount" if row.pattern == "sys/mounts/*mount" => "walk-kv".to_owned(),
                    "*mount" if row.pattern == "sys/auth/*mount" => "walk-up".to_owned(),
                    "*mount" if row.pattern.starts_with("sys/auth/") => "userpass".to_owned(),
                    "*mount" => "secret".to_owned(),
                    "*device" => "walk-file".to_owned(),
                    // a LIST names a folder
                    "*path" if op == "L" => "walk".to_owned(),
                    "*path" if row.pattern.starts_with("metadata/") => "walk/meta".to_owned(),
                    "*path" => "walk/a".to_owned(),
                    ":type" => "internal".to_owned(),
                    ":role" => "walk".to_owned(),
                    ":serial" => "ca".to_owned(),
                    lit => lit.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            match row.kind.as_str() {
                "kv" => format!("secret/{sub}"),
                "userpass" => format!("auth/userpass/{sub}"),
                "cert" => format!("auth/cert/{sub}"),
                "cubbyhole" => format!("cubbyhole/{sub}"),
                "pki" => format!("pki/{sub}"),
                "database" => format!("database/{sub}"),
                "approle" => format!("auth/approle/{sub}"),
                "jwt" => format!("auth/jwt/{sub}"),
                "identity" => format!("identity/{sub}"),
                "fixed" => sub,
                other => panic!("no test mount for engine {other}: add it here"),
            }
        };
        if row.pattern == "sys/seal" {
            continue; // last, below: it ends the walk
        }
        let mut ops = row.ops.clone();
        ops.sort_by_key(|o| match o.as_str() {
            "W" => 0,
            "P" => 1,
            "R" => 2,
            "L" => 3,
            _ => 4,
        });
        for op in ops {
            let call = (concrete(&op), op);
            if call.1 == "D" {
                deletes.push(call);
            } else {
                plan.push(call);
            }
        }
    }
    plan.extend(deletes.into_iter().rev());
    for (path, op) in plan {
        {
            let method = match op.as_str() {
                "R" => "GET",
                "L" => "LIST",
                "W" => "POST",
                "P" => "PATCH",
                _ => "DELETE",
            };
            let mut body = body_for(&path, &op);
            // Routes that take a token or accessor in the body, and the one that
            // revokes the token it is called with.
            let mut token = ROOT.to_owned();
            match path.as_str() {
                "auth/token/lookup" | "auth/token/renew" if op == "W" => {
                    body = Some(json!({"token": spare[0].0}));
                }
                "auth/token/lookup-accessor" | "auth/token/renew-accessor" => {
                    body = Some(json!({"accessor": spare[0].1}));
                }
                "sys/capabilities-accessor" => {
                    body = Some(json!({"accessor": spare[0].1, "paths": ["secret/data/walk/a"]}));
                }
                "auth/token/revoke" => body = Some(json!({"token": spare[1].0})),
                "auth/token/revoke-accessor" => body = Some(json!({"accessor": spare[2].1})),
                "auth/token/revoke-orphan" => body = Some(json!({"token": spare[4].0})),
                "auth/token/revoke-self" => token = spare[3].0.clone(),
                _ => {}
            }
            let what = format!("{method} {path}");
            let mut req = s
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}/v1/{path}", s.addr),
                )
                .header("X-Vault-Token", &token);
            if let Some(b) = &body {
                let ct = if op == "P" {
                    "application/merge-patch+json"
                } else {
                    "application/json"
                };
                req = req.header("Content-Type", ct).body(b.to_string());
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let text = resp.text().await.unwrap();
            // Credentials from a database that is not there: the one answer
            // that must be a 500, in the error shape.
            let upstream = path == "database/creds/walk" && op == "R";
            assert!(
                status < 500 || (upstream && status == 500),
                "{what}: {status} {text}"
            );
            walked.push(format!("{what} -> {status}"));
            match status {
                204 => assert!(text.is_empty(), "{what}: 204 with a body: {text}"),
                200 if path == "sys/metrics" => {
                    assert!(ct.starts_with("text/plain"), "{what}: {ct}")
                }
                // PKI's certificates and CRLs, as Vault serves them (DER or PEM).
                200 if ct.starts_with("application/pkix-")
                    || ct.starts_with("application/pem-")
                    || ct.starts_with("application/x-pem-file") =>
                {
                    assert!(!text.is_empty(), "{what}: empty {ct}")
                }
                // PKI's tidy: accepted, in the envelope (as Vault).
                200 | 202 => {
                    assert!(ct.starts_with("application/json"), "{what}: {ct}");
                    let v: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
                    if BARE.contains(&path.as_str()) {
                        assert!(v.is_object() && v.get("errors").is_none(), "{what}: {v}");
                    } else {
                        assert_envelope(&what, &v);
                        enveloped += 1;
                    }
                }
                _ => {
                    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                        panic!("{what}: {status} body is not JSON ({e}): {text}")
                    });
                    // KV answers a deleted version with 404 and its metadata, as Vault.
                    if status == 404 && v.get("data").is_some() {
                        assert_envelope(&what, &v);
                        enveloped += 1;
                    } else {
                        assert_errors(&what, &v);
                        errors += 1;
                    }
                }
            }
        }
    }
    // Sanity: the walk reached the handlers (most routes answer 200 to root).
    assert!(
        enveloped >= 30,
        "only {enveloped} enveloped answers:\n{}",
        walked.join("\n")
    );
    assert!(
        errors >= 3,
        "the walk met errors too:\n{}",
        walked.join("\n")
    );

    // Errors outside the routes keep the shape.
    for (method, path, body) in [
        ("GET", "no/such/mount/x", None),
        ("GET", "sys/no-such-thing", None),
        ("POST", "auth/token/create", Some("{not json")),
        ("PUT", "sys/mounts/secret/tune", Some("[1, 2]")),
        ("TRACE", "sys/mounts", None),
    ] {
        let mut req = s
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/v1/{path}", s.addr),
            )
            .header("X-Vault-Token", ROOT);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status >= 400, "{method} {path}: {status} {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status} not JSON ({e}): {text}"));
        assert_errors(&format!("{method} {path}"), &v);
    }
    for raw_path in ["/v1/secret/data/%FF%FE", "/v1", "/v1/", "/elsewhere"] {
        let resp = s
            .http
            .get(format!("{}{raw_path}", s.addr))
            .header("X-Vault-Token", ROOT)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status >= 400, "{raw_path}: {status} {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{raw_path}: {status} not JSON ({e}): {text}"));
        assert_errors(raw_path, &v);
    }

    // Last: sealing, then the sealed answer.
    let (st, body) = s.call("POST", "sys/seal", root, None).await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = s.call("GET", "secret/data/walk/a", root, None).await;
    assert_eq!(st, 503, "{body}");
    assert_errors("sealed read", &body);
}
