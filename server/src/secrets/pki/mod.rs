//! `pki`: Vault's PKI secrets engine — a CA per mount (a generated root, or an
//! intermediate signed elsewhere), roles that bound what may be issued, leaf
//! certificates issued with a new key (`issue/<role>`) or for a CSR
//! (`sign/<role>`), revocation with a signed CRL, the public CA and CRL
//! reads, and tidy. This file owns the routes; the work is in
//! `ca.rs` (the issuer), `urls.rs` (`config/urls`), `roles.rs`, `names.rs` (the role's
//! name rules), `issue.rs`, `crl.rs` (revocation, CRL), `certs.rs` (the
//! certificate store, tidy), `ttl.rs`, `keys.rs`, `export.rs` (answer formats), `csr.rs`, `x509.rs`, and the
//! storage layout in `store.rs`. The CA's private key lives only in the
//! mount's barrier view (encrypted like every secret) and appears in no log
//! line or error.
//!
//! Issued certificates carry a lease (the serial) unless the role has
//! `no_store`; it is not renewable, as in Vault, and revoking it revokes the
//! certificate.

mod ca;
mod certs;
mod crl;
mod csr;
mod export;
mod issue;
mod keys;
mod names;
mod roles;
mod store;
mod ttl;
mod urls;
mod x509;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiers;

use crate::barrier::View;
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{Lease, LogicalError, Operation, Request, Response};

/// The PKI engine, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pki;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

/// Every path below a PKI mount. `root` is root-protected (sudo), as in Vault;
/// the CA, CRL and certificate reads are public, as in Vault.
static PATHS: &[PathSpec] = &[
    PathSpec::new("root/generate/:type", W),
    PathSpec::new("root/sign-intermediate", W),
    PathSpec::new("root", D).with_sudo(D),
    PathSpec::new("intermediate/generate/:type", W),
    PathSpec::new("intermediate/set-signed", W),
    PathSpec::new("config/urls", R.and(W)),
    PathSpec::new("roles", L),
    PathSpec::new("roles/:name", R.and(W).and(D)),
    PathSpec::new("issue/:role", W),
    PathSpec::new("sign/:role", W),
    PathSpec::new("revoke", W),
    PathSpec::new("crl/rotate", R),
    PathSpec::unauthenticated("ca", R),
    PathSpec::unauthenticated("ca/pem", R),
    PathSpec::unauthenticated("ca_chain", R),
    PathSpec::unauthenticated("crl", R),
    PathSpec::unauthenticated("crl/pem", R),
    PathSpec::unauthenticated("cert/:serial", R),
    PathSpec::new("certs", L),
    PathSpec::new("certs/revoked", L),
    PathSpec::new("tidy", W),
];

impl Engine for Pki {
    fn kind(&self) -> &'static str {
        "pki"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(route(ctx, req))
    }

    /// Vault's existence check on roles: writing a new role needs `create`,
    /// changing one `update`.
    fn exists<'a>(&'a self, view: &'a View, rest: &'a str) -> EngineFuture<'a, Option<bool>> {
        Box::pin(async move {
            match rest.strip_prefix("roles/") {
                Some(name) if !name.is_empty() && !name.contains('/') => {
                    Ok(Some(view.get(&store::role_key(name)).await?.is_some()))
                }
                _ => Ok(None),
            }
        })
    }

    /// Revokes the certificate a lease of `issue/` or `sign/` stands for
    /// (its id ends with the serial). A certificate already gone is fine.
    fn revoke_lease<'a>(&'a self, view: &'a View, lease: &'a Lease) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            let serial = lease.id.rsplit('/').next().unwrap_or_default();
            let Some(hyphen) = store::hyphen_serial(serial) else {
                return Err(LogicalError::invalid("not a PKI lease"));
            };
            let (now, nanos) = lease_clock();
            match crl::revoke_serial(view, &hyphen, now, nanos).await {
                Ok(_) => Ok(()),
                // no longer stored (tidied): nothing left to revoke
                Err(LogicalError::InvalidRequest(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }
}

impl SecretsEngine for Pki {}

/// Now, in unix seconds and nanoseconds, from the request's context: the one
/// place this engine reads `ctx.now` (so that a change of its type is one
/// change here).
pub(super) fn now(ctx: &MountContext<'_>) -> (i64, i128) {
    (ctx.now.secs(), ctx.now.nanos())
}

/// The time for a lease revocation, which the hook is not handed (yet): the
/// server's clock. The one place this engine reads it.
fn lease_clock() -> (i64, i128) {
    use crate::clock::Clock as _;
    let clock = crate::clock::SystemClock;
    let now = clock.now();
    (now.secs(), now.nanos())
}

fn exported(kind: &str) -> Result<bool, LogicalError> {
    match kind {
        "internal" => Ok(false),
        "exported" => Ok(true),
        _ => Err(LogicalError::invalid(
            "the \"exported\" path parameter must be \"internal\" or \"exported\"",
        )),
    }
}

async fn route(ctx: &MountContext<'_>, req: &Request) -> Result<Response, LogicalError> {
    let rest = match req.operation {
        Operation::List => ctx.rest.strip_suffix('/').unwrap_or(ctx.rest),
        _ => ctx.rest,
    };
    let (view, (now, now_nanos)) = (ctx.view, now(ctx));
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["root", "generate", kind] => ca::generate_root(ctx, req, exported(kind)?).await,
        ["root", "sign-intermediate"] => ca::sign_intermediate(ctx, req).await,
        ["root"] => ca::delete_root(ctx).await,
        ["intermediate", "generate", kind] => {
            ca::generate_intermediate(ctx, req, exported(kind)?).await
        }
        ["intermediate", "set-signed"] => ca::set_signed(ctx, req).await,
        ["config", "urls"] => urls::handle(ctx, req).await,
        ["roles"] => roles::list(view).await,
        ["roles", name] => roles::handle(view, req, name).await,
        ["issue", role] => issue::handle(ctx, req, role, false).await,
        ["sign", role] => issue::handle(ctx, req, role, true).await,
        ["revoke"] => crl::revoke(view, req, now, now_nanos).await,
        ["crl", "rotate"] => crl::rotate(view, now).await,
        ["ca"] | ["ca", "pem"] | ["ca_chain"] | ["cert", "ca"] | ["cert", "ca_chain"] => {
            ca::read(ctx, rest).await
        }
        ["crl"] | ["crl", "pem"] | ["cert", "crl"] => crl::read(view, rest, now).await,
        ["cert", serial] => certs::read(view, serial).await,
        ["certs"] => certs::list(view, store::CERTS).await,
        ["certs", "revoked"] => certs::list(view, store::REVOKED).await,
        ["tidy"] => certs::tidy(view, req, now).await,
        _ => Err(LogicalError::NotFound),
    }
}
