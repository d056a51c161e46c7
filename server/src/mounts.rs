//! The mount tables: which secrets engine serves which path prefix (`core/mounts`)
//! and which auth methods are enabled (`core/auth`). Both are stored behind the
//! barrier and held in memory while unsealed. This module does not handle requests
//! to engines; it only answers "who serves this path" and manages the tables.

use crate::clock::UnixTime;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::barrier::Barrier;
use crate::crypto::random_base62;
use crate::logical::{format_duration, LogicalError};

/// Where the secrets-engine mount table lives.
pub const MOUNTS_PATH: &str = "core/mounts";
/// Where the auth-method table lives.
pub const AUTH_PATH: &str = "core/auth";

/// Paths a secrets engine may not take.
const RESERVED: &[&str] = &["sys/", "auth/", "identity/", "cubbyhole/"];

/// Per-mount tunables.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountConfig {
    /// seconds; 0 = system default
    pub default_lease_ttl: u64,
    /// seconds; 0 = system default
    pub max_lease_ttl: u64,
    /// "unauth" or ""
    #[serde(default)]
    pub listing_visibility: String,
}

/// One mounted engine or auth method. Versioned record (`v`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountEntry {
    /// layout version
    pub v: u32,
    /// with trailing slash, e.g. `secret/`
    pub path: String,
    /// engine type (`kv`, `token`, ...)
    pub kind: String,
    /// free text
    pub description: String,
    /// names the storage prefix `logical/<uuid>/`
    pub uuid: String,
    /// a stable public identifier (`kv_1a2b3c4d`)
    pub accessor: String,
    /// engine options (`version = "2"` for kv)
    pub options: BTreeMap<String, String>,
    /// tunables
    pub config: MountConfig,
    /// unix seconds
    pub created: i64,
}

impl MountEntry {
    /// The storage prefix of this mount's view.
    pub fn storage_prefix(&self) -> String {
        format!("logical/{}/", self.uuid)
    }

    /// Vault's JSON for `sys/mounts` and `sys/auth`.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {
                "default_lease_ttl": self.config.default_lease_ttl,
                "max_lease_ttl": self.config.max_lease_ttl,
                "force_no_cache": false,
                "listing_visibility": self.config.listing_visibility,
            },
            "options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
            "deprecation_status": "supported",
        })
    }

    /// The answer of `sys/mounts/<path>/tune` (GET).
    pub fn tune_json(&self, system_default: u64, system_max: u64) -> Value {
        let d = if self.config.default_lease_ttl > 0 {
            self.config.default_lease_ttl
        } else {
            system_default
        };
        let m = if self.config.max_lease_ttl > 0 {
            self.config.max_lease_ttl
        } else {
            system_max
        };
        json!({
            "default_lease_ttl": d,
            "max_lease_ttl": m,
            "force_no_cache": false,
            "description": self.description,
            "options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
            "listing_visibility": self.config.listing_visibility,
            "default_lease_ttl_string": format_duration(d),
            "max_lease_ttl_string": format_duration(m),
        })
    }
}

/// A set of mounts, ordered by path.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountTable {
    /// entries by path; shared, so a request holds its mount without copying it
    pub entries: BTreeMap<String, Arc<MountEntry>>,
}

impl MountTable {
    /// Loads a table from behind the barrier (empty if absent).
    pub async fn load(barrier: &Barrier, key: &str) -> Result<MountTable, LogicalError> {
        match barrier.get(key).await? {
            None => Ok(MountTable::default()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt),
        }
    }

    /// Writes the table.
    pub async fn save(&self, barrier: &Barrier, key: &str) -> Result<(), LogicalError> {
        let raw = serde_json::to_vec(self).map_err(|_| LogicalError::Corrupt)?;
        barrier.put(key, &raw).await?;
        Ok(())
    }

