use super::*;
use crate::clock::UnixTime;
use crate::storage::{MigrationMode, Storage};

async fn unsealed() -> (Barrier, [u8; 32]) {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Barrier::new(storage);
    let root = *random_array::<32>().unwrap();
    barrier
        .initialize(&root, UnixTime::from_secs(100))
        .await
        .unwrap();
    (barrier, root)
}

#[tokio::test]
async fn round_trip_and_random_nonce() {
    let (b, _) = unsealed().await;
    b.put("secret/a", b"value-1").await.unwrap();
    assert_eq!(
        b.get("secret/a").await.unwrap().unwrap().as_slice(),
        b"value-1"
    );
    let first = b.storage().get("secret/a").await.unwrap().unwrap();
    b.put("secret/a", b"value-1").await.unwrap();
    let second = b.storage().get("secret/a").await.unwrap().unwrap();
    assert_ne!(
        first, second,
        "same plaintext must not give the same ciphertext"
    );
    assert!(!first.windows(7).any(|w| w == b"value-1"));
}

#[tokio::test]
async fn tampered_ciphertext_fails() {
    let (b, _) = unsealed().await;
    b.put("k", b"hello").await.unwrap();
    let mut blob = b.storage().get("k").await.unwrap().unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    b.storage().put("k", blob).await.unwrap();
    assert!(matches!(b.get("k").await, Err(BarrierError::Decrypt)));
}

#[tokio::test]
async fn ciphertext_moved_to_another_key_fails() {
    let (b, _) = unsealed().await;
    b.put("a", b"for a only").await.unwrap();
    let blob = b.storage().get("a").await.unwrap().unwrap();
    b.storage().put("b", blob).await.unwrap();
    assert!(matches!(b.get("b").await, Err(BarrierError::Decrypt)));
}

#[tokio::test]
async fn rotation_keeps_old_values_readable_and_survives_reseal() {
    let (b, root) = unsealed().await;
    b.put("old", b"term-1").await.unwrap();
    let status = b.rotate(UnixTime::from_secs(200)).await.unwrap();
    assert_eq!(
        status,
        KeyStatus {
            term: 2,
            install_time: 200
        }
    );
    b.put("new", b"term-2").await.unwrap();
    assert_eq!(
        read_term(&b.storage().get("new").await.unwrap().unwrap()).unwrap(),
        2
    );
    assert_eq!(
        read_term(&b.storage().get("old").await.unwrap().unwrap()).unwrap(),
        1
    );
    b.seal();
    assert!(matches!(b.get("old").await, Err(BarrierError::Sealed)));
    b.unseal(&root).await.unwrap();
    assert_eq!(b.get("old").await.unwrap().unwrap().as_slice(), b"term-1");
    assert_eq!(b.get("new").await.unwrap().unwrap().as_slice(), b"term-2");
    assert_eq!(b.key_status().unwrap().term, 2);
}

#[tokio::test]
async fn read_cache_follows_writes_and_invalidation() {
    let (b, _) = unsealed().await;
    b.put("c", b"one").await.unwrap();
    assert_eq!(b.get("c").await.unwrap().unwrap().as_slice(), b"one");
    b.put("c", b"two").await.unwrap();
    assert_eq!(
        b.get("c").await.unwrap().unwrap().as_slice(),
        b"two",
        "a write invalidates"
    );
    // A write by "another node" straight into storage is seen after invalidation.
    let blob = b.storage().get("c").await.unwrap().unwrap();
    b.storage().delete("c").await.unwrap();
    assert!(b.get("c").await.unwrap().is_some(), "served from the cache");
    b.invalidate(Some(&["c"]));
    assert!(b.get("c").await.unwrap().is_none());
    b.storage().put("c", blob).await.unwrap();
    assert!(b.get("c").await.unwrap().is_none(), "negative entry cached");
    b.invalidate(None);
    assert_eq!(b.get("c").await.unwrap().unwrap().as_slice(), b"two");
}

#[tokio::test]
async fn wrong_root_key_is_refused() {
    let (b, mut root) = unsealed().await;
    b.seal();
    root[0] ^= 0xff;
    assert!(matches!(
        b.unseal(&root).await,
        Err(BarrierError::InvalidRootKey)
    ));
    assert!(b.is_sealed());
}

#[tokio::test]
async fn initialize_twice_is_refused() {
    let (b, root) = unsealed().await;
    assert!(matches!(
        b.initialize(&root, UnixTime::from_secs(1)).await,
        Err(BarrierError::AlreadyInitialized)
    ));
}

#[tokio::test]
async fn view_confines_keys_to_its_prefix() {
    let (b, _) = unsealed().await;
    let b = Arc::new(b);
    let view = View::new(b.clone(), "logical/abc/");
    view.apply(vec![view.put_op("x/y", b"1".to_vec(), None)])
        .await
        .unwrap();
    b.put("logical/other/x/z", b"2").await.unwrap();
    assert_eq!(view.list("x/", None, 10).await.unwrap(), vec!["x/y"]);
    assert!(b.get("logical/abc/x/y").await.unwrap().is_some());
    view.clear().await.unwrap();
    assert!(b.get("logical/abc/x/y").await.unwrap().is_none());
    assert!(b.get("logical/other/x/z").await.unwrap().is_some());
}

