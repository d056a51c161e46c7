//! What an unauthenticated (or slow, or numerous) client can make the server
//! spend is bounded: bodies without a usable token are refused unread, parsing
//! has a budget, password hashing has a pool, connections have timeouts and caps.
//! Memory is read from the server's `/proc/<pid>/status`; nothing here asserts
//! on how long something took (the read deadlines are only there so a broken
//! server fails the test instead of hanging it).

use std::sync::Arc;
use std::time::Duration;

use coffer_tests::{Backend, Options, TestServer};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;

fn host(s: &TestServer) -> String {
    s.addr.trim_start_matches("http://").to_owned()
}

/// Reads until the server answers, closes, or `deadline` passes.
/// `Some(text)` is what it sent before closing (empty: closed without a word);
/// `None`: the connection is still open and silent at the deadline.
async fn read_outcome(stream: &mut TcpStream, deadline: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => {
                return if got.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&got).into_owned())
                }
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                // One response head is enough to decide.
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Some(String::from_utf8_lossy(&got).into_owned());
                }
            }
        }
    }
}

/// `[[],[],...]`: two bytes of body per value the parser would allocate.
fn empty_arrays(bytes: usize) -> String {
    let n = bytes / 3;
    let mut s = String::with_capacity(n * 3 + 2);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push_str("[]");
    }
    s.push(']');
    s
}

