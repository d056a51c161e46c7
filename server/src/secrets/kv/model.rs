//! KV v2 stored records and their JSON views.

use crate::clock::UnixTime;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::barrier::{BarrierError, Guard, View};
use crate::clock::rfc3339;
use crate::crypto::sha256_hex;
use crate::logical::{format_duration, LogicalError};

/// Versions kept when neither the key nor the mount says otherwise (Vault's default).
pub const DEFAULT_MAX_VERSIONS: u64 = 10;

/// Mount-wide settings (`config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KvConfig {
    /// 0 = default (10)
    pub max_versions: u64,
    /// writes must carry `cas`
    pub cas_required: bool,
    /// seconds after which a version counts as deleted (0 = never)
    pub delete_version_after: u64,
}

impl KvConfig {
    pub(super) async fn load(view: &View) -> Result<KvConfig, LogicalError> {
        match view.get("config").await? {
            None => Ok(KvConfig::default()),
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt),
        }
    }
}

/// One version's bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionMeta {
    /// nanoseconds
    pub created_time: i128,
    /// nanoseconds; set when deleted or scheduled by delete_version_after
    pub deletion_time: Option<i128>,
    /// data erased for good
    pub destroyed: bool,
}

impl VersionMeta {
    pub(super) fn is_deleted(&self, now: UnixTime) -> bool {
        self.deletion_time.is_some_and(|t| t <= now.nanos())
    }

    pub(super) fn to_json(&self, version: u64, custom: &BTreeMap<String, String>) -> Value {
        json!({
            "created_time": rfc3339(self.created_time),
            "custom_metadata": custom_json(custom),
            "deletion_time": self.deletion_time.map(rfc3339).unwrap_or_default(),
            "destroyed": self.destroyed,
            "version": version,
        })
    }
}

/// Everything known about one secret path. Versioned record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyMetadata {
    /// layout version
    pub v: u32,
    /// nanoseconds
    pub created_time: i128,
    /// nanoseconds
    pub updated_time: i128,
    /// highest version written
    pub current_version: u64,
    /// lowest version still tracked
    pub oldest_version: u64,
    /// 0 = mount default
    pub max_versions: u64,
    /// writes must carry `cas`
    pub cas_required: bool,
    /// seconds (0 = mount default)
    pub delete_version_after: u64,
    /// user labels
    pub custom_metadata: BTreeMap<String, String>,
    /// per-version state
    pub versions: BTreeMap<u64, VersionMeta>,
}

impl KeyMetadata {
    pub(super) fn new(now: UnixTime) -> KeyMetadata {
        KeyMetadata {
            v: 1,
            created_time: now.nanos(),
            updated_time: now.nanos(),
            current_version: 0,
            oldest_version: 0,
            max_versions: 0,
            cas_required: false,
            delete_version_after: 0,
            custom_metadata: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let versions: serde_json::Map<String, Value> = self
            .versions
            .iter()
            .map(|(n, m)| {
                (
                    n.to_string(),
                    json!({
                        "created_time": rfc3339(m.created_time),
                        "deletion_time": m.deletion_time.map(rfc3339).unwrap_or_default(),
                        "destroyed": m.destroyed,
                    }),
                )
            })
            .collect();
        json!({
            "cas_required": self.cas_required,
            "created_time": rfc3339(self.created_time),
            "current_version": self.current_version,
            "custom_metadata": custom_json(&self.custom_metadata),
            "delete_version_after": format_duration(self.delete_version_after),
            "max_versions": self.max_versions,
            "oldest_version": self.oldest_version,
            "updated_time": rfc3339(self.updated_time),
            "versions": versions,
        })
    }

    pub(super) async fn load(view: &View, path: &str) -> Result<Option<KeyMetadata>, LogicalError> {
        match view.get(&metadata_key(path)).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|_| LogicalError::Corrupt),
        }
    }

    /// The stored record, read straight from storage, with the guard that
    /// [`commit`] needs: every change to a secret is a read-modify-write of this
    /// record, and the guard makes the write conditional on nothing else having
    /// changed it (on this node or another).
    pub(super) async fn load_guarded(
        view: &View,
        path: &str,
    ) -> Result<(Option<KeyMetadata>, Guard), LogicalError> {
        let (raw, guard) = view.get_versioned(&metadata_key(path)).await?;
        let meta = match raw {
            None => None,
            Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?),
        };
        Ok((meta, guard))
    }

    pub(super) fn encode(&self) -> Result<Vec<u8>, LogicalError> {
        serde_json::to_vec(self).map_err(|_| LogicalError::Corrupt)
    }
}

/// Applies `ops` if the secret's metadata is as `guard` saw it; otherwise the
/// request is retried from a fresh read (see `super::handle`).
pub(super) async fn commit(
    view: &View,
    guard: Guard,
    ops: Vec<crate::barrier::BarrierOp>,
) -> Result<(), LogicalError> {
    if view.apply_if(&[guard], ops).await? {
        Ok(())
    } else {
        Err(BarrierError::Contended.into())
    }
}

fn custom_json(custom: &BTreeMap<String, String>) -> Value {
    if custom.is_empty() {
        Value::Null
    } else {
        json!(custom)
    }
}

/// Storage key of a path's metadata.
pub(super) fn metadata_key(path: &str) -> String {
    format!("metadata/{path}")
}

/// Storage key of one version's data.
pub(super) fn version_key(path: &str, version: u64) -> String {
    format!("versions/{}/{version}", sha256_hex(path.as_bytes()))
}

/// Limits on custom metadata, as in Vault.
pub(super) fn check_custom_metadata(custom: &BTreeMap<String, String>) -> Result<(), LogicalError> {
    if custom.len() > 64 {
        return Err(LogicalError::invalid(
            "custom_metadata may hold at most 64 keys",
        ));
    }
    for (k, v) in custom {
        if k.is_empty() || k.len() > 128 || v.len() > 512 {
            return Err(LogicalError::invalid(
                "custom_metadata keys must be 1-128 bytes and values at most 512 bytes",
            ));
        }
    }
    Ok(())
}
