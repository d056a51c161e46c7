//! (Tests.) Each tier's decision for every database path: connections and
//! roles are root's; developers get deploy credentials only.

use serde_json::json;

use crate::engine::tiers::{row, variant, TierRows, A, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "database/",
        rows: vec![
            row("config", List, D, D, D),
            row("config/:name", Read, D, D, D),
            row("config/:name", Wr, D, D, D),
            row("config/:name", Del, D, D, D),
            row("rotate-root/:name", Wr, D, D, D),
            row("roles", List, D, D, D),
            row("roles/:name", Read, D, D, D),
            row("roles/:name", Wr, D, D, D),
            row("roles/:name", Del, D, D, D),
            row("creds/:role", Read, D, D, D),
            variant(
                "creds/:role",
                Read,
                Some("creds/deploy-app"),
                json!({}),
                [D, A, D],
            ),
        ],
    }
}
