//! `database/`: dynamic PostgreSQL credentials. `config/<name>` holds how to
//! reach a database (a connection URL with `{{username}}`/`{{password}}`, and
//! the root credentials, which never leave the barrier: reads omit the
//! password), `rotate-root/<name>` replaces the root password with one only
//! Coffer knows, `roles/<name>` says what a credential may do (creation and
//! revocation statements with `{{name}}`, `{{password}}`, `{{expiration}}`,
//! TTLs), and `creds/<role>` creates a login role in the database with a lease.
//! Renewing the lease moves the role's `VALID UNTIL`; revoking it ends the
//! role's sessions and drops the role. Each issued credential is recorded at
//! `creds/<username>` (with the statements to revoke it), so a lease can be
//! revoked after its role was changed or deleted.

mod config;
mod connection;
mod creds;
mod roles;
#[cfg(test)]
mod tiers;

use std::sync::Arc;

use crate::barrier::View;
use crate::clock::UnixTime;
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{Lease, LogicalError, Request, Response};

/// The database engine, as the registry holds it: it keeps one small
/// connection pool per configured database and node.
#[derive(Debug, Clone, Default)]
pub struct Database {
    pools: Arc<connection::Pools>,
}

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

static PATHS: &[PathSpec] = &[
    PathSpec::new("config", L),
    PathSpec::new("config/:name", R.and(W).and(D)),
    PathSpec::new("rotate-root/:name", W),
    PathSpec::new("roles", L),
    PathSpec::new("roles/:name", R.and(W).and(D)),
    PathSpec::new("creds/:role", R),
];

impl Engine for Database {
    fn kind(&self) -> &'static str {
        "database"
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
            let (head, name) = rest.split_once('/').unwrap_or((rest, ""));
            match head {
                "config" => config::handle(self, ctx.view, req, name).await,
                "rotate-root" => config::rotate_root(self, ctx.view, name).await,
                "roles" => roles::handle(ctx.view, req, name).await,
                "creds" => creds::issue(self, ctx, name).await,
                _ => Err(LogicalError::NotFound),
            }
        })
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }

    fn renew_lease<'a>(
        &'a self,
        view: &'a View,
        lease: &'a Lease,
        increment: u64,
        now: UnixTime,
    ) -> EngineFuture<'a, Lease> {
        Box::pin(creds::renew(self, view, lease, increment, now))
    }

    fn revoke_lease<'a>(&'a self, view: &'a View, lease: &'a Lease) -> EngineFuture<'a, ()> {
        Box::pin(creds::revoke(self, view, &lease.id))
    }
}

impl SecretsEngine for Database {}
