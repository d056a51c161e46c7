//! `login/<name>`: password first, then the second factor — in the same request
//! (`totp` field or `X-Vault-MFA` header) or through `sys/mfa/validate` with the
//! `mfa_request_id` the first answer carried. Every failure counts toward the
//! user's lockout; all failures look alike to the caller.

use crate::clock::UnixTime;
use std::collections::BTreeMap;
use std::net::IpAddr;

use zeroize::Zeroizing;

use super::model::{
    clear_failures, load_user, reserve_attempt, validate_name, Reservation, StoredUserV1,
    UserpassConfig,
};
use crate::auth::tokenutil::TtlLayers;
use crate::auth::{password, totp};
use crate::barrier::{BarrierError, View, CAS_ATTEMPTS};
use crate::crypto::{ct_eq, sha256_hex};
use crate::logical::{Fields, LogicalError};
use crate::mounts::MountEntry;
use crate::policy::Entity;
use crate::token::CreateParams;

/// The uniform answer to any wrong credential.
pub const INVALID: &str = "invalid username, password or code";

/// What a password login leads to.
#[derive(Debug)]
pub enum LoginStep {
    /// Both factors passed (or the mount does not require a second): make a token.
    Issue(Box<CreateParams>),
    /// The password passed; a code is needed.
    NeedCode(MfaChallenge),
}

/// A pending second-factor check.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    /// lower-cased username
    pub username: String,
}

/// Logs in `raw_name` with the request's password and, optionally, a code.
///
/// The attempt is counted against the user's lockout budget before the password
/// is hashed (one conditional write), so concurrent guesses cannot outrun the
/// lockout; a full success clears the count.
pub async fn login(
    view: &View,
    mount: &MountEntry,
    raw_name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    header_code: Option<&str>,
    remote: Option<IpAddr>,
    now: UnixTime,
) -> Result<LoginStep, LogicalError> {
    let name = validate_name(raw_name).map_err(|_| LogicalError::invalid(INVALID))?;
    let cfg = UserpassConfig::load(view).await?;
    let f = Fields(data);
    let pw = Zeroizing::new(
        f.string("password")?
            .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?,
    );
    let user = load_user(view, &name).await?;
    // Unknown names are not counted (that would let anyone fill the store), but
    // they are hashed like known ones.
    let reservation = match &user {
        Some(_) => Some(reserve_attempt(view, &cfg, &name, now).await?),
        None => None,
    };
    let verified = password::verify(pw, user.as_ref().map(|u| u.password_hash.clone())).await;
    let ok = match verified {
        Ok(ok) => ok,
        // A full hashing pool (503) checked nothing: the attempt is given back.
        Err(e) => {
            if let Some(r) = reservation {
                r.release(view, &cfg).await?;
            }
            return Err(LogicalError::from(e));
        }
    };
    let (Some(user), Some(reservation)) = (user, reservation) else {
        return Err(LogicalError::invalid(INVALID));
    };
    if !ok {
        reservation.failed();
        return Err(LogicalError::invalid(INVALID));
    }
    if !user.token.allows(remote) {
        reservation.release(view, &cfg).await?;
        return Err(LogicalError::Forbidden(
            "login request originated from an address not allowed for this user".into(),
        ));
    }
    if !cfg.require_mfa {
        clear_failures(view, &name).await?;
        return Ok(LoginStep::Issue(Box::new(token_params(
            mount, &cfg, &name, &user, false,
        ))));
    }
    if !user.totp.as_ref().is_some_and(|t| t.confirmed) {
        reservation.release(view, &cfg).await?;
        return Err(LogicalError::Forbidden(
            "no second factor is enrolled for this user: an administrator must allow an enrolment, then run `coffer totp enroll`".into(),
        ));
    }
    let code = f.string("totp")?.or_else(|| header_code.map(str::to_owned));
    match code {
        None => {
            // The password was right; the code, when it comes, is its own attempt.
            reservation.release(view, &cfg).await?;
            Ok(LoginStep::NeedCode(MfaChallenge { username: name }))
        }
        Some(code) => {
            let code = Zeroizing::new(code);
            let user = check_code(view, &cfg, &name, &code, now, reservation).await?;
            Ok(LoginStep::Issue(Box::new(token_params(
                mount, &cfg, &name, &user, true,
            ))))
        }
    }
}

