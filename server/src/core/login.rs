//! The paths that take no token because they produce one: the paths an auth
//! method declares `unauthenticated` (login, and enrolment steps),
//! and `sys/mfa/validate`, which finishes a login that is waiting for its
//! second factor. Pending MFA requests live behind the barrier (so any node
//! can finish them), expire after five minutes and are single-use.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::route::{Mounted, MountedEngine, Resolved};
use super::{Core, CoreError, Unsealed};
use crate::barrier::View;
use crate::crypto::sha256_hex;
use crate::engine::{LoginOutcome, MountContext};
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

/// Whether the request is one of the token-less login steps (checked before
/// it is audited and handled).
pub(super) fn is_login(resolved: &Resolved) -> bool {
    resolved.path == "sys/mfa/validate" || resolved.mounted().is_some_and(Mounted::is_login)
}

/// Handles a login step (see [`is_login`]).
pub(super) async fn handle(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    resolved: &Resolved,
    now: UnixTime,
) -> Result<Response, CoreError> {
    if resolved.path == "sys/mfa/validate" {
        if !req.operation.is_write() {
            return Err(CoreError::UnsupportedOperation);
        }
        let (method, result) = validate(core, state, req, now).await;
        let name = if result.is_ok() {
            "coffer_logins_total"
        } else {
            "coffer_login_failures_total"
        };
        core.metrics.inc(name, vec![("method", method)]);
        return result;
    }
    let Some(mounted) = resolved.mounted() else {
        return Err(CoreError::NoHandler(resolved.path.clone()));
    };
    let MountedEngine::Auth(method) = &mounted.engine else {
        return Err(CoreError::NoHandler(resolved.path.clone()));
    };
    super::routes::check_mounted(mounted, req.operation, &resolved.path)?;
    if !req.operation.is_write() {
        return Err(CoreError::UnsupportedOperation);
    }
    let mount = &mounted.entry;
    let view = &mounted.view;
    let labels = || vec![("method", mount.kind.clone())];
    let rate = method.login_rate_per_minute(view).await?;
    if let Err(secs) = core
        .login_limiter
        .check(&mount.uuid, req.connection.remote_addr, rate, now)
    {
        core.metrics.inc("coffer_login_failures_total", labels());
        return Err(LogicalError::RateLimited(secs).into());
    }
    let ctx = MountContext {
        mount,
        view,
        rest: &mounted.rest,
        now,
        caller: None,
        connection: &req.connection,
        token_view: None,
    };
    let result = match method.login(&ctx, req).await {
        Ok(LoginOutcome::Issue(params)) => issue(state, *params, now).await,
        Ok(LoginOutcome::NeedSecondFactor { username }) => {
            challenge_response(state, mount, &username, now).await
        }
        Ok(LoginOutcome::Answer(resp)) => Ok(*resp),
        Err(e) => Err(e.into()),
    };
    match &result {
        Ok(r) if is_token(r) => core.metrics.inc("coffer_logins_total", labels()),
        Err(_) if mounted.spec.is_some_and(|s| s.pattern.starts_with("login")) => {
            core.metrics.inc("coffer_login_failures_total", labels())
        }
        _ => {}
    }
    Ok(with_auth_mount(result?, mount))
}

fn is_token(resp: &Response) -> bool {
    matches!(&resp.body, crate::logical::ResponseBody::Envelope { auth: Some(a), .. }
        if a.get("client_token").and_then(|t| t.as_str()).is_some_and(|t| !t.is_empty()))
}

fn with_auth_mount(mut resp: Response, mount: &MountEntry) -> Response {
    resp.mount_type = Some(mount.kind.clone());
    resp
}

async fn issue(
    state: &Unsealed,
    params: CreateParams,
    now: UnixTime,
) -> Result<Response, CoreError> {
    let (token, entry) = state.tokens.create(params, None, now).await?;
    Ok(Response::auth(auth_data(&token, &entry, now)))
}

async fn challenge_response(
    state: &Unsealed,
    mount: &MountEntry,
    username: &str,
    now: UnixTime,
) -> Result<Response, CoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let pending = PendingMfaV1 {
        mount_path: mount.path.clone(),
        username: username.to_owned(),
        expires: now.secs() + MFA_REQUEST_TTL,
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

/// Finishes a waiting login; also answers the auth method's kind, for metrics.
async fn validate(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    now: UnixTime,
) -> (String, Result<Response, CoreError>) {
    let mut kind = "unknown".to_owned();
    let result = validate_inner(core, state, req, now, &mut kind).await;
    (kind, result)
}

async fn validate_inner(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    now: UnixTime,
    kind: &mut String,
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
    if pending.expires <= now.secs() {
        return Err(
            LogicalError::Forbidden("unknown, used or expired mfa_request_id".into()).into(),
        );
    }
    let code = match req.data.get("mfa_payload") {
        Some(serde_json::Value::Object(m)) => m
            .values()
            .filter_map(|v| v.as_array())
            .flat_map(|a| a.iter())
            .find_map(|v| v.as_str().map(|s| zeroize::Zeroizing::new(s.to_owned()))),
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
    kind.clone_from(&mount.kind);
    let method = core
        .registry()
        .auth(&mount.kind)
        .ok_or_else(|| LogicalError::Forbidden("the login's auth method is gone".into()))?
        .clone();
    let view = View::new(state.barrier.clone(), mount.storage_prefix());
    let rate = method.login_rate_per_minute(&view).await?;
    core.login_limiter
        .check(&mount.uuid, req.connection.remote_addr, rate, now)
        .map_err(LogicalError::RateLimited)?;
    let ctx = MountContext {
        mount: &mount,
        view: &view,
        rest: "",
        now,
        caller: None,
        connection: &req.connection,
        token_view: None,
    };
    let params = method
        .complete_second_factor(&ctx, &pending.username, &code)
        .await?;
    Ok(with_auth_mount(issue(state, params, now).await?, &mount))
}
