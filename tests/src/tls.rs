//! TLS material for end-to-end tests, made fresh in each test with rcgen: a CA
//! ([`TestCa`]) that issues server and client certificates ([`Leaf`], with the
//! names, SANs, OUs and validity a test asks for in [`ClientSpec`]) and CRLs,
//! and HTTPS clients that trust a CA and present a client certificate
//! ([`https_client`]). With [`crate::Options::listeners`] and
//! [`crate::TestServer::listener_urls`] a test starts a server with several
//! listeners of its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};

static SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> u64 {
    // Unique in the process, and unlikely to repeat across test runs.
    let base = std::process::id() as u64 * 1_000_000;
    base + SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// A certificate authority for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// the CA certificate, PEM
    pub pem: String,
    /// the CA certificate, DER
    pub der: Vec<u8>,
}

/// A certificate and its key, PEM (and the certificate's DER and serial).
#[derive(Clone)]
pub struct Leaf {
    /// certificate, PEM
    pub pem: String,
    /// private key, PEM (PKCS#8)
    pub key_pem: String,
    /// certificate, DER
    pub der: Vec<u8>,
    /// serial number
    pub serial: u64,
}

/// What a client certificate says. Validity in whole years (Jan 1st); the
/// default is valid from 2024 to 2099.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    /// subject common name
    pub cn: String,
    /// DNS SANs
    pub dns: Vec<String>,
    /// URI SANs (SPIFFE IDs)
    pub uris: Vec<String>,
    /// subject organizational units
    pub ous: Vec<String>,
    /// `(not_before, not_after)` years
    pub years: Option<(i32, i32)>,
}

impl ClientSpec {
    /// A client certificate for common name `cn`.
    pub fn cn(cn: &str) -> ClientSpec {
        ClientSpec {
            cn: cn.to_owned(),
            ..ClientSpec::default()
        }
    }
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(SerialNumber::from(next_serial()));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, mut params: CertificateParams) -> Leaf {
        let serial = next_serial();
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            serial,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate as `spec` says (client-auth usage).
    pub fn client(&self, spec: ClientSpec) -> Leaf {
        let mut params = CertificateParams::new(spec.dns.clone()).unwrap();
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.clone().try_into().unwrap()));
        }
        params.distinguished_name.push(DnType::CommonName, spec.cn);
        for ou in spec.ous {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
        }
        let (from, to) = spec.years.unwrap_or((2024, 2099));
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(params)
    }

    /// A CRL of this CA (PEM) revoking `revoked`, valid 2024 to 2099.
    pub fn crl(&self, revoked: &[&Leaf]) -> String {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(next_serial()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|l| RevokedCertParams {
                    serial_number: SerialNumber::from(l.serial),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().pem().unwrap()
    }

    /// Writes the CA certificate to `dir/<name>`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

impl Leaf {
    /// Certificate and key as a reqwest client identity.
    pub fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.pem, self.key_pem).as_bytes()).unwrap()
    }

    /// SHA-256 of the certificate's DER, lower-case hex (what a
    /// certificate-bound token records).
    pub fn sha256_hex(&self) -> String {
        coffer_server::crypto::sha256_hex(&self.der)
    }

    /// Writes `dir/<name>.pem` and `dir/<name>-key.pem`; returns both paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &self.pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

/// An HTTPS client trusting `ca`, presenting `identity` when given.
pub fn https_client(ca: &TestCa, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap());
    if let Some(leaf) = identity {
        builder = builder.identity(leaf.identity());
    }
    builder.build().unwrap()
}

/// A `[[listener]]` table on an ephemeral loopback port serving `server`
/// (written to `dir` under `name`), with `extra` lines (e.g.
/// `client_auth = "require"` and `tls_client_ca_file = ...`).
pub fn listener_table(dir: &Path, name: &str, server: &Leaf, extra: &str) -> String {
    let (cert, key) = server.write(dir, name);
    format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n{extra}\n"
    )
}

/// Sends `method path` with `token` through `client` to `base` (a listener
/// URL); status and JSON body, or the error's full chain of causes when the
/// request did not get an answer (a refused handshake).
pub async fn call_with(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}/v1/{path}"));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| error_chain(&e))?;
    let json = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    Ok((status, json))
}

/// An error and all its sources, joined with ": ".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// Does a TLS handshake with `url` (`https://host:port`) trusting `ca`,
/// presenting `identity`, then one HTTP/1.1 request: `Ok` with the status
/// line, or the TLS error that ended it (e.g. "received fatal alert:
/// CertificateRequired"), which an HTTP client reports only as a closed
/// connection when TLS 1.3 lets it send before the server has decided.
pub async fn handshake(url: &str, ca: &TestCa, identity: Option<&Leaf>) -> Result<String, String> {
    handshake_with(url, ca, identity, rustls::DEFAULT_VERSIONS).await
}

/// As [`handshake`], offering only TLS 1.2.
pub async fn handshake_tls12(
    url: &str,
    ca: &TestCa,
    identity: Option<&Leaf>,
) -> Result<String, String> {
    handshake_with(url, ca, identity, &[&rustls::version::TLS12]).await
}

async fn handshake_with(
    url: &str,
    ca: &TestCa,
    identity: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone().into()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(leaf) => {
            let key = rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
                .unwrap()
                .unwrap();
            builder
                .with_client_auth_cert(vec![leaf.der.clone().into()], key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let addr = url.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| error_chain(&e))?;
    let request = "GET /v1/sys/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| error_chain(&e))?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer)
        .await
        .map_err(|e| error_chain(&e))?;
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
