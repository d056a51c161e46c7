//! Verification keys: from the config's PEM keys, or a JWKS fetched over TLS
//! (from `jwks_url`, or the `jwks_uri` of the OIDC discovery document, whose
//! `issuer` must be the discovery URL). Each mount's key set is cached on the
//! node; an unknown `kid` refreshes it once (at most every few seconds, so a
//! flood of made-up kids cannot make Coffer hammer the issuer).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::config::{check_url, JwtConfig};
use crate::logical::LogicalError;

/// How long a fetched key set is used before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The shortest time between two fetches for one mount.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Longest key-set or discovery document read.
const MAX_DOCUMENT: usize = 512 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One verification key, with the algorithms it may verify.
pub(super) struct Key {
    pub(super) kid: Option<String>,
    pub(super) key: DecodingKey,
    pub(super) algorithms: Vec<Algorithm>,
}

struct Cached {
    fetched: Instant,
    keys: std::sync::Arc<Vec<Key>>,
}

/// Key sets by mount.
#[derive(Default)]
pub(super) struct KeyCache {
    sets: std::sync::Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache { .. }")
    }
}

/// What a key is, and so which algorithms it may verify. jsonwebtoken checks
/// only that *some* allowed algorithm fits the key, then verifies with the
/// header's algorithm: so the allowed list must hold this key's algorithms only
/// (an RSA key must never verify an HS256 "signature" made with its public bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

fn family_algorithms(family: Family, hint: Option<Algorithm>) -> Vec<Algorithm> {
    use Algorithm::*;
    let fits = match family {
        Family::Rsa => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        Family::P256 => vec![ES256],
        Family::P384 => vec![ES384],
        Family::Ed25519 => vec![EdDSA],
    };
    match hint {
        Some(h) if fits.contains(&h) => vec![h],
        // A key whose declared alg is not of its own kind verifies nothing.
        Some(_) => Vec::new(),
        None => fits,
    }
}

fn from_pem(pem: &str) -> Option<(DecodingKey, Family)> {
    let pem = pem.as_bytes();
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Some((k, Family::Rsa));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Some((k, Family::Ed25519));
    }
    // EC keys: the curve decides the algorithm; P-256 is what CI issuers use,
    // P-384 is told apart by its longer encoding.
    let k = DecodingKey::from_ec_pem(pem).ok()?;
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let family = if body.len() > 140 {
        Family::P384
    } else {
        Family::P256
    };
    Some((k, family))
}

fn family_of_jwk(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Family> {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    match &jwk.algorithm {
        P::RSA(_) => Some(Family::Rsa),
        P::EllipticCurve(ec) => match ec.curve {
            C::P256 => Some(Family::P256),
            C::P384 => Some(Family::P384),
            _ => None,
        },
        P::OctetKeyPair(okp) => matches!(okp.curve, C::Ed25519).then_some(Family::Ed25519),
        // "oct" keys are MAC keys: never accepted.
        P::OctetKey(_) => None,
    }
}

fn hint_of(alg: Option<KeyAlgorithm>) -> Option<Algorithm> {
    use KeyAlgorithm as K;
    Some(match alg? {
        K::RS256 => Algorithm::RS256,
        K::RS384 => Algorithm::RS384,
        K::RS512 => Algorithm::RS512,
        K::PS256 => Algorithm::PS256,
        K::PS384 => Algorithm::PS384,
        K::PS512 => Algorithm::PS512,
        K::ES256 => Algorithm::ES256,
        K::ES384 => Algorithm::ES384,
        K::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn keys_of_set(set: &JwkSet) -> Vec<Key> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let family = family_of_jwk(jwk)?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let algorithms = family_algorithms(family, hint_of(jwk.common.key_algorithm));
            (!algorithms.is_empty()).then(|| Key {
                kid: jwk.common.key_id.clone(),
                key,
                algorithms,
            })
        })
        .collect()
}

fn http_client(ca_pem: &str) -> Result<reqwest::Client, LogicalError> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if !ca_pem.is_empty() {
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .map_err(|_| LogicalError::invalid("the configured CA PEM does not parse"))?;
        builder = builder.tls_built_in_root_certs(false);
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    builder
        .build()
        .map_err(|_| LogicalError::Upstream("cannot build an HTTP client".into()))
}

async fn fetch_json(
    client: &reqwest::Client,
    url: &str,
    what: &str,
) -> Result<serde_json::Value, LogicalError> {
    check_url(what, url)?;
    let fail = |why: String| LogicalError::Upstream(format!("cannot fetch the {what}: {why}"));
    let resp = client.get(url).send().await.map_err(|e| {
        fail(if e.is_timeout() {
            "timed out".into()
        } else if e.is_connect() {
            "cannot connect".into()
        } else {
            "request failed".into()
        })
    })?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status().as_u16())));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|_| fail("reading the body failed".into()))?;
    if bytes.len() > MAX_DOCUMENT {
        return Err(fail("the document is too large".into()));
    }
    serde_json::from_slice(&bytes).map_err(|_| fail("not JSON".into()))
}

