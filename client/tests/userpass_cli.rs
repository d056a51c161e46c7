//! `coffer login -method=userpass`, `coffer logout` and `coffer totp` against a local stub:
//! the requests sent, the token file, what is printed, exit codes, that passwords never
//! come from argv nor show up in output, and (Unix) the prompts through a pseudo-terminal.

// Test helpers outside #[test] fns may panic: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{coffer, has_row, Captured};
use serde_json::{json, Value};

const PASSWORD: &str = "pw-Hunter2!";
const CODE: &str = "123456";
const USER_TOKEN: &str = "hvs.USER-TOKEN-789";
const OLD_TOKEN: &str = "hvs.OLD-TOKEN-000";
const METHOD_ID: &str = "m-totp-1";
const REQUEST_ID: &str = "5f1c2d9e-req";
const URL: &str = "otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer&algorithm=SHA1&digits=6&period=30";

fn mfa_required() -> String {
    json!({"request_id": "r1", "auth": {"client_token": "", "accessor": "", "policies": null,
        "mfa_requirement": {"mfa_request_id": REQUEST_ID, "mfa_constraints": {"totp": {"any": [
            {"type": "totp", "id": METHOD_ID, "uses_passcode": true}]}}}}})
    .to_string()
}

fn user_auth() -> String {
    json!({"request_id": "r2", "auth": {"client_token": USER_TOKEN, "accessor": "acc-u",
        "policies": ["default", "dev"], "token_policies": ["default", "dev"],
        "metadata": {"username": "alice", "mfa": "true"}, "lease_duration": 3600,
        "renewable": true, "entity_id": "e1", "token_type": "service"}})
    .to_string()
}

fn invalid() -> (u16, String) {
    (
        400,
        r#"{"errors":["invalid username, password or code"]}"#.into(),
    )
}

