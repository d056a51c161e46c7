//! The records of `auth/cert`: a trusted certificate ("role", `cert/<name>`)
//! with the names a login certificate must carry and the token it gets, and
//! a CRL (`crl/<name>`). PEM is parsed here, once per write and per login.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::tokenutil::{Legacy, TokenParams};
use crate::barrier::View;
use crate::logical::{Fields, LogicalError};

/// The legacy token field names `auth/cert` accepts, as Vault's does.
pub(super) const CERT_LEGACY: &[Legacy] = &[
    Legacy::Policies,
    Legacy::Ttl,
    Legacy::MaxTtl,
    Legacy::Period,
    Legacy::BoundCidrs,
];

/// `certs/<name>`: a CA (chains to it are trusted) or a pinned certificate
/// (exactly it is trusted), with constraints on the login certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct CertRoleV1 {
    /// PEM, as written (one or more certificates)
    pub certificate: String,
    /// shown in the token's display name (default: the role's name)
    #[serde(default)]
    pub display_name: String,
    /// globs over the common name, DNS and email SANs (Vault's legacy field)
    #[serde(default)]
    pub allowed_names: Vec<String>,
    /// globs over the subject common name
    #[serde(default)]
    pub allowed_common_names: Vec<String>,
    /// globs over the DNS SANs
    #[serde(default)]
    pub allowed_dns_sans: Vec<String>,
    /// globs over the email SANs
    #[serde(default)]
    pub allowed_email_sans: Vec<String>,
    /// globs over the URI SANs (SPIFFE IDs)
    #[serde(default)]
    pub allowed_uri_sans: Vec<String>,
    /// globs over the subject OUs
    #[serde(default)]
    pub allowed_organizational_units: Vec<String>,
    /// the token a login gets
    #[serde(default)]
    pub token: TokenParams,
}

/// `crls/<name>`: a CRL as written (PEM) and the serials it revokes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct CrlV1 {
    /// DER
    pub der: Vec<u8>,
    /// revoked serials, lower-case hex without leading zeros
    pub serials: Vec<String>,
    /// the issuer's distinguished name as the CRL states it (DER)
    pub issuer: Vec<u8>,
}

/// A role or CRL name: what Vault accepts, folded to lower case by the
/// canonicaliser before it gets here.
pub(super) fn validate_name(name: &str) -> Result<String, LogicalError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err(LogicalError::invalid(
            "names are 1-128 characters of letters, digits, '-', '_' and '.' (folded to lower case)",
        ));
    }
    Ok(name.to_owned())
}

/// The DER certificates of a PEM text, each checked to be X.509.
pub(super) fn parse_pem_certificates(pem: &str, field: &str) -> Result<Vec<Vec<u8>>, LogicalError> {
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_bytes())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| LogicalError::invalid(format!("field '{field}' is not PEM")))?;
    if certs.is_empty() {
        return Err(LogicalError::invalid(format!(
            "field '{field}' holds no PEM certificate"
        )));
    }
    for der in &certs {
        x509_parser::parse_x509_certificate(der).map_err(|_| {
            LogicalError::invalid(format!(
                "field '{field}' holds a certificate that is not valid X.509"
            ))
        })?;
    }
    Ok(certs)
}

impl CertRoleV1 {
    /// Applies a write's fields over `self` (defaults on create).
    pub(super) fn update(&mut self, f: &Fields<'_>, creating: bool) -> Result<(), LogicalError> {
        // Vault's checks this server does not have: refused, never ignored.
        for (field, what) in [
            ("required_extensions", "required certificate extensions"),
            ("allowed_metadata_extensions", "metadata from extensions"),
        ] {
            if f.string_list(field)?.is_some_and(|v| !v.is_empty()) {
                return Err(LogicalError::invalid(format!(
                    "field '{field}' is not supported ({what} are not checked by this server)"
                )));
            }
        }
        if f.bool("ocsp_enabled")? == Some(true) {
            return Err(LogicalError::invalid(
                "field 'ocsp_enabled' is not supported; revoke with crls/<name>",
            ));
        }
        match f.string("certificate")? {
            Some(pem) => {
                parse_pem_certificates(&pem, "certificate")?;
                self.certificate = pem;
            }
            None if creating => {
                return Err(LogicalError::invalid(
                    "missing required field 'certificate'",
                ))
            }
            None => {}
        }
        if let Some(v) = f.string("display_name")? {
            self.display_name = v;
        }
        for (field, slot) in [
            ("allowed_names", &mut self.allowed_names),
            ("allowed_common_names", &mut self.allowed_common_names),
            ("allowed_dns_sans", &mut self.allowed_dns_sans),
            ("allowed_email_sans", &mut self.allowed_email_sans),
            ("allowed_uri_sans", &mut self.allowed_uri_sans),
            (
                "allowed_organizational_units",
                &mut self.allowed_organizational_units,
            ),
        ] {
            if let Some(v) = f.string_list(field)? {
                *slot = v.into_iter().filter(|s| !s.is_empty()).collect();
            }
        }
        self.token.update(f, CERT_LEGACY)?;
        if self.token.token_policies.iter().any(|p| p == "root") {
            return Err(LogicalError::invalid(
                "the root policy cannot be given to a certificate login",
            ));
        }
        Ok(())
    }

    /// The answer to a read, in Vault's fields.
    pub(super) fn read_json(&self) -> Value {
        let mut data = Map::new();
        data.insert("certificate".into(), json!(self.certificate));
        data.insert("display_name".into(), json!(self.display_name));
        for (field, v) in [
            ("allowed_names", &self.allowed_names),
            ("allowed_common_names", &self.allowed_common_names),
            ("allowed_dns_sans", &self.allowed_dns_sans),
            ("allowed_email_sans", &self.allowed_email_sans),
            ("allowed_uri_sans", &self.allowed_uri_sans),
            (
                "allowed_organizational_units",
                &self.allowed_organizational_units,
            ),
        ] {
            data.insert(field.into(), json!(v));
        }
        data.insert("required_extensions".into(), json!([]));
        data.insert("allowed_metadata_extensions".into(), json!([]));
        data.insert("ocsp_enabled".into(), json!(false));
        self.token.fill_read(&mut data);
        Value::Object(data)
    }
}

pub(super) async fn load_role(view: &View, name: &str) -> Result<Option<CertRoleV1>, LogicalError> {
    load(view, &format!("cert/{name}")).await
}

pub(super) async fn load_crl(view: &View, name: &str) -> Result<Option<CrlV1>, LogicalError> {
    load(view, &format!("crl/{name}")).await
}

async fn load<T: serde::de::DeserializeOwned>(
    view: &View,
    key: &str,
) -> Result<Option<T>, LogicalError> {
    match view.get(key).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

pub(super) async fn save<T: Serialize>(view: &View, key: &str, v: &T) -> Result<(), LogicalError> {
    let raw = serde_json::to_vec(v).map_err(|_| LogicalError::Corrupt)?;
    view.apply(vec![view.put_op(key, raw, None)]).await?;
    Ok(())
}

/// Every stored record under `prefix` (`cert/` or `crl/`), by name.
pub(super) async fn load_all<T: serde::de::DeserializeOwned>(
    view: &View,
    prefix: &str,
) -> Result<Vec<(String, T)>, LogicalError> {
    let mut out = Vec::new();
    for key in view.list(prefix, None, 10_000).await? {
        let Some(name) = key.strip_prefix(prefix) else {
            continue;
        };
        if let Some(v) = load(view, &key).await? {
            out.push((name.to_owned(), v));
        }
    }
    Ok(out)
}
