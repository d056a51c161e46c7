use crate::clock::UnixTime;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::clock::SystemClock;
use crate::crypto::{hmac_hex, SecretString};
use crate::storage::{MigrationMode, Storage};

async fn barrier() -> Arc<Barrier> {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Barrier::new(storage);
    let root = *crate::crypto::random_array::<32>().unwrap();
    barrier
        .initialize(&root, UnixTime::from_secs(100))
        .await
        .unwrap();
    Arc::new(barrier)
}

async fn broker(b: &Arc<Barrier>, settings: AuditSettings) -> AuditBroker {
    AuditBroker::open(
        b.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::default()),
        settings,
    )
    .await
    .unwrap()
}

/// For tests where no write should time out: generous, because a loaded CI
/// machine can take a while to sync a file.
fn steady() -> AuditSettings {
    AuditSettings {
        write_timeout: Duration::from_secs(10),
        checkpoint_interval: Duration::from_secs(3600),
        file_directory: std::env::temp_dir(),
    }
}

/// For the test of a stuck device: short enough to wait for, long enough for
/// an ordinary sync on a busy machine.
fn fast() -> AuditSettings {
    AuditSettings {
        write_timeout: Duration::from_secs(1),
        checkpoint_interval: Duration::from_secs(3600),
        file_directory: std::env::temp_dir(),
    }
}

fn file_opts(path: &std::path::Path) -> BTreeMap<String, String> {
    BTreeMap::from([("file_path".to_owned(), path.display().to_string())])
}

fn record(token: &str) -> Record {
    let mut data = Map::new();
    data.insert("data".into(), json!({"password": "hunter2"}));
    Record {
        auth: None,
        request: RequestInfo {
            id: "r1".into(),
            operation: "update",
            path: "secret/data/a".into(),
            mount_point: "secret/".into(),
            mount_type: "kv".into(),
            data,
            remote_address: "127.0.0.1".into(),
            client_token: Some(SecretString::new(token.into())),
        },
        breakglass_id: None,
    }
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn entries_are_chained_hashed_and_reproducible() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = broker(&b, steady()).await;
    a.enable("file", "file", "d".into(), file_opts(&path), false)
        .await
        .unwrap();
    let rec = record("s.token-1");
    a.log_request(&rec, None).await.unwrap();
    a.log_response(&rec, Some(&ResponseInfo::default()), None)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("s.token-1"),
        "{text}"
    );
    let entries = lines(&path);
    assert_eq!(entries.len(), 3);
    // The enable's test write: a checkpoint of the empty chain.
    assert_eq!(entries[0]["type"], json!("checkpoint"));
    assert_eq!(entries[0]["checkpoint"]["seq"], json!(0));
    assert_eq!(entries[0]["seq"], json!(1));
    assert_eq!(entries[0]["prev_hash"], json!(chain::GENESIS_HASH));
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    assert_eq!(entries[2]["prev_hash"], entries[1]["hash"]);
    assert_eq!(entries[2]["type"], json!("response"));
    let hashed = a.hash("file", "s.token-1").unwrap();
    assert_eq!(entries[1]["request"]["client_token"], json!(hashed));
    assert!(hashed.starts_with("hmac-sha256:"));
    assert_eq!(hashed.len(), "hmac-sha256:".len() + 64);
    assert!(matches!(a.hash("nope", "x"), Err(AuditError::Invalid(_))));
    // Mode 0600 by default: entries are evidence, not for every local user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let listed = a.list();
    assert_eq!(listed["file/"]["type"], json!("file"));
    assert_eq!(listed["file/"]["healthy"], json!(true));
}

