//! `config`: where verification keys come from and which issuer is expected.
//! Exactly one key source: `jwt_validation_pubkeys` (PEM public keys),
//! `jwks_url`, or `oidc_discovery_url`. URLs must be `https://`, except on a
//! loopback address (a local test issuer); `jwks_ca_pem` replaces the trusted
//! roots for fetching them.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

const KEY: &str = "config";

/// The mount's configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct JwtConfig {
    #[serde(default)]
    pub(super) jwt_validation_pubkeys: Vec<String>,
    #[serde(default)]
    pub(super) jwks_url: String,
    #[serde(default)]
    pub(super) jwks_ca_pem: String,
    #[serde(default)]
    pub(super) oidc_discovery_url: String,
    #[serde(default)]
    pub(super) oidc_discovery_ca_pem: String,
    #[serde(default)]
    pub(super) bound_issuer: String,
    #[serde(default)]
    pub(super) default_role: String,
}

pub(super) async fn load(view: &View) -> Result<Option<JwtConfig>, LogicalError> {
    match view.get(KEY).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

/// `https://`, or `http://` to a loopback host.
pub(super) fn check_url(field: &str, url: &str) -> Result<(), LogicalError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| LogicalError::invalid(format!("{field}: not a URL")))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(LogicalError::invalid(format!(
            "{field}: must be an https:// URL (http:// only to a loopback address)"
        ))),
    }
}

fn check_pem_key(pem: &str) -> Result<(), LogicalError> {
    let ok = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok()
        || jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()).is_ok()
        || jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes()).is_ok();
    if ok {
        Ok(())
    } else {
        Err(LogicalError::invalid(
            "jwt_validation_pubkeys: each entry must be a PEM public key (RSA, EC or Ed25519)",
        ))
    }
}

/// `config` (read, write).
pub(super) async fn handle(view: &View, req: &Request) -> Result<Response, LogicalError> {
    match req.operation {
        Operation::Read => {
            let cfg = load(view).await?.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(json!({
                "jwt_validation_pubkeys": cfg.jwt_validation_pubkeys,
                "jwks_url": cfg.jwks_url,
                "jwks_ca_pem": cfg.jwks_ca_pem,
                "oidc_discovery_url": cfg.oidc_discovery_url,
                "oidc_discovery_ca_pem": cfg.oidc_discovery_ca_pem,
                "bound_issuer": cfg.bound_issuer,
                "default_role": cfg.default_role,
                "jwt_supported_algs": [],
            })))
        }
        Operation::Create | Operation::Update => {
            let f = Fields(&req.data);
            let string = |k: &str| -> Result<String, LogicalError> {
                Ok(f.string(k)?.unwrap_or_default().trim().to_owned())
            };
            let cfg = JwtConfig {
                jwt_validation_pubkeys: f
                    .string_list("jwt_validation_pubkeys")?
                    .unwrap_or_default(),
                jwks_url: string("jwks_url")?,
                jwks_ca_pem: string("jwks_ca_pem")?,
                oidc_discovery_url: string("oidc_discovery_url")?,
                oidc_discovery_ca_pem: string("oidc_discovery_ca_pem")?,
                bound_issuer: string("bound_issuer")?,
                default_role: string("default_role")?.to_lowercase(),
            };
            let sources = [
                !cfg.jwt_validation_pubkeys.is_empty(),
                !cfg.jwks_url.is_empty(),
                !cfg.oidc_discovery_url.is_empty(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(LogicalError::invalid(
                    "exactly one of 'jwt_validation_pubkeys', 'jwks_url' and 'oidc_discovery_url' must be set",
                ));
            }
            for pem in &cfg.jwt_validation_pubkeys {
                check_pem_key(pem)?;
            }
            if !cfg.jwks_url.is_empty() {
                check_url("jwks_url", &cfg.jwks_url)?;
            }
            if !cfg.oidc_discovery_url.is_empty() {
                check_url("oidc_discovery_url", &cfg.oidc_discovery_url)?;
            }
            for (field, pem) in [
                ("jwks_ca_pem", &cfg.jwks_ca_pem),
                ("oidc_discovery_ca_pem", &cfg.oidc_discovery_ca_pem),
            ] {
                if !pem.is_empty()
                    && reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                        .map_or(true, |c| c.is_empty())
                {
                    return Err(LogicalError::invalid(format!(
                        "{field}: not a PEM certificate bundle"
                    )));
                }
            }
            let raw = serde_json::to_vec(&cfg).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op(KEY, raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}
