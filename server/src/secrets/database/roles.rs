//! `roles/<name>`: which database a credential is made in, the statements that
//! create and revoke it, and its TTLs.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::config::checked_name;
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// Ends the role's sessions, hands what it owns to the connecting user, and
/// drops it: what Coffer runs when a role names no revocation statements.
pub(super) const DEFAULT_REVOCATION: &[&str] = &[
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}' AND pid <> pg_backend_pid()",
    "REASSIGN OWNED BY \"{{name}}\" TO CURRENT_USER",
    "DROP OWNED BY \"{{name}}\"",
    "DROP ROLE IF EXISTS \"{{name}}\"",
];
/// Moves the role's expiry: what Coffer runs on renewal by default.
pub(super) const DEFAULT_RENEW: &[&str] = &["ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'"];

/// One role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct RoleEntry {
    pub(super) db_name: String,
    pub(super) creation_statements: Vec<String>,
    #[serde(default)]
    pub(super) revocation_statements: Vec<String>,
    #[serde(default)]
    pub(super) renew_statements: Vec<String>,
    #[serde(default)]
    pub(super) rollback_statements: Vec<String>,
    /// seconds (0: the mount's default)
    #[serde(default)]
    pub(super) default_ttl: u64,
    /// seconds (0: the mount's max)
    #[serde(default)]
    pub(super) max_ttl: u64,
}

fn key(name: &str) -> String {
    format!("roles/{name}")
}

pub(super) async fn load(view: &View, name: &str) -> Result<Option<RoleEntry>, LogicalError> {
    match view.get(&key(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

fn read_json(role: &RoleEntry) -> Value {
    json!({
        "db_name": role.db_name,
        "creation_statements": role.creation_statements,
        "revocation_statements": role.revocation_statements,
        "renew_statements": role.renew_statements,
        "rollback_statements": role.rollback_statements,
        "default_ttl": role.default_ttl,
        "max_ttl": role.max_ttl,
        "credential_type": "password",
    })
}

/// `roles/<name>`, and `LIST roles`.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    if name.is_empty() {
        return crate::engine::list_names(view, "roles/").await;
    }
    let name = checked_name(name)?;
    match req.operation {
        Operation::Read => {
            let role = load(view, name).await?.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(read_json(&role)))
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&key(name))]).await?;
            Ok(Response::no_content())
        }
        Operation::Create | Operation::Update => {
            let f = Fields(&req.data);
            let old = load(view, name).await?;
            let list =
                |field: &str, old: Option<&Vec<String>>| -> Result<Vec<String>, LogicalError> {
                    Ok(f.string_list(field)?
                        .or_else(|| old.cloned())
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| !s.trim().is_empty())
                        .collect())
                };
            let role = RoleEntry {
                db_name: f
                    .string("db_name")?
                    .or_else(|| old.as_ref().map(|o| o.db_name.clone()))
                    .ok_or_else(|| LogicalError::invalid("missing required field 'db_name'"))?,
                creation_statements: list(
                    "creation_statements",
                    old.as_ref().map(|o| &o.creation_statements),
                )?,
                revocation_statements: list(
                    "revocation_statements",
                    old.as_ref().map(|o| &o.revocation_statements),
                )?,
                renew_statements: list(
                    "renew_statements",
                    old.as_ref().map(|o| &o.renew_statements),
                )?,
                rollback_statements: list(
                    "rollback_statements",
                    old.as_ref().map(|o| &o.rollback_statements),
                )?,
                default_ttl: f
                    .duration("default_ttl")?
                    .or(old.as_ref().map(|o| o.default_ttl))
                    .unwrap_or(0),
                max_ttl: f
                    .duration("max_ttl")?
                    .or(old.as_ref().map(|o| o.max_ttl))
                    .unwrap_or(0),
            };
            checked_name(&role.db_name)?;
            if role.creation_statements.is_empty() {
                return Err(LogicalError::invalid(
                    "missing required field 'creation_statements'",
                ));
            }
            if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
                return Err(LogicalError::invalid(
                    "default_ttl cannot be longer than max_ttl",
                ));
            }
            let raw = serde_json::to_vec(&role).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op(&key(name), raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}
