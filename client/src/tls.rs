//! TLS for the client: the rustls configuration used when CA certificates are given
//! (`VAULT_CACERT`, `VAULT_CAPATH`), the client identity for mTLS (certificate chain +
//! private key, checked to belong together), and the classification and sentences that
//! explain a failed handshake.
//!
//! A certificate made with a plain `openssl req -x509` is self-signed and marked as a CA
//! (`basicConstraints CA:TRUE`). webpki refuses such a certificate as a server's own
//! (`CaUsedAsEndEntity`), while Go (`bao`) and OpenSSL (`curl`) accept it when it is
//! itself the trusted certificate. [`PinnedOrCaVerifier`] does the same: the usual chain
//! check first; a server certificate that is byte-for-byte one of the trusted
//! certificates is accepted when only its CA flag stood in the way, and its name is still
//! checked. Nothing else is relaxed: any other certificate must chain to a trusted CA.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{ClientError, TlsFailure};

/// A client certificate chain and its private key, parsed and checked.
pub(crate) type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Parse a client certificate chain and key (PEM) and check that the key is the
/// certificate's. Errors say which of the two is wrong, never what is in them.
pub(crate) fn client_identity(cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity, ClientError> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(cert_pem) {
        certs.push(cert.map_err(|_| {
            ClientError::Tls(
                "the client certificate is not a readable PEM certificate: give the \
                 certificate in PEM form (-----BEGIN CERTIFICATE-----)"
                    .into(),
            )
        })?);
    }
    if certs.is_empty() {
        return Err(ClientError::Tls(
            "no PEM certificate found in the client certificate: give the certificate in \
             PEM form (-----BEGIN CERTIFICATE-----)"
                .into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        ClientError::Tls(
            "no usable private key found in the client key: give the key in PEM form \
             (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
                .into(),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => ClientError::Tls(
            "the client key does not belong to the client certificate: give the key the \
             certificate was issued for"
                .into(),
        ),
        _ => ClientError::Tls(
            "the client key cannot be used (unsupported key type or damaged key)".into(),
        ),
    })?;
    Ok((certs, key))
}

/// The certificates of a PEM bundle; an error names what to fix.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        certs.push(cert.map_err(|e| {
            ClientError::Tls(format!(
                "the CA file is not a readable PEM certificate bundle ({e}): give the CA \
                 certificate in PEM form (-----BEGIN CERTIFICATE-----)"
            ))
        })?);
    }
    if certs.is_empty() {
        return Err(ClientError::Tls(
            "no PEM certificate found in the CA file: give the CA certificate in PEM form \
             (-----BEGIN CERTIFICATE-----)"
                .into(),
        ));
    }
    Ok(certs)
}

/// A rustls client configuration trusting only the certificates in `pem`, presenting
/// `identity` when the server asks for a client certificate.
pub(crate) fn client_config(
    pem: &[u8],
    identity: Option<Identity>,
) -> Result<rustls::ClientConfig, ClientError> {
    let certs = certificates(pem)?;
    let mut roots = RootCertStore::empty();
    for cert in &certs {
        roots.add(cert.clone()).map_err(|e| {
            ClientError::Tls(format!(
                "a certificate in the CA file cannot be used as a trust anchor ({e}): check \
                 that the file holds the CA certificate"
            ))
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ClientError::Tls(format!("cannot use the CA certificates: {e}")))?;
    let verifier = Arc::new(PinnedOrCaVerifier {
        inner,
        trusted: certs,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|_| {
            ClientError::Tls("the client certificate and key cannot be used".into())
        })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The usual webpki chain check, plus: a server certificate that is itself one of the
/// trusted certificates passes even though it is marked as a CA (see the module doc).
#[derive(Debug)]
struct PinnedOrCaVerifier {
    inner: Arc<WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

/// Whether rustls refused a certificate only because it is a CA used as a server's own.
fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other
            .0
            .downcast_ref::<webpki::Error>()
            .is_some_and(|e| *e == webpki::Error::CaUsedAsEndEntity),
        _ => false,
    }
}

impl ServerCertVerifier for PinnedOrCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .trusted
                        .iter()
                        .any(|t| t.as_ref() == end_entity.as_ref()) =>
            {
                // webpki checks the validity period before the CA flag, so reaching
                // CaUsedAsEndEntity means the certificate is within its dates; the name
                // is checked here as Go and OpenSSL do.
                let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
                    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                })?;
                cert.verify_is_valid_for_subject_name(server_name)
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
                    })?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connect to `host:port`, complete a TLS handshake with `config` and wait briefly for
/// the server's first record, sending nothing: a server that refuses the client's
/// certificate answers with an alert, returned here. `None` when the handshake and
/// the wait pass without one (or the server cannot be reached at all).
pub(crate) async fn probe_alert(
    config: Arc<rustls::ClientConfig>,
    host: String,
    port: u16,
) -> Option<rustls::Error> {
    tokio::task::spawn_blocking(move || probe_alert_blocking(config, &host, port))
        .await
        .ok()
        .flatten()
}

