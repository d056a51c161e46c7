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
    /// The token's policies do not allow this.
    #[error("permission denied")]
    PermissionDenied,
    /// The request carries no usable token, and this says which way: every
    /// answer stays a 403 starting "permission denied", as clients expect.
    #[error("permission denied: {0}")]
    TokenRefused(TokenRefusal),
    /// No mount or system path serves this path.
    #[error("no handler for route \"{0}\". route entry not found.")]
    NoHandler(String),
    /// Nothing is mounted where the path points: Vault's sentence, then what to do.
    #[error("no handler for route \"{path}\". route entry not found. {}", unmounted_hint(.path))]
    Unmounted {
        /// the canonical request path
        path: String,
    },
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

/// Which mount a path names that nothing serves, and how to enable one there.
fn unmounted_hint(path: &str) -> String {
    match path.strip_prefix("auth/") {
        Some(below) => {
            let mount = below.split('/').next().unwrap_or_default();
            format!(
                "No auth method is enabled at \"auth/{mount}/\"; enable one with: coffer auth enable -path={mount} <type> (coffer auth list shows the enabled ones)"
            )
        }
        None => {
            let mount = path.split('/').next().unwrap_or_default();
            format!(
                "No secrets engine is mounted at \"{mount}/\"; enable one with: coffer secrets enable -path={mount} kv-v2"
            )
        }
    }
}

/// Why a request's token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// No `X-Vault-Token` (or an empty one).
    #[error("no token was sent; log in, or set VAULT_TOKEN")]
    Missing,
    /// No token has this id.
    #[error("invalid token")]
    Unknown,
    /// The token existed and has expired.
    #[error("the token has expired; log in again")]
    Expired,
    /// The token is bound to networks this request did not come from.
    #[error("the token may not be used from this address")]
    WrongAddress,
    /// The token is bound to a client certificate this connection did not
    /// present (Coffer's certificate-bound tokens, after RFC 8705).
    #[error("the token is bound to a client certificate that this connection did not present")]
    WrongCertificate,
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
