//! Leases at scale (issue 13): a core on in-memory SQLite (or a SQLite file, or
//! PostgreSQL) with
//! an engine made for the benchmark issues LEASES leases (default 100,000);
//! unseal time and AppRole login latency are measured before and after (after
//! one unrecorded round of each), then every lease is let expire and the
//! expiry worker's revocations per second are measured, for one worker and for
//! two running at once (two nodes share claims through storage). Not a test:
//! it asserts nothing and prints a table.
//! Run: `cargo bench -p coffer-server --bench leases` (`LEASES=20000` for a
//! shorter run; `STORAGE=sqlite-file` for two SQLite files in a directory of
//! their own under the system's temporary directory, removed at the end;
//! `STORAGE=postgres` for PostgreSQL: a database of its own is
//! created on `PG_URL_BASE`, default `postgresql://postgres@127.0.0.1:5432`,
//! with `psql`, vacuumed and analyzed after the leases are issued (as
//! autovacuum would; `NO_VACUUM=1` skips it), and dropped at the end;
//! `EMPTY_FIRST=1` creates the core without leases first; `UNSEALS` and
//! `LOGINS` set the samples per core and column, default 200 and 1,000,
//! `WARM_UNSEALS` and `WARM_LOGINS` the unrecorded ones before each, default
//! 60 and 600;
//! `NO_EXPIRY=1` stops after the unseal and login figures).
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

/// `n` seal-then-unseal rounds (the unseal half only).
async fn unseal_times(core: &Core, key: &str, n: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..n {
        core.seal().await;
        let t = Instant::now();
        core.unseal(key).await.unwrap();
        times.push(t.elapsed());
    }
    times
}

/// `n` AppRole logins, each timed.
async fn login_times(fx: &Fixture, n: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        fx.core
            .handle(req(
                Operation::Update,
                "auth/approle/login",
                None,
                json!({"role_id": fx.role_id, "secret_id": fx.secret_id}),
            ))
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    times
}

