//! One-time enrolment tokens, after kanidm's credential-reset tokens. An admin
//! issues one for a user (`users/<name>/enrollment-token`); it opens exactly one
//! enrolment of a first factor (or of a new one after a reset). Only its SHA-256
//! is stored, at `enrollment-token/<name>` behind the barrier, with its expiry in
//! the storage expiry index; issuing again replaces it. `totp/enroll` checks it
//! without spending it; `totp/confirm` spends it in the same conditional write
//! that activates the user's new password and factor, so of any number of
//! concurrent confirms, on any number of nodes, exactly one succeeds.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::load_user;
use crate::barrier::{BarrierOp, Guard, View};
use crate::clock::rfc3339_secs;
use crate::crypto::{ct_eq, random_base62, sha256_hex, SecretString};
use crate::logical::{format_duration, LogicalError, Response};

/// Lifetime of a token when the admin names none.
pub const DEFAULT_TTL: u64 = 3600;
/// The longest lifetime an admin may ask for.
pub const MAX_TTL: u64 = 7 * 24 * 3600;
/// The one answer for a missing, wrong, expired or spent token: which of these
/// it was would only help someone guessing.
pub const INVALID_TOKEN: &str = "invalid, expired or already used enrollment token";

#[derive(Serialize, Deserialize)]
struct StoredTokenV1 {
    v: u32,
    /// SHA-256 (hex) of the token; the token has 238 bits of entropy, so a plain
    /// hash is as good as a slow one here
    hash: String,
    /// unix seconds
    expires_at: i64,
}

fn key(name: &str) -> String {
    format!("enrollment-token/{name}")
}

/// Issues a token for an existing user (admin path; the core audits it).
pub async fn issue(
    view: &View,
    name: &str,
    ttl: Option<u64>,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if load_user(view, name).await?.is_none() {
        return Err(LogicalError::NotFound);
    }
    let ttl = match ttl {
        None | Some(0) => DEFAULT_TTL,
        Some(t) if t > MAX_TTL => {
            return Err(LogicalError::invalid(format!(
                "ttl must be at most {}",
                format_duration(MAX_TTL)
            )))
        }
        Some(t) => t,
    };
    let expires_at = now.secs().saturating_add(ttl as i64);
    let token = SecretString::new(format!(
        "cet.{}",
        random_base62(40)
            .map_err(crate::barrier::BarrierError::from)?
            .as_str()
    ));
    let stored = StoredTokenV1 {
        v: 1,
        hash: sha256_hex(token.expose().as_bytes()),
        expires_at,
    };
    let raw = serde_json::to_vec(&stored).map_err(|_| LogicalError::Corrupt)?;
    view.apply(vec![view.put_op(&key(name), raw, Some(expires_at))])
        .await?;
    Ok(Response::data(json!({
        "enrollment_token": token.expose(),
        "expires_at": rfc3339_secs(expires_at),
        "ttl": ttl,
        "username": name,
    })))
}

/// A presented token that matched: its hash, and a guard on its row for the
/// conditional write that spends it.
pub(super) struct Valid {
    /// SHA-256 of the token, which binds a pending enrolment to it
    pub hash: String,
    /// unchanged-row guard for [`spend_op`]'s batch
    pub guard: Guard,
}

/// Checks `presented` against the user's outstanding token, without spending it.
/// Cheap (one read, one hash), so it runs before any password hashing.
pub(super) async fn check(
    view: &View,
    name: &str,
    presented: &SecretString,
    now: UnixTime,
) -> Result<Valid, LogicalError> {
    let invalid = || LogicalError::Forbidden(INVALID_TOKEN.into());
    let (raw, guard) = view.get_versioned(&key(name)).await?;
    let raw = raw.ok_or_else(invalid)?;
    let stored: StoredTokenV1 = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
    let hash = sha256_hex(presented.expose().as_bytes());
    if stored.expires_at <= now.secs() || !ct_eq(hash.as_bytes(), stored.hash.as_bytes()) {
        return Err(invalid());
    }
    Ok(Valid { hash, guard })
}

/// The op that spends the token; apply it with the token's guard.
pub(super) fn spend_op(view: &View, name: &str) -> BarrierOp {
    view.delete_op(&key(name))
}

/// The op that drops a user's outstanding token (user deleted).
pub(super) fn revoke_op(view: &View, name: &str) -> BarrierOp {
    view.delete_op(&key(name))
}