/// Finishes a login that is waiting for its code (`sys/mfa/validate`).
pub async fn complete_mfa(
    view: &View,
    mount: &MountEntry,
    username: &str,
    code: &str,
    now: UnixTime,
) -> Result<CreateParams, LogicalError> {
    let cfg = UserpassConfig::load(view).await?;
    let reservation = reserve_attempt(view, &cfg, username, now).await?;
    let user = check_code(view, &cfg, username, code, now, reservation).await?;
    Ok(token_params(mount, &cfg, username, &user, true))
}

/// The answer to a TOTP code whose time step was already spent: not a guess, so
/// it does not count toward the lockout.
pub const CODE_ALREADY_USED: &str = "this code has already been used; wait for the next one";

/// Accepts a TOTP code (each time step once) or an unused recovery code, for an
/// attempt already counted by `reservation`. Spending the step or the recovery
/// code is a conditional write on the user record: of concurrent requests with
/// one code, on any node, exactly one gets through. Returns the user as updated.
pub(super) async fn check_code(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    code: &str,
    now: UnixTime,
    reservation: Reservation,
) -> Result<StoredUserV1, LogicalError> {
    let code = code.trim();
    let key = format!("user/{name}");
    for _ in 0..CAS_ATTEMPTS {
        let (raw, guard) = view.get_versioned(&key).await?;
        let Some(raw) = raw else {
            reservation.failed();
            return Err(LogicalError::Forbidden(INVALID.into()));
        };
        let mut user: StoredUserV1 =
            serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        let mut accepted = false;
        let mut replayed = false;
        if let Some(factor) = user.totp.as_mut().filter(|t| t.confirmed) {
            let secret =
                Zeroizing::new(hex::decode(&factor.secret_hex).map_err(|_| LogicalError::Corrupt)?);
            if let Some(step) = totp::verify(&secret, code, now.secs().max(0) as u64) {
                // A code is good for one login: its step, and every earlier one, is spent.
                if step > factor.last_step {
                    factor.last_step = step;
                    accepted = true;
                } else {
                    replayed = true;
                }
            }
        }
        let mut recovery_used = false;
        if !accepted && code.len() > 6 {
            let digest = sha256_hex(normalize_recovery(code).as_bytes());
            if let Some(i) = user
                .recovery_code_hashes
                .iter()
                .position(|h| ct_eq(h.as_bytes(), digest.as_bytes()))
            {
                user.recovery_code_hashes.remove(i);
                accepted = true;
                recovery_used = true;
            }
        }
        if !accepted {
            if replayed {
                reservation.release(view, cfg).await?;
                return Err(LogicalError::Forbidden(CODE_ALREADY_USED.into()));
            }
            reservation.failed();
            // As OpenBao: a wrong second factor is 403 (the password was right).
            return Err(LogicalError::Forbidden(INVALID.into()));
        }
        let raw = Zeroizing::new(serde_json::to_vec(&user).map_err(|_| LogicalError::Corrupt)?);
        if view
            .apply_if(&[guard], vec![view.put_op(&key, raw.to_vec(), None)])
            .await?
        {
            if recovery_used {
                tracing::info!(user = %name, "recovery code used");
            }
            clear_failures(view, name).await?;
            return Ok(user);
        }
        // Someone changed the user meanwhile (perhaps spending this very code):
        // decide again on what is stored now.
    }
    Err(BarrierError::Contended.into())
}

/// Recovery codes are compared without dashes, spaces or case.
pub(super) fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The token of a login: the user's token parameters over the mount's config
/// (`auth/<mount>/config` token_ttl/token_max_ttl) and the mount's tuning.
fn token_params(
    mount: &MountEntry,
    cfg: &UserpassConfig,
    name: &str,
    user: &StoredUserV1,
    mfa: bool,
) -> CreateParams {
    let mut meta = BTreeMap::new();
    meta.insert("username".to_owned(), name.to_owned());
    meta.insert("mfa".to_owned(), mfa.to_string());
    let mut params = CreateParams {
        orphan: true,
        display_name: format!(
            "{}-{name}",
            mount.path.trim_end_matches('/').replace('/', "-")
        ),
        meta,
        path: format!("auth/{}login/{name}", mount.path),
        entity: Some(Entity {
            id: user.entity_id.clone(),
            name: name.to_owned(),
            metadata: user.metadata.clone(),
        }),
        ..CreateParams::default()
    };
    user.token.apply(
        &mut params,
        TtlLayers::new(cfg.token_ttl, cfg.token_max_ttl, &mount.config),
    );
    params
}
