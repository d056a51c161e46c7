//! `metadata/<path>`: read, write, merge-patch and delete a secret's metadata, and
//! LIST the keys below a prefix (paginated with `after` and `limit`).

use crate::clock::UnixTime;
use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{check_custom_metadata, commit, metadata_key, version_key, KeyMetadata};
use super::valid_path;
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// Keys fetched from storage per round trip while listing.
const LIST_PAGE: u32 = 512;
/// Upper bound on keys a single LIST returns without an explicit `limit`.
const LIST_MAX: usize = 100_000;

pub(super) async fn handle(
    view: &View,
    req: &Request,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if req.operation == Operation::List {
        let prefix = valid_path(path, true)?;
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        let keys = list_children(view, &prefix, req.list_after.as_deref(), req.list_limit).await?;
        return Response::list(keys);
    }
    let path = valid_path(path, false)?;
    match req.operation {
        Operation::Read => {
            let meta = KeyMetadata::load(view, path)
                .await?
                .ok_or(LogicalError::NotFound)?;
            Ok(Response::data(meta.to_json()))
        }
        Operation::Create | Operation::Update => {
            let (meta, guard) = KeyMetadata::load_guarded(view, path).await?;
            let mut meta = meta.unwrap_or_else(|| KeyMetadata::new(now));
            apply_fields(&mut meta, &req.data, false)?;
            meta.updated_time = now.nanos();
            let op = view.put_op(&metadata_key(path), meta.encode()?, None);
            commit(view, guard, vec![op]).await?;
            Ok(Response::no_content())
        }
        Operation::Patch => {
            let ct = req
                .content_type
                .as_deref()
                .and_then(|c| c.split(';').next())
                .map(str::trim);
            if !ct.is_some_and(|c| c.eq_ignore_ascii_case("application/merge-patch+json")) {
                return Err(LogicalError::UnsupportedMediaType(
                    "PATCH requires the Content-Type application/merge-patch+json".into(),
                ));
            }
            let (meta, guard) = KeyMetadata::load_guarded(view, path).await?;
            let mut meta = meta.ok_or(LogicalError::NotFound)?;
            apply_fields(&mut meta, &req.data, true)?;
            meta.updated_time = now.nanos();
            let op = view.put_op(&metadata_key(path), meta.encode()?, None);
            commit(view, guard, vec![op]).await?;
            Ok(Response::no_content())
        }
        Operation::Delete => {
            if let (Some(meta), guard) = KeyMetadata::load_guarded(view, path).await? {
                let mut ops: Vec<_> = meta
                    .versions
                    .keys()
                    .map(|v| view.delete_op(&version_key(path, *v)))
                    .collect();
                ops.push(view.delete_op(&metadata_key(path)));
                commit(view, guard, ops).await?;
            }
            Ok(Response::no_content())
        }
        Operation::List => Err(LogicalError::UnsupportedOperation),
    }
}

fn apply_fields(
    meta: &mut KeyMetadata,
    data: &serde_json::Map<String, Value>,
    patch: bool,
) -> Result<(), LogicalError> {
    let f = Fields(data);
    if let Some(v) = f.u64("max_versions")? {
        meta.max_versions = v;
    }
    if let Some(v) = f.bool("cas_required")? {
        meta.cas_required = v;
    }
    if let Some(v) = f.duration("delete_version_after")? {
        meta.delete_version_after = v;
    }
    match data.get("custom_metadata") {
        None => {}
        Some(Value::Null) if !patch => meta.custom_metadata.clear(),
        Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            let mut next: BTreeMap<String, String> = if patch {
                meta.custom_metadata.clone()
            } else {
                BTreeMap::new()
            };
            for (k, v) in m {
                match v {
                    Value::String(s) => {
                        next.insert(k.clone(), s.clone());
                    }
                    Value::Null if patch => {
                        next.remove(k);
                    }
                    _ => {
                        return Err(LogicalError::invalid(
                            "custom_metadata values must be strings",
                        ))
                    }
                }
            }
            check_custom_metadata(&next)?;
            meta.custom_metadata = next;
        }
        // The `k=v` string and list forms (`custom_metadata=team=payments`):
        // a patch adds the pairs, a write replaces the map.
        Some(_) => {
            let pairs = f.map("custom_metadata")?.unwrap_or_default();
            let mut next = if patch {
                meta.custom_metadata.clone()
            } else {
                BTreeMap::new()
            };
            next.extend(pairs);
            check_custom_metadata(&next)?;
            meta.custom_metadata = next;
        }
    }
    Ok(())
}

/// The immediate children of `prefix` (sub-folders end in `/`), sorted, strictly
/// after `after`, at most `limit`. Skips whole sub-trees in one query each.
async fn list_children(
    view: &View,
    prefix: &str,
    after: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<String>, LogicalError> {
    let base = metadata_key(prefix);
    let max = limit.map_or(LIST_MAX, |l| l as usize).min(LIST_MAX);
    let mut out: Vec<String> = Vec::new();
    let mut cursor: Option<String> = after.map(|a| format!("{base}{a}"));
    while out.len() < max {
        let page = view.list(&base, cursor.as_deref(), LIST_PAGE).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        let mut jump: Option<String> = None;
        for key in &page {
            let Some(rel) = key.strip_prefix(&base) else {
                continue;
            };
            let child = match rel.find('/') {
                Some(i) => &rel[..=i],
                None => rel,
            };
            if after.is_some_and(|a| child <= a) || out.last().is_some_and(|l| l == child) {
                continue;
            }
            out.push(child.to_owned());
            if out.len() >= max {
                break;
            }
            if child.ends_with('/') {
                jump = Some(format!("{base}{child}\u{10FFFF}"));
            }
        }
        cursor = match jump {
            // The page ended inside a sub-folder: skip the rest of it in one step.
            Some(j) if last.starts_with(j.trim_end_matches('\u{10FFFF}')) => Some(j),
            _ => Some(last),
        };
        if page.len() < LIST_PAGE as usize {
            break;
        }
    }
    Ok(out)
}
