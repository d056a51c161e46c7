//! (Tests.) Each tier's decision for every JWT-auth path that takes a token:
//! which issuers and claims log in is root's decision alone.

use crate::engine::tiers::{row, TierRows, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "auth/jwt/",
        rows: vec![
            row("config", Read, D, D, D),
            row("config", Wr, D, D, D),
            row("role", List, D, D, D),
            row("role/:role", Read, D, D, D),
            row("role/:role", Wr, D, D, D),
            row("role/:role", Del, D, D, D),
        ],
    }
}
