use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::crypto::random_array;
use crate::storage::{MigrationMode, Storage};

async fn store() -> LeaseStore {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(storage));
    barrier
        .initialize(&random_array::<32>().unwrap(), UnixTime::from_secs(0))
        .await
        .unwrap();
    LeaseStore::new(barrier)
}

fn lease(id: &str, expire: i64, token: Option<&str>) -> LeaseEntry {
    LeaseEntry {
        lease_id: id.into(),
        mount_accessor: "pki_1234".into(),
        engine_id: id.rsplit('/').next().unwrap().into(),
        issue_time: 0,
        expire_time: expire,
        max_expire_time: expire + 1000,
        last_renewal: None,
        renewable: false,
        token_key: token.map(str::to_owned),
        revoke_attempts: 0,
        irrevocable: false,
        last_error: None,
        quotas: Vec::new(),
    }
}

/// Counts calls; fails while `failing` is set.
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
}

impl LeaseRevoker for Fake {
    fn revoke<'a>(&'a self, _lease: &'a LeaseEntry) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                Err(LogicalError::Upstream("the database is down".into()))
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test]
async fn only_due_leases_are_revoked_and_then_gone() {
    let s = store().await;
    s.register(&lease("pki/issue/web/01", 100, None))
        .await
        .unwrap();
    s.register(&lease("pki/issue/web/02", 500, None))
        .await
        .unwrap();
    let fake = Fake::default();
    let out = s
        .expire_due(&fake, UnixTime::from_secs(200), 10)
        .await
        .unwrap();
    assert_eq!(out, vec![Revoked::Done]);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert!(s.get("pki/issue/web/01").await.unwrap().is_none());
    assert!(s.get("pki/issue/web/02").await.unwrap().is_some());
    assert_eq!(s.count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_failing_engine_is_retried_with_backoff_then_declared_irrevocable() {
    let s = store().await;
    s.register(&lease("db/creds/app/x", 10, None))
        .await
        .unwrap();
    let fake = Fake::default();
    fake.failing.store(true, Ordering::SeqCst);
    let mut now = 10;
    let mut outcomes = Vec::new();
    for _ in 0..MAX_REVOKE_ATTEMPTS {
        let (entry, _) = s.get("db/creds/app/x").await.unwrap().unwrap();
        // Not due before its backoff has passed.
        if entry.expire_time > now {
            assert!(s
                .expire_due(&fake, UnixTime::from_secs(now), 10)
                .await
                .unwrap()
                .is_empty());
            now = entry.expire_time;
        }
        outcomes.extend(
            s.expire_due(&fake, UnixTime::from_secs(now), 10)
                .await
                .unwrap(),
        );
    }
    assert_eq!(outcomes.len() as u32, MAX_REVOKE_ATTEMPTS);
    assert_eq!(outcomes.last(), Some(&Revoked::Irrevocable));
    assert!(outcomes[..outcomes.len() - 1]
        .iter()
        .all(|o| *o == Revoked::Retrying));
    let (entry, _) = s.get("db/creds/app/x").await.unwrap().unwrap();
    assert!(entry.irrevocable);
    assert_eq!(entry.revoke_attempts, MAX_REVOKE_ATTEMPTS);
    assert_eq!(entry.last_error.as_deref(), Some("the database is down"));
    // Out of the expiry index: never claimed again, even far in the future.
    assert!(s
        .expire_due(&fake, UnixTime::from_secs(i64::MAX / 2), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn revoking_a_token_makes_its_leases_due() {
    let s = store().await;
    s.register(&lease("pki/issue/a/1", 1000, Some("tok1")))
        .await
        .unwrap();
    s.register(&lease("pki/issue/a/2", 1000, Some("tok1")))
        .await
        .unwrap();
    s.register(&lease("pki/issue/a/3", 1000, Some("tok2")))
        .await
        .unwrap();
    assert_eq!(
        s.expire_token_leases("tok1", UnixTime::from_secs(50))
            .await
            .unwrap(),
        2
    );
    let fake = Fake::default();
    let out = s
        .expire_due(&fake, UnixTime::from_secs(50), 10)
        .await
        .unwrap();
    assert_eq!(out, vec![Revoked::Done, Revoked::Done]);
    assert!(s.get("pki/issue/a/3").await.unwrap().is_some());
    assert!(s.get("pki/issue/a/1").await.unwrap().is_none());
    assert_eq!(
        s.expire_token_leases("tok1", UnixTime::from_secs(60))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn listing_shows_one_level_and_ids_under_finds_every_depth() {
    let s = store().await;
    for id in [
        "pki/issue/web/1",
        "pki/issue/web/2",
        "pki/issue/api/3",
        "db/creds/x/4",
    ] {
        s.register(&lease(id, 1000, None)).await.unwrap();
    }
    assert_eq!(s.list("pki/issue/").await.unwrap(), vec!["api/", "web/"]);
    assert_eq!(s.list("pki/issue/web/").await.unwrap(), vec!["1", "2"]);
    assert_eq!(s.list("").await.unwrap(), vec!["db/", "pki/"]);
    let mut all = s.ids_under("pki/").await.unwrap();
    all.sort();
    assert_eq!(
        all,
        vec!["pki/issue/api/3", "pki/issue/web/1", "pki/issue/web/2"]
    );
}

#[tokio::test]
async fn twenty_four_workers_revoke_each_lease_exactly_once() {
    let s = store().await;
    for i in 0..40 {
        s.register(&lease(&format!("pki/issue/r/{i:02}"), 5, None))
            .await
            .unwrap();
    }
    let fake = Arc::new(Fake::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (s, fake, barrier) = (s.clone(), fake.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.expire_due(fake.as_ref(), UnixTime::from_secs(10), 3)
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t
            .await
            .unwrap()
            .iter()
            .filter(|o| **o == Revoked::Done)
            .count();
    }
    // Each lease was handed to the engine once, by whichever worker claimed it.
    assert_eq!(fake.calls.load(Ordering::SeqCst), done);
    let left = s.count().await.unwrap() as usize;
    assert_eq!(done + left, 40);
}

/// Every key the lease store writes falls in PostgreSQL's expiring partition
/// (migration 0002), which is what keeps the rest of the table's index small.
#[test]
fn every_lease_key_family_lives_in_the_expiring_partition() {
    for prefix in [LEASE_PREFIX, TOKEN_INDEX_PREFIX, IRREVOCABLE_PREFIX] {
        assert!(
            prefix.starts_with(crate::storage::EXPIRING_PARTITION_PREFIX),
            "{prefix}"
        );
    }
    let migration = include_str!("../../../migrations/postgres/0002_expiring_partition.sql");
    let bound = format!(
        "FOR VALUES FROM ('{}') TO ('sys/expire0')",
        crate::storage::EXPIRING_PARTITION_PREFIX
    );
    assert!(
        migration.contains(&bound),
        "the migration's bound is {bound}"
    );
}
