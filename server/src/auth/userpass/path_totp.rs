//! Self-service enrolment of the TOTP factor.
//!
//! A first factor (or a new one after an admin reset) needs the one-time
//! enrolment token an admin issued (see [`super::enrollment`]):
//! `totp/enroll/<name>` takes `enrollment_token`, the current `password` and a
//! `new_password`, and returns the `otpauth://` URL, a QR code and ten recovery
//! codes; `totp/confirm/<name>` takes the token, the new password and a code from
//! the new factor, and only then do the new password, the factor and the
//! recovery codes take effect, and the token is spent. So the admin, who set the
//! first password, never knows a working password and factor.
//!
//! A user replacing a working factor may instead enrol with the password and a
//! current code (`code`), and confirm with the password and a new code.

use crate::clock::UnixTime;
use base64::Engine as _;
use serde_json::json;
use zeroize::Zeroizing;

use super::enrollment;
use super::model::{
    ensure_not_locked, load_user, parse_user, record_failure, reserve_attempt, save_user, user_op,
    validate_name, StoredUserV1, TotpFactor, UserpassConfig,
};
use super::path_login::{check_code, normalize_recovery, INVALID};
use crate::auth::{password, totp};
use crate::barrier::View;
use crate::crypto::{random_array, sha256_hex, SecretString};
use crate::logical::{Fields, LogicalError, Response};
use crate::mounts::MountEntry;

/// What `enroll` answers without a token or a current code.
pub const TOKEN_REQUIRED: &str =
    "an enrollment token is required ('enrollment_token'); ask an administrator to issue one";

type Data = serde_json::Map<String, serde_json::Value>;

fn nonempty(v: Option<SecretString>) -> Option<SecretString> {
    v.filter(|s| !s.expose().is_empty())
}

fn required_secret(data: &Data, key: &str) -> Result<SecretString, LogicalError> {
    nonempty(Fields(data).secret(key)?)
        .ok_or_else(|| LogicalError::invalid(format!("missing required field '{key}'")))
}

async fn authenticate(
    view: &View,
    cfg: &UserpassConfig,
    name: &str,
    data: &Data,
    now: UnixTime,
) -> Result<StoredUserV1, LogicalError> {
    let pw = required_secret(data, "password")?.into_zeroizing();
    let user = load_user(view, name).await?;
    // As at login: the attempt is counted before the hash, so concurrent guesses
    // cannot outrun the lockout; unknown names are hashed but not counted.
    let reservation = match &user {
        Some(_) => Some(reserve_attempt(view, cfg, name, now).await?),
        None => None,
    };
    let verified = password::verify(pw, user.as_ref().map(|u| u.password_hash.clone())).await;
    let ok = match verified {
        Ok(ok) => ok,
        // A full hashing pool (503) checked nothing: the attempt is given back.
        Err(e) => {
            if let Some(r) = reservation {
                r.release(view, cfg).await?;
            }
            return Err(LogicalError::from(e));
        }
    };
    match (user, reservation) {
        (Some(user), Some(reservation)) if ok => {
            // The password was right; a code that follows is its own attempt.
            reservation.release(view, cfg).await?;
            Ok(user)
        }
        (_, Some(reservation)) => {
            reservation.failed();
            Err(LogicalError::invalid(INVALID))
        }
        _ => Err(LogicalError::invalid(INVALID)),
    }
}

fn fresh_factor() -> Result<(TotpFactor, Zeroizing<[u8; 20]>), LogicalError> {
    let secret = random_array::<20>().map_err(crate::barrier::BarrierError::from)?;
    let factor = TotpFactor {
        secret_hex: Zeroizing::new(hex::encode(secret.as_ref())),
        confirmed: false,
        last_step: 0,
    };
    Ok((factor, Zeroizing::new(*secret)))
}

fn recovery_codes() -> Result<Vec<Zeroizing<String>>, LogicalError> {
    let mut codes = Vec::with_capacity(10);
    for _ in 0..10 {
        let raw = random_array::<10>().map_err(crate::barrier::BarrierError::from)?;
        let b32 = Zeroizing::new(totp::base32(raw.as_ref()));
        codes.push(Zeroizing::new(format!(
            "{}-{}-{}-{}",
            &b32[0..4],
            &b32[4..8],
            &b32[8..12],
            &b32[12..16]
        )));
    }
    Ok(codes)
}