/// A SQLite server (sealed) whose listener has `extra` settings.
async fn with_listener(extra: &str) -> TestServer {
    TestServer::start_with(
        Backend::Sqlite,
        Options {
            listener_extra: extra.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn ready(options: Options) -> (TestServer, String) {
    let s = TestServer::start_with(Backend::Sqlite, options)
        .await
        .unwrap();
    let (_, root) = s.ready().await;
    (s, root)
}

#[tokio::test]
async fn a_body_without_a_usable_token_is_answered_before_it_is_sent() {
    let (s, root) = ready(Options::default()).await;
    assert_eq!(
        s.call(
            "POST",
            "sys/auth/userpass",
            Some(&root),
            Some(json!({"type": "userpass"}))
        )
        .await
        .0,
        204
    );
    // Only the head is sent: a server that waited for the 30 MiB body would
    // never answer.
    for (token, path, want) in [
        ("", "secret/data/x", "HTTP/1.1 403"),
        (
            "X-Vault-Token: not-a-token\r\n",
            "secret/data/x",
            "HTTP/1.1 403",
        ),
        ("", "auth/userpass/login/ghost", "HTTP/1.1 413"),
    ] {
        let mut c = TcpStream::connect(host(&s)).await.unwrap();
        let head = format!(
            "POST /v1/{path} HTTP/1.1\r\nHost: coffer\r\n{token}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            30 * MIB
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let answer = read_outcome(&mut c, Duration::from_secs(20)).await;
        assert!(
            answer.as_deref().is_some_and(|a| a.starts_with(want)),
            "{path} with {token:?}: wanted {want} before the body, got {answer:?}"
        );
    }
    // A small login body has a small JSON budget (1,024), not the listener's.
    let login = format!(
        "{{\"password\":\"not-the-password\",\"pad\":{}}}",
        empty_arrays(12 * 1024)
    );
    let resp = s
        .http
        .post(format!("{}/v1/auth/userpass/login/ghost", s.addr))
        .body(login)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // With a usable token the same head is read (the server waits for the body).
    let mut c = TcpStream::connect(host(&s)).await.unwrap();
    let head = format!(
        "POST /v1/secret/data/x HTTP/1.1\r\nHost: coffer\r\nX-Vault-Token: {root}\r\nContent-Length: 100\r\n\r\n{{\"data\":"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_outcome(&mut c, Duration::from_secs(2)).await, None);
}

#[tokio::test]
async fn four_tokenless_30mib_bodies_leave_memory_bounded() {
    let (s, _root) = ready(Options::default()).await;
    let body = Arc::new(empty_arrays(30 * MIB as usize));
    let before = s.proc_status_bytes("VmHWM");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url, body) = (
            s.http.clone(),
            format!("{}/v1/secret/data/x", s.addr),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // The server answers and closes without reading: the client may
            // see the 403 or a reset while it is still sending.
            match http.post(url).body(body.as_str().to_owned()).send().await {
                Ok(r) => Some(r.status().as_u16()),
                Err(_) => None,
            }
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(matches!(status, None | Some(403)), "{status:?}");
    }
    let (status, _) = s.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 200);
    let peak = s.proc_status_bytes("VmHWM");
    assert!(
        peak < before + 64 * MIB,
        "peak RSS grew from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
}

#[tokio::test]
async fn an_authenticated_body_cannot_make_the_parser_allocate_a_multiple_of_it() {
    let (s, root) = ready(Options::default()).await;
    let body = format!("{{\"data\":{}}}", empty_arrays(30 * MIB as usize));
    let before = s.proc_status_bytes("VmHWM");
    let resp = s
        .http
        .post(format!("{}/v1/secret/data/x", s.addr))
        .header("X-Vault-Token", &root)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let text = resp.text().await.unwrap();
    assert!(text.contains("JSON values"), "{text}");
    let peak = s.proc_status_bytes("VmHWM");
    // The body itself (30 MiB) is held once; parsing it would take ~1.4 GiB.
    assert!(
        peak < before + 160 * MIB,
        "peak RSS grew from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
    // A body within the budget still works.
    let (status, body) = s
        .call(
            "POST",
            "secret/data/x",
            Some(&root),
            Some(json!({"data": {"list": vec![json!([]); 1000]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn unknown_user_logins(s: &TestServer, n: usize) -> Vec<(u16, Option<String>)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, url, barrier) = (
            s.http.clone(),
            format!("{}/v1/auth/userpass/login/nobody-{i}", s.addr),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http
                .post(url)
                .json(&json!({"password": "not-the-password"}))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn with_userpass(options: Options) -> TestServer {
    let (s, root) = ready(options).await;
    assert_eq!(
        s.call(
            "POST",
            "sys/auth/userpass",
            Some(&root),
            Some(json!({"type": "userpass"}))
        )
        .await
        .0,
        204
    );
    s
}

#[tokio::test]
async fn a_full_hashing_pool_answers_503_with_retry_after() {
    let s = with_userpass(Options {
        top_extra: "password_hash_concurrency = 1\npassword_hash_queue_timeout = \"1ms\"\n".into(),
        ..Default::default()
    })
    .await;
    let answers = unknown_user_logins(&s, 30).await;
    let busy: Vec<_> = answers.iter().filter(|(st, _)| *st == 503).collect();
    assert!(!busy.is_empty(), "no login was turned away: {answers:?}");
    assert!(
        busy.iter().all(|(_, retry)| retry.as_deref() == Some("1")),
        "{busy:?}"
    );
    // Everything else is the ordinary answer for a wrong login.
    assert!(
        answers.iter().all(|(st, _)| *st == 503 || *st == 400),
        "{answers:?}"
    );
    // The pool frees up: a later login is answered again.
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/login/nobody",
            None,
            Some(json!({"password": "not-the-password"})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sixty_concurrent_unknown_user_logins_leave_memory_bounded() {
    let s = with_userpass(Options {
        top_extra: "password_hash_concurrency = 2\n".into(),
        ..Default::default()
    })
    .await;
    let before = s.proc_status_bytes("VmHWM");
    let answers = unknown_user_logins(&s, 60).await;
    assert!(
        answers.iter().all(|(st, _)| matches!(*st, 400 | 429 | 503)),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(st, _)| *st == 400), "{answers:?}");
    let peak = s.proc_status_bytes("VmHWM");
    // Two Argon2 buffers of 19 MiB, reused; 60 of them would be 1.1 GiB.
    assert!(
        peak < before + 96 * MIB,
        "peak RSS grew from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_headers_is_closed() {
    let s = with_listener("header_read_timeout = \"1s\"\n").await;
    let mut c = TcpStream::connect(host(&s)).await.unwrap();
    let outcome = read_outcome(&mut c, Duration::from_secs(20)).await;
    assert_eq!(outcome.as_deref(), Some(""), "{outcome:?}");
    // The listener still serves others.
    assert_eq!(s.call("GET", "sys/health", None, None).await.0, 501);
}

#[tokio::test]
async fn a_tls_connection_that_never_shakes_hands_is_closed_and_capped() {
    let s = TestServer::start_with(
        Backend::Sqlite,
        Options {
            tls: true,
            listener_extra: "header_read_timeout = \"3s\"\nmax_connections_per_address = 2\n"
                .into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut silent = TcpStream::connect(host_of_https(&s)).await.unwrap();
    let outcome = read_outcome(&mut silent, Duration::from_secs(20)).await;
    assert_eq!(outcome.as_deref(), Some(""), "{outcome:?}");
    // Two clients hold a connection each (kept alive after a request), a third
    // is refused before its handshake; HTTPS works again once they are gone.
    let cert = std::fs::read(s.dir().join("cert.pem")).unwrap();
    let holder = || {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (holder(), holder());
    for c in [&a, &b] {
        let r = c
            .get(format!("{}/v1/sys/health", s.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 501);
    }
    let third = s.http.get(format!("{}/v1/sys/health", s.addr)).send().await;
    assert!(third.is_err(), "a third connection was served: {third:?}");
    drop((a, b));
    let mut status = 0;
    for _ in 0..50 {
        if let Ok(r) = s.http.get(format!("{}/v1/sys/health", s.addr)).send().await {
            status = r.status().as_u16();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 501);
}

fn host_of_https(s: &TestServer) -> String {
    s.addr.trim_start_matches("https://").to_owned()
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let s = with_listener("header_read_timeout = \"1s\"\n").await;
    let mut c = TcpStream::connect(host(&s)).await.unwrap();
    let head = b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\nX-Slow: 0123456789\r\n\r\n";
    let mut cut_after = None;
    for (i, b) in head.iter().enumerate() {
        if c.write_all(&[*b]).await.is_err() {
            cut_after = Some(i);
            break;
        }
        // Waiting for the next byte doubles as watching for the server to close.
        if let Some(seen) = read_outcome(&mut c, Duration::from_millis(300)).await {
            assert!(!seen.starts_with("HTTP/1.1 2"), "answered: {seen}");
            cut_after = Some(i);
            break;
        }
    }
    assert!(
        cut_after.is_some_and(|i| i < head.len() - 1),
        "the whole slow header was accepted ({cut_after:?})"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_with_no_request_is_closed_after_the_idle_timeout() {
    let s = with_listener("idle_timeout = \"1s\"\nheader_read_timeout = \"60s\"\n").await;
    let mut c = TcpStream::connect(host(&s)).await.unwrap();
    c.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\n\r\n")
        .await
        .unwrap();
    let answer = read_outcome(&mut c, Duration::from_secs(20)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 501")),
        "{answer:?}"
    );
    // The rest of the answer (its body) may still be in flight; then nothing
    // more comes, and the server closes the connection well before the header
    // timeout would.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "still open: {closed:?}"
    );
}

#[tokio::test]
async fn a_slow_body_gets_408() {
    let (s, root) = ready(Options {
        listener_extra: "body_read_timeout = \"1s\"\n".into(),
        ..Default::default()
    })
    .await;
    let mut c = TcpStream::connect(host(&s)).await.unwrap();
    let head = format!(
        "POST /v1/secret/data/x HTTP/1.1\r\nHost: coffer\r\nX-Vault-Token: {root}\r\nContent-Length: 100\r\n\r\n{{\"data\":"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let answer = read_outcome(&mut c, Duration::from_secs(20)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );
}

/// Opens `n` connections at once, then sends a request on each and counts
/// how many were answered (the others were closed unanswered).
async fn answered_of(s: &TestServer, n: usize) -> usize {
    let mut conns = Vec::new();
    for _ in 0..n {
        conns.push(TcpStream::connect(host(s)).await.unwrap());
    }
    let mut answered = 0;
    for c in &mut conns {
        // A refused connection may already be reset: then the write fails.
        if c.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\n\r\n")
            .await
            .is_err()
        {
            continue;
        }
        match read_outcome(c, Duration::from_secs(20)).await {
            Some(a) if a.starts_with("HTTP/1.1 ") => answered += 1,
            Some(_) => {}
            None => panic!("a connection was neither answered nor closed"),
        }
    }
    answered
}

#[tokio::test]
async fn the_per_address_cap_refuses_the_next_connection() {
    let s = with_listener("max_connections_per_address = 4\n").await;
    assert_eq!(answered_of(&s, 5).await, 4);
    // Connections that went away free their places.
    let mut again = 0;
    for _ in 0..50 {
        again = answered_of(&s, 4).await;
        if again == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(again, 4);
}

#[tokio::test]
async fn the_listener_cap_refuses_the_next_connection() {
    let s = with_listener("max_connections = 3\n").await;
    assert_eq!(answered_of(&s, 4).await, 3);
}
