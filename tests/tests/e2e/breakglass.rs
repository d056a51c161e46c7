//! Break-glass end to end, on both backends: alice (developer, password and
//! TOTP) asks for emergency access, bob (an approver) approves with a fresh
//! code, alice fetches the token once, uses it, and it dies on its own; a
//! webhook receiver on loopback sees every event, signed; the report is the
//! audit log's own record and `coffer audit verify` passes over the episode.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_tests::totp::{code, enrol, seconds_left_in_step, Enrolled};
use coffer_tests::{binary, Backend, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PW: &str = "correct horse battery staple";
const ADMIN_PW: &str = "admin-chosen first password";
const WEBHOOK_SECRET: &str = "whsec-test-only";
const APPROVER_POLICY: &str = r#"path "sys/breakglass/approve" { capabilities = ["update"] }"#;

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
struct Delivery {
    event: String,
    signature: String,
    body: String,
}

/// A webhook receiver on loopback: records every POST; answers 500 to the
/// first `fail_first` of them, 200 afterwards.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let count = Arc::new(Mutex::new(0usize));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (s, count) = (s.clone(), count.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(at) = text.find("\r\n\r\n") {
                        let head = text[..at].to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() >= at + 4 + len {
                            break (head, text[at + 4..at + 4 + len].to_owned());
                        }
                    }
                };
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .map(|v| v.trim().to_owned())
                        .unwrap_or_default()
                };
                let n = {
                    let mut c = count.lock().unwrap();
                    *c += 1;
                    *c
                };
                let status = if n <= fail_first {
                    "500 Internal Server Error"
                } else {
                    s.lock().unwrap().push(Delivery {
                        event: header("x-coffer-event"),
                        signature: header("x-coffer-signature"),
                        body,
                    });
                    "200 OK"
                };
                let resp =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    Receiver { url, seen }
}

impl Receiver {
    fn events_of(&self, id: &str) -> Vec<Delivery> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| serde_json::from_str::<Value>(&d.body).unwrap()["id"] == json!(id))
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `event` about `id` arrived.
    async fn wait_for(&self, id: &str, event: &str) -> Delivery {
        for _ in 0..200 {
            if let Some(d) = self.events_of(id).into_iter().find(|d| d.event == event) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {event} event for {id}; saw {:?}", self.events_of(id));
    }
}

struct World {
    s: TestServer,
    keys: Vec<String>,
    root: String,
    alice: String,
    bob: String,
    bob_totp: Enrolled,
    audit_log: std::path::PathBuf,
    hooks: Receiver,
}

