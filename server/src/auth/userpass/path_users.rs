//! Admin paths: `users/<name>` (create, read, update, delete, LIST),
//! `users/<name>/password`, `users/<name>/policies`, `users/<name>/totp` (DELETE:
//! reset the factor), `users/<name>/enrollment-token` (issue the one-time token
//! that a first or reset factor is enrolled with), and `config`.

use crate::clock::UnixTime;
use serde_json::{json, Map, Value};

use super::enrollment;
use super::model::{load_user, save_user, validate_name, StoredUserV1, UserpassConfig};
use crate::auth::password;
use crate::auth::tokenutil::{TokenParams, USERPASS_LEGACY};
use crate::barrier::View;
use crate::logical::{format_duration, Fields, LogicalError, Operation, Request, Response};

/// Handles the admin paths; `rest` is the path below the mount.
pub async fn handle_admin(
    view: &View,
    req: &Request,
    rest: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if rest == "config" {
        return config(view, req).await;
    }
    if rest == "users" || rest == "users/" {
        if req.operation != Operation::List {
            return Err(LogicalError::UnsupportedOperation);
        }
        let after = req.list_after.as_deref().map(|a| format!("user/{a}"));
        let keys: Vec<String> = view
            .list("user/", after.as_deref(), req.list_limit.unwrap_or(10_000))
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix("user/").map(str::to_owned))
            .collect();
        return Response::list(keys);
    }
    let Some(rest) = rest.strip_prefix("users/") else {
        return Err(LogicalError::NotFound);
    };
    let (name, sub) = match rest.split_once('/') {
        Some((n, s)) => (n, s),
        None => (rest, ""),
    };
    let name = validate_name(name)?;
    match (sub, req.operation) {
        ("", Operation::Read) => {
            let u = load_user(view, &name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            Ok(Response::data(user_json(&u)))
        }
        ("", op) if op.is_write() => write_user(view, &name, req).await,
        ("", Operation::Delete) => {
            view.apply(vec![
                view.delete_op(&format!("user/{name}")),
                view.delete_op(&format!("lockout/{name}")),
                enrollment::revoke_op(view, &name),
            ])
            .await?;
            Ok(Response::no_content())
        }
        ("password", op) if op.is_write() => {
            let mut u = load_user(view, &name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            u.password_hash = hash_from(&Fields(&req.data))
                .await?
                .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?;
            save_user(view, &name, &u).await?;
            Ok(Response::no_content())
        }
        ("policies", op) if op.is_write() => {
            let mut u = load_user(view, &name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            u.token
                .update_policies(&Fields(&req.data), USERPASS_LEGACY)?;
            check_policies(&u.token.token_policies)?;
            save_user(view, &name, &u).await?;
            Ok(Response::no_content())
        }
        ("totp", Operation::Delete) => {
            let mut u = load_user(view, &name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            u.totp = None;
            u.pending_totp = None;
            u.recovery_code_hashes.clear();
            u.pending_enrollment_token = None;
            u.pending_password_hash = None;
            u.pending_recovery_codes.clear();
            u.enrollment_allowed = true;
            save_user(view, &name, &u).await?;
            Ok(Response::no_content())
        }
        ("enrollment-token", op) if op.is_write() => {
            enrollment::issue(view, &name, Fields(&req.data).duration("ttl")?, now).await
        }
        ("" | "password" | "policies" | "totp" | "enrollment-token", _) => {
            Err(LogicalError::UnsupportedOperation)
        }
        _ => Err(LogicalError::NotFound),
    }
}

fn check_policies(p: &[String]) -> Result<(), LogicalError> {
    // A person's login never yields root; root is for break-glass ceremonies.
    if p.iter().any(|p| p == "root") {
        return Err(LogicalError::invalid(
            "the root policy cannot be given to a user",
        ));
    }
    Ok(())
}

async fn hash_from(f: &Fields<'_>) -> Result<Option<String>, LogicalError> {
    let Some(pw) = f.secret("password")? else {
        return Ok(None);
    };
    let pw = pw.into_zeroizing();
    password::check_policy(&pw).map_err(LogicalError::invalid)?;
    password::hash(pw, password::DEFAULT_PARAMS)
        .await
        .map(Some)
        .map_err(LogicalError::from)
}

async fn write_user(view: &View, name: &str, req: &Request) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let existing = load_user(view, name).await?;
    // Every field is checked before the password is hashed (the slow part).
    let mut token = existing
        .as_ref()
        .map(|u| u.token.clone())
        .unwrap_or_default();
    token.update(&f, USERPASS_LEGACY)?;
    check_policies(&token.token_policies)?;
    let metadata = f.string_map("metadata")?;
    let hash = hash_from(&f).await?;
    let mut u = match existing {
        Some(u) => u,
        None => StoredUserV1 {
            v: 1,
            password_hash: hash
                .clone()
                .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?,
            token: TokenParams::default(),
            metadata: Default::default(),
            entity_id: uuid::Uuid::new_v4().to_string(),
            totp: None,
            pending_totp: None,
            enrollment_allowed: true,
            recovery_code_hashes: Vec::new(),
            pending_enrollment_token: None,
            pending_password_hash: None,
            pending_recovery_codes: Vec::new(),
        },
    };
    if let Some(h) = hash {
        u.password_hash = h;
    }
    u.token = token;
    if let Some(m) = metadata {
        u.metadata = m;
    }
    save_user(view, name, &u).await?;
    Ok(Response::no_content())
}

/// The answer of a user read: every token parameter (as Vault's userpass), then
/// Coffer's own fields.
fn user_json(u: &StoredUserV1) -> Value {
    let mut data = Map::new();
    u.token.fill_read(&mut data);
    data.insert("metadata".into(), json!(u.metadata));
    data.insert(
        "mfa_enrolled".into(),
        json!(u.totp.as_ref().is_some_and(|t| t.confirmed)),
    );
    data.insert("enrollment_allowed".into(), json!(u.enrollment_allowed));
    data.insert(
        "recovery_codes_left".into(),
        json!(u.recovery_code_hashes.len()),
    );
    Value::Object(data)
}

async fn config(view: &View, req: &Request) -> Result<Response, LogicalError> {
    let mut c = UserpassConfig::load(view).await?;
    match req.operation {
        Operation::Read => Ok(Response::data(json!({
            "require_mfa": c.require_mfa,
            "lockout_threshold": c.lockout_threshold,
            "lockout_duration": format_duration(c.lockout_duration),
            "lockout_counter_reset": format_duration(c.lockout_counter_reset),
            "token_ttl": c.token_ttl,
            "token_max_ttl": c.token_max_ttl,
            "login_rate_per_minute": c.login_rate_per_minute,
        }))),
        op if op.is_write() => {
            let f = Fields(&req.data);
            if let Some(v) = f.bool("require_mfa")? {
                if !v && c.require_mfa {
                    tracing::warn!("second factor requirement turned OFF on a userpass mount");
                }
                c.require_mfa = v;
            }
            if let Some(v) = f.u64("lockout_threshold")? {
                c.lockout_threshold = u32::try_from(v.max(1)).unwrap_or(u32::MAX);
            }
            if let Some(v) = f.duration("lockout_duration")? {
                c.lockout_duration = v;
            }
            if let Some(v) = f.duration("lockout_counter_reset")? {
                c.lockout_counter_reset = v;
            }
            if let Some(v) = f.duration("token_ttl")? {
                c.token_ttl = v;
            }
            if let Some(v) = f.duration("token_max_ttl")? {
                c.token_max_ttl = v;
            }
            if let Some(v) = f.u64("login_rate_per_minute")? {
                c.login_rate_per_minute = u32::try_from(v.max(1)).unwrap_or(u32::MAX);
            }
            let raw = serde_json::to_vec(&c).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op("config", raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::userpass::model::parse_user;

    /// A user record as userpass stored it before the shared token parameters.
    const OLD_RECORD: &str = r#"{"v":1,"password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "token_policies":["developer"],"token_ttl":600,"token_max_ttl":1200,"token_bound_cidrs":["10.0.0.0/8"],
        "metadata":{"team":"payments"},"entity_id":"e-1","totp":null,"pending_totp":null,
        "enrollment_allowed":true,"recovery_code_hashes":[]}"#;

    #[test]
    fn a_user_read_returns_every_token_parameter_in_vaults_types() {
        let u = parse_user(OLD_RECORD.as_bytes()).unwrap();
        let data = user_json(&u);
        let want = json!({
            "token_policies": ["developer"],
            "token_ttl": 600,
            "token_max_ttl": 1200,
            "token_explicit_max_ttl": 0,
            "token_period": 0,
            "token_num_uses": 0,
            "token_bound_cidrs": ["10.0.0.0/8"],
            "token_no_default_policy": false,
            "token_type": "default",
            "token_strictly_bind_ip": false,
        });
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&data[k], v, "{k} in {data}");
        }
        assert_eq!(data["metadata"], json!({"team": "payments"}));
        assert_eq!(data["mfa_enrolled"], json!(false));
    }

    #[test]
    fn a_stored_record_keeps_its_fields_and_gains_the_new_ones() {
        let mut u = parse_user(OLD_RECORD.as_bytes()).unwrap();
        assert_eq!(u.token.token_ttl, 600);
        u.token.token_num_uses = 3;
        let raw = serde_json::to_vec(&u).unwrap();
        let again = parse_user(&raw).unwrap();
        assert_eq!(again.token, u.token);
        assert_eq!(again.password_hash, u.password_hash);
        assert_eq!(again.entity_id, "e-1");
        // Stored at the top level, where the old fields were.
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["token_num_uses"], json!(3));
        assert_eq!(v["token_policies"], json!(["developer"]));
    }
}
