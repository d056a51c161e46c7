//! CI OIDC logins through the real server: an issuer on loopback serves its
//! discovery document and JWKS; a job's JWT logs in when its claims fit the
//! role, and each kind of bad token is refused with the check that failed.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use coffer_tests::jwks::signer;
use coffer_tests::{Backend, TestServer};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `/.well-known/openid-configuration` and `/keys` on loopback; the key
/// set can be changed while it runs; counts JWKS fetches.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<usize>>,
}

async fn issuer(keys: Vec<Value>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let fetches = Arc::new(Mutex::new(0));
    let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (k, f, u) = (k.clone(), f.clone(), u.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if head.starts_with("GET /.well-known/openid-configuration") {
                    json!({"issuer": u, "jwks_uri": format!("{u}/keys")}).to_string()
                } else if head.starts_with("GET /keys") {
                    *f.lock().unwrap() += 1;
                    json!({"keys": *k.lock().unwrap()}).to_string()
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
    Issuer { url, keys, fetches }
}

fn now() -> i64 {
    #[allow(clippy::disallowed_methods)]
    let t = std::time::SystemTime::now();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn job_claims(iss: &str) -> Value {
    json!({
        "iss": iss, "aud": "https://coffer.example", "sub": "repo:acme/web:ref:refs/heads/main",
        "repository": "acme/web", "ref": "refs/heads/main", "actor": "alice", "team": "payments",
        "iat": now(), "nbf": now() - 5, "exp": now() + 300,
    })
}

async fn login(s: &TestServer, jwt: &str) -> (u16, Value) {
    s.call(
        "POST",
        "auth/jwt/login",
        None,
        Some(json!({"role": "deploy", "jwt": jwt})),
    )
    .await
}

async fn ci_logins(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    let first = signer("k1");
    let iss = issuer(vec![first.jwk.clone()]).await;
    assert_eq!(
        s.call("POST", "sys/auth/jwt", t, Some(json!({"type": "jwt"})))
            .await
            .0,
        204
    );
    let (st, out) = s
        .call(
            "POST",
            "auth/jwt/config",
            t,
            Some(json!({"oidc_discovery_url": iss.url, "bound_issuer": iss.url})),
        )
        .await;
    assert_eq!(st, 204, "{out}");
    let (st, out) = s
        .call(
            "POST",
            "auth/jwt/role/deploy",
            t,
            Some(json!({
                "role_type": "jwt", "user_claim": "actor",
                "bound_audiences": ["https://coffer.example"],
                "bound_claims_type": "glob",
                "bound_claims": {"repository": "acme/*", "ref": ["refs/heads/main", "refs/tags/v*"]},
                "claim_mappings": {"repository": "repository", "ref": "ref", "team": "team"},
                "token_policies": ["developer"], "token_ttl": "10m",
            })),
        )
        .await;
    assert_eq!(st, 204, "{out}");

    // A job of acme/web on main logs in, with its claims in the token metadata.
    let (st, out) = login(&s, &first.sign(&job_claims(&iss.url))).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["auth"]["lease_duration"], 600);
    assert_eq!(out["auth"]["metadata"]["repository"], "acme/web");
    assert_eq!(out["auth"]["metadata"]["role"], "deploy");
    assert!(out["auth"]["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("developer")));
    // The mapped team claim is what the developer tier's templated policy reads.
    let job = out["auth"]["client_token"].as_str().unwrap().to_owned();
    let own = s
        .call(
            "POST",
            "secret/data/teams/payments/deploy",
            Some(&job),
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(own.0, 200, "the job writes its team's secrets: {}", own.1);
    let other = s
        .call(
            "POST",
            "secret/data/teams/search/deploy",
            Some(&job),
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(other.0, 403, "and no other team's");

    // Each bad token gets the check that failed.
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "expired",
            json!({"exp": now() - 600, "iat": now() - 900, "nbf": now() - 900}),
            "expired",
        ),
        (
            "not yet valid",
            json!({"nbf": now() + 600}),
            "not valid yet",
        ),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example"}),
            "wrong issuer",
        ),
        (
            "wrong audience",
            json!({"aud": "https://other.example"}),
            "wrong audience",
        ),
        (
            "other repository",
            json!({"repository": "evil/web"}),
            "claim \"repository\"",
        ),
        (
            "other branch",
            json!({"ref": "refs/heads/dev"}),
            "claim \"ref\"",
        ),
        ("no expiry", json!({"exp": null}), "no expiry"),
    ];
    for (what, change, reason) in cases {
        let mut claims = job_claims(&iss.url);
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        let (st, out) = login(&s, &first.sign(&claims)).await;
        assert_eq!(st, 400, "{what}: {out}");
        assert!(
            out["errors"][0].as_str().unwrap().contains(reason),
            "{what}: {out}"
        );
    }
    // A tag matching the glob list logs in.
    let mut tagged = job_claims(&iss.url);
    tagged["ref"] = json!("refs/tags/v1.2.0");
    assert_eq!(login(&s, &first.sign(&tagged)).await.0, 200);

    // alg none, and HS256 "signed" with the public key (algorithm confusion).
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
        b64(&job_claims(&iss.url))
    );
    let (st, out) = login(&s, &none).await;
    assert_eq!(st, 400, "{out}");
    assert!(
        out["errors"][0].as_str().unwrap().contains("algorithm"),
        "{out}"
    );
    let mut hs = Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = encode(
        &hs,
        &job_claims(&iss.url),
        &EncodingKey::from_secret(first.jwk.to_string().as_bytes()),
    )
    .unwrap();
    let (st, out) = login(&s, &confused).await;
    assert_eq!(st, 400, "{out}");
    assert!(out["errors"][0].as_str().unwrap().contains("HS"), "{out}");
    // A forged signature with the right kid.
    let stranger = signer("k1");
    let (st, out) = login(&s, &stranger.sign(&job_claims(&iss.url))).await;
    assert_eq!(st, 400, "{out}");
    assert!(
        out["errors"][0].as_str().unwrap().contains("signature"),
        "{out}"
    );

    // Key rotation: a new kid makes Coffer fetch the key set again, once.
    let second = signer("k2");
    let before = *iss.fetches.lock().unwrap();
    iss.keys.lock().unwrap().push(second.jwk.clone());
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let (st, out) = login(&s, &second.sign(&job_claims(&iss.url))).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(*iss.fetches.lock().unwrap(), before + 1);
    // An unknown kid is refused after one refresh.
    let unknown = signer("k9");
    let (st, out) = login(&s, &unknown.sign(&job_claims(&iss.url))).await;
    assert_eq!(st, 400, "{out}");
    assert!(out["errors"][0].as_str().unwrap().contains("kid"), "{out}");
}

#[tokio::test]
async fn ci_logins_sqlite() {
    ci_logins(Backend::Sqlite).await;
}

#[tokio::test]
async fn ci_logins_postgres() {
    ci_logins(Backend::Postgres).await;
}

#[tokio::test]
async fn configuration_mistakes_are_refused() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    s.call("POST", "sys/auth/jwt", t, Some(json!({"type": "jwt"})))
        .await;
    for (body, reason) in [
        (
            json!({"jwks_url": "http://issuer.example/keys"}),
            "https://",
        ),
        (json!({}), "exactly one"),
        (
            json!({"jwt_validation_pubkeys": ["not a key"]}),
            "PEM public key",
        ),
    ] {
        let (st, out) = s.call("POST", "auth/jwt/config", t, Some(body)).await;
        assert_eq!(st, 400, "{out}");
        assert!(out.to_string().contains(reason), "{out}");
    }
    let (st, out) = s
        .call(
            "POST",
            "auth/jwt/role/open",
            t,
            Some(json!({"user_claim": "sub"})),
        )
        .await;
    assert_eq!(st, 400, "a role without any bound is refused: {out}");
}
