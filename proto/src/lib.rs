//! The wire formats Coffer's server and client share, each written once: the audit
//! log's hash chain and signed checkpoints (`docs/design/audit.md`) with the
//! verification of a stream of lines, the Vault response envelope and error
//! shapes, and [`SecretString`].
//!
//! It depends on neither the server nor the client, and does no I/O: callers read
//! and write the files and the HTTP bodies.
#![forbid(unsafe_code)]

pub mod audit;
pub mod envelope;
mod secret;

pub use secret::SecretString;
