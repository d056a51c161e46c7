//! `auth/approle`: machines log in with a role id (not secret, like a user name)
//! and a secret id (a credential, shown once). Admin paths manage roles
//! (`role/<name>`), their role id (`role-id`), and their secret ids
//! (`secret-id`, `custom-secret-id`, `secret-id/lookup|destroy`,
//! `secret-id-accessor/lookup|destroy`); `login` takes no token.
//!
//! Secret ids are stored under an HMAC of their value (a per-mount key), never
//! as written. Their use count and TTL are enforced with a conditional change in
//! storage: a secret id with `n` uses logs in `n` times however many nodes and
//! requests race for it.

mod login;
mod role;
mod secret_id;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiers;

use crate::engine::{AuthMethod, Engine, EngineFuture, LoginOutcome, MountContext, Ops, PathSpec};
use crate::logical::{LogicalError, Operation, Request, Response};

/// The AppRole auth method, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppRole;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("login", W),
    PathSpec::new("role", L),
    PathSpec::new("role/:role", R.and(W).and(D)),
    PathSpec::new("role/:role/role-id", R.and(W)),
    PathSpec::new("role/:role/secret-id", W.and(L)),
    PathSpec::new("role/:role/custom-secret-id", W),
    PathSpec::new("role/:role/secret-id/lookup", W),
    PathSpec::new("role/:role/secret-id/destroy", W.and(D)),
    PathSpec::new("role/:role/secret-id-accessor/lookup", W),
    PathSpec::new("role/:role/secret-id-accessor/destroy", W.and(D)),
];

impl Engine for AppRole {
    fn kind(&self) -> &'static str {
        "approle"
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
            if rest == "role" {
                return match req.operation {
                    Operation::List => role::list(ctx.view).await,
                    _ => Err(LogicalError::UnsupportedOperation),
                };
            }
            let Some(after) = rest.strip_prefix("role/") else {
                return Err(LogicalError::NotFound);
            };
            let (name, tail) = after.split_once('/').unwrap_or((after, ""));
            match tail {
                "" => role::handle(ctx.view, req, name).await,
                "role-id" => role::role_id(ctx.view, req, name).await,
                _ => secret_id::handle(ctx.view, req, name, tail, ctx.now).await,
            }
        })
    }

    fn canonical_rest(&self, rest: &str) -> Option<String> {
        canonical_rest(rest)
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }

    /// A new secret id lets its holder log in as the role: a change to it.
    fn also_updates(&self, rest: &str) -> Option<String> {
        let after = rest.strip_prefix("role/")?;
        let (name, tail) = after.split_once('/')?;
        matches!(tail, "secret-id" | "custom-secret-id").then(|| format!("role/{name}"))
    }

    fn expiring_prefixes(&self) -> &'static [&'static str] {
        &["secret-id/"]
    }
}

impl AuthMethod for AppRole {
    fn login<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, LoginOutcome> {
        Box::pin(async move {
            if ctx.rest.trim_end_matches('/') != "login" {
                return Err(LogicalError::NotFound);
            }
            let params = login::login(
                ctx.view,
                ctx.mount,
                &req.data,
                ctx.connection.remote_addr,
                ctx.now,
            )
            .await?;
            Ok(LoginOutcome::Issue(Box::new(params)))
        })
    }
}

/// Role names are case-insensitive, as in Vault: `role/<name>[/...]` is folded
/// to lower case before the policy decides.
pub fn canonical_rest(rest: &str) -> Option<String> {
    let body = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments: Vec<String> = body.split('/').map(str::to_owned).collect();
    if segments.first().map(String::as_str) != Some("role") {
        return None;
    }
    let name = segments.get_mut(1)?;
    *name = name.to_lowercase();
    Some(segments.join("/"))
}