async fn fetch(cfg: &JwtConfig) -> Result<Vec<Key>, LogicalError> {
    let (url, ca) = if cfg.jwks_url.is_empty() {
        let client = http_client(&cfg.oidc_discovery_ca_pem)?;
        let base = cfg.oidc_discovery_url.trim_end_matches('/');
        let doc = fetch_json(
            &client,
            &format!("{base}/.well-known/openid-configuration"),
            "OIDC discovery document",
        )
        .await?;
        let issuer = doc["issuer"].as_str().unwrap_or_default();
        if issuer.trim_end_matches('/') != base {
            return Err(LogicalError::Upstream(format!(
                "the OIDC discovery document names issuer \"{issuer}\", not the discovery URL"
            )));
        }
        let jwks = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| {
                LogicalError::Upstream("the OIDC discovery document has no jwks_uri".into())
            })?
            .to_owned();
        (jwks, cfg.oidc_discovery_ca_pem.clone())
    } else {
        (cfg.jwks_url.clone(), cfg.jwks_ca_pem.clone())
    };
    let client = http_client(&ca)?;
    let doc = fetch_json(&client, &url, "JWKS").await?;
    let set: JwkSet = serde_json::from_value(doc)
        .map_err(|_| LogicalError::Upstream("the JWKS is not a JSON Web Key Set".into()))?;
    Ok(keys_of_set(&set))
}

impl KeyCache {
    /// Drops a mount's cached keys (its config changed).
    pub(super) fn forget(&self, mount: &str) {
        crate::sync::lock(&self.sets).remove(mount);
    }

    /// The keys of `mount`. `refresh`: the cached set lacked the token's `kid`.
    pub(super) async fn keys(
        &self,
        mount: &str,
        cfg: &JwtConfig,
        refresh: bool,
    ) -> Result<std::sync::Arc<Vec<Key>>, LogicalError> {
        if !cfg.jwt_validation_pubkeys.is_empty() {
            let keys = cfg
                .jwt_validation_pubkeys
                .iter()
                .filter_map(|pem| from_pem(pem))
                .map(|(key, family)| Key {
                    kid: None,
                    algorithms: family_algorithms(family, None),
                    key,
                })
                .collect();
            return Ok(std::sync::Arc::new(keys));
        }
        {
            let sets = crate::sync::lock(&self.sets);
            if let Some(c) = sets.get(mount) {
                let fresh = c.fetched.elapsed() < MAX_AGE;
                let too_soon = c.fetched.elapsed() < MIN_REFRESH;
                if (fresh && !refresh) || too_soon {
                    return Ok(c.keys.clone());
                }
            }
        }
        let keys = std::sync::Arc::new(fetch(cfg).await?);
        crate::sync::lock(&self.sets).insert(
            mount.to_owned(),
            Cached {
                fetched: Instant::now(),
                keys: keys.clone(),
            },
        );
        Ok(keys)
    }
}
