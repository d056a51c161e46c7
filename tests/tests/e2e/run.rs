//! `coffer run` against the real server: the secret's fields arrive in the child's
//! environment, the child's exit code is passed through, SIGTERM to `coffer run`
//! reaches the child, two fields mapping to one name are refused (both named, no
//! value shown), `--template` renders a file first, and no secret value is ever
//! printed, not even with `-v`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use coffer_tests::{binary, Backend, TestServer};
use serde_json::json;

const PASSWORD: &str = "expected-Pa55-value";

async fn server(backend: Backend) -> Option<(TestServer, String)> {
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    for (path, data) in [
        (
            "secret/data/app/db",
            json!({"password": PASSWORD, "db-user": "app", "port": 5432, "opts": {"tls": true}}),
        ),
        ("secret/data/app/other", json!({"db_user": "someone-else"})),
    ] {
        let (st, body) = s
            .call("POST", path, Some(&root), Some(json!({ "data": data })))
            .await;
        assert_eq!(st, 200, "{body}");
    }
    Some((s, root))
}

fn coffer(s: &TestServer, token: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("coffer"));
    cmd.args(args)
        .env("COFFER_ADDR", &s.addr)
        .env("COFFER_TOKEN", token)
        .env("COFFER_TOKEN_FILE", s.dir().join("no-token-file"))
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN");
    cmd
}

fn output(mut cmd: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

async fn fields_arrive_and_codes_pass_through(backend: Backend) {
    let Some((s, root)) = server(backend).await else {
        return;
    };
    let check = format!(
        r#"test "$PASSWORD" = '{PASSWORD}' && test "$DB_USER" = app && test "$PORT" = 5432 && test "$OPTS" = '{{"tls":true}}'"#
    );
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &["run", "--secret", "secret/app/db", "--", "sh", "-c", &check],
    ));
    assert_eq!(code, 0, "{err}");
    // The issue's own example.
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--",
            "sh",
            "-c",
            &format!(r#"test "$PASSWORD" = {PASSWORD}"#),
        ],
    ));
    assert_eq!(code, 0, "{err}");
    // With a prefix; the parent's environment is still there.
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret=secret/app/db",
            "--prefix",
            "APP_",
            "--",
            "sh",
            "-c",
            r#"test -n "$APP_PASSWORD" && test -z "$PASSWORD" && test -n "$COFFER_ADDR""#,
        ],
    ));
    assert_eq!(code, 0, "{err}");
    // A template rendered before the child starts, readable by its owner only.
    let tpl = s.dir().join("app.conf.tpl");
    let conf = s.dir().join("app.conf");
    std::fs::write(&tpl, "user={{ DB_USER }}\npassword={{PASSWORD}}\n").unwrap();
    let spec = format!("{}:{}", tpl.display(), conf.display());
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--template",
            &spec,
            "--",
            "sh",
            "-c",
            &format!(
                r#"test "$(cat '{}')" = "$(printf 'user=app\npassword={PASSWORD}')""#,
                conf.display()
            ),
        ],
    ));
    assert_eq!(code, 0, "{err}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&conf).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(&tpl, "x={{ NOT_SET }}").unwrap();
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--template",
            &spec,
            "--",
            "true",
        ],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("NOT_SET") && !err.contains(PASSWORD), "{err}");
    // A failing child's code comes back as ours.
    let (code, _, _) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
    ));
    assert_eq!(code, 7);
    let (code, _, _) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ],
    ));
    assert_eq!(code, 128 + 9);
    // A missing secret and a bad token fail before anything runs.
    let marker = s.dir().join("ran");
    let touch = format!("touch {}", marker.display());
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/missing",
            "--",
            "sh",
            "-c",
            &touch,
        ],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secret/app/missing"), "{err}");
    let (code, _, err) = output(coffer(
        &s,
        "hvs.bad",
        &["run", "--secret", "secret/app/db", "--", "sh", "-c", &touch],
    ));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("403") || err.contains("permission denied"),
        "{err}"
    );
    assert!(!marker.exists(), "the command must not run");
    // A command that does not exist: 127, as in a shell.
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &["run", "--secret", "secret/app/db", "--", "/nonexistent/app"],
    ));
    assert_eq!(code, 127, "{err}");
}

#[tokio::test]
async fn fields_arrive_and_codes_pass_through_sqlite() {
    fields_arrive_and_codes_pass_through(Backend::Sqlite).await;
}

#[tokio::test]
async fn fields_arrive_and_codes_pass_through_postgres() {
    fields_arrive_and_codes_pass_through(Backend::Postgres).await;
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn sigterm_reaches_the_child() {
    let Some((s, root)) = server(Backend::Sqlite).await else {
        return;
    };
    let ready = s.dir().join("ready");
    let got = s.dir().join("got-term");
    let script = format!(
        "trap 'echo term > {got}; exit 3' TERM; touch {ready}; while :; do sleep 0.1; done",
        got = got.display(),
        ready = ready.display()
    );
    let mut cmd = coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&ready, "the child did not start");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        assert!(
            Instant::now() < deadline,
            "coffer run did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(std::fs::read_to_string(&got).unwrap().trim(), "term");
    assert_eq!(code, Some(3), "the trap's exit code");
}

#[tokio::test]
async fn collisions_are_refused_and_values_never_printed() {
    let Some((s, root)) = server(Backend::Sqlite).await else {
        return;
    };
    let marker = s.dir().join("ran");
    let touch = format!("touch {}", marker.display());
    let (code, out, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--secret",
            "secret/app/db",
            "--secret",
            "secret/app/other",
            "--",
            "sh",
            "-c",
            &touch,
        ],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("secret/app/db field \"db-user\""), "{err}");
    assert!(err.contains("secret/app/other field \"db_user\""), "{err}");
    assert!(err.contains("DB_USER"), "{err}");
    assert!(
        !err.contains("someone-else") && !out.contains("someone-else"),
        "{err}"
    );
    assert!(!marker.exists());

    // -v names the secrets and variables, never a value; a child writing nothing
    // leaves no value on stdout or stderr.
    for extra in [&["-v"][..], &["-v", "-format=json"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--secret", "secret/app/db", "--", "true"]);
        let (code, out, err) = output(coffer(&s, &root, &args));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("PASSWORD") && err.contains("secret/app/db"),
            "{err}"
        );
        for value in [PASSWORD, "5432", "\"tls\""] {
            assert!(!out.contains(value), "stdout shows {value}: {out}");
            assert!(!err.contains(value), "stderr shows {value}: {err}");
        }
        assert!(!err.contains(&root) && !out.contains(&root));
    }
    // --auth=cert without a certificate is a usage error, before any request.
    let (code, _, err) = output(coffer(
        &s,
        &root,
        &[
            "run",
            "--auth",
            "cert",
            "--secret",
            "secret/app/db",
            "--",
            "true",
        ],
    ));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("client certificate"), "{err}");
}
