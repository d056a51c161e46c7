//! TLS listeners with client certificates, `auth/cert` and certificate-bound
//! tokens, through the real server: a `require` listener refuses clients
//! without a good certificate at the handshake, a `request` listener lets
//! anyone in, bad TLS files stop the server at start with one clear line, and
//! a token from `auth/cert` only works with the certificate it was issued to.

use coffer_tests::tls::{
    call_with, handshake, handshake_tls12, https_client, listener_table, ClientSpec, TestCa,
};
use coffer_tests::{Backend, Options, TestServer};
use serde_json::json;

/// A server with a `request` listener (no CA file; the harness's) and a
/// `require` listener (CA file `ca`), both serving a certificate of `ca`.
struct Mtls {
    server: TestServer,
    ca: TestCa,
    request_url: String,
    require_url: String,
    /// the listeners' files (read again on SIGHUP)
    dir: tempfile::TempDir,
}

async fn start(backend: Backend) -> Option<Mtls> {
    let ca = TestCa::new("coffer test CA");
    let dir = tempfile::tempdir().unwrap();
    let server_leaf = ca.server();
    let ca_file = ca.write(dir.path(), "clients-ca.pem");
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
            &format!("client_auth = \"require\"\ntls_client_ca_file = {ca_file:?}"),
        ),
    );
    let server = TestServer::start_with(
        backend,
        Options {
            listeners: Some(listeners),
            trust_ca_pem: Some(ca.pem.clone()),
            ..Options::default()
        },
    )
    .await?;
    let urls = server.listener_urls(2);
    Some(Mtls {
        request_url: urls[0].clone(),
        require_url: urls[1].clone(),
        server,
        ca,
        dir,
    })
}

async fn health(client: &reqwest::Client, base: &str) -> Result<u16, String> {
    call_with(client, base, "GET", "sys/health", None, None)
        .await
        .map(|(status, _)| status)
}

#[tokio::test]
async fn a_require_listener_refuses_missing_unknown_and_expired_certificates() {
    let Some(m) = start(Backend::Sqlite).await else {
        return;
    };
    assert!(m.request_url.starts_with("https://"), "{}", m.request_url);
    let good = m.ca.client(ClientSpec::cn("api"));
    let stranger = TestCa::new("somebody else").client(ClientSpec::cn("api"));
    let expired = m.ca.client(ClientSpec {
        years: Some((2020, 2021)),
        ..ClientSpec::cn("api")
    });

    // Sealed and uninitialised: sys/health answers 501, which is an answer.
    let ok = health(&https_client(&m.ca, Some(&good)), &m.require_url).await;
    assert_eq!(ok, Ok(501));

    // An HTTP client sees a closed connection; the TLS layer says why.
    for (leaf, what, alert) in [
        (None, "no certificate", "CertificateRequired"),
        (Some(&stranger), "an unknown CA's certificate", "UnknownCA"),
        (
            Some(&expired),
            "an expired certificate",
            "CertificateExpired",
        ),
    ] {
        assert!(
            health(&https_client(&m.ca, leaf), &m.require_url)
                .await
                .is_err(),
            "{what}: refused"
        );
        let e = handshake(&m.require_url, &m.ca, leaf)
            .await
            .expect_err(what);
        assert!(
            e.contains(&format!("received fatal alert: {alert}")),
            "{what}: the client's error says why: {e}"
        );
    }
    let line = handshake(&m.require_url, &m.ca, Some(&good)).await;
    assert_eq!(line.as_deref(), Ok("HTTP/1.1 501 Not Implemented"));

    // The request listener lets all of them in.
    for (leaf, what) in [
        (None, "no certificate"),
        (Some(&good), "a good certificate"),
        (Some(&stranger), "an unknown CA's certificate"),
        (Some(&expired), "an expired certificate"),
    ] {
        let status = health(&https_client(&m.ca, leaf), &m.request_url).await;
        assert_eq!(status, Ok(501), "request listener, {what}");
    }
    // TLS 1.2 too: the key-possession check of the request listener verifies
    // a 1.2 handshake signature, and the require listener still refuses.
    let ok = "HTTP/1.1 501 Not Implemented";
    assert_eq!(
        handshake_tls12(&m.request_url, &m.ca, Some(&stranger))
            .await
            .as_deref(),
        Ok(ok)
    );
    assert_eq!(
        handshake_tls12(&m.require_url, &m.ca, Some(&good))
            .await
            .as_deref(),
        Ok(ok)
    );
    let e = handshake_tls12(&m.require_url, &m.ca, Some(&stranger))
        .await
        .unwrap_err();
    assert!(e.contains("UnknownCA"), "{e}");
    // And the harness's own client (no certificate) talks to the first one.
    let (status, _) = m.server.call("GET", "sys/health", None, None).await;
    assert_eq!(status, 501);
}

