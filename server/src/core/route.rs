//! Resolves a request's path once: its canonical form (see `canonical.rs`) and
//! what serves it — the core's own `sys/` paths, the token store, or a mount
//! and its engine with the path below it. Authorisation, audit and dispatch
//! all use this one answer.

use std::sync::Arc;

use super::{routes, CoreError, Unsealed};
use crate::barrier::View;
use crate::engine::{AuthMethod, Engine, PathSpec, Registry, SecretsEngine};
use crate::logical::Operation;
use crate::mounts::MountEntry;
#[cfg(test)]
use crate::mounts::MountTable;

/// The engine behind a mount, by kind of table.
#[derive(Clone)]
pub(super) enum MountedEngine {
    /// a secrets engine (`sys/mounts`)
    Secrets(Arc<dyn SecretsEngine>),
    /// an auth method (`sys/auth`)
    Auth(Arc<dyn AuthMethod>),
}

impl MountedEngine {
    pub(super) fn engine(&self) -> &dyn Engine {
        match self {
            MountedEngine::Secrets(e) => e.as_ref(),
            MountedEngine::Auth(m) => m.as_ref(),
        }
    }
}

/// A path below a mount.
pub(super) struct Mounted {
    /// the mount's table entry
    pub(super) entry: Arc<MountEntry>,
    /// its engine
    pub(super) engine: MountedEngine,
    /// the canonical path below the mount
    pub(super) rest: String,
    /// the engine's path spec serving `rest` for the request's operation, if any
    pub(super) spec: Option<&'static PathSpec>,
    /// the mount's confined storage
    pub(super) view: View,
}

impl Mounted {
    /// A login step: an auth method's path served without a token.
    pub(super) fn is_login(&self) -> bool {
        matches!(self.engine, MountedEngine::Auth(_))
            && self.spec.is_some_and(|s| s.unauthenticated)
    }

    /// A secrets engine's path served without a token (Vault's unauthenticated
    /// paths: a CA certificate, a CRL), which no policy decides.
    pub(super) fn is_public(&self) -> bool {
        matches!(self.engine, MountedEngine::Secrets(_))
            && self.spec.is_some_and(|s| s.unauthenticated)
    }

    /// The metric label: the mount's path as requests name it.
    fn label(&self) -> String {
        match self.engine {
            MountedEngine::Secrets(_) => self.entry.path.clone(),
            MountedEngine::Auth(_) => format!("auth/{}", self.entry.path),
        }
    }
}

/// What serves a request.
pub(super) enum Target {
    /// `sys/...`
    System,
    /// `auth/token/...`
    TokenStore,
    /// a path below a mount
    Mounted(Box<Mounted>),
    /// no mount serves the path (or the node is sealed)
    Unmounted,
}

/// A request path, resolved.
pub(super) struct Resolved {
    /// the canonical path: the only form anything after resolution sees
    pub(super) path: String,
    /// what serves it
    pub(super) target: Target,
}

impl Resolved {
    /// The mount, when a mount serves the path.
    pub(super) fn mounted(&self) -> Option<&Mounted> {
        match &self.target {
            Target::Mounted(m) => Some(m),
            _ => None,
        }
    }

    /// The label metrics count the request under: a mount, `sys/`,
    /// `auth/token/`, or `unmounted` — never the path itself, so made-up paths
    /// cannot grow the number of series.
    pub(super) fn metric_label(&self) -> String {
        match &self.target {
            Target::System => "sys/".into(),
            Target::TokenStore => "auth/token/".into(),
            Target::Mounted(m) => m.label(),
            Target::Unmounted => "unmounted".into(),
        }
    }
}

/// Resolves `raw` (the path below `/v1/`, percent-decoded). `state` is `None`
/// while sealed: then nothing is mounted.
pub(super) async fn resolve(
    state: Option<&Unsealed>,
    registry: &Registry,
    raw: &str,
    op: Operation,
) -> Result<Resolved, CoreError> {
    let fixed = routes::is_fixed(raw.trim_end_matches('/'));
    let (Some(state), false) = (state, fixed) else {
        let path = super::canonical::canonical_path(raw, |_| None)?;
        let target = match path.as_str() {
            p if !routes::is_fixed(p) => Target::Unmounted,
            p if p == "auth/token" || p.starts_with("auth/token/") => Target::TokenStore,
            _ => Target::System,
        };
        return Ok(Resolved { path, target });
    };
    let under_auth = raw.starts_with("auth/");
    let table = if under_auth {
        state.auth.read().await
    } else {
        state.mounts.read().await
    };
    // Filled in by the canonicaliser's question, so that the table is searched
    // once: (the mount, its engine, the length of the path up to the mount).
    let mut found: Option<(Arc<MountEntry>, MountedEngine, usize)> = None;
    let path = super::canonical::canonical_path(raw, |body| {
        let (below, offset) = match body.strip_prefix("auth/") {
            Some(below) if under_auth => (below, "auth/".len()),
            _ if under_auth => return None,
            _ => (body, 0),
        };
        let (entry, rest) = table.route(below)?;
        let engine = if under_auth {
            MountedEngine::Auth(registry.auth(&entry.kind)?.clone())
        } else {
            MountedEngine::Secrets(registry.secrets(&entry.kind)?.clone())
        };
        let mount_len = offset + below.len() - rest.len();
        let folded = engine
            .engine()
            .canonical_rest(rest)
            .map(|r| format!("{}{r}", &body[..mount_len]));
        found = Some((entry.clone(), engine, mount_len));
        folded
    })?;
    drop(table);
    let target = match found {
        Some((entry, engine, mount_len)) => {
            // `secret/` names the mount itself: the path below it is empty.
            let below = path.get(mount_len..).unwrap_or_default();
            let rest = below.strip_prefix('/').unwrap_or(below).to_owned();
            let spec = crate::engine::paths::find(engine.engine().paths(), &rest, op);
            let view = View::new(state.barrier.clone(), entry.storage_prefix());
            Target::Mounted(Box::new(Mounted {
                entry,
                engine,
                rest,
                spec,
                view,
            }))
        }
        None => Target::Unmounted,
    };
    Ok(Resolved { path, target })
}

/// The folded form of `body` below an auth mount whose method folds names
/// (for the canonicaliser's tests, which have a table but no core).
#[cfg(test)]
pub(super) fn fold_below_auth(
    body: &str,
    auth: &MountTable,
    registry: &Registry,
) -> Option<String> {
    let below = body.strip_prefix("auth/")?;
    let (entry, rest) = auth.route(below)?;
    let method = registry.auth(&entry.kind)?;
    let mount = &body[..body.len() - rest.len()];
    method.canonical_rest(rest).map(|r| format!("{mount}{r}"))
}
