//! (Tests only.) Each engine states, in its own folder, the decision of each
//! tier for every path it serves; the core's tier test (`core/routes/tests.rs`)
//! refuses an engine path without them and checks each against the real
//! authorisation with the shipped tier policies.

use serde_json::{json, Value};

use crate::logical::Operation;

/// Allowed.
pub const A: bool = true;
/// Denied.
pub const D: bool = false;

/// An engine's decision rows, for the mount the test gives it.
pub struct TierRows {
    /// where the test mounts the engine: `secret/`, `auth/userpass/`, ...
    pub mount: &'static str,
    /// the rows
    pub rows: Vec<TierRow>,
}

/// One decision: a path pattern of the engine and an operation, the path
/// (relative to the mount) and body when not the pattern's default filling
/// with an empty body, and the decision for a token of each tier (read-only,
/// developer, emergency-admin; each with `default`), the developer logged in
/// as a person of team `payments`.
pub struct TierRow {
    /// the engine's pattern
    pub pattern: &'static str,
    /// the operation
    pub op: Operation,
    /// a path below the mount instead of the pattern's default filling
    pub path: Option<&'static str>,
    /// the request body
    pub body: Value,
    /// read-only, developer, emergency-admin
    pub expect: [bool; 3],
}

/// A row with the default path and an empty body.
pub fn row(pattern: &'static str, op: Operation, ro: bool, dev: bool, ea: bool) -> TierRow {
    TierRow {
        pattern,
        op,
        path: None,
        body: json!({}),
        expect: [ro, dev, ea],
    }
}

/// A row with its own path or body.
pub fn variant(
    pattern: &'static str,
    op: Operation,
    path: Option<&'static str>,
    body: Value,
    expect: [bool; 3],
) -> TierRow {
    TierRow {
        path,
        body,
        ..row(pattern, op, expect[0], expect[1], expect[2])
    }
}
