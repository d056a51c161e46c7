//! `coffer breakglass` against a local stub that answers as docs/breakglass-api
//! specifies: the requests sent (paths, methods, bodies, which token), what is printed,
//! exit codes, and the token file swap (emergency token in, previous token back on
//! revoke) made by the real binary.

// Test helpers outside #[test] fns may panic: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{coffer, has_row, Captured};
use serde_json::{json, Value};

const MINE: &str = "hvs.ALICE-MFA-TOKEN";
const EMERGENCY: &str = "hvs.EMERGENCY-TOKEN-42";
const ID: &str = "bg-abcdefghijklmnopqrstuvwxyz";
const CODE: &str = "246810";

fn request(status: &str) -> Value {
    let active = matches!(status, "active" | "revoked");
    json!({
        "id": ID, "status": status, "reason": "primary database down, failover stuck",
        "incident": "INC-42", "ttl": 1800, "policies": ["emergency-admin"],
        "requester": "alice", "requester_entity_id": "ent-a",
        "requested_at": "2026-12-01T10:00:00Z", "approval_expires_at": "2026-12-01T11:00:00Z",
        "required_approvals": 1,
        "approvals": if status == "pending" { json!([]) } else {
            json!([{"approver": "bob", "time": "2026-12-01T10:02:00Z", "comment": "ok"}]) },
        "denial": null,
        "activated_at": if active { json!("2026-12-01T10:03:00Z") } else { Value::Null },
        "expires_at": if active { json!("2026-12-01T10:33:00Z") } else { Value::Null },
        "first_used_at": null,
        "ended_at": if status == "revoked" { json!("2026-12-01T10:10:00Z") } else { Value::Null },
        "ended_by": if status == "revoked" { json!("alice") } else { Value::Null },
        "notifications": {"pending": 0, "delivered": 2, "failed": 0, "last_error": ""}
    })
}

fn data(v: Value) -> (u16, String) {
    (200, json!({"request_id": "r", "data": v}).to_string())
}

