//! The core's error type: everything a request can fail with, before the HTTP
//! layer turns it into a status code (in `http::error`, the one place that does).

use crate::barrier::BarrierError;
use crate::logical::LogicalError;
use crate::seal::SealError;

/// Why the core refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The node is sealed (or not initialised) and the path needs it unsealed.
    #[error("Coffer is sealed")]
    Sealed,
    /// No token, an unknown or expired token, or a token that may not do this.
    #[error("permission denied")]
    PermissionDenied,
    /// No mount or system path serves this path.
    #[error("no handler for route \"{0}\". route entry not found.")]
    NoHandler(String),
    /// The path exists but not with this operation.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// A request in another namespace; only the root namespace exists.
    #[error("namespaces are not supported: only the root namespace exists (got X-Vault-Namespace \"{0}\")")]
    Namespace(String),
    /// A request for response wrapping, which Coffer does not offer: answering
    /// unwrapped would hand the secret to whoever the client meant to shield it from.
    #[error("response wrapping is not supported: send the request without X-Vault-Wrap-TTL")]
    WrappingUnsupported,
    /// A path that is not in its one canonical form (see `core/canonical.rs`).
    #[error("invalid request path: {0}; send each segment once, without \".\" or \"..\", padding or control characters")]
    NonCanonicalPath(String),
    /// From an engine or the token store.
    #[error(transparent)]
    Logical(#[from] LogicalError),
    /// From init/unseal.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// No audit device accepted an entry of this request.
    #[error("the request could not be audited")]
    AuditFailed,
}

impl From<crate::audit::AuditError> for CoreError {
    fn from(e: crate::audit::AuditError) -> Self {
        use crate::audit::AuditError;
        match e {
            AuditError::NotAccepted => CoreError::AuditFailed,
            AuditError::Invalid(m) => CoreError::Logical(LogicalError::InvalidRequest(m)),
            AuditError::Barrier(b) => b.into(),
            AuditError::Corrupt | AuditError::Crypto => CoreError::Logical(LogicalError::Corrupt),
        }
    }
}

impl From<BarrierError> for CoreError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Sealed => CoreError::Sealed,
            other => CoreError::Logical(LogicalError::Barrier(other)),
        }
    }
}
