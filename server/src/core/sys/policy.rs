//! `sys/policies/acl[/<name>]` and the legacy `sys/policy[/<name>]`.

use base64::Engine as _;
use serde_json::json;

use super::{Family, SysFuture, SysRequest};
use crate::core::{CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/policies/acl", Ops::LIST),
    PathSpec::new(
        "sys/policies/acl/:policy",
        Ops::READ.and(Ops::WRITE).and(Ops::DELETE),
    ),
    PathSpec::new("sys/policy", Ops::READ.and(Ops::LIST)),
    PathSpec::new(
        "sys/policy/:policy",
        Ops::READ.and(Ops::WRITE).and(Ops::DELETE),
    ),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, state, req, rest, now) = (r.core, r.state()?, r.req, r.rest, r.now);
        let _ = (core, now);
        policy_paths(state, req, rest)
            .await?
            .ok_or_else(|| r.no_handler())
    })
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
