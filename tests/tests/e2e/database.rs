//! Dynamic PostgreSQL credentials through the real server (Coffer on both
//! backends, the target database a throwaway one on the local PostgreSQL): a
//! developer's deploy credential exists in the database with a lease, renewal
//! moves its expiry, and it is dropped with its sessions ended on revocation,
//! on expiry and when the token that asked for it is revoked. (The local
//! PostgreSQL trusts loopback logins, so the tests check roles, expiry and
//! sessions, not that the generated password is the one it checks.)

use std::sync::Arc;
use std::time::Duration;

use coffer_tests::pg::PgDatabase;
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, Row};

const CREATE: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

struct Setup {
    s: TestServer,
    root: String,
    target: PgDatabase,
}

fn db_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

async fn setup(backend: Backend) -> Option<Setup> {
    let target = PgDatabase::create().await?;
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(target.url())
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2);")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let t = Some(root.as_str());
    let (st, body) = s
        .call(
            "POST",
            "sys/mounts/database",
            t,
            Some(json!({"type": "database"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let url = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:5432/{}?sslmode=disable",
        db_name(target.url())
    );
    let (st, body) = s
        .call(
            "POST",
            "database/config/app",
            t,
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": url,
                "username": "postgres",
                "password": "root-password-never-shown",
                "allowed_roles": "deploy-app,deploy-short",
            })),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    for (role, ttl) in [("deploy-app", "1h"), ("deploy-short", "2s")] {
        let (st, body) = s
            .call(
                "POST",
                &format!("database/roles/{role}"),
                t,
                Some(json!({"db_name": "app", "creation_statements": CREATE, "default_ttl": ttl, "max_ttl": "2h"})),
            )
            .await;
        assert_eq!(st, 204, "{body}");
    }
    Some(Setup { s, root, target })
}

async fn role_exists(target: &PgDatabase, name: &str) -> Option<Option<String>> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(target.url())
        .await
        .unwrap();
    let row = sqlx::query("SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = $1")
        .bind(name)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    row.map(|r| r.get::<Option<String>, _>(0))
}

async fn wait_until_dropped(target: &PgDatabase, name: &str) {
    for _ in 0..100 {
        if role_exists(target, name).await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("role {name} still exists after 10 s");
}

async fn developer(s: &TestServer, root: &str) -> String {
    let (_, out) = s
        .call(
            "POST",
            "auth/token/create",
            Some(root),
            Some(json!({"policies": ["developer"], "ttl": "1h"})),
        )
        .await;
    out["auth"]["client_token"].as_str().unwrap().to_owned()
}

async fn creds(s: &TestServer, token: &str, role: &str) -> (u16, Value) {
    s.call("GET", &format!("database/creds/{role}"), Some(token), None)
        .await
}

async fn credentials_live_renew_and_die(backend: Backend) {
    let Some(Setup { s, root, target }) = setup(backend).await else {
        return;
    };
    let t = Some(root.as_str());
    // The root password is never answered.
    let (_, config) = s.call("GET", "database/config/app", t, None).await;
    assert!(
        !config.to_string().contains("root-password-never-shown"),
        "{config}"
    );
    assert_eq!(config["data"]["connection_details"]["username"], "postgres");

    let dev = developer(&s, &root).await;
    let (st, out) = creds(&s, &dev, "deploy-app").await;
    assert_eq!(st, 200, "{out}");
    let user = out["data"]["username"].as_str().unwrap().to_owned();
    assert!(out["data"]["password"].as_str().unwrap().len() >= 20);
    let lease_id = out["lease_id"].as_str().unwrap().to_owned();
    assert!(
        lease_id.starts_with("database/creds/deploy-app/"),
        "{lease_id}"
    );
    assert_eq!(
        (out["lease_duration"].clone(), out["renewable"].clone()),
        (json!(3600), json!(true))
    );
    let valid_until = role_exists(&target, &user).await.expect("the role exists");
    // What the credential may do is what its GRANT says.
    let as_user = target.url().replace("postgres@", &format!("{user}@"));
    let mut conn = PgConnection::connect(&as_user).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 2, "the granted SELECT works");
    let forbidden = sqlx::query("INSERT INTO items VALUES (3)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        forbidden.to_string().contains("permission denied"),
        "{forbidden}"
    );
    drop(conn);
    assert!(valid_until.is_some(), "VALID UNTIL is set");

    // The developer tier reads deploy credentials only.
    let (st, _) = s.call("GET", "database/config/app", Some(&dev), None).await;
    assert_eq!(st, 403);

    // Renewal moves VALID UNTIL.
    let (st, renewed) = s
        .call(
            "PUT",
            "sys/leases/renew",
            Some(&dev),
            Some(json!({"lease_id": lease_id, "increment": "10m"})),
        )
        .await;
    assert_eq!(st, 200, "{renewed}");
    assert_eq!(renewed["lease_duration"], 600);
    let moved = role_exists(&target, &user).await.unwrap();
    assert_ne!(moved, valid_until, "renewal changed VALID UNTIL");

    // A session of the credential ends when the lease is revoked.
    let session_url = target.url().replace("postgres@", &format!("{user}@"));
    let mut session = PgConnection::connect(&session_url).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut session).await.unwrap();
    let (st, body) = s
        .call(
            "PUT",
            "sys/leases/revoke",
            t,
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    assert!(
        role_exists(&target, &user).await.is_none(),
        "the role was dropped"
    );
    assert!(sqlx::query("SELECT 1").execute(&mut session).await.is_err());
    assert!(
        PgConnection::connect(&session_url).await.is_err(),
        "the credential no longer logs in"
    );
    let (st, _) = s
        .call(
            "PUT",
            "sys/leases/lookup",
            t,
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(st, 400);

    // Expiry: the worker drops a 2 s credential by itself.
    let (_, short) = creds(&s, &dev, "deploy-short").await;
    let short_user = short["data"]["username"].as_str().unwrap().to_owned();
    assert!(role_exists(&target, &short_user).await.is_some());
    wait_until_dropped(&target, &short_user).await;

    // Token revocation: the credentials it asked for go with it.
    let other = developer(&s, &root).await;
    let (_, third) = creds(&s, &other, "deploy-app").await;
    let third_user = third["data"]["username"].as_str().unwrap().to_owned();
    let (st, _) = s
        .call("POST", "auth/token/revoke-self", Some(&other), None)
        .await;
    assert_eq!(st, 204);
    wait_until_dropped(&target, &third_user).await;

    let (_, metrics) = s
        .raw_call("GET", "sys/metrics?format=prometheus", t, None)
        .await;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("coffer_lease_revocations_total 3"), "{text}");
    drop(s);
}

