//! KV version 2: versioned secrets with soft delete, undelete, destroy, check-and-set,
//! per-key metadata and pruning beyond `max_versions`. Paths below the mount:
//! `config`, `data/`, `metadata/`, `delete/`, `undelete/`, `destroy/`, `subkeys/`.
//!
//! Storage layout inside the mount's view: `config`, `metadata/<path>` (one record
//! per secret, listing walks these) and `versions/<sha256(path)>/<n>` (the data of
//! each version; hashed so that no path can be a prefix of another's versions).

mod model;
mod path_config;
mod path_data;
mod path_metadata;
mod path_versions;

use crate::clock::UnixTime;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::barrier::{BarrierError, View, CAS_ATTEMPTS};
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{LogicalError, Operation, Request, Response};

pub use model::KvConfig;

/// The KV v2 engine, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const P: Ops = Ops::PATCH;
const D: Ops = Ops::DELETE;

/// Every path below a KV v2 mount.
static PATHS: &[PathSpec] = &[
    PathSpec::new("config", R.and(W)),
    PathSpec::new("data/*path", R.and(W).and(P).and(D)),
    PathSpec::new("subkeys/*path", R),
    PathSpec::new("metadata", L),
    PathSpec::new("metadata/*path", R.and(L).and(W).and(P).and(D)),
    PathSpec::new("delete/*path", W),
    PathSpec::new("undelete/*path", W),
    PathSpec::new("destroy/*path", W),
];

impl Engine for Kv {
    fn kind(&self) -> &'static str {
        "kv"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(handle(ctx.view, req, ctx.rest, ctx.now))
    }

    fn exists<'a>(&'a self, view: &'a View, rest: &'a str) -> EngineFuture<'a, Option<bool>> {
        Box::pin(async move { exists(view, rest).await.map(Some) })
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }

    /// A policy's parameter rules on `data/` apply to the secret's keys, not to
    /// the envelope (`options`, `data`) around them.
    fn policy_fields<'r>(
        &self,
        rest: &str,
        data: &'r Map<String, Value>,
    ) -> &'r Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        if !rest.starts_with("data/") {
            return data;
        }
        match data.get("data") {
            Some(Value::Object(inner)) => inner,
            _ => &EMPTY,
        }
    }
}

impl SecretsEngine for Kv {
    fn aliases(&self) -> &'static [&'static str] {
        &["kv-v2"]
    }

    fn prepare_options(
        &self,
        requested: &str,
        options: &mut BTreeMap<String, String>,
    ) -> Result<(), LogicalError> {
        if requested == "kv-v2" {
            options.insert("version".into(), "2".into());
            return Ok(());
        }
        match options.get("version").map(String::as_str) {
            Some("2") => Ok(()),
            Some("1") | None => Err(LogicalError::invalid(
                "KV version 1 is not supported; enable kv with options version=2 (or type kv-v2)",
            )),
            Some(_) => Err(LogicalError::invalid("invalid KV version")),
        }
    }

    fn check_tuned_options(&self, options: &BTreeMap<String, String>) -> Result<(), LogicalError> {
        match options.get("version") {
            Some(v) if v != "2" => Err(LogicalError::invalid("only KV version 2 is supported")),
            _ => Ok(()),
        }
    }
}

/// Routes a request below a KV v2 mount.
pub async fn handle(
    view: &View,
    req: &Request,
    rest: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let (family, path) = match rest.split_once('/') {
        Some((family, path)) => (family, path),
        None => (rest, ""),
    };
    if req.operation == Operation::Read || req.operation == Operation::List {
        return route(view, req, family, path, now).await;
    }
    // Every change to a secret is a read-modify-write of its metadata, committed
    // only if the metadata is unchanged (a conditional write in storage, which
    // holds across nodes): a lost race is retried from a fresh read, so no
    // version is lost and `cas` is exact. The per-node lock only spares
    // same-node writers of one hot secret those retries.
    let _guard = lock_for(&view.full_key(path)).lock().await;
    for _ in 0..CAS_ATTEMPTS {
        match route(view, req, family, path, now).await {
            Err(LogicalError::Barrier(BarrierError::Contended)) => continue,
            other => return other,
        }
    }
    Err(BarrierError::Contended.into())
}

async fn route(
    view: &View,
    req: &Request,
    family: &str,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    match family {
        "config" if path.is_empty() => path_config::handle(view, req).await,
        "data" => path_data::handle(view, req, valid_path(path, false)?, now).await,
        "metadata" => path_metadata::handle(view, req, path, now).await,
        "subkeys" => path_data::subkeys(view, req, valid_path(path, false)?, now).await,
        "delete" | "undelete" | "destroy" => {
            path_versions::handle(view, req, family, valid_path(path, false)?, now).await
        }
        _ => Err(LogicalError::NotFound),
    }
}

/// A fixed set of locks, chosen by hash of the secret's storage path.
fn lock_for(key: &str) -> &'static tokio::sync::Mutex<()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: std::sync::OnceLock<Vec<tokio::sync::Mutex<()>>> = std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(|| (0..256).map(|_| tokio::sync::Mutex::new(())).collect());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let i = (h.finish() % locks.len() as u64) as usize;
    &locks[i]
}

/// Vault's existence check: whether the secret a `data/` or `metadata/` write
/// targets exists (so the write needs `update`, else `create`). Other paths have
/// no existence check and count as existing.
pub async fn exists(view: &View, rest: &str) -> Result<bool, LogicalError> {
    let target = rest
        .strip_prefix("data/")
        .or_else(|| rest.strip_prefix("metadata/"));
    match target {
        Some(p) if !p.is_empty() => Ok(view.get(&model::metadata_key(p)).await?.is_some()),
        _ => Ok(true),
    }
}

/// Refuses empty paths (unless allowed), `..` segments and control characters.
fn valid_path(path: &str, allow_empty: bool) -> Result<&str, LogicalError> {
    if path.is_empty() && !allow_empty {
        return Err(LogicalError::NotFound);
    }
    if path.split('/').any(|seg| seg == ".." || seg == ".")
        || path.chars().any(char::is_control)
        || path.len() > 4096
    {
        return Err(LogicalError::invalid("invalid secret path"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiers;
