//! The one place where errors become HTTP: status codes and Vault's
//! `{"errors": [...]}` body. Internal causes are logged here (without values)
//! and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::barrier::BarrierError;
use crate::core::CoreError;
use crate::logical::LogicalError;
use crate::seal::SealError;

/// An HTTP-level failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// From the core.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Body over `max_request_size`.
    #[error("request body too large")]
    TooLarge,
    /// Body has more JSON structure than the listener's budget.
    #[error("request body has too many JSON values (more than {0})")]
    TooComplex(usize),
    /// The body did not arrive within the listener's `body_read_timeout`.
    #[error("the request body was not received in time")]
    BodyTimeout,
    /// Body is not JSON/form, or not an object.
    #[error("{0}")]
    BadBody(String),
    /// The URL path cannot be read (e.g. percent-encoded bytes that are not UTF-8).
    #[error("invalid request path: {0}")]
    BadPath(String),
    /// A method the API does not have.
    #[error("unsupported method")]
    Method,
    /// The request's task was cancelled (shutdown).
    #[error("the request was cancelled")]
    Cancelled,
}

impl ApiError {
    fn status_and_errors(&self) -> (StatusCode, Vec<String>) {
        match self {
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, vec![self.to_string()]),
            ApiError::TooComplex(_) => (StatusCode::PAYLOAD_TOO_LARGE, vec![self.to_string()]),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, vec![self.to_string()]),
            ApiError::BadBody(m) => (StatusCode::BAD_REQUEST, vec![m.clone()]),
            ApiError::BadPath(_) => (StatusCode::BAD_REQUEST, vec![self.to_string()]),
            ApiError::Method => (StatusCode::METHOD_NOT_ALLOWED, vec![self.to_string()]),
            ApiError::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, vec![self.to_string()]),
            ApiError::Core(core) => match core {
                CoreError::Sealed => (StatusCode::SERVICE_UNAVAILABLE, vec![core.to_string()]),
                CoreError::PermissionDenied | CoreError::TokenRefused(_) => {
                    (StatusCode::FORBIDDEN, vec![core.to_string()])
                }
                CoreError::NoHandler(_) | CoreError::Unmounted { .. } => {
                    (StatusCode::NOT_FOUND, vec![core.to_string()])
                }
                CoreError::UnsupportedOperation => {
                    (StatusCode::METHOD_NOT_ALLOWED, vec![core.to_string()])
                }
                CoreError::Namespace(_)
                | CoreError::WrappingUnsupported
                | CoreError::NonCanonicalPath(_) => {
                    (StatusCode::BAD_REQUEST, vec![core.to_string()])
                }
                CoreError::Logical(l) => logical(l),
                CoreError::Seal(s) => seal(s),
                // Not "internal error": operators must see at once that the
                // audit trail is what stopped the request.
                CoreError::AuditFailed => {
                    (StatusCode::INTERNAL_SERVER_ERROR, vec![core.to_string()])
                }
            },
        }
    }
}

fn logical(e: &LogicalError) -> (StatusCode, Vec<String>) {
    match e {
        LogicalError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, vec![m.clone()]),
        LogicalError::NotFound => (StatusCode::NOT_FOUND, vec![]),
        LogicalError::PermissionDenied | LogicalError::BadToken | LogicalError::Forbidden(_) => {
            (StatusCode::FORBIDDEN, vec![e.to_string()])
        }
        LogicalError::UnsupportedOperation => (StatusCode::METHOD_NOT_ALLOWED, vec![e.to_string()]),
        LogicalError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, vec![e.to_string()]),
        LogicalError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()]),
        LogicalError::UnsupportedMediaType(m) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, vec![m.clone()])
        }
        LogicalError::Barrier(BarrierError::Sealed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["Coffer is sealed".into()],
        ),
        LogicalError::Barrier(BarrierError::Contended) => {
            (StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()])
        }
        LogicalError::Upstream(m) => (StatusCode::INTERNAL_SERVER_ERROR, vec![m.clone()]),
        LogicalError::QuotaExceeded(m) => (StatusCode::TOO_MANY_REQUESTS, vec![m.clone()]),
        LogicalError::Barrier(_) | LogicalError::Corrupt => internal(),
    }
}

fn seal(e: &SealError) -> (StatusCode, Vec<String>) {
    match e {
        SealError::AlreadyInitialized
        | SealError::NotInitialized
        | SealError::InvalidParameters(_)
        | SealError::MalformedKey
        | SealError::WrongKey
        | SealError::AlreadyUnsealed
        | SealError::InProgress(_)
        | SealError::NotInProgress(_)
        | SealError::WrongNonce(_)
        | SealError::DuplicateKey(_)
        | SealError::CancelNeedsShare(_)
        | SealError::Unsupported(_) => (StatusCode::BAD_REQUEST, vec![e.to_string()]),
        SealError::Barrier(BarrierError::Contended) => {
            (StatusCode::SERVICE_UNAVAILABLE, vec![e.to_string()])
        }
        SealError::Barrier(BarrierError::Sealed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["Coffer is sealed".into()],
        ),
        SealError::Barrier(_) | SealError::CorruptConfig | SealError::Rng(_) => internal(),
    }
}

fn internal() -> (StatusCode, Vec<String>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        vec!["internal error".into()],
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errors) = self.status_and_errors();
        let retry_after = match &self {
            ApiError::Core(CoreError::Logical(
                LogicalError::RateLimited(secs) | LogicalError::Busy(secs),
            )) => Some(*secs),
            _ => None,
        };
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            // The Display of storage/barrier errors is data-free by construction.
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, axum::Json(json!({ "errors": errors }))).into_response();
        if let Some(secs) =
            retry_after.and_then(|s| axum::http::HeaderValue::from_str(&s.to_string()).ok())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs);
        }
        response
    }
}

/// The body for a handler that panicked: no detail.
pub fn panic_response() -> Response {
    let (status, errors) = internal();
    (status, axum::Json(json!({ "errors": errors }))).into_response()
}