#[tokio::test]
async fn credentials_live_renew_and_die_sqlite() {
    credentials_live_renew_and_die(Backend::Sqlite).await;
}

#[tokio::test]
async fn credentials_live_renew_and_die_postgres() {
    credentials_live_renew_and_die(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_configuration_is_refused_clearly() {
    let Some(Setup {
        s,
        root,
        target: _target,
    }) = setup(Backend::Sqlite).await
    else {
        return;
    };
    let t = Some(root.as_str());
    let (st, out) = s
        .call(
            "POST",
            "database/config/other",
            t,
            Some(json!({"plugin_name": "mysql-database-plugin", "connection_url": "postgres://x"})),
        )
        .await;
    assert_eq!(st, 400, "{out}");
    let (st, out) = s
        .call(
            "POST",
            "database/config/down",
            t,
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/x",
                "username": "u", "password": "secret-in-the-url",
            })),
        )
        .await;
    assert_eq!(st, 500, "{out}");
    let text = out.to_string();
    assert!(text.contains("cannot verify the connection"), "{text}");
    assert!(!text.contains("secret-in-the-url"), "{text}");
    // A role its database does not allow.
    s.call(
        "POST",
        "database/roles/intruder",
        t,
        Some(json!({"db_name": "app", "creation_statements": CREATE})),
    )
    .await;
    let (st, out) = s.call("GET", "database/creds/intruder", t, None).await;
    assert_eq!(st, 400, "{out}");
    assert!(out.to_string().contains("not an allowed role"), "{out}");
    // A broken statement that PostgreSQL quotes back at the password: the
    // answer names the refusal, never the password, in any case (every generated one
    // starts with "A1a").
    s.call(
        "POST",
        "database/roles/deploy-short",
        t,
        Some(json!({"db_name": "app", "creation_statements": "CREATE ROLE \"{{name}}\" {{password}}"})),
    )
    .await;
    let (st, out) = s.call("GET", "database/creds/deploy-short", t, None).await;
    assert_eq!(st, 500, "{out}");
    let text = out.to_string();
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.to_lowercase().contains("a1a"), "{text}");
}

async fn a_lease_count_quota_holds_under_a_race(backend: Backend) {
    let Some(Setup {
        s,
        root,
        target: _target,
    }) = setup(backend).await
    else {
        return;
    };
    let t = Some(root.as_str());
    let (st, out) = s
        .call(
            "POST",
            "sys/quotas/lease-count/deploys",
            t,
            Some(json!({"path": "database/creds/deploy-app", "max_leases": 3})),
        )
        .await;
    assert_eq!(st, 204, "{out}");
    let s = Arc::new(s);
    let start = Arc::new(tokio::sync::Barrier::new(24));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (s, start, root) = (s.clone(), start.clone(), root.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            creds(&s, &root, "deploy-app").await
        }));
    }
    let mut leases = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (st, out) = task.await.unwrap();
        match st {
            200 => leases.push(out["lease_id"].as_str().unwrap().to_owned()),
            429 => {
                refused += 1;
                assert!(
                    out["errors"][0]
                        .as_str()
                        .unwrap()
                        .contains("quota \"deploys\" reached"),
                    "{out}"
                );
            }
            other => panic!("unexpected {other}: {out}"),
        }
    }
    assert_eq!(
        (leases.len(), refused),
        (3, 21),
        "exactly max_leases credentials"
    );
    let (_, q) = s
        .call("GET", "sys/quotas/lease-count/deploys", t, None)
        .await;
    assert_eq!(q["data"]["counter"], 3);
    // Another role's credentials are not limited by this quota.
    let (st, _) = creds(&s, &root, "deploy-short").await;
    assert_eq!(st, 200);
    // Ending a lease gives its slot back.
    let (st, _) = s
        .call(
            "PUT",
            "sys/leases/revoke",
            t,
            Some(json!({"lease_id": leases[0]})),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(creds(&s, &root, "deploy-app").await.0, 200);
    assert_eq!(creds(&s, &root, "deploy-app").await.0, 429);
}

