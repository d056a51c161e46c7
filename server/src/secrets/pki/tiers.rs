//! (Tests.) Each tier's decision for every PKI path that takes a token, at
//! `pki/`: no tier names the PKI engine, so every one is denied (a service
//! that issues its certificates gets a policy of its own). The CA, CRL and
//! `cert/<serial>` reads are public and need no row.

use crate::engine::tiers::{row, TierRows, D};
use crate::logical::Operation::{Delete as Del, List, Read, Update as Wr};

pub(super) fn rows() -> TierRows {
    TierRows {
        mount: "pki/",
        rows: vec![
            row("root/generate/:type", Wr, D, D, D),
            row("root/sign-intermediate", Wr, D, D, D),
            row("root", Del, D, D, D),
            row("intermediate/generate/:type", Wr, D, D, D),
            row("intermediate/set-signed", Wr, D, D, D),
            row("config/urls", Read, D, D, D),
            row("config/urls", Wr, D, D, D),
            row("roles", List, D, D, D),
            row("roles/:name", Read, D, D, D),
            row("roles/:name", Wr, D, D, D),
            row("roles/:name", Del, D, D, D),
            row("issue/:role", Wr, D, D, D),
            row("sign/:role", Wr, D, D, D),
            row("revoke", Wr, D, D, D),
            row("crl/rotate", Read, D, D, D),
            row("certs", List, D, D, D),
            row("certs/revoked", List, D, D, D),
            row("tidy", Wr, D, D, D),
        ],
    }
}
