//! Init, unseal, seal, restart, health, key rotation, and what the database holds.

use coffer_tests::{Backend, TestServer};
use serde_json::json;

async fn lifecycle(backend: Backend) {
    let Some(mut s) = TestServer::start(backend).await else {
        return;
    };

    // Uninitialised: health 501, seal-status says so, everything else 503.
    let (status, body) = s.call("GET", "sys/health", None, None).await;
    assert_eq!((status, body["initialized"].clone()), (501, json!(false)));
    let (status, body) = s.call("GET", "sys/init", None, None).await;
    assert_eq!((status, body), (200, json!({"initialized": false})));
    assert_eq!(s.call("GET", "secret/data/x", Some("t"), None).await.0, 503);

    // Bad init parameters change nothing.
    let (status, _) = s
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 3, "secret_threshold": 5})),
        )
        .await;
    assert_eq!(status, 400);
    let (keys, root) = s.init(5, 3).await;
    assert_eq!(keys.len(), 5);
    assert!(root.starts_with("hvs."));
    let (status, _) = s
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, 400, "second init must fail");

    // Sealed after init: 503 on health, and data paths refuse.
    assert_eq!(s.call("GET", "sys/health", None, None).await.0, 503);
    assert_eq!(
        s.call("GET", "sys/health?sealedcode=299", None, None)
            .await
            .0,
        299
    );
    assert_eq!(s.call("GET", "sys/mounts", Some(&root), None).await.0, 503);

    // Unseal: progress, wrong and malformed keys are 400 and do not advance.
    let (_, st) = s
        .call("PUT", "sys/unseal", None, Some(json!({"key": keys[0]})))
        .await;
    assert_eq!(
        (
            st["progress"].clone(),
            st["t"].clone(),
            st["sealed"].clone()
        ),
        (json!(1), json!(3), json!(true))
    );
    let mut wrong = keys[1].clone();
    let flipped = if wrong.starts_with('0') { '1' } else { '0' };
    wrong.replace_range(0..1, &flipped.to_string());
    let (status, body) = s
        .call("PUT", "sys/unseal", None, Some(json!({"key": wrong})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .call("PUT", "sys/unseal", None, Some(json!({"key": "not-a-key"})))
        .await;
    assert_eq!(status, 400);
    let (_, st) = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st["progress"], 1);
    // reset forgets progress
    let (_, st) = s
        .call("PUT", "sys/unseal", None, Some(json!({"reset": true})))
        .await;
    assert_eq!(st["progress"], 0);
    s.unseal(&keys[2..5]).await;
    let (status, h) = s.call("GET", "sys/health", None, None).await;
    assert_eq!((status, h["sealed"].clone()), (200, json!(false)));
    let head = s
        .http
        .head(format!("{}/v1/sys/health", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let (status, leader) = s.call("GET", "sys/leader", None, None).await;
    assert_eq!((status, leader["ha_enabled"].clone()), (200, json!(false)));

    // Write data, rotate the key, write more.
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv-v2"}))
        )
        .await
        .0,
        204
    );
    let marker = format!("distinctive-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = s
        .call(
            "POST",
            "secret/data/app/db",
            Some(&root),
            Some(json!({"data": {"password": marker}})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, ks) = s.call("GET", "sys/key-status", Some(&root), None).await;
    assert_eq!(ks["data"]["term"], 1);
    assert_eq!(s.call("PUT", "sys/rotate", Some(&root), None).await.0, 204);
    let (_, ks) = s.call("GET", "sys/key-status", Some(&root), None).await;
    assert_eq!(ks["data"]["term"], 2);
    s.call(
        "POST",
        "secret/data/app/after",
        Some(&root),
        Some(json!({"data": {"v": "after-rotation"}})),
    )
    .await;

    // Seal through the API; then restart: comes back sealed, unseal, data intact.
    assert_eq!(s.call("PUT", "sys/seal", Some(&root), None).await.0, 204);
    assert_eq!(
        s.call("GET", "secret/data/app/db", Some(&root), None)
            .await
            .0,
        503
    );
    s.restart();
    let (_, st) = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (st["sealed"].clone(), st["initialized"].clone()),
        (json!(true), json!(true))
    );
    s.unseal(&[keys[4].clone(), keys[0].clone(), keys[2].clone()])
        .await;
    let (status, body) = s.call("GET", "secret/data/app/db", Some(&root), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], json!(marker));
    let (_, body) = s
        .call("GET", "secret/data/app/after", Some(&root), None)
        .await;
    assert_eq!(body["data"]["data"]["v"], "after-rotation");
    let (_, ks) = s.call("GET", "sys/key-status", Some(&root), None).await;
    assert_eq!(ks["data"]["term"], 2);

    // The database holds neither the secret, the root token nor any key share.
    let raw = match backend {
        Backend::Sqlite => s.raw_sqlite_bytes(),
        Backend::Postgres => s.postgres().unwrap().raw_values().await,
    };
    assert!(raw.len() > 1000, "scanned too little: {}", raw.len());
    let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(marker.as_bytes()),
        "secret value found in storage"
    );
    assert!(!contains(root.as_bytes()), "root token found in storage");
    for k in &keys {
        let share = hex_decode(k);
        assert!(!contains(&share[..32]), "key share found in storage");
        assert!(!contains(k.as_bytes()), "hex key share found in storage");
    }
    assert!(!s.log().contains(&marker), "secret value in the server log");
    assert!(!s.log().contains(&root), "root token in the server log");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn lifecycle_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_postgres() {
    lifecycle(Backend::Postgres).await;
}

