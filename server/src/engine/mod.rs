//! The contract between the core and everything that can be mounted. A secrets
//! engine ([`SecretsEngine`]) or an auth method ([`AuthMethod`]) lives in its own
//! folder, declares the paths it serves ([`PathSpec`]: operations, login steps,
//! `sudo`), answers requests confined to its mount's barrier view, and says how
//! it renews and revokes the leases it issues. The core knows engines only
//! through the [`Registry`] of mount types; `engines.rs` at the crate root is
//! the one list of what is built in. See `docs/design/engines.md`.

mod context;
pub mod paths;
mod registry;
#[cfg(test)]
pub mod tiers;

use crate::clock::UnixTime;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

pub use context::{Caller, ConnectionInfo, MountContext};
pub use paths::{Ops, PathSpec};
pub use registry::Registry;

use crate::barrier::View;
use crate::logical::{Lease, LogicalError, Request, Response};
use crate::metrics::Gauge;
use crate::token::CreateParams;

/// What engine methods return: a boxed future, so that engines can be held as
/// trait objects in the registry.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LogicalError>> + Send + 'a>>;

/// What every mountable thing has: its type name, its paths, its handler and
/// the hooks the core calls around a request.
pub trait Engine: Send + Sync + 'static {
    /// The mount type (`kv`, `userpass`, ...), as `sys/mounts` shows it.
    fn kind(&self) -> &'static str;

    /// The paths below the mount it serves; nothing else reaches [`Engine::handle`].
    fn paths(&self) -> &'static [PathSpec];

    /// Answers a request below the mount. The path in `ctx.rest` matched one of
    /// [`Engine::paths`] with the request's operation, and was authorised.
    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response>;

    /// Vault's existence check: whether the object a write to `rest` targets
    /// exists (so the write needs `update`), or not (`create`). `None`: this
    /// path draws no distinction, and a write is an update.
    fn exists<'a>(&'a self, view: &'a View, rest: &'a str) -> EngineFuture<'a, Option<bool>> {
        let _ = (view, rest);
        Box::pin(async { Ok(None) })
    }

    /// The fields a policy's parameter rules apply to for a write to `rest`.
    /// Default: the request's fields. (KV v2 answers the keys inside `data`.)
    fn policy_fields<'r>(
        &self,
        rest: &str,
        data: &'r Map<String, Value>,
    ) -> &'r Map<String, Value> {
        let _ = rest;
        data
    }

    /// The canonical spelling of `rest` where the engine folds names (Vault
    /// lower-cases user names, for instance); `None` keeps `rest` as it is. Runs
    /// before authorisation, on a path that has passed the syntactic checks.
    fn canonical_rest(&self, rest: &str) -> Option<String> {
        let _ = rest;
        None
    }

    /// Another object (a path below the same mount) that a write to `rest`
    /// changes, so that the write also needs `update` there.
    fn also_updates(&self, rest: &str) -> Option<String> {
        let _ = rest;
        None
    }

    /// Prefixes inside the mount's view whose records carry an expiry and are
    /// removed by the core's tidy once expired.
    fn expiring_prefixes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Renews a lease this engine issued (`lease.id` without the mount prefix)
    /// by `increment` seconds from `now`; answers the TTL it grants (the core
    /// caps it by the mount's maximum).
    fn renew_lease<'a>(
        &'a self,
        view: &'a View,
        lease: &'a Lease,
        increment: u64,
        now: UnixTime,
    ) -> EngineFuture<'a, Lease> {
        let _ = (view, lease, increment, now);
        Box::pin(async {
            Err(LogicalError::invalid(
                "this engine issues no renewable leases",
            ))
        })
    }

    /// Revokes what a lease this engine issued stands for (a credential, a
    /// certificate). Called once per lease; must be safe to call again.
    fn revoke_lease<'a>(&'a self, view: &'a View, lease: &'a Lease) -> EngineFuture<'a, ()> {
        let _ = (view, lease);
        Box::pin(async { Ok(()) })
    }

    /// Metric families this engine contributes to `sys/metrics`.
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }

    /// (Tests.) Each tier's decision for every path this engine serves; the
    /// core's tier test fails for a path without one.
    #[cfg(test)]
    fn tier_rows(&self) -> tiers::TierRows {
        tiers::TierRows {
            mount: "",
            rows: Vec::new(),
        }
    }
}

