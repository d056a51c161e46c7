//! The ACL decision for a token holding 3 policies of 50 rules each (exact,
//! prefix and `+` rules mixed), as the policy issue asks. Target: well under
//! 2 µs per decision. Run: `cargo bench -p coffer-server --bench acl`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use coffer_server::policy::{parse_policy, Acl, Policy, PolicyStore};
use criterion::{criterion_group, criterion_main, Criterion};

fn policy(team: usize) -> Policy {
    let mut text = String::new();
    for i in 0..50 {
        let rule = match i % 5 {
            0 => format!("path \"secret/data/team{team}/app{i}/*\" {{ capabilities = [\"read\", \"update\"] }}\n"),
            1 => format!("path \"secret/metadata/team{team}/app{i}\" {{ capabilities = [\"list\"] }}\n"),
            2 => format!("path \"secret/+/team{team}/shared{i}\" {{ capabilities = [\"read\"] }}\n"),
            3 => format!("path \"database/creds/team{team}-{i}\" {{ capabilities = [\"read\"] }}\n"),
            _ => format!("path \"sys/team{team}/thing{i}/*\" {{ capabilities = [\"deny\"] }}\n"),
        };
        text.push_str(&rule);
    }
    parse_policy(&format!("team{team}"), &text).unwrap()
}

fn bench(c: &mut Criterion) {
    let policies: Vec<Policy> = (0..3).map(policy).collect();
    let acl = Acl::compile(policies.iter(), false, None);
    let paths = [
        "secret/data/team1/app25/config", // prefix hit
        "database/creds/team2-33",        // exact hit
        "secret/data/team0/shared42",     // + rule beats nothing else
        "secret/data/nobody/here/at/all", // no rule
    ];
    c.bench_function("acl decide (3 policies x 50 rules)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % paths.len();
            black_box(acl.decide(black_box(paths[i]), coffer_server::clock::UnixTime::EPOCH))
        })
    });
    c.bench_function("acl compile (3 policies x 50 rules)", |b| {
        b.iter(|| black_box(Acl::compile(policies.iter(), false, None)))
    });
    let _ = PolicyStore::open; // the store caches compiled ACLs per policy set
}

criterion_group!(benches, bench);
criterion_main!(benches);
