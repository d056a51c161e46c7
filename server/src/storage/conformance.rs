//! One behaviour suite that every storage backend must pass.

use super::{MigrationMode, Storage, WriteOp};
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

    // Migrations are idempotent.
    storage.migrate().await.unwrap();
    assert_eq!(
        storage.get("apple").await.unwrap().as_deref(),
        Some(&[1u8][..])
    );
}

#[tokio::test]
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

#[tokio::test]
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
