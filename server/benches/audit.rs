//! One audited KV read as the audit broker sees it: the request and the
//! response entry rendered for a device (every value HMAC-ed) and linked into
//! the hash chain. Disk time is not in here; `AUDIT=1 bench/run.sh` measures
//! the whole path. Run: `cargo bench -p coffer-server --bench audit`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use coffer_server::audit::chain::{link, Head};
use coffer_server::audit::entry::Hasher;
use coffer_server::audit::{AuthInfo, Record, RequestInfo, ResponseInfo};
use coffer_server::crypto::{HmacKey, SecretString};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};

fn record() -> Record {
    Record {
        auth: Some(AuthInfo {
            client_token: SecretString::new("hvs.bench-token-0123456789abcdef".into()),
            accessor: SecretString::new("bench-accessor-0123456789".into()),
            display_name: "userpass-alice".into(),
            policies: vec!["default".into(), "developer".into()],
            metadata: json!({"username": "alice", "mfa": "true"}),
            entity_id: "alice".into(),
            token_ttl: 28_800,
            token_issue_time: "2026-11-30T10:00:00Z".into(),
        }),
        request: RequestInfo {
            id: "7d1c3a52-5d6e-4b8f-9a0b-1c2d3e4f5a6b".into(),
            operation: "read",
            path: "secret/data/bench".into(),
            mount_point: "secret/".into(),
            mount_type: "kv".into(),
            data: Map::new(),
            remote_address: "127.0.0.1".into(),
            client_token: Some(SecretString::new("hvs.bench-token-0123456789abcdef".into())),
        },
        breakglass_id: None,
    }
}

fn response() -> ResponseInfo {
    ResponseInfo {
        data: Some(json!({
            "data": {
                "username": "svc-bench", "password": "Zq8#kP2!vR7@mN4$wT9",
                "host": "db.internal.example", "port": "5432", "database": "orders",
                "region": "eu-west-1", "owner": "team-platform", "note": "coffer benchmark fixture"
            },
            "metadata": {
                "created_time": "2026-11-30T10:00:00.000000000Z", "custom_metadata": Value::Null,
                "deletion_time": "", "destroyed": false, "version": 1
            }
        })),
        auth: None,
        warnings: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let key = HmacKey::new(&[7u8; 32]);
    let hasher = Hasher::new(&key, false, true);
    let rec = record();
    let resp = response();
    let time = "2026-11-30T10:00:00.123456789Z";
    c.bench_function("audit: render + link a KV read's two entries", |b| {
        let mut head = Head::genesis();
        b.iter(|| {
            let request = hasher.request_entry(black_box(&rec), time, None);
            let (line1, next) = link(request, &head).unwrap();
            let response = hasher.response_entry(black_box(&rec), time, Some(&resp), None);
            let (line2, next) = link(response, &next).unwrap();
            head = next;
            black_box((line1, line2))
        })
    });
    c.bench_function("audit: one HMAC-ed value", |b| {
        b.iter(|| black_box(hasher.hash(black_box("Zq8#kP2!vR7@mN4$wT9"))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