fn fails_with(listener: String, expect: &str) {
    let (status, output) = TestServer::start_failing(Options {
        listeners: Some(listener),
        ..Options::default()
    });
    assert!(!status.success(), "{output}");
    let line = output
        .lines()
        .find(|l| l.contains(expect))
        .unwrap_or_else(|| panic!("no line says {expect:?}:\n{output}"));
    assert!(line.len() < 400, "one line: {line}");
    assert!(!output.contains("PRIVATE KEY"), "{output}");
}

#[test]
fn bad_tls_files_stop_the_server_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("ca");
    let (cert, key) = ca.server().write(dir.path(), "server");
    let (_, other_key) = ca.server().write(dir.path(), "other");
    let (old_cert, old_key) = ca
        .client(ClientSpec {
            years: Some((2020, 2021)),
            ..ClientSpec::cn("localhost")
        })
        .write(dir.path(), "old");
    let table = |cert: &std::path::Path, key: &std::path::Path, extra: &str| {
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n{extra}\n"
        )
    };
    let missing = dir.path().join("missing.pem");
    fails_with(
        table(&missing, &key, ""),
        "missing.pem: No such file or directory",
    );
    fails_with(
        table(&cert, &other_key, ""),
        "other-key.pem: the private key does not match the certificate in",
    );
    fails_with(
        table(&old_cert, &old_key, ""),
        "old.pem: the server certificate expired at 2021-01-01",
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    fails_with(
        table(
            &cert,
            &key,
            &format!("client_auth = \"require\"\ntls_client_ca_file = {garbage:?}"),
        ),
        "garbage.pem: no certificate found",
    );
    fails_with(
        table(&cert, &key, "client_auth = \"require\""),
        "client_auth = \"require\" needs tls_client_ca_file",
    );
}

