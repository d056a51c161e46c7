//! Auth methods that turn a credential into a token (the token store itself is
//! in `token`). Each method works in the barrier view of its mount and hands the
//! core a [`crate::token::CreateParams`]; the core creates the token. This module
//! never decides policy and never sees HTTP.

pub mod approle;
pub mod cert;
pub mod jwt;
pub mod password;
pub mod ratelimit;
pub mod tokenutil;
pub mod totp;
pub mod userpass;
