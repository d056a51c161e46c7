//! A tiny HTTP/1.1 stub server for tests: records each request (method, target, headers,
//! body) and answers with whatever the test's responder returns. One request per
//! connection (`Connection: close`), so every request is seen exactly once. Also the
//! runner for the `coffer` binary used by the CLI tests.

// Not every test binary uses every helper; helpers may panic (a failed test).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    /// Path and query, e.g. `/v1/secret/data/foo?version=2`.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// (status, extra headers, body).
pub type Answer = (u16, Vec<(String, String)>, String);
pub type Responder = dyn Fn(&Captured) -> Answer + Send + Sync;

pub struct Stub {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Captured {
        let reqs = self.requests();
        assert_eq!(reqs.len(), 1, "expected exactly one request: {reqs:?}");
        reqs[0].clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a stub answering every request with `respond(request)` = (status, body).
/// For a 3xx status the "body" is sent as the `Location` header instead.
pub async fn start<F>(respond: F) -> Stub
where
    F: Fn(&Captured) -> (u16, String) + Send + Sync + 'static,
{
    start_with_headers(move |req| {
        let (status, body) = respond(req);
        (status, Vec::new(), body)
    })
    .await
}

/// Like [`start`], with extra response headers (e.g. `Retry-After`).
pub async fn start_with_headers<F>(respond: F) -> Stub
where
    F: Fn(&Captured) -> Answer + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let respond: Arc<Responder> = Arc::new(respond);
    let seen = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            let respond = respond.clone();
            tokio::spawn(async move {
                let _ = serve(stream, seen, respond).await;
            });
        }
    });
    Stub {
        addr,
        requests,
        task,
    }
}

/// A fixed answer for every request.
pub async fn start_fixed(status: u16, body: &str) -> Stub {
    let body = body.to_string();
    start(move |_| (status, body.clone())).await
}

async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Captured>>>,
    respond: Arc<Responder>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let captured = Captured {
        method,
        target,
        headers,
        body,
    };
    let (status, extra, answer) = respond(&captured);
    seen.lock().unwrap().push(captured);
    let extra: String = extra
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let response = if (300..400).contains(&status) {
        format!(
            "HTTP/1.1 {status} Stub\r\nLocation: {answer}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    } else {
        format!(
            "HTTP/1.1 {status} Stub\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// What a run of the `coffer` binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `coffer args...` with a clean environment: only the stub address, HOME in `home`
/// and the given extra variables; `stdin` is piped in (so it is never a terminal).
pub async fn coffer(
    addr: &str,
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_coffer"));
    cmd.args(args)
        .env_clear()
        .env("COFFER_ADDR", addr)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // The program may exit without reading stdin: a broken pipe is fine.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// True when `text` has a table line `key<spaces>value`.
pub fn has_row(text: &str, key: &str, value: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with("    ") && rest.trim_start() == value)
    })
}
