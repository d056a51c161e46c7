//! End-to-end test harness: starts the real `cofferd` binary on an ephemeral
//! loopback port with its own SQLite file or PostgreSQL database, captures its
//! output, and gives tests an HTTP client. One test binary (`tests/e2e.rs`) holds
//! all end-to-end tests, so the link step happens once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bao;
pub mod jwks;
pub mod pg;
pub mod tls;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use pg::PgDatabase;

/// Which storage a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// a SQLite file in the server's temp dir
    Sqlite,
    /// a fresh PostgreSQL database
    Postgres,
}

/// Path of a workspace binary built by `cargo test --workspace` (or `cargo build`).
pub fn binary(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("{}_BIN", name.to_uppercase())) {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found; run `cargo build --workspace --bins` (the README's test command builds it)",
        path.display()
    );
    path
}

/// A running cofferd.
pub struct TestServer {
    child: Option<Child>,
    /// e.g. `http://127.0.0.1:40123`
    pub addr: String,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    db: Option<PgDatabase>,
    runs: usize,
    /// what the backend is
    pub backend: Backend,
    /// HTTP client (accepts the test CA when TLS is on)
    pub http: reqwest::Client,
    /// the CA the server's generated TLS certificate chains to, PEM
    tls_ca_pem: Option<String>,
    /// the `coffer_client` for the current address (rebuilt after a restart)
    api: std::sync::Mutex<Option<coffer_client::Client>>,
}

/// Options for a config-mode server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// extra lines for the `[listener]` table
    pub listener_extra: String,
    /// extra top-level lines
    pub top_extra: String,
    /// serve TLS with a generated certificate
    pub tls: bool,
    /// log level
    pub log_level: Option<String>,
    /// `[[listener]]` tables replacing the harness's `[listener]` (see
    /// [`tls::listener_table`]); `addr` and `http` talk to the first one, so
    /// make it one the harness can reach (plain, or TLS without `require`)
    pub listeners: Option<String>,
    /// a CA (PEM) the harness's `http` client trusts, for `listeners`
    pub trust_ca_pem: Option<String>,
}

impl TestServer {
    /// Starts a config-mode server (sealed, uninitialised). `None` when the
    /// backend is PostgreSQL and it is unavailable (and not required).
    pub async fn start(backend: Backend) -> Option<TestServer> {
        TestServer::start_with(backend, Options::default()).await
    }

