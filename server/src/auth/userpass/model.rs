//! Stored users, lockout counters and the mount's config.

use crate::clock::UnixTime;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::tokenutil::TokenParams;
use crate::barrier::{BarrierError, View, CAS_ATTEMPTS};
use crate::logical::LogicalError;

/// Per-mount settings (`auth/<mount>/config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserpassConfig {
    /// a person never gets a token with one factor (turning this off needs sudo)
    pub require_mfa: bool,
    /// failed attempts before lockout
    pub lockout_threshold: u32,
    /// seconds a lockout lasts
    pub lockout_duration: u64,
    /// seconds after which the failure counter starts again
    pub lockout_counter_reset: u64,
    /// default token TTL (seconds)
    pub token_ttl: u64,
    /// token max TTL (seconds); a person's token never lives longer
    pub token_max_ttl: u64,
    /// login attempts per client address per minute
    pub login_rate_per_minute: u32,
}

impl Default for UserpassConfig {
    fn default() -> Self {
        UserpassConfig {
            require_mfa: true,
            lockout_threshold: 5,
            lockout_duration: 15 * 60,
            lockout_counter_reset: 15 * 60,
            token_ttl: 3600,
            token_max_ttl: 8 * 3600,
            login_rate_per_minute: 60,
        }
    }
}

impl UserpassConfig {
    /// The stored config, or the defaults.
    pub async fn load(view: &View) -> Result<UserpassConfig, LogicalError> {
        match view.get("config").await? {
            None => Ok(UserpassConfig::default()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt),
        }
    }
}

/// A confirmed or pending TOTP factor.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TotpFactor {
    /// the shared secret, hex (behind the barrier; zeroized when dropped)
    pub secret_hex: Zeroizing<String>,
    /// usable for login
    pub confirmed: bool,
    /// highest time step already used (replay protection)
    pub last_step: u64,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// A stored user. Versioned record.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredUserV1 {
    /// layout version
    pub v: u32,
    /// Argon2id PHC string
    pub password_hash: String,
    /// the token parameters of this user's logins (`token_policies`,
    /// `token_ttl`, ...; stored at the top level of the record, where the
    /// fields that existed before the shared module already were)
    #[serde(flatten)]
    pub token: TokenParams,
    /// e.g. `team`, for templated policies
    pub metadata: BTreeMap<String, String>,
    /// stable identity id
    pub entity_id: String,
    /// the confirmed factor
    pub totp: Option<TotpFactor>,
    /// a factor being enrolled
    pub pending_totp: Option<TotpFactor>,
    /// an enrolment may start without a current code (new user, or after reset)
    pub enrollment_allowed: bool,
    /// SHA-256 of unused recovery codes
    pub recovery_code_hashes: Vec<String>,
    /// an enrolment opened with an enrolment token: SHA-256 of that token
    #[serde(default)]
    pub pending_enrollment_token: Option<String>,
    /// the new password chosen during that enrolment (Argon2id PHC string);
    /// takes effect only when the enrolment is confirmed
    #[serde(default)]
    pub pending_password_hash: Option<String>,
    /// recovery codes handed out at enrolment, kept (behind the barrier, like the
    /// TOTP secret) until confirm activates them as hashes
    #[serde(default)]
    pub pending_recovery_codes: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for StoredUserV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUserV1")
            .field("token_policies", &self.token.token_policies)
            .finish_non_exhaustive()
    }
}

/// Refuses a user name that is not in its canonical form. Vault folds user
/// names to lower case; here the core has already folded the one in the path
/// before authorising it (`core/canonical.rs`), so a handler that rewrote the
/// name now would act on another user than the one the policy decided on.
pub fn validate_name(name: &str) -> Result<String, LogicalError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '@')
        })
    {
        return Err(LogicalError::invalid(
            "usernames are 1-128 characters of letters, digits, '-', '_', '.' and '@' (folded to lower case)",
        ));
    }
    Ok(name.to_owned())
}

