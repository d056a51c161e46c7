//! `sys/generate-root/{attempt,update}` (Vault's paths, bare JSON answers) and
//! `sys/generate-root-token/{attempt,update}` (the paths OpenBao 2.6+ and its
//! `bao operator generate-root` use, answers in the envelope). Both are served
//! without a token, as in Vault: key shares authorise them. They need the node
//! unsealed, and are audited like logins (a request and an outcome entry, every
//! value HMAC-ed: the share, the OTP, the nonce and the encoded token never
//! appear in clear). The logic is `seal::generate_root`.

use serde_json::{json, Value};

use super::{Family, SysFuture, SysRequest};
use crate::core::{audit, Core, CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::seal::generate_root::{encode_token, AttemptStatus, Update, OTP_LENGTH};

static PATHS: &[PathSpec] = &[
    PathSpec::unauthenticated(
        "sys/generate-root/attempt",
        Ops::READ.and(Ops::WRITE).and(Ops::DELETE),
    ),
    PathSpec::unauthenticated("sys/generate-root/update", Ops::WRITE),
    PathSpec::unauthenticated(
        "sys/generate-root-token/attempt",
        Ops::READ.and(Ops::WRITE).and(Ops::DELETE),
    ),
    PathSpec::unauthenticated("sys/generate-root-token/update", Ops::WRITE),
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// `sys/generate-root/*`: a bare document
    Vault,
    /// `sys/generate-root-token/*`: the envelope
    OpenBao,
}

fn flavour(path: &str) -> Option<(Flavour, &str)> {
    if let Some(rest) = path.strip_prefix("sys/generate-root/") {
        return matches!(rest, "attempt" | "update").then_some((Flavour::Vault, rest));
    }
    let rest = path.strip_prefix("sys/generate-root-token/")?;
    matches!(rest, "attempt" | "update").then_some((Flavour::OpenBao, rest))
}

/// Answers a generate-root request, or `None` when `path` is not one.
async fn handle_path(
    core: &Core,
    req: &Request,
    path: &str,
) -> Result<Option<Response>, CoreError> {
    let Some((flavour, step)) = flavour(path) else {
        return Ok(None);
    };
    let state = core.unsealed()?;
    let record = audit::record(&state, req, path, None).await;
    audit::request(&state, &record, None).await?;
    let result = Box::pin(serve(core, &state, req, flavour, step)).await;
    audit::outcome(&state, &record, result).await.map(Some)
}

async fn serve(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    flavour: Flavour,
    step: &str,
) -> Result<Response, CoreError> {
    let f = Fields(&req.data);
    let seal = &core.seal;
    let barrier = &core.barrier;
    let doc = match (step, req.operation) {
        ("attempt", Operation::Read) => body(&seal.generate_root_status(barrier).await?),
        ("attempt", op) if op.is_write() => {
            let pgp = f.string("pgp_key")?.unwrap_or_default();
            if !pgp.trim().is_empty() {
                return Err(LogicalError::invalid(
                    "pgp_key is not supported; use an OTP (or none, and the server makes one)",
                )
                .into());
            }
            let otp = f.secret("otp")?.filter(|o| !o.expose().is_empty());
            let started = seal
                .generate_root_start(barrier, otp.as_ref().map(|o| o.expose()))
                .await?;
            tracing::info!("root token generation started");
            let mut doc = body(&started.status);
            if let Some(otp) = &started.generated_otp {
                doc["otp"] = json!(otp.as_str());
            }
            doc
        }
        ("attempt", Operation::Delete) => {
            let key = f.secret("key")?.filter(|k| !k.expose().is_empty());
            seal.generate_root_cancel(barrier, key.as_ref().map(|k| k.expose()))
                .await?;
            tracing::info!("root token generation cancelled");
            return Ok(Response::no_content());
        }
        ("update", op) if op.is_write() => {
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
            match seal
                .generate_root_update(barrier, key.expose(), &nonce)
                .await?
            {
                Update::Progress(status) => body(&status),
                Update::Complete { status, otp } => {
                    let token = state.tokens.create_root(None, core.now()).await?;
                    let encoded = encode_token(&token, &otp)?;
                    tracing::info!("a root token was generated from key shares");
                    let mut doc = body(&status);
                    doc["complete"] = json!(true);
                    doc["encoded_token"] = json!(encoded);
                    doc["encoded_root_token"] = json!(encoded);
                    doc
                }
            }
        }
        _ => return Err(CoreError::UnsupportedOperation),
    };
    Ok(match flavour {
        Flavour::Vault => Response::raw(200, doc),
        Flavour::OpenBao => Response::data(doc),
    })
}

fn body(s: &AttemptStatus) -> Value {
    json!({
        "started": s.started,
        "nonce": s.nonce,
        "progress": s.progress,
        "required": s.required,
        "encoded_token": "",
        "encoded_root_token": "",
        "pgp_fingerprint": "",
        "otp": "",
        "otp_length": OTP_LENGTH,
        "complete": false,
    })
}
