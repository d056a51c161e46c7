//! Admin paths: `users/<name>` (create, read, update, delete, LIST),
//! `users/<name>/password`, `users/<name>/policies`, `users/<name>/totp` (DELETE:
//! reset the factor), `users/<name>/enrollment-token` (issue the one-time token
//! that a first or reset factor is enrolled with), and `config`.

use serde_json::{json, Value};

use super::enrollment;
use super::model::{load_user, save_user, validate_name, StoredUserV1, UserpassConfig};
use crate::auth::password;
use crate::barrier::View;
use crate::logical::{format_duration, Fields, LogicalError, Operation, Request, Response};

/// Handles the admin paths; `rest` is the path below the mount.
pub async fn handle_admin(
    view: &View,
    req: &Request,
    rest: &str,
    now: i64,
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
            let f = Fields(&req.data);
            u.token_policies = f
                .string_list("token_policies")?
                .or(f.string_list("policies")?)
                .unwrap_or_default();
            check_policies(&u.token_policies)?;
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
    let hash = hash_from(&f).await?;
    let mut u = match existing {
        Some(u) => u,
        None => StoredUserV1 {
            v: 1,
            password_hash: hash
                .clone()
                .ok_or_else(|| LogicalError::invalid("missing required field 'password'"))?,
            token_policies: Vec::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_bound_cidrs: Vec::new(),
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
    if let Some(p) = f
        .string_list("token_policies")?
        .or(f.string_list("policies")?)
    {
        check_policies(&p)?;
        u.token_policies = p;
    }
    if let Some(t) = f.duration("token_ttl")?.or(f.duration("ttl")?) {
        u.token_ttl = t;
    }
    if let Some(t) = f.duration("token_max_ttl")?.or(f.duration("max_ttl")?) {
        u.token_max_ttl = t;
    }
    if let Some(c) = f.string_list("token_bound_cidrs")? {
        for cidr in &c {
            parse_cidr(cidr)?;
        }
        u.token_bound_cidrs = c;
    }
    if let Some(m) = f.string_map("metadata")? {
        u.metadata = m;
    }
    save_user(view, name, &u).await?;
    Ok(Response::no_content())
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address.
pub(super) fn parse_cidr(s: &str) -> Result<ipnet::IpNet, LogicalError> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| LogicalError::invalid(format!("invalid CIDR \"{s}\"")))
}

fn user_json(u: &StoredUserV1) -> Value {
    json!({
        "token_policies": u.token_policies,
        "policies": u.token_policies,
        "token_ttl": u.token_ttl,
        "token_max_ttl": u.token_max_ttl,
        "token_bound_cidrs": u.token_bound_cidrs,
        "token_type": "default",
        "metadata": u.metadata,
        "mfa_enrolled": u.totp.as_ref().is_some_and(|t| t.confirmed),
        "enrollment_allowed": u.enrollment_allowed,
        "recovery_codes_left": u.recovery_code_hashes.len(),
    })
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
