//! Test-only helpers shared by unit tests across modules.

pub mod pg;
