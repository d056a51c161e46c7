//! `sys/capabilities-self`, `sys/capabilities` and `sys/capabilities-accessor`.

use crate::clock::UnixTime;
use serde_json::{json, Map, Value};

use super::{Family, SysFuture, SysRequest};
use crate::core::{Core, CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};
use crate::token::FoundToken;

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/capabilities-self", Ops::WRITE),
    PathSpec::new("sys/capabilities", Ops::WRITE),
    PathSpec::new("sys/capabilities-accessor", Ops::WRITE),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, state, req, rest, now) = (r.core, r.state()?, r.req, r.rest, r.now);
        let _ = (core, now);
        capabilities_paths(core, state, req, rest, r.caller()?, now)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

/// `sys/capabilities-self`, `sys/capabilities` and `sys/capabilities-accessor`:
/// exactly what the ACL decides for each path.
async fn capabilities_paths(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    rest: &str,
    caller: &FoundToken,
    now: UnixTime,
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
    for p in &paths {
        // The answer is about the path a request would be decided on: its
        // canonical form. A spelling a request may not use gets nothing.
        let resolved = crate::core::route::resolve(
            Some(state),
            core.registry(),
            p.trim_start_matches('/'),
            Operation::Read,
        )
        .await;
        let names = match resolved {
            Ok(r) => acl.decide(&r.path, now).names(),
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
