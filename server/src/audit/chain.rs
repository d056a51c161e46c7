//! The hash chain of one audit device: the format (line hash, genesis, `seq` and
//! `prev_hash`) is `coffer_proto::audit::chain`, written once and shared with
//! `coffer audit verify`; it is named here under the server's audit module.

pub use coffer_proto::audit::chain::{head_of_tail, link, Head, GENESIS_HASH};
