//! The KV v2 flow through the real server, on both backends.

use coffer_tests::{Backend, TestServer};
use serde_json::json;

async fn kv_flow(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());

    // Write, read, versions, check-and-set.
    let (status, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"user": "app", "pass": "p1"}})),
        )
        .await;
    assert_eq!((status, body["data"]["version"].clone()), (200, json!(1)));
    let (status, body) = s
        .call(
            "PUT",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"user": "app", "pass": "p2"}, "options": {"cas": 1}})),
        )
        .await;
    assert_eq!(
        (status, body["data"]["version"].clone()),
        (200, json!(2)),
        "{body}"
    );
    let (status, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"pass": "x"}, "options": {"cas": 1}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]
        .as_str()
        .unwrap()
        .contains("check-and-set"));
    let (_, body) = s.call("GET", "secret/data/app/db", t, None).await;
    assert_eq!(body["data"]["data"], json!({"user": "app", "pass": "p2"}));
    assert_eq!(body["data"]["metadata"]["version"], 2);
    assert_eq!(body["mount_type"], "kv");
    let (_, body) = s.call("GET", "secret/data/app/db?version=1", t, None).await;
    assert_eq!(body["data"]["data"]["pass"], "p1");
    assert_eq!(
        s.call("GET", "secret/data/app/db?version=9", t, None)
            .await
            .0,
        404
    );
    let (status, body) = s.call("GET", "secret/data/nope", t, None).await;
    assert_eq!((status, body), (404, json!({"errors": []})));

    // PATCH needs merge-patch+json; otherwise 415.
    let (status, _) = s
        .call(
            "PATCH",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"pass": "p3"}})),
        )
        .await;
    assert_eq!(status, 415);
    let resp = s
        .http
        .patch(format!("{}/v1/secret/data/app/db", s.addr))
        .header("X-Vault-Token", &root)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"data": {"pass": "p3", "user": null, "extra": {"a": 1}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, body) = s.call("GET", "secret/data/app/db", t, None).await;
    assert_eq!(
        body["data"]["data"],
        json!({"pass": "p3", "extra": {"a": 1}})
    );
    assert_eq!(body["data"]["metadata"]["version"], 3);

    // Subkeys.
    let (_, body) = s.call("GET", "secret/subkeys/app/db", t, None).await;
    assert_eq!(
        body["data"]["subkeys"],
        json!({"pass": null, "extra": {"a": null}})
    );

    // Soft delete: 404 with the metadata body; undelete; destroy.
    assert_eq!(s.call("DELETE", "secret/data/app/db", t, None).await.0, 204);
    let (status, body) = s.call("GET", "secret/data/app/db", t, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["data"]["data"], json!(null));
    assert_ne!(body["data"]["metadata"]["deletion_time"], "");
    assert_eq!(
        s.call(
            "POST",
            "secret/undelete/app/db",
            t,
            Some(json!({"versions": [3]}))
        )
        .await
        .0,
        204
    );
    assert_eq!(s.call("GET", "secret/data/app/db", t, None).await.0, 200);
    assert_eq!(
        s.call(
            "POST",
            "secret/delete/app/db",
            t,
            Some(json!({"versions": [1]}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call("GET", "secret/data/app/db?version=1", t, None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call(
            "POST",
            "secret/destroy/app/db",
            t,
            Some(json!({"versions": [2]}))
        )
        .await
        .0,
        204
    );
    let (status, body) = s.call("GET", "secret/data/app/db?version=2", t, None).await;
    assert_eq!(
        (status, body["data"]["metadata"]["destroyed"].clone()),
        (404, json!(true))
    );
    assert_eq!(
        s.call(
            "POST",
            "secret/undelete/app/db",
            t,
            Some(json!({"versions": [2]}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call("GET", "secret/data/app/db?version=2", t, None)
            .await
            .0,
        404,
        "destroyed stays destroyed"
    );
    assert_eq!(
        s.call("POST", "secret/destroy/app/db", t, Some(json!({})))
            .await
            .0,
        400
    );

    // Metadata: read, write, patch, cas_required, custom metadata.
    let (_, meta) = s.call("GET", "secret/metadata/app/db", t, None).await;
    assert_eq!(meta["data"]["current_version"], 3);
    assert_eq!(meta["data"]["versions"]["2"]["destroyed"], true);
    let (status, _) = s
        .call("POST", "secret/metadata/app/db", t, Some(json!({"max_versions": 2, "cas_required": true, "custom_metadata": {"owner": "team-a"}})))
        .await;
    assert_eq!(status, 204);
    let (status, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"pass": "p4"}})),
        )
        .await;
    assert_eq!(status, 400, "cas_required without cas: {body}");
    let (status, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            t,
            Some(json!({"data": {"pass": "p4"}, "options": {"cas": 3}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["custom_metadata"], json!({"owner": "team-a"}));
    let (_, meta) = s.call("GET", "secret/metadata/app/db", t, None).await;
    let versions = meta["data"]["versions"].as_object().unwrap();
    assert_eq!(
        versions.keys().collect::<Vec<_>>(),
        vec!["3", "4"],
        "pruned to max_versions"
    );
    assert_eq!(meta["data"]["oldest_version"], 3);
    let resp = s
        .http
        .patch(format!("{}/v1/secret/metadata/app/db", s.addr))
        .header("X-Vault-Token", &root)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"custom_metadata": {"tier": "gold", "owner": null}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (_, meta) = s.call("GET", "secret/metadata/app/db", t, None).await;
    assert_eq!(meta["data"]["custom_metadata"], json!({"tier": "gold"}));

    // Mount config.
    assert_eq!(
        s.call(
            "POST",
            "secret/config",
            t,
            Some(json!({"max_versions": 5, "delete_version_after": "1h"}))
        )
        .await
        .0,
        204
    );
    let (_, cfg) = s.call("GET", "secret/config", t, None).await;
    assert_eq!(
        cfg["data"],
        json!({"cas_required": false, "delete_version_after": "1h0m0s", "max_versions": 5})
    );

    // LIST: both spellings, folders, pagination, empty is 404.
    for p in ["app/cache", "app/zeta", "b", "a/deep/x", "a/deep/y", "c"] {
        s.call(
            "POST",
            &format!("secret/data/{p}"),
            t,
            Some(json!({"data": {"v": 1}})),
        )
        .await;
    }
    let (status, body) = s.call("LIST", "secret/metadata/", t, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["keys"], json!(["a/", "app/", "b", "c"]));
    let (_, body) = s
        .call("GET", "secret/metadata/app?list=true", t, None)
        .await;
    assert_eq!(body["data"]["keys"], json!(["cache", "db", "zeta"]));
    let (_, body) = s.call("LIST", "secret/metadata/?limit=2", t, None).await;
    assert_eq!(body["data"]["keys"], json!(["a/", "app/"]));
    let (_, body) = s
        .call("LIST", "secret/metadata/?after=app/&limit=1", t, None)
        .await;
    assert_eq!(body["data"]["keys"], json!(["b"]));
    let (status, body) = s.call("LIST", "secret/metadata/empty/", t, None).await;
    assert_eq!((status, body), (404, json!({"errors": []})));

    // Delete all versions and metadata.
    assert_eq!(
        s.call("DELETE", "secret/metadata/app/db", t, None).await.0,
        204
    );
    assert_eq!(
        s.call("GET", "secret/metadata/app/db", t, None).await.0,
        404
    );
    assert_eq!(s.call("GET", "secret/data/app/db", t, None).await.0, 404);

    // Mounts: list, tune, other paths, disable removes data.
    let (_, mounts) = s.call("GET", "sys/mounts", t, None).await;
    assert_eq!(mounts["data"]["secret/"]["options"]["version"], "2");
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/team/kv",
            t,
            Some(json!({"type": "kv", "options": {"version": 2}}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/team/kv/inner",
            t,
            Some(json!({"type": "kv-v2"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        s.call("POST", "sys/mounts/v1kv", t, Some(json!({"type": "kv"})))
            .await
            .0,
        400
    );
    assert_eq!(
        s.call("POST", "sys/mounts/x", t, Some(json!({"type": "unknown"})))
            .await
            .0,
        400
    );
    s.call(
        "POST",
        "team/kv/data/k",
        t,
        Some(json!({"data": {"v": "team"}})),
    )
    .await;
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/team/kv/tune",
            t,
            Some(json!({"default_lease_ttl": "1h"}))
        )
        .await
        .0,
        204
    );
    let (_, tune) = s.call("GET", "sys/mounts/team/kv/tune", t, None).await;
    assert_eq!(tune["data"]["default_lease_ttl"], 3600);
    let (_, auth) = s.call("GET", "sys/auth", t, None).await;
    assert_eq!(auth["data"]["token/"]["type"], "token");
    assert_eq!(s.call("DELETE", "sys/mounts/team/kv", t, None).await.0, 204);
    assert_eq!(s.call("GET", "team/kv/data/k", t, None).await.0, 404);
    s.call(
        "POST",
        "sys/mounts/team/kv",
        t,
        Some(json!({"type": "kv-v2"})),
    )
    .await;
    assert_eq!(
        s.call("GET", "team/kv/data/k", t, None).await.0,
        404,
        "a new mount at the same path starts empty"
    );
}

#[tokio::test]
async fn kv_v2_flow_sqlite() {
    kv_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn kv_v2_flow_postgres() {
    kv_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn listing_many_secrets_paginates() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    for i in 0..120 {
        s.call(
            "POST",
            &format!("secret/data/many/k{i:03}"),
            t,
            Some(json!({"data": {"i": i}})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, body) = s
            .call(
                "LIST",
                &format!("secret/metadata/many/?limit=50&after={after}"),
                t,
                None,
            )
            .await;
        if status == 404 {
            break;
        }
        let keys: Vec<String> = body["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert!(keys.len() <= 50);
        after = keys.last().unwrap().clone();
        seen.extend(keys);
    }
    assert_eq!(seen.len(), 120);
    assert_eq!(seen[0], "k000");
    assert_eq!(seen[119], "k119");
}

/// Regression (found by the benchmark's probe): concurrent writes to one secret
/// lost versions, and several writes with the same `cas` were all accepted.
#[tokio::test]
async fn concurrent_writes_keep_every_version_and_cas_is_atomic() {
    let s = TestServer::start_dev("race-root").await;
    let t = "race-root";
    let mut tasks = Vec::new();
    for i in 0..40 {
        let http = s.http.clone();
        let url = format!("{}/v1/secret/data/race", s.addr);
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("X-Vault-Token", t)
                .json(&json!({"data": {"i": i}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() == 200 {
            ok += 1;
        }
    }
    let (_, meta) = s.call("GET", "secret/metadata/race", Some(t), None).await;
    assert_eq!(
        meta["data"]["current_version"],
        json!(ok),
        "every accepted write is a version"
    );

    let current = meta["data"]["current_version"].as_u64().unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let http = s.http.clone();
        let url = format!("{}/v1/secret/data/race", s.addr);
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("X-Vault-Token", t)
                .json(&json!({"data": {"i": i}, "options": {"cas": current}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() == 200 {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "exactly one write wins a check-and-set");
}