    /// As [`TestServer::start`] with options.
    pub async fn start_with(backend: Backend, options: Options) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let (url, db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("coffer.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = PgDatabase::create().await?;
                (db.url().to_owned(), Some(db))
            }
        };
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(30));
        let mut tls_ca_pem = None;
        let tls_lines = if options.tls {
            let cert =
                rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                    .unwrap();
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, cert.cert.pem()).unwrap();
            std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
            http = http.add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            );
            tls_ca_pem = Some(cert.cert.pem());
            format!(
                "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
                cert_path, key_path
            )
        } else {
            "tls_disable = true\n".to_owned()
        };
        if let Some(pem) = &options.trust_ca_pem {
            http =
                http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
            tls_ca_pem = Some(pem.clone());
        }
        let listener_tables = match &options.listeners {
            Some(tables) => tables.clone(),
            None => format!(
                "[listener]\naddress = \"127.0.0.1:0\"\n{}{}\n",
                tls_lines, options.listener_extra
            ),
        };
        // API-created audit files must stay inside one directory: the server's
        // own temp dir, unless a test chooses another.
        let audit_dir = if options.top_extra.contains("audit_file_directory") {
            String::new()
        } else {
            format!("audit_file_directory = {:?}\n", dir.path())
        };
        let config = format!(
            "{}{}\nlog_level = {:?}\n[storage]\nurl = {:?}\n\n{}",
            audit_dir,
            options.top_extra,
            options.log_level.as_deref().unwrap_or("trace"),
            url,
            listener_tables,
        );
        let config_path = dir.path().join("coffer.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut server = TestServer {
            child: None,
            addr: String::new(),
            dir,
            config_path,
            db,
            runs: 0,
            backend,
            http: http.build().unwrap(),
            tls_ca_pem,
            api: Default::default(),
        };
        server.launch(&["--config".into(), server.config_path.display().to_string()]);
        Some(server)
    }

    /// Starts another node on the same config (and so the same storage), as a
    /// second `cofferd` of a cluster sharing one PostgreSQL. It comes up sealed;
    /// the first server keeps ownership of the database.
    pub fn second_node(&self) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut node = TestServer {
            child: None,
            addr: String::new(),
            config_path: self.config_path.clone(),
            dir,
            db: None,
            runs: 0,
            backend: self.backend,
            http: self.http.clone(),
            tls_ca_pem: self.tls_ca_pem.clone(),
            api: Default::default(),
        };
        node.launch(&["--config".into(), self.config_path.display().to_string()]);
        node
    }

    /// Starts `cofferd --dev` with a chosen root token.
    pub async fn start_dev(root_token: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = TestServer {
            child: None,
            addr: String::new(),
            config_path: dir.path().join("none"),
            dir,
            db: None,
            runs: 0,
            backend: Backend::Sqlite,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            tls_ca_pem: None,
            api: Default::default(),
        };
        server.launch(&[
            "--dev".into(),
            "--dev-listen-address".into(),
            "127.0.0.1:0".into(),
            "--dev-root-token-id".into(),
            root_token.into(),
        ]);
        server
    }

    fn launch(&mut self, args: &[String]) {
        self.runs += 1;
        let out =
            std::fs::File::create(self.dir.path().join(format!("stdout.{}", self.runs))).unwrap();
        let err =
            std::fs::File::create(self.dir.path().join(format!("stderr.{}", self.runs))).unwrap();
        let child = Command::new(binary("cofferd"))
            .args(args)
            .env_remove("COFFER_STORAGE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stdout =
                std::fs::read_to_string(self.dir.path().join(format!("stdout.{}", self.runs)))
                    .unwrap_or_default();
            if let Some(line) = stdout.lines().find(|l| l.contains("listening on ")) {
                self.addr = line.rsplit(' ').next().unwrap().to_owned();
                return;
            }
            // With log_format = "json" the address is only in the "listening" event.
            let stderr =
                std::fs::read_to_string(self.dir.path().join(format!("stderr.{}", self.runs)))
                    .unwrap_or_default();
            if let Some(url) = stderr
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|e| e["message"] == "listening")
                .and_then(|e| e["url"].as_str().map(str::to_owned))
            {
                self.addr = url;
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "cofferd exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "cofferd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URLs of the server's first `n` listeners, in the order of the
    /// config (waits until each has said it is listening).
    pub fn listener_urls(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stdout =
                std::fs::read_to_string(self.dir.path().join(format!("stdout.{}", self.runs)))
                    .unwrap_or_default();
            let urls: Vec<String> = stdout
                .lines()
                .filter(|l| l.contains("listening on "))
                .map(|l| l.rsplit(' ').next().unwrap().to_owned())
                .collect();
            if urls.len() >= n {
                return urls;
            }
            assert!(
                Instant::now() < deadline,
                "cofferd has not said it listens on {n} listeners:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a config-mode server that must fail: its exit status and everything
    /// it printed (for configuration errors).
    pub fn start_failing(options: Options) -> (std::process::ExitStatus, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("coffer.db").display());
        let listeners = options.listeners.unwrap_or_else(|| {
            format!(
                "[listener]\naddress = \"127.0.0.1:0\"\n{}\n",
                options.listener_extra
            )
        });
        let config = format!(
            "{}\n[storage]\nurl = {:?}\n\n{}",
            options.top_extra, url, listeners
        );
        let path = dir.path().join("coffer.toml");
        std::fs::write(&path, config).unwrap();
        let out = std::fs::File::create(dir.path().join("out")).unwrap();
        let mut child = Command::new(binary("cofferd"))
            .arg("--config")
            .arg(&path)
            .env_remove("COFFER_STORAGE_URL")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        // A config that unexpectedly works must not hang the test.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "cofferd did not stop within 30s:\n{}",
                    std::fs::read_to_string(dir.path().join("out")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(dir.path().join("out")).unwrap_or_default();
        (status, text)
    }

    /// Stops and starts the same server (same storage), which comes back sealed.
    pub fn restart(&mut self) {
        self.stop();
        let args = vec![
            "--config".to_owned(),
            self.config_path.display().to_string(),
        ];
        self.launch(&args);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (`"HUP"`, `"TERM"`) to the running server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// SIGTERM, then waits for a clean exit (a graceful shutdown).
    pub fn terminate(&mut self) {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "cofferd exited with {status}:\n{}",
                    self.log()
                );
                return;
            }
            assert!(Instant::now() < deadline, "cofferd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the same server again after [`TestServer::terminate`].
    pub fn start_again(&mut self) {
        let args = vec![
            "--config".to_owned(),
            self.config_path.display().to_string(),
        ];
        self.launch(&args);
    }

    /// Everything the server printed, across restarts.
    pub fn log(&self) -> String {
        let mut all = String::new();
        for run in 1..=self.runs {
            for stream in ["stdout", "stderr"] {
                if let Ok(mut f) =
                    std::fs::File::open(self.dir.path().join(format!("{stream}.{run}")))
                {
                    let _ = f.read_to_string(&mut all);
                }
            }
        }
        all
    }

    /// The SQLite database file (and its WAL), raw bytes.
    pub fn raw_sqlite_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for name in ["coffer.db", "coffer.db-wal"] {
            if let Ok(b) = std::fs::read(self.dir.path().join(name)) {
                all.extend(b);
            }
        }
        all
    }

    /// The PostgreSQL test database, if any.
    pub fn postgres(&self) -> Option<&PgDatabase> {
        self.db.as_ref()
    }

    /// The running server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A `kB` field of the server's `/proc/<pid>/status` (`VmHWM`, `VmRSS`) in bytes.
    pub fn proc_status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} not in /proc/<pid>/status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap();
        kb * 1024
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `coffer_client` for this server, with `token` (or none). Tests use the
    /// client library services embed, so its requests and answers are what the
    /// suite checks.
    pub fn client(&self, token: Option<&str>) -> coffer_client::Client {
        let mut cached = self.api.lock().unwrap_or_else(|p| p.into_inner());
        let current = cached
            .as_ref()
            .filter(|c| c.address().trim_end_matches('/') == self.addr)
            .cloned();
        let client = match current {
            Some(c) => c,
            None => {
                let mut builder =
                    coffer_client::Client::builder(&self.addr).timeout(Duration::from_secs(30));
                if let Some(pem) = &self.tls_ca_pem {
                    builder = builder.ca_cert_pem(pem.as_bytes());
                }
                let c = builder.build().unwrap();
                *cached = Some(c.clone());
                c
            }
        };
        match token {
            Some(t) => client.with_token(t),
            None => client,
        }
    }

    /// Sends a request through `coffer_client`; returns status and JSON body
    /// (Null when empty). A `?query` in `path` is sent as the query string.
    /// Requests the client refuses to send as written (`.`/`..` segments, which
    /// the canonical-path tests need) and non-JSON success bodies go through
    /// [`TestServer::raw_call`].
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (api_path, query) = path.split_once('?').unwrap_or((path, ""));
        let query: Vec<(String, String)> = url_query_pairs(query);
        let query: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let method_value = coffer_client::Method::from_bytes(method.as_bytes()).unwrap();
        let sent = self
            .client(token)
            .request(method_value, api_path, &query, body.as_ref(), &[])
            .await;
        match sent {
            Ok(resp) => (resp.status, resp.body.unwrap_or(Value::Null)),
            Err(
                coffer_client::ClientError::InvalidPath(_) | coffer_client::ClientError::Decode(_),
            ) => self.raw_call(method, path, token, body).await,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// Sends a request exactly as written with plain reqwest; returns status and
    /// JSON body (Null when empty, a string when it is not JSON).
    pub async fn raw_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{}", self.addr, path));
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// `sys/init` with n/t; returns (keys, root token).
    pub async fn init(&self, shares: u64, threshold: u64) -> (Vec<String>, String) {
        let (status, body) = self
            .call(
                "PUT",
                "sys/init",
                None,
                Some(serde_json::json!({"secret_shares": shares, "secret_threshold": threshold})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let keys = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        (keys, body["root_token"].as_str().unwrap().to_owned())
    }

    /// Unseals with the given keys; asserts it ends unsealed.
    pub async fn unseal(&self, keys: &[String]) {
        let mut last = Value::Null;
        for k in keys {
            let (status, body) = self
                .call(
                    "PUT",
                    "sys/unseal",
                    None,
                    Some(serde_json::json!({"key": k})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            last = body;
        }
        assert_eq!(last["sealed"], false, "{last}");
    }

    /// Initialised (1 share) and unsealed, with KV v2 at `secret/`; returns the root token.
    pub async fn ready(&self) -> (Vec<String>, String) {
        let (keys, root) = self.init(1, 1).await;
        self.unseal(&keys).await;
        let (status, body) = self
            .call(
                "POST",
                "sys/mounts/secret",
                Some(&root),
                Some(serde_json::json!({"type": "kv", "options": {"version": "2"}})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        (keys, root)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// TOTP helpers for tests: the secret from an `otpauth://` URL and its codes.
pub mod totp {
    /// Decodes RFC 4648 base32 (no padding).
    pub fn base32_decode(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut buf, mut bits) = (0u32, 0u32);
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'2'..=b'7' => c - b'2' + 26,
                _ => continue,
            };
            buf = (buf << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
            }
        }
        out
    }

    /// The base32 secret as written in an `otpauth://` URL.
    pub fn base32_from_url(url: &str) -> &str {
        url.split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
    }

    /// The secret in an `otpauth://` URL.
    pub fn secret_from_url(url: &str) -> Vec<u8> {
        base32_decode(base32_from_url(url))
    }

    /// Whether a six-digit `code` appears in `log` as a number of its own. A
    /// timestamp's fraction (after a `.`) and longer numbers do not count, so
    /// a code that happens to match a clock reading is not a false alarm.
    pub fn log_has_code(log: &str, code: &str) -> bool {
        let bytes = log.as_bytes();
        log.match_indices(code).any(|(at, _)| {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(at + code.len()).copied();
            let joined = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
            !joined(before) && !joined(after) && before != Some(b'.')
        })
    }

    /// The MFA request id and the TOTP method id of a password-only login's
    /// `auth.mfa_requirement`.
    pub fn mfa_requirement(login: &serde_json::Value) -> (String, String) {
        let requirement = &login["auth"]["mfa_requirement"];
        let field = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
        (
            field(&requirement["mfa_request_id"]),
            field(&requirement["mfa_constraints"]["totp"]["any"][0]["id"]),
        )
    }

    /// What a finished TOTP enrolment gave the user.
    pub struct Enrolled {
        /// the answer to `totp/enroll/<user>` (url, barcode, recovery codes)
        pub enroll: serde_json::Value,
        /// the `otpauth://` URL
        pub url: String,
        /// the decoded secret
        pub secret: Vec<u8>,
        /// the recovery codes `totp/confirm/<user>` returned
        pub recovery: Vec<String>,
        /// the (now spent) enrolment token
        pub enrollment_token: String,
    }

    /// An admin (`admin_token`) issues an enrolment token for `user`.
    pub async fn enrollment_token(
        server: &super::TestServer,
        admin_token: &str,
        user: &str,
    ) -> String {
        let (status, issued) = server
            .call(
                "POST",
                &format!("auth/userpass/users/{user}/enrollment-token"),
                Some(admin_token),
                None,
            )
            .await;
        assert_eq!(status, 200, "enrollment token for {user}: {issued}");
        issued["data"]["enrollment_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Enrols `user` of the `userpass/` mount as the user does: an admin
    /// (`admin_token`) issues an enrolment token, the user enrols with it and
    /// the password the admin set (`admin_password`), choosing `new_password`,
    /// and confirms with the new password and the previous step's code.
    pub async fn enrol(
        server: &super::TestServer,
        admin_token: &str,
        user: &str,
        admin_password: &str,
        new_password: &str,
    ) -> Enrolled {
        let token = enrollment_token(server, admin_token, user).await;
        let body = serde_json::json!({
            "enrollment_token": token,
            "password": admin_password,
            "new_password": new_password,
        });
        let (status, enroll) = server
            .call(
                "POST",
                &format!("auth/userpass/totp/enroll/{user}"),
                None,
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "enrol {user}: {enroll}");
        let url = enroll["data"]["url"].as_str().unwrap().to_owned();
        let secret = secret_from_url(&url);
        let confirm = serde_json::json!({
            "enrollment_token": token,
            "password": new_password,
            "code": code(&secret, -1),
        });
        let (status, confirmed) = server
            .call(
                "POST",
                &format!("auth/userpass/totp/confirm/{user}"),
                None,
                Some(confirm),
            )
            .await;
        assert_eq!(status, 200, "confirm {user}: {confirmed}");
        let recovery: Vec<String> = confirmed["data"]["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            enroll["data"]["recovery_codes"],
            serde_json::json!(recovery),
            "enrol shows the codes that confirm activates"
        );
        Enrolled {
            enroll,
            url,
            secret,
            recovery,
            enrollment_token: token,
        }
    }

    /// Now, by the wall clock the real server under test reads too.
    #[allow(clippy::disallowed_methods)]
    fn wall_clock_secs() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// The code for the step `offset` steps from now.
    pub fn code(secret: &[u8], offset: i64) -> String {
        let now = wall_clock_secs() as i64;
        let step = (now / 30 + offset) as u64;
        coffer_server::auth::totp::code_at_step(secret, step)
    }

    /// Seconds left in the current 30-second step.
    pub fn seconds_left_in_step() -> u64 {
        let now = wall_clock_secs();
        30 - now % 30
    }
}

/// `a=1&b=x%20y` as decoded pairs.
fn url_query_pairs(query: &str) -> Vec<(String, String)> {
    if query.is_empty() {
        return Vec::new();
    }
    reqwest::Url::parse(&format!("http://q/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::totp::log_has_code;

    #[test]
    fn a_code_counts_only_as_a_number_of_its_own() {
        assert!(log_has_code("code=123456 ok", "123456"));
        assert!(log_has_code("\"123456\"", "123456"));
        assert!(!log_has_code("at 20:16:08.123456Z", "123456"), "a clock");
        assert!(!log_has_code("id 91234567", "123456"), "a longer number");
        assert!(!log_has_code("a1234567b", "234567"));
        assert!(!log_has_code("nothing here", "123456"));
    }
}
