//! `sys/rotate` (and OpenBao's `sys/rotate/keyring`) and `sys/key-status`:
//! the barrier's keyring.

use serde_json::json;

use super::{Family, SysFuture, SysRequest};
use crate::clock::rfc3339_secs;
use crate::engine::{Ops, PathSpec};
use crate::logical::Response;

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/rotate", Ops::WRITE),
    PathSpec::new("sys/rotate/keyring", Ops::WRITE),
    PathSpec::new("sys/key-status", Ops::READ),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let core = r.core;
        match r.rest {
            "rotate" | "rotate/keyring" => {
                core.barrier.rotate(core.now()).await?;
                Ok(Response::no_content())
            }
            "key-status" => {
                let s = core.barrier.key_status()?;
                Ok(Response::data(
                    json!({ "term": s.term, "install_time": rfc3339_secs(s.install_time), "encryptions": 0 }),
                )
                .with_legacy_top_level())
            }
            _ => Err(r.no_handler()),
        }
    })
}
