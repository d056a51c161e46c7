//! Tokens: creation, lookup, renewal and revocation, and the `auth/token/*` paths.
//!
//! A token is only ever stored under an HMAC of its id (keyed by a secret kept
//! behind the barrier), so neither the database nor a backup of it holds a usable
//! token. Accessors are stored the same way. Each token row carries its expiry in
//! the storage expiry index, so expired tokens are found by a range scan; parents
//! find their children through `parent/<parent>/<child>` index entries.

pub mod paths;
mod store;
mod ttl;

pub use store::{CreateParams, FoundToken, TokenEntry, TokenStore, Unusable, TOKEN_HMAC_KEY_PATH};
pub use ttl::{TtlLimits, TtlPlan};
