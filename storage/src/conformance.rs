//! One behaviour suite that every storage backend must pass.

use super::{Expect, MigrationMode, Storage, WriteOp};
use crate::testutil::pg::TestDatabase;

async fn exercise(storage: &Storage) {
    // Empty store.
    assert_eq!(storage.get("a").await.unwrap(), None);
    assert!(storage.list("", None, 10).await.unwrap().keys.is_empty());

    // Put / get / overwrite.
    storage.put("app/db", b"one".to_vec()).await.unwrap();
    assert_eq!(
        storage.get("app/db").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    storage.put("app/db", b"two".to_vec()).await.unwrap();
    assert_eq!(
        storage.get("app/db").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );

    // Binary values survive unchanged.
    let blob: Vec<u8> = (0..=255u8).collect();
    storage.put("bin", blob.clone()).await.unwrap();
    assert_eq!(storage.get("bin").await.unwrap(), Some(blob));

    // Prefix listing is byte-ordered (upper case before lower case) and bounded.
    for k in ["app/B", "app/a", "app/c/d", "apple", "app0"] {
        storage.put(k, vec![1]).await.unwrap();
    }
    let page = storage.list("app/", None, 100).await.unwrap();
    assert_eq!(page.keys, vec!["app/B", "app/a", "app/c/d", "app/db"]);
    let first = storage.list("app/", None, 2).await.unwrap();
    assert_eq!(first.keys, vec!["app/B", "app/a"]);
    let second = storage.list("app/", Some("app/a"), 2).await.unwrap();
    assert_eq!(second.keys, vec!["app/c/d", "app/db"]);
    // `after` below the prefix is ignored rather than widening the range.
    let below = storage.list("app/", Some("aaa"), 1).await.unwrap();
    assert_eq!(below.keys, vec!["app/B"]);
    // The empty prefix has no upper bound; `after` still pages through it.
    let everything = storage.list("", Some("app/db"), 10).await.unwrap();
    assert_eq!(everything.keys, vec!["app0", "apple", "bin"]);
    assert_eq!(storage.count("").await.unwrap(), 7);
    // A prefix with few keys stops at its end rather than walking on to the
    // keys after it (a page never reaches past the prefix, whatever its limit).
    let sparse = storage.list("app/c/", None, 500).await.unwrap();
    assert_eq!(sparse.keys, vec!["app/c/d"]);
    // Counting uses the same range: "apple" and "app0" are not under "app/".
    assert_eq!(storage.count("app/").await.unwrap(), 4);
    assert_eq!(storage.count("nothing/").await.unwrap(), 0);

    // Atomic batch: all ops land together.
    storage
        .apply(&[
            WriteOp::Put {
                key: "t/1".into(),
                value: vec![1],
                expires_at: Some(100),
            },
            WriteOp::Put {
                key: "t/2".into(),
                value: vec![2],
                expires_at: Some(50),
            },
            WriteOp::Put {
                key: "t/3".into(),
                value: vec![3],
                expires_at: None,
            },
            WriteOp::Delete { key: "bin".into() },
        ])
        .await
        .unwrap();
    assert_eq!(storage.get("bin").await.unwrap(), None);

    // Expiry index: only due entries, oldest first, within the prefix.
    assert_eq!(storage.expired("t/", 75, 10).await.unwrap(), vec!["t/2"]);
    assert_eq!(
        storage.expired("t/", 100, 10).await.unwrap(),
        vec!["t/2", "t/1"]
    );
    assert_eq!(storage.expired("t/", 100, 1).await.unwrap(), vec!["t/2"]);
    assert!(storage
        .expired("other/", 1000, 10)
        .await
        .unwrap()
        .is_empty());
    // Deleting what is due: only expired entries, in the prefix, bounded.
    let due = |key: &str, at: Option<i64>| WriteOp::Put {
        key: key.into(),
        value: vec![1],
        expires_at: at,
    };
    storage
        .apply(&[
            due("x/old", Some(10)),
            due("x/older", Some(5)),
            due("x/fresh", Some(1000)),
            due("x/forever", None),
            due("y/other", Some(1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        storage.delete_expired("x/", 20, 1).await.unwrap(),
        vec!["x/older"]
    );
    assert_eq!(
        storage.delete_expired("x/", 20, 10).await.unwrap(),
        vec!["x/old"]
    );
    assert!(storage
        .delete_expired("x/", 20, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage.list("x/", None, 10).await.unwrap().keys,
        vec!["x/forever", "x/fresh"]
    );
    assert!(storage.get("y/other").await.unwrap().is_some());
    storage.delete_prefix("x/").await.unwrap();
    storage.delete_prefix("y/").await.unwrap();
    // Overwriting without expiry takes the entry out of the index.
    storage.put("t/2", vec![9]).await.unwrap();
    assert_eq!(storage.expired("t/", 100, 10).await.unwrap(), vec!["t/1"]);

    // Delete and delete-prefix.
    storage.delete("app/db").await.unwrap();
    storage.delete("never-existed").await.unwrap();
    assert_eq!(storage.get("app/db").await.unwrap(), None);
    assert_eq!(storage.delete_prefix("app/").await.unwrap(), 3);
    assert!(storage
        .list("app/", None, 10)
        .await
        .unwrap()
        .keys
        .is_empty());
    assert_eq!(
        storage.get("apple").await.unwrap().as_deref(),
        Some(&[1u8][..])
    );

    conditional_batches(storage).await;

    // Migrations are idempotent.
    storage.migrate().await.unwrap();
    assert_eq!(
        storage.get("apple").await.unwrap().as_deref(),
        Some(&[1u8][..])
    );
}

fn put(key: &str, value: &[u8]) -> WriteOp {
    WriteOp::Put {
        key: key.into(),
        value: value.to_vec(),
        expires_at: None,
    }
}

async fn conditional_batches(storage: &Storage) {
    let unchanged = |key: &str, value: &[u8]| Expect::Unchanged {
        key: key.into(),
        value: value.to_vec(),
    };
    // Absent: creates once, then refuses.
    let absent = [Expect::Absent { key: "c/a".into() }];
    assert!(storage
        .apply_if(&absent, &[put("c/a", b"1")])
        .await
        .unwrap());
    assert!(!storage
        .apply_if(&absent, &[put("c/a", b"2")])
        .await
        .unwrap());
    assert_eq!(
        storage.get("c/a").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // Unchanged: swaps when the bytes match, refuses (and writes nothing, not even
    // the batch's other ops) when they do not.
    assert!(!storage
        .apply_if(
            &[unchanged("c/a", b"0")],
            &[put("c/a", b"3"), put("c/other", b"x")]
        )
        .await
        .unwrap());
    assert_eq!(storage.get("c/other").await.unwrap(), None);
    assert!(storage
        .apply_if(&[unchanged("c/a", b"1")], &[put("c/a", b"3")])
        .await
        .unwrap());
    assert_eq!(
        storage.get("c/a").await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
    // An expectation on a missing key is not met.
    assert!(!storage
        .apply_if(&[unchanged("c/missing", b"")], &[put("c/x", b"x")])
        .await
        .unwrap());
    // Absent guarding a batch that does not write the key leaves no row behind.
    assert!(storage
        .apply_if(
            &[Expect::Absent {
                key: "c/lock".into()
            }],
            &[put("c/y", b"y")]
        )
        .await
        .unwrap());
    assert_eq!(storage.get("c/lock").await.unwrap(), None);
    // Delete only if unchanged: the single-use pattern.
    let del = [WriteOp::Delete { key: "c/a".into() }];
    assert!(storage
        .apply_if(&[unchanged("c/a", b"3")], &del)
        .await
        .unwrap());
    assert!(!storage
        .apply_if(&[unchanged("c/a", b"3")], &del)
        .await
        .unwrap());

    // Twenty-four contenders released together on one read value: exactly one wins.
    storage.put("c/race", b"v0".to_vec()).await.unwrap();
    let seen = storage.get("c/race").await.unwrap().unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let (storage, barrier, seen) = (storage.clone(), barrier.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            storage
                .apply_if(
                    &[Expect::Unchanged {
                        key: "c/race".into(),
                        value: seen,
                    }],
                    &[put("c/race", &[i])],
                )
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one conditional write may win");
    // And for creation: twenty-four creators of one key, one winner.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let (storage, barrier) = (storage.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            storage
                .apply_if(
                    &[Expect::Absent {
                        key: "c/new".into(),
                    }],
                    &[put("c/new", &[i])],
                )
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one creator may win");
    storage.delete_prefix("c/").await.unwrap();

    // Claiming due entries: a claimed entry is not due again until the claim
    // runs out, and twenty-four workers released together never share an entry.
    let due = |key: String, at: i64| WriteOp::Put {
        key,
        value: vec![1],
        expires_at: Some(at),
    };
    storage
        .apply(&[
            due("l/a".into(), 10),
            due("l/b".into(), 20),
            due("l/later".into(), 500),
        ])
        .await
        .unwrap();
    assert_eq!(
        storage.claim_expired("l/", 30, 90, 1).await.unwrap(),
        vec!["l/a"]
    );
    assert_eq!(
        storage.claim_expired("l/", 30, 90, 10).await.unwrap(),
        vec!["l/b"]
    );
    assert!(storage
        .claim_expired("l/", 30, 90, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        storage.claim_expired("l/", 95, 200, 10).await.unwrap(),
        vec!["l/a", "l/b"],
        "an unfinished claim comes due again"
    );
    storage.delete_prefix("l/").await.unwrap();
    let many: Vec<WriteOp> = (0..60).map(|i| due(format!("l/{i:02}"), 5)).collect();
    storage.apply(&many).await.unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (storage, barrier) = (storage.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            storage.claim_expired("l/", 10, 1000, 5).await.unwrap()
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let total = claimed.len();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), total, "no entry may be claimed twice");
    assert_eq!(total, 60, "every due entry is claimed once");
    storage.delete_prefix("l/").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let storage = Storage::connect(&url, MigrationMode::Apply).await.unwrap();
    exercise(&storage).await;
    // A second connection without migration rights sees a current schema.
    Storage::connect(&url, MigrationMode::VerifyOnly)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_memory_backend_conforms() {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    exercise(&storage).await;
}

#[tokio::test]
async fn verify_only_refuses_an_unmigrated_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let err = Storage::connect(&url, MigrationMode::VerifyOnly)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cofferd migrate"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend_conforms() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let storage = Storage::connect(db.url(), MigrationMode::Apply)
        .await
        .unwrap();
    exercise(&storage).await;
    Storage::connect(db.url(), MigrationMode::VerifyOnly)
        .await
        .unwrap();
    drop(storage);
    db.drop_now().await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    let err = Storage::connect("postgres://postgres@127.0.0.1:1/none", MigrationMode::Apply)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("cannot connect to the postgres storage"),
        "{text}"
    );
}

/// Migration 0002 on PostgreSQL: rows written before it are carried over, and
/// keys under [`crate::EXPIRING_PARTITION_PREFIX`] (and only those) land in
/// the expiring partition, before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expiring_keys_get_their_own_partition() {
    use crate::EXPIRING_PARTITION_PREFIX as P;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let migrations =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let first_only = tempfile::tempdir().unwrap();
    std::fs::copy(
        migrations.join("0001_entries.sql"),
        first_only.path().join("0001_entries.sql"),
    )
    .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(first_only.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let before = [
        (format!("{P}id/dyn/creds/a"), Some(100_i64)),
        ("core/policy/dev".to_owned(), None),
    ];
    for (key, expires_at) in &before {
        sqlx::query("INSERT INTO coffer_entries (key, value, expires_at) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(key.as_bytes())
            .bind(*expires_at)
            .execute(&pool)
            .await
            .unwrap();
    }
    let storage = Storage::connect(db.url(), MigrationMode::Apply)
        .await
        .unwrap();
    // Neighbours of the prefix on both sides, which must stay in the default one.
    let after = [
        format!("{P}token/t1/h1"),
        format!("{P}irrevocable/x"),
        "sys/expire".to_owned(),
        "sys/expire0".to_owned(),
        "sys/expirex/y".to_owned(),
        "sys/token/id/t1".to_owned(),
    ];
    let mut ops: Vec<WriteOp> = after.iter().map(|k| put(k, k.as_bytes())).collect();
    ops.push(WriteOp::Put {
        key: format!("{P}id/dyn/creds/b"),
        value: b"b".to_vec(),
        expires_at: Some(50),
    });
    storage.apply(&ops).await.unwrap();

    let placed: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT key, tableoid::regclass::text, value FROM coffer_entries ORDER BY key",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(placed.len(), 9, "{placed:?}");
    for (key, partition, value) in &placed {
        let expected = if key.starts_with(P) {
            "coffer_entries_expiring"
        } else {
            "coffer_entries_other"
        };
        assert_eq!(partition, expected, "{key}");
        if !key.ends_with("creds/b") {
            assert_eq!(value, key.as_bytes(), "{key} kept its value");
        }
    }
    // Reads, listings and the expiry index see both partitions as one table.
    assert_eq!(
        storage.get("core/policy/dev").await.unwrap().as_deref(),
        Some(&b"core/policy/dev"[..])
    );
    let listed = storage.list("sys/", None, 100).await.unwrap().keys;
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "one ordered listing across partitions");
    assert_eq!(listed.len(), 8, "{listed:?}");
    let due = storage.expired("", 1_000, 10).await.unwrap();
    assert_eq!(
        due,
        vec![format!("{P}id/dyn/creds/b"), format!("{P}id/dyn/creds/a")],
        "by expiry time, the carried-over row included"
    );
    drop((storage, pool));
    db.drop_now().await;
}
