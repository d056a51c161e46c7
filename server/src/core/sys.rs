//! The `sys/` paths: init, seal and unseal, health, leader, mounts, auth methods,
//! key rotation. Answers have Vault's shapes (several are bare documents, not
//! the envelope, because that is what clients parse).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{Core, CoreError, Unsealed};
use crate::clock::rfc3339_secs;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::mounts::{mount_path_key, new_entry, MountConfig, AUTH_PATH, MOUNTS_PATH};
use crate::seal::SealError;
use crate::token::FoundToken;

/// Version reported in status answers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Paths that work without a token and while sealed. `None` = not one of them.
pub(super) async fn unauthenticated(
    core: &Core,
    req: &Request,
    path: &str,
) -> Result<Option<Response>, CoreError> {
    let op = req.operation;
    let resp = match path {
        "sys/init" => match op {
            Operation::Read => Some(Response::raw(
                200,
                json!({ "initialized": initialized(core).await? }),
            )),
            o if o.is_write() => Some(init(core, req).await?),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        "sys/seal-status" => match op {
            Operation::Read => Some(Response::raw(200, seal_status(core).await?)),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        "sys/unseal" => match op {
            o if o.is_write() => Some(unseal(core, req).await?),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        "sys/health" => match op {
            Operation::Read => Some(health(core, req).await?),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        "sys/metrics" if req.unauthenticated_metrics => match op {
            Operation::Read => Some(metrics(core, req).await?),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        "sys/leader" => match op {
            Operation::Read => Some(Response::raw(
                200,
                json!({
                    "ha_enabled": false,
                    "is_self": true,
                    "active_time": "0001-01-01T00:00:00Z",
                    "leader_address": "",
                    "leader_cluster_address": "",
                    "performance_standby": false,
                    "performance_standby_last_remote_wal": 0,
                }),
            )),
            _ => return Err(CoreError::UnsupportedOperation),
        },
        _ => None,
    };
    Ok(resp)
}

async fn initialized(core: &Core) -> Result<bool, CoreError> {
    Ok(core.seal.config(&core.barrier).await?.is_some())
}

async fn init(core: &Core, req: &Request) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    for unsupported in ["pgp_keys", "root_token_pgp_key"] {
        let present = match req.data.get(unsupported) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if present {
            return Err(LogicalError::invalid(format!("{unsupported} is not supported")).into());
        }
    }
    let shares = f
        .u64("secret_shares")?
        .ok_or_else(|| LogicalError::invalid("missing required field 'secret_shares'"))?;
    let threshold = f
        .u64("secret_threshold")?
        .ok_or_else(|| LogicalError::invalid("missing required field 'secret_threshold'"))?;
    let out = core.init(shares, threshold).await.map_err(|e| match e {
        CoreError::Seal(SealError::AlreadyInitialized) => {
            CoreError::Logical(LogicalError::invalid("Coffer is already initialized"))
        }
        other => other,
    })?;
    let keys: Vec<String> = out.keys.iter().map(|k| hex::encode(k.as_slice())).collect();
    let keys_b64: Vec<String> = out
        .keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice()))
        .collect();
    Ok(Response::raw(
        200,
        json!({ "keys": keys, "keys_base64": keys_b64, "root_token": out.root_token.as_str() }),
    ))
}

async fn seal_status(core: &Core) -> Result<Value, CoreError> {
    let s = core.seal.status(&core.barrier).await?;
    Ok(json!({
        "type": "shamir",
        "initialized": s.initialized,
        "sealed": core.is_sealed(),
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
        "nonce": s.nonce,
        "version": VERSION,
        "build_date": "",
        "migration": false,
        "recovery_seal": false,
        "storage_type": core.barrier.storage().kind(),
        "cluster_name": if core.is_sealed() { "" } else { core.config.cluster_name.as_str() },
        "cluster_id": if core.is_sealed() { "" } else { s.cluster_id.as_str() },
        "ha_enabled": false,
    }))
}

async fn unseal(core: &Core, req: &Request) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    if f.bool("reset")?.unwrap_or(false) {
        if initialized(core).await? && !core.is_sealed() {
            return Err(SealError::AlreadyUnsealed.into());
        }
        core.unseal_reset();
        return Ok(Response::raw(200, seal_status(core).await?));
    }
    let key = f.string("key")?.filter(|k| !k.is_empty()).ok_or_else(|| {
        LogicalError::invalid(
            "'key' must be specified in request body as JSON, or 'reset' set to true",
        )
    })?;
    let key = zeroize::Zeroizing::new(key);
    core.unseal(&key).await.map_err(|e| match e {
        CoreError::Seal(SealError::NotInitialized) => {
            CoreError::Logical(LogicalError::invalid("Coffer is not initialized"))
        }
        CoreError::Seal(
            s @ (SealError::MalformedKey | SealError::WrongKey | SealError::AlreadyUnsealed),
        ) => CoreError::Logical(LogicalError::invalid(s.to_string())),
        other => other,
    })?;
    Ok(Response::raw(200, seal_status(core).await?))
}

async fn health(core: &Core, req: &Request) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    let code = |name: &str, default: u16| -> Result<u16, CoreError> {
        match f.u64(name)? {
            None => Ok(default),
            Some(c) if (100..=599).contains(&c) => Ok(c as u16),
            Some(_) => {
                Err(LogicalError::invalid(format!("invalid status code for '{name}'")).into())
            }
        }
    };
    let seal = core.seal.status(&core.barrier).await?;
    let init = seal.initialized;
    let sealed = core.is_sealed();
    let status = if !init {
        code("uninitcode", 501)?
    } else if sealed {
        code("sealedcode", 503)?
    } else {
        code("activecode", 200)?
    };
    Ok(Response::raw(
        status,
        json!({
            "initialized": init,
            "sealed": sealed,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": core.now(),
            "version": VERSION,
            "cluster_name": core.config.cluster_name,
            "cluster_id": if sealed { "" } else { seal.cluster_id.as_str() },
            // Not in Vault: whether each audit device takes writes in time.
            "audit_devices": core
                .audit_health()
                .into_iter()
                .map(|(path, ok)| (path, json!(if ok { "healthy" } else { "unhealthy" })))
                .collect::<Map<String, Value>>(),
        }),
    ))
}

