//! Journey 1 through the client library (issue 12, "How it is shown"): Coffer's PKI
//! issues a service certificate (SPIFFE URI SAN), `auth/cert` trusts the PKI root,
//! the service logs in with the certificate over a `require` listener through
//! `Client::from_env`, reads its secret, and keeps its token alive; the same token
//! from another certificate gets 403; after the certificate is revoked and the CRL
//! given to `auth/cert`, login fails. TLS refusals come back as typed errors.

use std::collections::HashMap;
use std::time::Duration;

use coffer_client::{Client, ErrorKind, IssueRequest, RenewEvent, RenewerOptions, TlsFailure};
use coffer_tests::tls::{listener_table, ClientSpec, TestCa};
use coffer_tests::{Backend, Options, TestServer};
use serde_json::json;

fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| map.get(k).cloned()
}

async fn journey(backend: Backend) {
    // Listeners: people (request) and services (require, CA file replaced by the
    // PKI root once there is one, then SIGHUP).
    let tls_ca = TestCa::new("listener CA");
    let dir = tempfile::tempdir().unwrap();
    let server_leaf = tls_ca.server();
    let clients_ca = tls_ca.write(dir.path(), "clients-ca.pem");
    let listeners = format!(
        "{}{}",
        listener_table(
            dir.path(),
            "people",
            &server_leaf,
            "client_auth = \"request\""
        ),
        listener_table(
            dir.path(),
            "services",
            &server_leaf,
            &format!("client_auth = \"require\"\ntls_client_ca_file = {clients_ca:?}"),
        ),
    );
    let Some(s) = TestServer::start_with(
        backend,
        Options {
            listeners: Some(listeners),
            trust_ca_pem: Some(tls_ca.pem.clone()),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let urls = s.listener_urls(2);
    let (people, services) = (urls[0].clone(), urls[1].clone());
    let (_, root) = s.ready().await;
    let trust = tls_ca.write(dir.path(), "server-ca.pem");
    let admin = Client::builder(&people)
        .ca_cert_pem(tls_ca.pem.as_bytes())
        .token(root.as_str())
        .build()
        .unwrap();

    // PKI: a root, a role for *.svc.internal with SPIFFE URIs.
    admin
        .write("sys/mounts/pki", &json!({"type": "pki"}))
        .await
        .unwrap();
    let gen = admin
        .write(
            "pki/root/generate/internal",
            &json!({"common_name": "Coffer Root", "key_type": "ec", "ttl": "720h"}),
        )
        .await
        .unwrap()
        .unwrap();
    let pki_root = gen
        .data_field("certificate")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .write(
            "pki/roles/svc",
            &json!({"allowed_domains": "svc.internal", "allow_subdomains": true,
                    "allowed_uri_sans": "spiffe://prod/ns/*/sa/*", "key_type": "ec",
                    "server_flag": false, "client_flag": true, "max_ttl": "24h"}),
        )
        .await
        .unwrap();
    let mut req = IssueRequest::new("api.svc.internal");
    req.uri_sans = Some("spiffe://prod/ns/payments/sa/api".into());
    req.ttl = Some("1h".into());
    let issued = admin.pki_issue("pki", "svc", &req).await.unwrap();
    assert!(issued.lease_id.starts_with("pki/issue/svc/"), "{issued:?}");
    assert_eq!(issued.issuing_ca.trim(), pki_root.trim());
    assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
    let cert_file = dir.path().join("svc.pem");
    let key_file = dir.path().join("svc-key.pem");
    std::fs::write(&cert_file, issued.chain_pem()).unwrap();
    std::fs::write(&key_file, issued.private_key.expose()).unwrap();

    // auth/cert trusts the PKI root for that SPIFFE id; a policy; the secret.
    admin
        .write("sys/auth/cert", &json!({"type": "cert"}))
        .await
        .unwrap();
    admin
        .write(
            "sys/policies/acl/app-read",
            &json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }"}),
        )
        .await
        .unwrap();
    admin
        .write(
            "auth/cert/certs/payments",
            &json!({"certificate": pki_root, "allowed_uri_sans": "spiffe://prod/ns/payments/sa/*",
                    "token_policies": "app-read", "token_ttl": "3s", "token_max_ttl": "1h"}),
        )
        .await
        .unwrap();
    admin
        .kv_put("secret", "app/db", &json!({"password": "expected"}), None)
        .await
        .unwrap();

    // The services listener now trusts the PKI root.
    std::fs::write(&clients_ca, &pki_root).unwrap();
    s.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The service: configured from the environment, cert login, read, keep alive.
    let service_env = env(&[
        ("COFFER_ADDR", services.clone()),
        ("COFFER_CACERT", trust.display().to_string()),
        ("COFFER_CLIENT_CERT", cert_file.display().to_string()),
        ("COFFER_CLIENT_KEY", key_file.display().to_string()),
    ]);
    let service = Client::from_env_with(&service_env).unwrap();
    let auth = service.login_cert("cert", Some("payments")).await.unwrap();
    assert!(auth.policies.contains(&"app-read".to_string()), "{auth:?}");
    let secret = service
        .kv_get("secret", "app/db", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.data.as_ref().unwrap()["password"], "expected");
    let mut renewer = service
        .keep_alive_with(RenewerOptions {
            min_wait: Duration::from_millis(200),
            retry_wait: Duration::from_millis(500),
            ..RenewerOptions::default()
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(service
        .kv_get("secret", "app/db", None)
        .await
        .unwrap()
        .is_some());
    let events: Vec<RenewEvent> = std::iter::from_fn(|| renewer.try_next_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RenewEvent::TokenRenewed { .. })),
        "{events:?}"
    );
    drop(renewer);

    // The same service started by `coffer run --auth cert`.
    let out = std::process::Command::new(coffer_tests::binary("coffer"))
        .args([
            "run",
            "--auth",
            "cert",
            "--name",
            "payments",
            "-v",
            "--secret",
            "secret/app/db",
            "--",
            "sh",
            "-c",
            r#"test "$PASSWORD" = expected"#,
        ])
        .env("COFFER_ADDR", &services)
        .env("COFFER_CACERT", &trust)
        .env("COFFER_CLIENT_CERT", &cert_file)
        .env("COFFER_CLIENT_KEY", &key_file)
        .env("COFFER_TOKEN_FILE", dir.path().join("none"))
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env_remove("COFFER_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("client certificate") && !stderr.contains("expected"),
        "{stderr}"
    );

    // The same token from a connection with another certificate: 403, with why.
    let token = service.token().unwrap();
    let other = tls_ca.client(ClientSpec::cn("intruder"));
    let thief = Client::builder(&people)
        .ca_cert_pem(tls_ca.pem.as_bytes())
        .client_identity_pem(other.pem.as_bytes(), other.key_pem.as_bytes())
        .token(token.clone())
        .build()
        .unwrap();
    let err = thief.kv_get("secret", "app/db", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    let no_cert = Client::builder(&people)
        .ca_cert_pem(tls_ca.pem.as_bytes())
        .token(token)
        .build()
        .unwrap();
    let err = no_cert.kv_get("secret", "app/db", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    // TLS refusals at the services listener, typed.
    let bare = Client::builder(&services)
        .ca_cert_pem(tls_ca.pem.as_bytes())
        .build()
        .unwrap();
    let err = bare.health().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::CertificateRequired),
        "{err}"
    );
    let stranger = TestCa::new("somebody else").client(ClientSpec::cn("api"));
    let c = Client::builder(&services)
        .ca_cert_pem(tls_ca.pem.as_bytes())
        .client_identity_pem(stranger.pem.as_bytes(), stranger.key_pem.as_bytes())
        .build()
        .unwrap();
    let err = c.health().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::ClientCertificateRejected),
        "{err}"
    );

    // Revoke the certificate, give auth/cert the new CRL: login fails.
    admin
        .write(
            "pki/revoke",
            &json!({"serial_number": issued.serial_number}),
        )
        .await
        .unwrap();
    let (status, crl) = s.call("GET", "pki/crl/pem", None, None).await;
    assert_eq!(status, 200);
    let crl = crl.as_str().unwrap().to_owned();
    admin
        .write("auth/cert/crls/pki", &json!({"crl": crl}))
        .await
        .unwrap();
    let err = service
        .login_cert("cert", Some("payments"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::PermissionDenied | ErrorKind::InvalidRequest
        ),
        "{err}"
    );
    assert!(err.to_string().contains("revoked"), "{err}");
}

#[tokio::test]
async fn service_journey_through_the_client_library_sqlite() {
    journey(Backend::Sqlite).await;
}