fn probe_alert_blocking(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> Option<rustls::Error> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    use std::time::Duration;
    let wait = Duration::from_millis(1500);
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let tcp = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    tcp.set_read_timeout(Some(wait)).ok()?;
    tcp.set_write_timeout(Some(wait)).ok()?;
    let name = ServerName::try_from(host.to_string()).ok()?;
    let conn = rustls::ClientConnection::new(config, name).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf = [0u8; 1];
    // The handshake, then the first record after it (or the handshake's own error).
    let outcome = tls.read(&mut buf);
    let found = match outcome {
        Err(e) => rustls_error(&e).cloned(),
        Ok(_) => None,
    };
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    found
}

/// The rustls error somewhere in an error's chain (rustls errors reach reqwest wrapped
/// in `io::Error`, whose `source()` skips the wrapped error itself).
pub(crate) fn rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        // hyper wraps the handshake's io::Error in another io::Error.
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(std::io::Error::get_ref) {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        current = e.source();
    }
    None
}

/// What kind of handshake failure `err` is. `identity_given`: whether this client
/// presents a certificate.
pub(crate) fn classify(err: &rustls::Error, identity_given: bool) -> TlsFailure {
    use AlertDescription as A;
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            TlsFailure::UnknownServerCa
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TlsFailure::ServerNameMismatch,
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => TlsFailure::ServerCertificateExpired,
        rustls::Error::InvalidCertificate(_) if is_ca_used_as_end_entity(err) => {
            TlsFailure::UnknownServerCa
        }
        rustls::Error::InvalidCertificate(_) => TlsFailure::ServerCertificateInvalid,
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            TlsFailure::NotTls
        }
        rustls::Error::AlertReceived(A::CertificateRequired) => TlsFailure::CertificateRequired,
        rustls::Error::AlertReceived(
            A::BadCertificate | A::CertificateUnknown | A::HandshakeFailure,
        ) if !identity_given => TlsFailure::CertificateRequired,
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::DecryptError,
        ) if identity_given => TlsFailure::ClientCertificateRejected,
        _ => TlsFailure::Other,
    }
}