async fn person(s: &TestServer, root: &str, name: &str, policies: &[&str]) -> (String, Enrolled) {
    let (st, body) = s
        .call(
            "POST",
            &format!("auth/userpass/users/{name}"),
            Some(root),
            Some(json!({"password": ADMIN_PW, "token_policies": policies, "metadata": {"team": "payments"}})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let enrolled = enrol(s, root, name, ADMIN_PW, PW).await;
    let (st, login) = s
        .call(
            "POST",
            &format!("auth/userpass/login/{name}"),
            None,
            Some(json!({"password": PW, "totp": code(&enrolled.secret, 0)})),
        )
        .await;
    assert_eq!(st, 200, "{login}");
    (
        login["auth"]["client_token"].as_str().unwrap().to_owned(),
        enrolled,
    )
}

async fn world(backend: Backend, fail_first_hooks: usize) -> Option<World> {
    let s = TestServer::start(backend).await?;
    let (keys, root) = s.ready().await;
    let r = Some(root.as_str());
    // Every code of the test within reach of one step window.
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    let audit_log = s.dir().join("audit.log");
    let (st, body) = s
        .call(
            "PUT",
            "sys/audit/file",
            r,
            Some(
                json!({"type": "file", "options": {"file_path": audit_log.display().to_string()}}),
            ),
        )
        .await;
    assert_eq!(st, 204, "{body}");
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
            "PUT",
            "sys/policies/acl/breakglass-approver",
            r,
            Some(json!({"policy": APPROVER_POLICY})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let hooks = receiver(fail_first_hooks).await;
    let (st, cfg) = s
        .call(
            "POST",
            "sys/breakglass/config",
            r,
            Some(json!({"webhook_urls": [hooks.url], "webhook_secret": WEBHOOK_SECRET})),
        )
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert_eq!(cfg["data"]["webhook_secret_set"], json!(true));
    assert!(!cfg.to_string().contains(WEBHOOK_SECRET));
    let (alice, _) = person(&s, &root, "alice", &["developer"]).await;
    let (bob, bob_totp) = person(&s, &root, "bob", &["breakglass-approver"]).await;
    Some(World {
        s,
        keys,
        root,
        alice,
        bob,
        bob_totp,
        audit_log,
        hooks,
    })
}

impl World {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.s.call(method, path, Some(token), body).await
    }

    async fn request(&self, ttl: &str) -> String {
        let (st, body) = self
            .call(
                "POST",
                "sys/breakglass/request",
                &self.alice,
                Some(json!({"reason": "INC-42: prod DB down, need to rotate", "incident": "INC-42", "ttl": ttl})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["data"]["status"], "pending");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn approve(&self, id: &str, totp: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("sys/breakglass/{id}/approve"),
            &self.bob,
            Some(json!({"totp": totp, "comment": "go"})),
        )
        .await
    }

    /// alice asks for the grant's token.
    async fn fetch(&self, id: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("sys/breakglass/{id}/token"),
            &self.alice,
            None,
        )
        .await
    }

    /// root changes the break-glass configuration.
    async fn configure(&self, change: Value) -> (u16, Value) {
        self.call("POST", "sys/breakglass/config", &self.root, Some(change))
            .await
    }

    async fn status(&self, id: &str) -> String {
        let (st, body) = self
            .call("GET", &format!("sys/breakglass/{id}"), &self.alice, None)
            .await;
        assert_eq!(st, 200, "{body}");
        body["data"]["status"].as_str().unwrap().to_owned()
    }
}

/// A pipeline's token: an AppRole login with the developer tier (no person,
/// no second factor).
async fn approle_token(w: &World) -> String {
    let (st, _) = w
        .call(
            "POST",
            "sys/auth/approle",
            &w.root,
            Some(json!({"type": "approle"})),
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = w
        .call(
            "POST",
            "auth/approle/role/ci",
            &w.root,
            Some(json!({"token_policies": ["developer"]})),
        )
        .await;
    assert_eq!(st, 204);
    let (_, rid) = w
        .call("GET", "auth/approle/role/ci/role-id", &w.root, None)
        .await;
    let (_, sid) = w
        .call(
            "POST",
            "auth/approle/role/ci/secret-id",
            &w.root,
            Some(json!({})),
        )
        .await;
    let (st, login) =
        w.s.call(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": rid["data"]["role_id"], "secret_id": sid["data"]["secret_id"]})),
        )
        .await;
    assert_eq!(st, 200, "{login}");
    login["auth"]["client_token"].as_str().unwrap().to_owned()
}

fn check_signature(d: &Delivery) {
    let expected = format!(
        "sha256={}",
        coffer_server::crypto::hmac_hex(WEBHOOK_SECRET.as_bytes(), d.body.as_bytes())
    );
    assert_eq!(d.signature, expected, "signature of {}", d.event);
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("Break-glass")),
        "{body}"
    );
    assert!(
        !d.body.contains("hvs."),
        "no token in an announcement: {}",
        d.body
    );
}

async fn whole_episode(backend: Backend) {
    // The receiver refuses the first delivery: it is retried, and the failure shows.
    let Some(w) = world(backend, 1).await else {
        return;
    };
    // Only people who passed a second factor may ask: not root, not a token
    // made by the token store.
    let (_, child) = w
        .call(
            "POST",
            "auth/token/create",
            &w.root,
            Some(json!({"policies": ["developer"]})),
        )
        .await;
    let child = child["auth"]["client_token"].as_str().unwrap().to_owned();
    let pipeline = approle_token(&w).await;
    for token in [&w.root, &child, &pipeline] {
        let (st, body) = w
            .call(
                "POST",
                "sys/breakglass/request",
                token,
                Some(json!({"reason": "INC-42: prod DB down"})),
            )
            .await;
        assert_eq!(st, 403, "{body}");
        assert!(body.to_string().contains("second factor"), "{body}");
    }
    // Bad requests are refused clearly.
    for (bad, says) in [
        (json!({"reason": "short"}), "at least 10"),
        (
            json!({"reason": "INC-42: prod DB down", "policies": ["root"]}),
            "not grantable",
        ),
        (
            json!({"reason": "INC-42: prod DB down", "ttl": "banana"}),
            "ttl",
        ),
    ] {
        let (st, body) = w
            .call("POST", "sys/breakglass/request", &w.alice, Some(bad))
            .await;
        assert_eq!(st, 400, "{body}");
        assert!(body.to_string().contains(says), "{says}: {body}");
    }
    let id = w.request("8s").await;
    for token in [&w.alice, &w.bob] {
        let (st, listed) = w.call("LIST", "sys/breakglass", token, None).await;
        assert_eq!(st, 200, "{listed}");
        assert_eq!(listed["data"]["keys"], json!([id]));
        assert_eq!(listed["data"]["key_info"][&id]["status"], "pending");
    }
    let admin_path = "sys/policies/acl/developer";
    let (st, _) = w.call("GET", admin_path, &w.alice, None).await;
    assert_eq!(st, 403, "alice's own token cannot read policies");

    // alice cannot approve her own request; bob needs a fresh code.
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/approve"),
            &w.alice,
            Some(json!({"totp": code(&w.bob_totp.secret, 1)})),
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/approve"),
            &w.bob,
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 403, "no code: {body}");
    assert!(body.to_string().contains("TOTP"), "{body}");
    let (st, body) = w.approve(&id, &code(&w.bob_totp.secret, 0)).await;
    assert_eq!(st, 403, "the code bob logged in with is spent: {body}");
    let (st, body) = w.fetch(&id).await;
    assert_eq!(st, 400, "no token before approval: {body}");
    let (st, body) = w.approve(&id, &code(&w.bob_totp.secret, 1)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["status"], "approved");
    assert_eq!(body["data"]["approvals"][0]["approver"], "bob");

    // Fetched once, by alice only.
    let (st, body) = w
        .call("POST", &format!("sys/breakglass/{id}/token"), &w.bob, None)
        .await;
    assert_eq!(st, 403, "only the requester fetches: {body}");
    let (st, fetched) = w.fetch(&id).await;
    assert_eq!(st, 200, "{fetched}");
    let auth = &fetched["auth"];
    let emergency = auth["client_token"].as_str().unwrap().to_owned();
    assert_eq!(auth["renewable"], json!(false));
    assert_eq!(auth["metadata"]["breakglass_id"], json!(id));
    assert_eq!(auth["policies"], json!(["emergency-admin"]));
    assert!(auth["lease_duration"].as_u64().unwrap() <= 8);
    assert_eq!(fetched["data"]["status"], "active");
    let (st, body) = w.fetch(&id).await;
    assert_eq!(st, 400, "second fetch: {body}");
    assert!(body.to_string().contains("already fetched"), "{body}");

    // The emergency token does what alice's cannot, and nothing that would
    // hide or extend it.
    let (st, body) = w.call("GET", admin_path, &emergency, None).await;
    assert_eq!(st, 200, "{body}");
    for (method, path, body) in [
        ("DELETE", "sys/audit/file", None),
        (
            "POST",
            "sys/breakglass/config",
            Some(json!({"max_ttl": "4h"})),
        ),
        ("PUT", "sys/seal", None),
        (
            "POST",
            "sys/breakglass/request",
            Some(json!({"reason": "INC-43: chaining grants"})),
        ),
        ("POST", "auth/token/renew-self", Some(json!({}))),
        (
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["emergency-admin"]})),
        ),
    ] {
        let (st, answer) = w.call(method, path, &emergency, body).await;
        assert_eq!(st, 403, "{method} {path}: {answer}");
    }
    let first_use = w.hooks.wait_for(&id, "first_use").await;
    check_signature(&first_use);

    // It dies on its own.
    let mut refused = false;
    for _ in 0..150 {
        let (st, _) = w.call("GET", admin_path, &emergency, None).await;
        if st == 403 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the emergency token outlived its ttl");
    let expired = w.hooks.wait_for(&id, "expired").await;
    check_signature(&expired);
    assert_eq!(w.status(&id).await, "ended");

    // Every event arrived, signed; the refused first delivery was retried.
    for event in ["requested", "approved", "activated", "first_use", "expired"] {
        check_signature(&w.hooks.wait_for(&id, event).await);
    }
    let (_, shown) = w
        .call("GET", &format!("sys/breakglass/{id}"), &w.bob, None)
        .await;
    let n = &shown["data"]["notifications"];
    assert!(n["failed_attempts"].as_u64().unwrap() >= 1, "{shown}");
    assert_eq!(n["failed"], json!(0), "{shown}");
    let metrics =
        w.s.raw_call("GET", "sys/metrics?format=prometheus", Some(&w.root), None)
            .await;
    let text = metrics
        .1
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| metrics.1.to_string());
    assert!(
        text.lines()
            .any(|l| l.starts_with("coffer_webhook_delivery_failures_total") && !l.ends_with(" 0")),
        "{text}"
    );

    // The report is the audit log's record of the episode.
    let (st, report) = w
        .call(
            "GET",
            &format!("sys/breakglass/{id}/report"),
            &w.alice,
            None,
        )
        .await;
    assert_eq!(st, 200, "{report}");
    let timeline = report["data"]["timeline"].as_array().unwrap();
    let events: Vec<&str> = timeline
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for want in ["requested", "approved", "activated", "used", "ended"] {
        assert!(events.contains(&want), "{want} missing from {events:?}");
    }
    let position = |e: &str| events.iter().position(|x| *x == e).unwrap();
    assert!(position("requested") < position("approved"));
    assert!(position("approved") < position("activated"));
    assert!(position("activated") < position("used"));
    assert!(position("used") < position("ended"));
    assert!(
        timeline.iter().any(|e| e["event"] == "used"
            && e["path"] == admin_path
            && e["operation"] == "read"
            && e["error"] == ""),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["event"] == "used" && e["path"] == "sys/audit/file" && e["error"] != ""),
        "refused attempts are in the record too: {timeline:?}"
    );
    let log = std::fs::read_to_string(&w.audit_log).unwrap();
    let marked = log
        .lines()
        .filter(|l| {
            l.contains(&format!("\"breakglass_id\":\"{id}\""))
                && l.contains("\"type\":\"response\"")
        })
        .count();
    assert!(
        marked >= timeline.len(),
        "{marked} entries, {} events",
        timeline.len()
    );
    assert!(!log.contains(&emergency), "the token is never in the log");
    let out = std::process::Command::new(binary("coffer"))
        .args(["audit", "verify"])
        .arg(&w.audit_log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn whole_episode_sqlite() {
    whole_episode(Backend::Sqlite).await;
}

#[tokio::test]
async fn whole_episode_postgres() {
    whole_episode(Backend::Postgres).await;
}

/// Denied, expired and revoked requests; the token fetch raced by 24
/// requests; on PostgreSQL a revocation on one node is refused at once on
/// another.
async fn refusals_and_races(backend: Backend) {
    let Some(w) = world(backend, 0).await else {
        return;
    };
    let recovery = w.bob_totp.recovery.clone();

    // Denied: never a token.
    let id = w.request("5m").await;
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/deny"),
            &w.bob,
            Some(json!({"totp": recovery[0], "comment": ""})),
        )
        .await;
    assert_eq!(st, 400, "a denial needs a comment: {body}");
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/deny"),
            &w.bob,
            Some(json!({"totp": recovery[0], "comment": "use the runbook instead"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["status"], "denied");
    let (st, body) = w.fetch(&id).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("denied"), "{body}");
    check_signature(&w.hooks.wait_for(&id, "denied").await);

    // Expired before anyone approved: never a token.
    let (st, _) = w.configure(json!({"approval_window": "2s"})).await;
    assert_eq!(st, 200);
    let id = w.request("5m").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (st, body) = w.approve(&id, &recovery[1]).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");
    let (st, _) = w.fetch(&id).await;
    assert_eq!(st, 400);
    w.hooks.wait_for(&id, "expired").await;
    let (st, _) = w.configure(json!({"approval_window": "1h"})).await;
    assert_eq!(st, 200);

    // Two distinct approvers needed: bob twice is still one.
    let (st, _) = w.configure(json!({"required_approvals": 2})).await;
    assert_eq!(st, 200);
    let (carol, carol_totp) = person(&w.s, &w.root, "carol", &["breakglass-approver"]).await;
    let id = w.request("5m").await;
    let (st, body) = w.approve(&id, &recovery[2]).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["data"]["status"], "pending",
        "one of two approvals: {body}"
    );
    let (st, body) = w.approve(&id, &recovery[3]).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.to_string().contains("already approved"), "{body}");
    let (st, _) = w.fetch(&id).await;
    assert_eq!(st, 400, "no token with one approval of two");
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/approve"),
            &carol,
            Some(json!({"totp": code(&carol_totp.secret, 1)})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["status"], "approved");
    assert_eq!(body["data"]["approvals"].as_array().unwrap().len(), 2);

    // 24 fetches at once: exactly one token.
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let w = Arc::new(w);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (w, start, id) = (w.clone(), start.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            w.fetch(&id).await
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        let (st, body) = t.await.unwrap();
        match st {
            200 => tokens.push(body["auth"]["client_token"].as_str().unwrap().to_owned()),
            400 => assert!(body.to_string().contains("already fetched"), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(tokens.len(), 1, "exactly one fetch wins");
    let emergency = tokens.pop().unwrap();
    let admin_path = "sys/policies/acl/developer";

    // Revoked: refused at once, on every node.
    let other = match backend {
        Backend::Postgres => {
            let node = w.s.second_node();
            node.unseal(&w.keys).await;
            Some(node)
        }
        Backend::Sqlite => None,
    };
    let nodes: Vec<&TestServer> = std::iter::once(&w.s).chain(other.as_ref()).collect();
    for node in &nodes {
        let (st, body) = node.call("GET", admin_path, Some(&emergency), None).await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, body) = w
        .call(
            "POST",
            &format!("sys/breakglass/{id}/revoke"),
            &w.alice,
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["status"], "revoked");
    for node in &nodes {
        let (st, body) = node.call("GET", admin_path, Some(&emergency), None).await;
        assert_eq!(st, 403, "{body}");
    }
    check_signature(&w.hooks.wait_for(&id, "revoked").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_races_sqlite() {
    refusals_and_races(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_races_postgres() {
    refusals_and_races(Backend::Postgres).await;
}
