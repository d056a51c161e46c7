//! The client's TLS identity against a local rustls server that requires a client
//! certificate from one CA: the certificate is presented (the server sees it), and
//! each refusal comes back as the [`TlsFailure`] that names it (none presented, one
//! from another CA, expired, server certificate from an unknown CA).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use coffer_client::error::TlsFailure;
use coffer_client::{Client, ErrorKind};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (cert PEM, key PEM) for `name`, valid from `not_after_days_ago` before now.
    fn leaf(&self, name: &str, client: bool, expired: bool) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 2, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A TLS server on a thread: requires a client certificate issued by `client_ca`,
/// answers each request with `{"peer_certificates": N}` (N as the handshake saw it).
fn serve(server_ca: &Ca, client_ca: &Ca) -> String {
    serve_versions(server_ca, client_ca, rustls::DEFAULT_VERSIONS, false)
}

/// As [`serve`], speaking only the given TLS versions.
fn serve_versions(
    server_ca: &Ca,
    client_ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    handshake_first: bool,
) -> String {
    let (cert, key) = server_ca.leaf("localhost", false, false);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refusals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { return };
            let config = config.clone();
            let refusals = refusals.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                if handshake_first {
                    // As cofferd's listener does: the handshake before any request is
                    // read. Every other refusal is a close without the alert (as when
                    // the reset of an unread request overtakes it).
                    loop {
                        while tls.conn.wants_write() {
                            if tls.conn.write_tls(&mut tls.sock).is_err() {
                                return;
                            }
                        }
                        if !tls.conn.is_handshaking() {
                            break;
                        }
                        if tls.conn.read_tls(&mut tls.sock).map_or(true, |n| n == 0) {
                            return;
                        }
                        if tls.conn.process_new_packets().is_err() {
                            let n = refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            if n % 2 == 1 {
                                let _ = tls.conn.write_tls(&mut tls.sock);
                            }
                            return;
                        }
                    }
                }
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let peers = tls.conn.peer_certificates().map_or(0, <[_]>::len);
                let body = format!("{{\"data\": {{\"peer_certificates\": {peers}}}}}");
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn the_client_certificate_is_presented_and_refusals_are_named() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let addr = serve(&server_ca, &client_ca);
    let (cert, key) = client_ca.leaf("api.svc.internal", true, false);

    // With the identity: the server saw one certificate.
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    let answer = c.read("sys/whoami").await.unwrap().unwrap();
    assert_eq!(answer.data_field("peer_certificates"), Some(&1.into()));

    // Through reqwest's own TLS setup (no CA given, verification off for the test).
    let c = Client::builder(&addr)
        .danger_accept_invalid_certs(true)
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    let answer = c.read("sys/whoami").await.unwrap().unwrap();
    assert_eq!(answer.data_field("peer_certificates"), Some(&1.into()));

    // The same after adding the identity to a client built without one.
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::CertificateRequired),
        "{err}"
    );
    assert!(err.to_string().contains("COFFER_CLIENT_CERT"), "{err}");
    let c = c
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .unwrap();
    assert!(c.read("sys/whoami").await.unwrap().is_some());

    // A certificate from a CA the server does not trust.
    let stranger = Ca::new("stranger CA");
    let (bad_cert, bad_key) = stranger.leaf("api.svc.internal", true, false);
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(bad_cert.as_bytes(), bad_key.as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::ClientCertificateRejected),
        "{err}"
    );
    assert!(
        err.to_string().contains("refused the client certificate"),
        "{err}"
    );

    // An expired certificate from the right CA.
    let (old_cert, old_key) = client_ca.leaf("api.svc.internal", true, true);
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(old_cert.as_bytes(), old_key.as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::ClientCertificateRejected),
        "{err}"
    );
    assert!(err.to_string().contains("expired"), "{err}");

    // The server's certificate from a CA this client does not trust.
    let c = Client::builder(&addr)
        .ca_cert_pem(stranger.pem().as_bytes())
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::UnknownServerCa),
        "{err}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_build() {
    let ca = Ca::new("client CA");
    let (cert, _) = ca.leaf("a", true, false);
    let (_, other_key) = ca.leaf("b", true, false);
    let err = Client::builder("https://localhost:1")
        .ca_cert_pem(ca.pem().as_bytes())
        .client_identity_pem(cert.as_bytes(), other_key.as_bytes())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("does not belong"), "{err}");
    // Also without a CA (reqwest's own TLS setup).
    let err = Client::builder("https://localhost:1")
        .client_identity_pem(cert.as_bytes(), other_key.as_bytes())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[tokio::test]
async fn tls12_refusals_are_named_too() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let addr = serve_versions(&server_ca, &client_ca, &[&rustls::version::TLS12], false);
    let (cert, key) = client_ca.leaf("api.svc.internal", true, false);
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    let answer = c.read("sys/whoami").await.unwrap().unwrap();
    assert_eq!(answer.data_field("peer_certificates"), Some(&1.into()));
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::CertificateRequired),
        "{err}"
    );
    let stranger = Ca::new("stranger CA");
    let (bad_cert, bad_key) = stranger.leaf("api.svc.internal", true, false);
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(bad_cert.as_bytes(), bad_key.as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::ClientCertificateRejected),
        "{err}"
    );
}

#[tokio::test]
async fn a_refusal_lost_in_a_reset_is_found_by_a_handshake_of_its_own() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let addr = serve_versions(&server_ca, &client_ca, rustls::DEFAULT_VERSIONS, true);
    let (cert, key) = client_ca.leaf("api.svc.internal", true, false);
    let good = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(cert.as_bytes(), key.as_bytes())
        .build()
        .unwrap();
    assert!(good.read("sys/whoami").await.unwrap().is_some());
    let bare = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .build()
        .unwrap();
    for _ in 0..5 {
        let err = bare.read("sys/whoami").await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Tls(TlsFailure::CertificateRequired),
            "{err}"
        );
    }
    let stranger = Ca::new("stranger CA");
    let (bad_cert, bad_key) = stranger.leaf("api.svc.internal", true, false);
    let c = Client::builder(&addr)
        .ca_cert_pem(server_ca.pem().as_bytes())
        .client_identity_pem(bad_cert.as_bytes(), bad_key.as_bytes())
        .build()
        .unwrap();
    let err = c.read("sys/whoami").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Tls(TlsFailure::ClientCertificateRejected),
        "{err}"
    );
}
