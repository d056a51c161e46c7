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

pub use model::{locked_users, lockouts_total, unlock, UserpassConfig};
pub use path_login::{complete_mfa, login, LoginStep, MfaChallenge};
pub use path_totp::{confirm, enroll};
pub use path_users::handle_admin;

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

/// Paths below the mount that need no token.
pub fn is_unauthenticated(rest: &str) -> bool {
    rest.starts_with("login/")
        || rest.starts_with("totp/enroll/")
        || rest.starts_with("totp/confirm/")
}