#[tokio::test]
async fn chain_continues_across_restart_and_rotation_with_signed_checkpoints() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = broker(&b, steady()).await;
    a.enable("file", "file", String::new(), file_opts(&path), false)
        .await
        .unwrap();
    a.log_request(&record("t"), None).await.unwrap();
    let public_key = a.checkpoint_public_key();
    a.shutdown().await;
    let first = lines(&path);
    assert_eq!(
        first.len(),
        3,
        "the enable checkpoint, one entry and the shutdown checkpoint"
    );
    let cp = &first[2];
    assert_eq!(cp["type"], json!("checkpoint"));
    assert_eq!(cp["checkpoint"]["seq"], json!(2));
    assert_eq!(cp["checkpoint"]["hash"], first[1]["hash"]);
    let key = coffer_proto::audit::CheckpointKey::from_base64(&public_key).unwrap();
    assert!(key.verifies(
        2,
        first[1]["hash"].as_str().unwrap(),
        cp["checkpoint"]["signature"].as_str().unwrap()
    ));

    // Rotate the file away while stopped: the new file continues the chain from
    // the head kept in the database.
    std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
    let a = broker(&b, steady()).await;
    assert_eq!(
        a.checkpoint_public_key(),
        public_key,
        "the key survives restarts"
    );
    a.log_request(&record("t"), None).await.unwrap();
    let second = lines(&path);
    assert_eq!(second[0]["seq"], json!(4));
    assert_eq!(second[0]["prev_hash"], cp["hash"]);

    // Rotation while running: SIGHUP makes the writer open the path again.
    std::fs::rename(&path, dir.path().join("audit.log.2")).unwrap();
    a.reopen();
    a.log_request(&record("t"), None).await.unwrap();
    let third = lines(&path);
    assert_eq!(third[0]["seq"], json!(5));
    assert_eq!(third[0]["prev_hash"], second[0]["hash"]);
}

/// What the writer wrote is checked with the verifier `coffer audit verify` uses.
#[tokio::test]
async fn written_files_verify_with_the_shared_rules_and_an_edit_is_caught() {
    use coffer_proto::audit::{
        verify_bytes, BreakKind, CheckpointKey, VerifyFailure, VerifyOptions,
    };

    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = broker(&b, steady()).await;
    a.enable("file", "file", String::new(), file_opts(&path), false)
        .await
        .unwrap();
    for n in 0..3 {
        let rec = record(&format!("s.token-{n}"));
        a.log_request(&rec, None).await.unwrap();
        a.log_response(&rec, Some(&ResponseInfo::default()), None)
            .await
            .unwrap();
    }
    let key = CheckpointKey::from_base64(&a.checkpoint_public_key()).unwrap();
    a.shutdown().await;
    let signed = VerifyOptions {
        partial: false,
        public_key: Some(key.clone()),
    };
    let first = std::fs::read(&path).unwrap();
    let report = verify_bytes(&[("audit.log", &first)], &signed).unwrap();
    // The enable checkpoint, 6 entries, the shutdown checkpoint.
    assert_eq!(
        (report.entries, report.checkpoints, report.last_seq),
        (8, 2, Some(8))
    );

    // One byte of the third line changed: caught there.
    let third = first
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;
    let mut edited = first.clone();
    edited[third + 2] ^= 0x20;
    match verify_bytes(&[("audit.log", &edited)], &signed) {
        Err(VerifyFailure::Broken(b)) => {
            assert_eq!((b.seq, b.kind, b.line), (Some(3), BreakKind::Modified, 3))
        }
        other => panic!("expected a break, got {other:?}"),
    }

    // Rotated while stopped: the old and new files are one chain; the new one alone
    // starts later, which `partial` accepts.
    std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
    let a = broker(&b, steady()).await;
    a.log_request(&record("t"), None).await.unwrap();
    a.shutdown().await;
    let second = std::fs::read(&path).unwrap();
    let both = verify_bytes(&[("audit.log.1", &first), ("audit.log", &second)], &signed).unwrap();
    assert_eq!((both.entries, both.checkpoints), (10, 3));
    match verify_bytes(&[("audit.log", &second)], &signed) {
        Err(VerifyFailure::Broken(b)) => {
            assert_eq!(b.kind, BreakKind::StartsLater { first_seq: 9 })
        }
        other => panic!("expected a break, got {other:?}"),
    }
    let partial = VerifyOptions {
        partial: true,
        public_key: Some(key),
    };
    let alone = verify_bytes(&[("audit.log", &second)], &partial).unwrap();
    assert_eq!((alone.first_seq, alone.last_seq), (Some(9), Some(10)));
}

