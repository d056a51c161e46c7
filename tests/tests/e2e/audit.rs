//! Audit devices end to end: Vault-shaped entries with nothing in clear, a
//! hash chain that `coffer audit verify` checks (and that catches edits,
//! deletions, reordering and truncation at the right sequence number), signed
//! checkpoints at shutdown, a chain that survives restarts, and fail-closed
//! writes that neither change data nor hang the server.

use std::process::Command;
use std::time::{Duration, Instant};

use coffer_tests::{binary, Backend, Options, TestServer};
use serde_json::{json, Value};

const SECRET: &str = "audit-secret-7f3a9c";

fn options() -> Options {
    Options {
        top_extra: "audit_write_timeout = \"1500ms\"\n".into(),
        listener_extra: "unauthenticated_metrics_access = true\n".into(),
        ..Default::default()
    }
}

async fn enable(s: &TestServer, token: &str, name: &str, path: &std::path::Path) {
    let (status, body) = s
        .call(
            "PUT",
            &format!("sys/audit/{name}"),
            Some(token),
            Some(json!({"type": "file", "options": {"file_path": path.display().to_string()}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

fn entries(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `coffer audit verify`; returns (exit code, stdout).
fn verify(files: &[&std::path::Path], key: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(binary("coffer"));
    cmd.args(["audit", "verify"]).args(files);
    if let Some(k) = key {
        cmd.args(["--public-key", k]);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn tampered(
    dir: &std::path::Path,
    name: &str,
    lines: Vec<String>,
    tail: &str,
) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + tail).unwrap();
    path
}

#[tokio::test]
async fn audit_trail_is_complete_hashed_and_tamper_evident() {
    let Some(mut s) = TestServer::start_with(Backend::Sqlite, options()).await else {
        return;
    };
    let (keys, root) = s.ready().await;
    let log = s.dir().join("audit.log");
    enable(&s, &root, "file", &log).await;
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/file",
            Some(&root),
            Some(json!({"type": "file", "options": {"file_path": s.dir().join("x.log").display().to_string()}})),
        )
        .await;
    assert_eq!(status, 400, "same path twice: {body}");
    let (status, listed) = s.call("GET", "sys/audit", Some(&root), None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["file/"]["type"], json!("file"));
    assert_eq!(
        listed["data"]["file/"]["options"]["file_path"],
        json!(log.display().to_string())
    );

    // A write, a read, a denied request and a failed login.
    let (status, _) = s
        .call(
            "POST",
            "secret/data/app",
            Some(&root),
            Some(json!({"data": {"password": SECRET}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, read) = s.call("GET", "secret/data/app", Some(&root), None).await;
    assert_eq!(status, 200);
    assert_eq!(read["data"]["data"]["password"], json!(SECRET));
    let (_, created) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["default"]})),
        )
        .await;
    let limited = created["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call("GET", "secret/data/app", Some(&limited), None)
            .await
            .0,
        403
    );
    s.call(
        "POST",
        "sys/auth/userpass",
        Some(&root),
        Some(json!({"type": "userpass"})),
    )
    .await;
    let (status, _) = s
        .call(
            "POST",
            "auth/userpass/login/ghost",
            None,
            Some(json!({"password": "wrong-password-123"})),
        )
        .await;
    assert!(status == 400 || status == 403, "{status}");

    let text = std::fs::read_to_string(&log).unwrap();
    for clear in [
        SECRET,
        root.as_str(),
        limited.as_str(),
        "wrong-password-123",
        &keys[0],
    ] {
        assert!(
            !text.contains(clear),
            "{clear} is in the audit file in clear"
        );
    }
    assert!(text.contains("hmac-sha256:"));
    let all = entries(&log);
    let find = |kind: &str, path: &str, op: &str| {
        all.iter()
            .filter(|e| {
                e["type"] == json!(kind)
                    && e["request"]["path"] == json!(path)
                    && e["request"]["operation"] == json!(op)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    // Vault's shape.
    let write = &find("request", "secret/data/app", "create")[0];
    for key in [
        "time",
        "auth",
        "request",
        "error",
        "seq",
        "prev_hash",
        "hash",
    ] {
        assert!(write.get(key).is_some(), "missing {key}: {write}");
    }
    assert_eq!(write["request"]["mount_type"], json!("kv"));
    assert_eq!(write["request"]["remote_address"], json!("127.0.0.1"));
    assert_eq!(write["auth"]["policies"], json!(["root"]));
    let read_resp = &find("response", "secret/data/app", "read")[0];
    let hashed_secret = read_resp["response"]["data"]["data"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hashed_secret.starts_with("hmac-sha256:"));
    // sys/audit-hash reproduces what the entries show.
    let (_, h) = s
        .call(
            "POST",
            "sys/audit-hash/file",
            Some(&root),
            Some(json!({"input": SECRET})),
        )
        .await;
    assert_eq!(h["data"]["hash"], json!(hashed_secret));
    let (_, h) = s
        .call(
            "POST",
            "sys/audit-hash/file",
            Some(&root),
            Some(json!({"input": root})),
        )
        .await;
    assert_eq!(write["auth"]["client_token"], h["data"]["hash"]);
    // The denial and the failed login are there, with their errors.
    let denied: Vec<_> = find("response", "secret/data/app", "read")
        .into_iter()
        .filter(|e| e["error"] == json!("permission denied"))
        .collect();
    assert_eq!(denied.len(), 1, "one denied read");
    let failed_login = find("response", "auth/userpass/login/ghost", "update");
    assert_eq!(failed_login.len(), 1);
    assert_ne!(failed_login[0]["error"], json!(""));
    assert!(failed_login[0]["request"]["data"]["password"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));

    // A clean shutdown writes a signed checkpoint; the file verifies.
    let (_, key) = s
        .call("GET", "sys/audit-checkpoint-key", Some(&root), None)
        .await;
    let key = key["data"]["public_key"].as_str().unwrap().to_owned();
    s.terminate();
    let last = entries(&log).pop().unwrap();
    assert_eq!(last["type"], json!("checkpoint"));
    let (code, out) = verify(&[&log], Some(&key));
    assert_eq!(code, 0, "{out}");
    assert!(
        // The enable's test write and the shutdown checkpoint.
        out.starts_with("OK:") && out.contains("2 checkpoints verified"),
        "{out}"
    );

    // Tampering, each caught at the right sequence number.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() > 8);
    let dir = s.dir().to_owned();
    let mut edited = lines.clone();
    edited[3] = edited[3].replacen("\"request\"", "\"requesT\"", 1);
    let (code, out) = verify(&[&tampered(&dir, "edited", edited, "\n")], None);
    assert_eq!(
        (code, out.starts_with("FAIL at seq 4:")),
        (1, true),
        "{out}"
    );
    let mut deleted = lines.clone();
    deleted.remove(4);
    let (code, out) = verify(&[&tampered(&dir, "deleted", deleted, "\n")], None);
    assert_eq!(
        (code, out.starts_with("FAIL at seq 5:")),
        (1, true),
        "{out}"
    );
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    let (code, out) = verify(&[&tampered(&dir, "swapped", swapped, "\n")], None);
    assert_eq!(
        (code, out.starts_with("FAIL at seq 6:")),
        (1, true),
        "{out}"
    );
    let mut cut = lines[..8].to_vec();
    let half = cut[7].len() / 2;
    cut[7].truncate(half);
    let (code, out) = verify(&[&tampered(&dir, "truncated", cut, "")], None);
    assert_eq!(
        (code, out.starts_with("FAIL at seq 8:")),
        (1, true),
        "{out}"
    );
    let forged = lines
        .iter()
        .map(|l| l.replace(SECRET, "x"))
        .collect::<Vec<_>>();
    assert_eq!(forged, lines, "nothing to forge: the secret never appears");
    let (code, out) = verify(
        &[&log],
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    );
    assert_eq!(
        code, 1,
        "a different key must not verify the checkpoints: {out}"
    );

    // After a restart the chain goes on where it stopped, in a rotated file too.
    let before = entries(&log).len() as u64;
    std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
    s.start_again();
    s.unseal(&keys).await;
    assert_eq!(
        s.call("GET", "secret/data/app", Some(&root), None).await.0,
        200
    );
    let first_new = &entries(&log)[0];
    assert_eq!(first_new["seq"], json!(before + 1));
    let rotated = dir.join("audit.log.1");
    let (code, out) = verify(&[&rotated, &log], Some(&key));
    assert_eq!(code, 0, "{out}");
    // The new file alone (the older one rotated away and deleted) is not tampering:
    // the verdict says so and points at --partial, which then verifies it.
    let (code, out) = verify(&[&log], Some(&key));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!(
            "NOT VERIFIED: the chain starts at seq {}, not 1",
            before + 1
        )) && out.contains("--partial"),
        "{out}"
    );
    let out = Command::new(binary("coffer"))
        .args(["audit", "verify", "--partial"])
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("OK: ") && stdout.contains(&format!("(seq {}..", before + 1)),
        "{stdout}"
    );
}

/// Replaces the audit file at `path` by what `make` creates, then SIGHUP.
fn swap_file(s: &TestServer, path: &std::path::Path, make: impl FnOnce(&std::path::Path)) {
    let _ = std::fs::remove_file(path);
    make(path);
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
}

async fn health_within_a_second(s: &TestServer) -> Value {
    let started = Instant::now();
    let (status, health) = s.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "sys/health took {:?}",
        started.elapsed()
    );
    health
}

#[tokio::test]
async fn failing_devices_fail_closed_without_hanging() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, options()).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let (a, b) = (s.dir().join("a.log"), s.dir().join("b.log"));
    enable(&s, &root, "a", &a).await;
    enable(&s, &root, "b", &b).await;
    let put = |v: &'static str| {
        s.call(
            "POST",
            "secret/data/app",
            Some(&root),
            Some(json!({"data": {"password": v}})),
        )
    };
    assert_eq!(put("v1").await.0, 200);

    // Device a's disk is full: b alone is enough.
    swap_file(&s, &a, |p| {
        std::os::unix::fs::symlink("/dev/full", p).unwrap()
    });
    assert_eq!(put("v2").await.0, 200);
    let health = health_within_a_second(&s).await;
    assert_eq!(
        health["audit_devices"],
        json!({"a/": "unhealthy", "b/": "healthy"})
    );

    // Device b gets stuck (a FIFO nobody reads): no device can take entries.
    swap_file(&s, &b, |p| {
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    });
    let started = Instant::now();
    let (status, body) = put("v3").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errors"][0], json!("the request could not be audited"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed in {:?}",
        started.elapsed()
    );
    let health = health_within_a_second(&s).await;
    assert_eq!(
        health["audit_devices"],
        json!({"a/": "unhealthy", "b/": "unhealthy"})
    );
    let metrics = s
        .http
        .get(format!("{}/v1/sys/metrics?format=prometheus", s.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("coffer_audit_device_healthy{device=\"b/\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("coffer_audit_write_failures_total{device=\"a/\"}")),
        "{metrics}"
    );

    // Unstick b (a reader drains the FIFO), give both devices real files again:
    // the refused write changed nothing.
    let fifo = b.clone();
    let drain = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::fs::File::open(fifo).unwrap(), &mut sink);
    });
    std::fs::remove_file(&a).unwrap();
    std::fs::remove_file(&b).unwrap();
    s.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let read = loop {
        let (status, read) = s.call("GET", "secret/data/app", Some(&root), None).await;
        if status == 200 {
            break read;
        }
        assert!(
            Instant::now() < deadline,
            "devices did not recover: {status} {read}"
        );
        s.signal("HUP");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(read["data"]["data"]["password"], json!("v2"));
    assert_eq!(read["data"]["metadata"]["version"], json!(2));
    drop(drain);
}
