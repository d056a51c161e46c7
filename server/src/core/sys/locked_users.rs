//! `sys/locked-users` and `sys/locked-users/<mount accessor>/unlock/<name>`:
//! whom the auth methods have locked out, and lifting a lockout.

use crate::clock::UnixTime;
use serde_json::json;

use super::{Family, SysFuture, SysRequest};
use crate::core::{Core, CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{LogicalError, Operation, Request, Response};

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/locked-users", Ops::READ),
    PathSpec::new("sys/locked-users/:accessor/unlock/:user", Ops::WRITE),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, state, req, rest, now) = (r.core, r.state()?, r.req, r.rest, r.now);
        let _ = (core, now);
        locked_users_paths(core, state, req, rest, now)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

/// `sys/locked-users` (GET) and `sys/locked-users/<mount accessor>/unlock/<name>`.
async fn locked_users_paths(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    rest: &str,
    now: UnixTime,
) -> Result<Option<Response>, CoreError> {
    let registry = core.registry();
    if rest == "locked-users" {
        if req.operation != Operation::Read {
            return Err(CoreError::UnsupportedOperation);
        }
        let auth = state.auth.read().await.clone();
        let mut mounts = Vec::new();
        let mut total = 0usize;
        for entry in auth.entries.values() {
            let Some(method) = registry.auth(&entry.kind) else {
                continue;
            };
            let view = crate::barrier::View::new(state.barrier.clone(), entry.storage_prefix());
            let names = method.locked_users(&view, now).await?;
            if !names.is_empty() {
                total += names.len();
                mounts.push(json!({ "mount_accessor": entry.accessor, "counts": names.len(), "alias_identifiers": names }));
            }
        }
        let by_namespace = if mounts.is_empty() {
            json!([])
        } else {
            json!([{ "namespace_id": "root", "namespace_path": "", "counts": total, "mount_accessors": mounts }])
        };
        return Ok(Some(Response::data(
            json!({ "by_namespace": by_namespace, "total": total }),
        )));
    }
    let Some(tail) = rest.strip_prefix("locked-users/") else {
        return Ok(None);
    };
    let Some((accessor, name)) = tail.split_once("/unlock/") else {
        return Err(CoreError::NoHandler(format!("sys/{rest}")));
    };
    if !req.operation.is_write() {
        return Err(CoreError::UnsupportedOperation);
    }
    let auth = state.auth.read().await.clone();
    let (entry, method) = auth
        .entries
        .values()
        .filter(|e| e.accessor == accessor)
        .find_map(|e| Some((e, registry.auth(&e.kind)?)))
        .ok_or_else(|| {
            LogicalError::invalid(format!("no auth mount with accessor \"{accessor}\""))
        })?;
    let view = crate::barrier::View::new(state.barrier.clone(), entry.storage_prefix());
    method.unlock(&view, name).await?;
    Ok(Some(Response::no_content()))
}
