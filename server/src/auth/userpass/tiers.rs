//! (Tests.) Each tier's decision for every userpass path that takes a token:
//! people and their factors are root's alone.

use crate::engine::tiers::{row, TierRows, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "auth/userpass/",
        rows: vec![
            row("config", Read, D, D, D),
            row("config", Wr, D, D, D),
            row("users", List, D, D, D),
            row("users/:user", Read, D, D, D),
            row("users/:user", Wr, D, D, D),
            row("users/:user", Del, D, D, D),
            row("users/:user/password", Wr, D, D, D),
            row("users/:user/policies", Wr, D, D, D),
            row("users/:user/totp", Del, D, D, D),
            row("users/:user/enrollment-token", Wr, D, D, D),
        ],
    }
}
