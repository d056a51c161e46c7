//! The lease path through the core, with an engine made for the test: a lease
//! in an answer is recorded and capped, looked up and renewed only by its
//! token (or an operator), revoked through the engine on request, on expiry
//! and when its token is revoked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::clock::ManualClock;
use crate::core::{Core, CoreConfig};
use crate::crypto::SecretString;
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{Lease, LogicalError, Operation, Request, Response};
use crate::storage::{MigrationMode, Storage};

static PATHS: &[PathSpec] = &[PathSpec::new("creds/:name", Ops::READ)];

/// Issues `creds/<name>` with a 600 s renewable lease; records revocations.
#[derive(Clone, Default)]
struct Leasing {
    revoked: Arc<Mutex<Vec<String>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Engine for Leasing {
    fn kind(&self) -> &'static str {
        "leasing"
    }
    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }
    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        _req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(async move {
            let name = ctx.rest.trim_start_matches("creds/").to_owned();
            let mut resp = Response::data(json!({ "username": format!("u-{name}") }));
            resp.lease = Some(Lease {
                id: format!("{name}-{}", ctx.now.secs()),
                ttl: 600,
                renewable: true,
            });
            Ok(resp)
        })
    }
    fn renew_lease<'a>(
        &'a self,
        _view: &'a crate::barrier::View,
        lease: &'a Lease,
        increment: u64,
        _now: crate::clock::UnixTime,
    ) -> EngineFuture<'a, Lease> {
        Box::pin(async move {
            Ok(Lease {
                id: lease.id.clone(),
                ttl: increment,
                renewable: true,
            })
        })
    }
    fn revoke_lease<'a>(
        &'a self,
        _view: &'a crate::barrier::View,
        lease: &'a Lease,
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(LogicalError::Upstream("the target is down".into()));
            }
            crate::sync::lock(&self.revoked).push(lease.id.clone());
            Ok(())
        })
    }
}

impl SecretsEngine for Leasing {}

fn req(op: Operation, path: &str, token: &str, data: Value) -> Request {
    let mut r = Request::new(op, path);
    r.client_token = Some(SecretString::from(token));
    r.data = data.as_object().cloned().unwrap_or_else(Map::new);
    r
}

async fn setup() -> (Core, Arc<ManualClock>, Leasing) {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let clock = ManualClock::new(1_000_000);
    let engine = Leasing::default();
    let config = CoreConfig {
        registry: Arc::new(crate::engines::builtin().with_secrets(engine.clone())),
        ..CoreConfig::default()
    };
    let core = Core::new(storage, clock.clone(), config);
    core.dev_setup(Some(&SecretString::from("root")))
        .await
        .unwrap();
    core.handle(req(
        Operation::Update,
        "sys/mounts/dyn",
        "root",
        json!({"type": "leasing", "config": {"max_lease_ttl": "1000s"}}),
    ))
    .await
    .unwrap();
    (core, clock, engine)
}

fn lease_of(resp: &Response) -> Lease {
    resp.lease.clone().expect("the answer carries a lease")
}

async fn token_for(core: &Core, policies: &[&str]) -> String {
    let created = core
        .handle(req(
            Operation::Update,
            "auth/token/create",
            "root",
            json!({ "policies": policies, "ttl": "1h" }),
        ))
        .await
        .unwrap();
    match &created.body {
        crate::logical::ResponseBody::Envelope {
            auth: Some(auth), ..
        } => auth["client_token"].as_str().unwrap().to_owned(),
        _ => panic!("no auth in the answer"),
    }
}

#[tokio::test]
async fn a_lease_is_recorded_looked_up_renewed_within_its_max_and_revoked() {
    let (core, clock, engine) = setup().await;
    let policy = r#"path "dyn/*" { capabilities = ["read"] }"#;
    core.handle(req(
        Operation::Update,
        "sys/policies/acl/dyn-reader",
        "root",
        json!({ "policy": policy }),
    ))
    .await
    .unwrap();
    let alice = token_for(&core, &["dyn-reader"]).await;
    let bob = token_for(&core, &["dyn-reader"]).await;

    let issued = core
        .handle(req(Operation::Read, "dyn/creds/app", &alice, json!({})))
        .await
        .unwrap();
    let lease = lease_of(&issued);
    assert!(lease.id.starts_with("dyn/creds/app/app-"), "{}", lease.id);
    assert_eq!((lease.ttl, lease.renewable), (600, true));

    let looked = core
        .handle(req(
            Operation::Update,
            "sys/leases/lookup",
            &alice,
            json!({ "lease_id": lease.id }),
        ))
        .await
        .unwrap();
    let crate::logical::ResponseBody::Envelope {
        data: Some(data), ..
    } = &looked.body
    else {
        panic!("no data")
    };
    assert_eq!(data["ttl"], 600);
    assert_eq!(data["id"], json!(lease.id));

    // Another token with the same policies is not its owner.
    let refused = core
        .handle(req(
            Operation::Update,
            "sys/leases/renew",
            &bob,
            json!({ "lease_id": lease.id }),
        ))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("another token"), "{refused}");

    // Renewal asks the engine and stops at the mount's max (1000 s from issue).
    clock.advance(Duration::from_secs(300));
    let renewed = core
        .handle(req(
            Operation::Update,
            "sys/leases/renew",
            &alice,
            json!({ "lease_id": lease.id, "increment": "500s" }),
        ))
        .await
        .unwrap();
    assert_eq!(lease_of(&renewed).ttl, 500);
    let capped = core
        .handle(req(
            Operation::Update,
            "sys/leases/renew",
            &alice,
            json!({ "lease_id": lease.id, "increment": "5000s" }),
        ))
        .await
        .unwrap();
    assert_eq!(lease_of(&capped).ttl, 700, "capped at issue + 1000 s");

    // Revoking asks the engine, once, and the lease is gone.
    core.handle(req(
        Operation::Update,
        "sys/leases/revoke",
        "root",
        json!({ "lease_id": lease.id }),
    ))
    .await
    .unwrap();
    assert_eq!(
        crate::sync::lock(&engine.revoked).clone(),
        vec![lease.id.rsplit('/').next().unwrap().to_owned()]
    );
    let gone = core
        .handle(req(
            Operation::Update,
            "sys/leases/lookup",
            "root",
            json!({ "lease_id": lease.id }),
        ))
        .await
        .unwrap_err();
    assert!(gone.to_string().contains("invalid lease"), "{gone}");
}

