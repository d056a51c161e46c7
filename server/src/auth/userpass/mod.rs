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

/// Paths below the mount that need no token.
pub fn is_unauthenticated(rest: &str) -> bool {
    rest.starts_with("login/")
        || rest.starts_with("totp/enroll/")
        || rest.starts_with("totp/confirm/")
}