#[test]
fn malformed_headers_are_refused() {
    assert!(read_term(&[]).is_err());
    assert!(read_term(&[2, 0, 0, 0, 1]).is_err());
    let key = [7u8; 32];
    let blob = seal_value(&key, 3, "p", b"x").unwrap();
    assert_eq!(read_term(&blob).unwrap(), 3);
    assert!(open(&key, 3, "p", &blob[..HEADER_LEN]).is_err());
    assert!(open(&key, 3, "q", &blob).is_err());
}

#[tokio::test]
async fn a_guarded_write_fails_after_any_other_write_even_of_the_same_plaintext() {
    let (b, _) = unsealed().await;
    b.put("count", b"1").await.unwrap();
    let (seen, guard) = b.get_versioned("count").await.unwrap();
    assert_eq!(seen.unwrap().as_slice(), b"1");
    // Someone else writes the same plaintext: the ciphertext differs, the guard fails.
    b.put("count", b"1").await.unwrap();
    let op = BarrierOp::Put {
        key: "count".into(),
        value: Zeroizing::new(b"2".to_vec()),
        expires_at: None,
    };
    assert!(!b.apply_if(&[guard], vec![op]).await.unwrap());
    assert_eq!(b.get("count").await.unwrap().unwrap().as_slice(), b"1");
    // A guard on an absent key allows exactly one creation.
    let create = || BarrierOp::Put {
        key: "once".into(),
        value: Zeroizing::new(b"x".to_vec()),
        expires_at: None,
    };
    assert!(b
        .apply_if(&[Guard::absent("once")], vec![create()])
        .await
        .unwrap());
    assert!(!b
        .apply_if(&[Guard::absent("once")], vec![create()])
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_gives_a_value_to_exactly_one_of_many_concurrent_takers() {
    let (b, _) = unsealed().await;
    b.put("single-use", b"ticket").await.unwrap();
    // Warm the read cache, which take must not trust.
    assert!(b.get("single-use").await.unwrap().is_some());
    let b = Arc::new(b);
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (b, start) = (b.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            b.take("single-use").await.unwrap().is_some()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert!(b.get("single-use").await.unwrap().is_none());
}

#[tokio::test]
async fn a_rekey_keeps_a_rotation_made_by_another_node_and_drops_the_old_root_key() {
    let (a, old_root) = unsealed().await;
    // A second node over the same storage rotates; node A does not know.
    let b = Barrier::new(a.storage().clone());
    b.unseal(&old_root).await.unwrap();
    b.rotate(UnixTime::from_secs(200)).await.unwrap();
    b.put("logical/from-b", b"term two").await.unwrap();

    let new_root = *random_array::<32>().unwrap();
    let marker = BarrierOp::Put {
        key: "core/marker".into(),
        value: Zeroizing::new(b"x".to_vec()),
        expires_at: None,
    };
    assert!(a
        .rekey(&new_root, &[], vec![marker], Vec::new())
        .await
        .unwrap());
    // The stored keyring was re-encrypted, term 2 included.
    assert_eq!(a.key_status().unwrap().term, 2);
    assert_eq!(
        a.get("logical/from-b").await.unwrap().unwrap().as_slice(),
        b"term two"
    );
    a.seal();
    assert!(matches!(
        a.unseal(&old_root).await,
        Err(BarrierError::InvalidRootKey)
    ));
    a.unseal(&new_root).await.unwrap();
    assert!(a.get("core/marker").await.unwrap().is_some());
    // Node B still holds the old root key: a rekey or a rotation there would
    // rewrite the keyring under it (bringing the old shares back); both are
    // refused and write nothing.
    assert!(matches!(
        b.rekey(&old_root, &[], Vec::new(), Vec::new()).await,
        Err(BarrierError::InvalidRootKey)
    ));
    assert!(matches!(
        b.rotate(UnixTime::from_secs(300)).await,
        Err(BarrierError::InvalidRootKey)
    ));
    a.seal();
    a.unseal(&new_root).await.unwrap();
}

#[tokio::test]
async fn a_rekey_with_a_stale_guard_writes_nothing() {
    let (a, old_root) = unsealed().await;
    a.put("core/attempt", b"v1").await.unwrap();
    let (_, guard) = a.get_versioned("core/attempt").await.unwrap();
    a.put("core/attempt", b"v2").await.unwrap();
    let new_root = *random_array::<32>().unwrap();
    assert!(!a
        .rekey(&new_root, &[guard], Vec::new(), Vec::new())
        .await
        .unwrap());
    a.seal();
    a.unseal(&old_root).await.unwrap();
    assert!(matches!(
        Barrier::new(a.storage().clone()).unseal(&new_root).await,
        Err(BarrierError::InvalidRootKey)
    ));
}
