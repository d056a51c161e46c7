//! Where the core meets the lease store: a lease an engine puts in its answer is
//! recorded (its TTL capped by the mount's and the system's maximum), the engine
//! that issued a lease is found again by its mount's accessor to renew or revoke
//! it, and the expiry worker's tick revokes what is due.

use std::sync::Arc;

use super::{Core, CoreError, Unsealed};
use crate::barrier::View;
use crate::clock::UnixTime;
use crate::engine::{Engine, EngineFuture};
use crate::lease::{LeaseEntry, LeaseRevoker, Revoked};
use crate::logical::{Lease, LogicalError};
use crate::mounts::MountEntry;

/// Leases revoked per worker tick and node; the rest wait for the next tick.
const EXPIRY_BATCH: u32 = 50;

/// The engine serving the mount with `accessor`, and the mount's storage.
pub(super) async fn engine_of(
    core: &Core,
    state: &Unsealed,
    accessor: &str,
) -> Option<(Arc<dyn Engine>, View)> {
    let registry = core.registry();
    let find = |entries: &std::collections::BTreeMap<String, Arc<MountEntry>>| {
        entries.values().find(|e| e.accessor == accessor).cloned()
    };
    if let Some(entry) = find(&state.mounts.read().await.entries) {
        let engine = registry.secrets(&entry.kind)?.clone();
        let view = View::new(state.barrier.clone(), entry.storage_prefix());
        return Some((engine as Arc<dyn Engine>, view));
    }
    let entry = find(&state.auth.read().await.entries)?;
    let engine = registry.auth(&entry.kind)?.clone();
    let view = View::new(state.barrier.clone(), entry.storage_prefix());
    Some((engine as Arc<dyn Engine>, view))
}

/// Revokes through the issuing engine.
pub(super) struct EngineRevoker<'a> {
    pub(super) core: &'a Core,
    pub(super) state: &'a Unsealed,
}

impl LeaseRevoker for EngineRevoker<'_> {
    fn revoke<'a>(&'a self, lease: &'a LeaseEntry) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let Some((engine, view)) =
                engine_of(self.core, self.state, &lease.mount_accessor).await
            else {
                return Err(LogicalError::Upstream(
                    "the mount that issued the lease no longer exists".into(),
                ));
            };
            let handle = Lease {
                id: lease.engine_id.clone(),
                ttl: 0,
                renewable: lease.renewable,
            };
            engine.revoke_lease(&view, &handle).await
        })
    }
}

/// Where a lease comes from: the mount and request that made it, the token
/// that asked, and the quota slots it holds.
pub(super) struct Origin<'a> {
    pub(super) mount: &'a MountEntry,
    pub(super) request_path: &'a str,
    pub(super) token_key: &'a str,
    pub(super) quotas: Vec<String>,
}

/// Records the lease of an answer: its id gets the request path in front, its
/// TTL is capped by the mount's (or the system's) maximum lease TTL.
pub(super) async fn register(
    core: &Core,
    state: &Unsealed,
    origin: Origin<'_>,
    lease: &mut Lease,
    now: UnixTime,
) -> Result<(), CoreError> {
    let Origin {
        mount,
        request_path,
        token_key,
        quotas,
    } = origin;
    if lease.id.is_empty() || lease.id.contains('/') || lease.id.chars().any(char::is_control) {
        // An engine bug, not the caller's: the id must be one path segment.
        tracing::error!(mount = %mount.path, "an engine answered a malformed lease id");
        return Err(LogicalError::Corrupt.into());
    }
    let limits = core.config.ttl;
    let max = if mount.config.max_lease_ttl > 0 {
        mount.config.max_lease_ttl.min(limits.max_ttl)
    } else {
        limits.max_ttl
    };
    let wanted = if lease.ttl > 0 {
        lease.ttl
    } else if mount.config.default_lease_ttl > 0 {
        mount.config.default_lease_ttl
    } else {
        limits.default_ttl
    };
    lease.ttl = wanted.min(max);
    let engine_id = std::mem::take(&mut lease.id);
    lease.id = format!("{}/{engine_id}", request_path.trim_end_matches('/'));
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let entry = LeaseEntry {
        lease_id: lease.id.clone(),
        mount_accessor: mount.accessor.clone(),
        engine_id,
        issue_time: now.secs(),
        expire_time: now.secs().saturating_add(secs(lease.ttl)),
        max_expire_time: now.secs().saturating_add(secs(max)),
        last_renewal: None,
        renewable: lease.renewable,
        token_key: Some(token_key.to_owned()),
        revoke_attempts: 0,
        irrevocable: false,
        last_error: None,
        quotas,
    };
    state.leases.register(&entry).await?;
    Ok(())
}

impl Core {
    /// One tick of the expiry worker: revokes up to a batch of due leases
    /// through their engines. Answers how many were revoked.
    pub async fn expire_leases(&self) -> Result<usize, CoreError> {
        let Ok(state) = self.unsealed() else {
            return Ok(0);
        };
        let revoker = EngineRevoker {
            core: self,
            state: &state,
        };
        let outcomes = state
            .leases
            .expire_due(&revoker, self.now(), EXPIRY_BATCH)
            .await?;
        if let Some(failed) = outcomes.iter().find(|o| **o == Revoked::Irrevocable) {
            tracing::warn!(outcome = ?failed, "a lease could not be revoked and was given up on");
        }
        Ok(outcomes.iter().filter(|o| **o == Revoked::Done).count())
    }
}

#[cfg(test)]
mod tests;
