//! TLS listeners with client certificates, `auth/cert` and certificate-bound
//! tokens, through the real server: a `require` listener refuses clients
//! without a good certificate at the handshake, a `request` listener lets
//! anyone in, bad TLS files stop the server at start with one clear line, and
//! a token from `auth/cert` only works with the certificate it was issued to.

use coffer_tests::tls::{call_with, handshake, https_client, listener_table, ClientSpec, TestCa};
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
    #[allow(dead_code)]
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