/// `sys/` paths that need a token and an unsealed node.
pub(super) async fn authenticated(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    path: &str,
    caller: &FoundToken,
    now: i64,
) -> Result<Response, CoreError> {
    let op = req.operation;
    let rest = path.strip_prefix("sys/").unwrap_or("");
    let resp = match rest {
        "seal" if op.is_write() => {
            core.seal().await;
            Response::no_content()
        }
        "mounts" if op == Operation::Read => {
            let mounts = state.mounts.read().await;
            let mut map: Map<String, Value> = mounts
                .entries
                .iter()
                .map(|(p, e)| (p.clone(), e.to_json()))
                .collect();
            map.insert("sys/".into(), system_mount_json());
            Response::data(Value::Object(map)).with_legacy_top_level()
        }
        "auth" if op == Operation::Read => {
            let auth = state.auth.read().await;
            Response::data(Value::Object(
                auth.entries
                    .iter()
                    .map(|(p, e)| (p.clone(), e.to_json()))
                    .collect(),
            ))
            .with_legacy_top_level()
        }
        "metrics" if op == Operation::Read => metrics(core, req).await?,
        "rotate" | "rotate/keyring" if op.is_write() => {
            core.barrier.rotate(core.now()).await?;
            Response::no_content()
        }
        "key-status" if op == Operation::Read => {
            let s = core.barrier.key_status()?;
            Response::data(
                json!({ "term": s.term, "install_time": rfc3339_secs(s.install_time), "encryptions": 0 }),
            )
            .with_legacy_top_level()
        }
        "internal/ui/mounts" if op == Operation::Read => {
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
            Response::data(json!({ "secret": secret, "auth": auth }))
        }
        _ => {
            if let Some(p) = rest.strip_prefix("internal/ui/mounts/") {
                if op != Operation::Read {
                    return Err(CoreError::UnsupportedOperation);
                }
                let mounts = state.mounts.read().await;
                let (entry, _) = mounts.route(p).ok_or(LogicalError::invalid(format!(
                    "no mount found at path \"{p}\""
                )))?;
                let mut doc = entry.to_json();
                if let Value::Object(m) = &mut doc {
                    m.insert("path".into(), json!(entry.path));
                }
                Response::data(doc)
            } else if let Some(resp) = locked_users_paths(state, req, rest, now).await? {
                resp
            } else if let Some(resp) = audit_paths(state, req, rest).await? {
                resp
            } else if let Some(resp) = policy_paths(state, req, rest).await? {
                resp
            } else if let Some(resp) = capabilities_paths(state, req, rest, caller, now).await? {
                resp
            } else if let Some(p) = rest.strip_prefix("mounts/") {
                mounts_path(core, state, req, p).await?
            } else if let Some(p) = rest.strip_prefix("auth/") {
                auth_path(core, state, req, p).await?
            } else if matches!(
                rest,
                "seal"
                    | "mounts"
                    | "auth"
                    | "rotate"
                    | "rotate/keyring"
                    | "key-status"
                    | "internal/ui/mounts"
            ) {
                return Err(CoreError::UnsupportedOperation);
            } else {
                return Err(CoreError::NoHandler(path.to_owned()));
            }
        }
    };
    Ok(with_system(resp))
}