/// A sentence saying what went wrong in the handshake with `host` and what to change.
/// `ca_given`: whether the user configured CA certificates; `identity_given`: whether a
/// client certificate was presented.
pub(crate) fn explain(
    err: &rustls::Error,
    host: &str,
    ca_given: bool,
    identity_given: bool,
) -> String {
    match classify(err, identity_given) {
        TlsFailure::CertificateRequired => {
            return format!(
                "the server {host} requires a client certificate and none was presented: \
                 give one with COFFER_CLIENT_CERT and COFFER_CLIENT_KEY (VAULT_CLIENT_CERT / \
                 VAULT_CLIENT_KEY)"
            )
        }
        TlsFailure::ClientCertificateRejected => {
            let reason = match err {
                rustls::Error::AlertReceived(AlertDescription::CertificateExpired) => {
                    " (it has expired)"
                }
                rustls::Error::AlertReceived(AlertDescription::CertificateRevoked) => {
                    " (it is revoked)"
                }
                rustls::Error::AlertReceived(AlertDescription::UnknownCA) => {
                    " (it is not signed by a CA the server trusts)"
                }
                _ => "",
            };
            return format!(
                "the server {host} refused the client certificate{reason}: present a \
                 certificate issued by a CA in the listener's tls_client_ca_file, within its \
                 validity dates"
            );
        }
        _ => {}
    }
    let trust = if ca_given {
        "the CA certificate given (VAULT_CACERT / -ca-cert, or VAULT_CAPATH / -ca-path) did \
         not issue it: give the CA that signed the server's certificate (openssl s_client \
         -connect HOST:PORT -showcerts shows who did)"
    } else {
        "give the CA certificate (or the server's self-signed certificate) with \
         VAULT_CACERT=FILE or -ca-cert=FILE, or a directory of them with VAULT_CAPATH"
    };
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the TLS certificate of {host} is not signed by a CA this client trusts: {trust}"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                let names = match cert {
                    CertificateError::NotValidForNameContext { presented, .. }
                        if !presented.is_empty() =>
                    {
                        format!(" (it is for {})", presented.join(", "))
                    }
                    _ => String::new(),
                };
                format!(
                    "the TLS certificate of the server is not valid for {host}{names}: put a name \
                     the certificate lists into VAULT_ADDR, or reissue the certificate with \
                     -addext \"subjectAltName=DNS:{host}\" (IP:{host} for an address)"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the TLS certificate of {host} has expired: renew the certificate on the server \
                 (or check this machine's clock)"
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!(
                    "the TLS certificate of {host} is not valid yet: check the clocks of the \
                     server and of this machine"
                )
            }
            CertificateError::BadSignature => format!(
                "the TLS certificate of {host} has a signature that does not verify: the \
                 certificate is damaged or was not issued by the CA it names; reissue it"
            ),
            CertificateError::BadEncoding => format!(
                "the TLS certificate of {host} cannot be parsed: reissue it in standard X.509 form"
            ),
            _ if is_ca_used_as_end_entity(err) => format!(
                "the server {host} presents a CA certificate (basicConstraints CA:TRUE) as its \
                 own, and this client does not trust exactly that certificate: give that \
                 certificate itself with VAULT_CACERT, or give the server a leaf certificate \
                 issued by a CA (see README, TLS)"
            ),
            other => format!(
                "the TLS certificate of {host} was refused ({other:?}): give the right CA with \
                 VAULT_CACERT, or fix the server's certificate"
            ),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "{host} did not answer in TLS: if the server serves plain HTTP, use http:// in \
             VAULT_ADDR; otherwise check the address and port"
        ),
        rustls::Error::AlertReceived(alert) => format!(
            "the server {host} ended the TLS handshake ({alert:?}): it may require a client \
             certificate or a newer TLS version; check the server's TLS settings"
        ),
        rustls::Error::NoCertificatesPresented => {
            format!("the server {host} sent no TLS certificate: check the server's tls_cert_file")
        }
        other => format!("the TLS handshake with {host} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_are_checked() {
        let err = certificates(b"not a certificate").unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");
    }

    #[test]
    fn explanations_say_what_to_fix() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let text = explain(&unknown, "vault.local", false, false);
        assert!(text.contains("VAULT_CACERT=FILE"), "{text}");
        assert!(!text.contains("UnknownIssuer"), "{text}");
        let text = explain(&unknown, "vault.local", true, false);
        assert!(text.contains("did not issue it"), "{text}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("vault.local").unwrap().to_owned(),
            presented: vec!["DNS name \"other\"".into()],
        });
        let text = explain(&name, "vault.local", true, false);
        assert!(text.contains("subjectAltName=DNS:vault.local"), "{text}");
        assert!(text.contains("other"), "{text}");
        let ca = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(webpki::Error::CaUsedAsEndEntity),
        )));
        assert!(is_ca_used_as_end_entity(&ca));
        let text = explain(&ca, "h", true, false);
        assert!(
            text.contains("CA:TRUE") && !text.contains("CaUsedAsEndEntity"),
            "{text}"
        );
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert!(explain(&plain, "h", false, false).contains("http://"));
    }

    #[test]
    fn handshake_failures_are_classified() {
        use AlertDescription as A;
        let alert = rustls::Error::AlertReceived;
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(classify(&unknown, true), TlsFailure::UnknownServerCa);
        assert_eq!(
            classify(&alert(A::CertificateRequired), false),
            TlsFailure::CertificateRequired
        );
        // Without a certificate, a TLS 1.2 server's generic refusal means "give one".
        assert_eq!(
            classify(&alert(A::HandshakeFailure), false),
            TlsFailure::CertificateRequired
        );
        assert_eq!(
            classify(&alert(A::HandshakeFailure), true),
            TlsFailure::Other
        );
        for a in [A::UnknownCA, A::BadCertificate, A::CertificateExpired] {
            assert_eq!(
                classify(&alert(a), true),
                TlsFailure::ClientCertificateRejected
            );
        }
        let text = explain(&alert(A::CertificateRequired), "h", true, false);
        assert!(text.contains("COFFER_CLIENT_CERT"), "{text}");
        let text = explain(&alert(A::CertificateExpired), "h", true, true);
        assert!(
            text.contains("expired") && text.contains("client certificate"),
            "{text}"
        );
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(classify(&plain, false), TlsFailure::NotTls);
    }

    #[test]
    fn client_identities_are_checked_without_showing_the_key() {
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let cert = a.cert.pem();
        let key = a.signing_key.serialize_pem();
        let (chain, _) = client_identity(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(chain.len(), 1);
        let other_key = b.signing_key.serialize_pem();
        let err = client_identity(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = client_identity(key.as_bytes(), key.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("client certificate"), "{err}");
        let err = client_identity(cert.as_bytes(), b"garbage").unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
        let key_line = key.lines().nth(1).unwrap().to_string();
        let err = client_identity(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(!err.to_string().contains(&key_line[..16]), "{err}");
    }

    #[test]
    fn rustls_errors_are_found_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let found = rustls_error(&io).unwrap();
        assert!(matches!(
            found,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ));
        let nested = std::io::Error::other(io);
        assert!(rustls_error(&nested).is_some());
        let other = std::io::Error::other("x");
        assert!(rustls_error(&other).is_none());
    }
}
