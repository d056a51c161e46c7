//! TLS for listeners with rustls (ring provider, TLS 1.3 preferred, 1.2 allowed,
//! nothing older): the server's certificate and key, and client certificates
//! (`client_auth = "none" | "request" | "require"`, `tls_client_ca_file`).
//!
//! Every check that can fail on a file happens here, before a socket is bound,
//! and says in one line which file and what is wrong with it: unreadable or
//! missing, no PEM in it, a key that does not match the certificate, a server
//! certificate outside its validity period, a client CA file without a usable
//! certificate. `require` without a CA file is refused where the config is read.
//!
//! What a client certificate proves, by mode (see SECURITY.md):
//! - with a CA file, the chain is verified against it at the handshake (usage
//!   client auth, validity, signatures); `request` lets a client send none;
//! - `request` without a CA file asks for a certificate and checks only that
//!   the client holds its private key (the handshake signature), as Vault's
//!   listener does; trust is then decided by `auth/cert` against its own CAs.
//!
//! Either way the chain (DER, leaf first) reaches each request's
//! `ConnectionInfo` through [`super::peer`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// How a listener asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// never asks
    #[default]
    None,
    /// asks; a client may send none
    Request,
    /// a verified certificate is required to connect
    Require,
}

impl ClientAuth {
    /// Parses the config value.
    pub fn parse(text: &str) -> Option<ClientAuth> {
        match text {
            "none" => Some(ClientAuth::None),
            "request" => Some(ClientAuth::Request),
            "require" => Some(ClientAuth::Require),
            _ => None,
        }
    }
}

/// Paths of a listener's certificate chain and key (PEM), and how it treats
/// client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// certificate chain
    pub cert_file: PathBuf,
    /// private key
    pub key_file: PathBuf,
    /// CAs that client chains are verified against at the handshake
    pub client_ca_file: Option<PathBuf>,
    /// whether client certificates are asked for or required
    pub client_auth: ClientAuth,
}

impl TlsFiles {
    /// A listener with a certificate and key and no client certificates.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> TlsFiles {
        TlsFiles {
            cert_file,
            key_file,
            client_ca_file: None,
            client_auth: ClientAuth::None,
        }
    }
}

/// Why TLS could not be set up. Each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// File unreadable.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// which file
        path: String,
        /// io error kind
        reason: String,
    },
    /// No certificate / no key in the PEM, or one that does not parse.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the pair, or the certificate is unusable.
    #[error("{0}")]
    Rustls(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: crate::config::io_reason(&e),
    })
}

/// The certificates of a PEM file (at least one).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem(format!("{}: not a PEM certificate chain", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = zeroize::Zeroizing::new(read(path)?);
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|_| TlsError::Pem(format!("{}: not a PEM private key", path.display())))?
        .ok_or_else(|| TlsError::Pem(format!("{}: no private key found", path.display())))
}

/// The validity period of a DER certificate, unix seconds.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

fn check_server_certificate(path: &Path, leaf: &[u8], now: i64) -> Result<(), TlsError> {
    let (not_before, not_after) = validity(leaf).ok_or_else(|| {
        TlsError::Pem(format!(
            "{}: the first certificate is not valid X.509",
            path.display()
        ))
    })?;
    if now > not_after {
        return Err(TlsError::Rustls(format!(
            "{}: the server certificate expired at {}",
            path.display(),
            crate::clock::rfc3339_secs(not_after)
        )));
    }
    if now < not_before {
        return Err(TlsError::Rustls(format!(
            "{}: the server certificate is not valid before {}",
            path.display(),
            crate::clock::rfc3339_secs(not_before)
        )));
    }
    Ok(())
}

