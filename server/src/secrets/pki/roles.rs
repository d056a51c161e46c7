//! `roles/<name>`: what a role allows (names, key type, lifetimes, key usages)
//! and its read, write, list and delete. A write replaces the whole role, each
//! field not given taking Vault's default, as Vault does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::keys::parse_spec;
use super::store;
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Request, Response};

/// A role, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Role {
    pub v: u32,
    /// seconds; 0: the mount's default
    pub ttl: u64,
    /// seconds; 0: the mount's maximum
    pub max_ttl: u64,
    pub allow_localhost: bool,
    pub allowed_domains: Vec<String>,
    pub allow_bare_domains: bool,
    pub allow_subdomains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_any_name: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    pub allowed_uri_sans: Vec<String>,
    pub server_flag: bool,
    pub client_flag: bool,
    pub code_signing_flag: bool,
    pub email_protection_flag: bool,
    /// `rsa`, `ec`, `ed25519`, or `any` (signing only)
    pub key_type: String,
    pub key_bits: u32,
    pub key_usage: Vec<String>,
    pub ext_key_usage: Vec<String>,
    pub use_csr_common_name: bool,
    pub use_csr_sans: bool,
    pub require_cn: bool,
    pub no_store: bool,
    pub generate_lease: bool,
    /// seconds the certificate is valid before it is issued (clock skew)
    pub not_before_duration: u64,
    pub organization: Vec<String>,
    pub ou: Vec<String>,
}

const KEY_USAGES: [&str; 9] = [
    "DigitalSignature",
    "ContentCommitment",
    "KeyEncipherment",
    "DataEncipherment",
    "KeyAgreement",
    "CertSign",
    "CRLSign",
    "EncipherOnly",
    "DecipherOnly",
];
const EXT_KEY_USAGES: [&str; 7] = [
    "ServerAuth",
    "ClientAuth",
    "CodeSigning",
    "EmailProtection",
    "TimeStamping",
    "OCSPSigning",
    "Any",
];

/// The canonical spelling of a usage name among `known` (case and a
/// `KeyUsage`/`ExtKeyUsage` prefix do not matter, as in Vault).
fn usage_name(given: &str, known: &[&'static str], prefix: &str) -> Option<&'static str> {
    let g = given.trim();
    let g = g
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map_or(g, |_| &g[prefix.len()..]);
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(g))
}

impl Role {
    /// A role from a write's fields, defaults where a field is missing.
    pub fn from_fields(f: &Fields<'_>) -> Result<Role, LogicalError> {
        let b = |k: &str, d: bool| f.bool(k).map(|v| v.unwrap_or(d));
        let list = |k: &str| f.string_list(k).map(Option::unwrap_or_default);
        let key_type = f.string("key_type")?.unwrap_or_else(|| "rsa".into());
        let key_bits = f.u64("key_bits")?.unwrap_or(0);
        let key_bits = if key_type == "any" {
            0
        } else {
            parse_spec(&key_type, key_bits)?.bits()
        };
        let mut key_usage = Vec::new();
        let given = f.string_list("key_usage")?.unwrap_or_else(|| {
            ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
                .map(String::from)
                .to_vec()
        });
        for u in given.iter().filter(|u| !u.trim().is_empty()) {
            let name = usage_name(u, &KEY_USAGES, "KeyUsage")
                .ok_or_else(|| LogicalError::invalid(format!("unknown key_usage {u:?}")))?;
            key_usage.push(name.to_owned());
        }
        let mut ext_key_usage = Vec::new();
        for u in list("ext_key_usage")?
            .iter()
            .filter(|u| !u.trim().is_empty())
        {
            let name = usage_name(u, &EXT_KEY_USAGES, "ExtKeyUsage")
                .ok_or_else(|| LogicalError::invalid(format!("unknown ext_key_usage {u:?}")))?;
            ext_key_usage.push(name.to_owned());
        }
        let ttl = f.duration("ttl")?.unwrap_or(0);
        let max_ttl = f.duration("max_ttl")?.unwrap_or(0);
        if max_ttl > 0 && ttl > max_ttl {
            return Err(LogicalError::invalid("ttl cannot be larger than max_ttl"));
        }
        let names = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Role {
            v: 1,
            ttl,
            max_ttl,
            allow_localhost: b("allow_localhost", true)?,
            allowed_domains: names(list("allowed_domains")?),
            allow_bare_domains: b("allow_bare_domains", false)?,
            allow_subdomains: b("allow_subdomains", false)?,
            allow_glob_domains: b("allow_glob_domains", false)?,
            allow_wildcard_certificates: b("allow_wildcard_certificates", true)?,
            allow_any_name: b("allow_any_name", false)?,
            enforce_hostnames: b("enforce_hostnames", true)?,
            allow_ip_sans: b("allow_ip_sans", true)?,
            allowed_uri_sans: names(list("allowed_uri_sans")?),
            server_flag: b("server_flag", true)?,
            client_flag: b("client_flag", true)?,
            code_signing_flag: b("code_signing_flag", false)?,
            email_protection_flag: b("email_protection_flag", false)?,
            key_type,
            key_bits,
            key_usage,
            ext_key_usage,
            use_csr_common_name: b("use_csr_common_name", true)?,
            use_csr_sans: b("use_csr_sans", true)?,
            require_cn: b("require_cn", true)?,
            no_store: b("no_store", false)?,
            generate_lease: b("generate_lease", false)?,
            not_before_duration: f.duration("not_before_duration")?.unwrap_or(30),
            organization: names(list("organization")?),
            ou: names(list("ou")?),
        })
    }

    /// Vault's answer to a read.
    pub fn to_json(&self) -> Value {
        json!({
            "ttl": self.ttl,
            "max_ttl": self.max_ttl,
            "allow_localhost": self.allow_localhost,
            "allowed_domains": self.allowed_domains,
            "allow_bare_domains": self.allow_bare_domains,
            "allow_subdomains": self.allow_subdomains,
            "allow_glob_domains": self.allow_glob_domains,
            "allow_wildcard_certificates": self.allow_wildcard_certificates,
            "allow_any_name": self.allow_any_name,
            "enforce_hostnames": self.enforce_hostnames,
            "allow_ip_sans": self.allow_ip_sans,
            "allowed_uri_sans": self.allowed_uri_sans,
            "server_flag": self.server_flag,
            "client_flag": self.client_flag,
            "code_signing_flag": self.code_signing_flag,
            "email_protection_flag": self.email_protection_flag,
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "key_usage": self.key_usage,
            "ext_key_usage": self.ext_key_usage,
            "use_csr_common_name": self.use_csr_common_name,
            "use_csr_sans": self.use_csr_sans,
            "require_cn": self.require_cn,
            "no_store": self.no_store,
            "generate_lease": self.generate_lease,
            "not_before_duration": self.not_before_duration,
            "organization": self.organization,
            "ou": self.ou,
            "issuer_ref": "default",
        })
    }
}

