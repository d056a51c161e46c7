//! The client library as a service embeds it, against the real server: a client from
//! the environment, token login, KV v2 read, the renewer keeping a short-lived token
//! alive past its first TTL and logging in again after the token is revoked, the
//! typed errors (403 with the server's message, sealed, connection refused), and TLS
//! trust from COFFER_CACERT against a TLS listener (an unknown CA named as such).

use std::collections::HashMap;
use std::time::Duration;

use coffer_client::login::LoginFuture;
use coffer_client::{
    Client, ErrorKind, Login, LoginFn, RenewEvent, Renewer, RenewerOptions, SecretString,
    TokenCreateRequest, Ttl,
};
use coffer_tests::{Backend, TestServer};
use serde_json::json;

const READ_APP: &str = r#"path "secret/data/app/*" { capabilities = ["read"] }"#;

/// A ready server with `secret/app/db` written and an `app-read` policy.
async fn server(backend: Backend) -> Option<(TestServer, String)> {
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    let (st, body) = s
        .call(
            "POST",
            "secret/data/app/db",
            Some(&root),
            Some(json!({"data": {"password": "expected", "port": 5432}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .call(
            "PUT",
            "sys/policies/acl/app-read",
            Some(&root),
            Some(json!({"policy": READ_APP})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    Some((s, root))
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

/// A token with `app-read`, `ttl`, renewable, an orphan (revoking it touches nothing else).
async fn app_token(root: &Client, ttl: &str) -> SecretString {
    let req = TokenCreateRequest {
        policies: vec!["app-read".into()],
        ttl: Some(Ttl::parse(ttl)),
        explicit_max_ttl: Some(Ttl::parse("1h")),
        renewable: Some(true),
        no_parent: Some(true),
        ..Default::default()
    };
    let mut created = root.token_create(&req).await.unwrap();
    created.auth.take().unwrap().client_token
}

async fn from_env_token_login_and_kv_read(backend: Backend) {
    let Some((s, root)) = server(backend).await else {
        return;
    };
    let root_client = Client::new(&s.addr).unwrap().with_token(root.as_str());
    let token = app_token(&root_client, "1h").await;
    let client = Client::from_env_with(&env(&[
        ("VAULT_ADDR", "http://127.0.0.1:1"),
        ("COFFER_ADDR", &s.addr),
        ("VAULT_TOKEN", token.expose()),
    ]))
    .unwrap();
    let auth = client.login_token(token.clone()).await.unwrap();
    assert!(auth.policies.contains(&"app-read".to_string()), "{auth:?}");
    assert!(auth.lease_duration > 3500 && auth.lease_duration <= 3600);
    let secret = client
        .kv_get("secret", "app/db", None)
        .await
        .unwrap()
        .unwrap();
    let data = secret.data.as_ref().unwrap();
    assert_eq!(data["password"], "expected");
    assert_eq!(data["port"], 5432);
    // A bad token is refused at login, with the server's words.
    let err = client.login_token("hvs.not-a-token").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.server_messages().is_empty());
    assert_eq!(
        client.token().unwrap().expose(),
        token.expose(),
        "kept the good one"
    );
}

#[tokio::test]
async fn from_env_token_login_and_kv_read_sqlite() {
    from_env_token_login_and_kv_read(Backend::Sqlite).await;
}

#[tokio::test]
async fn from_env_token_login_and_kv_read_postgres() {
    from_env_token_login_and_kv_read(Backend::Postgres).await;
}

fn quick() -> RenewerOptions {
    RenewerOptions {
        min_wait: Duration::from_millis(200),
        retry_wait: Duration::from_millis(500),
        ..RenewerOptions::default()
    }
}

fn drain(r: &mut Renewer) -> Vec<RenewEvent> {
    std::iter::from_fn(|| r.try_next_event()).collect()
}

#[tokio::test]
async fn the_renewer_keeps_a_short_lived_token_alive() {
    let Some((s, root)) = server(Backend::Sqlite).await else {
        return;
    };
    let root_client = Client::new(&s.addr).unwrap().with_token(root.as_str());
    let token = app_token(&root_client, "3s").await;
    let client = Client::new(&s.addr).unwrap();
    client.login_token(token.clone()).await.unwrap();
    let mut renewer = client.keep_alive_with(quick()).unwrap();
    // Three TTLs later the token still works.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let secret = client.kv_get("secret", "app/db", None).await.unwrap();
    assert!(secret.is_some());
    let looked = client.token_lookup_self().await.unwrap();
    let ttl = looked.data_field("ttl").and_then(|v| v.as_i64()).unwrap();
    assert!(ttl > 0 && ttl <= 3, "ttl {ttl}");
    let events = drain(&mut renewer);
    let renewed = events
        .iter()
        .filter(|e| matches!(e, RenewEvent::TokenRenewed { .. }))
        .count();
    assert!(renewed >= 3, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, RenewEvent::Failed { .. })),
        "{events:?}"
    );
    assert_eq!(
        client.token().unwrap().expose(),
        token.expose(),
        "same token"
    );
    // Without the renewer it dies.
    drop(renewer);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let err = client.kv_get("secret", "app/db", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

/// A login of the service's own: a fresh `app-read` token from a parent it holds
/// (standing in for AppRole or cert login, which need their engines).
struct FromParent {
    parent: Client,
}

impl LoginFn for FromParent {
    fn login<'a>(&'a self, _client: &'a Client) -> LoginFuture<'a> {
        Box::pin(async move {
            let token = app_token(&self.parent, "3s").await;
            let probe = self.parent.clone().with_token(token.clone());
            let looked = probe.token_lookup_self().await?;
            let field = |k: &str| looked.data_field(k).cloned().unwrap_or_default();
            let auth = coffer_client::Auth {
                client_token: token,
                lease_duration: field("ttl").as_i64().unwrap_or(0),
                renewable: field("renewable").as_bool().unwrap_or(false),
                ..Default::default()
            };
            Ok(auth)
        })
    }
}

#[tokio::test]
async fn a_revoked_token_leads_to_a_new_login() {
    let Some((s, root)) = server(Backend::Sqlite).await else {
        return;
    };
    let root_client = Client::new(&s.addr).unwrap().with_token(root.as_str());
    let client = Client::new(&s.addr).unwrap();
    let login = Login::Custom(std::sync::Arc::new(FromParent {
        parent: root_client.clone(),
    }));
    client.login(login).await.unwrap();
    let first = client.token().unwrap();
    let mut renewer = client.keep_alive_with(quick()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    root_client.token_revoke(first.expose()).await.unwrap();
    // The next renewal (about 2 s after login) is refused; the renewer logs in again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e| matches!(e, RenewEvent::Reauthenticated { .. }))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no re-login: {events:?}"
        );
        if let Ok(Some(e)) =
            tokio::time::timeout(Duration::from_secs(1), renewer.next_event()).await
        {
            events.push(e);
        }
    }
    let second = client.token().unwrap();
    assert_ne!(first.expose(), second.expose());
    assert!(client
        .kv_get("secret", "app/db", None)
        .await
        .unwrap()
        .is_some());
    // And the new token is kept alive too.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(client
        .kv_get("secret", "app/db", None)
        .await
        .unwrap()
        .is_some());
    assert_eq!(client.token().unwrap().expose(), second.expose());
}

#[tokio::test]
async fn errors_say_what_failed() {
    let Some((s, root)) = server(Backend::Sqlite).await else {
        return;
    };
    let root_client = Client::new(&s.addr).unwrap().with_token(root.as_str());
    let token = app_token(&root_client, "1h").await;
    let client = Client::new(&s.addr).unwrap().with_token(token);
    // 403 with the server's message.
    let err = client.kv_get("secret", "other/x", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.server_messages()
            .iter()
            .any(|m| m.contains("permission denied")),
        "{err}"
    );
    // 400 for a bad request.
    let err = root_client
        .write("sys/policies/acl/bad", &json!({"policy": "path {"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    // Sealed.
    root_client.seal().await.unwrap();
    let err = client.kv_get("secret", "app/db", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sealed, "{err}");
    assert!(err.is_transient());
    // Connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gone = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = gone.kv_get("secret", "app/db", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn tls_trust_from_the_environment_and_an_unknown_ca() {
    let Some(s) = TestServer::start_with(
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
    let addr = s.addr.replace("127.0.0.1", "localhost");
    let ca = s.dir().join("cert.pem");
    let client = Client::from_env_with(&env(&[
        ("COFFER_ADDR", &addr),
        ("COFFER_CACERT", ca.to_str().unwrap()),
    ]))
    .unwrap();
    let status = client.seal_status().await.unwrap();
    assert!(!status.initialized);
    // A client certificate on a listener that does not ask for one is harmless.
    // (A name of its own: a certificate named like the server's issuer would be
    // refused for its signature instead.)
    let mut params = rcgen::CertificateParams::new(vec!["svc".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another CA");
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other = params.self_signed(&other_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("svc.pem"), dir.path().join("svc-key.pem"));
    std::fs::write(&cert, other.pem()).unwrap();
    std::fs::write(&key, other_key.serialize_pem()).unwrap();
    let with_identity = Client::from_env_with(&env(&[
        ("COFFER_ADDR", &addr),
        ("VAULT_CACERT", ca.to_str().unwrap()),
        ("COFFER_CLIENT_CERT", cert.to_str().unwrap()),
        ("COFFER_CLIENT_KEY", key.to_str().unwrap()),
    ]))
    .unwrap();
    assert!(with_identity.seal_status().await.is_ok());
    // Trusting another CA: the handshake fails, and the error says which check.
    let wrong = Client::from_env_with(&env(&[
        ("COFFER_ADDR", &addr),
        ("COFFER_CACERT", cert.to_str().unwrap()),
    ]))
    .unwrap();
    let err = wrong.seal_status().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(coffer_client::TlsFailure::UnknownServerCa),
        "{err}"
    );
}