/// A userpass server. `one_step`: the `totp` field is honoured (Coffer); otherwise it is
/// ignored and every correct password gets an `mfa_requirement` (Vault's two-step flow).
fn userpass_server(one_step: bool) -> impl Fn(&Captured) -> (u16, String) + Send + Sync {
    move |req| match req.target.as_str() {
        "/v1/auth/userpass/login/alice" => {
            let body = req.json();
            if body["password"] != PASSWORD {
                return invalid();
            }
            match body.get("totp") {
                Some(code) if one_step && code == CODE => (200, user_auth()),
                Some(_) if one_step => invalid(),
                _ => (200, mfa_required()),
            }
        }
        "/v1/sys/mfa/validate" => {
            let expected =
                json!({"mfa_request_id": REQUEST_ID, "mfa_payload": {METHOD_ID: [CODE]}});
            if req.json() == expected {
                (200, user_auth())
            } else {
                invalid()
            }
        }
        _ => (404, r#"{"errors":["no handler"]}"#.into()),
    }
}

#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_requirement_then_validate_stores_token_0600() {
    let stub = common::start(userpass_server(false)).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("tok");
    // A previous login's token must not be sent with the password.
    std::fs::write(&file, OLD_TOKEN).unwrap();
    let file_s = file.display().to_string();
    let env = [
        ("COFFER_TOKEN_FILE", file_s.as_str()),
        ("COFFER_TOTP_CODE", CODE),
    ];
    let r = coffer(
        &stub.addr,
        home.path(),
        &["login", "-method=userpass", "-password-stdin", "alice"],
        &env,
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(has_row(&r.stdout, "username", "alice"), "{}", r.stdout);
    assert!(
        has_row(&r.stdout, "policies", "[default dev]"),
        "{}",
        r.stdout
    );
    assert!(has_row(&r.stdout, "token_duration", "1h"), "{}", r.stdout);
    let expiry = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("expire_time"))
        .unwrap()
        .trim();
    assert!(
        expiry.len() == 20 && expiry.ends_with('Z') && expiry.starts_with("20"),
        "{expiry}"
    );
    assert!(r.stdout.contains(&file_s), "{}", r.stdout);
    for secret in [USER_TOKEN, PASSWORD, CODE] {
        assert!(!r.stdout.contains(secret), "{secret} in {}", r.stdout);
    }

    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), USER_TOKEN);
    assert_eq!(file_mode(&file), 0o600);

    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].target, "/v1/auth/userpass/login/alice");
    assert_eq!(reqs[0].json(), json!({"password": PASSWORD, "totp": CODE}));
    assert_eq!(reqs[1].target, "/v1/sys/mfa/validate");
    assert!(reqs.iter().all(|r| r.header("x-vault-token").is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_step_code_sends_totp_field() {
    let stub = common::start(userpass_server(true)).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".vault-token");
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "login",
            "-format=json",
            "-no-store",
            "-code=123 456",
            "username=alice",
        ],
        &[("COFFER_PASSWORD", PASSWORD)],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["auth"]["client_token"], USER_TOKEN);
    assert_eq!(v["auth"]["metadata"]["username"], "alice");
    assert_eq!(v["auth"]["policies"], json!(["default", "dev"]));
    assert!(!file.exists(), "-no-store must not write the token file");
    let req = stub.only_request();
    assert_eq!(req.target, "/v1/auth/userpass/login/alice");
    assert_eq!(req.json(), json!({"password": PASSWORD, "totp": CODE}));

    // A wrong code: one line, exit 1, nothing stored.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["login", "-method=userpass", "-code=000000", "alice"],
        &[("COFFER_PASSWORD", PASSWORD)],
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "Error: invalid username, password or code (400)\n"
    );
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_never_taken_from_argv_nor_printed() {
    let stub = common::start(userpass_server(true)).await;
    let home = tempfile::tempdir().unwrap();
    let from_argv: [&[&str]; 5] = [
        &["login", "-method=userpass", "alice", "password=pw-Hunter2!"],
        &["login", "username=alice", "password=pw-Hunter2!"],
        &[
            "login",
            "-method=userpass",
            "-password=pw-Hunter2!",
            "alice",
        ],
        &[
            "login",
            "-method=userpass",
            "-password",
            "pw-Hunter2!",
            "alice",
        ],
        &["totp", "enroll", "-password=pw-Hunter2!", "alice"],
    ];
    for args in from_argv {
        let r = coffer(&stub.addr, home.path(), args, &[], "").await;
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("passwords are not accepted"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("Hunter2"), "{}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // A mistyped flag: clap's error names the flag, not its value.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["login", "-method=userpass", "-passwrd=pw-Hunter2!", "alice"],
        &[],
        "",
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--passwrd"), "{}", r.stderr);
    assert!(!r.stderr.contains("Hunter2"), "{}", r.stderr);
    assert!(stub.requests().is_empty());

    // A server that echoes the password or code back does not get them printed.
    let echo = common::start_fixed(
        400,
        &format!(r#"{{"errors":["bad password {PASSWORD} or code {CODE}"]}}"#),
    )
    .await;
    let r = coffer(
        &echo.addr,
        home.path(),
        &["login", "-method=userpass", "-code", CODE, "alice"],
        &[("COFFER_PASSWORD", PASSWORD)],
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "Error: bad password [redacted] or code [redacted] (400)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_terminal_and_no_source_is_one_line_exit_1() {
    let stub = common::start(userpass_server(false)).await;
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["login", "-method=userpass", "alice"][..],
        &["login", "username=alice"][..],
        &["totp", "enroll", "-enrollment-token=cet.x", "alice"][..],
    ] {
        let r = coffer(&stub.addr, home.path(), args, &[], "").await;
        assert_eq!(r.code, 1, "{args:?}");
        assert_eq!(
            r.stderr,
            "Error: no terminal to ask for the password; use -password-stdin or COFFER_PASSWORD\n"
        );
    }
    assert!(stub.requests().is_empty());

    // The password is there but the server wants a code and nobody can type it.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["login", "-method=userpass", "alice"],
        &[("COFFER_PASSWORD", PASSWORD)],
        "",
    )
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: no terminal to ask for the TOTP code; use -code or COFFER_TOTP_CODE\n"
    );
    assert_eq!(stub.requests().len(), 1);
    assert!(!home.path().join(".vault-token").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_out_and_rate_limited_logins() {
    let home = tempfile::tempdir().unwrap();
    let env = [("COFFER_PASSWORD", PASSWORD), ("COFFER_TOTP_CODE", CODE)];
    let locked = common::start_fixed(
        403,
        r#"{"errors":["user is locked out until 2030-01-01T00:00:00Z"]}"#,
    )
    .await;
    let r = coffer(
        &locked.addr,
        home.path(),
        &["login", "username=alice"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "Error: user is locked out until 2030-01-01T00:00:00Z (403)\n"
    );

    let limited = common::start_with_headers(|_| {
        (
            429,
            vec![("Retry-After".to_string(), "30".to_string())],
            r#"{"errors":["too many login attempts"]}"#.to_string(),
        )
    })
    .await;
    let r = coffer(
        &limited.addr,
        home.path(),
        &["login", "username=alice"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "Error: too many login attempts (429); try again in 30s\n"
    );
    assert!(!home.path().join(".vault-token").exists());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_and_removes_token_file() {
    let stub = common::start(|req| match req.header("x-vault-token") {
        Some("hvs.REVOKED") => (403, r#"{"errors":["permission denied"]}"#.into()),
        Some("hvs.BROKEN") => (500, r#"{"errors":["internal error"]}"#.into()),
        Some("hvs.ROOT") if req.target == "/v1/auth/token/lookup-self" => (
            200,
            r#"{"data":{"policies":["root"],"accessor":"acc-root"}}"#.into(),
        ),
        _ if req.target == "/v1/auth/token/lookup-self" => (
            200,
            r#"{"data":{"policies":["default","dev"],"accessor":"acc-u"}}"#.into(),
        ),
        _ => (204, String::new()),
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".vault-token");
    std::fs::write(&file, format!("{USER_TOKEN}\n")).unwrap();

    let r = coffer(&stub.addr, home.path(), &["logout"], &[], "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("Success! The token has been revoked"),
        "{}",
        r.stdout
    );
    assert!(!file.exists());
    let reqs = stub.requests();
    let sent: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        sent,
        [
            ("GET", "/v1/auth/token/lookup-self"),
            ("POST", "/v1/auth/token/revoke-self")
        ]
    );
    assert!(reqs
        .iter()
        .all(|r| r.header("x-vault-token") == Some(USER_TOKEN)));

    // Nothing left: says so, exit 0, no request.
    let r = coffer(&stub.addr, home.path(), &["logout"], &[], "").await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("not logged in"), "{}", r.stdout);
    assert_eq!(stub.requests().len(), 2);

    // A root token is kept unless -force: no revocation, the file stays, exit 1.
    std::fs::write(&file, "hvs.ROOT\n").unwrap();
    let r = coffer(&stub.addr, home.path(), &["logout"], &[], "").await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("root token and was NOT revoked"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("-force"), "{}", r.stderr);
    assert!(!r.stderr.contains("hvs.ROOT"), "{}", r.stderr);
    assert!(file.exists());
    assert!(stub
        .requests()
        .iter()
        .all(|r| r.target != "/v1/auth/token/revoke-self"
            || r.header("x-vault-token") != Some("hvs.ROOT")));
    let r = coffer(&stub.addr, home.path(), &["logout", "-force"], &[], "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!file.exists());
    let last = stub.requests().pop().unwrap();
    assert_eq!(last.target, "/v1/auth/token/revoke-self");
    assert_eq!(last.header("x-vault-token"), Some("hvs.ROOT"));

    // A token the server no longer accepts: logged out all the same.
    std::fs::write(&file, "hvs.REVOKED\n").unwrap();
    let r = coffer(&stub.addr, home.path(), &["logout"], &[], "").await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no longer valid"), "{}", r.stdout);
    assert!(!file.exists());

    // The server failed: the token may still be live, so the file stays for a retry.
    std::fs::write(&file, "hvs.BROKEN\n").unwrap();
    let r = coffer(&stub.addr, home.path(), &["logout"], &[], "").await;
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr, "Error: internal error (500)\n");
    assert!(file.exists());

    // A token from the environment is revoked; the variable cannot be unset for the user.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["logout"],
        &[("COFFER_TOKEN", "hvs.ENV")],
        "",
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("unset COFFER_TOKEN"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "hvs.BROKEN\n",
        "another login's file is left alone"
    );
    let last = stub.requests().pop().unwrap();
    assert_eq!(last.target, "/v1/auth/token/revoke-self");
    assert_eq!(last.header("x-vault-token"), Some("hvs.ENV"));
}

/// The password the user chooses while enrolling (the admin set [`PASSWORD`]).
const NEW_PASSWORD: &str = "my own new passphrase";
/// The one-time enrolment token an admin issued.
const ENROLL_TOKEN: &str = "cet.one-time-enrolment-token";

fn totp_server(req: &Captured) -> (u16, String) {
    let body = req.json();
    let with_token = body["enrollment_token"] == ENROLL_TOKEN;
    let confirming = req.target.starts_with("/v1/auth/userpass/totp/confirm/");
    // After an enrolment with a token, confirm proves the new password.
    let expected = if with_token && confirming {
        NEW_PASSWORD
    } else {
        PASSWORD
    };
    if body["password"] != expected {
        return invalid();
    }
    match req.target.as_str() {
        "/v1/auth/userpass/totp/enroll/alice"
            if (with_token && body["new_password"] == NEW_PASSWORD) || body["code"].is_string() =>
        {
            (
                200,
                json!({"data": {"url": URL, "barcode": "iVBORw0KGgo=", "method_id": METHOD_ID}})
                    .to_string(),
            )
        }
        "/v1/auth/userpass/totp/confirm/alice" if body["code"] == CODE => {
            let codes: Vec<String> = (0..10)
                .map(|i| format!("RC{i:02}-AAAA-BBBB-CCCC"))
                .collect();
            (200, json!({"data": {"recovery_codes": codes}}).to_string())
        }
        _ => invalid(),
    }
}

fn block_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            l.chars().count() > 20
                && l.chars()
                    .take(20)
                    .all(|c| matches!(c, ' ' | '█' | '▀' | '▄'))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enroll_shows_qr_url_and_recovery_codes() {
    let stub = common::start(totp_server).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("COFFER_PASSWORD", PASSWORD),
        ("COFFER_NEW_PASSWORD", NEW_PASSWORD),
        ("COFFER_ENROLLMENT_TOKEN", ENROLL_TOKEN),
    ];
    let r = coffer(
        &stub.addr,
        home.path(),
        &["totp", "enroll", "-confirm-code", CODE, "alice"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A URL this long needs a QR code of at least version 5 (37 modules + quiet zone):
    // more than 20 lines of half blocks.
    assert!(block_lines(&r.stdout) > 20, "{}", r.stdout);
    assert!(r.stdout.contains(&format!("\n{URL}\n")), "{}", r.stdout);
    for i in 0..10 {
        assert!(
            r.stdout.contains(&format!("    RC{i:02}-AAAA-BBBB-CCCC\n")),
            "{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("shown only this once"), "{}", r.stdout);
    let qr_at = r.stdout.find('█').unwrap();
    let codes_at = r.stdout.find("RC00").unwrap();
    assert!(qr_at < codes_at);
    for secret in [PASSWORD, NEW_PASSWORD, ENROLL_TOKEN] {
        assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
    }

    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].json(),
        json!({"enrollment_token": ENROLL_TOKEN, "password": PASSWORD, "new_password": NEW_PASSWORD})
    );
    assert_eq!(reqs[1].target, "/v1/auth/userpass/totp/confirm/alice");
    assert_eq!(
        reqs[1].json(),
        json!({"enrollment_token": ENROLL_TOKEN, "password": NEW_PASSWORD, "code": CODE}),
        "confirm proves the new password and spends the token"
    );
    assert!(reqs.iter().all(|r| r.header("x-vault-token").is_none()));
    let env = [("COFFER_PASSWORD", PASSWORD)];

    // JSON: exactly the URL and the codes on stdout; the warning on stderr.
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "totp",
            "enroll",
            "-format=json",
            "-code=999999",
            "-confirm-code=123456",
            "alice",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["url", "recovery_codes"]);
    assert_eq!(v["url"], URL);
    assert_eq!(v["recovery_codes"].as_array().unwrap().len(), 10);
    assert!(r.stderr.contains("shown only this once"), "{}", r.stderr);
    assert_eq!(
        stub.requests()[2].json(),
        json!({"password": PASSWORD, "code": "999999"}),
        "re-enrolment sends the current code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enroll_without_terminal_and_split_confirm() {
    let stub = common::start(totp_server).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("COFFER_PASSWORD", PASSWORD),
        ("COFFER_NEW_PASSWORD", NEW_PASSWORD),
    ];

    // No enrolment token (and no current code): refused before anything is sent.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["totp", "enroll", "-no-confirm", "alice"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("enrollment token is required"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("COFFER_ENROLLMENT_TOKEN"), "{}", r.stderr);
    assert!(stub.requests().is_empty());
    let env = [
        ("COFFER_PASSWORD", PASSWORD),
        ("COFFER_NEW_PASSWORD", NEW_PASSWORD),
        ("COFFER_ENROLLMENT_TOKEN", ENROLL_TOKEN),
    ];

    // Nobody to type the app's code: refused before an enrolment is started.
    let r = coffer(
        &stub.addr,
        home.path(),
        &["totp", "enroll", "alice"],
        &env,
        "",
    )
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("-confirm-code"), "{}", r.stderr);
    assert!(stub.requests().is_empty());

    // Scripted: enrol without confirming, then confirm with a code computed elsewhere.
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "totp",
            "enroll",
            "-no-confirm",
            &format!("-enrollment-token={ENROLL_TOKEN}"),
            "alice",
        ],
        &env[..2],
        "",
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(block_lines(&r.stdout) > 20, "{}", r.stdout);
    assert!(r
        .stdout
        .contains("coffer totp confirm -path=userpass alice"));
    assert!(!r.stdout.contains("RC00"));
    let r = coffer(
        &stub.addr,
        home.path(),
        &[
            "totp",
            "confirm",
            "-password-stdin",
            "-code",
            CODE,
            "-enrollment-token",
            ENROLL_TOKEN,
            "alice",
        ],
        &[],
        &format!("{NEW_PASSWORD}\n"),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("    RC09-AAAA-BBBB-CCCC\n"),
        "{}",
        r.stdout
    );
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].target, "/v1/auth/userpass/totp/confirm/alice");
}

/// Through a pseudo-terminal: the password prompt, no echo of the password, then the code
/// prompt (two-step flow), and the token stored.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_login_prompts_without_echo() {
    let stub = common::start(userpass_server(true)).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".vault-token");
    let addr = stub.addr.clone();
    let home_path = home.path().to_path_buf();
    let screen = tokio::task::spawn_blocking(move || pty::login(&addr, &home_path))
        .await
        .unwrap();

    assert!(
        screen.contains("Success! You are now authenticated"),
        "{screen}"
    );
    assert!(
        has_row(&screen.replace('\r', ""), "username", "alice"),
        "{screen}"
    );
    for secret in [PASSWORD, CODE, USER_TOKEN] {
        assert!(!screen.contains(secret), "{secret} echoed: {screen}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), USER_TOKEN);
    assert_eq!(file_mode(&file), 0o600);
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].json(), json!({"password": PASSWORD}), "no code yet");
    assert_eq!(
        reqs[1].json(),
        json!({"mfa_request_id": REQUEST_ID, "mfa_payload": {METHOD_ID: [CODE]}})
    );
}

#[cfg(unix)]
mod pty {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use nix::sys::termios::{tcgetattr, LocalFlags};
    use rexpect::session::PtySession;

    use super::{CODE, PASSWORD};

    const TIMEOUT_MS: u64 = 30_000;

    /// Wait until the program has switched terminal echo off (rpassword prints the prompt
    /// first, then changes the terminal): typing earlier would be echoed by the kernel.
    fn wait_for_echo_off(p: &PtySession) {
        let master = p.process().get_file_handle().unwrap();
        let deadline = Instant::now() + Duration::from_millis(TIMEOUT_MS);
        loop {
            let flags = tcgetattr(&master).unwrap().local_flags;
            if !flags.contains(LocalFlags::ECHO) {
                return;
            }
            assert!(Instant::now() < deadline, "echo was never switched off");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Run `coffer login -method=userpass alice` on a terminal, type the password and the
    /// code, and return everything the terminal showed after the first prompt.
    pub fn login(addr: &str, home: &Path) -> String {
        // rexpect starts programs with echo off; a person's terminal has it on. The shell
        // turns it on, says so, proves it by echoing a typed line, then becomes coffer.
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"stty echo && echo ECHO-IS-ON && IFS= read -r line && exec "$0" "$@""#)
            .arg(env!("CARGO_BIN_EXE_coffer"))
            .args(["login", "-method=userpass", "alice"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("COFFER_ADDR", addr)
            .env("HOME", home);
        let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).unwrap();

        p.exp_string("ECHO-IS-ON").unwrap();
        p.send_line("typed-with-echo").unwrap();
        p.exp_string("typed-with-echo").unwrap();

        p.exp_string("Password (will be hidden): ").unwrap();
        wait_for_echo_off(&p);
        p.send_line(PASSWORD).unwrap();
        let between = p.exp_string("TOTP code (or recovery code): ").unwrap();
        assert!(!between.contains(PASSWORD), "password echoed: {between:?}");
        wait_for_echo_off(&p);
        p.send_line(CODE).unwrap();
        let rest = p.exp_eof().unwrap();
        format!("{between}TOTP code (or recovery code): {rest}")
    }
}
