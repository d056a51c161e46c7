//! `cubbyhole/`: Vault's per-token private store. Every token has its own: the
//! data lives in storage the token owns (see `TokenStore::owned_view`), which
//! no other token can name — not even root — and which is removed with the
//! token however it ends (revoked, expired and tidied, last use spent). The
//! mount is built in: every server has it at `cubbyhole/`, and it cannot be
//! disabled. Values are kept as written (a JSON object of fields), without
//! versions or leases.

use serde_json::{Map, Value};

use crate::barrier::View;
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{LogicalError, Operation, Request, Response};

#[cfg(test)]
mod tiers;

/// The cubbyhole engine, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cubbyhole;

/// Keys read per storage page when listing.
const LIST_PAGE: u32 = 1000;
/// At most this many names in one LIST answer, from at most this many pages.
const LIST_MAX: usize = 10_000;
const LIST_PAGES: usize = 100;

static PATHS: &[PathSpec] = &[
    PathSpec::new("", Ops::LIST),
    PathSpec::new(
        "*path",
        Ops::READ.and(Ops::LIST).and(Ops::WRITE).and(Ops::DELETE),
    ),
];

impl Engine for Cubbyhole {
    fn kind(&self) -> &'static str {
        "cubbyhole"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(async move {
            // Without a token there is no cubbyhole; the core gives one to
            // every authenticated request of this engine.
            let view = ctx
                .token_view
                .as_ref()
                .ok_or(LogicalError::PermissionDenied)?;
            let path = ctx.rest;
            match req.operation {
                Operation::List => list(view, path).await,
                Operation::Read => read(view, path).await,
                Operation::Create | Operation::Update => write(view, path, &req.data).await,
                Operation::Delete => {
                    view.apply(vec![view.delete_op(path)]).await?;
                    Ok(Response::no_content())
                }
                Operation::Patch => Err(LogicalError::UnsupportedOperation),
            }
        })
    }
}

impl SecretsEngine for Cubbyhole {
    fn builtin_mount(&self) -> Option<(&'static str, &'static str)> {
        Some(("cubbyhole/", "per-token private secret storage"))
    }

    fn uses_token_storage(&self) -> bool {
        true
    }
}

async fn read(view: &View, path: &str) -> Result<Response, LogicalError> {
    let raw = view.get(path).await?.ok_or(LogicalError::NotFound)?;
    let data: Map<String, Value> =
        serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
    Ok(Response::data(Value::Object(data)))
}

async fn write(
    view: &View,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Response, LogicalError> {
    if data.is_empty() {
        return Err(LogicalError::invalid("missing data fields"));
    }
    if path.ends_with('/') {
        return Err(LogicalError::invalid(
            "a cubbyhole path cannot end with '/'",
        ));
    }
    let raw = serde_json::to_vec(data).map_err(|_| LogicalError::Corrupt)?;
    view.apply(vec![view.put_op(path, raw, None)]).await?;
    Ok(Response::no_content())
}

/// The immediate children of `prefix` (sub-folders end in `/`), sorted.
async fn list(view: &View, prefix: &str) -> Result<Response, LogicalError> {
    let prefix = match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_owned(),
        p => format!("{p}/"),
    };
    let mut names: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..LIST_PAGES {
        if names.len() >= LIST_MAX {
            break;
        }
        let page = view.list(&prefix, cursor.as_deref(), LIST_PAGE).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        for key in &page {
            let Some(rel) = key.strip_prefix(&prefix) else {
                continue;
            };
            let child = match rel.find('/') {
                Some(i) => &rel[..=i],
                None => rel,
            };
            if names.last().is_none_or(|l| l != child) {
                names.push(child.to_owned());
            }
        }
        cursor = Some(last);
    }
    names.truncate(LIST_MAX);
    Response::list(names)
}
