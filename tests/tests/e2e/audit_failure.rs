//! Audit devices that fail, and where API-created devices may write: a file
//! that opens but cannot be written is refused at enable; a device that starts
//! failing later keeps ordinary requests fail-closed, but a root or sudo token
//! can still seal, unseal and remove the device, also after a restart, and the
//! bypass is logged and reaches any device that can still write; file devices
//! stay inside `audit_file_directory` with an owner-only mode.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_tests::{Backend, Options, TestServer};
use serde_json::{json, Value};

fn options() -> Options {
    Options {
        top_extra: "audit_write_timeout = \"1500ms\"\n".into(),
        ..Default::default()
    }
}

async fn enable_with(s: &TestServer, token: &str, name: &str, opts: Value) -> (u16, Value) {
    s.call(
        "PUT",
        &format!("sys/audit/{name}"),
        Some(token),
        Some(json!({"type": "file", "options": opts})),
    )
    .await
}

async fn enable(s: &TestServer, token: &str, name: &str, path: &Path) {
    let (status, body) = enable_with(
        s,
        token,
        name,
        json!({"file_path": path.display().to_string()}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

fn first_error(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_owned()
}

/// Replaces the audit file at `path` by a link to `/dev/full`, then SIGHUP.
fn fill_disk(s: &TestServer, path: &Path) {
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink("/dev/full", path).unwrap();
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
}

/// Replaces the audit file at `path` by a FIFO nobody reads, then SIGHUP.
fn stick(s: &TestServer, path: &Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
}

async fn put(s: &TestServer, token: &str, v: &str) -> (u16, Value) {
    s.call(
        "POST",
        "secret/data/app",
        Some(token),
        Some(json!({"data": {"password": v}})),
    )
    .await
}

async fn sealed(s: &TestServer) -> bool {
    let (status, body) = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(status, 200, "{body}");
    body["sealed"].as_bool().unwrap()
}

#[tokio::test]
async fn enable_refuses_a_file_that_cannot_be_written() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, options()).await else {
        return;
    };
    let (_, root) = s.ready().await;
    // Inside the audit directory, opens fine, every write fails (ENOSPC).
    let full = s.dir().join("full.log");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let (status, body) = enable_with(
        &s,
        &root,
        "full",
        json!({"file_path": full.display().to_string()}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = first_error(&body);
    assert!(message.contains("cannot be written"), "{message}");
    assert!(message.contains("nothing was enabled"), "{message}");
    // /dev/full itself: refused too (it is outside the directory).
    let (status, body) = enable_with(&s, &root, "full", json!({"file_path": "/dev/full"})).await;
    assert_eq!(status, 400, "{body}");
    // Nothing was enabled, so the server keeps answering.
    let (status, listed) = s.call("GET", "sys/audit", Some(&root), None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"], json!({}), "{listed}");
    assert_eq!(put(&s, &root, "v1").await.0, 200);
    // A file that works gets a first entry at once: a signed checkpoint of
    // where its chain starts, written and synced before the enable answers.
    let good = s.dir().join("good.log");
    enable(&s, &root, "good", &good).await;
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&good)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["type"], json!("checkpoint"), "{first}");
    assert_eq!(first["seq"], json!(1), "{first}");
}

async fn failing_device_never_locks_out_root(backend: Backend) {
    let Some(mut s) = TestServer::start_with(backend, options()).await else {
        return;
    };
    let (keys, root) = s.ready().await;
    // A token with sudo on exactly the recovery paths, and one without sudo.
    let (status, body) = s
        .call(
            "PUT",
            "sys/policies/acl/recover",
            Some(&root),
            Some(json!({"policy": "path \"sys/audit/*\" { capabilities = [\"delete\", \"sudo\"] }\npath \"sys/seal\" { capabilities = [\"update\", \"sudo\"] }\npath \"secret/*\" { capabilities = [\"create\", \"update\", \"read\"] }\n"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let token = |policies: Value| {
        let s = &s;
        let root = root.clone();
        async move {
            let (status, body) = s
                .call(
                    "POST",
                    "auth/token/create",
                    Some(&root),
                    Some(json!({"policies": policies})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["auth"]["client_token"].as_str().unwrap().to_owned()
        }
    };
    let sudo = token(json!(["recover"])).await;
    let plain = token(json!(["default"])).await;
    let log = s.dir().join("a.log");
    enable(&s, &root, "a", &log).await;
    assert_eq!(put(&s, &root, "v1").await.0, 200);

    // The disk fills up: ordinary requests fail closed.
    fill_disk(&s, &log);
    let (status, body) = put(&s, &root, "v2").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(first_error(&body), "the request could not be audited");
    let (status, body) = s.call("GET", "sys/audit", Some(&root), None).await;
    assert_eq!(status, 500, "listing is not a recovery operation: {body}");
    // Without sudo, removing the device is not a way around the audit.
    let (status, body) = s.call("DELETE", "sys/audit/a", Some(&plain), None).await;
    assert_ne!(status, 204, "{body}");

    // Root can seal; unseal is not audited; the device still fails after.
    let (status, body) = s.call("PUT", "sys/seal", Some(&root), None).await;
    assert_eq!(status, 204, "root seals while the device fails: {body}");
    assert!(sealed(&s).await);
    s.unseal(&keys).await;
    assert_eq!(put(&s, &root, "v3").await.0, 500);

    // Across a restart the failing device is still in the table.
    s.restart();
    s.unseal(&keys).await;
    assert_eq!(put(&s, &root, "v4").await.0, 500);
    let (_, health) = s.call("GET", "sys/health", None, None).await;
    assert_eq!(
        health["audit_devices"],
        json!({"a/": "unhealthy"}),
        "{health}"
    );
    let (status, body) = s.call("PUT", "sys/seal", Some(&sudo), None).await;
    assert_eq!(status, 204, "a sudo token seals after a restart: {body}");
    s.unseal(&keys).await;
    assert_eq!(put(&s, &root, "v5").await.0, 500);
    let (status, body) = s.call("DELETE", "sys/audit/a", Some(&sudo), None).await;
    assert_eq!(
        status, 204,
        "a sudo token removes the failing device: {body}"
    );

    // No device left: requests are answered again, and nothing refused changed.
    let (status, read) = s.call("GET", "secret/data/app", Some(&root), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["data"]["password"], json!("v1"));
    let (status, listed) = s.call("GET", "sys/audit", Some(&root), None).await;
    assert_eq!((status, &listed["data"]), (200, &json!({})), "{listed}");

    // The server log says so, without a secret.
    let text = s.log();
    let bypasses = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("went ahead without"))
        .collect::<Vec<_>>();
    assert!(
        bypasses.iter().any(|l| l.contains("sys/seal")),
        "{bypasses:?}"
    );
    assert!(
        bypasses.iter().any(|l| l.contains("sys/audit/a")),
        "{bypasses:?}"
    );
    for secret in [root.as_str(), sudo.as_str(), keys[0].as_str()] {
        assert!(!text.contains(secret), "a secret is in the server log");
    }
}

#[tokio::test]
async fn failing_device_never_locks_out_root_sqlite() {
    failing_device_never_locks_out_root(Backend::Sqlite).await;
}

#[tokio::test]
async fn failing_device_never_locks_out_root_postgres() {
    failing_device_never_locks_out_root(Backend::Postgres).await;
}

#[tokio::test]
async fn a_bypass_reaches_a_device_that_catches_up() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, options()).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let (a, b) = (s.dir().join("a.log"), s.dir().join("b.log"));
    enable(&s, &root, "a", &a).await;
    enable(&s, &root, "b", &b).await;
    fill_disk(&s, &a);
    stick(&s, &b);
    assert_eq!(put(&s, &root, "v1").await.0, 500);
    let started = Instant::now();
    let (status, body) = s.call("DELETE", "sys/audit/a", Some(&root), None).await;
    assert_eq!(status, 204, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    // b catches up once something reads its FIFO: the removal is in its chain,
    // and its response entry says that it went ahead without a durable entry.
    let (lines, received) = std::sync::mpsc::channel::<String>();
    let fifo = b.clone();
    std::thread::spawn(move || {
        let reader = std::io::BufReader::new(std::fs::File::open(fifo).unwrap());
        for line in reader.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut request, mut response) = (None, None);
    while request.is_none() || response.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("b never wrote the removal; request {request:?}"));
        let entry: Value = serde_json::from_str(&line).unwrap();
        if entry["request"]["path"] == json!("sys/audit/a")
            && entry["request"]["operation"] == json!("delete")
        {
            match entry["type"].as_str() {
                Some("request") => request = Some(entry),
                Some("response") => response = Some(entry),
                _ => {}
            }
        }
    }
    let response = response.unwrap();
    let warnings = response["response"]["warnings"].to_string();
    assert!(warnings.contains("no audit device"), "{response}");
    // With b writing again, ordinary requests are answered.
    assert_eq!(put(&s, &root, "v2").await.0, 200);
}

#[tokio::test]
async fn api_devices_stay_inside_the_audit_directory_with_an_owner_mode() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, options()).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let outside = tempfile::tempdir().unwrap();
    let dir = s.dir().to_owned();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("link")).unwrap();
    let refused: Vec<(PathBuf, &str)> = vec![
        (outside.path().join("x.log"), "outside"),
        (dir.join("sub/../../x.log"), "dot-dot"),
        (dir.join("link/x.log"), "symlinked parent"),
        (PathBuf::from("x.log"), "relative"),
        (PathBuf::from("/etc/coffer-audit.log"), "/etc"),
    ];
    for (path, why) in &refused {
        let (status, body) = enable_with(
            &s,
            &root,
            "out",
            json!({"file_path": path.display().to_string()}),
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
        assert!(
            first_error(&body).contains("audit_file_directory"),
            "{why}: {body}"
        );
    }
    assert!(!outside.path().join("x.log").exists());
    for mode in ["0644", "0666", "0755", "0700", "0777", "0660"] {
        let path = dir.join(format!("m{mode}.log"));
        let (status, body) = enable_with(
            &s,
            &root,
            "wide",
            json!({"file_path": path.display().to_string(), "mode": mode}),
        )
        .await;
        assert_eq!(status, 400, "mode {mode}: {body}");
        assert!(first_error(&body).contains("0600"), "{body}");
        assert!(!path.exists(), "mode {mode} created a file");
    }
    for (name, mode) in [("m600", "0600"), ("m640", "0640")] {
        let path = dir.join(format!("sub/{name}.log"));
        let (status, body) = enable_with(
            &s,
            &root,
            name,
            json!({"file_path": path.display().to_string(), "mode": mode}),
        )
        .await;
        assert_eq!(status, 204, "mode {mode}: {body}");
        let actual = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        ) & 0o777;
        assert_eq!(format!("{actual:04o}"), mode, "mode of {}", path.display());
    }
    // Special targets are still refused, as before.
    for special in ["stdout", "discard"] {
        let (status, body) = enable_with(&s, &root, "special", json!({"file_path": special})).await;
        assert_eq!(status, 400, "{special}: {body}");
    }
    let (_, listed) = s.call("GET", "sys/audit", Some(&root), None).await;
    let mut names: Vec<_> = listed["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(names, vec!["m600/", "m640/"]);
}
