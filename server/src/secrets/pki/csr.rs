//! Certificate signing requests: parsed and their signature verified with
//! x509-parser, reduced to what signing needs (the public key, its type, the
//! subject's common name and the requested SANs).

use std::net::IpAddr;

use x509_parser::prelude::FromDer;

use super::keys::{spec_of_public_key, KeySpec};
use super::names::Names;
use crate::logical::LogicalError;

/// A verified CSR.
pub(super) struct Csr {
    /// the SubjectPublicKeyInfo, DER
    pub public_key: rcgen::SubjectPublicKeyInfo,
    /// its key type
    pub spec: KeySpec,
    /// the subject's CN and the requested SANs
    pub names: Names,
}

/// Parses and verifies a PEM CSR.
pub(super) fn parse(pem: &str) -> Result<Csr, LogicalError> {
    let bad = || LogicalError::invalid("certificate request could not be parsed");
    let der = super::x509::pem_blocks(pem, "CERTIFICATE REQUEST")?
        .into_iter()
        .chain(super::x509::pem_blocks(pem, "NEW CERTIFICATE REQUEST")?)
        .next()
        .ok_or_else(bad)?;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|_| bad())?;
    csr.verify_signature()
        .map_err(|_| LogicalError::invalid("the certificate request's signature is invalid"))?;
    let info = &csr.certification_request_info;
    let spec = spec_of_public_key(&info.subject_pki)?;
    let public_key =
        rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw).map_err(|_| bad())?;
    let mut names = Names {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned(),
        ..Names::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
            use x509_parser::extensions::GeneralName;
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => names.dns.push((*d).to_owned()),
                    GeneralName::RFC822Name(e) => names.emails.push((*e).to_owned()),
                    GeneralName::URI(u) => names.uris.push((*u).to_owned()),
                    GeneralName::IPAddress(b) => names.ips.push(ip_of(b).ok_or_else(bad)?),
                    _ => {}
                }
            }
        }
    }
    Ok(Csr {
        public_key,
        spec,
        names,
    })
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csr_gives_its_key_type_and_names() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["a.svc.internal".to_owned(), "10.1.2.3".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cn.svc.internal");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://prod/ns/a/sa/b".try_into().unwrap(),
        ));
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr = parse(&pem).unwrap();
        assert_eq!(csr.spec, KeySpec::Ec(256));
        assert_eq!(csr.names.common_name, "cn.svc.internal");
        assert_eq!(csr.names.dns, ["a.svc.internal"]);
        assert_eq!(csr.names.ips, ["10.1.2.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(csr.names.uris, ["spiffe://prod/ns/a/sa/b"]);
        assert!(parse("not a csr").is_err());
        // A tampered request fails its signature check.
        let mut der =
            super::super::x509::pem_blocks(&pem, "CERTIFICATE REQUEST").unwrap()[0].clone();
        let n = der.len();
        der[n - 3] ^= 1;
        let tampered = super::super::x509::der_to_pem(&der, "CERTIFICATE REQUEST");
        assert!(parse(&tampered).is_err());
    }
}
