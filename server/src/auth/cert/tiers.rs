//! (Tests.) Each tier's decision for every `auth/cert` path that takes a
//! token: which certificates are trusted, and which are revoked, is root's alone.

use crate::engine::tiers::{row, TierRows, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "auth/cert/",
        rows: vec![
            row("certs", List, D, D, D),
            row("certs/:name", Read, D, D, D),
            row("certs/:name", Wr, D, D, D),
            row("certs/:name", Del, D, D, D),
            row("crls", List, D, D, D),
            row("crls/:name", Read, D, D, D),
            row("crls/:name", Wr, D, D, D),
            row("crls/:name", Del, D, D, D),
        ],
    }
}