#[tokio::test]
async fn a_lease_count_quota_holds_under_a_race_sqlite() {
    a_lease_count_quota_holds_under_a_race(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_lease_count_quota_holds_under_a_race_postgres() {
    a_lease_count_quota_holds_under_a_race(Backend::Postgres).await;
}

#[tokio::test]
async fn a_revocation_that_fails_is_retried_until_it_works() {
    let Some(Setup { s, root, target }) = setup(Backend::Sqlite).await else {
        return;
    };
    let t = Some(root.as_str());
    let (_, short) = creds(&s, &root, "deploy-short").await;
    let user = short["data"]["username"].as_str().unwrap().to_owned();
    let lease_id = short["lease_id"].as_str().unwrap().to_owned();
    let config = |url: String| {
        json!({
            "plugin_name": "postgresql-database-plugin", "connection_url": url,
            "username": "postgres", "password": "x", "verify_connection": false,
            "allowed_roles": "deploy-app,deploy-short",
        })
    };
    let good = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:5432/{}?sslmode=disable",
        db_name(target.url())
    );
    // The database goes away before the lease ends.
    let (st, _) = s
        .call(
            "POST",
            "database/config/app",
            t,
            Some(config(
                "postgresql://{{username}}:{{password}}@127.0.0.1:1/x".into(),
            )),
        )
        .await;
    assert_eq!(st, 204);
    let mut looked = Value::Null;
    for _ in 0..100 {
        let (_, l) = s
            .call(
                "PUT",
                "sys/leases/lookup",
                t,
                Some(json!({"lease_id": lease_id})),
            )
            .await;
        looked = l;
        if looked["data"]["revoke_attempts"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        looked["data"]["revoke_attempts"].as_u64().unwrap_or(0) >= 1,
        "{looked}"
    );
    assert!(
        looked["data"]["last_revoke_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot revoke the credential"),
        "{looked}"
    );
    assert_eq!(looked["data"]["irrevocable"], false);
    assert!(
        role_exists(&target, &user).await.is_some(),
        "not revoked yet"
    );
    // It comes back: the next attempt (after the backoff) drops the role.
    assert_eq!(
        s.call("POST", "database/config/app", t, Some(config(good)))
            .await
            .0,
        204
    );
    wait_until_dropped(&target, &user).await;
}

/// A target that never comes back: after six failed attempts (2 + 4 + 8 + 16 +
/// 32 s of backoff) the lease is irrevocable, shown in its lookup and in the
/// metrics, no longer retried, and `revoke-force` removes it. About 70 s.
#[tokio::test]
async fn a_revocation_that_never_works_ends_irrevocable() {
    let Some(Setup {
        s,
        root,
        target: _target,
    }) = setup(Backend::Sqlite).await
    else {
        return;
    };
    let t = Some(root.as_str());
    let (_, short) = creds(&s, &root, "deploy-short").await;
    let lease_id = short["lease_id"].as_str().unwrap().to_owned();
    let (st, _) = s
        .call(
            "POST",
            "database/config/app",
            t,
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/x",
                "username": "postgres", "password": "x", "verify_connection": false,
                "allowed_roles": "deploy-app,deploy-short",
            })),
        )
        .await;
    assert_eq!(st, 204);
    let lookup = || async {
        s.call(
            "PUT",
            "sys/leases/lookup",
            t,
            Some(json!({"lease_id": lease_id})),
        )
        .await
        .1
    };
    let mut looked = Value::Null;
    for _ in 0..120 {
        looked = lookup().await;
        if looked["data"]["irrevocable"] == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(looked["data"]["irrevocable"], json!(true), "{looked}");
    assert_eq!(looked["data"]["revoke_attempts"], json!(6), "{looked}");
    assert!(
        looked["data"]["last_revoke_error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot revoke the credential"),
        "{looked}"
    );
    let (_, metrics) = s
        .raw_call("GET", "sys/metrics?format=prometheus", t, None)
        .await;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        text.lines().any(|l| l == "coffer_irrevocable_leases 1"),
        "{text}"
    );
    // Given up: no further attempt is made.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lookup().await["data"]["revoke_attempts"], json!(6));
    let (st, body) = s
        .call(
            "PUT",
            "sys/leases/revoke-force/database/creds/deploy-short",
            t,
            None,
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, _) = s
        .call(
            "PUT",
            "sys/leases/lookup",
            t,
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_ne!(st, 200, "revoke-force removed it");
}
