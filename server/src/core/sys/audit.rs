//! `sys/audit` (the device table), `sys/audit/<path>` (enable, disable),
//! `sys/audit-hash/<path>` and (not in Vault) `sys/audit-checkpoint-key`.

use serde_json::json;

use super::{Family, SysFuture, SysRequest};
use crate::core::{CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/audit", Ops::READ),
    PathSpec::new("sys/audit-checkpoint-key", Ops::READ),
    PathSpec::new("sys/audit-hash/*device", Ops::WRITE),
    PathSpec::new("sys/audit/*device", Ops::WRITE.and(Ops::DELETE)),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, state, req, rest, now) = (r.core, r.state()?, r.req, r.rest, r.now);
        let _ = (core, now);
        audit_paths(state, req, rest)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

/// `sys/audit`, `sys/audit/<path>`, `sys/audit-hash/<path>` and (not in
/// Vault) `sys/audit-checkpoint-key`.
async fn audit_paths(
    state: &Unsealed,
    req: &Request,
    rest: &str,
) -> Result<Option<Response>, CoreError> {
    let op = req.operation;
    let f = Fields(&req.data);
    if rest == "audit" {
        if op != Operation::Read {
            return Err(CoreError::UnsupportedOperation);
        }
        return Ok(Some(
            Response::data(state.audit.list()).with_legacy_top_level(),
        ));
    }
    if rest == "audit-checkpoint-key" {
        if op != Operation::Read {
            return Err(CoreError::UnsupportedOperation);
        }
        return Ok(Some(Response::data(json!({
            "algorithm": "ed25519",
            "public_key": state.audit.checkpoint_public_key(),
        }))));
    }
    if let Some(device) = rest.strip_prefix("audit-hash/") {
        if !op.is_write() {
            return Err(CoreError::UnsupportedOperation);
        }
        let input = f
            .string("input")?
            .ok_or_else(|| LogicalError::invalid("input is required"))?;
        let hash = state.audit.hash(device, &input)?;
        return Ok(Some(
            Response::data(json!({ "hash": hash })).with_legacy_top_level(),
        ));
    }
    let Some(device) = rest.strip_prefix("audit/") else {
        return Ok(None);
    };
    match op {
        o if o.is_write() => {
            let kind = f
                .string("type")?
                .ok_or_else(|| LogicalError::invalid("type is required"))?;
            let options = f.map("options")?.unwrap_or_default();
            state
                .audit
                .enable(
                    device,
                    &kind,
                    f.string("description")?.unwrap_or_default(),
                    options,
                    f.bool("local")?.unwrap_or(false),
                )
                .await?;
            Ok(Some(Response::no_content()))
        }
        Operation::Delete => {
            state.audit.disable(device).await?;
            Ok(Some(Response::no_content()))
        }
        _ => Err(CoreError::UnsupportedOperation),
    }
}