#[tokio::test]
async fn expiry_and_token_revocation_revoke_through_the_engine() {
    let (core, clock, engine) = setup().await;
    let child = token_for(&core, &["root"]).await;
    let first = lease_of(
        &core
            .handle(req(Operation::Read, "dyn/creds/a", "root", json!({})))
            .await
            .unwrap(),
    );
    let second = lease_of(
        &core
            .handle(req(Operation::Read, "dyn/creds/b", &child, json!({})))
            .await
            .unwrap(),
    );
    // Nothing is due yet.
    assert_eq!(core.expire_leases().await.unwrap(), 0);
    // The child token is revoked: its lease comes due at once.
    core.handle(req(
        Operation::Update,
        "auth/token/revoke-self",
        &child,
        json!({}),
    ))
    .await
    .unwrap();
    assert_eq!(core.expire_leases().await.unwrap(), 1);
    assert!(crate::sync::lock(&engine.revoked)[0].starts_with("b-"));
    // The other lease ends at its TTL, by itself.
    clock.advance(Duration::from_secs(601));
    assert_eq!(core.expire_leases().await.unwrap(), 1);
    assert_eq!(crate::sync::lock(&engine.revoked).len(), 2);
    for id in [&first.id, &second.id] {
        let e = core
            .handle(req(
                Operation::Update,
                "sys/leases/lookup",
                "root",
                json!({ "lease_id": id }),
            ))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("invalid lease"), "{e}");
    }
    let metrics = core.metrics_text().await;
    assert!(
        metrics.contains("coffer_lease_revocations_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_target_that_stays_down_leaves_an_irrevocable_lease_in_lookup_and_metrics() {
    let (core, clock, engine) = setup().await;
    let lease = lease_of(
        &core
            .handle(req(Operation::Read, "dyn/creds/x", "root", json!({})))
            .await
            .unwrap(),
    );
    engine
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(601));
    for _ in 0..crate::lease::MAX_REVOKE_ATTEMPTS {
        core.expire_leases().await.unwrap();
        clock.advance(Duration::from_secs(400));
    }
    let looked = core
        .handle(req(
            Operation::Update,
            "sys/leases/lookup",
            "root",
            json!({ "lease_id": lease.id }),
        ))
        .await
        .unwrap();
    let crate::logical::ResponseBody::Envelope {
        data: Some(data), ..
    } = &looked.body
    else {
        panic!("no data")
    };
    assert_eq!(data["irrevocable"], true);
    assert_eq!(data["last_revoke_error"], "the target is down");
    let metrics = core.metrics_text().await;
    assert!(metrics.contains("coffer_irrevocable_leases 1"), "{metrics}");
    // An operator can still drop the record by force.
    core.handle(req(
        Operation::Update,
        "sys/leases/revoke-force/dyn/creds",
        "root",
        json!({}),
    ))
    .await
    .unwrap();
    let metrics = core.metrics_text().await;
    assert!(metrics.contains("coffer_irrevocable_leases 0"), "{metrics}");
    assert!(metrics.contains("coffer_leases 0"), "{metrics}");
}

#[tokio::test]
async fn lease_ids_are_listed_by_prefix_a_page_at_a_time() {
    let (core, _clock, _engine) = setup().await;
    for name in ["a", "b", "c"] {
        core.handle(req(
            Operation::Read,
            &format!("dyn/creds/{name}"),
            "root",
            json!({}),
        ))
        .await
        .unwrap();
    }
    let list = |after: Option<&str>, limit: Option<u32>| {
        let mut r = req(
            Operation::List,
            "sys/leases/lookup/dyn/creds/",
            "root",
            json!({}),
        );
        r.list_after = after.map(str::to_owned);
        r.list_limit = limit;
        r
    };
    let keys = |resp: &Response| match &resp.body {
        crate::logical::ResponseBody::Envelope { data: Some(d), .. } => d["keys"].clone(),
        _ => panic!("no data"),
    };
    let all = core.handle(list(None, None)).await.unwrap();
    assert_eq!(keys(&all), json!(["a/", "b/", "c/"]));
    let page = core.handle(list(Some("a/"), Some(1))).await.unwrap();
    assert_eq!(keys(&page), json!(["b/"]));
    let under = core
        .handle(req(
            Operation::List,
            "sys/leases/lookup/dyn/creds/b/",
            "root",
            json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(keys(&under).as_array().unwrap().len(), 1);
}
