//! (Tests.) Each tier's decision for every cubbyhole path: every token may use
//! its own (the `default` policy), whatever its tier.

use crate::engine::tiers::{row, TierRows, A};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "cubbyhole/",
        rows: vec![
            row("", List, A, A, A),
            row("*path", Read, A, A, A),
            row("*path", List, A, A, A),
            row("*path", Wr, A, A, A),
            row("*path", Del, A, A, A),
        ],
    }
}
