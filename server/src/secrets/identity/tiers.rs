//! (Tests.) Each tier's decision for every identity path that takes a token:
//! keys and roles are root's; developers get deploy tokens only.

use serde_json::json;

use crate::engine::tiers::{row, variant, TierRows, A, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "identity/",
        rows: vec![
            row("oidc/config", Read, D, D, D),
            row("oidc/config", Wr, D, D, D),
            row("oidc/key", List, D, D, D),
            row("oidc/key/:name", Read, D, D, D),
            row("oidc/key/:name", Wr, D, D, D),
            row("oidc/key/:name", Del, D, D, D),
            row("oidc/key/:name/rotate", Wr, D, D, D),
            row("oidc/role", List, D, D, D),
            row("oidc/role/:name", Read, D, D, D),
            row("oidc/role/:name", Wr, D, D, D),
            row("oidc/role/:name", Del, D, D, D),
            row("oidc/token/:name", Read, D, D, D),
            variant(
                "oidc/token/:name",
                Read,
                Some("oidc/token/deploy-app"),
                json!({}),
                [D, A, D],
            ),
            row("oidc/introspect", Wr, D, D, D),
        ],
    }
}