#[tokio::test]
async fn periodic_checkpoints_only_when_entries_came() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let a = broker(
        &b,
        AuditSettings {
            write_timeout: Duration::from_secs(1),
            checkpoint_interval: Duration::from_millis(100),
            file_directory: std::env::temp_dir(),
        },
    )
    .await;
    a.enable("file", "file", String::new(), file_opts(&path), false)
        .await
        .unwrap();
    a.log_request(&record("t"), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = lines(&path);
    assert_eq!(
        entries.len(),
        3,
        "the enable checkpoint, the entry and one checkpoint, not one per tick: {entries:?}"
    );
    assert_eq!(entries[2]["type"], json!("checkpoint"));
}

#[tokio::test]
async fn a_full_disk_fails_closed_and_a_second_device_is_enough() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    let full = dir.path().join("full.log");
    let a = broker(&b, steady()).await;
    // A file that opens but cannot be written is refused at enable.
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let e = a
        .enable("full", "file", String::new(), file_opts(&full), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be written"), "{e}");
    assert_eq!(a.list(), json!({}), "nothing was enabled");
    assert!(b.get(&Writer::head_key("full/")).await.unwrap().is_none());
    // One that fills up after enable fails closed.
    std::fs::remove_file(&full).unwrap();
    a.enable("full", "file", String::new(), file_opts(&full), false)
        .await
        .unwrap();
    std::fs::remove_file(&full).unwrap();
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    a.reopen();
    let started = Instant::now();
    assert!(matches!(
        a.log_request(&record("t"), None).await,
        Err(AuditError::NotAccepted)
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    let health = a.health();
    assert_eq!(health, vec![("full/".to_owned(), false)]);
    assert!(a.list()["full/"]["error"]
        .as_str()
        .unwrap()
        .contains("space"));

    a.enable("good", "file", String::new(), file_opts(&good), false)
        .await
        .unwrap();
    a.log_request(&record("t"), None).await.unwrap();
    assert_eq!(lines(&good).len(), 2);
    // The failed write left nothing half-written in the good device's chain.
    assert_eq!(lines(&good)[1]["seq"], json!(2));
}

#[tokio::test]
async fn a_stuck_device_times_out_instead_of_hanging() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stuck");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mkfifo is not available");
        return;
    }
    let a = broker(&b, fast()).await;
    // Enabling opens the file, which blocks on a FIFO without a reader: the
    // enable itself must give up with a clear error.
    let err = a
        .enable("stuck", "file", String::new(), file_opts(&fifo), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    // Unblock the opener so the test runtime can shut down.
    drop(std::fs::File::open(&fifo).unwrap());

    // A device that gets stuck while running (the file is replaced by the FIFO
    // and reopened): callers give up after the timeout, health says why.
    let path = dir.path().join("audit.log");
    a.enable("file", "file", String::new(), file_opts(&path), false)
        .await
        .unwrap();
    a.log_request(&record("t"), None).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(&fifo, &path).unwrap();
    a.reopen();
    let started = Instant::now();
    assert!(matches!(
        a.log_request(&record("t"), None).await,
        Err(AuditError::NotAccepted)
    ));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    // Unhealthy as soon as the caller has given up, not only once the
    // writer's own write is overdue.
    assert_eq!(a.health(), vec![("file/".to_owned(), false)]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(a.health(), vec![("file/".to_owned(), false)]);
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::open(&path).unwrap(), &mut text).unwrap();
        text
    });
    // Once the reader is there, the queued entry goes through and the device recovers.
    let mut recovered = false;
    for _ in 0..20 {
        if a.log_request(&record("t"), None).await.is_ok() {
            recovered = true;
            break;
        }
    }
    assert!(
        recovered,
        "the device did not recover once the FIFO had a reader"
    );
    assert_eq!(a.health(), vec![("file/".to_owned(), true)]);
    a.shutdown().await;
    drop(a);
    let _ = reader;
}