fn hashes(codes: &[Zeroizing<String>]) -> Vec<String> {
    codes
        .iter()
        .map(|c| sha256_hex(normalize_recovery(c).as_bytes()))
        .collect()
}

fn enrol_answer(
    mount: &MountEntry,
    name: &str,
    secret: &[u8],
    codes: Option<&[Zeroizing<String>]>,
) -> Result<Response, LogicalError> {
    let url = Zeroizing::new(totp::otpauth_url("Coffer", name, secret));
    let png = totp::qr_png(&url).map_err(|_| LogicalError::Corrupt)?;
    let mut data = json!({
        "url": url.as_str(),
        "barcode": base64::engine::general_purpose::STANDARD.encode(png),
        "method_id": mount.uuid,
        "issuer": "Coffer",
        "account_name": name,
    });
    if let (Some(codes), Some(map)) = (codes, data.as_object_mut()) {
        map.insert("recovery_codes".into(), json!(codes));
    }
    Ok(Response::data(data))
}

/// Starts an enrolment.
pub async fn enroll(
    view: &View,
    mount: &MountEntry,
    raw_name: &str,
    data: &Data,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let name = validate_name(raw_name).map_err(|_| LogicalError::invalid(INVALID))?;
    let f = Fields(data);
    if let Some(token) = nonempty(f.secret("enrollment_token")?) {
        return enroll_with_token(view, mount, &name, &token, data, now).await;
    }
    // Without a token only a user replacing a working factor may enrol, with a
    // current code; asking first keeps this answer free of password hashing.
    let Some(code) = nonempty(f.secret("code")?) else {
        return Err(LogicalError::invalid(TOKEN_REQUIRED));
    };
    if code.expose().trim().len() != 6 {
        return Err(LogicalError::Forbidden(
            "replacing a second factor needs a current TOTP code, not a recovery code".into(),
        ));
    }
    let cfg = UserpassConfig::load(view).await?;
    let user = authenticate(view, &cfg, &name, data, now).await?;
    if !user.totp.as_ref().is_some_and(|t| t.confirmed) {
        return Err(LogicalError::invalid(TOKEN_REQUIRED));
    }
    let reservation = reserve_attempt(view, &cfg, &name, now).await?;
    let mut user = check_code(view, &cfg, &name, code.expose(), now, reservation).await?;
    let (factor, secret) = fresh_factor()?;
    user.pending_totp = Some(factor);
    user.pending_enrollment_token = None;
    user.pending_password_hash = None;
    user.pending_recovery_codes.clear();
    save_user(view, &name, &user).await?;
    enrol_answer(mount, &name, secret.as_ref(), None)
}

async fn enroll_with_token(
    view: &View,
    mount: &MountEntry,
    name: &str,
    token: &SecretString,
    data: &Data,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    ensure_not_locked(view, name, now).await?;
    let valid = enrollment::check(view, name, token, now).await?;
    let current = required_secret(data, "password")?;
    let new = required_secret(data, "new_password")?;
    if new.expose() == current.expose() {
        return Err(LogicalError::invalid(
            "'new_password' must differ from the current password, which an administrator set",
        ));
    }
    password::check_policy(new.expose())
        .map_err(|e| LogicalError::invalid(format!("'new_password': {e}")))?;
    let cfg = UserpassConfig::load(view).await?;
    let mut user = authenticate(view, &cfg, name, data, now).await?;
    let new_hash = password::hash(new.into_zeroizing(), password::DEFAULT_PARAMS)
        .await
        .map_err(|_| LogicalError::Corrupt)?;
    let (factor, secret) = fresh_factor()?;
    let codes = recovery_codes()?;
    user.pending_totp = Some(factor);
    user.pending_enrollment_token = Some(valid.hash);
    user.pending_password_hash = Some(new_hash);
    user.pending_recovery_codes = codes.clone();
    save_user(view, name, &user).await?;
    enrol_answer(mount, name, secret.as_ref(), Some(&codes))
}

