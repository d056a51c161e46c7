//! `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/health`, `sys/leader`
//! (served without a token, also while sealed) and `sys/seal`.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{Family, SysFuture, SysRequest, VERSION};
use crate::core::{Core, CoreError};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::seal::SealError;

static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("sys/init", Ops::READ.and(Ops::WRITE)),
    PathSpec::unauthenticated("sys/seal-status", Ops::READ),
    PathSpec::unauthenticated("sys/unseal", Ops::WRITE),
    PathSpec::unauthenticated("sys/health", Ops::READ),
    PathSpec::unauthenticated("sys/leader", Ops::READ),
    PathSpec::new("sys/seal", Ops::WRITE),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, req) = (r.core, r.req);
        match (r.rest, req.operation) {
            ("init", Operation::Read) => Ok(Response::raw(
                200,
                json!({ "initialized": initialized(core).await? }),
            )),
            ("init", _) => init(core, req).await,
            ("seal-status", _) => Ok(Response::raw(200, seal_status(core).await?)),
            ("unseal", _) => unseal(core, req).await,
            ("health", _) => health(core, req).await,
            ("leader", _) => Ok(Response::raw(
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
            ("seal", _) => {
                r.caller()?;
                core.seal().await;
                Ok(Response::no_content())
            }
            _ => Err(r.no_handler()),
        }
    })
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
            "server_time_utc": core.now().secs(),
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