/// The `q`-quantile (0..=1) of `times`, in milliseconds.
fn quantile_ms(times: &[Duration], q: f64) -> f64 {
    let mut t = times.to_vec();
    t.sort();
    let i = ((t.len() as f64 - 1.0) * q).round() as usize;
    t[i].as_secs_f64() * 1e3
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

/// Runs one statement on database `db` of the server at `base` (`postgres`
/// to create and drop the benchmark's own databases).
fn psql(base: &str, db: &str, sql: &str) {
    let status = std::process::Command::new("psql")
        .args([&format!("{base}/{db}"), "-X", "-q", "-c", sql])
        .status()
        .expect("psql");
    assert!(status.success(), "psql {sql:?} failed");
}

/// A core with the bench engine at `dyn/`, AppRole at `auth/approle` and a
/// role and secret-id to log in with.
struct Fixture {
    core: Arc<Core>,
    clock: Arc<ManualClock>,
    key: String,
    root: String,
    role_id: String,
    secret_id: String,
}

async fn connect_core(url: &str, clock: Arc<ManualClock>) -> Arc<Core> {
    let storage = Storage::connect(url, MigrationMode::Apply).await.unwrap();
    let config = CoreConfig {
        registry: Arc::new(coffer_server::engines::builtin().with_secrets(BenchLeases)),
        ..CoreConfig::default()
    };
    Arc::new(Core::new(storage, clock, config))
}

/// The same core on a new connection pool (a node restarted): sealed,
/// dropped, connected again and unsealed.
async fn reconnect(fx: Fixture, url: &str) -> Fixture {
    fx.core.seal().await;
    drop(fx.core);
    let core = connect_core(url, fx.clock.clone()).await;
    core.unseal(&fx.key).await.unwrap();
    Fixture { core, ..fx }
}

async fn fixture(url: &str) -> Fixture {
    let clock = ManualClock::new(1_800_000_000);
    let core = connect_core(url, clock.clone()).await;
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
    Fixture {
        core,
        clock,
        key,
        root,
        role_id,
        secret_id,
    }
}

/// Unseal and login samples of one core.
#[derive(Default)]
struct Samples {
    unseal: Vec<Duration>,
    login: Vec<Duration>,
}

impl Samples {
    async fn take(&mut self, fx: &Fixture, unseals: usize, logins: usize) {
        self.unseal
            .extend(unseal_times(&fx.core, &fx.key, unseals).await);
        self.login.extend(login_times(fx, logins).await);
    }
}

/// Unrecorded unseals and logins on each core, one core after the other.
async fn warm_up(cores: &[&Fixture], unseals: usize, logins: usize) {
    for fx in cores {
        Samples::default().take(fx, unseals, logins).await;
    }
}

/// `unseals` unseals and then `logins` logins on `a` and `b` in turn, in the
/// order a b b a a b ..., so that neither always comes first after the other.
async fn alternate(a: &Fixture, b: &Fixture, unseals: usize, logins: usize) -> (Samples, Samples) {
    let (mut sa, mut sb) = (Samples::default(), Samples::default());
    for i in 0..unseals + logins {
        let (u, l) = if i < unseals { (1, 0) } else { (0, 1) };
        if i % 2 == 0 {
            sa.take(a, u, l).await;
            sb.take(b, u, l).await;
        } else {
            sb.take(b, u, l).await;
            sa.take(a, u, l).await;
        }
    }
    (sa, sb)
}

#[tokio::main]
async fn main() {
    let leases: usize = std::env::var("LEASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let storage = std::env::var("STORAGE").unwrap_or_default();
    let pg = storage == "postgres";
    let file_dir = (storage == "sqlite-file").then(|| {
        let dir = std::env::temp_dir().join(format!("coffer_bench_leases_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let pg_base = std::env::var("PG_URL_BASE")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432".into());
    let dbs = [0, 1].map(|i| format!("coffer_bench_leases_{}_{i}", std::process::id()));
    let urls = dbs.clone().map(|db| {
        if pg {
            psql(&pg_base, "postgres", &format!("CREATE DATABASE {db}"));
            format!("{pg_base}/{db}?sslmode=disable")
        } else if let Some(dir) = &file_dir {
            format!("sqlite://{}", dir.join(format!("{db}.db")).display())
        } else {
            "sqlite::memory:".into()
        }
    });
    // `full` gets the leases; `empty` never does. Both live in this process
    // and have the same history except the leases: the same unrecorded
    // warm-up, then the same measurements before and after the leases, taken
    // in alternation (one sample of one core, then one of the other), so a
    // burst of load from elsewhere on this shared machine hits both alike.
    // The ratio before the leases shows what the two cores differ by
    // without them (the bench's own noise).
    // `EMPTY_FIRST=1` creates the core without leases first (on in-memory
    // SQLite the first-created core's logins were slower in some runs even
    // with LEASES=0; this tells that apart from the leases).
    let (full, empty) = if std::env::var_os("EMPTY_FIRST").is_some() {
        let empty = fixture(&urls[1]).await;
        (fixture(&urls[0]).await, empty)
    } else {
        let full = fixture(&urls[0]).await;
        (full, fixture(&urls[1]).await)
    };
    let count = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (unseals, logins) = (count("UNSEALS", 200), count("LOGINS", 1000));
    let (warm_unseals, warm_logins) = (count("WARM_UNSEALS", 60), count("WARM_LOGINS", 600));
    warm_up(&[&full, &empty], warm_unseals, warm_logins).await;
    let before = alternate(&full, &empty, unseals, logins).await;
    let t = Instant::now();
    issue(full.core.clone(), &full.root, 0, leases).await;
    let issued_in = t.elapsed();
    // A mark for a profiler attached from here on (the measured phase).
    eprintln!("issued {leases} leases; measuring");
    // A PostgreSQL server with autovacuum (its default) vacuums and analyzes
    // a table soon after 200,000 inserts; this machine's server runs with
    // `autovacuum = off`, so the bench does what autovacuum would, on both
    // databases alike, and measures the steady state rather than the
    // moment before autovacuum's first pass. `NO_VACUUM=1` measures that
    // moment instead.
    let vacuumed = pg && std::env::var_os("NO_VACUUM").is_none();
    if vacuumed {
        for db in &dbs {
            psql(&pg_base, db, "VACUUM (ANALYZE) coffer_entries");
        }
    }
    // Issuing from 8 tasks grew A's pool to about 18 connections (B's has 3
    // or 4), which the pool hands out in turn. On PostgreSQL each is a
    // server process of its own, so A's statements kept meeting processes
    // whose caches were colder than B's few: in the server's statement log,
    // A's binds took twice B's (0.061 against 0.025 ms for a point read)
    // and its executes half as long again, with or without leases to read.
    // So on PostgreSQL both cores start again on new pools after issuing,
    // as nodes restarted with the leases in place would; then the same
    // unrecorded warm-up again. A SQLite file is the same: each pool
    // connection has a page cache of its own. (An in-memory database does
    // not outlive its pool, so those cores go on as they are.)
    let (full, empty) = if pg || file_dir.is_some() {
        (
            reconnect(full, &urls[0]).await,
            reconnect(empty, &urls[1]).await,
        )
    } else {
        (full, empty)
    };
    warm_up(&[&full, &empty], warm_unseals, warm_logins).await;
    let after = alternate(&full, &empty, unseals, logins).await;

    let core = full.core.clone();
    let expiry = std::env::var_os("NO_EXPIRY").is_none();
    let mut expiry_runs = Vec::new();
    if expiry {
        full.clock.advance(Duration::from_secs(120));
        expiry_runs.push(("one worker", expire_all(core.clone(), 1).await));
        issue(core.clone(), &full.root, leases, leases).await;
        full.clock.advance(Duration::from_secs(120));
        expiry_runs.push(("two workers at once", expire_all(core.clone(), 2).await));
    }

    drop((core, full, empty));
    if pg {
        for db in &dbs {
            psql(
                &pg_base,
                "postgres",
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            );
        }
    }

    if let Some(dir) = &file_dir {
        std::fs::remove_dir_all(dir).unwrap();
    }

    let storage_name = if pg {
        "PostgreSQL"
    } else if file_dir.is_some() {
        "SQLite files (WAL, synchronous = FULL)"
    } else {
        "in-memory SQLite"
    };
    println!("storage: {storage_name}");
    if pg {
        let how = if vacuumed {
            "both databases vacuumed and analyzed"
        } else {
            "no vacuum"
        };
        println!("after issuing: {how}");
    }
    println!(
        "| measure | before: core A | before: core B | A ÷ B | with {leases} leases on A: A \
         | B (no leases) | A ÷ B |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let row = |name: &str, f: &dyn Fn(&Samples) -> f64| {
        let (a0, b0, a1, b1) = (f(&before.0), f(&before.1), f(&after.0), f(&after.1));
        println!(
            "| {name} | {a0:.3} ms | {b0:.3} ms | {:.2} | {a1:.3} ms | {b1:.3} ms | {:.2} |",
            a0 / b0,
            a1 / b1
        );
    };
    row("unseal, median", &|s| quantile_ms(&s.unseal, 0.5));
    row("AppRole login, p50", &|s| quantile_ms(&s.login, 0.5));
    row("AppRole login, p90", &|s| quantile_ms(&s.login, 0.9));
    println!("({unseals} unseals and {logins} logins per core and column)");
    println!();
    println!(
        "issued {leases} leases in {:.1} s ({:.0}/s, 8 tasks)",
        issued_in.as_secs_f64(),
        leases as f64 / issued_in.as_secs_f64()
    );
    if expiry_runs.is_empty() {
        return;
    }
    println!("| expiry worker | leases revoked | seconds | revoked per second |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, (revoked, took)) in expiry_runs {
        println!(
            "| {name} | {revoked} | {:.1} | {:.0} |",
            took.as_secs_f64(),
            revoked as f64 / took.as_secs_f64()
        );
    }
}
