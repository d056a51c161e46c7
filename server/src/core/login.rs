//! The paths that take no token because they produce one: `auth/<mount>/login/*`
//! and the enrolment paths of userpass mounts, and `sys/mfa/validate`, which
//! finishes a login that is waiting for its second factor. Pending MFA requests
//! live behind the barrier (so any node can finish them), expire after five
//! minutes and are single-use.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Core, CoreError, Unsealed};
use crate::auth::userpass::{self, LoginStep};
use crate::barrier::View;
use crate::crypto::sha256_hex;
use crate::logical::{Fields, LogicalError, Request, Response};
use crate::mounts::MountEntry;
use crate::token::paths::auth_data;
use crate::token::CreateParams;

/// How long a login may wait for its code.
const MFA_REQUEST_TTL: i64 = 300;
pub(super) const PENDING_PREFIX: &str = "sys/mfa/pending/";

#[derive(Serialize, Deserialize)]
struct PendingMfaV1 {
    mount_path: String,
    username: String,
    expires: i64,
}

/// Whether `path` is one of the token-less login paths (checked before the
/// request is audited and handled).
pub(super) async fn is_login_path(state: &Unsealed, path: &str) -> bool {
    if path == "sys/mfa/validate" {
        return true;
    }
    let Some(below_auth) = path.strip_prefix("auth/") else {
        return false;
    };
    if below_auth.starts_with("token/") {
        return false;
    }
    let auth = state.auth.read().await;
    auth.route(below_auth).is_some_and(|(m, rest)| {
        m.kind == "userpass"
            && userpass::is_unauthenticated(rest)
            && super::routes::is_public_mounted(&m.kind, rest)
    })
}

/// Handles the path if it is one of the login paths.
pub(super) async fn handle(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    path: &str,
    now: i64,
) -> Result<Option<Response>, CoreError> {
    if path == "sys/mfa/validate" {
        if !req.operation.is_write() {
            return Err(CoreError::UnsupportedOperation);
        }
        let result = validate(core, state, req, now).await;
        let name = if result.is_ok() {
            "coffer_logins_total"
        } else {
            "coffer_login_failures_total"
        };
        core.metrics
            .inc(name, vec![("method", "userpass".to_owned())]);
        return result.map(Some);
    }
    let Some(below_auth) = path.strip_prefix("auth/") else {
        return Ok(None);
    };
    if below_auth.starts_with("token/") {
        return Ok(None);
    }
    let (mount, rest) = {
        let auth = state.auth.read().await;
        match auth.route(below_auth) {
            Some((m, rest)) => (m.clone(), rest.to_owned()),
            None => return Ok(None),
        }
    };
    if mount.kind != "userpass" || !userpass::is_unauthenticated(&rest) {
        return Ok(None);
    }
    super::routes::check_mounted(&mount.kind, &rest, req.operation, path)?;
    if !req.operation.is_write() {
        return Err(CoreError::UnsupportedOperation);
    }
    let view = View::new(state.barrier.clone(), mount.storage_prefix());
    let cfg = userpass::UserpassConfig::load(&view).await?;
    if let Err(secs) =
        core.login_limiter
            .check(&mount.uuid, req.remote_addr, cfg.login_rate_per_minute, now)
    {
        core.metrics.inc(
            "coffer_login_failures_total",
            vec![("method", mount.kind.clone())],
        );
        return Err(LogicalError::RateLimited(secs).into());
    }
    let result = login_or_enrol(state, req, path, &view, &mount, &rest, now).await;
    let method = vec![("method", mount.kind.clone())];
    match &result {
        Ok(r) if is_token(r) => core.metrics.inc("coffer_logins_total", method),
        Err(_) if rest.starts_with("login/") => {
            core.metrics.inc("coffer_login_failures_total", method)
        }
        _ => {}
    }
    Ok(Some(with_auth_mount(result?, &mount)))
}

fn is_token(resp: &Response) -> bool {
    matches!(&resp.body, crate::logical::ResponseBody::Envelope { auth: Some(a), .. }
        if a.get("client_token").and_then(|t| t.as_str()).is_some_and(|t| !t.is_empty()))
}

