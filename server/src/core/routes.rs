//! Every route the server serves, and the operations each serves, in one table.
//! A request is only handed to a handler when its path and operation match a
//! row here, so a path the table does not name cannot be reached, however a
//! handler matches strings; and the tier table test (routes/tests.rs) states
//! each tier's decision for every row, so a new route cannot slip into a tier
//! unseen. When engines register themselves, their rows move with them, but
//! this stays the one list.
//!
//! Patterns are `/`-separated segments: a literal, `:name` (exactly one
//! non-empty segment) or `*name` (one or more non-empty segments, at most one
//! per pattern). A LIST may end in one `/`, as clients send it.
//!
//! Fixed routes (below `sys/` and `auth/token/`) are checked before anything
//! else: their table is public, so a 404 there tells nobody anything. Routes
//! below a mount are checked after authorisation, right before the engine:
//! answering 404 earlier would tell an unauthenticated client which mounts
//! exist, which Vault also avoids (a denied caller sees 403 either way).

use super::CoreError;
use crate::logical::Operation;

/// The operations one route serves (POST and PUT are one: create or update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// GET
    pub const READ: Ops = Ops(1);
    /// LIST (or GET `?list=true`)
    pub const LIST: Ops = Ops(2);
    /// POST/PUT: create or update
    pub const WRITE: Ops = Ops(4);
    /// PATCH
    pub const PATCH: Ops = Ops(8);
    /// DELETE
    pub const DELETE: Ops = Ops(16);

    /// Both sets.
    pub const fn and(self, other: Ops) -> Ops {
        Ops(self.0 | other.0)
    }

    /// Whether `op` is in the set.
    pub fn has(self, op: Operation) -> bool {
        self.0 & Ops::of(op).0 != 0
    }

    /// The one-element set of `op`.
    pub fn of(op: Operation) -> Ops {
        match op {
            Operation::Read => Ops::READ,
            Operation::List => Ops::LIST,
            Operation::Create | Operation::Update => Ops::WRITE,
            Operation::Patch => Ops::PATCH,
            Operation::Delete => Ops::DELETE,
        }
    }
}

/// Where a route's pattern is rooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// a full path below `sys/` or `auth/token/`
    Fixed,
    /// relative to a secrets or auth mount of this engine kind
    Mount(&'static str),
}

/// One served route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// where the pattern is rooted
    pub scope: Scope,
    /// the path pattern (see the module doc)
    pub pattern: &'static str,
    /// the operations it serves
    pub ops: Ops,
    /// served without a token (status, unseal, logins)
    pub public: bool,
}

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const P: Ops = Ops::PATCH;
const D: Ops = Ops::DELETE;

const fn fixed(pattern: &'static str, ops: Ops) -> Route {
    Route {
        scope: Scope::Fixed,
        pattern,
        ops,
        public: false,
    }
}

const fn public(pattern: &'static str, ops: Ops) -> Route {
    Route {
        scope: Scope::Fixed,
        pattern,
        ops,
        public: true,
    }
}

const fn kv(pattern: &'static str, ops: Ops) -> Route {
    Route {
        scope: Scope::Mount("kv"),
        pattern,
        ops,
        public: false,
    }
}

const fn userpass(pattern: &'static str, ops: Ops, public: bool) -> Route {
    Route {
        scope: Scope::Mount("userpass"),
        pattern,
        ops,
        public,
    }
}

/// Every route served. Where two patterns match a path, the first decides
/// (so `.../tune` comes before the `*mount` it would also match).
pub static ROUTES: &[Route] = &[
    // sys/: no token needed (also while sealed, except mfa/validate)
    public("sys/init", R.and(W)),
    public("sys/seal-status", R),
    public("sys/unseal", W),
    public("sys/health", R),
    public("sys/leader", R),
    public("sys/mfa/validate", W),
    // sys/metrics is public only on a listener that says so; the table names
    // the token-needing form.
    fixed("sys/metrics", R),
    fixed("sys/seal", W),
    fixed("sys/rotate", W),
    fixed("sys/rotate/keyring", W),
    fixed("sys/key-status", R),
    fixed("sys/mounts", R),
    fixed("sys/mounts/*mount/tune", R.and(W)),
    fixed("sys/mounts/*mount", R.and(W).and(D)),
    fixed("sys/auth", R),
    fixed("sys/auth/*mount/tune", R),
    fixed("sys/auth/*mount", R.and(W).and(D)),
    fixed("sys/internal/ui/mounts", R),
    fixed("sys/internal/ui/mounts/*mount", R),
    fixed("sys/locked-users", R),
    fixed("sys/locked-users/:accessor/unlock/:user", W),
    fixed("sys/audit", R),
    fixed("sys/audit-checkpoint-key", R),
    fixed("sys/audit-hash/*device", W),
    fixed("sys/audit/*device", W.and(D)),
    fixed("sys/policies/acl", L),
    fixed("sys/policies/acl/:policy", R.and(W).and(D)),
    fixed("sys/policy", R.and(L)),
    fixed("sys/policy/:policy", R.and(W).and(D)),
    fixed("sys/capabilities-self", W),
    fixed("sys/capabilities", W),
    fixed("sys/capabilities-accessor", W),
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
    // below a userpass mount
    userpass("login/:user", W, true),
    userpass("totp/enroll/:user", W, true),
    userpass("totp/confirm/:user", W, true),
    userpass("config", R.and(W), false),
    userpass("users", L, false),
    userpass("users/:user", R.and(W).and(D), false),
    userpass("users/:user/password", W, false),
    userpass("users/:user/policies", W, false),
    userpass("users/:user/totp", D, false),
    userpass("users/:user/enrollment-token", W, false),
    // below a KV v2 mount
    kv("config", R.and(W)),
    kv("data/*path", R.and(W).and(P).and(D)),
    kv("subkeys/*path", R),
    kv("metadata", L),
    kv("metadata/*path", R.and(L).and(W).and(P).and(D)),
    kv("delete/*path", W),
    kv("undelete/*path", W),
    kv("destroy/*path", W),
];

