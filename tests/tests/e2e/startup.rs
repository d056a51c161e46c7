//! Startup messages: the real `cofferd` started with a bad input stops with exit
//! code 1 and one line that says what to fix; good inputs that used to be refused
//! (`localhost:8200`, Go-style flags) start it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `cofferd` process with its output in files.
struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Proc {
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let out = dir.join(format!("{name}.out"));
        let mut cmd = Command::new(coffer_tests::binary("cofferd"));
        cmd.args(args)
            .env_remove("COFFER_STORAGE_URL")
            .env_remove("COFFER_LOG_FORMAT")
            .env_remove("COFFER_LOG_LEVEL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().unwrap(),
            dir: dir.join(name),
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("out")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension("err")).unwrap_or_default()
    }

    /// Waits for the exit (a liveness bound, not a timing assertion).
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cofferd did not exit:\n{}{}", self.stdout(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Either the address it listens on (from the text banner or the JSON
    /// "listening" event), or `None` once it has exited.
    fn listening_or_exit(&mut self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.stdout() + &self.stderr();
            if let Some(line) = text.lines().find(|l| l.contains("listening on ")) {
                return Some(line.rsplit(' ').next().unwrap().to_owned());
            }
            if let Some(url) = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "listening")
                .and_then(|v| v["url"].as_str().map(str::to_owned))
            {
                return Some(url);
            }
            if self.child.try_wait().unwrap().is_some() {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "cofferd neither listened nor exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listening(&mut self) -> String {
        match self.listening_or_exit() {
            Some(addr) => addr,
            None => panic!(
                "cofferd exited before listening:\n{}{}",
                self.stdout(),
                self.stderr()
            ),
        }
    }

    /// SIGTERM and a clean exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        assert_eq!(self.exit_code(), Some(0), "{}", self.stderr());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite_config(dir: &Path, listener: &str) -> PathBuf {
    let path = dir.join("coffer.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\nurl = 'sqlite://{}'\n\n[listener]\n{listener}\n",
            dir.join("coffer.db").display()
        ),
    )
    .unwrap();
    path
}

/// Runs cofferd to its exit on `config`; returns (exit code, stderr).
fn fails_with(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let mut p = Proc::spawn(dir.path(), &["--config", path.to_str().unwrap()], &[]);
    let code = p.exit_code();
    (code, p.stderr())
}

#[test]
fn a_typo_in_a_listener_names_the_key_the_table_and_the_line() {
    let (code, err) = fails_with(
        "[storage]\nurl = 'sqlite::memory:'\n\n[listener]\naddress = '127.0.0.1:0'\ntls_disabel = true\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown field `tls_disabel`"), "{err}");
    assert!(
        err.contains("(line 6, column 1: [listener] tls_disabel)"),
        "{err}"
    );
    assert!(!err.contains("variant") && !err.contains("panic"), "{err}");
}

#[test]
fn a_missing_config_file_says_no_such_file_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn(dir.path(), &["--config", "/nonexistent/coffer.toml"], &[]);
    assert_eq!(p.exit_code(), Some(1));
    assert_eq!(
        p.stderr().trim(),
        "Error: cannot read config file: No such file or directory: /nonexistent/coffer.toml"
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let (code, err) = fails_with(
        "[storage]\nurl = 'postgres://coffer:pw-canary@127.0.0.1:1/coffer'\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot open storage (PostgreSQL at 127.0.0.1:1/coffer): cannot connect: Connection refused"),
        "{err}"
    );
    assert!(!err.contains("pw-canary"), "{err}");
}

/// A database address that accepts connections and never answers (a firewall
/// that drops, a wrong port on a busy host) stops the server after the default
/// five seconds, with the address.
#[test]
fn a_database_that_never_answers_stops_the_server_at_the_connect_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepted connections are kept open and never written to.
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().take(4) {
            held.push(conn);
        }
        held
    });
    let (code, err) = fails_with(&format!(
        "[storage]\nurl = 'postgres://coffer@127.0.0.1:{port}/coffer'\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n"
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "cannot open storage (PostgreSQL at 127.0.0.1:{port}/coffer): no answer within 5s"
        )),
        "{err}"
    );
    assert!(err.contains("connect_timeout"), "{err}");
    drop(holder);
}

#[test]
fn a_port_in_use_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (code, err) = fails_with(&format!(
        "[storage]\nurl = 'sqlite::memory:'\n[listener]\naddress = '{addr}'\ntls_disable = true\n"
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("cannot listen on {addr}: Address already in use")),
        "{err}"
    );
}

#[tokio::test]
async fn localhost_is_accepted_as_a_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "address = 'localhost:0'\ntls_disable = true");
    let mut p = Proc::spawn(dir.path(), &["--config", config.to_str().unwrap()], &[]);
    let addr = p.listening();
    assert!(addr.starts_with("http://127.0.0.1:"), "{addr}");
    let health = reqwest::get(format!("{addr}/v1/sys/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 501, "uninitialised");
}

#[tokio::test]
async fn go_style_single_dash_flags_work_as_for_bao_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Proc::spawn(
        dir.path(),
        &[
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-root-token-id=go-style-root",
        ],
        &[],
    );
    let addr = dev.listening();
    let resp = reqwest::Client::new()
        .get(format!("{addr}/v1/auth/token/lookup-self"))
        .header("X-Vault-Token", "go-style-root")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the -dev-root-token-id was used"
    );
    let config = sqlite_config(dir.path(), "address = '127.0.0.1:0'\ntls_disable = true");
    let mut server = Proc::spawn(
        dir.path(),
        &[&format!("-config={}", config.display()), "-log-level=warn"],
        &[],
    );
    server.listening();
    assert!(
        !server.stderr().contains("INFO"),
        "-log-level=warn was applied:\n{}",
        server.stderr()
    );
}

