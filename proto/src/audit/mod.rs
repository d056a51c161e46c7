//! The audit log's wire format, version 1 of `docs/design/audit.md`: how a line is
//! hashed and linked into the chain ([`chain`]), what a checkpoint signs and how its
//! signature is checked ([`checkpoint`]), and how a stream of lines is verified, with
//! the classification of a break ([`verify`]).
//!
//! The server's file writer links its lines with [`chain::link`] and signs with
//! [`checkpoint::sign`]; `coffer audit verify` checks them with [`verify::verify_lines`].
//! Nothing here ever returns or formats the contents of an entry.

pub mod chain;
pub mod checkpoint;
pub mod verify;

#[cfg(test)]
mod tests;

pub use chain::{link, Head, GENESIS_HASH};
pub use checkpoint::{checkpoint_message, CheckpointKey};
pub use verify::{
    verify_bytes, verify_lines, BreakKind, ChainBreak, RawLine, VerifyFailure, VerifyOptions,
    VerifyReport,
};