pub(super) async fn load_user(
    view: &View,
    name: &str,
) -> Result<Option<StoredUserV1>, LogicalError> {
    match view.get(&format!("user/{name}")).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

/// Decodes a stored user record.
pub(super) fn parse_user(raw: &[u8]) -> Result<StoredUserV1, LogicalError> {
    serde_json::from_slice(raw).map_err(|_| LogicalError::Corrupt)
}

/// The op that writes a user record (for conditional batches).
pub(super) fn user_op(
    view: &View,
    name: &str,
    user: &StoredUserV1,
) -> Result<crate::barrier::BarrierOp, LogicalError> {
    let raw = serde_json::to_vec(user).map_err(|_| LogicalError::Corrupt)?;
    Ok(view.put_op(&format!("user/{name}"), raw, None))
}

pub(super) async fn save_user(
    view: &View,
    name: &str,
    user: &StoredUserV1,
) -> Result<(), LogicalError> {
    let raw = serde_json::to_vec(user).map_err(|_| LogicalError::Corrupt)?;
    view.apply(vec![view.put_op(&format!("user/{name}"), raw, None)])
        .await?;
    Ok(())
}

/// Failed attempts of one user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Lockout {
    pub(super) failures: u32,
    pub(super) first_failure: i64,
    pub(super) locked_until: i64,
}

pub(super) async fn load_lockout(view: &View, name: &str) -> Result<Lockout, LogicalError> {
    match view.get(&format!("lockout/{name}")).await? {
        None => Ok(Lockout::default()),
        Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt),
    }
}

/// Refuses a locked user.
pub(super) async fn ensure_not_locked(
    view: &View,
    name: &str,
    now: UnixTime,
) -> Result<(), LogicalError> {
    let l = load_lockout(view, name).await?;
    if l.locked_until > now.secs() {
        return Err(locked());
    }
    Ok(())
}

