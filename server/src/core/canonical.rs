//! The one canonical form of request paths and of the names in them. It is
//! computed once, at the top of `Core::handle`, before anything else looks at
//! the path; authorisation, audit and every handler then see only this form,
//! so the ACL decides on exactly the string the handler acts on (the class of
//! OpenBao GHSA-fg5x-7whg-6c28).
//!
//! A spelling that could name the same object in two ways is refused, never
//! rewritten after the decision: empty segments (`a//b`, a leading `/`), `.`
//! and `..` segments, segments with leading or trailing whitespace, control
//! characters (the HTTP layer has already percent-decoded `%00`, `%0a`, ...).
//! One trailing slash is kept (LIST paths such as `secret/metadata/` use it),
//! except after a name or a mount path, which have none. Where Vault folds
//! case — user names where the auth method folds them, policy names, the user of
//! `sys/locked-users/<accessor>/unlock/<name>` — the name is lower-cased here,
//! before the decision. KV secret paths and mount paths are case-sensitive, as
//! in Vault, and are not folded.

use super::CoreError;

/// Paths whose tail is a case-insensitive policy name.
const POLICY_PREFIXES: &[&str] = &["sys/policies/acl/", "sys/policy/"];

/// Paths whose tail is a mount or audit-device path (no trailing slash in the
/// canonical form; the tables add their own).
const MOUNT_PREFIXES: &[&str] = &["sys/mounts/", "sys/auth/", "sys/audit/", "sys/audit-hash/"];

/// The canonical form of `raw` (the request path below `/v1/`, percent-decoded).
/// `fold_mounted` is asked about a path that no `sys/` rule folds (syntactically
/// valid, without its trailing slash): it answers the folded form when the
/// engine of the mount serving it folds names (see `route.rs`), else `None`.
pub(super) fn canonical_path(
    raw: &str,
    fold_mounted: impl FnOnce(&str) -> Option<String>,
) -> Result<String, CoreError> {
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(refused(format!("control character U+{:04X}", u32::from(c))));
    }
    let body = raw.strip_suffix('/').unwrap_or(raw);
    let trailing = body.len() != raw.len();
    if body.is_empty() {
        return if trailing {
            Err(refused("empty segment (\"//\")"))
        } else {
            Ok(String::new())
        };
    }
    for segment in body.split('/') {
        if segment.is_empty() {
            return Err(refused("empty segment (\"//\")"));
        }
        if segment == "." || segment == ".." {
            return Err(refused("\".\" or \"..\" segment"));
        }
        if segment.trim() != segment {
            return Err(refused("segment with leading or trailing whitespace"));
        }
    }
    Ok(match fold(body, fold_mounted) {
        Some(named) => named,
        None if trailing => format!("{body}/"),
        None => body.to_owned(),
    })
}

/// The folded form of a path that names a policy, a user or a mount (without
/// a trailing slash), or `None` when `body` has no such name.
fn fold(body: &str, fold_mounted: impl FnOnce(&str) -> Option<String>) -> Option<String> {
    for prefix in POLICY_PREFIXES {
        if let Some(name) = body.strip_prefix(prefix) {
            return Some(format!("{prefix}{}", name.to_lowercase()));
        }
    }
    if let Some(tail) = body.strip_prefix("sys/locked-users/") {
        if let Some((accessor, name)) = tail.split_once("/unlock/") {
            return Some(format!(
                "sys/locked-users/{accessor}/unlock/{}",
                name.to_lowercase()
            ));
        }
    }
    if MOUNT_PREFIXES.iter().any(|p| body.starts_with(p)) {
        return Some(body.to_owned());
    }
    fold_mounted(body)
}

fn refused(why: impl Into<String>) -> CoreError {
    CoreError::NonCanonicalPath(why.into())
}

#[cfg(test)]
mod tests;