/// A secrets engine, mounted under `sys/mounts/<path>`.
pub trait SecretsEngine: Engine {
    /// Type names `sys/mounts` accepts for this engine besides [`Engine::kind`]
    /// (`kv-v2` for `kv`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks (and completes) the options of a new mount, given the type name
    /// it was asked for: KV refuses version 1, for instance.
    fn prepare_options(
        &self,
        requested: &str,
        options: &mut BTreeMap<String, String>,
    ) -> Result<(), LogicalError> {
        let _ = (requested, options);
        Ok(())
    }

    /// Checks options changed by a tune of an existing mount.
    fn check_tuned_options(&self, options: &BTreeMap<String, String>) -> Result<(), LogicalError> {
        let _ = options;
        Ok(())
    }

    /// A mount every server has and nobody can disable or move (Vault's
    /// `cubbyhole/`): its path and description.
    fn builtin_mount(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// Whether the engine keeps its data in the caller's token-owned storage
    /// ([`MountContext::token_view`]) rather than in the mount's view.
    fn uses_token_storage(&self) -> bool {
        false
    }
}

/// One step of a login, as an auth method concludes it.
pub enum LoginOutcome {
    /// Authenticated: the core issues a token with these parameters.
    Issue(Box<CreateParams>),
    /// The first factor passed; the second is missing. The core stores a
    /// pending request for `sys/mfa/validate` naming this user.
    NeedSecondFactor {
        /// whose login waits
        username: String,
    },
    /// A token-less step that is not a login (enrolment): answer as is.
    Answer(Box<Response>),
}

/// An auth method, enabled under `sys/auth/<path>`.
pub trait AuthMethod: Engine {
    /// Handles one of the paths declared `unauthenticated`.
    fn login<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, LoginOutcome>;

    /// Finishes a login that waited for its second factor (`sys/mfa/validate`).
    fn complete_second_factor<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        username: &'a str,
        code: &'a str,
    ) -> EngineFuture<'a, CreateParams> {
        let _ = (ctx, username, code);
        Box::pin(async {
            Err(LogicalError::invalid(
                "this auth method has no second factor",
            ))
        })
    }

    /// Login attempts allowed per minute and client address (0: no limit).
    fn login_rate_per_minute<'a>(&'a self, view: &'a View) -> EngineFuture<'a, u32> {
        let _ = view;
        Box::pin(async { Ok(0) })
    }

    /// Users currently locked out (`sys/locked-users`).
    fn locked_users<'a>(&'a self, view: &'a View, now: UnixTime) -> EngineFuture<'a, Vec<String>> {
        let _ = (view, now);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Lifts a user's lockout (`sys/locked-users/<accessor>/unlock/<name>`).
    fn unlock<'a>(&'a self, view: &'a View, name: &'a str) -> EngineFuture<'a, ()> {
        let _ = (view, name);
        Box::pin(async { Err(LogicalError::invalid("this auth method locks nobody out")) })
    }
}

/// Vault's LIST answer for the names stored directly under `prefix` in `view`
/// (`{"keys": [...]}`, at most 10,000; 404 when there is none): what an
/// engine's `config`, `roles` or accessor listings answer.
pub async fn list_names(view: &View, prefix: &str) -> Result<Response, LogicalError> {
    let keys: Vec<String> = view
        .list(prefix, None, 10_000)
        .await?
        .into_iter()
        .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
        .filter(|k| !k.is_empty() && !k.contains('/'))
        .collect();
    if keys.is_empty() {
        return Err(LogicalError::NotFound);
    }
    Ok(Response::data(serde_json::json!({ "keys": keys })))
}
