//! Interim authorisation, until the policy engine replaces it: a `root` token may
//! do everything; any other token may only look up, renew and revoke itself.
//! Deliberately the smallest rule that is safe.

use super::CoreError;
use crate::logical::Operation;
use crate::token::TokenEntry;

const SELF_SERVICE: &[&str] = &[
    "auth/token/lookup-self",
    "auth/token/renew-self",
    "auth/token/revoke-self",
];

/// Allows or refuses one request.
pub fn authorize(entry: &TokenEntry, _operation: Operation, path: &str) -> Result<(), CoreError> {
    if entry.is_root() || SELF_SERVICE.contains(&path.trim_end_matches('/')) {
        Ok(())
    } else {
        Err(CoreError::PermissionDenied)
    }
}