fn client_verifier(
    files: &TlsFiles,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let Some(ca_file) = &files.client_ca_file else {
        return match files.client_auth {
            ClientAuth::None => Ok(WebPkiClientVerifier::no_client_auth()),
            ClientAuth::Request => Ok(Arc::new(super::tls_verify::KeyPossession::new(
                provider.clone(),
            ))),
            ClientAuth::Require => Err(TlsError::Pem(
                "client_auth = \"require\" needs tls_client_ca_file".into(),
            )),
        };
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(ca_file)? {
        roots.add(cert).map_err(|e| {
            TlsError::Pem(format!(
                "{}: a client CA certificate is unusable ({e})",
                ca_file.display()
            ))
        })?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = match files.client_auth {
        // A CA file on a listener that does not ask for certificates: the CA
        // is for nothing; ask anyway would change what clients see. Refused.
        ClientAuth::None => {
            return Err(TlsError::Pem(format!(
                "{}: tls_client_ca_file is set but client_auth = \"none\"; set client_auth = \"request\" or \"require\"",
                ca_file.display()
            )))
        }
        ClientAuth::Request => builder.allow_unauthenticated(),
        ClientAuth::Require => builder,
    };
    builder
        .build()
        .map_err(|e| TlsError::Pem(format!("{}: {e}", ca_file.display())))
}

/// Builds a rustls server config from PEM files, checking the server
/// certificate's validity at `now` (unix seconds).
pub fn server_config(files: &TlsFiles, now: i64) -> Result<rustls::ServerConfig, TlsError> {
    let certs = read_certificates(&files.cert_file)?;
    let key = read_key(&files.key_file)?;
    check_server_certificate(&files.cert_file, &certs[0], now)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(files, &provider)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Rustls(format!(
                "{}: the private key does not match the certificate in {}",
                files.key_file.display(),
                files.cert_file.display()
            )),
            other => TlsError::Rustls(format!(
                "{} / {}: invalid TLS certificate or key: {other}",
                files.cert_file.display(),
                files.key_file.display()
            )),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir {
        dir: tempfile::TempDir,
    }

    impl Dir {
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    /// A self-signed certificate valid from `from` to `to` (years, Jan 1st);
    /// [`NOW`] is in 2026.
    fn self_signed(from: i32, to: i32) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// 2026-09-21
    const NOW: i64 = 1_790_000_000;

    fn files(dir: &Dir, cert: &str, key: &str) -> TlsFiles {
        TlsFiles::new(dir.write("c.pem", cert), dir.write("k.pem", key))
    }

    fn err(files: &TlsFiles) -> String {
        server_config(files, NOW).unwrap_err().to_string()
    }

    #[test]
    fn a_good_pair_builds_and_offers_h2() {
        let dir = Dir {
            dir: tempfile::tempdir().unwrap(),
        };
        let (cert, key) = self_signed(2026, 2027);
        let config = server_config(&files(&dir, &cert, &key), NOW).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[test]
    fn each_bad_file_is_named_with_its_problem() {
        let dir = Dir {
            dir: tempfile::tempdir().unwrap(),
        };
        let (cert, key) = self_signed(2026, 2027);
        let (_, other_key) = self_signed(2026, 2027);
        let missing = TlsFiles::new(dir.dir.path().join("nope.pem"), dir.write("k.pem", &key));
        let e = err(&missing);
        assert!(e.contains("nope.pem: No such file"), "{e}");

        let e = err(&files(&dir, "hello", &key));
        assert!(e.contains("c.pem: no certificate found"), "{e}");

        let e = err(&files(&dir, &cert, &other_key));
        assert!(
            e.contains("k.pem: the private key does not match the certificate in"),
            "{e}"
        );

        let (old, old_key) = self_signed(2025, 2026);
        let e = err(&files(&dir, &old, &old_key));
        assert!(
            e.contains("c.pem: the server certificate expired at"),
            "{e}"
        );

        let (early, early_key) = self_signed(2027, 2028);
        let e = err(&files(&dir, &early, &early_key));
        assert!(e.contains("is not valid before"), "{e}");
    }

    #[test]
    fn client_ca_problems_are_named() {
        let dir = Dir {
            dir: tempfile::tempdir().unwrap(),
        };
        let (cert, key) = self_signed(2026, 2027);
        let mut f = files(&dir, &cert, &key);
        f.client_auth = ClientAuth::Require;
        assert!(err(&f).contains("needs tls_client_ca_file"));
        f.client_ca_file = Some(dir.write("ca.pem", "not pem"));
        let e = err(&f);
        assert!(e.contains("ca.pem: no certificate found"), "{e}");
        f.client_ca_file = Some(dir.dir.path().join("gone.pem"));
        assert!(err(&f).contains("gone.pem"));
        f.client_ca_file = Some(dir.write("ca.pem", &cert));
        assert!(server_config(&f, NOW).is_ok());
        f.client_auth = ClientAuth::Request;
        assert!(server_config(&f, NOW).is_ok());
        f.client_auth = ClientAuth::None;
        assert!(err(&f).contains("client_auth = \"none\""));
        f.client_ca_file = None;
        f.client_auth = ClientAuth::Request;
        assert!(server_config(&f, NOW).is_ok(), "request without a CA");
    }
}
