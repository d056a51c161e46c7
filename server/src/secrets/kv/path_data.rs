//! `data/<path>` (read, write with check-and-set, merge-patch, soft delete) and
//! `subkeys/<path>`.

use crate::clock::UnixTime;
use serde_json::{json, Map, Value};

use super::model::{
    commit, metadata_key, version_key, KeyMetadata, KvConfig, VersionMeta, DEFAULT_MAX_VERSIONS,
};
use crate::barrier::{BarrierError, View};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

pub(super) async fn handle(
    view: &View,
    req: &Request,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    match req.operation {
        Operation::Read => read(view, req, path, now).await,
        Operation::Create | Operation::Update => write(view, req, path, now, None).await,
        Operation::Patch => {
            if !is_merge_patch(req.content_type.as_deref()) {
                return Err(LogicalError::UnsupportedMediaType(
                    "PATCH requires the Content-Type application/merge-patch+json".into(),
                ));
            }
            let (meta, _) = KeyMetadata::load_guarded(view, path).await?;
            let meta = meta.ok_or(LogicalError::NotFound)?;
            let current = meta
                .versions
                .get(&meta.current_version)
                .filter(|v| !v.destroyed && !v.is_deleted(now))
                .ok_or(LogicalError::NotFound)?;
            let _ = current;
            let existing = load_data(view, path, meta.current_version)
                .await?
                .ok_or(LogicalError::NotFound)?;
            write(view, req, path, now, Some((meta.current_version, existing))).await
        }
        Operation::Delete => {
            let (meta, guard) = KeyMetadata::load_guarded(view, path).await?;
            let Some(mut meta) = meta else {
                return Ok(Response::no_content());
            };
            let current = meta.current_version;
            if let Some(v) = meta.versions.get_mut(&current) {
                if !v.destroyed && !v.is_deleted(now) {
                    v.deletion_time = Some(now.nanos());
                    let op = view.put_op(&metadata_key(path), meta.encode()?, None);
                    commit(view, guard, vec![op]).await?;
                }
            }
            Ok(Response::no_content())
        }
        Operation::List => Err(LogicalError::UnsupportedOperation),
    }
}

fn is_merge_patch(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| {
            c.trim()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
}

async fn load_data(
    view: &View,
    path: &str,
    version: u64,
) -> Result<Option<Map<String, Value>>, LogicalError> {
    match view.get(&version_key(path, version)).await? {
        None => Ok(None),
        Some(raw) => {
            let stored: Value = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
            match stored.get("data") {
                Some(Value::Object(m)) => Ok(Some(m.clone())),
                _ => Err(LogicalError::Corrupt),
            }
        }
    }
}

/// Resolves `?version=` (0 or absent = current) to a tracked version.
fn requested_version(req: &Request, meta: &KeyMetadata) -> Result<u64, LogicalError> {
    match Fields(&req.data).u64("version")? {
        None | Some(0) => Ok(meta.current_version),
        Some(v) => Ok(v),
    }
}

async fn read(
    view: &View,
    req: &Request,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let meta = KeyMetadata::load(view, path)
        .await?
        .ok_or(LogicalError::NotFound)?;
    let version = requested_version(req, &meta)?;
    let vmeta = meta.versions.get(&version).ok_or(LogicalError::NotFound)?;
    let metadata = vmeta.to_json(version, &meta.custom_metadata);
    if vmeta.destroyed || vmeta.is_deleted(now) {
        // Vault answers 404 but still shows the version's metadata, and clients
        // use it to tell "deleted" from "never existed".
        return Ok(Response::data(json!({ "data": null, "metadata": metadata })).with_status(404));
    }
    let data = load_data(view, path, version)
        .await?
        .ok_or(LogicalError::NotFound)?;
    Ok(Response::data(
        json!({ "data": data, "metadata": metadata }),
    ))
}

async fn write(
    view: &View,
    req: &Request,
    path: &str,
    now: UnixTime,
    patch_base: Option<(u64, Map<String, Value>)>,
) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let incoming = match req.data.get("data") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => return Err(LogicalError::invalid("no data provided")),
        Some(_) => return Err(LogicalError::invalid("'data' must be a JSON object")),
    };
    let cas = match req.data.get("options") {
        None | Some(Value::Null) => None,
        Some(Value::Object(opts)) => Fields(opts).u64("cas")?,
        Some(_) => return Err(LogicalError::invalid("'options' must be a JSON object")),
    };
    let _ = f;
    let config = KvConfig::load(view).await?;
    let (meta, guard) = KeyMetadata::load_guarded(view, path).await?;
    let mut meta = meta.unwrap_or_else(|| KeyMetadata::new(now));
    if patch_base
        .as_ref()
        .is_some_and(|(base, _)| *base != meta.current_version)
    {
        // A version was written since the patch's base was read: patch again.
        return Err(BarrierError::Contended.into());
    }
    if let Some(cas) = cas {
        if cas != meta.current_version {
            return Err(LogicalError::invalid(
                "check-and-set parameter did not match the current version",
            ));
        }
    } else if meta.cas_required || config.cas_required {
        return Err(LogicalError::invalid(
            "check-and-set parameter required for this call",
        ));
    }
    let data = match patch_base {
        None => incoming,
        Some((_, mut base)) => {
            merge_patch(&mut base, &incoming);
            base
        }
    };
    let version = meta.current_version + 1;
    let delete_after = if meta.delete_version_after > 0 {
        meta.delete_version_after
    } else {
        config.delete_version_after
    };
    let vmeta = VersionMeta {
        created_time: now.nanos(),
        deletion_time: (delete_after > 0)
            .then(|| now.nanos() + i128::from(delete_after) * 1_000_000_000),
        destroyed: false,
    };
    meta.versions.insert(version, vmeta.clone());
    meta.current_version = version;
    meta.updated_time = now.nanos();
    let max = [meta.max_versions, config.max_versions, DEFAULT_MAX_VERSIONS]
        .into_iter()
        .find(|m| *m > 0)
        .unwrap_or(DEFAULT_MAX_VERSIONS);
    let mut ops = Vec::new();
    while meta.versions.len() as u64 > max {
        let Some((&oldest, _)) = meta.versions.iter().next() else {
            break;
        };
        meta.versions.remove(&oldest);
        ops.push(view.delete_op(&version_key(path, oldest)));
        // As Vault: 0 until versions are trimmed, then the lowest kept.
        meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(version);
    }
    let stored = serde_json::to_vec(&json!({ "data": data })).map_err(|_| LogicalError::Corrupt)?;
    ops.push(view.put_op(&version_key(path, version), stored, None));
    ops.push(view.put_op(&metadata_key(path), meta.encode()?, None));
    commit(view, guard, ops).await?;
    Ok(Response::data(
        vmeta.to_json(version, &meta.custom_metadata),
    ))
}

