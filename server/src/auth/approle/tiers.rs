//! (Tests.) Each tier's decision for every AppRole path that takes a token:
//! roles and their credentials are root's alone (a tier that could mint a
//! secret id could log in as any role).

use crate::engine::tiers::{row, TierRows, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "auth/approle/",
        rows: vec![
            row("role", List, D, D, D),
            row("role/:role", Read, D, D, D),
            row("role/:role", Wr, D, D, D),
            row("role/:role", Del, D, D, D),
            row("role/:role/role-id", Read, D, D, D),
            row("role/:role/role-id", Wr, D, D, D),
            row("role/:role/secret-id", Wr, D, D, D),
            row("role/:role/secret-id", List, D, D, D),
            row("role/:role/custom-secret-id", Wr, D, D, D),
            row("role/:role/secret-id/lookup", Wr, D, D, D),
            row("role/:role/secret-id/destroy", Wr, D, D, D),
            row("role/:role/secret-id/destroy", Del, D, D, D),
            row("role/:role/secret-id-accessor/lookup", Wr, D, D, D),
            row("role/:role/secret-id-accessor/destroy", Wr, D, D, D),
            row("role/:role/secret-id-accessor/destroy", Del, D, D, D),
        ],
    }
}
