//! `auth/cert`: services log in with the TLS client certificate of their
//! connection (Vault's TLS certificate auth method). Admin paths configure the
//! trusted certificates (`certs/<name>`: a CA whose chains are trusted, or a
//! pinned certificate, with the names a login certificate must carry and the
//! token it gets) and CRLs (`crls/<name>`); `login` (no token; optional `name`)
//! checks the certificate (`verify`) and asks the core for a token bound to
//! that certificate's SHA-256 fingerprint (`bound_cert_sha256`).
//!
//! Storage, in the mount's view: `cert/<name>` (role), `crl/<name>` (CRL DER,
//! issuer and serials). Names are folded to lower case, as Vault does.
//!
//! No login rate limit: a certificate login cannot be guessed (each attempt
//! needs a key the CA certified, proven in the handshake), and its cost is
//! below the TLS handshake that carries it.

mod login;
mod model;
mod paths;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tiers;
mod verify;

use crate::engine::{AuthMethod, Engine, EngineFuture, LoginOutcome, MountContext, Ops, PathSpec};
use crate::logical::{LogicalError, Request, Response};

/// The cert auth method, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cert;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

/// Every path below a cert mount.
static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("login", W),
    PathSpec::new("certs", L),
    PathSpec::new("certs/:name", R.and(W).and(D)),
    PathSpec::new("crls", L),
    PathSpec::new("crls/:name", R.and(W).and(D)),
];

impl Engine for Cert {
    fn kind(&self) -> &'static str {
        "cert"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(paths::handle(ctx.view, req, ctx.rest))
    }

    fn canonical_rest(&self, rest: &str) -> Option<String> {
        let body = rest.strip_suffix('/').unwrap_or(rest);
        let (kind, name) = body.split_once('/')?;
        matches!(kind, "certs" | "crls").then(|| format!("{kind}/{}", name.to_lowercase()))
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }
}

impl AuthMethod for Cert {
    fn login<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, LoginOutcome> {
        Box::pin(async move {
            if ctx.rest != "login" {
                return Err(LogicalError::NotFound);
            }
            let params = login::login(ctx, req).await?;
            Ok(LoginOutcome::Issue(Box::new(params)))
        })
    }
}
