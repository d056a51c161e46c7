//! The paths the core serves itself (`sys/` and `auth/token/`), in one table,
//! and the checks that hold every request to a declared path: a request is
//! only handed to a handler when its path and operation match a row here or a
//! [`PathSpec`] of the engine of its mount. The tier table test
//! (routes/tests.rs) states each tier's decision for every row and every
//! engine's paths, so a new route cannot slip into a tier unseen.
//!
//! Fixed routes are checked before anything else: their table is public, so a
//! 404 there tells nobody anything. Paths below a mount are checked after
//! authorisation, right before the engine: answering 404 earlier would tell
//! an unauthenticated client which mounts exist, which Vault also avoids (a
//! denied caller sees 403 either way).

use super::route::Mounted;
use super::CoreError;
use crate::engine::paths::find_in;
use crate::engine::{Ops, PathSpec};
use crate::logical::Operation;

const R: Ops = Ops::READ;
const W: Ops = Ops::WRITE;

/// The tables of fixed routes: each `sys/` family's, the login step's and the
/// token store's. Where two patterns match a path, the first decides.
pub(super) fn fixed_tables() -> impl Iterator<Item = &'static [PathSpec]> {
    super::sys::FAMILIES
        .iter()
        .map(|f| f.paths)
        .chain([LOGIN_ROUTES, TOKEN_ROUTES])
}

/// Every fixed route.
pub(super) fn fixed_routes() -> impl Iterator<Item = &'static PathSpec> {
    fixed_tables().flatten()
}

/// Whether `path` is a fixed route declared token-less (which route matches a
/// path does not depend on the operation).
pub(super) fn is_unauthenticated_fixed(path: &str) -> bool {
    find_fixed(path, Operation::Read).is_some_and(|spec| spec.unauthenticated)
}

/// The fixed route serving `path` for `op`.
pub(super) fn find_fixed(path: &str, op: Operation) -> Option<&'static PathSpec> {
    find_in(fixed_tables().map(|t| ((), t)), path, op).map(|(_, spec)| spec)
}

const fn fixed(pattern: &'static str, ops: Ops) -> PathSpec {
    PathSpec::new(pattern, ops)
}

const fn public(pattern: &'static str, ops: Ops) -> PathSpec {
    PathSpec::unauthenticated(pattern, ops)
}

/// The login step below `sys/` (see `login.rs`).
static LOGIN_ROUTES: &[PathSpec] = &[public("sys/mfa/validate", W)];

/// The token store's paths.
static TOKEN_ROUTES: &[PathSpec] = &[
    // auth/token/
    fixed("auth/token/create", W),
    fixed("auth/token/create-orphan", W),
    fixed("auth/token/lookup-self", R.and(W)),
    fixed("auth/token/lookup", R.and(W)),
    fixed("auth/token/lookup-accessor", W),
    fixed("auth/token/renew-self", W),
    fixed("auth/token/renew", W),
    fixed("auth/token/renew-accessor", W),
    fixed("auth/token/revoke-self", W),
    fixed("auth/token/revoke", W),
    fixed("auth/token/revoke-accessor", W),
    fixed("auth/token/revoke-orphan", W),
];

/// Whether `path` is below `sys/` or `auth/token/`, whose routes are fixed.
pub(super) fn is_fixed(path: &str) -> bool {
    path == "sys"
        || path.starts_with("sys/")
        || path == "auth/token"
        || path.starts_with("auth/token/")
}

/// Refuses, before anything else, a fixed path no route serves (404) or an
/// operation its route does not serve (405). Paths below mounts pass here and
/// are checked by [`check_mounted`].
pub(super) fn check_fixed(path: &str, op: Operation) -> Result<(), CoreError> {
    if !is_fixed(path) {
        return Ok(());
    }
    check(find_fixed(path, op), op, path)
}

/// Refuses a path below a mount that its engine does not declare, or an
/// operation it does not serve there. `full` is the request path, for the error.
pub(super) fn check_mounted(mounted: &Mounted, op: Operation, full: &str) -> Result<(), CoreError> {
    check(mounted.spec, op, full)
}

fn check(spec: Option<&PathSpec>, op: Operation, full: &str) -> Result<(), CoreError> {
    match spec {
        None => Err(CoreError::NoHandler(full.to_owned())),
        Some(spec) if !spec.ops.has(op) => Err(CoreError::UnsupportedOperation),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
