//! Secrets engines. Each engine gets a [`crate::barrier::View`] confined to its
//! mount's storage prefix and the request with the mount path stripped.

pub mod cubbyhole;
pub mod database;
pub mod identity;
pub mod kv;
pub mod pki;