    /// The mount serving `path` (longest prefix) and the rest of the path.
    pub fn route<'a>(&'a self, path: &'a str) -> Option<(&'a Arc<MountEntry>, &'a str)> {
        self.entries
            .iter()
            .rev()
            .filter_map(|(p, e)| {
                if let Some(rest) = path.strip_prefix(p.as_str()) {
                    Some((e, rest))
                } else if path == p.trim_end_matches('/') {
                    Some((e, ""))
                } else {
                    None
                }
            })
            .max_by_key(|(e, _)| e.path.len())
    }

    /// Adds a mount after checking the path is free and not nested.
    pub fn insert(&mut self, entry: MountEntry, reserved_check: bool) -> Result<(), LogicalError> {
        let path = &entry.path;
        if reserved_check && RESERVED.iter().any(|r| path.starts_with(r)) {
            return Err(LogicalError::invalid(format!(
                "cannot mount at reserved path '{path}'"
            )));
        }
        for existing in self.entries.keys() {
            if existing.starts_with(path.as_str()) || path.starts_with(existing.as_str()) {
                return Err(LogicalError::invalid(format!(
                    "path is already in use at {existing}"
                )));
            }
        }
        self.entries.insert(path.clone(), Arc::new(entry));
        Ok(())
    }
}

/// The table key (`<path>/`) of a mount path from a request. The core has put
/// the request path in its canonical form before authorising it
/// (`core/canonical.rs`); a path that is not canonical is refused here, never
/// rewritten, so the mount changed is the one the policy decided on. The only
/// spelling accepted besides the key's own is the key without its slash.
pub fn mount_path_key(raw: &str) -> Result<String, LogicalError> {
    let body = raw.strip_suffix('/').unwrap_or(raw);
    if body.is_empty()
        || body.len() > 256
        || body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || !body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return Err(LogicalError::invalid(format!(
            "invalid mount path \"{}\"",
            raw.escape_debug()
        )));
    }
    Ok(format!("{body}/"))
}

/// Creates a new entry with fresh identifiers.
pub fn new_entry(
    path: String,
    kind: &str,
    description: String,
    options: BTreeMap<String, String>,
    config: MountConfig,
    now: UnixTime,
) -> Result<MountEntry, LogicalError> {
    let rnd = random_base62(8).map_err(crate::barrier::BarrierError::from)?;
    Ok(MountEntry {
        v: 1,
        path,
        kind: kind.to_owned(),
        description,
        uuid: uuid::Uuid::new_v4().to_string(),
        accessor: format!("{}_{}", kind.replace('-', "_"), rnd.to_lowercase()),
        options,
        config,
        created: now.secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> MountEntry {
        new_entry(
            path.into(),
            "kv",
            String::new(),
            BTreeMap::new(),
            MountConfig::default(),
            UnixTime::from_secs(0),
        )
        .unwrap()
    }

    #[test]
    fn routes_to_the_longest_prefix() {
        let mut t = MountTable::default();
        t.insert(entry("secret/"), true).unwrap();
        t.insert(entry("team/a/"), true).unwrap();
        let (e, rest) = t.route("secret/data/x").unwrap();
        assert_eq!((e.path.as_str(), rest), ("secret/", "data/x"));
        let (e, rest) = t.route("team/a/data/y").unwrap();
        assert_eq!((e.path.as_str(), rest), ("team/a/", "data/y"));
        assert!(t.route("secretx/data").is_none());
        assert_eq!(t.route("secret").unwrap().1, "");
    }

    #[test]
    fn refuses_nested_reserved_and_bad_paths() {
        let mut t = MountTable::default();
        t.insert(entry("secret/"), true).unwrap();
        assert!(t.insert(entry("secret/inner/"), true).is_err());
        assert!(t.insert(entry("sys/x/"), true).is_err());
        assert!(mount_path_key("../x").is_err());
        assert!(mount_path_key("").is_err());
        assert!(mount_path_key("a b").is_err());
        assert_eq!(mount_path_key("kv").unwrap(), "kv/");
        assert_eq!(mount_path_key("team/kv/").unwrap(), "team/kv/");
        // Refused, not trimmed: `/kv`, `kv//` and `a//b` are not canonical.
        for p in ["/kv", "/kv/", "kv//", "a//b", "/", "a/./b"] {
            assert!(mount_path_key(p).is_err(), "{p}");
        }
    }
}