fn with_system(mut resp: Response) -> Response {
    resp.mount_type = Some("system".into());
    resp
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
            let options = match f.0.get("options") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                        _ => Err(LogicalError::invalid(format!(
                            "option \"{k}\" must be a string"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(LogicalError::invalid("'options' must be an object").into()),
            };
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

fn options_from(f: &Fields<'_>) -> Result<BTreeMap<String, String>, LogicalError> {
    match f.0.get("options") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                _ => Err(LogicalError::invalid("'options' values must be strings")),
            })
            .collect(),
        Some(_) => Err(LogicalError::invalid("'options' must be an object")),
    }
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
                let mut flat = req.data.clone();
                let nested: Map<String, Value> = flat
                    .iter()
                    .filter(|(k, _)| k.as_str() != "options" && k.as_str() != "description")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                flat.insert("config".into(), Value::Object(nested));
                entry.config = config_from(&Fields(&flat), entry.config.clone())?;
                if let Some(d) = f.string("description")? {
                    entry.description = d;
                }
                let opts = options_from(&f)?;
                if let Some(v) = opts.get("version") {
                    if entry.kind == "kv" && v != "2" {
                        return Err(LogicalError::invalid("only KV version 2 is supported").into());
                    }
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
            let kind = match kind.as_str() {
                "kv-v2" => {
                    options.insert("version".into(), "2".into());
                    "kv"
                }
                "kv" => {
                    match options.get("version").map(String::as_str) {
                        Some("2") => {}
                        Some("1") | None => {
                            return Err(LogicalError::invalid(
                                "KV version 1 is not supported; enable kv with options version=2 (or type kv-v2)",
                            )
                            .into())
                        }
                        Some(_) => return Err(LogicalError::invalid("invalid KV version").into()),
                    }
                    "kv"
                }
                other => {
                    return Err(LogicalError::invalid(format!(
                        "unknown or unsupported secrets engine type \"{other}\""
                    ))
                    .into())
                }
            };
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

async fn auth_path(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    p: &str,
) -> Result<Response, CoreError> {
    let path = mount_path_key(p.strip_suffix("/tune").unwrap_or(p))?;
    match req.operation {
        Operation::Read => {
            let auth = state.auth.read().await;
            let entry = auth.entries.get(&path).ok_or(LogicalError::NotFound)?;
            Ok(Response::data(entry.to_json()))
        }
        o if o.is_write() => {
            let f = Fields(&req.data);
            let kind = f.string("type")?.unwrap_or_default();
            if kind != "userpass" {
                return Err(LogicalError::invalid(format!(
                    "unknown or unsupported auth method type \"{kind}\""
                ))
                .into());
            }
            let entry = new_entry(
                path,
                "userpass",
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

/// `sys/locked-users` (GET) and `sys/locked-users/<mount accessor>/unlock/<name>`.
async fn locked_users_paths(
    state: &Unsealed,
    req: &Request,
    rest: &str,
    now: i64,
) -> Result<Option<Response>, CoreError> {
    if rest == "locked-users" {
        if req.operation != Operation::Read {
            return Err(CoreError::UnsupportedOperation);
        }
        let auth = state.auth.read().await.clone();
        let mut mounts = Vec::new();
        let mut total = 0usize;
        for entry in auth.entries.values().filter(|e| e.kind == "userpass") {
            let view = crate::barrier::View::new(state.barrier.clone(), entry.storage_prefix());
            let names = crate::auth::userpass::locked_users(&view, now).await?;
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
    let entry = auth
        .entries
        .values()
        .find(|e| e.accessor == accessor && e.kind == "userpass")
        .ok_or_else(|| {
            LogicalError::invalid(format!("no userpass mount with accessor \"{accessor}\""))
        })?;
    let view = crate::barrier::View::new(state.barrier.clone(), entry.storage_prefix());
    crate::auth::userpass::unlock(&view, name).await?;
    Ok(Some(Response::no_content()))
}

/// `sys/policies/acl[/<name>]` and the legacy `sys/policy[/<name>]`.
async fn policy_paths(
    state: &Unsealed,
    req: &Request,
    rest: &str,
) -> Result<Option<Response>, CoreError> {
    let op = req.operation;
    let store = &state.policies;
    let (legacy, name) = match rest {
        "policies/acl" | "policies/acl/" => (false, None),
        "policy" | "policy/" => (true, None),
        r => match r
            .strip_prefix("policies/acl/")
            .map(|n| (false, n))
            .or_else(|| r.strip_prefix("policy/").map(|n| (true, n)))
        {
            Some((legacy, n)) => (legacy, Some(n)),
            None => return Ok(None),
        },
    };
    let resp = match (name, op) {
        (None, Operation::List) => Response::list(store.names())?,
        (None, Operation::Read) if legacy => {
            let names = store.names();
            Response::data(json!({ "policies": names, "keys": names })).with_legacy_top_level()
        }
        (None, _) => return Err(CoreError::UnsupportedOperation),
        (Some(name), Operation::Read) => {
            // Already folded by the core (canonical.rs), like every name here.
            let text = if name == "root" {
                String::new()
            } else {
                store.get(name).ok_or(LogicalError::NotFound)?.raw.clone()
            };
            if legacy {
                Response::data(json!({ "name": name, "rules": text })).with_legacy_top_level()
            } else {
                Response::data(json!({ "name": name, "policy": text }))
            }
        }
        (Some(name), o) if o.is_write() => {
            let f = Fields(&req.data);
            let text = f
                .string("policy")?
                .or(f.string("rules")?)
                .ok_or_else(|| LogicalError::invalid("missing required field 'policy'"))?;
            store.put(name, &decode_policy_text(&text)).await?;
            Response::no_content()
        }
        (Some(name), Operation::Delete) => {
            store.delete(name).await?;
            Response::no_content()
        }
        _ => return Err(CoreError::UnsupportedOperation),
    };
    Ok(Some(resp))
}

/// Vault accepts a policy body as plain HCL or as base64 of it.
fn decode_policy_text(text: &str) -> String {
    if crate::policy::parse_policy("probe", text).is_ok() {
        return text.to_owned();
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|decoded| crate::policy::parse_policy("probe", decoded).is_ok())
        .unwrap_or_else(|| text.to_owned())
}

/// `sys/capabilities-self`, `sys/capabilities` and `sys/capabilities-accessor`:
/// exactly what the ACL decides for each path.
async fn capabilities_paths(
    state: &Unsealed,
    req: &Request,
    rest: &str,
    caller: &FoundToken,
    now: i64,
) -> Result<Option<Response>, CoreError> {
    if !matches!(
        rest,
        "capabilities-self" | "capabilities" | "capabilities-accessor"
    ) {
        return Ok(None);
    }
    if !req.operation.is_write() {
        return Err(CoreError::UnsupportedOperation);
    }
    let f = Fields(&req.data);
    let subject = match rest {
        "capabilities-self" => caller.clone(),
        "capabilities" => {
            let token = f
                .string("token")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'token'"))?;
            state
                .tokens
                .lookup(&token, now)
                .await?
                .ok_or_else(|| LogicalError::invalid("invalid token"))?
        }
        _ => {
            let accessor = f
                .string("accessor")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'accessor'"))?;
            state
                .tokens
                .lookup_accessor(&accessor, now)
                .await?
                .ok_or_else(|| LogicalError::invalid("invalid accessor"))?
        }
    };
    let mut paths = f.string_list("paths")?.unwrap_or_default();
    if let Some(p) = f.string("path")? {
        paths.push(p);
    }
    if paths.is_empty() {
        return Err(LogicalError::invalid("missing required field 'paths'").into());
    }
    let acl = state
        .policies
        .acl(&subject.entry.policies, subject.entry.entity.as_ref());
    let mut data = Map::new();
    let mut all: Vec<&str> = Vec::new();
    let auth = state.auth.read().await.clone();
    for p in &paths {
        // The answer is about the path a request would be decided on: its
        // canonical form. A spelling a request may not use gets nothing.
        let names = match super::canonical::canonical_path(p.trim_start_matches('/'), Some(&auth)) {
            Ok(path) => acl.decide(&path, now).names(),
            Err(_) => vec!["deny"],
        };
        for n in &names {
            if !all.contains(n) {
                all.push(n);
            }
        }
        data.insert(p.clone(), json!(names));
    }
    if paths.len() == 1 {
        data.insert("capabilities".into(), json!(all));
    }
    Ok(Some(
        Response::data(Value::Object(data)).with_legacy_top_level(),
    ))
}

/// `sys/metrics?format=prometheus`.
async fn metrics(core: &Core, req: &Request) -> Result<Response, CoreError> {
    match Fields(&req.data).string("format")?.as_deref() {
        Some("prometheus") => Ok(Response {
            status: 200,
            body: crate::logical::ResponseBody::Text(core.metrics_text().await),
            mount_type: None,
            legacy_top_level: false,
        }),
        _ => Err(LogicalError::invalid("only format=prometheus is supported").into()),
    }
}