/// Whether `path` is below `sys/` or `auth/token/`, whose routes are fixed.
pub(super) fn is_fixed(path: &str) -> bool {
    path == "sys"
        || path.starts_with("sys/")
        || path == "auth/token"
        || path.starts_with("auth/token/")
}

/// The route serving `path` (relative to the mount for mounted scopes).
pub fn find(scope: Scope, path: &str, op: Operation) -> Option<&'static Route> {
    let path = match op {
        Operation::List => path.strip_suffix('/').unwrap_or(path),
        _ => path,
    };
    let segments: Vec<&str> = path.split('/').collect();
    ROUTES
        .iter()
        .filter(|r| r.scope == scope)
        .find(|r| matches_path(r.pattern, path, &segments))
}

/// [`matches`], after a cheap test on the pattern's literal start (most
/// patterns fail there), since every request scans the table.
fn matches_path(pattern: &str, path: &str, segments: &[&str]) -> bool {
    match pattern.find([':', '*']) {
        None => pattern == path,
        Some(i) => path.starts_with(&pattern[..i]) && matches(pattern, segments),
    }
}

/// Refuses, before anything else, a fixed path no route serves (404) or an
/// operation its route does not serve (405). Paths below mounts pass here and
/// are checked by [`check_mounted`].
pub(super) fn check_fixed(path: &str, op: Operation) -> Result<(), CoreError> {
    if !is_fixed(path) {
        return Ok(());
    }
    check(Scope::Fixed, path, op, path)
}

/// Refuses a path below a mount of engine `kind` that no route serves, or an
/// operation its route does not serve. `full` is the request path, for the error.
pub(super) fn check_mounted(
    kind: &str,
    rest: &str,
    op: Operation,
    full: &str,
) -> Result<(), CoreError> {
    let scope = ROUTES
        .iter()
        .find_map(|r| match r.scope {
            Scope::Mount(k) if k == kind => Some(r.scope),
            _ => None,
        })
        .ok_or_else(|| CoreError::NoHandler(full.to_owned()))?;
    check(scope, rest, op, full)
}

/// Whether `rest`, below a mount of engine `kind`, is a route served without
/// a token (a login step).
pub(super) fn is_public_mounted(kind: &str, rest: &str) -> bool {
    ROUTES.iter().any(|r| {
        matches!(r.scope, Scope::Mount(k) if k == kind)
            && r.public
            && matches(r.pattern, &rest.split('/').collect::<Vec<_>>())
    })
}

fn check(scope: Scope, path: &str, op: Operation, full: &str) -> Result<(), CoreError> {
    match find(scope, path, op) {
        None => Err(CoreError::NoHandler(full.to_owned())),
        Some(route) if !route.ops.has(op) => Err(CoreError::UnsupportedOperation),
        Some(_) => Ok(()),
    }
}

fn matches(pattern: &str, segments: &[&str]) -> bool {
    // Runs on every request: no allocation.
    let all =
        |pat: &str, segs: &[&str]| pat.split('/').zip(segs).all(|(p, s)| segment_matches(p, s));
    let Some(star) = pattern.find('*') else {
        return pattern.split('/').count() == segments.len() && all(pattern, segments);
    };
    let before = pattern[..star].trim_end_matches('/');
    let after = pattern[star..].split_once('/').map(|(_, a)| a);
    let n_before = if before.is_empty() {
        0
    } else {
        before.split('/').count()
    };
    let n_after = after.map_or(0, |a| a.split('/').count());
    if segments.len() < n_before + 1 + n_after {
        return false;
    }
    let tail = segments.len() - n_after;
    all(before, &segments[..n_before])
        && after.is_none_or(|a| all(a, &segments[tail..]))
        && segments[n_before..tail].iter().all(|s| !s.is_empty())
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    if pattern.starts_with(':') {
        !segment.is_empty()
    } else {
        pattern == segment
    }
}

#[cfg(test)]
mod tests;
