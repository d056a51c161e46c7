//! Building and reading certificates: serial numbers, validity from unix
//! seconds, the URLs of `config/urls` as extensions, signing by the mount's
//! issuer, and the few facts read back from a certificate or a PEM chain
//! (with x509-parser). No private key material is ever put in an error.

use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, Issuer, KeyPair, PublicKeyData,
    SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::store::{colon_serial, CaBundle, Urls};
use crate::logical::LogicalError;

/// 20 random bytes, as Vault's serials, with the top bit clear (a positive
/// INTEGER of at most 20 octets) and a non-zero first byte (159 random bits).
pub(super) fn new_serial() -> Result<SerialNumber, LogicalError> {
    let mut bytes = *crate::crypto::random_array::<20>()
        .map_err(|_| LogicalError::invalid("no randomness for a serial number"))?;
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

/// Unix seconds as the time rcgen takes (the one conversion of time here).
pub(super) fn at(secs: i64) -> Result<OffsetDateTime, LogicalError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| LogicalError::invalid("a time out of range"))
}

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

/// The Authority Information Access extension (CA issuers and OCSP URLs).
fn aia(urls: &Urls) -> Option<CustomExtension> {
    const CA_ISSUERS: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    const OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut items = Vec::new();
    for (oid, list) in [
        (&OCSP, &urls.ocsp_servers),
        (&CA_ISSUERS, &urls.issuing_certificates),
    ] {
        for url in list {
            let mut desc = oid.to_vec();
            desc.extend(tlv(0x86, url.as_bytes()));
            items.extend(tlv(0x30, &desc));
        }
    }
    if items.is_empty() {
        return None;
    }
    Some(CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        tlv(0x30, &items),
    ))
}

/// Puts the mount's URLs into a certificate's parameters.
pub(super) fn add_urls(params: &mut CertificateParams, urls: &Urls) {
    if !urls.crl_distribution_points.is_empty() {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: urls.crl_distribution_points.clone(),
        }];
    }
    params.custom_extensions.extend(aia(urls));
}

/// Checks a URL for `config/urls`: printable ASCII with a scheme.
pub(super) fn check_url(url: &str) -> Result<(), LogicalError> {
    if super::names::is_uri(url) {
        Ok(())
    } else {
        Err(LogicalError::invalid(format!("invalid URL {url:?}")))
    }
}

/// A certificate signed by the mount's issuer: its DER and PEM.
pub(super) struct Signed {
    pub pem: String,
    /// colon form
    pub serial: String,
    pub not_after: i64,
}

/// Signs `params` for `public_key` with the issuer in `ca`.
pub(super) fn sign_with_ca(
    params: &CertificateParams,
    public_key: &impl PublicKeyData,
    ca: &CaBundle,
) -> Result<Signed, LogicalError> {
    let key = super::keys::load(&ca.private_key)?;
    let ca_der = pem_to_der(&ca.certificate)?;
    let issuer =
        Issuer::from_ca_cert_der(&ca_der.into(), &*key).map_err(|_| LogicalError::Corrupt)?;
    let cert = params
        .signed_by(public_key, &issuer)
        .map_err(|e| LogicalError::invalid(format!("cannot sign the certificate: {e}")))?;
    signed(cert.der().to_vec(), cert.pem().trim_end().to_owned())
}

/// A self-signed certificate.
pub(super) fn self_sign(params: &CertificateParams, key: &KeyPair) -> Result<Signed, LogicalError> {
    let cert = params
        .self_signed(key)
        .map_err(|e| LogicalError::invalid(format!("cannot sign the certificate: {e}")))?;
    signed(cert.der().to_vec(), cert.pem().trim_end().to_owned())
}

fn signed(der: Vec<u8>, pem: String) -> Result<Signed, LogicalError> {
    let (serial, not_after) = facts(&der)?;
    Ok(Signed {
        pem,
        serial,
        not_after,
    })
}

/// A certificate's serial (colon form) and expiry (unix seconds).
pub(super) fn facts(der: &[u8]) -> Result<(String, i64), LogicalError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| LogicalError::invalid("not a valid certificate"))?;
    Ok((
        colon_serial(cert.raw_serial()),
        cert.validity().not_after.timestamp(),
    ))
}

/// Every PEM block of a type in `text`, as DER, in order. Blocks glued
/// together without a newline (Vault's PEM strings end without one, and are
/// often concatenated as they are) are read as Go reads them.
pub(super) fn pem_blocks(text: &str, label: &str) -> Result<Vec<Vec<u8>>, LogicalError> {
    let text = zeroize::Zeroizing::new(text.replace("-----BEGIN ", "\n-----BEGIN "));
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let pem = pem.map_err(|_| LogicalError::invalid("the PEM does not parse"))?;
        if pem.label == label {
            out.push(pem.contents);
        }
    }
    Ok(out)
}

/// The DER of the first certificate in a PEM text.
pub(super) fn pem_to_der(text: &str) -> Result<Vec<u8>, LogicalError> {
    pem_blocks(text, "CERTIFICATE")?
        .into_iter()
        .next()
        .ok_or_else(|| LogicalError::invalid("no certificate in the PEM"))
}

/// PEM of one DER object (64-column base64, as Go writes it; no newline
/// after the END line, as Vault answers PEM).
pub(super) fn der_to_pem(der: &[u8], label: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_20_positive_random_bytes() {
        let a = new_serial().unwrap().to_bytes();
        let b = new_serial().unwrap().to_bytes();
        assert_eq!(a.len(), 20);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn lengths_are_der() {
        assert_eq!(der_len(5), [5]);
        assert_eq!(der_len(200), [0x81, 200]);
        assert_eq!(der_len(300), [0x82, 1, 44]);
    }

    #[test]
    fn urls_go_into_the_certificate() {
        let urls = Urls {
            issuing_certificates: vec!["http://ca.example/ca".into()],
            crl_distribution_points: vec!["http://ca.example/crl".into()],
            ocsp_servers: vec![],
        };
        let mut params = CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        add_urls(&mut params, &urls);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = self_sign(&params, &key).unwrap();
        let der = pem_to_der(&cert.pem).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let mut seen = Vec::new();
        for ext in parsed.extensions() {
            match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityInfoAccess(aia) => {
                    for d in &aia.accessdescs {
                        seen.push(format!("{:?}", d.access_location));
                    }
                }
                x509_parser::extensions::ParsedExtension::CRLDistributionPoints(p) => {
                    seen.push(format!("{:?}", p.points));
                }
                _ => {}
            }
        }
        let all = seen.join(" ");
        assert!(all.contains("http://ca.example/ca"), "{all}");
        assert!(all.contains("http://ca.example/crl"), "{all}");
    }
}
