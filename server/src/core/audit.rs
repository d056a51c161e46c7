//! The core's side of auditing: turns a request, its token and its outcome
//! into the broker's records, and turns "no device accepted it" into a 500.
//! Denied requests and failed logins are audited like any other.

use serde_json::Value;

use super::{CoreError, Unsealed};
use crate::audit::{AuthInfo, Record, RequestInfo, ResponseInfo};
use crate::clock::rfc3339_secs;
use crate::crypto::SecretString;
use crate::logical::{Request, Response, ResponseBody};
use crate::token::FoundToken;

/// What both entries of `req` share.
pub(super) async fn record(
    state: &Unsealed,
    req: &Request,
    path: &str,
    token: Option<(&SecretString, &FoundToken)>,
) -> Record {
    let (mount_point, mount_type) = mount_of(state, path).await;
    let auth = token.map(|(token, found)| {
        let e = &found.entry;
        AuthInfo {
            client_token: token.clone(),
            accessor: SecretString::new(e.accessor.clone()),
            display_name: e.display_name.clone(),
            policies: e.policies.clone(),
            metadata: if e.meta.is_empty() {
                Value::Null
            } else {
                serde_json::to_value(&e.meta).unwrap_or(Value::Null)
            },
            entity_id: e.entity_id.clone(),
            token_ttl: e.creation_ttl,
            token_issue_time: rfc3339_secs(e.creation_time),
        }
    });
    Record {
        auth,
        request: RequestInfo {
            id: req.id.clone(),
            operation: req.operation.as_str(),
            path: path.to_owned(),
            mount_point,
            mount_type,
            data: req.data.clone(),
            remote_address: req.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            client_token: req.client_token.clone(),
        },
    }
}

async fn mount_of(state: &Unsealed, path: &str) -> (String, String) {
    if path == "sys" || path.starts_with("sys/") {
        return ("sys/".into(), "system".into());
    }
    if let Some(below) = path.strip_prefix("auth/") {
        let auth = state.auth.read().await;
        return auth
            .route(below)
            .map(|(e, _)| (format!("auth/{}", e.path), e.kind.clone()))
            .unwrap_or_default();
    }
    let mounts = state.mounts.read().await;
    mounts
        .route(path)
        .map(|(e, _)| (e.path.clone(), e.kind.clone()))
        .unwrap_or_default()
}

/// The request entry; if no device takes it, the request goes no further.
pub(super) async fn request(
    state: &Unsealed,
    record: &Record,
    error: Option<&str>,
) -> Result<(), CoreError> {
    state
        .audit
        .log_request(record, error)
        .await
        .map_err(|_| CoreError::AuditFailed)
}

/// The response entry for `result`; the client sees `result` only if a
/// device took it.
pub(super) async fn outcome(
    state: &Unsealed,
    record: &Record,
    result: Result<Response, CoreError>,
) -> Result<Response, CoreError> {
    let logged = match &result {
        Ok(resp) => {
            let info = response_info(resp);
            state.audit.log_response(record, Some(&info), None).await
        }
        Err(e) => {
            let message = e.to_string();
            state.audit.log_response(record, None, Some(&message)).await
        }
    };
    match logged {
        Ok(()) => result,
        Err(_) => Err(CoreError::AuditFailed),
    }
}

/// Both entries of a refused request, then the refusal.
pub(super) async fn denied(
    state: &Unsealed,
    record: &Record,
    error: CoreError,
) -> Result<Response, CoreError> {
    let message = error.to_string();
    request(state, record, Some(&message)).await?;
    outcome(state, record, Err(error)).await
}

fn response_info(resp: &Response) -> ResponseInfo {
    match &resp.body {
        ResponseBody::Envelope {
            data,
            auth,
            warnings,
        } => ResponseInfo {
            data: data.clone(),
            auth: auth.clone(),
            warnings: warnings.clone(),
        },
        ResponseBody::Raw(v) => ResponseInfo {
            data: Some(v.clone()),
            ..ResponseInfo::default()
        },
        ResponseBody::Empty | ResponseBody::Text(_) => ResponseInfo::default(),
    }
}
