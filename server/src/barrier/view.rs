//! A `View` confines a user of the barrier (a secrets engine, the token store) to
//! one key prefix, like a chroot: it cannot name a key outside it.

use crate::clock::UnixTime;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Barrier, BarrierError, BarrierOp, Guard};

/// The barrier seen through a prefix.
#[derive(Debug, Clone)]
pub struct View {
    barrier: Arc<Barrier>,
    prefix: String,
}

impl View {
    /// A view of every key under `prefix` (which should end with `/`).
    pub fn new(barrier: Arc<Barrier>, prefix: impl Into<String>) -> View {
        View {
            barrier,
            prefix: prefix.into(),
        }
    }

    /// A view of the keys under `prefix` inside this one.
    pub fn sub(&self, prefix: &str) -> View {
        View::new(self.barrier.clone(), self.full_key(prefix))
    }

    /// Deletes every key of the view; how many there were.
    pub async fn delete_all(&self) -> Result<u64, BarrierError> {
        self.barrier.delete_prefix(&self.prefix).await
    }

    /// The full storage key of a relative key.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Reads a key relative to the view.
    pub async fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError> {
        self.barrier.get(&self.full_key(key)).await
    }

    /// A put op for [`View::apply`].
    pub fn put_op(&self, key: &str, value: Vec<u8>, expires_at: Option<i64>) -> BarrierOp {
        BarrierOp::Put {
            key: self.full_key(key),
            value: Zeroizing::new(value),
            expires_at,
        }
    }

    /// A delete op for [`View::apply`].
    pub fn delete_op(&self, key: &str) -> BarrierOp {
        BarrierOp::Delete {
            key: self.full_key(key),
        }
    }

    /// Applies ops (already made relative by `put_op`/`delete_op`) atomically.
    pub async fn apply(&self, ops: Vec<BarrierOp>) -> Result<(), BarrierError> {
        self.barrier.apply(ops).await
    }

    /// Reads a key with a guard for [`View::apply_if`] (bypassing the read cache).
    pub async fn get_versioned(
        &self,
        key: &str,
    ) -> Result<(Option<Zeroizing<Vec<u8>>>, Guard), BarrierError> {
        self.barrier.get_versioned(&self.full_key(key)).await
    }

    /// A guard that a relative key does not exist.
    pub fn absent(&self, key: &str) -> Guard {
        Guard::absent(self.full_key(key))
    }

    /// Applies ops only if every guarded key is unchanged; see [`Barrier::apply_if`].
    pub async fn apply_if(
        &self,
        guards: &[Guard],
        ops: Vec<BarrierOp>,
    ) -> Result<bool, BarrierError> {
        self.barrier.apply_if(guards, ops).await
    }

    /// Removes a relative key, returning its value to exactly one of many
    /// concurrent callers; see [`Barrier::take`].
    pub async fn take(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError> {
        self.barrier.take(&self.full_key(key)).await
    }

    /// How many keys lie under a relative prefix.
    pub async fn count(&self, prefix: &str) -> Result<u64, BarrierError> {
        self.barrier.count(&self.full_key(prefix)).await
    }

    /// Lists keys under a relative prefix; returned keys are relative to the view.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, BarrierError> {
        let full_after = after.map(|a| self.full_key(a));
        let page = self
            .barrier
            .list(&self.full_key(prefix), full_after.as_deref(), limit)
            .await?;
        Ok(page
            .keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .collect())
    }

    /// Keys under a relative prefix whose expiry is due, relative to the view.
    pub async fn expired(
        &self,
        prefix: &str,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<String>, BarrierError> {
        let keys = self
            .barrier
            .expired(&self.full_key(prefix), now, limit)
            .await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .collect())
    }

    /// Deletes everything in the view.
    pub async fn clear(&self) -> Result<u64, BarrierError> {
        self.barrier.delete_prefix(&self.prefix).await
    }
}
