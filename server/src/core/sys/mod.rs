//! The `sys/` paths, by family: each family (a file here) declares its paths
//! the way an engine does ([`PathSpec`]: operations, served without a token or
//! not) and handles them; [`FAMILIES`] is the one list. The core's route table
//! (`routes.rs`) is built from these declarations, so a path is served only
//! when a family declares it. Answers have Vault's shapes (several are bare
//! documents, not the envelope, because that is what clients parse).

mod audit;
mod breakglass;
mod capabilities;
mod generate_root;
mod keys;
mod leases;
mod locked_users;
mod metrics;
mod mounts;
mod policy;
mod quotas;
mod rekey;
mod status;

use crate::clock::UnixTime;
use std::future::Future;
use std::pin::Pin;

use super::{Core, CoreError, Unsealed};
use crate::engine::paths::find_in;
use crate::engine::PathSpec;
use crate::logical::{Request, Response};
use crate::token::FoundToken;

/// Version reported in status answers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One `sys/` request, as a family sees it.
pub(super) struct SysRequest<'a> {
    core: &'a Core,
    /// `None` while sealed (only families' unauthenticated paths are asked then)
    state: Option<&'a Unsealed>,
    req: &'a Request,
    /// the canonical path below `sys/`
    rest: &'a str,
    /// the token's entry (`None` on unauthenticated paths)
    caller: Option<&'a FoundToken>,
    now: UnixTime,
}

impl SysRequest<'_> {
    /// The unsealed state, for paths that need it.
    fn state(&self) -> Result<&Unsealed, CoreError> {
        self.state.ok_or(CoreError::Sealed)
    }

    /// The caller's token entry, for paths that take a token.
    fn caller(&self) -> Result<&FoundToken, CoreError> {
        self.caller.ok_or(CoreError::PermissionDenied)
    }

    /// The "no handler" answer for this path.
    fn no_handler(&self) -> CoreError {
        CoreError::NoHandler(format!("sys/{}", self.rest))
    }
}

type SysFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, CoreError>> + Send + 'a>>;

/// A family of `sys/` paths: what it serves and its handler.
pub(super) struct Family {
    /// full paths (`sys/...`), first match wins within a family
    pub(super) paths: &'static [PathSpec],
    handle: for<'a> fn(SysRequest<'a>) -> SysFuture<'a>,
}

/// Every family of `sys/` paths.
pub(super) static FAMILIES: &[&Family] = &[
    &status::FAMILY,
    &keys::FAMILY,
    &metrics::FAMILY,
    &mounts::FAMILY,
    &locked_users::FAMILY,
    &audit::FAMILY,
    &policy::FAMILY,
    &capabilities::FAMILY,
    &generate_root::FAMILY,
    &rekey::FAMILY,
    &leases::FAMILY,
    &quotas::FAMILY,
    &breakglass::FAMILY,
];

/// The family serving `path` for `op`, with the matching spec.
fn family_of(path: &str, req: &Request) -> Option<(&'static Family, &'static PathSpec)> {
    find_in(FAMILIES.iter().map(|f| (*f, f.paths)), path, req.operation)
}

/// Paths that work without a token and while sealed. `None` = not one of them.
pub(super) async fn unauthenticated(
    core: &Core,
    req: &Request,
    path: &str,
) -> Result<Option<Response>, CoreError> {
    if !path.starts_with("sys/") {
        return Ok(None);
    }
    let Some((family, spec)) = family_of(path, req) else {
        return Ok(None);
    };
    // sys/metrics is public only on a listener that says so.
    let public = spec.unauthenticated || (path == "sys/metrics" && req.unauthenticated_metrics);
    if !public {
        return Ok(None);
    }
    let state = core.unsealed().ok();
    let r = SysRequest {
        core,
        state: state.as_deref(),
        req,
        rest: path.strip_prefix("sys/").unwrap_or_default(),
        caller: None,
        now: core.now(),
    };
    (family.handle)(r).await.map(Some)
}

/// `sys/` paths that need a token and an unsealed node.
pub(super) async fn authenticated(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    path: &str,
    caller: &FoundToken,
    now: UnixTime,
) -> Result<Response, CoreError> {
    let (family, _) = family_of(path, req).ok_or_else(|| CoreError::NoHandler(path.to_owned()))?;
    let r = SysRequest {
        core,
        state: Some(state),
        req,
        rest: path.strip_prefix("sys/").unwrap_or_default(),
        caller: Some(caller),
        now,
    };
    Ok(with_system((family.handle)(r).await?))
}

fn with_system(mut resp: Response) -> Response {
    resp.mount_type = Some("system".into());
    resp
}
