//! `login/<name>`: password first, then the second factor — in the same request
//! (`totp` field or `X-Vault-MFA` header) or through `sys/mfa/validate` with the
//! `mfa_request_id` the first answer carried. Every failure counts toward the
//! user's lockout; all failures look alike to the caller.

use std::collections::BTreeMap;
use std::net::IpAddr;

use zeroize::Zeroizing;

use super::model::{
    clear_failures, ensure_not_locked, load_user, normalize_name, record_failure, save_user,
    StoredUserV1, UserpassConfig,
};
use super::path_users::parse_cidr;
use crate::auth::{password, totp};
use crate::barrier::View;
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
pub async fn login(
    view: &View,
    mount: &MountEntry,
    raw_name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    header_code: Option<&str>,
    remote: Option<IpAddr>,
    now: i64,
) -> Result<LoginStep, LogicalError> {
    let name = normalize_name(raw_name).map_err(|_| LogicalError::invalid(INVALID))?;
    let cfg = UserpassConfig::load(view).await?;
    ensure_not_locked(view, &name, now).await?;
    let f = Fields(data);
    let pw = Zeroizing::new(
        f.string("password")?
            .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?,
    );
    let user = load_user(view, &name).await?;
    // A full hashing pool is 503 and counts as no attempt.
    let ok = password::verify(pw, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(LogicalError::from)?;
    let Some(user) = user.filter(|_| ok) else {
        if ok || view.get(&format!("user/{name}")).await?.is_some() {
            record_failure(view, &cfg, &name, now).await?;
        }
        return Err(LogicalError::invalid(INVALID));
    };
    if !user.token_bound_cidrs.is_empty() {
        let allowed = remote.is_some_and(|ip| {
            user.token_bound_cidrs
                .iter()
                .filter_map(|c| parse_cidr(c).ok())
                .any(|net| net.contains(&ip))
        });
        if !allowed {
            return Err(LogicalError::Forbidden(
                "login request originated from an address not allowed for this user".into(),
            ));
        }
    }
    if !cfg.require_mfa {
        clear_failures(view, &name).await?;
        return Ok(LoginStep::Issue(Box::new(token_params(
            mount, &cfg, &name, &user, false,
        ))));
    }
    if !user.totp.as_ref().is_some_and(|t| t.confirmed) {
        return Err(LogicalError::Forbidden(
            "no second factor is enrolled for this user: an administrator must allow an enrolment, then run `coffer totp enroll`".into(),
        ));
    }
    let code = f.string("totp")?.or_else(|| header_code.map(str::to_owned));
    match code {
        None => Ok(LoginStep::NeedCode(MfaChallenge { username: name })),
        Some(code) => {
            let user = check_code(view, &cfg, &name, user, &code, now).await?;
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
    now: i64,
) -> Result<CreateParams, LogicalError> {
    let cfg = UserpassConfig::load(view).await?;
    ensure_not_locked(view, username, now).await?;
    let user = load_user(view, username)
        .await?
        .ok_or_else(|| LogicalError::invalid(INVALID))?;
    let user = check_code(view, &cfg, username, user, code, now).await?;
    Ok(token_params(mount, &cfg, username, &user, true))
}

/// Accepts a TOTP code (each time step once) or an unused recovery code;
/// records a failure otherwise. Returns the user as updated.
pub(super) async fn check_code(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    mut user: StoredUserV1,
    code: &str,
    now: i64,
) -> Result<StoredUserV1, LogicalError> {
    let code = code.trim();
    let mut accepted = false;
    if let Some(factor) = user.totp.as_mut().filter(|t| t.confirmed) {
        let secret =
            Zeroizing::new(hex::decode(&factor.secret_hex).map_err(|_| LogicalError::Corrupt)?);
        if let Some(step) = totp::verify(&secret, code, now.max(0) as u64) {
            // A code is good for one login: its step, and every earlier one, is spent.
            if step > factor.last_step {
                factor.last_step = step;
                accepted = true;
            }
        }
    }
    if !accepted && code.len() > 6 {
        let digest = sha256_hex(normalize_recovery(code).as_bytes());
        if let Some(i) = user
            .recovery_code_hashes
            .iter()
            .position(|h| ct_eq(h.as_bytes(), digest.as_bytes()))
        {
            user.recovery_code_hashes.remove(i);
            accepted = true;
            tracing::info!(user = %name, "recovery code used");
        }
    }
    if !accepted {
        record_failure(view, cfg, name, now).await?;
        // As OpenBao: a wrong second factor is 403 (the password was right).
        return Err(LogicalError::Forbidden(INVALID.into()));
    }
    save_user(view, name, &user).await?;
    clear_failures(view, name).await?;
    Ok(user)
}

/// Recovery codes are compared without dashes, spaces or case.
pub(super) fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn token_params(
    mount: &MountEntry,
    cfg: &UserpassConfig,
    name: &str,
    user: &StoredUserV1,
    mfa: bool,
) -> CreateParams {
    let max_ttl = if user.token_max_ttl > 0 {
        user.token_max_ttl
    } else {
        cfg.token_max_ttl
    };
    let ttl = if user.token_ttl > 0 {
        user.token_ttl
    } else {
        cfg.token_ttl
    };
    let mut meta = BTreeMap::new();
    meta.insert("username".to_owned(), name.to_owned());
    meta.insert("mfa".to_owned(), mfa.to_string());
    CreateParams {
        policies: user.token_policies.clone(),
        no_default_policy: false,
        ttl: Some(ttl.min(max_ttl.max(1))),
        explicit_max_ttl: max_ttl,
        num_uses: 0,
        renewable: true,
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
        period: 0,
        bound_cidrs: user.token_bound_cidrs.clone(),
    }
}