/// RFC 7396 JSON merge patch: null removes, objects merge, anything else replaces.
pub(super) fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(t) = entry {
                    merge_patch(t, p);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

/// `subkeys/<path>`: the shape of a version's data with every leaf as null.
pub(super) async fn subkeys(
    view: &View,
    req: &Request,
    path: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if req.operation != Operation::Read {
        return Err(LogicalError::UnsupportedOperation);
    }
    let meta = KeyMetadata::load(view, path)
        .await?
        .ok_or(LogicalError::NotFound)?;
    let version = requested_version(req, &meta)?;
    let depth = Fields(&req.data).u64("depth")?.unwrap_or(0);
    let vmeta = meta.versions.get(&version).ok_or(LogicalError::NotFound)?;
    let metadata = vmeta.to_json(version, &meta.custom_metadata);
    if vmeta.destroyed || vmeta.is_deleted(now) {
        return Ok(
            Response::data(json!({ "subkeys": null, "metadata": metadata })).with_status(404),
        );
    }
    let data = load_data(view, path, version)
        .await?
        .ok_or(LogicalError::NotFound)?;
    Ok(Response::data(
        json!({ "subkeys": shape(&data, depth, 1), "metadata": metadata }),
    ))
}

fn shape(map: &Map<String, Value>, max_depth: u64, depth: u64) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| {
                let inner = match v {
                    Value::Object(m) if max_depth == 0 || depth < max_depth => {
                        shape(m, max_depth, depth + 1)
                    }
                    _ => Value::Null,
                };
                (k.clone(), inner)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}})
            .as_object()
            .cloned()
            .unwrap();
        let patch = json!({"a": "z", "c": {"f": null}, "n": {"x": 1}})
            .as_object()
            .cloned()
            .unwrap();
        merge_patch(&mut target, &patch);
        assert_eq!(
            Value::Object(target),
            json!({"a": "z", "c": {"d": "e"}, "n": {"x": 1}})
        );
    }

    #[test]
    fn merge_patch_content_type_is_strict() {
        assert!(is_merge_patch(Some("application/merge-patch+json")));
        assert!(is_merge_patch(Some(
            "application/merge-patch+json; charset=utf-8"
        )));
        assert!(!is_merge_patch(Some("application/json")));
        assert!(!is_merge_patch(None));
    }

    #[test]
    fn subkeys_shape_respects_depth() {
        let data = json!({"a": {"b": {"c": 1}}, "d": 2})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(
            shape(&data, 0, 1),
            json!({"a": {"b": {"c": null}}, "d": null})
        );
        assert_eq!(shape(&data, 1, 1), json!({"a": null, "d": null}));
    }
}
