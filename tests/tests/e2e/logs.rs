//! The server log at `trace`, in both formats: it carries request ids and
//! debug detail, and never a token, key share, password, TOTP secret or code,
//! recovery code or secret value.

use coffer_tests::totp::{
    base32_from_url, code, enrol, log_has_code, mfa_requirement, seconds_left_in_step,
};
use coffer_tests::{Backend, Options, TestServer};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "log-test admin-set password 1b2d";
const PASSWORD: &str = "log-test password 7f3c9a";
const SECRET_VALUE: &str = "log-test-secret-b81e44d0";

/// Everything secret the flow handled, to be searched for in the log.
#[derive(Default)]
struct Needles {
    values: Vec<(&'static str, String)>,
    codes: Vec<String>,
}

impl Needles {
    fn add(&mut self, what: &'static str, value: &str) {
        assert!(value.len() >= 8, "{what} is too short to search for");
        self.values.push((what, value.to_owned()));
    }

    fn add_code(&mut self, code: &str) {
        assert_eq!(code.len(), 6);
        self.codes.push(code.to_owned());
    }
}

/// Drives every path that handles a secret: init and unseal, an audit device,
/// userpass enrolment and login with TOTP and a recovery code, failed logins,
/// KV writes and reads, token creation and lookup, a denied request, a seal
/// and unseal. Returns what must not reach the log.
async fn exercise(s: &TestServer) -> Needles {
    let mut needles = Needles::default();
    let (keys, root) = s.ready().await;
    needles.add("root token", &root);
    for key in &keys {
        needles.add("unseal key", key);
    }
    let r = Some(root.as_str());
    let audit_path = s.dir().join("audit.log");
    let (st, body) = s
        .call(
            "PUT",
            "sys/audit/file",
            r,
            Some(json!({"type": "file", "options": {"file_path": audit_path}})),
        )
        .await;
    assert_eq!(st, 204, "{body}");

    // Keep every code of this flow inside one 30-second step.
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
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
            Some(json!({"password": ADMIN_PASSWORD, "token_policies": ["developer"], "metadata": {"team": "payments"}})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    needles.add("password", PASSWORD);
    needles.add("password", ADMIN_PASSWORD);
    let enrolled = enrol(s, &root, "alice", ADMIN_PASSWORD, PASSWORD).await;
    needles.add("enrollment token", &enrolled.enrollment_token);
    let (totp_secret, recovery) = (enrolled.secret, enrolled.recovery);
    needles.add("TOTP secret", base32_from_url(&enrolled.url));
    needles.add_code(&code(&totp_secret, -1));
    for c in &recovery {
        needles.add("recovery code", c);
    }

    // Two-step login: password, then the current code.
    let mfa_login = |body: Value| async move {
        let (st, first) = s
            .call("POST", "auth/userpass/login/alice", None, Some(body))
            .await;
        assert_eq!(st, 200, "{first}");
        mfa_requirement(&first)
    };
    let (req_id, method) = mfa_login(json!({"password": PASSWORD})).await;
    needles.add("MFA request id", &req_id);
    let now_code = code(&totp_secret, 0);
    needles.add_code(&now_code);
    let (st, done) = s
        .call(
            "POST",
            "sys/mfa/validate",
            None,
            Some(json!({"mfa_request_id": req_id, "mfa_payload": {method.clone(): [now_code]}})),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    let alice = done["auth"]["client_token"].as_str().unwrap().to_owned();
    needles.add("alice's token", &alice);

    // A recovery code instead of the TOTP code.
    let (req_id, method) = mfa_login(json!({"password": PASSWORD})).await;
    let (st, done) = s
        .call(
            "POST",
            "sys/mfa/validate",
            None,
            Some(json!({"mfa_request_id": req_id, "mfa_payload": {method: [recovery[0]]}})),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    needles.add(
        "token from a recovery-code login",
        done["auth"]["client_token"].as_str().unwrap(),
    );

    // Failed logins: a wrong password (which looks like a real one) and a wrong code.
    let wrong_password = "log-test wrong password 55aa01";
    let (st, _) = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": wrong_password})),
        )
        .await;
    assert_eq!(st, 400);
    needles.add("wrong password", wrong_password);
    let wrong_code = format!(
        "{:06}",
        (now_code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let (st, _) = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": PASSWORD, "totp": wrong_code})),
        )
        .await;
    assert!(st == 400 || st == 403, "wrong code refused, got {st}");
    needles.add_code(&wrong_code);

    // KV: write, read, patch-free update, and a denied read outside the team.
    let a = Some(alice.as_str());
    let (st, body) = s
        .call(
            "POST",
            "secret/data/teams/payments/db",
            a,
            Some(json!({"data": {"password": SECRET_VALUE}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    needles.add("secret value", SECRET_VALUE);
    let (st, body) = s
        .call("GET", "secret/data/teams/payments/db", a, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["data"]["data"]["password"], SECRET_VALUE);
    let (st, _) = s.call("GET", "secret/data/teams/search/db", a, None).await;
    assert_eq!(st, 403);
    let (st, _) = s
        .call(
            "GET",
            "secret/data/teams/payments/db",
            Some("not-a-token-3c1d"),
            None,
        )
        .await;
    assert_eq!(st, 403);
    needles.add("an invalid token", "not-a-token-3c1d");

    // Tokens: a child, looked up by itself and by accessor, then revoked.
    let (st, child) = s
        .call(
            "POST",
            "auth/token/create",
            r,
            Some(json!({"policies": ["read-only"]})),
        )
        .await;
    assert_eq!(st, 200, "{child}");
    let child_token = child["auth"]["client_token"].as_str().unwrap().to_owned();
    let child_accessor = child["auth"]["accessor"].as_str().unwrap().to_owned();
    needles.add("child token", &child_token);
    needles.add("child accessor", &child_accessor);
    let (st, _) = s
        .call("GET", "auth/token/lookup-self", Some(&child_token), None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call(
            "POST",
            "auth/token/lookup-accessor",
            r,
            Some(json!({"accessor": child_accessor})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call(
            "POST",
            "auth/token/revoke",
            r,
            Some(json!({"token": child_token})),
        )
        .await;
    assert_eq!(st, 204);

    // The audit hash of the secret, then seal and unseal with the key shares.
    let (st, body) = s
        .call(
            "POST",
            "sys/audit-hash/file",
            r,
            Some(json!({"input": SECRET_VALUE})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(s.call("PUT", "sys/seal", r, None).await.0, 204);
    s.unseal(&keys).await;
    let (st, _) = s
        .call("GET", "secret/data/teams/payments/db", a, None)
        .await;
    assert_eq!(st, 200);
    needles
}

fn assert_clean(log: &str, needles: &Needles) {
    for (what, value) in &needles.values {
        assert!(
            !log.contains(value.as_str()),
            "the {what} appears in the server log"
        );
    }
    for code in &needles.codes {
        assert!(
            !log_has_code(log, code),
            "a TOTP code appears in the server log"
        );
    }
}

/// Request ids of the audit file's successful responses on `path`; the log must
/// carry them.
fn audited_request_ids(s: &TestServer, path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(s.dir().join("audit.log")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            e["type"] == "response"
                && e["request"]["path"] == path
                && e["error"].as_str().unwrap_or("").is_empty()
        })
        .map(|e| e["request"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn json_log_at_trace_has_request_ids_and_no_secrets() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        Options {
            top_extra: "log_format = \"json\"".into(),
            log_level: Some("trace".into()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let needles = exercise(&s).await;
    let log = s.log();
    assert_clean(&log, &needles);

    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let levels: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["level"].as_str()).collect();
    for level in ["TRACE", "DEBUG", "INFO"] {
        assert!(
            levels.contains(level),
            "no {level} line at trace: {levels:?}"
        );
    }
    // Every line logged while a request runs names its request.
    let in_request = [
        "request",
        "request authorised",
        "request denied by policy",
        "login step",
    ];
    let mut seen = 0;
    for line in &lines {
        if in_request.contains(&line["message"].as_str().unwrap_or("")) {
            seen += 1;
            let id = line["span"]["request_id"].as_str().unwrap_or("");
            assert!(!id.is_empty(), "request line without request_id: {line}");
        }
    }
    assert!(seen > 20, "only {seen} request lines");
    // The audit entry and the log agree on the request id.
    let ids = audited_request_ids(&s, "secret/data/teams/payments/db");
    assert_eq!(ids.len(), 3, "write, read, read after unseal");
    for id in ids {
        assert!(
            lines
                .iter()
                .any(|l| l["span"]["request_id"] == id.as_str()
                    && l["message"] == "request authorised"),
            "request {id} is not in the log"
        );
    }
}

#[tokio::test]
async fn text_log_at_trace_has_request_ids_and_no_secrets() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        Options {
            log_level: Some("trace".into()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let needles = exercise(&s).await;
    let log = s.log();
    assert_clean(&log, &needles);
    for level in ["TRACE", "DEBUG", " INFO"] {
        assert!(log.contains(level), "no {level} line at trace");
    }
    let authorised: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request authorised"))
        .collect();
    assert!(authorised.len() > 10);
    for line in authorised {
        assert!(line.contains("request_id="), "no request id: {line}");
    }
    for id in audited_request_ids(&s, "secret/data/teams/payments/db") {
        assert!(log.contains(&id), "request {id} is not in the log");
    }
}

#[tokio::test]
async fn info_level_hides_debug_detail() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        Options {
            log_level: Some("info".into()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let (_, root) = s.ready().await;
    let (st, _) = s.call("GET", "sys/mounts", Some(&root), None).await;
    assert_eq!(st, 200);
    let log = s.log();
    assert!(log.contains(" INFO"), "info lines are logged");
    assert!(
        !log.contains("DEBUG") && !log.contains("TRACE"),
        "nothing below info"
    );
    assert!(!log.contains(&root), "root token in the log");
}
