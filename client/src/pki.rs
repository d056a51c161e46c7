//! The PKI secrets engine as a service uses it: `POST <mount>/issue/<role>` for a new
//! certificate and key ([`IssueRequest`] → [`IssuedCertificate`]), and the CA
//! certificate and CRL as PEM text (`ca/pem`, `crl/pem`). The private key is
//! a [`SecretString`] (redacted `Debug`, wiped on drop); the lease (unless the role has
//! `no_store`) can be kept alive with [`crate::Renewer::add_lease`].

use std::fmt;

use coffer_proto::SecretString;
use serde::Serialize;
use serde_json::Value;

use crate::error::ClientError;
use crate::{join_path, required_secret, Client, Method};

/// Body of `pki/issue/<role>`; unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IssueRequest {
    /// CN of the certificate.
    pub common_name: String,
    /// Further DNS names / emails, comma separated (Vault's form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_names: Option<String>,
    /// IP SANs, comma separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_sans: Option<String>,
    /// URI SANs (e.g. `spiffe://prod/ns/payments/sa/api`), comma separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_sans: Option<String>,
    /// Requested lifetime (`"24h"` or seconds), capped by the role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<crate::Ttl>,
    /// `pem` (default), `der` or `pem_bundle`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Leave the CN out of the DNS SANs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_cn_from_sans: Option<bool>,
}

impl IssueRequest {
    /// A request for `common_name` with the role's defaults for everything else.
    pub fn new(common_name: impl Into<String>) -> IssueRequest {
        IssueRequest {
            common_name: common_name.into(),
            ..IssueRequest::default()
        }
    }
}

/// A certificate the PKI engine issued, with its private key.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate (PEM).
    pub certificate: String,
    /// Its private key (PEM). Never shown by `Debug`.
    pub private_key: SecretString,
    /// `rsa`, `ec` or `ed25519`, as the server says.
    pub private_key_type: String,
    /// The CA certificate that signed it (PEM).
    pub issuing_ca: String,
    /// The chain up to the root (PEM each), when the server sends one.
    pub ca_chain: Vec<String>,
    /// Serial number, colon-separated hex (`39:dd:2e:...`).
    pub serial_number: String,
    /// Expiry, seconds since the Unix epoch.
    pub expiration: i64,
    /// The lease id (empty when the role has `no_store`).
    pub lease_id: String,
    /// The lease's duration in seconds.
    pub lease_duration: i64,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial_number", &self.serial_number)
            .field("expiration", &self.expiration)
            .field("private_key", &self.private_key)
            .field("private_key_type", &self.private_key_type)
            .field("lease_id", &self.lease_id)
            .field("ca_chain_len", &self.ca_chain.len())
            .finish_non_exhaustive()
    }
}

impl IssuedCertificate {
    /// The certificate followed by the chain (without the root when the chain ends with
    /// it), as a TLS server or client presents it.
    pub fn chain_pem(&self) -> String {
        let mut pem = self.certificate.trim_end().to_string();
        pem.push('\n');
        let chain: Vec<&String> = if self.ca_chain.is_empty() {
            vec![&self.issuing_ca]
        } else {
            self.ca_chain.iter().collect()
        };
        for c in chain.into_iter().filter(|c| !c.trim().is_empty()) {
            pem.push_str(c.trim_end());
            pem.push('\n');
        }
        pem
    }
}

fn issued_from(secret: &crate::Secret) -> Result<IssuedCertificate, ClientError> {
    let text = |k: &str| {
        secret
            .data_field(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let certificate = text("certificate");
    if certificate.is_empty() {
        return Err(ClientError::Decode(
            "the issue answer has no certificate".into(),
        ));
    }
    let private_key = secret
        .data_field("private_key")
        .and_then(Value::as_str)
        .map(|k| SecretString::new(k.to_string()))
        .ok_or_else(|| ClientError::Decode("the issue answer has no private_key".into()))?;
    let ca_chain = secret
        .data_field("ca_chain")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let expiration = match secret.data_field("expiration") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or_default(),
        Some(Value::String(s)) => s.parse().unwrap_or_default(),
        _ => 0,
    };
    Ok(IssuedCertificate {
        certificate,
        private_key,
        private_key_type: text("private_key_type"),
        issuing_ca: text("issuing_ca"),
        ca_chain,
        serial_number: text("serial_number"),
        expiration,
        lease_id: secret.lease_id.clone(),
        lease_duration: secret.lease_duration,
    })
}

impl Client {
    /// `GET <mount>/ca/pem`: the issuing CA certificate (PEM), to trust or to give to
    /// `auth/cert`; `None` before the mount has a CA.
    pub async fn pki_ca_pem(&self, mount: &str) -> Result<Option<String>, ClientError> {
        self.pki_text(mount, "ca/pem").await
    }

    /// `GET <mount>/crl/pem`: the current CRL (PEM).
    pub async fn pki_crl_pem(&self, mount: &str) -> Result<Option<String>, ClientError> {
        self.pki_text(mount, "crl/pem").await
    }

    async fn pki_text(&self, mount: &str, what: &str) -> Result<Option<String>, ClientError> {
        let Some(bytes) = self.read_bytes(&join_path(&[mount, what])).await? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ClientError::Decode(format!("{mount}/{what} is not PEM text")))
    }

    /// `POST <mount>/issue/<role>`: a new certificate and private key.
    pub async fn pki_issue(
        &self,
        mount: &str,
        role: &str,
        request: &IssueRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        let role = role.trim();
        if role.is_empty() || role.contains('/') {
            return Err(ClientError::InvalidPath(format!(
                "{mount}/issue/{role}: the role must be a single path segment"
            )));
        }
        let body = serde_json::to_value(request)
            .map_err(|e| ClientError::Decode(format!("cannot encode request body: {e}")))?;
        let path = join_path(&[mount, "issue", role]);
        let secret = required_secret(
            self.request(Method::POST, &path, &[], Some(&body), &[])
                .await?,
        )?;
        issued_from(&secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn issue_answers_are_parsed_and_the_key_hidden() {
        let secret = crate::Secret::from_value(json!({
            "lease_id": "pki/issue/web/abc", "lease_duration": 3600, "renewable": false,
            "data": {"certificate": "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
                     "private_key": "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----",
                     "private_key_type": "ec",
                     "issuing_ca": "CA", "ca_chain": ["CA"], "serial_number": "01:02",
                     "expiration": 1767225600}
        }))
        .unwrap();
        let issued = issued_from(&secret).unwrap();
        assert_eq!(issued.serial_number, "01:02");
        assert_eq!(issued.expiration, 1767225600);
        assert_eq!(issued.lease_id, "pki/issue/web/abc");
        assert_eq!(issued.ca_chain, ["CA"]);
        assert!(issued.private_key.expose().contains("KEY"));
        let dbg = format!("{issued:?}");
        assert!(
            !dbg.contains("KEY\n") && dbg.contains("[redacted]"),
            "{dbg}"
        );
        assert!(issued.chain_pem().ends_with("CA\n"));
        let no_key = crate::Secret::from_value(json!({"data": {"certificate": "C"}})).unwrap();
        assert!(issued_from(&no_key).is_err());
    }

    #[test]
    fn requests_send_only_set_fields() {
        let mut r = IssueRequest::new("api.svc.internal");
        r.uri_sans = Some("spiffe://prod/ns/payments/sa/api".into());
        r.ttl = Some("1h".into());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"common_name": "api.svc.internal",
                   "uri_sans": "spiffe://prod/ns/payments/sa/api", "ttl": "1h"})
        );
    }
}
