//! (Tests.) Each tier's decision for every KV v2 path, at `secret/` (the
//! developer's own team is `payments`).

use serde_json::json;

use crate::engine::tiers::{row, variant, TierRows, A, D};
use crate::logical::Operation::{Delete as Del, List, Patch, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "secret/",
        rows: vec![
            row("config", Read, D, D, A),
            row("config", Wr, D, D, D),
            row("data/*path", Read, A, A, A),
            row("data/*path", Wr, D, A, A),
            row("data/*path", Patch, D, A, A),
            row("data/*path", Del, D, A, A),
            variant(
                "data/*path",
                Read,
                Some("data/teams/search/app"),
                json!({}),
                [A, D, A],
            ),
            variant(
                "data/*path",
                Wr,
                Some("data/teams/search/app"),
                json!({"data": {"k": "v"}}),
                [D, D, A],
            ),
            row("subkeys/*path", Read, A, A, A),
            row("metadata", List, A, D, A),
            row("metadata/*path", Read, A, A, A),
            row("metadata/*path", List, A, A, A),
            row("metadata/*path", Wr, D, A, A),
            row("metadata/*path", Patch, D, A, A),
            // deleting metadata drops every version
            row("metadata/*path", Del, D, D, D),
            variant(
                "metadata/*path",
                Wr,
                None,
                json!({"custom_metadata": {"owner": "payments"}, "cas_required": true}),
                [D, A, A],
            ),
            variant(
                "metadata/*path",
                Wr,
                None,
                json!({"max_versions": 1}),
                [D, D, D],
            ),
            variant(
                "metadata/*path",
                Patch,
                None,
                json!({"max_versions": 1}),
                [D, D, D],
            ),
            variant(
                "metadata/*path",
                Wr,
                None,
                json!({"delete_version_after": "1s"}),
                [D, D, D],
            ),
            variant(
                "metadata/*path",
                Read,
                Some("metadata/teams/search/app"),
                json!({}),
                [A, D, A],
            ),
            row("delete/*path", Wr, D, A, A),
            row("undelete/*path", Wr, D, A, A),
            row("destroy/*path", Wr, D, D, D),
        ],
    }
}
