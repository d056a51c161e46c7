//! `sys/mounts` and `sys/auth` (the secrets-engine and auth-method tables:
//! list, enable, read, tune, disable) and `sys/internal/ui/mounts`. Which
//! types can be mounted is the registry's answer, never a list here.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{Family, SysFuture, SysRequest};
use crate::core::{Core, CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::mounts::{mount_path_key, new_entry, MountConfig, AUTH_PATH, MOUNTS_PATH};

const R: Ops = Ops::READ;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/mounts", R),
    PathSpec::new("sys/mounts/*mount/tune", R.and(W)),
    PathSpec::new("sys/mounts/*mount", R.and(W).and(D)),
    PathSpec::new("sys/auth", R),
    PathSpec::new("sys/auth/*mount/tune", R.and(W)),
    PathSpec::new("sys/auth/*mount", R.and(W).and(D)),
    PathSpec::new("sys/internal/ui/mounts", R),
    PathSpec::new("sys/internal/ui/mounts/*mount", R),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, req, rest) = (r.core, r.req, r.rest);
        let state = r.state()?;
        match rest {
            "mounts" => {
                let mounts = state.mounts.read().await;
                let mut map: Map<String, Value> = mounts
                    .entries
                    .iter()
                    .map(|(p, e)| (p.clone(), e.to_json()))
                    .collect();
                map.insert("sys/".into(), system_mount_json());
                Ok(Response::data(Value::Object(map)).with_legacy_top_level())
            }
            "auth" => {
                let auth = state.auth.read().await;
                Ok(Response::data(Value::Object(
                    auth.entries
                        .iter()
                        .map(|(p, e)| (p.clone(), e.to_json()))
                        .collect(),
                ))
                .with_legacy_top_level())
            }
            "internal/ui/mounts" => {
                let mounts = state.mounts.read().await;
                let auth = state.auth.read().await;
                let secret: Map<String, Value> = mounts
                    .entries
                    .iter()
                    .map(|(p, e)| (p.clone(), e.to_json()))
                    .collect();
                let auth: Map<String, Value> = auth
                    .entries
                    .iter()
                    .map(|(p, e)| (p.clone(), e.to_json()))
                    .collect();
                Ok(Response::data(json!({ "secret": secret, "auth": auth })))
            }
            _ => {
                if let Some(p) = rest.strip_prefix("internal/ui/mounts/") {
                    let mounts = state.mounts.read().await;
                    let (entry, _) = mounts.route(p).ok_or(LogicalError::invalid(format!(
                        "no mount found at path \"{p}\""
                    )))?;
                    let mut doc = entry.to_json();
                    if let Value::Object(m) = &mut doc {
                        m.insert("path".into(), json!(entry.path));
                    }
                    Ok(Response::data(doc))
                } else if let Some(p) = rest.strip_prefix("mounts/") {
                    mounts_path(core, state, req, p).await
                } else if let Some(p) = rest.strip_prefix("auth/") {
                    auth_path(core, state, req, p).await
                } else {
                    Err(r.no_handler())
                }
            }
        }
    })
}

fn system_mount_json() -> Value {
    json!({
        "type": "system",
        "description": "system endpoints used for control, policy and debugging",
        "accessor": "system",
        "uuid": "",
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "options": null,
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
    })
}

fn config_from(f: &Fields<'_>, base: MountConfig) -> Result<MountConfig, LogicalError> {
    let mut c = base;
    let cfg = match f.0.get("config") {
        None | Some(Value::Null) => return Ok(c),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(LogicalError::invalid("'config' must be an object")),
    };
    let cf = Fields(cfg);
    if let Some(d) = cf.duration("default_lease_ttl")? {
        c.default_lease_ttl = d;
    }
    if let Some(m) = cf.duration("max_lease_ttl")? {
        c.max_lease_ttl = m;
    }
    if let Some(v) = cf.string("listing_visibility")? {
        c.listing_visibility = v;
    }
    Ok(c)
}

fn options_from(f: &Fields<'_>) -> Result<BTreeMap<String, String>, LogicalError> {
    Ok(f.map("options")?.unwrap_or_default())
}