#[tokio::test]
async fn single_share_root_key_never_reaches_storage() {
    // With one share, the share is the root key itself: scan for it.
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (keys, root) = s.ready().await;
    s.call(
        "POST",
        "secret/data/x",
        Some(&root),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    let share = hex_decode(&keys[0]);
    let raw = s.raw_sqlite_bytes();
    assert!(
        !raw.windows(32).any(|w| w == &share[..32]),
        "root key found in storage"
    );
}

#[tokio::test]
async fn dev_mode_is_ready_with_the_chosen_root_token() {
    let s = TestServer::start_dev("dev-root-e2e").await;
    assert!(s.log().contains("Root Token: dev-root-e2e"));
    let (status, body) = s
        .call(
            "GET",
            "sys/internal/ui/mounts/secret",
            Some("dev-root-e2e"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["options"]["version"], "2");
    assert_eq!(body["data"]["type"], "kv");
    let (status, _) = s
        .call(
            "POST",
            "secret/data/hello",
            Some("dev-root-e2e"),
            Some(json!({"data": {"a": "b"}})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tls_listener_serves_https() {
    let Some(s) = coffer_tests::TestServer::start_with(
        Backend::Sqlite,
        coffer_tests::Options {
            tls: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    assert!(s.addr.starts_with("https://"), "{}", s.addr);
    let (status, _) = s.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 501);
    // Plain HTTP to a TLS listener gets no API answer.
    let plain = reqwest::Client::new()
        .get(format!(
            "{}/v1/sys/health",
            s.addr.replace("https://", "http://")
        ))
        .send()
        .await;
    assert!(plain.map(|r| r.status().as_u16() != 501).unwrap_or(true));
}

/// Regression (seen in the benchmark): clients that hang up mid-request could
/// cancel a storage call half-way, dropping dev mode's in-memory SQLite
/// connection and with it every secret. Requests now run to completion in their
/// own task, and an anchor connection keeps the in-memory database alive (the
/// deterministic check is `in_memory_database_survives_a_closed_pool_connection`).
#[tokio::test]
async fn clients_hanging_up_do_not_break_the_store() {
    let s = TestServer::start_dev("hangup-root").await;
    let (status, _) = s
        .call(
            "POST",
            "secret/data/keep",
            Some("hangup-root"),
            Some(json!({"data": {"v": "kept"}})),
        )
        .await;
    assert_eq!(status, 200);
    let mut tasks = Vec::new();
    for i in 0..600u64 {
        let c = reqwest::Client::builder()
            .timeout(std::time::Duration::from_micros(100 + (i * 37) % 3000))
            .build()
            .unwrap();
        let url = if i % 2 == 0 {
            format!("{}/v1/secret/data/keep", s.addr)
        } else {
            format!("{}/v1/secret/data/w{i}", s.addr)
        };
        tasks.push(tokio::spawn(async move {
            let req = if i % 2 == 0 {
                c.get(url)
            } else {
                c.post(url).body(r#"{"data":{"x":"y"}}"#)
            };
            let _ = req.header("X-Vault-Token", "hangup-root").send().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.call("GET", "sys/health", None, None).await.0, 200);
    let (status, body) = s
        .call("GET", "secret/data/keep", Some("hangup-root"), None)
        .await;
    assert_eq!(
        (status, body["data"]["data"]["v"].clone()),
        (200, json!("kept"))
    );
}
