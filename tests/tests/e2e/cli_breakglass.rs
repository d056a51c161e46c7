//! `coffer breakglass` against the real server, as two people use it: alice (developer,
//! logged in with password and TOTP through `coffer login`) asks, bob (approver, his own
//! login) approves with a fresh TOTP code, alice fetches the emergency token into her
//! token file (her own kept aside), uses it for an admin operation her token cannot do,
//! reads the report, and revokes the grant, which puts her own token back.

use std::path::Path;
use std::process::{Command, Stdio};

use coffer_tests::totp::{code, enrol, seconds_left_in_step};
use coffer_tests::{binary, Backend, TestServer};
use serde_json::{json, Value};

const ALICE_PW: &str = "alice's long enough password";
const BOB_PW: &str = "bob's long enough password";
const FIRST_PW: &str = "the password the admin set";

/// One CLI run: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `coffer args...` with a clean environment: the server, HOME (and so the token file)
/// of one person, and `env`; stdin is a pipe, never a terminal.
fn coffer(addr: &str, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary("coffer"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("COFFER_ADDR", addr)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn request_approve_token_report_revoke_through_the_cli() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    // Enrolment, two logins and the approval each spend a code of a later step:
    // start early in a step so they do not straddle too many.
    if seconds_left_in_step() < 20 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    let setup = [
        (
            "sys/audit/file",
            json!({"type": "file", "options": {"file_path": s.dir().join("audit.log").display().to_string()}}),
        ),
        ("sys/auth/userpass", json!({"type": "userpass"})),
        (
            "sys/policies/acl/approver",
            json!({"policy": "path \"sys/breakglass/approve\" {\n  capabilities = [\"update\"]\n}\n"}),
        ),
        (
            "auth/userpass/users/alice",
            json!({"password": FIRST_PW, "token_policies": ["developer"]}),
        ),
        (
            "auth/userpass/users/bob",
            json!({"password": FIRST_PW, "token_policies": ["approver"]}),
        ),
    ];
    for (path, body) in setup {
        let (st, answer) = s.call("POST", path, Some(&root), Some(body)).await;
        assert!((200..300).contains(&st), "{path}: {st} {answer}");
    }
    let alice_totp = enrol(&s, &root, "alice", FIRST_PW, ALICE_PW).await.secret;
    let bob_totp = enrol(&s, &root, "bob", FIRST_PW, BOB_PW).await.secret;
    let alice_home = tempfile::tempdir().unwrap();
    let bob_home = tempfile::tempdir().unwrap();
    let alice = |args: &[&str]| coffer(&s.addr, alice_home.path(), args, &[]);
    let bob = |args: &[&str], env: &[(&str, &str)]| coffer(&s.addr, bob_home.path(), args, env);

    let login_alice = code(&alice_totp, 0);
    let r = coffer(
        &s.addr,
        alice_home.path(),
        &[
            "login",
            "-method=userpass",
            &format!("-code={login_alice}"),
            "alice",
        ],
        &[("COFFER_PASSWORD", ALICE_PW)],
    );
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let bob_login_code = code(&bob_totp, 0);
    let r = bob(
        &[
            "login",
            "-method=userpass",
            &format!("-code={bob_login_code}"),
            "bob",
        ],
        &[("COFFER_PASSWORD", BOB_PW)],
    );
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let token_file = alice_home.path().join(".vault-token");
    let side_file = alice_home.path().join(".vault-token.pre-breakglass");
    let alice_token = std::fs::read_to_string(&token_file).unwrap();

    // Her own token cannot read policies (an admin operation).
    let r = alice(&["read", "sys/policies/acl/developer"]);
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);

    let r = alice(&[
        "-format=json",
        "breakglass",
        "request",
        "--reason",
        "primary database down, failover stuck",
        "--ttl",
        "10m",
        "--incident",
        "INC-42",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let asked: Value = serde_json::from_str(&r.out).unwrap();
    let id = asked["id"].as_str().unwrap().to_owned();
    assert_eq!(asked["status"], "pending");
    assert_eq!(asked["ttl"], 600);
    assert_eq!(asked["incident"], "INC-42");

    let r = bob(&["breakglass", "list", "--pending"], &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains(&id) && r.out.contains("alice"), "{}", r.out);

    // Alice cannot approve her own request; bob needs a code, and a used one is refused.
    let fresh_alice = code(&alice_totp, 1);
    let r = coffer(
        &s.addr,
        alice_home.path(),
        &["breakglass", "approve", &id],
        &[("COFFER_TOTP_CODE", &fresh_alice)],
    );
    assert_eq!(r.code, 2, "{}{}", r.out, r.err);
    let r = bob(&["breakglass", "approve", &id], &[]);
    assert_eq!(r.code, 1, "no terminal to ask for the code: {}", r.err);
    let r = bob(
        &["breakglass", "approve", &id],
        &[("COFFER_TOTP_CODE", &bob_login_code)],
    );
    assert_eq!(r.code, 2, "a used code: {}{}", r.out, r.err);
    assert!(!r.err.contains(&bob_login_code), "{}", r.err);
    let r = bob(
        &["breakglass", "approve", &id, "--comment", "go ahead"],
        &[("COFFER_TOTP_CODE", &code(&bob_totp, 1))],
    );
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out.contains(&format!("coffer breakglass token {id}")),
        "{}",
        r.out
    );

    // The token: into alice's token file, hers kept aside, not printed.
    let r = alice(&["breakglass", "token", &id]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("expires at"), "{}", r.out);
    let emergency = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(emergency, alice_token);
    assert!(!r.out.contains(emergency.trim()) && !r.err.contains(emergency.trim()));
    assert!(side_file.exists());
    let r = alice(&["breakglass", "token", &id]);
    assert_eq!(r.code, 2, "fetched once: {}{}", r.out, r.err);
    assert!(r.err.contains("already fetched"), "{}", r.err);

    // Now the admin operation works; show still works (with her own token).
    let r = alice(&["read", "sys/policies/acl/developer"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let r = alice(&["breakglass", "show", &id, "-field=status"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(r.out.trim(), "active");

    let r = alice(&["breakglass", "report", &id]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out.starts_with(&format!("# Break-glass report {id}\n")),
        "{}",
        r.out
    );
    assert!(r.out.contains("- **Approvers:** bob at "), "{}", r.out);
    assert!(
        r.out
            .lines()
            .any(|l| l.contains("| used |") && l.contains("sys/policies/acl/developer")),
        "the admin operation is in the timeline: {}",
        r.out
    );

    // Revoke: the emergency token stops working, alice's own is back.
    let r = alice(&["breakglass", "revoke", &id]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), alice_token);
    assert!(!side_file.exists());
    let (st, _) = s
        .call(
            "GET",
            "auth/token/lookup-self",
            Some(emergency.trim()),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let r = alice(&["breakglass", "report", &id, "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let report: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(report["request"]["status"], "revoked");
    let events: Vec<&str> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for e in ["requested", "approved", "activated", "used", "revoked"] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }
    assert!(
        !s.log().contains(emergency.trim()),
        "token in the server log"
    );
}