async fn mounts_path(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    p: &str,
) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    let (raw_path, tune) = match p.strip_suffix("/tune") {
        Some(m) => (m, true),
        None => (p, false),
    };
    let path = mount_path_key(raw_path)?;
    let now = core.now();
    let ttl = core.config.ttl;
    if tune {
        let mut mounts = state.mounts.write().await;
        let entry = mounts
            .entries
            .get_mut(&path)
            .ok_or_else(|| LogicalError::invalid(format!("no mount at '{path}'")))?;
        return match req.operation {
            Operation::Read => Ok(Response::data(
                entry.tune_json(ttl.default_ttl, ttl.max_ttl),
            )),
            o if o.is_write() => {
                apply_tune(Arc::make_mut(entry), req)?;
                let opts = options_from(&f)?;
                if let Some(engine) = core.registry().secrets(&entry.kind) {
                    engine.check_tuned_options(&opts)?;
                }
                mounts.save(&core.barrier, MOUNTS_PATH).await?;
                Ok(Response::no_content())
            }
            _ => Err(CoreError::UnsupportedOperation),
        };
    }
    match req.operation {
        Operation::Read => {
            let mounts = state.mounts.read().await;
            let entry = mounts.entries.get(&path).ok_or(LogicalError::NotFound)?;
            Ok(Response::data(entry.to_json()))
        }
        o if o.is_write() => {
            let kind = f
                .string("type")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'type'"))?;
            let mut options = options_from(&f)?;
            let engine = core
                .registry()
                .secrets(&kind)
                .filter(|e| e.builtin_mount().is_none())
                .ok_or_else(|| {
                    LogicalError::invalid(format!(
                        "unknown or unsupported secrets engine type \"{kind}\""
                    ))
                })?;
            engine.prepare_options(&kind, &mut options)?;
            let kind = engine.kind();
            let config = config_from(&f, MountConfig::default())?;
            let description = f.string("description")?.unwrap_or_default();
            let entry = new_entry(path, kind, description, options, config, now)?;
            let mut mounts = state.mounts.write().await;
            let mut next = mounts.clone();
            next.insert(entry, true)?;
            next.save(&core.barrier, MOUNTS_PATH).await?;
            *mounts = next;
            Ok(Response::no_content())
        }
        Operation::Delete => {
            let mut mounts = state.mounts.write().await;
            let Some(entry) = mounts.entries.get(&path).cloned() else {
                return Ok(Response::no_content());
            };
            let builtin = core
                .registry()
                .secrets(&entry.kind)
                .and_then(|e| e.builtin_mount())
                .is_some_and(|(p, _)| p == entry.path);
            if builtin {
                return Err(LogicalError::invalid(format!(
                    "cannot unmount '{}': it is built in",
                    entry.path
                ))
                .into());
            }
            let mut next = mounts.clone();
            next.entries.remove(&path);
            next.save(&core.barrier, MOUNTS_PATH).await?;
            *mounts = next;
            drop(mounts);
            // The mount is gone from the table first, so nothing can write into
            // the prefix while it is being cleared.
            core.barrier.delete_prefix(&entry.storage_prefix()).await?;
            Ok(Response::no_content())
        }
        _ => Err(CoreError::UnsupportedOperation),
    }
}

/// A tune's TTLs, visibility and description (the fields come flat, not under
/// `config`), applied to a mount or auth method.
fn apply_tune(entry: &mut crate::mounts::MountEntry, req: &Request) -> Result<(), LogicalError> {
    let mut flat = req.data.clone();
    let nested: Map<String, Value> = flat
        .iter()
        .filter(|(k, _)| k.as_str() != "options" && k.as_str() != "description")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    flat.insert("config".into(), Value::Object(nested));
    entry.config = config_from(&Fields(&flat), entry.config.clone())?;
    if let Some(d) = Fields(&req.data).string("description")? {
        entry.description = d;
    }
    Ok(())
}

/// `sys/auth/<path>/tune`: the method's TTLs, visibility and description.
async fn auth_tune(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    path: &str,
) -> Result<Response, CoreError> {
    let ttl = core.config.ttl;
    let mut auth = state.auth.write().await;
    let entry = auth
        .entries
        .get(path)
        .ok_or_else(|| LogicalError::invalid(format!("no auth method at '{path}'")))?;
    if req.operation == Operation::Read {
        return Ok(Response::data(
            entry.tune_json(ttl.default_ttl, ttl.max_ttl),
        ));
    }
    let mut next = auth.clone();
    if let Some(e) = next.entries.get_mut(path) {
        apply_tune(Arc::make_mut(e), req)?;
    }
    next.save(&core.barrier, AUTH_PATH).await?;
    *auth = next;
    Ok(Response::no_content())
}

async fn auth_path(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    p: &str,
) -> Result<Response, CoreError> {
    if let Some(mount) = p.strip_suffix("/tune") {
        return auth_tune(core, state, req, &mount_path_key(mount)?).await;
    }
    let path = mount_path_key(p)?;
    match req.operation {
        Operation::Read => {
            let auth = state.auth.read().await;
            let entry = auth.entries.get(&path).ok_or(LogicalError::NotFound)?;
            Ok(Response::data(entry.to_json()))
        }
        o if o.is_write() => {
            let f = Fields(&req.data);
            let kind = f.string("type")?.unwrap_or_default();
            let method = core.registry().auth(&kind).ok_or_else(|| {
                LogicalError::invalid(format!(
                    "unknown or unsupported auth method type \"{kind}\""
                ))
            })?;
            let entry = new_entry(
                path,
                method.kind(),
                f.string("description")?.unwrap_or_default(),
                BTreeMap::new(),
                config_from(&f, MountConfig::default())?,
                core.now(),
            )?;
            let mut auth = state.auth.write().await;
            let mut next = auth.clone();
            next.insert(entry, false)?;
            next.save(&core.barrier, AUTH_PATH).await?;
            *auth = next;
            Ok(Response::no_content())
        }
        Operation::Delete if path == "token/" => {
            Err(LogicalError::invalid("the token auth method cannot be disabled").into())
        }
        Operation::Delete => {
            let mut auth = state.auth.write().await;
            let Some(entry) = auth.entries.get(&path).cloned() else {
                return Ok(Response::no_content());
            };
            let mut next = auth.clone();
            next.entries.remove(&path);
            next.save(&core.barrier, AUTH_PATH).await?;
            *auth = next;
            drop(auth);
            core.barrier.delete_prefix(&entry.storage_prefix()).await?;
            Ok(Response::no_content())
        }
        _ => Err(CoreError::UnsupportedOperation),
    }
}
