//! `auth/userpass`: people log in with a password AND a TOTP code. Admin paths
//! manage users (`users/<name>`, `/password`, `/policies`, `/totp`) and the mount
//! `config`; self-service paths (`login/<name>`, `totp/enroll/<name>`,
//! `totp/confirm/<name>`) take no token — the password authenticates them, and
//! every failure counts toward the user's lockout.
//!
//! A user without a confirmed factor cannot log in (while `require_mfa`, the
//! default). A first factor, or one after an admin reset, is enrolled with a
//! one-time enrolment token an admin issues (`users/<name>/enrollment-token`,
//! see `enrollment`), during which the user replaces the password the admin set:
//! the secret is only ever shown to the user, and the admin never knows a working
//! password and factor.

mod enrollment;
mod model;
mod path_login;
mod path_totp;
mod path_users;
#[cfg(test)]
mod tiers;

pub use model::{locked_users, lockouts_total, unlock, UserpassConfig};
pub use path_login::{complete_mfa, login, LoginStep, MfaChallenge};
pub use path_totp::{confirm, enroll};
pub use path_users::handle_admin;

use crate::barrier::View;
use crate::clock::UnixTime;
use crate::engine::{AuthMethod, Engine, EngineFuture, LoginOutcome, MountContext, Ops, PathSpec};
use crate::logical::{LogicalError, Request, Response};
use crate::metrics::Gauge;
use crate::token::CreateParams;

/// The userpass auth method, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Userpass;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

/// Every path below a userpass mount.
static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("login/:user", W),
    PathSpec::unauthenticated("totp/enroll/:user", W),
    PathSpec::unauthenticated("totp/confirm/:user", W),
    // Turning off the second factor or changing the lockout is an admin act.
    PathSpec::new("config", R.and(W)).with_sudo(W),
    PathSpec::new("users", L),
    PathSpec::new("users/:user", R.and(W).and(D)),
    PathSpec::new("users/:user/password", W),
    PathSpec::new("users/:user/policies", W),
    PathSpec::new("users/:user/totp", D),
    PathSpec::new("users/:user/enrollment-token", W),
];

impl Engine for Userpass {
    fn kind(&self) -> &'static str {
        "userpass"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(handle_admin(ctx.view, req, ctx.rest, ctx.now))
    }

    fn canonical_rest(&self, rest: &str) -> Option<String> {
        canonical_rest(rest)
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }

    /// Issuing a user's enrolment token lets its holder set that user's
    /// password and factor: it is a change to the user.
    fn also_updates(&self, rest: &str) -> Option<String> {
        rest.strip_suffix("/enrollment-token")
            .filter(|user| user.starts_with("users/"))
            .map(str::to_owned)
    }

    fn expiring_prefixes(&self) -> &'static [&'static str] {
        &["lockout/", "enrollment-token/"]
    }

    fn gauges(&self) -> Vec<Gauge> {
        vec![Gauge::single(
            "coffer_lockouts_total",
            "counter",
            "Users locked out after repeated failed logins",
            lockouts_total() as f64,
        )]
    }
}

impl AuthMethod for Userpass {
    fn login<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, LoginOutcome> {
        Box::pin(async move {
            let (view, mount, rest, now) = (ctx.view, ctx.mount, ctx.rest, ctx.now);
            if let Some(name) = rest.strip_prefix("login/") {
                // `X-Vault-MFA: <method>:<code>`, or just the code.
                let header_code = req.mfa_header.as_ref().map(|h| {
                    let h = h.expose();
                    zeroize::Zeroizing::new(
                        h.split_once(':').map_or(h, |(_, code)| code).to_owned(),
                    )
                });
                let step = login(
                    view,
                    mount,
                    name,
                    &req.data,
                    header_code.as_ref().map(|c| c.as_str()),
                    ctx.connection.remote_addr,
                    now,
                )
                .await?;
                return Ok(match step {
                    LoginStep::Issue(params) => LoginOutcome::Issue(params),
                    LoginStep::NeedCode(challenge) => LoginOutcome::NeedSecondFactor {
                        username: challenge.username,
                    },
                });
            }
            if let Some(name) = rest.strip_prefix("totp/enroll/") {
                return Ok(LoginOutcome::Answer(Box::new(
                    enroll(view, mount, name, &req.data, now).await?,
                )));
            }
            if let Some(name) = rest.strip_prefix("totp/confirm/") {
                return Ok(LoginOutcome::Answer(Box::new(
                    confirm(view, name, &req.data, now).await?,
                )));
            }
            Err(LogicalError::NotFound)
        })
    }

    fn complete_second_factor<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        username: &'a str,
        code: &'a str,
    ) -> EngineFuture<'a, CreateParams> {
        Box::pin(complete_mfa(ctx.view, ctx.mount, username, code, ctx.now))
    }

    fn login_rate_per_minute<'a>(&'a self, view: &'a View) -> EngineFuture<'a, u32> {
        Box::pin(async move { Ok(UserpassConfig::load(view).await?.login_rate_per_minute) })
    }

    fn locked_users<'a>(&'a self, view: &'a View, now: UnixTime) -> EngineFuture<'a, Vec<String>> {
        Box::pin(locked_users(view, now))
    }

    fn unlock<'a>(&'a self, view: &'a View, name: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(unlock(view, name))
    }
}

/// The canonical spelling of a path below a userpass mount, for the core's
/// canonicaliser (`core/canonical.rs`): the user name in `users/<name>[/...]`,
/// `login/<name>` and `totp/{enroll,confirm}/<name>` is folded to lower case,
/// as Vault does, and a path naming a user has no trailing slash. `rest` has
/// already passed the syntactic checks (no empty, dot or padded segments).
/// `None`: the path has no user name in it and stays as it is.
pub fn canonical_rest(rest: &str) -> Option<String> {
    let body = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments: Vec<String> = body.split('/').map(str::to_owned).collect();
    let at = match segments.first().map(String::as_str) {
        Some("users" | "login") => 1,
        Some("totp")
            if matches!(
                segments.get(1).map(String::as_str),
                Some("enroll" | "confirm")
            ) =>
        {
            2
        }
        _ => return None,
    };
    let name = segments.get_mut(at)?;
    *name = name.to_lowercase();
    Some(segments.join("/"))
}