/// Dev mode inside a container must bind the container's interfaces to be
/// reached through a published port; it does, with a loud warning.
#[tokio::test]
async fn dev_mode_listens_on_all_interfaces_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Proc::spawn(
        dir.path(),
        &["--dev", "--dev-listen-address", "0.0.0.0:0"],
        &[],
    );
    let addr = dev.listening();
    let port = addr.rsplit(':').next().unwrap();
    assert!(addr.starts_with("http://0.0.0.0:"), "{addr}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/v1/sys/health"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        dev.stderr().contains("DEV MODE on a non-loopback address"),
        "{}",
        dev.stderr()
    );
}

fn json_lines_only(what: &str, text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("{what}: not a JSON line ({e}): {l:?}\n{text}"))
        })
        .collect()
}

#[test]
fn json_log_format_means_json_lines_even_for_a_config_error() {
    let (code, err) = fails_with(
        "log_format = 'json'\n[storage]\nurl = 'sqlite::memory:'\n[listener]\naddress = '127.0.0.1:0'\ntls_disabel = true\n",
    );
    assert_eq!(code, Some(1));
    let lines = json_lines_only("stderr", &err);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{err}");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("[listener] tls_disabel"),
        "{err}"
    );
}

async fn put(client: &reqwest::Client, url: String, body: Value) -> Value {
    let resp = client.put(url).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap_or(Value::Null)
}

/// A whole life in JSON mode (start, init, unseal, seal, stop): nothing but JSON
/// lines on stdout and stderr, and init, unseal and seal are logged at info.
#[tokio::test]
async fn json_log_format_prints_json_lines_only_and_logs_the_lifecycle_at_info() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "address = '127.0.0.1:0'\ntls_disable = true");
    let mut p = Proc::spawn(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--log-format",
            "json",
            "--log-level",
            "info",
        ],
        &[],
    );
    let addr = p.listening();
    let http = reqwest::Client::new();
    let init = put(
        &http,
        format!("{addr}/v1/sys/init"),
        serde_json::json!({"secret_shares": 1, "secret_threshold": 1}),
    )
    .await;
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    put(
        &http,
        format!("{addr}/v1/sys/unseal"),
        serde_json::json!({ "key": key }),
    )
    .await;
    let resp = http
        .put(format!("{addr}/v1/sys/seal"))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    p.terminate();
    assert_eq!(p.stdout(), "", "stdout stays empty in JSON mode");
    let events = json_lines_only("stderr", &p.stderr());
    let info = |needle: &str| {
        events.iter().any(|e| {
            e["level"] == "INFO" && e["message"].as_str().is_some_and(|m| m.contains(needle))
        })
    };
    assert!(info("secrets enable -path=secret kv-v2"), "{events:?}");
    assert!(info("Coffer is unsealed"), "{events:?}");
    assert!(info("Coffer is sealed"), "{events:?}");
    let text = p.stderr();
    assert!(
        !text.contains(&key) && !text.contains(&root),
        "no secret in the log"
    );
}

#[test]
fn dev_mode_in_json_prints_its_credentials_as_one_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn(
        dir.path(),
        &[
            "--dev",
            "--dev-listen-address",
            "127.0.0.1:0",
            "--dev-root-token-id",
            "json-root",
            "--log-format",
            "json",
        ],
        &[],
    );
    p.listening();
    let out = json_lines_only("stdout", &p.stdout());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["root_token"], "json-root");
    json_lines_only("stderr", &p.stderr());
}

/// One SQLite file serves one server: of several started on it at once,
/// exactly one runs and every other stops with a message that says why.
#[test]
fn of_servers_started_at_once_on_one_sqlite_file_exactly_one_runs() {
    const SERVERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "address = '127.0.0.1:0'\ntls_disable = true");
    let args = ["--config", config.to_str().unwrap()];
    let mut procs: Vec<Proc> = (0..SERVERS)
        .map(|_| Proc::spawn(dir.path(), &args, &[]))
        .collect();
    let mut running = Vec::new();
    for (i, p) in procs.iter_mut().enumerate() {
        match p.listening_or_exit() {
            Some(_) => running.push(i),
            None => {
                assert_eq!(p.exit_code(), Some(1));
                let err = p.stderr();
                assert!(
                    err.contains("another cofferd is already using the SQLite database")
                        && err.contains("coffer.db.lock"),
                    "{err}"
                );
            }
        }
    }
    assert_eq!(running.len(), 1, "exactly one server runs");
    // When it stops, the file is free again.
    let winner = running[0];
    procs[winner].terminate();
    let mut again = Proc::spawn(dir.path(), &args, &[]);
    again.listening();
}