fn respond(req: &Captured) -> (u16, String) {
    let base = "/v1/sys/breakglass";
    let t = req.target.as_str();
    match (req.method.as_str(), t) {
        ("POST", "/v1/sys/breakglass/request") => data(request("pending")),
        ("LIST", _) if t.starts_with(base) => data(json!({
            "keys": [ID], "key_info": {ID: request("pending")}
        })),
        ("POST", _) if t == format!("{base}/{ID}/approve") => {
            if req.json()["totp"] == CODE {
                data(request("approved"))
            } else {
                (
                    403,
                    json!({"errors": ["a fresh TOTP code of the approver is required"]})
                        .to_string(),
                )
            }
        }
        ("POST", _) if t == format!("{base}/{ID}/token") => (
            200,
            json!({"request_id": "r", "data": request("active"), "auth": {
                "client_token": EMERGENCY, "accessor": "acc-emergency",
                "policies": ["emergency-admin"], "token_policies": ["emergency-admin"],
                "metadata": {"breakglass_id": ID}, "lease_duration": 1800, "renewable": false}})
            .to_string(),
        ),
        ("POST", _) if t == format!("{base}/{ID}/revoke") => data(request("revoked")),
        ("GET", _) if t == format!("{base}/{ID}") => data(request("active")),
        ("GET", _) if t == format!("{base}/{ID}/report") => data(json!({
        "id": ID, "request": request("revoked"), "timeline": [
            {"time": "2026-12-01T10:00:00Z", "event": "requested", "actor": "alice",
             "path": "", "operation": "", "error": ""},
            {"time": "2026-12-01T10:04:00Z", "event": "used", "actor": "alice",
             "path": "sys/policies/acl/ops", "operation": "update", "error": ""}
        ]})),
        _ => (404, json!({"errors": []}).to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_approve_token_revoke_report() {
    let stub = common::start(respond).await;
    let home = tempfile::tempdir().unwrap();
    let token_file = home.path().join(".vault-token");
    let side_file = home.path().join(".vault-token.pre-breakglass");
    std::fs::write(&token_file, format!("{MINE}\n")).unwrap();
    let run = |args: &'static [&'static str], env: &'static [(&'static str, &'static str)]| {
        let addr = stub.addr.clone();
        let home = home.path().to_path_buf();
        async move { coffer(&addr, &home, args, env, "").await }
    };

    let r = run(
        &[
            "breakglass",
            "request",
            "--reason",
            "primary database down, failover stuck",
            "--ttl",
            "30m",
            "--incident",
            "INC-42",
            "--policies",
            "emergency-admin",
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("coffer breakglass approve {ID}")),
        "{}",
        r.stdout
    );
    assert!(has_row(&r.stdout, "status", "pending"), "{}", r.stdout);
    let sent = stub.requests().pop().unwrap();
    assert_eq!(sent.header("x-vault-token"), Some(MINE));
    assert_eq!(
        sent.json(),
        json!({"reason": "primary database down, failover stuck", "ttl": 1800,
               "incident": "INC-42", "policies": ["emergency-admin"]})
    );

    let r = run(
        &["breakglass", "request", "--reason", "x", "--ttl", "5h"],
        &[],
    )
    .await;
    assert_eq!(
        r.code, 1,
        "a ttl over 4h is refused before sending: {}",
        r.stderr
    );
    assert_eq!(stub.requests().len(), 1);

    let r = run(&["-format=json", "breakglass", "list", "--pending"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let list: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(list[0]["id"], ID);
    let sent = stub.requests().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.target.as_str()),
        ("LIST", "/v1/sys/breakglass?status=pending")
    );
    let r = run(&["breakglass", "list"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("ID ") && r.stdout.contains(ID),
        "{}",
        r.stdout
    );

    // Approving: no code and no terminal is a usage error; a wrong code is the
    // server's refusal (exit 2); the code is never echoed.
    let r = run(&["breakglass", "approve", ID], &[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("COFFER_TOTP_CODE"), "{}", r.stderr);
    let r = run(&["breakglass", "approve", ID, "-code=111111"], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("fresh TOTP code") && !r.stderr.contains("111111"),
        "{}",
        r.stderr
    );
    let r = run(
        &["breakglass", "approve", ID, "--comment", "ok"],
        &[("COFFER_TOTP_CODE", CODE)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("coffer breakglass token {ID}")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains(CODE));
    let sent = stub.requests().pop().unwrap();
    assert_eq!(sent.target, format!("/v1/sys/breakglass/{ID}/approve"));
    assert_eq!(sent.json(), json!({"totp": CODE, "comment": "ok"}));

    // The token: stored, previous one kept, expiry shown, token itself not printed.
    let r = run(&["breakglass", "token", ID], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains(EMERGENCY) && !r.stderr.contains(EMERGENCY));
    assert!(
        r.stdout
            .contains("expires at 2026-12-01T10:33:00Z (in 30m)"),
        "{}",
        r.stdout
    );
    assert!(
        has_row(&r.stdout, "token_accessor", "acc-emergency"),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{EMERGENCY}\n")
    );
    let side = std::fs::read_to_string(&side_file).unwrap();
    assert!(side.contains(MINE) && !side.contains(EMERGENCY), "{side}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&side_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Later commands use the emergency token, but break-glass commands the person's
    // own (the server treats a break-glass token as nobody's).
    let r = run(&["read", "sys/policies/acl/ops"], &[]).await;
    assert_eq!(r.code, 2, "the stub has nothing there: {}", r.stderr);
    assert_eq!(
        stub.requests().pop().unwrap().header("x-vault-token"),
        Some(EMERGENCY)
    );
    let r = run(&["breakglass", "show", ID, "-field=expires_at"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "2026-12-01T10:33:00Z");
    assert_eq!(
        stub.requests().pop().unwrap().header("x-vault-token"),
        Some(MINE)
    );

    let r = run(&["breakglass", "report", ID], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with(&format!("# Break-glass report {ID}\n")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "| 2026-12-01T10:04:00Z | used | alice | update | sys/policies/acl/ops | — |"
        ),
        "{}",
        r.stdout
    );
    let r = run(&["breakglass", "report", ID, "--format", "json"], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["timeline"][1]["path"], "sys/policies/acl/ops");

    // Revoke: the grant ends and the previous token is back.
    let r = run(&["breakglass", "revoke", ID], &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("previous token is back"), "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        format!("{MINE}\n")
    );
    assert!(!side_file.exists());

    // Unknown id: the server's 404 is exit 2.
    let r = run(&["breakglass", "show", "bg-nope"], &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_json_and_field_show_the_token_only_when_asked() {
    let stub = common::start(respond).await;
    let home = tempfile::tempdir().unwrap();
    let r = coffer(
        &stub.addr,
        home.path(),
        &["breakglass", "token", ID, "-field=token", "-no-store"],
        &[("COFFER_TOKEN", MINE)],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, EMERGENCY);
    assert!(!home.path().join(".vault-token").exists());
    let r = coffer(
        &stub.addr,
        home.path(),
        &["-format=json", "breakglass", "token", ID],
        &[("COFFER_TOKEN", MINE)],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["auth"]["client_token"], EMERGENCY);
    // Stored even so; COFFER_TOKEN wins over the file, which the warning says.
    assert!(r.stderr.contains("COFFER_TOKEN is set"), "{}", r.stderr);
    let stored = std::fs::read_to_string(home.path().join(".vault-token")).unwrap();
    assert_eq!(stored.trim(), EMERGENCY);
}
