//! `coffer login`, `coffer logout` and `coffer totp confirm` against the real
//! server: through a pseudo-terminal (password hidden, then the code) and
//! non-interactively.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use coffer_tests::totp::{code, enrollment_token, seconds_left_in_step, secret_from_url};
use coffer_tests::{binary, Backend, TestServer};
use serde_json::json;

const PW: &str = "a long enough password";
/// What the admin sets at creation; enrolment replaces it with [`PW`].
const ADMIN_PW: &str = "the admin's first password";

#[tokio::test]
async fn coffer_login_with_password_and_code() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    s.call(
        "POST",
        "sys/auth/userpass",
        Some(&root),
        Some(json!({"type": "userpass"})),
    )
    .await;
    s.call(
        "POST",
        "auth/userpass/users/alice",
        Some(&root),
        Some(json!({"password": ADMIN_PW, "token_policies": ["read-only"]})),
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let coffer = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(binary("coffer"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("COFFER_ADDR", &s.addr)
            .env("HOME", home.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Enrol without confirming (a script cannot know the code before the secret),
    // with the admin's enrolment token, choosing a new password; then confirm with
    // the new password and a code from the secret.
    let (st, _, err) = coffer(
        &["-format=json", "totp", "enroll", "-no-confirm", "alice"],
        &[("COFFER_PASSWORD", ADMIN_PW), ("COFFER_NEW_PASSWORD", PW)],
    );
    assert_eq!(st, 1, "no enrolment token (a usage error): {err}");
    assert!(err.contains("enrollment token is required"), "{err}");
    let token = enrollment_token(&s, &root, "alice").await;
    let (st, out, err) = coffer(
        &[
            "-format=json",
            "totp",
            "enroll",
            "-no-confirm",
            &format!("-enrollment-token={token}"),
            "alice",
        ],
        &[("COFFER_PASSWORD", ADMIN_PW), ("COFFER_NEW_PASSWORD", PW)],
    );
    assert_eq!(st, 0, "{out}{err}");
    let url = serde_json::from_str::<serde_json::Value>(&out).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = secret_from_url(&url);
    let (st, out, err) = coffer(
        &[
            "totp",
            "confirm",
            &format!("-code={}", code(&secret, -1)),
            "alice",
        ],
        &[("COFFER_PASSWORD", PW), ("COFFER_ENROLLMENT_TOKEN", &token)],
    );
    assert_eq!(st, 0, "{out}{err}");
    assert!(
        out.matches('-').count() >= 30,
        "ten recovery codes shown: {out}"
    );

    // Without a terminal and without a password source: one clear line, exit 1 (usage).
    let (st, _, err) = coffer(&["login", "-method=userpass", "alice"], &[]);
    assert_eq!(st, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no terminal"), "{err}");

    // Through a pseudo-terminal: the password prompt hides input, then the code.
    let mut cmd = Command::new(binary("coffer"));
    cmd.args(["login", "-method=userpass", "alice"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("COFFER_ADDR", &s.addr)
        .env("HOME", home.path());
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("Password (will be hidden): ").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_line(PW).unwrap();
    let shown = p.exp_string("TOTP code (or recovery code): ").unwrap();
    assert!(!shown.contains(PW), "the password was echoed: {shown:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_line(&code(&secret, 0)).unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("alice"), "says who you are: {rest}");
    let token_file = home.path().join(".vault-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let (st, me) = s
        .call("GET", "auth/token/lookup-self", Some(token.trim()), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        me["data"]["meta"],
        json!({"mfa": "true", "username": "alice"})
    );

    // Non-interactive: password from the environment, code as a flag.
    let (st, out, err) = coffer(
        &[
            "login",
            "-method=userpass",
            &format!("-code={}", code(&secret, 1)),
            "alice",
        ],
        &[("COFFER_PASSWORD", PW)],
    );
    assert_eq!(st, 0, "{out}{err}");
    let second = std::fs::read_to_string(&token_file).unwrap();
    assert_ne!(second, token);

    // Logout revokes the token and forgets it.
    let (st, out, err) = coffer(&["logout"], &[]);
    assert_eq!(st, 0, "{out}{err}");
    assert!(!token_file.exists());
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(second.trim()), None)
            .await
            .0,
        403
    );
    let log = s.log();
    assert!(
        !log.contains(PW) && !log.contains(second.trim()),
        "secret in the server log"
    );
}

/// Through a pseudo-terminal, `coffer totp enroll` asks for the given password and
/// then twice, hidden, for the user's own new one; only the new one works after
/// the confirmation.
#[tokio::test]
async fn coffer_totp_enroll_asks_for_a_new_password() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    s.call(
        "POST",
        "sys/auth/userpass",
        Some(&root),
        Some(json!({"type": "userpass"})),
    )
    .await;
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/bob",
            Some(&root),
            Some(json!({"password": ADMIN_PW})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let token = enrollment_token(&s, &root, "bob").await;
    let home = tempfile::tempdir().unwrap();
    let spawn = || {
        let mut cmd = Command::new(binary("coffer"));
        cmd.args(["totp", "enroll", "-no-confirm", "bob"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("COFFER_ADDR", &s.addr)
            .env("COFFER_ENROLLMENT_TOKEN", &token)
            .env("HOME", home.path());
        rexpect::session::spawn_command(cmd, Some(30_000)).unwrap()
    };
    let answer = |p: &mut rexpect::session::PtySession, prompt: &str, text: &str| {
        let shown = p.exp_string(prompt).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        p.send_line(text).unwrap();
        shown
    };
    // Two different new passwords: refused, nothing started.
    let mut p = spawn();
    answer(&mut p, "Password (will be hidden): ", ADMIN_PW);
    answer(&mut p, "New password", PW);
    answer(&mut p, "Repeat the new password: ", "something else");
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("do not match"), "{rest}");

    let mut p = spawn();
    answer(&mut p, "Password (will be hidden): ", ADMIN_PW);
    answer(&mut p, "New password", PW);
    let shown = answer(&mut p, "Repeat the new password: ", PW);
    let rest = p.exp_eof().unwrap();
    for text in [&shown, &rest] {
        assert!(
            !text.contains(PW) && !text.contains(ADMIN_PW),
            "a password was echoed"
        );
    }
    let url = rest
        .lines()
        .find(|l| l.trim_start().starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("no otpauth URL in {rest}"))
        .trim()
        .to_owned();
    let secret = secret_from_url(&url);
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/totp/confirm/bob",
            None,
            Some(json!({"enrollment_token": token, "password": PW, "code": code(&secret, -1)})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/login/bob",
            None,
            Some(json!({"password": PW, "totp": code(&secret, 0)})),
        )
        .await;
    assert_eq!(st, 200, "the new password works: {body}");
}

/// The text a terminal shows for `raw`: ANSI colour sequences and carriage returns gone.
/// rexpect hands over the bytes one char each; they are UTF-8.
fn on_screen(raw: &str) -> String {
    let bytes: Vec<u8> = raw
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::new();
    let mut in_escape = false;
    for c in text.chars() {
        match c {
            '\x1b' => in_escape = true,
            c if in_escape => in_escape = !c.is_ascii_alphabetic(),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// `coffer totp enroll` in an 80x24 terminal: the QR code, the key and the otpauth URL
/// beside it and the code prompt all fit on one screen, the code is drawn with explicit
/// colours, and the URL read off the screen is the one that works.
#[tokio::test]
async fn coffer_totp_enroll_fits_an_80x24_terminal() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    s.call(
        "POST",
        "sys/auth/userpass",
        Some(&root),
        Some(json!({"type": "userpass"})),
    )
    .await;
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/carol",
            Some(&root),
            Some(json!({"password": ADMIN_PW})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let token = enrollment_token(&s, &root, "carol").await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary("coffer"));
    cmd.args(["totp", "enroll", "carol"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("COFFER_ADDR", &s.addr)
        .env("COFFER_ENROLLMENT_TOKEN", &token)
        .env("HOME", home.path())
        .env("TERM", "xterm")
        .env("COLUMNS", "80")
        .env("LINES", "24");
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    for (prompt, text) in [
        ("Password (will be hidden): ", ADMIN_PW),
        ("New password", PW),
        ("Repeat the new password: ", PW),
    ] {
        p.exp_string(prompt).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        p.send_line(text).unwrap();
    }
    let raw = p.exp_string("Code shown by the app: ").unwrap();
    assert!(
        raw.contains("\x1b[30;") || raw.contains("\x1b[97;"),
        "explicit colours"
    );
    let screen = on_screen(&raw);
    let lines: Vec<&str> = screen.trim_start_matches('\n').lines().collect();
    // Everything since the last password prompt, plus the prompt's own row.
    assert!(lines.len() < 24, "{} rows:\n{screen}", lines.len() + 1);
    assert!(
        lines.iter().all(|l| l.chars().count() <= 80),
        "wider than 80 columns:\n{screen}"
    );
    let (row, col) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| l.find("otpauth URL:").map(|c| (i, l[..c].chars().count())))
        .unwrap_or_else(|| panic!("no URL beside the code:\n{screen}"));
    assert!(col > 40, "the URL is beside the code, not below it");
    let url: String = lines[row + 1..]
        .iter()
        .map(|l| l.chars().skip(col).collect::<String>())
        .take_while(|piece| !piece.trim().is_empty())
        .collect();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    let secret = secret_from_url(&url);
    p.send_line(&code(&secret, 0)).unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("Success! TOTP is enrolled for carol"),
        "{rest}"
    );
    for text in [&raw, &rest] {
        assert!(
            !text.contains(PW) && !text.contains(ADMIN_PW),
            "a password was echoed"
        );
    }
}
