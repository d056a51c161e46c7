//! The GitHub Actions example under `deploy/github-actions/` is run, not just
//! read: `setup.sh` configures a real server with the real `bao` CLI, and
//! `coffer-deploy.sh` runs as a job would, against a loopback stand-in for
//! GitHub (its OIDC discovery, keys and the job's token endpoint). A job on
//! main in `prod` gets a 15-minute token, a database login that can SELECT and
//! not INSERT on the local PostgreSQL, and a deploy JWT that verifies against
//! the published keys; when the job ends everything it got is gone. A job on
//! another branch gets nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_tests::bao::bao_binary;
use coffer_tests::jwks::{signer, Signer};
use coffer_tests::pg::PgDatabase;
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REQUEST_TOKEN: &str = "actions-request-token";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy/github-actions")
        .join(name)
}

fn now() -> i64 {
    #[allow(clippy::disallowed_methods)]
    let t = std::time::SystemTime::now();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// GitHub as a job sees it: discovery and keys, and the token endpoint that
/// answers `{"value": <JWT>}` for the audience asked, with the job's claims.
struct GitHub {
    url: String,
    git_ref: Arc<Mutex<String>>,
}

async fn github(key: Signer) -> GitHub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let git_ref = Arc::new(Mutex::new("refs/heads/main".to_owned()));
    let (u, r, key) = (url.clone(), git_ref.clone(), Arc::new(key));
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (u, r, key) = (u.clone(), r.clone(), key.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let authorised = head
                    .to_ascii_lowercase()
                    .contains(&format!("authorization: bearer {REQUEST_TOKEN}"));
                let body = if line.starts_with("GET /.well-known/openid-configuration") {
                    json!({"issuer": u, "jwks_uri": format!("{u}/keys")}).to_string()
                } else if line.starts_with("GET /keys") {
                    json!({"keys": [key.jwk]}).to_string()
                } else if line.starts_with("GET /token?") && authorised {
                    let audience = line
                        .split("audience=")
                        .nth(1)
                        .and_then(|a| a.split([' ', '&']).next())
                        .unwrap_or_default()
                        .replace("%3A", ":")
                        .replace("%2F", "/");
                    let git_ref = r.lock().unwrap().clone();
                    let claims = json!({
                        "iss": u, "aud": audience, "sub": "repo:org/app:environment:prod",
                        "repository": "org/app", "ref": git_ref, "environment": "prod",
                        "sha": "0123456789abcdef", "actor": "alice", "run_id": "42",
                        "iat": now(), "nbf": now() - 5, "exp": now() + 300,
                    });
                    json!({"value": key.sign(&claims)}).to_string()
                } else {
                    String::new()
                };
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    GitHub { url, git_ref }
}

fn tools_present() -> bool {
    for tool in ["jq", "curl", "psql"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        if !found {
            eprintln!("skipping the GitHub Actions example: {tool} is not installed");
            return false;
        }
    }
    true
}

/// Runs `script` with `env` (and a PATH that finds `bao`), off the runtime's
/// threads: the stand-in for GitHub answers on them meanwhile.
async fn run(
    script: &Path,
    args: &[&str],
    env: &[(&str, String)],
    bao_dir: &Path,
) -> (i32, String, String) {
    let (script, bao_dir) = (script.to_owned(), bao_dir.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || run_blocking(&script, &args, &env, &bao_dir))
        .await
        .unwrap()
}

fn run_blocking(
    script: &Path,
    args: &[String],
    env: &[(String, String)],
    bao_dir: &Path,
) -> (i32, String, String) {
    let path = format!(
        "{}:{}",
        bao_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn role_count(target: &PgDatabase, name: &str) -> i64 {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(target.url())
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_actions_example_deploys_with_credentials_that_die_with_the_job() {
    let Some(bao) = bao_binary() else {
        return;
    };
    if !tools_present() {
        return;
    }
    let Some(target) = PgDatabase::create().await else {
        return;
    };
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(target.url())
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE releases (id int); INSERT INTO releases VALUES (1), (2);")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let db = target.url().rsplit('/').next().unwrap().to_owned();
    let gh = github(signer("gh-1")).await;
    let home = tempfile::tempdir().unwrap();
    let bao_dir = bao.parent().unwrap().to_owned();

    // The operator's one-time setup, with the real bao CLI.
    let setup_env = [
        ("HOME", home.path().display().to_string()),
        ("BAO_ADDR", s.addr.clone()),
        ("BAO_TOKEN", root.clone()),
        ("OIDC_DISCOVERY_URL", gh.url.clone()),
        (
            "DB_CONNECTION_URL",
            format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:5432/{db}?sslmode=disable"),
        ),
        ("DB_ADMIN_USER", "postgres".into()),
        ("DB_ADMIN_PASSWORD", "the-admin-password".into()),
    ];
    let (code, out, err) = run(&example("setup.sh"), &[], &setup_env, &bao_dir).await;
    assert_eq!(code, 0, "setup.sh:\n{out}\n{err}");
    assert!(out.contains("accepts org/app on main in prod"), "{out}");
    // Running it again changes nothing and fails nothing.
    let (code, out, err) = run(&example("setup.sh"), &[], &setup_env, &bao_dir).await;
    assert_eq!(code, 0, "setup.sh again:\n{out}\n{err}");

    // The job: what the deploy command sees, written where the test can read it.
    let seen = tempfile::tempdir().unwrap();
    let deploy = format!(
        r#"set -e
psql "postgresql://$DB_USERNAME:$DB_PASSWORD@127.0.0.1:5432/{db}" -Atc 'SELECT count(*) FROM releases' > {dir}/count
printf %s "$DB_USERNAME" > {dir}/user
printf %s "$DEPLOY_JWT" > {dir}/jwt
if psql "postgresql://$DB_USERNAME:$DB_PASSWORD@127.0.0.1:5432/{db}" -c 'INSERT INTO releases VALUES (3)' 2>/dev/null; then touch {dir}/inserted; fi"#,
        dir = seen.path().display()
    );
    let job_env = [
        ("HOME", home.path().display().to_string()),
        ("COFFER_ADDR", s.addr.clone()),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/token?api-version=2.0", gh.url),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.into()),
    ];
    let script = example("coffer-deploy.sh");
    let (code, out, err) = run(&script, &["sh", "-c", &deploy], &job_env, &bao_dir).await;
    assert_eq!(code, 0, "coffer-deploy.sh:\n{out}\n{err}");
    assert!(
        out.contains("logged in as org/app@refs/heads/main with default,deploy-app for 900s"),
        "{out}"
    );
    let read = |name: &str| std::fs::read_to_string(seen.path().join(name)).unwrap();
    assert_eq!(read("count").trim(), "2", "the login can SELECT");
    assert!(!seen.path().join("inserted").exists(), "and cannot INSERT");
    // Every secret is masked before anything else is printed.
    let user = read("user");
    let deploy_jwt = read("jwt");
    for line in out.lines().filter(|l| !l.starts_with("::add-mask::")) {
        assert!(!line.contains(&deploy_jwt), "unmasked JWT: {line}");
        assert!(!line.contains("hvs."), "a token printed: {line}");
    }
    assert!(out.contains(&format!("::add-mask::{deploy_jwt}")), "{out}");

    // The deploy JWT verifies against Coffer's published keys and names the job.
    let (_, jwks) = s
        .call("GET", "identity/oidc/.well-known/keys", None, None)
        .await;
    let header = jsonwebtoken::decode_header(&deploy_jwt).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == json!(header.kid))
        .unwrap();
    let key: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["deploy-target"]);
    let claims = jsonwebtoken::decode::<Value>(
        &deploy_jwt,
        &jsonwebtoken::DecodingKey::from_jwk(&key).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["repository"], "org/app", "{claims}");
    assert_eq!(claims["ref"], "refs/heads/main", "{claims}");
    assert_eq!(claims["sha"], "0123456789abcdef", "{claims}");
    assert!(claims["exp"].as_i64().unwrap() - now() <= 900, "{claims}");

    // The job is over: its token was revoked, and the database login with it.
    let mut gone = false;
    for _ in 0..100 {
        if role_count(&target, &user).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the database login {user} outlived the job");

    // A job on another branch gets nothing, and its command never runs.
    *gh.git_ref.lock().unwrap() = "refs/heads/feature".into();
    let marker = seen.path().join("ran");
    let (code, out, err) = run(
        &script,
        &["touch", marker.to_str().unwrap()],
        &job_env,
        &bao_dir,
    )
    .await;
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("login refused"), "{err}");
    assert!(err.contains("ref"), "the refusal names the claim: {err}");
    assert!(!marker.exists(), "the deploy ran without a login");
}
