//! Leases: the record of every credential or certificate an engine handed out
//! with a lifetime. This module owns the lease entries (`sys/expire/id/<lease id>`,
//! indexed by expiry), the index of each token's leases
//! (`sys/expire/token/<token key>/<hash>`), renewal within the lease's maximum,
//! and revocation: at once on request, or by the expiry worker, which claims due
//! leases in small batches through storage (so several nodes never revoke the same
//! lease twice at once) and retries with backoff until the lease is declared
//! irrevocable. What revoking *means* is the issuing engine's business, reached
//! through [`LeaseRevoker`]. Unseal loads nothing from here: the expiry index is
//! queried when work is due.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierError, BarrierOp, Guard};
use crate::clock::UnixTime;
use crate::engine::EngineFuture;
use crate::logical::LogicalError;

pub mod quota;

/// Where lease entries live (the full lease id follows).
pub const LEASE_PREFIX: &str = "sys/expire/id/";
/// Where each token's lease index lives (`<token key>/<hash of lease id>`).
pub const TOKEN_INDEX_PREFIX: &str = "sys/expire/token/";
/// One marker per irrevocable lease, so they are counted without a scan.
pub const IRREVOCABLE_PREFIX: &str = "sys/expire/irrevocable/";
/// Revocation attempts before a lease is declared irrevocable.
pub const MAX_REVOKE_ATTEMPTS: u32 = 6;
/// How long a worker's claim on a due lease lasts before another node may take it.
const CLAIM_WINDOW: Duration = Duration::from_secs(60);
/// Longest wait between two revocation attempts.
const MAX_BACKOFF_SECS: u64 = 300;
/// Longest reason kept from a failed revocation (it is shown in lookup).
const MAX_ERROR_LEN: usize = 200;

/// One lease.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseEntry {
    /// `<request path>/<engine's id>`
    pub lease_id: String,
    /// accessor of the mount that issued it
    pub mount_accessor: String,
    /// the engine's own id for it
    pub engine_id: String,
    /// unix seconds
    pub issue_time: i64,
    /// unix seconds; the lease ends here unless renewed
    pub expire_time: i64,
    /// unix seconds; no renewal reaches past this
    pub max_expire_time: i64,
    /// unix seconds of the last renewal
    #[serde(default)]
    pub last_renewal: Option<i64>,
    /// whether `sys/leases/renew` may extend it
    pub renewable: bool,
    /// the issuing token's storage key (an HMAC of the token, never the token)
    #[serde(default)]
    pub token_key: Option<String>,
    /// failed revocation attempts so far
    #[serde(default)]
    pub revoke_attempts: u32,
    /// given up on: the engine refused every attempt
    #[serde(default)]
    pub irrevocable: bool,
    /// why the last attempt failed
    #[serde(default)]
    pub last_error: Option<String>,
    /// the lease-count quotas it holds a slot in (given back when it ends)
    #[serde(default)]
    pub quotas: Vec<String>,
}

impl fmt::Debug for LeaseEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseEntry")
            .field("lease_id", &self.lease_id)
            .field("expire_time", &self.expire_time)
            .field("irrevocable", &self.irrevocable)
            .finish_non_exhaustive()
    }
}

impl LeaseEntry {
    /// Seconds left (0 once due).
    pub fn ttl(&self, now: UnixTime) -> u64 {
        u64::try_from(self.expire_time.saturating_sub(now.secs())).unwrap_or(0)
    }
}

/// Ends what a lease stands for, through the engine that issued it.
pub trait LeaseRevoker: Send + Sync {
    /// Revokes `lease`. An error is retried later; its text is shown in lookup,
    /// so it must not carry a secret.
    fn revoke<'a>(&'a self, lease: &'a LeaseEntry) -> EngineFuture<'a, ()>;
}

/// The lease entries behind the barrier.
#[derive(Clone)]
pub struct LeaseStore {
    barrier: Arc<Barrier>,
    /// leases this node revoked through their engines since unseal (a metric)
    revoked: Arc<std::sync::atomic::AtomicU64>,
}

impl fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LeaseStore { .. }")
    }
}

fn lease_hash(lease_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, lease_id.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn index_key(token_key: &str, lease_id: &str) -> String {
    format!("{TOKEN_INDEX_PREFIX}{token_key}/{}", lease_hash(lease_id))
}

fn irrevocable_key(lease_id: &str) -> String {
    format!("{IRREVOCABLE_PREFIX}{}", lease_hash(lease_id))
}

fn entry_key(lease_id: &str) -> String {
    format!("{LEASE_PREFIX}{lease_id}")
}

fn corrupt(_: serde_json::Error) -> LogicalError {
    LogicalError::Corrupt
}

/// The outcome of one revocation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// the engine revoked it and the entry is gone
    Done,
    /// the engine failed; retried after a backoff
    Retrying,
    /// the engine failed too often; kept, out of the expiry index
    Irrevocable,
    /// another node or request changed or removed it meanwhile
    Raced,
}

