//! Self-service enrolment of the TOTP factor: `totp/enroll/<name>` (password, and
//! a current code when replacing an existing factor) returns the `otpauth://` URL
//! and a QR code; `totp/confirm/<name>` (password and a code from the new factor)
//! activates it and returns ten one-time recovery codes, shown once.

use base64::Engine as _;
use serde_json::json;
use zeroize::Zeroizing;

use super::model::{
    ensure_not_locked, load_user, normalize_name, record_failure, save_user, TotpFactor,
    UserpassConfig,
};
use super::path_login::{check_code, normalize_recovery, INVALID};
use crate::auth::{password, totp};
use crate::barrier::View;
use crate::crypto::{random_array, sha256_hex};
use crate::logical::{Fields, LogicalError, Response};
use crate::mounts::MountEntry;

async fn authenticate(
    view: &View,
    cfg: &UserpassConfig,
    raw_name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<(String, super::model::StoredUserV1), LogicalError> {
    let name = normalize_name(raw_name).map_err(|_| LogicalError::invalid(INVALID))?;
    ensure_not_locked(view, &name, now).await?;
    let pw = Zeroizing::new(
        Fields(data)
            .string("password")?
            .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?,
    );
    let user = load_user(view, &name).await?;
    // A full hashing pool is 503 and counts as no attempt.
    let ok = password::verify(pw, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(LogicalError::from)?;
    match user.filter(|_| ok) {
        Some(u) => Ok((name, u)),
        None => {
            if view.get(&format!("user/{name}")).await?.is_some() {
                record_failure(view, cfg, &name, now).await?;
            }
            Err(LogicalError::invalid(INVALID))
        }
    }
}

/// Starts an enrolment.
pub async fn enroll(
    view: &View,
    mount: &MountEntry,
    raw_name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<Response, LogicalError> {
    let cfg = UserpassConfig::load(view).await?;
    let (name, mut user) = authenticate(view, &cfg, raw_name, data, now).await?;
    if user.totp.as_ref().is_some_and(|t| t.confirmed) {
        let code = Fields(data).string("code")?.ok_or_else(|| {
            LogicalError::Forbidden(
                "replacing a second factor needs a valid current code ('code')".into(),
            )
        })?;
        if code.trim().len() != 6 {
            return Err(LogicalError::Forbidden(
                "replacing a second factor needs a current TOTP code, not a recovery code".into(),
            ));
        }
        user = check_code(view, &cfg, &name, user, &code, now).await?;
    } else if !user.enrollment_allowed {
        return Err(LogicalError::Forbidden(
            "no enrolment is open for this user; ask an administrator to reset the second factor"
                .into(),
        ));
    }
    let secret = random_array::<20>().map_err(crate::barrier::BarrierError::from)?;
    user.pending_totp = Some(TotpFactor {
        secret_hex: hex::encode(secret.as_ref()),
        confirmed: false,
        last_step: 0,
    });
    save_user(view, &name, &user).await?;
    let url = Zeroizing::new(totp::otpauth_url("Coffer", &name, secret.as_ref()));
    let png = totp::qr_png(&url).map_err(|_| LogicalError::Corrupt)?;
    Ok(Response::data(json!({
        "url": url.as_str(),
        "barcode": base64::engine::general_purpose::STANDARD.encode(png),
        "method_id": mount.uuid,
        "issuer": "Coffer",
        "account_name": name,
    })))
}

/// Activates the pending factor with a code from it; returns recovery codes.
pub async fn confirm(
    view: &View,
    raw_name: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<Response, LogicalError> {
    let cfg = UserpassConfig::load(view).await?;
    let (name, mut user) = authenticate(view, &cfg, raw_name, data, now).await?;
    let Some(mut pending) = user.pending_totp.take() else {
        return Err(LogicalError::invalid(
            "no enrolment is pending for this user; run enroll first",
        ));
    };
    let code = Fields(data)
        .string("code")?
        .ok_or_else(|| LogicalError::invalid("missing required field 'code'"))?;
    let secret =
        Zeroizing::new(hex::decode(&pending.secret_hex).map_err(|_| LogicalError::Corrupt)?);
    let Some(step) = totp::verify(&secret, &code, now.max(0) as u64) else {
        record_failure(view, &cfg, &name, now).await?;
        return Err(LogicalError::invalid(INVALID));
    };
    pending.confirmed = true;
    pending.last_step = step;
    user.totp = Some(pending);
    user.enrollment_allowed = false;
    let mut codes = Vec::with_capacity(10);
    let mut hashes = Vec::with_capacity(10);
    for _ in 0..10 {
        let raw = random_array::<10>().map_err(crate::barrier::BarrierError::from)?;
        let b32 = totp::base32(raw.as_ref());
        let code = format!(
            "{}-{}-{}-{}",
            &b32[0..4],
            &b32[4..8],
            &b32[8..12],
            &b32[12..16]
        );
        hashes.push(sha256_hex(normalize_recovery(&code).as_bytes()));
        codes.push(code);
    }
    user.recovery_code_hashes = hashes;
    save_user(view, &name, &user).await?;
    Ok(Response::data(json!({ "recovery_codes": codes })))
}
