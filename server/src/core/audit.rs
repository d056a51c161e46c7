//! The core's side of auditing: turns a request, its token and its outcome
//! into the broker's records, and turns "no device accepted it" into a 500.
//! Denied requests and failed logins are audited like any other.
//!
//! One exception keeps a broken device from locking everyone out for good:
//! sealing and removing an audit device, by a root or sudo token, go ahead
//! when no device accepts their entries. The entries are still handed to every
//! device (one that catches up records them), the response entry says so, and
//! the server log gets a warning.

use serde_json::Value;

use super::{CoreError, Unsealed};
use crate::audit::{AuthInfo, Record, RequestInfo, ResponseInfo};
use crate::clock::rfc3339_secs;
use crate::crypto::SecretString;
use crate::logical::{Operation, Request, Response, ResponseBody};

/// What the response entry of a request that went ahead without a durable
/// request entry carries in `response.warnings`.
const BYPASS_WARNING: &str = "no audit device accepted the request entry in time; the request went ahead because a root or sudo token may always seal and remove audit devices";
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
            remote_address: req
                .connection
                .remote_addr
                .map(|a| a.to_string())
                .unwrap_or_default(),
            client_token: req.client_token.clone(),
        },
        breakglass_id: token
            .and_then(|(_, found)| found.entry.meta.get("breakglass_id").cloned())
            .or_else(|| crate::breakglass::id_in_path(path).map(str::to_owned)),
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

/// Whether a request is one of the recovery operations that may go ahead
/// while no audit device takes entries: `sys/seal`, or `DELETE sys/audit/<path>`,
/// by a token with root or sudo there. Anything else stays fail-closed.
pub(super) fn recovery(path: &str, operation: Operation, privileged: bool) -> bool {
    privileged
        && ((path == "sys/seal" && operation.is_write())
            || (path.starts_with("sys/audit/") && operation == Operation::Delete))
}

/// The request entry of an authorised request. A `recovery` request goes
/// ahead without one (answers `true`), leaving a warning in the server log.
pub(super) async fn request_unless_recovery(
    state: &Unsealed,
    record: &Record,
    recovery: bool,
) -> Result<bool, CoreError> {
    match request(state, record, None).await {
        Ok(()) => Ok(false),
        Err(e) if !recovery => Err(e),
        Err(_) => {
            bypass_warning(record, "request");
            Ok(true)
        }
    }
}

/// As [`outcome`]; a `recovery` request is answered even when no device takes
/// its response entry. `bypassed`: its request entry was not taken either,
/// which the response entry says.
pub(super) async fn outcome_unless_recovery(
    state: &Unsealed,
    record: &Record,
    result: Result<Response, CoreError>,
    recovery: bool,
    bypassed: bool,
) -> Result<Response, CoreError> {
    if !recovery {
        return outcome(state, record, result).await;
    }
    let warning = bypassed.then_some(BYPASS_WARNING);
    if log_outcome(state, record, &result, warning).await.is_err() {
        bypass_warning(record, "response");
    }
    result
}

fn bypass_warning(record: &Record, entry: &'static str) {
    // Path and request id only: the path names the device or `sys/seal`, never a secret.
    tracing::warn!(
        path = %record.request.path,
        operation = record.request.operation,
        request_id = %record.request.id,
        entry,
        "no audit device accepted the entry; the request went ahead without it, because a root or sudo token may always seal and remove audit devices"
    );
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
    match log_outcome(state, record, &result, None).await {
        Ok(()) => result,
        Err(_) => Err(CoreError::AuditFailed),
    }
}

async fn log_outcome(
    state: &Unsealed,
    record: &Record,
    result: &Result<Response, CoreError>,
    warning: Option<&str>,
) -> Result<(), crate::audit::AuditError> {
    match result {
        Ok(resp) => {
            let mut info = response_info(resp);
            info.warnings.extend(warning.map(str::to_owned));
            state.audit.log_response(record, Some(&info), None).await
        }
        Err(e) => {
            let message = match warning {
                Some(w) => format!("{e} ({w})"),
                None => e.to_string(),
            };
            state.audit.log_response(record, None, Some(&message)).await
        }
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
        ResponseBody::Empty | ResponseBody::Text(_) | ResponseBody::Bytes { .. } => {
            ResponseInfo::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_seal_and_removing_a_device_by_a_privileged_token_are_recovery() {
        assert!(recovery("sys/seal", Operation::Update, true));
        assert!(recovery("sys/seal", Operation::Create, true));
        assert!(recovery("sys/audit/file/", Operation::Delete, true));
        assert!(!recovery("sys/seal", Operation::Update, false));
        assert!(!recovery("sys/audit/file", Operation::Delete, false));
        assert!(!recovery("sys/audit/file", Operation::Update, true));
        assert!(!recovery("sys/audit", Operation::Read, true));
        assert!(!recovery("sys/seal", Operation::Read, true));
        assert!(!recovery("sys/mounts/secret", Operation::Delete, true));
        assert!(!recovery("secret/data/x", Operation::Delete, true));
        assert!(!recovery("sys/audit-hash/file", Operation::Update, true));
    }
}