/// Lockouts since the process started. A process counter rather than a field
/// of some store because lockouts happen deep inside a login and a process runs
/// one core.
static LOCKOUTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Lockouts since the process started (`coffer_lockouts_total`).
pub fn lockouts_total() -> u64 {
    LOCKOUTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// One attempt counted against a user's lockout budget before its credential is
/// checked. A failed check needs nothing more (the attempt already counted); a
/// success clears the counter; a check that turns out not to be a guess (a
/// replayed code) gives the attempt back with [`Reservation::release`].
#[derive(Debug)]
#[must_use = "a reservation is spent, cleared or released"]
pub(super) struct Reservation {
    name: String,
    /// this attempt is the last one the window allows: the user is locked now
    locks: bool,
}

impl Reservation {
    /// Call when the checked credential was wrong: logs and counts a lockout
    /// that this attempt completed.
    pub(super) fn failed(self) {
        if self.locks {
            tracing::warn!(user = %self.name, "user locked out after repeated failed logins");
            LOCKOUTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Gives the attempt back (conditional write, retried on contention).
    pub(super) async fn release(
        self,
        view: &View,
        cfg: &UserpassConfig,
    ) -> Result<(), LogicalError> {
        let key = format!("lockout/{}", self.name);
        for _ in 0..CAS_ATTEMPTS {
            let (raw, guard) = view.get_versioned(&key).await?;
            let Some(raw) = raw else {
                return Ok(());
            };
            let mut l: Lockout = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
            l.failures = l.failures.saturating_sub(1);
            if l.failures < cfg.lockout_threshold.max(1) {
                l.locked_until = 0;
            }
            let op = lockout_op(view, cfg, &self.name, &l)?;
            if view.apply_if(&[guard], vec![op]).await? {
                return Ok(());
            }
        }
        Err(BarrierError::Contended.into())
    }
}

/// Counts an attempt before its credential is checked, in one conditional write
/// (so concurrent attempts, on any node, can never see the same count), and
/// refuses it when the user is locked or the window's budget is spent.
pub(super) async fn reserve_attempt(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    now: UnixTime,
) -> Result<Reservation, LogicalError> {
    let key = format!("lockout/{name}");
    let threshold = cfg.lockout_threshold.max(1);
    for _ in 0..CAS_ATTEMPTS {
        let (raw, guard) = view.get_versioned(&key).await?;
        let mut l: Lockout = match raw {
            None => Lockout::default(),
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?,
        };
        if l.locked_until > now.secs() {
            return Err(locked());
        }
        let window_over =
            now.secs().saturating_sub(l.first_failure) > cfg.lockout_counter_reset as i64;
        if l.failures == 0 || window_over || l.locked_until != 0 {
            l = Lockout {
                failures: 0,
                first_failure: now.secs(),
                locked_until: 0,
            };
        }
        if l.failures >= threshold {
            return Err(locked());
        }
        l.failures += 1;
        let locks = l.failures >= threshold;
        if locks {
            l.locked_until = now.secs().saturating_add(cfg.lockout_duration as i64);
        }
        let op = lockout_op(view, cfg, name, &l)?;
        if view.apply_if(&[guard], vec![op]).await? {
            return Ok(Reservation {
                name: name.to_owned(),
                locks,
            });
        }
    }
    Err(BarrierError::Contended.into())
}

fn locked() -> LogicalError {
    LogicalError::Forbidden(
        "user is locked out after too many failed attempts; try later or ask an administrator to unlock".into(),
    )
}

/// The write of a counter; it expires (and tidy removes it) once neither its
/// window nor its lock can matter any more.
fn lockout_op(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    l: &Lockout,
) -> Result<crate::barrier::BarrierOp, LogicalError> {
    let raw = serde_json::to_vec(l).map_err(|_| LogicalError::Corrupt)?;
    let expires = l
        .first_failure
        .max(l.locked_until)
        .saturating_add(cfg.lockout_counter_reset as i64)
        .saturating_add(cfg.lockout_duration as i64);
    Ok(view.put_op(&format!("lockout/{name}"), raw, Some(expires)))
}

/// Counts one failed attempt whose credential was already checked.
// Kept for enrolment, which checks first; logins reserve before they check.
pub(super) async fn record_failure(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    now: UnixTime,
) -> Result<(), LogicalError> {
    match reserve_attempt(view, cfg, name, now).await {
        Ok(reservation) => {
            reservation.failed();
            Ok(())
        }
        // Already locked: nothing left to count.
        Err(LogicalError::Forbidden(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Clears the counter after a success.
pub(super) async fn clear_failures(view: &View, name: &str) -> Result<(), LogicalError> {
    if view.get(&format!("lockout/{name}")).await?.is_some() {
        view.apply(vec![view.delete_op(&format!("lockout/{name}"))])
            .await?;
    }
    Ok(())
}

/// Users of this mount that are locked now.
pub async fn locked_users(view: &View, now: UnixTime) -> Result<Vec<String>, LogicalError> {
    let mut out = Vec::new();
    for key in view.list("lockout/", None, 10_000).await? {
        let Some(name) = key.strip_prefix("lockout/") else {
            continue;
        };
        if load_lockout(view, name).await?.locked_until > now.secs() {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Unlocks a user.
pub async fn unlock(view: &View, name: &str) -> Result<(), LogicalError> {
    clear_failures(view, &validate_name(name)?).await
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_totp_factor_never_shows_its_secret() {
        let f = TotpFactor {
            secret_hex: Zeroizing::new("deadbeefcafe".into()),
            confirmed: true,
            last_step: 7,
        };
        let shown = format!("{f:?}");
        assert!(!shown.contains("deadbeef"), "{shown}");
        assert!(shown.contains("last_step"));
        let stored = serde_json::to_string(&f).unwrap();
        assert!(
            stored.contains("\"secret_hex\":\"deadbeefcafe\""),
            "{stored}"
        );
    }
}
