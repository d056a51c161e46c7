//! Leases at scale (issue 13): a core on in-memory SQLite with an engine made
//! for the benchmark issues LEASES leases (default 100,000); unseal time and
//! AppRole login latency are measured before and after, then every lease is
//! let expire and the expiry worker's revocations per second are measured, for
//! one worker and for two running at once (two nodes share claims through
//! storage). Not a test: it asserts nothing and prints a table.
//! Run: `cargo bench -p coffer-server --bench leases` (`LEASES=20000` for a
//! shorter run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_server::barrier::View;
use coffer_server::clock::ManualClock;
use coffer_server::core::{Core, CoreConfig};
use coffer_server::crypto::SecretString;
use coffer_server::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use coffer_server::logical::{Lease, LogicalError, Operation, Request, Response, ResponseBody};
use coffer_server::storage::{MigrationMode, Storage};
use serde_json::{json, Map, Value};

static PATHS: &[PathSpec] = &[PathSpec::new("creds/:name", Ops::READ)];

/// Issues `creds/<name>` with a 60 s lease; revoking costs nothing.
#[derive(Debug, Clone, Copy, Default)]
struct BenchLeases;

impl Engine for BenchLeases {
    fn kind(&self) -> &'static str {
        "bench-leases"
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
            let mut resp = Response::data(json!({ "username": "u" }));
            resp.lease = Some(Lease {
                id: ctx.rest.trim_start_matches("creds/").to_owned(),
                ttl: 60,
                renewable: false,
            });
            Ok(resp)
        })
    }
    fn revoke_lease<'a>(&'a self, _view: &'a View, _lease: &'a Lease) -> EngineFuture<'a, ()> {
        Box::pin(async { Ok::<(), LogicalError>(()) })
    }
}

impl SecretsEngine for BenchLeases {}

fn req(op: Operation, path: &str, token: Option<&str>, data: Value) -> Request {
    let mut r = Request::new(op, path);
    r.client_token = token.map(SecretString::from);
    r.data = data.as_object().cloned().unwrap_or_else(Map::new);
    r
}

fn field(resp: &Response, f: impl Fn(&Value) -> Option<String>) -> String {
    match &resp.body {
        ResponseBody::Envelope { data, auth, .. } => {
            f(&json!({"data": data, "auth": auth})).unwrap()
        }
        _ => panic!("not an envelope"),
    }
}

/// Median of 7 seal-then-unseal rounds (the unseal half only).
async fn unseal_time(core: &Core, key: &str) -> Duration {
    let mut times = Vec::new();
    for _ in 0..7 {
        core.seal().await;
        let t = Instant::now();
        core.unseal(key).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

/// p50 of 300 logins, after 100 unmeasured ones.
async fn login_p50(core: &Core, role_id: &str, secret_id: &str) -> Duration {
    let mut times = Vec::new();
    for i in 0..400 {
        let t = Instant::now();
        core.handle(req(
            Operation::Update,
            "auth/approle/login",
            None,
            json!({"role_id": role_id, "secret_id": secret_id}),
        ))
        .await
        .unwrap();
        if i >= 100 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    times[times.len() / 2]
}

async fn expire_all(core: Arc<Core>, workers: usize) -> (usize, Duration) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let core = core.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let done = core.expire_leases().await.unwrap();
                if done == 0 {
                    return n;
                }
                n += done;
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    (total, t.elapsed())
}

async fn issue(core: Arc<Core>, root: &str, from: usize, count: usize) {
    let mut tasks = Vec::new();
    let per = count.div_ceil(8);
    for w in 0..8 {
        let (core, root) = (core.clone(), root.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in (from + w * per)..(from + ((w + 1) * per).min(count)) {
                core.handle(req(
                    Operation::Read,
                    &format!("dyn/creds/l{i}"),
                    Some(&root),
                    json!({}),
                ))
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    let leases: usize = std::env::var("LEASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let clock = ManualClock::new(1_800_000_000);
    let config = CoreConfig {
        registry: Arc::new(coffer_server::engines::builtin().with_secrets(BenchLeases)),
        ..CoreConfig::default()
    };
    let core = Arc::new(Core::new(storage, clock.clone(), config));
    let init = core.init(1, 1).await.unwrap();
    let key = hex::encode(&init.keys[0]);
    core.unseal(&key).await.unwrap();
    let root = init.root_token.to_string();
    let r = Some(root.as_str());
    for (path, body) in [
        ("sys/mounts/dyn", json!({"type": "bench-leases"})),
        ("sys/auth/approle", json!({"type": "approle"})),
        ("auth/approle/role/bench", json!({"token_ttl": "1h"})),
    ] {
        core.handle(req(Operation::Update, path, r, body))
            .await
            .unwrap();
    }
    let rid = core
        .handle(req(
            Operation::Read,
            "auth/approle/role/bench/role-id",
            r,
            json!({}),
        ))
        .await
        .unwrap();
    let role_id = field(&rid, |v| v["data"]["role_id"].as_str().map(str::to_owned));
    let sid = core
        .handle(req(
            Operation::Update,
            "auth/approle/role/bench/secret-id",
            r,
            json!({}),
        ))
        .await
        .unwrap();
    let secret_id = field(&sid, |v| v["data"]["secret_id"].as_str().map(str::to_owned));

    let unseal_before = unseal_time(&core, &key).await;
    let login_before = login_p50(&core, &role_id, &secret_id).await;
    let t = Instant::now();
    issue(core.clone(), &root, 0, leases).await;
    let issued_in = t.elapsed();
    let unseal_after = unseal_time(&core, &key).await;
    let login_after = login_p50(&core, &role_id, &secret_id).await;

    clock.advance(Duration::from_secs(120));
    let (one, one_time) = expire_all(core.clone(), 1).await;
    issue(core.clone(), &root, leases, leases).await;
    clock.advance(Duration::from_secs(120));
    let (two, two_time) = expire_all(core.clone(), 2).await;

    println!("| measure | before {leases} leases | with {leases} leases |");
    println!("| --- | ---: | ---: |");
    println!(
        "| unseal (median of 7) | {:.2} ms | {:.2} ms |",
        unseal_before.as_secs_f64() * 1e3,
        unseal_after.as_secs_f64() * 1e3
    );
    println!(
        "| AppRole login, p50 of 300 | {:.3} ms | {:.3} ms |",
        login_before.as_secs_f64() * 1e3,
        login_after.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "issued {leases} leases in {:.1} s ({:.0}/s, 8 tasks)",
        issued_in.as_secs_f64(),
        leases as f64 / issued_in.as_secs_f64()
    );
    println!("| expiry worker | leases revoked | seconds | revoked per second |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| one worker | {one} | {:.1} | {:.0} |",
        one_time.as_secs_f64(),
        one as f64 / one_time.as_secs_f64()
    );
    println!(
        "| two workers at once | {two} | {:.1} | {:.0} |",
        two_time.as_secs_f64(),
        two as f64 / two_time.as_secs_f64()
    );
}