#[tokio::test]
async fn options_are_checked() {
    let b = barrier().await;
    let a = broker(&b, steady()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = file_opts(&dir.path().join("x.log"));
    opts.insert("colour".into(), "red".into());
    let e = a
        .enable("f", "file", String::new(), opts, false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown option \"colour\""), "{e}");
    let e = a
        .enable("f", "file", String::new(), BTreeMap::new(), false)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "file_path is required");
    let e = a
        .enable(
            "f",
            "syslog",
            String::new(),
            file_opts(&dir.path().join("x")),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown backend type"), "{e}");
    let mut opts = file_opts(&dir.path().join("x.log"));
    opts.insert("format".into(), "jsonx".into());
    assert!(a
        .enable("f", "file", String::new(), opts, false)
        .await
        .is_err());
    a.enable(
        "f",
        "file",
        String::new(),
        file_opts(&dir.path().join("x.log")),
        false,
    )
    .await
    .unwrap();
    let e = a
        .enable(
            "f/",
            "file",
            String::new(),
            file_opts(&dir.path().join("y.log")),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("path already in use"), "{e}");
    assert!(a
        .enable(
            "../x",
            "file",
            String::new(),
            file_opts(&dir.path().join("z")),
            false
        )
        .await
        .is_err());
    a.disable("f").await.unwrap();
    a.disable("f").await.unwrap();
    assert_eq!(a.list(), json!({}));
    // With no device, nothing is required.
    a.log_request(&record("t"), None).await.unwrap();
    assert_eq!(hmac_hex(b"k", b"v").len(), 64);
}

#[tokio::test]
async fn api_devices_are_confined_to_the_directory_with_an_owner_mode() {
    let b = barrier().await;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let a = broker(
        &b,
        AuditSettings {
            file_directory: dir.path().to_owned(),
            ..steady()
        },
    )
    .await;
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    for path in [
        outside.path().join("x.log"),
        dir.path().join("sub/../../x.log"),
        dir.path().join("link/x.log"),
        dir.path().join("missing/x.log"),
        std::path::PathBuf::from("x.log"),
        dir.path().join("sub/.."),
        dir.path().join("a\nb.log"),
    ] {
        let e = a
            .enable("f", "file", String::new(), file_opts(&path), false)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("audit_file_directory"),
            "{}: {e}",
            path.display()
        );
    }
    let sibling = format!("{}-sibling/x.log", dir.path().display());
    let e = a
        .enable(
            "f",
            "file",
            String::new(),
            BTreeMap::from([("file_path".to_owned(), sibling)]),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("audit_file_directory"), "{e}");
    for mode in ["0644", "0700", "0660", "0777", "0400"] {
        let mut opts = file_opts(&dir.path().join("m.log"));
        opts.insert("mode".into(), mode.into());
        let e = a
            .enable("f", "file", String::new(), opts, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("0600"), "{mode}: {e}");
    }
    assert!(!dir.path().join("m.log").exists());
    // `..` inside the directory resolves; the stored path is the resolved one.
    let mut opts = file_opts(&dir.path().join("sub/../ok.log"));
    opts.insert("mode".into(), "0640".into());
    a.enable("f", "file", String::new(), opts, false)
        .await
        .unwrap();
    let stored = std::fs::canonicalize(dir.path()).unwrap().join("ok.log");
    assert_eq!(
        a.list()["f/"]["options"]["file_path"],
        json!(stored.display().to_string())
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn device_paths_are_refused_not_trimmed() {
    assert_eq!(super::normalize_path("file").unwrap(), "file/");
    assert_eq!(super::normalize_path("team/file/").unwrap(), "team/file/");
    for p in [
        "/file", "file//", "a//b", " file", "file\n", "a/../b", "./f", "",
    ] {
        assert!(super::normalize_path(p).is_err(), "{p:?}");
    }
}
