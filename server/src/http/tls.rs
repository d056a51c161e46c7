//! TLS for listeners with rustls (ring provider, TLS 1.3 preferred, 1.2 allowed).
//! Client certificates (mTLS) arrive with the service listeners in a later step.

use std::path::PathBuf;
use std::sync::Arc;

/// Paths of a listener's certificate chain and key (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// certificate chain
    pub cert_file: PathBuf,
    /// private key
    pub key_file: PathBuf,
}

/// Why TLS could not be set up.
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
    /// No certificate / no key in the PEM.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the pair.
    #[error("invalid TLS certificate or key: {0}")]
    Rustls(String),
}

/// Builds a rustls server config from PEM files.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| TlsError::Read {
            path: p.display().to_string(),
            reason: e.kind().to_string(),
        })
    };
    let cert_pem = read(&files.cert_file)?;
    let key_pem = zeroize::Zeroizing::new(read(&files.key_file)?);
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            TlsError::Pem(format!(
                "{}: not a PEM certificate chain",
                files.cert_file.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem(format!(
            "{}: no certificate found",
            files.cert_file.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|_| {
            TlsError::Pem(format!(
                "{}: not a PEM private key",
                files.key_file.display()
            ))
        })?
        .ok_or_else(|| {
            TlsError::Pem(format!(
                "{}: no private key found",
                files.key_file.display()
            ))
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