async fn login_or_enrol(
    state: &Unsealed,
    req: &Request,
    path: &str,
    view: &View,
    mount: &MountEntry,
    rest: &str,
    now: i64,
) -> Result<Response, CoreError> {
    let (view, mount) = (view.clone(), mount.clone());
    let resp = if let Some(name) = rest.strip_prefix("login/") {
        let header_code = req.mfa_header.as_ref().map(|h| {
            let h = h.expose();
            h.split_once(':').map_or(h, |(_, code)| code).to_owned()
        });
        match userpass::login(
            &view,
            &mount,
            name,
            &req.data,
            header_code.as_deref(),
            req.remote_addr,
            now,
        )
        .await?
        {
            LoginStep::Issue(params) => issue(state, *params, now).await?,
            LoginStep::NeedCode(challenge) => {
                challenge_response(state, &mount, &challenge.username, now).await?
            }
        }
    } else if let Some(name) = rest.strip_prefix("totp/enroll/") {
        userpass::enroll(&view, &mount, name, &req.data, now).await?
    } else if let Some(name) = rest.strip_prefix("totp/confirm/") {
        userpass::confirm(&view, name, &req.data, now).await?
    } else {
        return Err(CoreError::NoHandler(path.to_owned()));
    };
    Ok(resp)
}

fn with_auth_mount(mut resp: Response, mount: &MountEntry) -> Response {
    resp.mount_type = Some(mount.kind.clone());
    resp
}

async fn issue(state: &Unsealed, params: CreateParams, now: i64) -> Result<Response, CoreError> {
    let (token, entry) = state.tokens.create(params, None, now).await?;
    Ok(Response::auth(auth_data(&token, &entry, now)))
}

async fn challenge_response(
    state: &Unsealed,
    mount: &MountEntry,
    username: &str,
    now: i64,
) -> Result<Response, CoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let pending = PendingMfaV1 {
        mount_path: mount.path.clone(),
        username: username.to_owned(),
        expires: now + MFA_REQUEST_TTL,
    };
    let raw = serde_json::to_vec(&pending).map_err(|_| LogicalError::Corrupt)?;
    let key = format!("{PENDING_PREFIX}{}", sha256_hex(id.as_bytes()));
    state
        .barrier
        .apply(vec![crate::barrier::BarrierOp::Put {
            key,
            value: zeroize::Zeroizing::new(raw),
            expires_at: Some(pending.expires),
        }])
        .await?;
    Ok(Response::auth(json!({
        "client_token": "",
        "accessor": "",
        "policies": null,
        "token_policies": null,
        "metadata": null,
        "lease_duration": 0,
        "renewable": false,
        "entity_id": "",
        "token_type": "",
        "orphan": false,
        "num_uses": 0,
        "mfa_requirement": {
            "mfa_request_id": id,
            "mfa_constraints": {
                "totp": { "any": [{ "type": "totp", "id": mount.uuid, "uses_passcode": true, "name": "totp" }] }
            }
        }
    })))
}

async fn validate(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    now: i64,
) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    let id = f
        .string("mfa_request_id")?
        .ok_or_else(|| LogicalError::invalid("missing required field 'mfa_request_id'"))?;
    let key = format!("{PENDING_PREFIX}{}", sha256_hex(id.as_bytes()));
    // Single use, whatever the outcome: of concurrent validations of one request
    // id, on any node, exactly one takes it; the rest find nothing.
    let pending = state.barrier.take(&key).await?;
    let pending: PendingMfaV1 = match pending {
        Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?,
        None => {
            return Err(
                LogicalError::Forbidden("unknown, used or expired mfa_request_id".into()).into(),
            )
        }
    };
    if pending.expires <= now {
        return Err(
            LogicalError::Forbidden("unknown, used or expired mfa_request_id".into()).into(),
        );
    }
    let code = match req.data.get("mfa_payload") {
        Some(serde_json::Value::Object(m)) => m
            .values()
            .filter_map(|v| v.as_array())
            .flat_map(|a| a.iter())
            .find_map(|v| v.as_str().map(str::to_owned)),
        _ => None,
    }
    .ok_or_else(|| {
        LogicalError::invalid("mfa_payload must map the method id to a list holding the code")
    })?;
    let mount = {
        let auth = state.auth.read().await;
        auth.entries
            .get(&pending.mount_path)
            .cloned()
            .ok_or_else(|| LogicalError::Forbidden("the login's auth method is gone".into()))?
    };
    let view = View::new(state.barrier.clone(), mount.storage_prefix());
    let cfg = userpass::UserpassConfig::load(&view).await?;
    core.login_limiter
        .check(&mount.uuid, req.remote_addr, cfg.login_rate_per_minute, now)
        .map_err(LogicalError::RateLimited)?;
    let params = userpass::complete_mfa(&view, &mount, &pending.username, &code, now).await?;
    Ok(with_auth_mount(issue(state, params, now).await?, &mount))
}
