//! `delete/`, `undelete/` and `destroy/<path>`: act on listed versions.

use super::model::{commit, metadata_key, version_key, KeyMetadata};
use crate::barrier::View;
use crate::clock::UnixTime;
use crate::logical::{LogicalError, Request, Response};

pub(super) async fn handle(
    view: &View,
    req: &Request,
    action: &str,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if !req.operation.is_write() {
        return Err(LogicalError::UnsupportedOperation);
    }
    let versions = parse_versions(req)?;
    let (meta, guard) = KeyMetadata::load_guarded(view, path).await?;
    let Some(mut meta) = meta else {
        return Ok(Response::no_content());
    };
    let mut ops = Vec::new();
    for n in versions {
        let Some(v) = meta.versions.get_mut(&n) else {
            continue;
        };
        match action {
            "delete" if !v.destroyed && !v.is_deleted(now) => v.deletion_time = Some(now.nanos()),
            "undelete" if !v.destroyed => v.deletion_time = None,
            "destroy" if !v.destroyed => {
                v.destroyed = true;
                ops.push(view.delete_op(&version_key(path, n)));
            }
            _ => {}
        }
    }
    ops.push(view.put_op(&metadata_key(path), meta.encode()?, None));
    commit(view, guard, ops).await?;
    Ok(Response::no_content())
}

fn parse_versions(req: &Request) -> Result<Vec<u64>, LogicalError> {
    let missing = || LogicalError::invalid("no version number provided");
    let raw = req.data.get("versions").ok_or_else(missing)?;
    let items: Vec<serde_json::Value> = match raw {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::String(s) => s
            .split(',')
            .map(|p| serde_json::Value::String(p.trim().into()))
            .collect(),
        serde_json::Value::Number(_) => vec![raw.clone()],
        _ => {
            return Err(LogicalError::invalid(
                "'versions' must be a list of version numbers",
            ))
        }
    };
    let versions: Vec<u64> = items
        .iter()
        .map(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| LogicalError::invalid("'versions' must be a list of version numbers"))?;
    if versions.is_empty() {
        return Err(missing());
    }
    Ok(versions)
}