/// The role `name`, or Vault's 400 naming it.
pub(super) async fn load(view: &View, name: &str) -> Result<Role, LogicalError> {
    store::get(view, &store::role_key(name))
        .await?
        .ok_or_else(|| LogicalError::invalid(format!("unknown role: {name}")))
}

/// `roles/<name>`: read, write (answers the role, as OpenBao does), delete.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    use crate::logical::Operation::*;
    let key = store::role_key(name);
    match req.operation {
        Read => {
            let role: Role = store::get(view, &key)
                .await?
                .ok_or(LogicalError::NotFound)?;
            Ok(Response::data(role.to_json()))
        }
        Create | Update => {
            let role = Role::from_fields(&Fields(&req.data))?;
            view.apply(vec![store::put_op(view, &key, &role)?]).await?;
            Ok(Response::data(role.to_json()))
        }
        Delete => {
            view.apply(vec![view.delete_op(&key)]).await?;
            Ok(Response::no_content())
        }
        List | Patch => Err(LogicalError::UnsupportedOperation),
    }
}

/// `roles`: the role names.
pub(super) async fn list(view: &View) -> Result<Response, LogicalError> {
    Response::list(store::list_all(view, store::ROLES).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn role(v: Value) -> Result<Role, LogicalError> {
        let m: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
        Role::from_fields(&Fields(&m))
    }

    #[test]
    fn a_role_takes_vaults_defaults() {
        let r = role(json!({})).unwrap();
        assert!(r.allow_localhost && r.server_flag && r.client_flag && r.enforce_hostnames);
        assert!(!r.allow_subdomains && !r.allow_any_name && !r.no_store);
        assert_eq!((r.key_type.as_str(), r.key_bits), ("rsa", 2048));
        assert_eq!(
            r.key_usage,
            ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
        );
        assert_eq!(r.not_before_duration, 30);
    }

    #[test]
    fn a_role_reads_lists_durations_and_usages() {
        let r = role(json!({
            "allowed_domains": "a.com, b.com",
            "allowed_uri_sans": ["spiffe://prod/*"],
            "key_type": "ec", "ttl": "1h", "max_ttl": 7200,
            "key_usage": "keyusagedigitalsignature", "ext_key_usage": "serverauth",
        }))
        .unwrap();
        assert_eq!(r.allowed_domains, ["a.com", "b.com"]);
        assert_eq!(r.allowed_uri_sans, ["spiffe://prod/*"]);
        assert_eq!((r.key_type.as_str(), r.key_bits), ("ec", 256));
        assert_eq!((r.ttl, r.max_ttl), (3600, 7200));
        assert_eq!(r.key_usage, ["DigitalSignature"]);
        assert_eq!(r.ext_key_usage, ["ServerAuth"]);
        assert!(role(json!({"ttl": "2h", "max_ttl": "1h"})).is_err());
        assert!(role(json!({"key_usage": "Bogus"})).is_err());
        assert!(role(json!({"key_type": "ec", "key_bits": 1024})).is_err());
        assert_eq!(role(json!({"key_type": "any"})).unwrap().key_bits, 0);
    }
}
