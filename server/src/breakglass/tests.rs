use std::sync::Arc;

use super::*;
use crate::crypto::random_array;
use crate::storage::{MigrationMode, Storage};

async fn barrier() -> Arc<Barrier> {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(storage));
    barrier
        .initialize(&random_array::<32>().unwrap(), UnixTime::from_secs(0))
        .await
        .unwrap();
    barrier
}

fn person(name: &str) -> Person {
    Person {
        name: name.into(),
        entity_id: format!("entity-{name}"),
        mount: "userpass/".into(),
        accessor: format!("acc-{name}"),
    }
}

fn grant(now: i64) -> Grant {
    Grant {
        version: 1,
        id: new_id().unwrap(),
        status: Status::Pending,
        reason: "INC-42: prod DB down".into(),
        incident: "INC-42".into(),
        ttl: 1800,
        policies: vec!["emergency-admin".into()],
        requester: person("alice"),
        requested_at: now,
        approval_expires_at: now + 3600,
        required_approvals: 1,
        approvals: Vec::new(),
        denial: None,
        token_key: None,
        token_accessor: None,
        activated_at: None,
        expires_at: None,
        first_used_at: None,
        ended_at: None,
        ended_by: None,
        notifications: Notifications::default(),
    }
}

#[test]
fn ids_are_well_formed_and_other_names_are_not_ids() {
    let id = new_id().unwrap();
    assert!(is_grant_id(&id), "{id}");
    assert_ne!(id, new_id().unwrap());
    for bad in [
        "",
        "config",
        "request",
        "bg-",
        "bg-../../sys/token/id/xxxxxxxxx",
        "BG-AAAAAAAAAAAAAAAAAAAAAAAAAA",
        &id.to_uppercase(),
        &format!("{id}a"),
    ] {
        assert!(!is_grant_id(bad), "{bad:?}");
    }
}

#[test]
fn an_approval_is_void_once_the_request_changes() {
    let mut g = grant(1000);
    let binding = g.binding();
    g.approvals.push(Approval {
        by: person("bob"),
        time: 1001,
        comment: String::new(),
        binding,
    });
    assert!(g.approvals_hold());
    for change in [
        |g: &mut Grant| g.ttl = 4 * 3600,
        |g: &mut Grant| g.policies.push("root".into()),
        |g: &mut Grant| g.reason.push('!'),
        |g: &mut Grant| g.requester.name = "mallory".into(),
    ] {
        let mut changed = g.clone();
        change(&mut changed);
        assert!(!changed.approvals_hold());
    }
}

#[test]
fn deadlines_read_as_expired_or_ended_before_the_worker_writes_them() {
    let mut g = grant(1000);
    assert_eq!(g.status_at(UnixTime::from_secs(4599)), Status::Pending);
    assert_eq!(g.status_at(UnixTime::from_secs(4600)), Status::Expired);
    g.status = Status::Active;
    g.expires_at = Some(3000);
    assert_eq!(g.status_at(UnixTime::from_secs(2999)), Status::Active);
    assert_eq!(g.status_at(UnixTime::from_secs(3000)), Status::Ended);
    g.status = Status::Revoked;
    assert_eq!(g.status_at(UnixTime::from_secs(9999)), Status::Revoked);
}

#[test]
fn the_same_person_is_recognised_by_entity_then_by_mount_and_name() {
    let alice = person("alice");
    let mut other_token = person("alice");
    other_token.accessor = "another".into();
    assert!(alice.same_as(&other_token));
    assert!(!alice.same_as(&person("bob")));
    let mut no_entity = person("alice");
    no_entity.entity_id.clear();
    assert!(alice.same_as(&no_entity));
    no_entity.mount = "other/".into();
    assert!(!alice.same_as(&no_entity));
}

#[test]
fn signatures_are_hmac_sha256_of_the_body() {
    // RFC 4231 test case 2.
    let sig = notify::signature("Jefe", b"what do ya want for nothing?").unwrap();
    assert_eq!(
        sig,
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(notify::signature("", b"x"), None);
    assert_eq!(notify::backoff(0), 2);
    assert_eq!(notify::backoff(3), 8);
    assert_eq!(notify::backoff(30), 300);
}

#[test]
fn configuration_limits_are_enforced() {
    let cfg = Config::default();
    let bad = |v: serde_json::Value| cfg.updated(v.as_object().unwrap()).unwrap_err().to_string();
    assert!(bad(json!({"max_ttl": "5h"})).contains("max_ttl"));
    assert!(bad(json!({"default_ttl": "2h", "max_ttl": "1h"})).contains("default_ttl"));
    assert!(bad(json!({"required_approvals": 0})).contains("required_approvals"));
    assert!(bad(json!({"grantable_policies": ["root"]})).contains("root"));
    assert!(bad(json!({"webhook_urls": ["file:///etc/passwd"]})).contains("http"));
    let ok = cfg
        .updated(
            json!({"max_ttl": "1h", "webhook_urls": ["http://127.0.0.1:9/hook"], "webhook_secret": "s3cret"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(ok.max_ttl, 3600);
    let view = ok.view();
    assert_eq!(view["webhook_secret_set"], json!(true));
    assert!(!view.to_string().contains("s3cret"));
    assert!(!format!("{ok:?}").contains("s3cret"));
}

#[tokio::test]
async fn a_transition_happens_once_under_concurrent_changes() {
    let barrier = barrier().await;
    let cfg = Config {
        webhook_urls: vec!["http://127.0.0.1:9/hook".into()],
        ..Config::default()
    };
    let now = UnixTime::from_secs(1000);
    let g = grant(1000);
    Store::new(&barrier).create(&g, &cfg, now).await.unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (barrier, start, id, cfg) = (barrier.clone(), start.clone(), g.id.clone(), cfg.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            Store::new(&barrier)
                .update(&id, &cfg, now, |g| {
                    if g.status != Status::Pending {
                        return Err(LogicalError::invalid("not pending"));
                    }
                    g.status = Status::Approved;
                    Ok(Change::announce(EventKind::Approved))
                })
                .await
                .is_ok()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    // One announcement for the request and one for the approval.
    let queued = barrier.count(notify::OUTBOX_PREFIX).await.unwrap();
    assert_eq!(queued, 2);
}

#[tokio::test]
async fn the_worker_finds_a_grant_when_its_deadline_passes() {
    let barrier = barrier().await;
    let cfg = Config::default();
    let g = grant(1000);
    let store = Store::new(&barrier);
    store
        .create(&g, &cfg, UnixTime::from_secs(1000))
        .await
        .unwrap();
    assert!(store
        .claim_due(UnixTime::from_secs(4599), 60, 10)
        .await
        .unwrap()
        .is_empty());
    let due = store
        .claim_due(UnixTime::from_secs(4600), 60, 10)
        .await
        .unwrap();
    assert_eq!(due, vec![g.id.clone()]);
    // Claimed: another worker does not get it again until the claim lapses.
    assert!(store
        .claim_due(UnixTime::from_secs(4601), 60, 10)
        .await
        .unwrap()
        .is_empty());
    // A final grant leaves the index.
    store
        .update(&g.id, &cfg, UnixTime::from_secs(4601), |g| {
            g.status = Status::Expired;
            Ok(Change::quiet())
        })
        .await
        .unwrap();
    assert_eq!(barrier.count(DUE_PREFIX).await.unwrap(), 0);
}
