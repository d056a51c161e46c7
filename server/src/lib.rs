//! Coffer's server: a secrets store that speaks the Vault/OpenBao HTTP API.
//!
//! Layers, each depending only on those below it:
//!
//! ```text
//! http      axum router, Vault request/response shapes, TLS listeners   (http/)
//! core      seal gate -> token -> authorise -> route to sys/token/mount  (core/)
//! engines   secrets engines (KV v2) and the auth/token paths            (secrets/, token/paths.rs)
//! token     token entries, TTLs, revocation trees                        (token/)
//! lease     lease entries, renewal, expiry worker's claims, revocation   (lease/)
//! barrier   AES-256-GCM of every value, path as AAD, keyring with terms  (barrier/)
//! seal      Shamir shares of the root key; init/unseal/seal              (seal/)
//! storage   SQLite / PostgreSQL key-value rows with an expiry index (coffer-storage)
//! ```
//!
//! Cross-cutting and dependency-free: `clock` (time as a parameter), `crypto`
//! (randomness, constant-time compare, secret strings), `logical` (request and
//! response shapes shared by core and engines), `config` (the TOML file).
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod barrier;
pub mod breakglass;
pub mod clock;
pub mod config;
pub mod core;
pub mod crypto;
pub mod engine;
pub mod engines;
pub mod http;
pub mod lease;
pub mod logical;
pub mod metrics;
pub mod mounts;
pub mod policy;
pub mod seal;
pub mod secrets;
/// The storage crate under its old path, so `crate::storage::…` still names it.
pub use coffer_storage as storage;
pub mod sync;
pub mod token;
