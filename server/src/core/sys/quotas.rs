//! `sys/quotas/lease-count` (list) and `sys/quotas/lease-count/<name>` (read,
//! write, delete): lease-count quotas (see `lease::quota`). Vault keeps these
//! for its enterprise edition; the paths and fields are the same.

use serde_json::json;

use super::{Family, SysFuture, SysRequest};
use crate::core::{CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::lease::quota::{self, Quota};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/quotas/lease-count", Ops::LIST),
    PathSpec::new(
        "sys/quotas/lease-count/:name",
        Ops::READ.and(Ops::WRITE).and(Ops::DELETE),
    ),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (state, req, rest) = (r.state()?, r.req, r.rest);
        quota_paths(state, req, rest)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

fn checked_name(name: &str) -> Result<&str, LogicalError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name)
    } else {
        Err(LogicalError::invalid(
            "invalid quota name: use letters, digits, '-', '_' or '.' (at most 128)",
        ))
    }
}

async fn quota_paths(
    state: &Unsealed,
    req: &Request,
    rest: &str,
) -> Result<Option<Response>, CoreError> {
    let Some(tail) = rest.strip_prefix("quotas/lease-count") else {
        return Ok(None);
    };
    let name = tail.trim_start_matches('/');
    if name.is_empty() {
        if req.operation != Operation::List {
            return Err(CoreError::UnsupportedOperation);
        }
        let keys: Vec<String> = crate::sync::read(&state.quotas)
            .iter()
            .map(|q| q.name.clone())
            .collect();
        if keys.is_empty() {
            return Err(LogicalError::NotFound.into());
        }
        return Ok(Some(Response::data(json!({ "keys": keys }))));
    }
    let name = checked_name(name)?;
    match req.operation {
        Operation::Read => {
            let found = crate::sync::read(&state.quotas)
                .iter()
                .find(|q| q.name == name)
                .cloned()
                .ok_or(LogicalError::NotFound)?;
            let used = quota::used(&state.barrier, name).await?;
            Ok(Some(Response::data(json!({
                "name": found.name,
                "path": found.path,
                "max_leases": found.max_leases,
                "type": "lease-count",
                "inheritable": true,
                // Coffer's own: slots in use now.
                "counter": used,
            }))))
        }
        Operation::Delete => {
            quota::store(&state.barrier, name, None).await?;
            crate::sync::write(&state.quotas).retain(|q| q.name != name);
            Ok(Some(Response::no_content()))
        }
        o if o.is_write() => {
            let f = Fields(&req.data);
            let max = f
                .u64("max_leases")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'max_leases'"))?;
            if max == 0 {
                return Err(LogicalError::invalid("max_leases must be at least 1").into());
            }
            let path = f.string("path")?.unwrap_or_default();
            let path = path.trim().trim_start_matches('/').to_owned();
            if path.split('/').any(|s| s == "." || s == "..") || path.chars().any(char::is_control)
            {
                return Err(LogicalError::invalid("invalid path").into());
            }
            let q = Quota {
                name: name.to_owned(),
                path,
                max_leases: max,
            };
            quota::store(&state.barrier, name, Some(&q)).await?;
            let mut all = crate::sync::write(&state.quotas);
            all.retain(|x| x.name != name);
            all.push(q);
            Ok(Some(Response::no_content()))
        }
        _ => Err(CoreError::UnsupportedOperation),
    }
}