impl LeaseStore {
    /// The store over `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> LeaseStore {
        LeaseStore {
            barrier,
            revoked: Default::default(),
        }
    }

    /// Leases this node revoked through their engines since unseal.
    pub fn revocations(&self) -> u64 {
        self.revoked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Leases given up on, over all nodes.
    pub async fn irrevocable_count(&self) -> Result<u64, BarrierError> {
        self.barrier.count(IRREVOCABLE_PREFIX).await
    }

    fn put_ops(entry: &LeaseEntry) -> Result<Vec<BarrierOp>, LogicalError> {
        let raw = serde_json::to_vec(entry).map_err(corrupt)?;
        // Irrevocable leases leave the expiry index: nothing is due for them.
        let expires_at = (!entry.irrevocable).then_some(entry.expire_time);
        let mut ops = vec![BarrierOp::Put {
            key: entry_key(&entry.lease_id),
            value: Zeroizing::new(raw),
            expires_at,
        }];
        if entry.irrevocable {
            ops.push(BarrierOp::Put {
                key: irrevocable_key(&entry.lease_id),
                value: Zeroizing::new(entry.lease_id.as_bytes().to_vec()),
                expires_at: None,
            });
        }
        Ok(ops)
    }

    /// Records a new lease (and its place in the issuing token's index).
    pub async fn register(&self, entry: &LeaseEntry) -> Result<(), LogicalError> {
        let mut ops = Self::put_ops(entry)?;
        if let Some(token) = &entry.token_key {
            ops.push(BarrierOp::Put {
                key: index_key(token, &entry.lease_id),
                value: Zeroizing::new(entry.lease_id.as_bytes().to_vec()),
                expires_at: None,
            });
        }
        self.barrier.apply(ops).await?;
        Ok(())
    }

    /// The lease and what was read, for a conditional change.
    pub async fn get(&self, lease_id: &str) -> Result<Option<(LeaseEntry, Guard)>, LogicalError> {
        let (raw, guard) = self.barrier.get_versioned(&entry_key(lease_id)).await?;
        match raw {
            None => Ok(None),
            Some(raw) => Ok(Some((
                serde_json::from_slice(&raw).map_err(corrupt)?,
                guard,
            ))),
        }
    }

    /// Lease ids (and sub-prefixes, ending in `/`) directly under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, LogicalError> {
        let base = entry_key(prefix);
        let mut out: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.barrier.list(&base, after.as_deref(), 500).await?.keys;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for key in page {
                let rest = key.strip_prefix(&base).unwrap_or(&key);
                let item = match rest.find('/') {
                    Some(i) => rest[..=i].to_owned(),
                    None => rest.to_owned(),
                };
                if out.last() != Some(&item) {
                    out.push(item);
                }
            }
            after = Some(last);
        }
        out.dedup();
        Ok(out)
    }

    /// Full lease ids under `prefix` (every depth).
    pub async fn ids_under(&self, prefix: &str) -> Result<Vec<String>, LogicalError> {
        let base = entry_key(prefix);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.barrier.list(&base, after.as_deref(), 500).await?.keys;
            let Some(last) = page.last().cloned() else {
                return Ok(out);
            };
            out.extend(
                page.into_iter()
                    .filter_map(|k| k.strip_prefix(LEASE_PREFIX).map(str::to_owned)),
            );
            after = Some(last);
        }
    }

    /// Writes `entry` if the lease is still as `guard` saw it.
    pub async fn update(&self, guard: &Guard, entry: &LeaseEntry) -> Result<bool, LogicalError> {
        Ok(self
            .barrier
            .apply_if(std::slice::from_ref(guard), Self::put_ops(entry)?)
            .await?)
    }

    /// Removes the entry and its index without asking the engine (`revoke-force`).
    pub async fn forget(&self, entry: &LeaseEntry) -> Result<(), LogicalError> {
        self.barrier.apply(Self::removal_ops(entry)).await?;
        quota::release(&self.barrier, &entry.quotas).await?;
        Ok(())
    }

    fn removal_ops(entry: &LeaseEntry) -> Vec<BarrierOp> {
        let mut ops = vec![
            BarrierOp::Delete {
                key: entry_key(&entry.lease_id),
            },
            BarrierOp::Delete {
                key: irrevocable_key(&entry.lease_id),
            },
        ];
        if let Some(token) = &entry.token_key {
            ops.push(BarrierOp::Delete {
                key: index_key(token, &entry.lease_id),
            });
        }
        ops
    }

    /// One revocation attempt through the engine. On success the entry goes (if
    /// nobody changed it meanwhile); on failure the attempt is counted and the
    /// lease comes due again after a backoff, or is declared irrevocable.
    pub async fn revoke(
        &self,
        lease_id: &str,
        revoker: &dyn LeaseRevoker,
        now: UnixTime,
    ) -> Result<Revoked, LogicalError> {
        let Some((mut entry, guard)) = self.get(lease_id).await? else {
            return Ok(Revoked::Raced);
        };
        match revoker.revoke(&entry).await {
            Ok(()) => {
                let removed = self
                    .barrier
                    .apply_if(std::slice::from_ref(&guard), Self::removal_ops(&entry))
                    .await?;
                if removed {
                    self.revoked
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    quota::release(&self.barrier, &entry.quotas).await?;
                }
                Ok(if removed {
                    Revoked::Done
                } else {
                    Revoked::Raced
                })
            }
            Err(e) => {
                entry.revoke_attempts += 1;
                let reason: String = e.to_string().chars().take(MAX_ERROR_LEN).collect();
                entry.last_error = Some(reason);
                let outcome = if entry.revoke_attempts >= MAX_REVOKE_ATTEMPTS {
                    entry.irrevocable = true;
                    Revoked::Irrevocable
                } else {
                    let wait = (1u64 << entry.revoke_attempts.min(16)).min(MAX_BACKOFF_SECS);
                    entry.expire_time = now.secs().saturating_add(wait as i64);
                    Revoked::Retrying
                };
                if self.update(&guard, &entry).await? {
                    Ok(outcome)
                } else {
                    Ok(Revoked::Raced)
                }
            }
        }
    }

    /// Revokes what is due: claims up to `limit` due leases (no other node gets
    /// them until the claim runs out) and makes one attempt on each. Answers the
    /// outcomes, in claim order.
    pub async fn expire_due(
        &self,
        revoker: &dyn LeaseRevoker,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<Revoked>, LogicalError> {
        let claimed = self
            .barrier
            .claim_expired(LEASE_PREFIX, now, now.plus(CLAIM_WINDOW), limit)
            .await?;
        let mut outcomes = Vec::with_capacity(claimed.len());
        for key in claimed {
            let Some(id) = key.strip_prefix(LEASE_PREFIX) else {
                continue;
            };
            outcomes.push(self.revoke(id, revoker, now).await?);
        }
        Ok(outcomes)
    }

    /// Makes every lease the token `token_key` created due now (the token is
    /// being revoked): the expiry worker revokes them through their engines.
    pub async fn expire_token_leases(
        &self,
        token_key: &str,
        now: UnixTime,
    ) -> Result<usize, LogicalError> {
        let prefix = format!("{TOKEN_INDEX_PREFIX}{token_key}/");
        let mut marked = 0;
        loop {
            let page = self.barrier.list(&prefix, None, 200).await?.keys;
            if page.is_empty() {
                return Ok(marked);
            }
            let mut ops = Vec::new();
            for index in &page {
                let Some(raw) = self.barrier.get(index).await? else {
                    continue;
                };
                let lease_id = String::from_utf8_lossy(&raw).into_owned();
                if let Some((mut entry, _)) = self.get(&lease_id).await? {
                    if !entry.irrevocable {
                        entry.expire_time = entry.expire_time.min(now.secs());
                        entry.token_key = None;
                        ops.extend(Self::put_ops(&entry)?);
                        marked += 1;
                    }
                }
                ops.push(BarrierOp::Delete { key: index.clone() });
            }
            self.barrier.apply(ops).await?;
        }
    }

    /// Removes index entries (a token's leases, irrevocable markers) whose lease
    /// no longer exists, e.g. after `revoke-force` raced a registration.
    pub async fn tidy_index(&self) -> Result<usize, LogicalError> {
        let mut removed = 0;
        for prefix in [TOKEN_INDEX_PREFIX, IRREVOCABLE_PREFIX] {
            let mut after: Option<String> = None;
            loop {
                let page = self.barrier.list(prefix, after.as_deref(), 500).await?.keys;
                let Some(last) = page.last().cloned() else {
                    break;
                };
                let mut ops = Vec::new();
                for key in &page {
                    let Some(raw) = self.barrier.get(key).await? else {
                        continue;
                    };
                    let lease_id = String::from_utf8_lossy(&raw).into_owned();
                    if self.barrier.get(&entry_key(&lease_id)).await?.is_none() {
                        ops.push(BarrierOp::Delete { key: key.clone() });
                    }
                }
                removed += ops.len();
                if !ops.is_empty() {
                    self.barrier.apply(ops).await?;
                }
                after = Some(last);
            }
        }
        Ok(removed)
    }

    /// Leases in storage (live, due, or irrevocable).
    pub async fn count(&self) -> Result<u64, BarrierError> {
        self.barrier.count(LEASE_PREFIX).await
    }
}

#[cfg(test)]
mod tests;
