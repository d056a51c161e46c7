//! `sys/rekey/{init,update,verify}` (what `bao operator rekey` calls) and the
//! `sys/rekey-recovery-key/*` stubs. Served without a token, as in Vault (the
//! current key shares authorise a rekey), unsealed only, audited like logins
//! with every value HMAC-ed (shares, nonces and the new shares never appear in
//! clear). Answers are bare documents, as Vault's. The logic is `seal::rekey`.

use base64::Engine as _;
use serde_json::{json, Value};

use super::{Family, SysFuture, SysRequest};
use crate::core::{audit, Core, CoreError};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::seal::rekey::{RekeyStatus, RekeyUpdate};

const RWD: Ops = Ops::READ.and(Ops::WRITE).and(Ops::DELETE);

static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated("sys/rekey/init", RWD),
    PathSpec::unauthenticated("sys/rekey/update", Ops::WRITE),
    PathSpec::unauthenticated("sys/rekey/verify", RWD),
    PathSpec::unauthenticated("sys/rekey-recovery-key/init", RWD),
    PathSpec::unauthenticated("sys/rekey-recovery-key/update", Ops::WRITE),
    PathSpec::unauthenticated("sys/rekey-recovery-key/verify", RWD),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let path = format!("sys/{}", r.rest);
        handle_path(r.core, r.req, &path)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

/// Whether `path` is one of these.
fn is_rekey_path(path: &str) -> bool {
    matches!(
        path,
        "sys/rekey/init"
            | "sys/rekey/update"
            | "sys/rekey/verify"
            | "sys/rekey-recovery-key/init"
            | "sys/rekey-recovery-key/update"
            | "sys/rekey-recovery-key/verify"
    )
}

/// Answers a rekey request, or `None` when `path` is not one.
async fn handle_path(
    core: &Core,
    req: &Request,
    path: &str,
) -> Result<Option<Response>, CoreError> {
    if !is_rekey_path(path) {
        return Ok(None);
    }
    let state = core.unsealed()?;
    let record = audit::record(&state, req, path, None).await;
    audit::request(&state, &record, None).await?;
    let result = Box::pin(serve(core, req, path)).await;
    audit::outcome(&state, &record, result).await.map(Some)
}

async fn serve(core: &Core, req: &Request, path: &str) -> Result<Response, CoreError> {
    if path.starts_with("sys/rekey-recovery-key/") {
        return Err(LogicalError::invalid(
            "there is no recovery key to rekey: recovery keys come with auto-unseal, which Coffer does not offer yet; rekey the unseal keys with sys/rekey (bao operator rekey)",
        )
        .into());
    }
    let f = Fields(&req.data);
    let seal = &core.seal;
    let barrier = &core.barrier;
    let doc = match (path, req.operation) {
        ("sys/rekey/init", Operation::Read) => body(&seal.rekey_status(barrier).await?),
        ("sys/rekey/init", op) if op.is_write() => {
            for (field, what) in [
                ("pgp_keys", "encrypting the new shares with PGP keys"),
                ("backup", "backing up the new shares"),
                ("require_verification", "rekey verification"),
            ] {
                if present(req.data.get(field)) {
                    return Err(LogicalError::invalid(format!(
                        "{field}: {what} is not supported; start the rekey without it"
                    ))
                    .into());
                }
            }
            let shares = f
                .u64("secret_shares")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'secret_shares'"))?;
            let threshold = f.u64("secret_threshold")?.ok_or_else(|| {
                LogicalError::invalid("missing required field 'secret_threshold'")
            })?;
            let status = seal.rekey_start(barrier, shares, threshold).await?;
            tracing::info!(shares, threshold, "rekey started");
            body(&status)
        }
        ("sys/rekey/init", Operation::Delete) => {
            let key = f.secret("key")?.filter(|k| !k.expose().is_empty());
            seal.rekey_cancel(barrier, key.as_ref().map(|k| k.expose())).await?;
            tracing::info!("rekey cancelled");
            return Ok(Response::no_content());
        }
        ("sys/rekey/update", op) if op.is_write() => {
            let key = f
                .secret("key")?
                .filter(|k| !k.expose().is_empty())
                .ok_or_else(|| {
                    LogicalError::invalid("'key' must be specified in request body as JSON")
                })?;
            let nonce = f.string("nonce")?.unwrap_or_default();
            if nonce.is_empty() {
                return Err(LogicalError::invalid("nonce is required").into());
            }
            match seal.rekey_update(barrier, key.expose(), &nonce).await? {
                RekeyUpdate::Progress(status) => body(&status),
                RekeyUpdate::Complete { status, shares } => {
                    tracing::info!(
                        shares = status.n,
                        threshold = status.t,
                        "rekeyed: new key shares issued, the old ones no longer work"
                    );
                    let hexes: Vec<String> =
                        shares.iter().map(|s| hex::encode(s.as_slice())).collect();
                    let b64: Vec<String> = shares
                        .iter()
                        .map(|s| base64::engine::general_purpose::STANDARD.encode(s.as_slice()))
                        .collect();
                    let mut doc = body(&status);
                    doc["complete"] = json!(true);
                    doc["keys"] = json!(hexes);
                    doc["keys_base64"] = json!(b64);
                    doc
                }
            }
        }
        ("sys/rekey/verify", _) => {
            return Err(LogicalError::invalid(
                "rekey verification is not supported: a rekey takes effect when the threshold of current shares is met (require_verification is refused at sys/rekey/init)",
            )
            .into())
        }
        _ => return Err(CoreError::UnsupportedOperation),
    };
    Ok(Response::raw(200, doc))
}

/// Whether an optional field asks for something (`false`, `null`, `""` and
/// `[]` do not, as the CLI sends them by default).
fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty() && s != "false",
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

fn body(s: &RekeyStatus) -> Value {
    json!({
        "started": s.started,
        "nonce": s.nonce,
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
        "required": s.required,
        "pgp_fingerprints": null,
        "backup": false,
        "verification_required": false,
        "verification_nonce": "",
        "complete": false,
    })
}
