//! `auth/jwt`: CI jobs (GitHub Actions, GitLab CI, any OIDC issuer) log in with
//! the JWT their platform gives them. `config` says whose signatures count
//! (`jwt_validation_pubkeys`, a `jwks_url`, or an `oidc_discovery_url`) and
//! which issuer is expected; `role/<name>` says which tokens a role accepts
//! (audiences, subject, bound claims, exact or glob) and what token they get
//! (policies, TTLs, claims copied into metadata); `login` takes no token.
//!
//! A JWT is refused, with a reason that says which check failed, when its
//! algorithm is `none` or symmetric (HS*: a public key is never a MAC key), when
//! the key for its `kid` is unknown (after one refresh of the key set), when it
//! has expired or is not yet valid (our clock, with the role's leeways), when it
//! carries no `exp`, or when its issuer, audience, subject or a bound claim does
//! not match.

mod config;
mod jwks;
mod login;
mod role;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiers;

use std::sync::Arc;

use crate::engine::{AuthMethod, Engine, EngineFuture, LoginOutcome, MountContext, Ops, PathSpec};
use crate::logical::{LogicalError, Operation, Request, Response};

/// The JWT auth method, as the registry holds it (with each mount's key-set cache).
#[derive(Debug, Clone, Default)]
pub struct Jwt {
    keys: Arc<jwks::KeyCache>,
}

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("login", W),
    PathSpec::new("config", R.and(W)),
    PathSpec::new("role", L),
    PathSpec::new("role/:role", R.and(W).and(D)),
];

impl Engine for Jwt {
    fn kind(&self) -> &'static str {
        "jwt"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(async move {
            let rest = ctx.rest.trim_end_matches('/');
            if rest == "config" {
                let resp = config::handle(ctx.view, req).await?;
                if req.operation.is_write() {
                    self.keys.forget(&ctx.mount.uuid);
                }
                return Ok(resp);
            }
            if rest == "role" {
                return match req.operation {
                    Operation::List => role::list(ctx.view).await,
                    _ => Err(LogicalError::UnsupportedOperation),
                };
            }
            match rest.strip_prefix("role/") {
                Some(name) => role::handle(ctx.view, req, name).await,
                None => Err(LogicalError::NotFound),
            }
        })
    }

    fn canonical_rest(&self, rest: &str) -> Option<String> {
        let body = rest.strip_suffix('/').unwrap_or(rest);
        let name = body.strip_prefix("role/")?;
        Some(format!("role/{}", name.to_lowercase()))
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }
}

impl AuthMethod for Jwt {
    fn login<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, LoginOutcome> {
        Box::pin(async move {
            if ctx.rest.trim_end_matches('/') != "login" {
                return Err(LogicalError::NotFound);
            }
            let params = login::login(&self.keys, ctx, &req.data).await?;
            Ok(LoginOutcome::Issue(Box::new(params)))
        })
    }
}
