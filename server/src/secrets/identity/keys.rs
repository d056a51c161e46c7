//! Signing keys of `identity/oidc/key/<name>`: generated behind the barrier
//! (RS256 with a 2048-bit key made by the rsa crate, ES256 on P-256 or EdDSA
//! on Ed25519 by ring; every signature is ring's), rotated when their
//! `rotation_period` has passed (checked whenever the key is used or published,
//! with a conditional write, so two nodes never both rotate), and kept in the
//! published key set until `verification_ttl` after they stopped signing.

use base64::Engine as _;
use ring::signature::KeyPair as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::barrier::{BarrierError, Guard, View, CAS_ATTEMPTS};
use crate::clock::UnixTime;
use crate::logical::LogicalError;

/// One generation of a key.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct KeyVersion {
    pub(super) kid: String,
    /// PKCS#8, base64
    pkcs8: Zeroizing<String>,
    /// the public half as a JWK
    pub(super) jwk: Value,
    /// unix seconds it stops being published (0 while it signs)
    pub(super) retire_at: i64,
}

/// A named key.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct NamedKey {
    pub(super) algorithm: String,
    pub(super) rotation_period: u64,
    pub(super) verification_ttl: u64,
    pub(super) allowed_client_ids: Vec<String>,
    pub(super) current: KeyVersion,
    #[serde(default)]
    pub(super) previous: Vec<KeyVersion>,
    pub(super) next_rotation: i64,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.current.kid)
            .finish_non_exhaustive()
    }
}

pub(super) fn key_path(name: &str) -> String {
    format!("oidc/key/{name}")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh key pair for `algorithm`.
pub(super) fn generate(algorithm: &str) -> Result<KeyVersion, LogicalError> {
    let rng = ring::rand::SystemRandom::new();
    let kid = uuid::Uuid::new_v4().to_string();
    let failed = || LogicalError::Upstream("cannot generate a key".into());
    let (pkcs8, jwk) = match algorithm {
        "ES256" => {
            let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let doc =
                ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| failed())?;
            let pair = ring::signature::EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng)
                .map_err(|_| failed())?;
            let public = pair.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                             "x": b64(&public[1..33]), "y": b64(&public[33..65])});
            (doc.as_ref().to_vec(), jwk)
        }
        "EdDSA" => {
            let doc =
                ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?;
            let pair =
                ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| failed())?;
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                             "x": b64(pair.public_key().as_ref())});
            (doc.as_ref().to_vec(), jwk)
        }
        "RS256" => {
            use rsa::pkcs8::EncodePrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            // Made by the rsa crate (ring cannot make RSA keys); signing is ring's.
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|_| failed())?;
            let doc = key.to_pkcs8_der().map_err(|_| failed())?;
            let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                             "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())});
            (doc.as_bytes().to_vec(), jwk)
        }
        other => {
            return Err(LogicalError::invalid(format!(
                "algorithm \"{other}\" is not supported: use \"RS256\", \"ES256\" or \"EdDSA\""
            )))
        }
    };
    Ok(KeyVersion {
        kid,
        pkcs8: Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pkcs8)),
        jwk,
        retire_at: 0,
    })
}

impl KeyVersion {
    /// The signing key for jsonwebtoken.
    pub(super) fn encoding_key(
        &self,
        algorithm: &str,
    ) -> Result<(jsonwebtoken::EncodingKey, jsonwebtoken::Algorithm), LogicalError> {
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(self.pkcs8.as_bytes())
                .map_err(|_| LogicalError::Corrupt)?,
        );
        Ok(match algorithm {
            "ES256" => (
                jsonwebtoken::EncodingKey::from_ec_der(&der),
                jsonwebtoken::Algorithm::ES256,
            ),
            "RS256" => {
                // jsonwebtoken takes RSA keys as PKCS#1.
                use rsa::pkcs1::EncodeRsaPrivateKey as _;
                use rsa::pkcs8::DecodePrivateKey as _;
                let key =
                    rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|_| LogicalError::Corrupt)?;
                let pkcs1 = key.to_pkcs1_der().map_err(|_| LogicalError::Corrupt)?;
                (
                    jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes()),
                    jsonwebtoken::Algorithm::RS256,
                )
            }
            _ => (
                jsonwebtoken::EncodingKey::from_ed_der(&der),
                jsonwebtoken::Algorithm::EdDSA,
            ),
        })
    }
}

pub(super) async fn load(
    view: &View,
    name: &str,
) -> Result<Option<(NamedKey, Guard)>, LogicalError> {
    let (raw, guard) = view.get_versioned(&key_path(name)).await?;
    match raw {
        None => Ok(None),
        Some(raw) => Ok(Some((
            serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?,
            guard,
        ))),
    }
}

pub(super) fn put_op(
    view: &View,
    name: &str,
    key: &NamedKey,
) -> Result<crate::barrier::BarrierOp, LogicalError> {
    let raw = Zeroizing::new(serde_json::to_vec(key).map_err(|_| LogicalError::Corrupt)?);
    Ok(view.put_op(&key_path(name), raw.to_vec(), None))
}

/// Moves `key` to a new version now: the old one is published until
/// `verification_ttl` from now.
pub(super) fn rotate_now(key: &mut NamedKey, now: UnixTime) -> Result<(), LogicalError> {
    let fresh = generate(&key.algorithm)?;
    let mut old = std::mem::replace(&mut key.current, fresh);
    old.retire_at = now
        .secs()
        .saturating_add(i64::try_from(key.verification_ttl).unwrap_or(i64::MAX));
    key.previous.push(old);
    key.previous.retain(|v| v.retire_at > now.secs());
    key.next_rotation = now
        .secs()
        .saturating_add(i64::try_from(key.rotation_period).unwrap_or(i64::MAX));
    Ok(())
}

/// The key `name` as it is now: rotated first if its period has passed.
pub(super) async fn current(
    view: &View,
    name: &str,
    now: UnixTime,
) -> Result<NamedKey, LogicalError> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut key, guard) = load(view, name)
            .await?
            .ok_or_else(|| LogicalError::invalid(format!("key \"{name}\" does not exist")))?;
        let due = key.rotation_period > 0 && now.secs() >= key.next_rotation;
        let stale = key.previous.iter().any(|v| v.retire_at <= now.secs());
        if !due && !stale {
            return Ok(key);
        }
        if due {
            rotate_now(&mut key, now)?;
        } else {
            key.previous.retain(|v| v.retire_at > now.secs());
        }
        if view
            .apply_if(&[guard], vec![put_op(view, name, &key)?])
            .await?
        {
            return Ok(key);
        }
    }
    Err(LogicalError::Barrier(BarrierError::Contended))
}

/// Every public key still published, over all keys of the mount.
pub(super) async fn published(view: &View, now: UnixTime) -> Result<Vec<Value>, LogicalError> {
    let mut out = Vec::new();
    for path in view.list("oidc/key/", None, 1000).await? {
        let Some(name) = path.strip_prefix("oidc/key/") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let key = current(view, name, now).await?;
        out.push(key.current.jwk.clone());
        out.extend(key.previous.iter().map(|v| v.jwk.clone()));
    }
    Ok(out)
}