/// Activates the pending factor with a code from it; returns the recovery codes.
pub async fn confirm(
    view: &View,
    raw_name: &str,
    data: &Data,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let name = validate_name(raw_name).map_err(|_| LogicalError::invalid(INVALID))?;
    if let Some(token) = nonempty(Fields(data).secret("enrollment_token")?) {
        return confirm_with_token(view, &name, &token, data, now).await;
    }
    let cfg = UserpassConfig::load(view).await?;
    let mut user = authenticate(view, &cfg, &name, data, now).await?;
    if user.pending_enrollment_token.is_some() || user.totp.is_none() {
        return Err(LogicalError::invalid(TOKEN_REQUIRED));
    }
    let Some(mut pending) = user.pending_totp.take() else {
        return Err(LogicalError::invalid(
            "no enrolment is pending for this user; run enroll first",
        ));
    };
    let code = required_secret(data, "code")?;
    let secret =
        Zeroizing::new(hex::decode(&pending.secret_hex).map_err(|_| LogicalError::Corrupt)?);
    let Some(step) = totp::verify(&secret, code.expose(), now.secs().max(0) as u64) else {
        record_failure(view, &cfg, &name, now).await?;
        return Err(LogicalError::invalid(INVALID));
    };
    pending.confirmed = true;
    pending.last_step = step;
    user.totp = Some(pending);
    user.enrollment_allowed = false;
    let codes = recovery_codes()?;
    user.recovery_code_hashes = hashes(&codes);
    save_user(view, &name, &user).await?;
    Ok(Response::data(json!({ "recovery_codes": codes })))
}

async fn confirm_with_token(
    view: &View,
    name: &str,
    token: &SecretString,
    data: &Data,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    ensure_not_locked(view, name, now).await?;
    let valid = enrollment::check(view, name, token, now).await?;
    let new_password = required_secret(data, "password")?;
    let code = required_secret(data, "code")?;
    let (raw, user_guard) = view.get_versioned(&format!("user/{name}")).await?;
    let mut user =
        parse_user(&raw.ok_or(LogicalError::Forbidden(enrollment::INVALID_TOKEN.into()))?)?;
    let (Some(mut pending), Some(new_hash)) =
        (user.pending_totp.take(), user.pending_password_hash.take())
    else {
        return Err(LogicalError::invalid(
            "no enrolment is pending for this token; run enroll first",
        ));
    };
    if user.pending_enrollment_token.as_deref() != Some(valid.hash.as_str()) {
        return Err(LogicalError::invalid(
            "no enrolment is pending for this token; run enroll first",
        ));
    }
    let cfg = UserpassConfig::load(view).await?;
    let ok = password::verify(new_password.into_zeroizing(), Some(new_hash.clone()))
        .await
        .map_err(LogicalError::from)?;
    let secret =
        Zeroizing::new(hex::decode(&pending.secret_hex).map_err(|_| LogicalError::Corrupt)?);
    let step = totp::verify(&secret, code.expose(), now.secs().max(0) as u64);
    let Some(step) = step.filter(|_| ok) else {
        record_failure(view, &cfg, name, now).await?;
        return Err(LogicalError::invalid(INVALID));
    };
    pending.confirmed = true;
    pending.last_step = step;
    let codes = std::mem::take(&mut user.pending_recovery_codes);
    user.password_hash = new_hash;
    user.totp = Some(pending);
    user.recovery_code_hashes = hashes(&codes);
    user.pending_enrollment_token = None;
    user.enrollment_allowed = false;
    // One conditional batch: the token is spent and the user changed together,
    // only if neither moved since they were read. Losers of a race see no change.
    let ops = vec![
        user_op(view, name, &user)?,
        enrollment::spend_op(view, name),
    ];
    if !view.apply_if(&[valid.guard, user_guard], ops).await? {
        return Err(LogicalError::Forbidden(enrollment::INVALID_TOKEN.into()));
    }
    Ok(Response::data(json!({ "recovery_codes": codes })))
}