#[tokio::test]
async fn listeners_with_different_modes_serve_one_core() {
    let Some(m) = start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = m.server.ready().await;
    let service = https_client(&m.ca, Some(&m.ca.client(ClientSpec::cn("svc"))));
    // A secret written through the people listener is read on the service one.
    let (status, _) = m
        .server
        .call(
            "POST",
            "secret/data/app",
            Some(&root),
            Some(json!({"data": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = call_with(
        &service,
        &m.require_url,
        "GET",
        "secret/data/app",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["k"], "v");
}

/// Root's answer, asserting its status.
async fn root_call(
    s: &TestServer,
    root: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
    expect: u16,
) -> serde_json::Value {
    let (status, resp) = s.call(method, path, Some(root), Some(body)).await;
    assert_eq!(status, expect, "{method} {path}: {resp}");
    resp
}

async fn cert_login_and_bound_tokens(backend: Backend) {
    let Some(m) = start(backend).await else {
        return;
    };
    let s = &m.server;
    let (_, root) = s.ready().await;
    root_call(
        s,
        &root,
        "POST",
        "sys/auth/cert",
        json!({"type": "cert"}),
        204,
    )
    .await;
    let policy = r#"
path "secret/data/app" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
"#;
    root_call(
        s,
        &root,
        "PUT",
        "sys/policies/acl/app-read",
        json!({"policy": policy}),
        204,
    )
    .await;
    root_call(
        s,
        &root,
        "POST",
        "secret/data/app",
        json!({"data": {"password": "expected"}}),
        200,
    )
    .await;
    root_call(
        s,
        &root,
        "POST",
        "auth/cert/certs/Payments",
        json!({
            "certificate": m.ca.pem,
            "allowed_uri_sans": ["spiffe://prod/ns/payments/sa/*"],
            "allowed_dns_sans": "*.svc.internal",
            "token_policies": "app-read",
            "token_ttl": "10m",
            "token_max_ttl": "1h",
        }),
        204,
    )
    .await;
    let role = root_call(s, &root, "GET", "auth/cert/certs/payments", json!({}), 200).await;
    assert_eq!(
        role["data"]["allowed_uri_sans"],
        json!(["spiffe://prod/ns/payments/sa/*"])
    );
    assert_eq!(role["data"]["token_policies"], json!(["app-read"]));
    assert_eq!(role["data"]["token_ttl"], 600);
    assert_eq!(role["data"]["display_name"], "payments");
    let (status, list) = s.call("LIST", "auth/cert/certs", Some(&root), None).await;
    assert_eq!((status, &list["data"]["keys"]), (200, &json!(["payments"])));

    let spec = |uri: &str| ClientSpec {
        cn: "api".into(),
        dns: vec!["api.payments.svc.internal".into()],
        uris: vec![uri.into()],
        ..ClientSpec::default()
    };
    let api = m.ca.client(spec("spiffe://prod/ns/payments/sa/api"));
    let api_client = https_client(&m.ca, Some(&api));
    let login = |client: reqwest::Client, base: String| async move {
        call_with(
            &client,
            &base,
            "POST",
            "auth/cert/login",
            None,
            Some(json!({})),
        )
        .await
        .unwrap()
    };

    // Log in over the service listener; read the secret with the token.
    let (status, body) = login(api_client.clone(), m.require_url.clone()).await;
    assert_eq!(status, 200, "{body}");
    let auth = &body["auth"];
    assert_eq!(auth["policies"], json!(["app-read", "default"]));
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!(auth["metadata"]["cert_name"], "payments");
    assert_eq!(auth["metadata"]["common_name"], "api");
    assert_eq!(auth["metadata"]["serial_number"], api.serial.to_string());
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let (status, secret) = call_with(
        &api_client,
        &m.require_url,
        "GET",
        "secret/data/app",
        Some(&token),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["data"]["data"]["password"], "expected");
    // The same certificate over the other listener works too.
    let (status, me) = call_with(
        &api_client,
        &m.request_url,
        "GET",
        "auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["bound_cert_sha256"], api.sha256_hex());
    assert_eq!(me["data"]["path"], "auth/cert/login");
    assert_eq!(me["data"]["display_name"], "cert-payments");

    // Stolen: from a connection without the certificate, or with another.
    let refused = |(status, body): (u16, serde_json::Value), what: &str| {
        assert_eq!(status, 403, "{what}: {body}");
        let e = body["errors"][0].as_str().unwrap();
        assert!(e.starts_with("permission denied"), "{what}: {e}");
        assert!(e.contains("bound to a client certificate"), "{what}: {e}");
        assert!(!e.contains(&token), "{e}");
    };
    refused(
        s.call("GET", "secret/data/app", Some(&token), None).await,
        "no certificate",
    );
    let other = https_client(
        &m.ca,
        Some(&m.ca.client(spec("spiffe://prod/ns/payments/sa/api"))),
    );
    for base in [&m.request_url, &m.require_url] {
        let answer = call_with(&other, base, "GET", "secret/data/app", Some(&token), None)
            .await
            .unwrap();
        refused(answer, "another certificate with the same names");
    }
    // A write with a body is refused too (the body is not even read).
    let answer = call_with(
        &other,
        &m.require_url,
        "POST",
        "auth/token/create",
        Some(&token),
        Some(json!({"policies": ["app-read"]})),
    )
    .await
    .unwrap();
    refused(answer, "a write");

    // A child token carries the binding.
    let (status, child) = call_with(
        &api_client,
        &m.require_url,
        "POST",
        "auth/token/create",
        Some(&token),
        Some(json!({"policies": ["app-read"]})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{child}");
    let child = child["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, me) = call_with(
        &api_client,
        &m.require_url,
        "GET",
        "auth/token/lookup-self",
        Some(&child),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["bound_cert_sha256"], api.sha256_hex());
    refused(
        s.call("GET", "auth/token/lookup-self", Some(&child), None)
            .await,
        "child",
    );
    // Root sees the binding by accessor too; an ordinary token has none.
    let accessor = auth["accessor"].as_str().unwrap();
    let looked = root_call(
        s,
        &root,
        "POST",
        "auth/token/lookup-accessor",
        json!({"accessor": accessor}),
        200,
    )
    .await;
    assert_eq!(looked["data"]["bound_cert_sha256"], api.sha256_hex());
    let mine = root_call(s, &root, "GET", "auth/token/lookup-self", json!({}), 200).await;
    assert!(mine["data"].get("bound_cert_sha256").is_none(), "{mine}");

    // Refused logins say which check failed (400, as OpenBao).
    let login_refused = |(status, body): (u16, serde_json::Value), expect: &str| {
        assert_eq!(status, 400, "{expect}: {body}");
        let e = body["errors"][0].as_str().unwrap();
        assert!(e.contains(expect), "{expect}: {e}");
    };
    login_refused(
        s.call("POST", "auth/cert/login", None, Some(json!({})))
            .await,
        "client certificate must be supplied",
    );
    let stranger = TestCa::new("stranger").client(spec("spiffe://prod/ns/payments/sa/api"));
    let expired = m.ca.client(ClientSpec {
        years: Some((2020, 2021)),
        ..spec("spiffe://prod/ns/payments/sa/api")
    });
    let early = m.ca.client(ClientSpec {
        years: Some((2090, 2091)),
        ..spec("spiffe://prod/ns/payments/sa/api")
    });
    let billing = m.ca.client(spec("spiffe://prod/ns/billing/sa/api"));
    for (leaf, expect) in [
        (
            &stranger,
            "does not chain to a trusted certificate (unknown issuer)",
        ),
        (&expired, "the client certificate expired at 2021-01-01"),
        (
            &early,
            "the client certificate is not valid before 2090-01-01",
        ),
        (&billing, "does not match the URI SANs allowed"),
    ] {
        login_refused(
            login(https_client(&m.ca, Some(leaf)), m.request_url.clone()).await,
            expect,
        );
    }
    let (status, body) = call_with(
        &api_client,
        &m.require_url,
        "POST",
        "auth/cert/login",
        None,
        Some(json!({"name": "nobody"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0]
        .as_str()
        .unwrap()
        .contains("no trusted certificate"));
    let (status, body) = call_with(
        &api_client,
        &m.require_url,
        "POST",
        "auth/cert/login",
        None,
        Some(json!({"name": "PAYMENTS"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "by name: {body}");

    // Revoke the certificate with a CRL of its CA: its login fails, others pass.
    root_call(
        s,
        &root,
        "POST",
        "auth/cert/crls/test-ca",
        json!({"crl": m.ca.crl(&[&api])}),
        204,
    )
    .await;
    let crl = root_call(s, &root, "GET", "auth/cert/crls/test-ca", json!({}), 200).await;
    assert_eq!(
        crl["data"]["serials"],
        json!({ api.serial.to_string(): {} })
    );
    login_refused(
        login(api_client.clone(), m.require_url.clone()).await,
        "revoked",
    );
    let fresh = m.ca.client(spec("spiffe://prod/ns/payments/sa/web"));
    let (status, _) = login(https_client(&m.ca, Some(&fresh)), m.require_url.clone()).await;
    assert_eq!(status, 200);
    root_call(s, &root, "DELETE", "auth/cert/crls/test-ca", json!({}), 204).await;
    let (status, _) = login(api_client.clone(), m.require_url.clone()).await;
    assert_eq!(status, 200, "the CRL is gone");

    // Bad configuration is refused with the field named.
    let (status, body) = s
        .call(
            "POST",
            "auth/cert/certs/bad",
            Some(&root),
            Some(json!({"certificate": "nope"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("'certificate'"),
        "{body}"
    );
    let (status, _) = s
        .call(
            "POST",
            "auth/cert/crls/bad",
            Some(&root),
            Some(json!({"crl": "nope"})),
        )
        .await;
    assert_eq!(status, 400);
    root_call(
        s,
        &root,
        "DELETE",
        "auth/cert/certs/payments",
        json!({}),
        204,
    )
    .await;
    login_refused(
        login(api_client, m.require_url.clone()).await,
        "no trusted certificate",
    );
    // The token issued earlier is still bound (and works with its certificate).
    assert!(!s.log().contains(&token), "a token reached the log");
}

#[tokio::test]
async fn cert_login_and_bound_tokens_sqlite() {
    cert_login_and_bound_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn cert_login_and_bound_tokens_postgres() {
    cert_login_and_bound_tokens(Backend::Postgres).await;
}

/// Waits until the server's log has `n` lines containing `needle`.
fn wait_for_log(s: &TestServer, needle: &str, n: usize) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = s.log();
        if log.matches(needle).count() >= n {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_client_ca_and_keeps_open_connections() {
    let Some(m) = start(Backend::Sqlite).await else {
        return;
    };
    let old_leaf = m.ca.client(ClientSpec::cn("old"));
    let open = https_client(&m.ca, Some(&old_leaf));
    assert_eq!(health(&open, &m.require_url).await, Ok(501));

    // The service listener now trusts another CA only.
    let new_ca = TestCa::new("rotated clients CA");
    let ca_file = m.dir.path().join("clients-ca.pem");
    std::fs::write(&ca_file, &new_ca.pem).unwrap();
    m.server.signal("HUP");
    wait_for_log(&m.server, "TLS certificates reloaded", 2);
    let new_leaf = new_ca.client(ClientSpec::cn("new"));
    assert_eq!(
        handshake(&m.require_url, &m.ca, Some(&new_leaf))
            .await
            .as_deref(),
        Ok("HTTP/1.1 501 Not Implemented"),
        "the new CA's certificates are accepted"
    );
    let e = handshake(&m.require_url, &m.ca, Some(&old_leaf))
        .await
        .expect_err("a new connection with the old CA's certificate");
    assert!(e.contains("UnknownCA"), "{e}");
    // The connection opened before the reload is still served.
    assert_eq!(health(&open, &m.require_url).await, Ok(501));

    // A broken file: the listener keeps what it had, and the log says why.
    std::fs::write(&ca_file, "garbage").unwrap();
    m.server.signal("HUP");
    let log = wait_for_log(&m.server, "TLS reload failed", 1);
    let line = log
        .lines()
        .find(|l| l.contains("TLS reload failed"))
        .unwrap();
    assert!(
        line.contains("clients-ca.pem: no certificate found"),
        "{line}"
    );
    assert_eq!(
        handshake(&m.require_url, &m.ca, Some(&new_leaf))
            .await
            .as_deref(),
        Ok("HTTP/1.1 501 Not Implemented"),
        "the previous configuration is kept"
    );
    assert_eq!(health(&open, &m.require_url).await, Ok(501));
}

#[tokio::test]
async fn a_listener_without_client_auth_carries_no_certificate() {
    let Some(s) = TestServer::start_with(
        Backend::Sqlite,
        Options {
            tls: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, root) = s.ready().await;
    let ca = TestCa::new("clients");
    root_call(
        &s,
        &root,
        "POST",
        "sys/auth/cert",
        json!({"type": "cert"}),
        204,
    )
    .await;
    root_call(
        &s,
        &root,
        "POST",
        "auth/cert/certs/any",
        json!({"certificate": ca.pem}),
        204,
    )
    .await;
    // The client has a good certificate, but a "none" listener never asks for it.
    let server_pem = std::fs::read(s.dir().join("cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&server_pem).unwrap())
        .identity(ca.client(ClientSpec::cn("api")).identity())
        .build()
        .unwrap();
    let (status, body) = call_with(
        &client,
        &s.addr,
        "POST",
        "auth/cert/login",
        None,
        Some(json!({})),
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("client certificate must be supplied"),
        "{body}"
    );
}
