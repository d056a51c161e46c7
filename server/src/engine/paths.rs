//! How an engine (or a `sys/` family, or the token store) declares the paths it
//! serves: a pattern, the operations served there, whether it is served without
//! a token (a login step) and which operations also need `sudo`. A request is
//! only handed to a handler when its path and operation match one of these, so
//! a path nobody declared cannot be reached, however a handler matches strings.
//!
//! Patterns are `/`-separated segments: a literal, `:name` (exactly one
//! non-empty segment) or `*name` (one or more non-empty segments, at most one
//! per pattern). A LIST may end in one `/`, as clients send it. Where two
//! patterns match a path, the first decides (so `.../tune` comes before the
//! `*mount` it would also match).

use crate::logical::Operation;

/// The operations one path serves (POST and PUT are one: create or update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// none
    pub const NONE: Ops = Ops(0);
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

/// One served path.
#[derive(Debug, Clone, Copy)]
pub struct PathSpec {
    /// the pattern, relative to the mount (or the full path for fixed paths)
    pub pattern: &'static str,
    /// the operations served
    pub ops: Ops,
    /// served without a token: an auth method's login step (which produces
    /// one), or a secrets engine's public read (a CA certificate, a CRL)
    pub unauthenticated: bool,
    /// the operations that also need `sudo` here
    pub sudo: Ops,
}

impl PathSpec {
    /// A path that needs a token and no `sudo`.
    pub const fn new(pattern: &'static str, ops: Ops) -> PathSpec {
        PathSpec {
            pattern,
            ops,
            unauthenticated: false,
            sudo: Ops::NONE,
        }
    }

    /// A path served without a token.
    pub const fn unauthenticated(pattern: &'static str, ops: Ops) -> PathSpec {
        PathSpec {
            unauthenticated: true,
            ..PathSpec::new(pattern, ops)
        }
    }

    /// The same path with these operations also needing `sudo`.
    pub const fn with_sudo(self, sudo: Ops) -> PathSpec {
        PathSpec { sudo, ..self }
    }
}

/// The spec in `specs` serving `path` (after one trailing `/` of a LIST).
pub fn find<'a>(specs: &'a [PathSpec], path: &str, op: Operation) -> Option<&'a PathSpec> {
    find_in([((), specs)], path, op).map(|(_, spec)| spec)
}

/// [`find`] over several tables in order (each tagged), splitting the path
/// once: this runs on every request.
pub fn find_in<'a, T>(
    tables: impl IntoIterator<Item = (T, &'a [PathSpec])>,
    path: &str,
    op: Operation,
) -> Option<(T, &'a PathSpec)> {
    let path = match op {
        Operation::List => path.strip_suffix('/').unwrap_or(path),
        _ => path,
    };
    let segments: Vec<&str> = path.split('/').collect();
    tables.into_iter().find_map(|(tag, specs)| {
        specs
            .iter()
            .find(|s| matches_path(s.pattern, path, &segments))
            .map(|spec| (tag, spec))
    })
}

/// [`matches`], after a cheap test on the pattern's literal start (most
/// patterns fail there).
pub(crate) fn matches_path(pattern: &str, path: &str, segments: &[&str]) -> bool {
    match pattern.find([':', '*']) {
        None => pattern == path,
        Some(i) => path.starts_with(&pattern[..i]) && matches(pattern, segments),
    }
}

/// Whether `pattern` matches the path split into `segments`.
pub(crate) fn matches(pattern: &str, segments: &[&str]) -> bool {
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
