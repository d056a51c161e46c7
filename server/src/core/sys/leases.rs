//! `sys/leases/*`: look up, list, renew and revoke leases (`lookup`,
//! `lookup/<prefix>`, `renew`, `revoke`, `revoke-prefix/<prefix>`,
//! `revoke-force/<prefix>`, `tidy`).
//!
//! Coffer differs from Vault in one point: a lease id is not a capability. The
//! policy lets a token use `lookup`, `renew` and `revoke`, but on a lease another
//! token created only if its policies also grant `sudo` on
//! `sys/leases/lookup/<lease id>` (an operator); everyone else gets 403 as for a
//! lease that does not exist to them.

use serde_json::{json, Value};

use super::{Family, SysFuture, SysRequest};
use crate::clock::{rfc3339_secs, UnixTime};
use crate::core::lease::{engine_of, EngineRevoker};
use crate::core::{Core, CoreError, Unsealed};
use crate::engine::{Ops, PathSpec};
use crate::lease::{LeaseEntry, Revoked};
use crate::logical::{Fields, Lease, LogicalError, Operation, Request, Response};
use crate::token::FoundToken;

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/leases/lookup", Ops::WRITE.and(Ops::LIST)),
    PathSpec::new("sys/leases/lookup/*prefix", Ops::LIST).with_sudo(Ops::LIST),
    PathSpec::new("sys/leases/renew", Ops::WRITE),
    PathSpec::new("sys/leases/renew/*lease", Ops::WRITE),
    PathSpec::new("sys/leases/revoke", Ops::WRITE),
    PathSpec::new("sys/leases/revoke/*lease", Ops::WRITE),
    PathSpec::new("sys/leases/revoke-prefix/*prefix", Ops::WRITE).with_sudo(Ops::WRITE),
    PathSpec::new("sys/leases/revoke-force/*prefix", Ops::WRITE).with_sudo(Ops::WRITE),
    PathSpec::new("sys/leases/tidy", Ops::WRITE),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let (core, state, req, rest, now) = (r.core, r.state()?, r.req, r.rest, r.now);
        let caller = r.caller()?;
        leases_paths(core, state, req, rest, caller, now)
            .await?
            .ok_or_else(|| r.no_handler())
    })
}

/// A lease id or prefix as sent: path segments without empty, `.` or `..`
/// parts and without control characters (it becomes a storage key).
fn checked_id(id: &str, what: &str) -> Result<String, LogicalError> {
    let id = id.trim_start_matches('/');
    let bad = id.split('/').enumerate().any(|(i, seg)| {
        (seg.is_empty() && i + 1 != id.split('/').count()) || seg == "." || seg == ".."
    }) || id.chars().any(char::is_control)
        || id.len() > 1024;
    if bad {
        return Err(LogicalError::invalid(format!("invalid {what}")));
    }
    Ok(id.to_owned())
}

/// The lease id from the path after `<op>/`, or from the body.
fn lease_id_of(req: &Request, from_path: Option<&str>) -> Result<String, LogicalError> {
    let id = match from_path.filter(|p| !p.is_empty()) {
        Some(p) => p.to_owned(),
        None => Fields(&req.data)
            .string("lease_id")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| LogicalError::invalid("missing required field 'lease_id'"))?,
    };
    let id = checked_id(&id, "lease id")?;
    if id.ends_with('/') {
        return Err(LogicalError::invalid("invalid lease id"));
    }
    Ok(id)
}

/// Whether `caller` may act on leases other tokens created.
fn is_operator(state: &Unsealed, caller: &FoundToken, lease_id: &str, now: UnixTime) -> bool {
    let acl = state
        .policies
        .acl(&caller.entry.policies, caller.entry.entity.as_ref());
    let names = acl
        .decide(&format!("sys/leases/lookup/{lease_id}"), now)
        .names();
    names.contains(&"sudo") || names.contains(&"root")
}

/// The lease, if the caller may see it; otherwise the same answer as for a
/// lease that does not exist.
async fn visible_lease(
    state: &Unsealed,
    caller: &FoundToken,
    lease_id: &str,
    now: UnixTime,
) -> Result<(LeaseEntry, crate::barrier::Guard), CoreError> {
    let found = state.leases.get(lease_id).await?;
    match found {
        Some((entry, guard))
            if entry.token_key.as_deref() == Some(caller.key.as_str())
                || is_operator(state, caller, lease_id, now) =>
        {
            Ok((entry, guard))
        }
        Some(_) => Err(LogicalError::Forbidden(
            "permission denied: the lease was created by another token".into(),
        )
        .into()),
        None => Err(LogicalError::invalid("invalid lease").into()),
    }
}

fn lookup_json(entry: &LeaseEntry, now: UnixTime) -> Value {
    json!({
        "id": entry.lease_id,
        "issue_time": rfc3339_secs(entry.issue_time),
        "expire_time": rfc3339_secs(entry.expire_time),
        "last_renewal": entry.last_renewal.map(rfc3339_secs),
        "renewable": entry.renewable && !entry.irrevocable,
        "ttl": entry.ttl(now),
        // Coffer's own: why a lease is still here after its end.
        "irrevocable": entry.irrevocable,
        "revoke_attempts": entry.revoke_attempts,
        "last_revoke_error": entry.last_error,
    })
}

async fn leases_paths(
    core: &Core,
    state: &Unsealed,
    req: &Request,
    rest: &str,
    caller: &FoundToken,
    now: UnixTime,
) -> Result<Option<Response>, CoreError> {
    let Some(rest) = rest.strip_prefix("leases/") else {
        return Ok(None);
    };
    let op = req.operation;
    let revoker = EngineRevoker { core, state };
    let (action, arg) = match rest.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    match (action, op) {
        ("lookup", Operation::List) => {
            let prefix = checked_id(arg.unwrap_or(""), "prefix")?;
            let mut keys = state.leases.list(&prefix).await?;
            // Vault's LIST pagination: names after `after`, at most `limit`.
            if let Some(after) = req.list_after.as_deref() {
                keys.retain(|k| k.as_str() > after);
            }
            if let Some(limit) = req.list_limit.filter(|l| *l > 0) {
                keys.truncate(limit as usize);
            }
            if keys.is_empty() {
                return Err(LogicalError::NotFound.into());
            }
            Ok(Some(Response::data(json!({ "keys": keys }))))
        }
        ("lookup", o) if o.is_write() && arg.is_none() => {
            let id = lease_id_of(req, None)?;
            let (entry, _) = visible_lease(state, caller, &id, now).await?;
            Ok(Some(Response::data(lookup_json(&entry, now))))
        }
        ("renew", o) if o.is_write() => {
            let id = lease_id_of(req, arg)?;
            let increment = Fields(&req.data).duration("increment")?.unwrap_or(0);
            let (mut entry, guard) = visible_lease(state, caller, &id, now).await?;
            if !entry.renewable || entry.irrevocable {
                return Err(LogicalError::invalid("lease is not renewable").into());
            }
            if entry.expire_time <= now.secs() {
                return Err(LogicalError::invalid("lease expired").into());
            }
            let Some((engine, view)) = engine_of(core, state, &entry.mount_accessor).await else {
                return Err(
                    LogicalError::invalid("the mount that issued the lease is gone").into(),
                );
            };
            let wanted = if increment > 0 {
                increment
            } else {
                u64::try_from(entry.expire_time - entry.issue_time).unwrap_or(0)
            };
            let handle = Lease {
                id: entry.engine_id.clone(),
                ttl: wanted,
                renewable: true,
            };
            let granted = engine.renew_lease(&view, &handle, wanted, now).await?;
            let until = now
                .secs()
                .saturating_add(i64::try_from(granted.ttl).unwrap_or(i64::MAX))
                .min(entry.max_expire_time);
            entry.expire_time = until;
            entry.last_renewal = Some(now.secs());
            entry.renewable = granted.renewable;
            if !state.leases.update(&guard, &entry).await? {
                return Err(CoreError::Logical(LogicalError::Barrier(
                    crate::barrier::BarrierError::Contended,
                )));
            }
            let mut resp = Response::data(Value::Null);
            resp.lease = Some(Lease {
                id: entry.lease_id.clone(),
                ttl: entry.ttl(now),
                renewable: entry.renewable,
            });
            Ok(Some(resp))
        }
        ("revoke", o) if o.is_write() => {
            let id = lease_id_of(req, arg)?;
            visible_lease(state, caller, &id, now).await?;
            match state.leases.revoke(&id, &revoker, now).await? {
                Revoked::Done | Revoked::Raced => Ok(Some(Response::no_content())),
                Revoked::Retrying | Revoked::Irrevocable => Err(LogicalError::Upstream(
                    "the engine could not revoke the lease now; it will be retried".into(),
                )
                .into()),
            }
        }
        ("revoke-prefix", o) if o.is_write() => {
            let prefix = checked_id(arg.unwrap_or(""), "prefix")?;
            let mut failed = 0;
            for id in state.leases.ids_under(&prefix).await? {
                if matches!(
                    state.leases.revoke(&id, &revoker, now).await?,
                    Revoked::Retrying | Revoked::Irrevocable
                ) {
                    failed += 1;
                }
            }
            if failed > 0 {
                return Err(LogicalError::Upstream(format!(
                    "{failed} leases could not be revoked now; they will be retried"
                ))
                .into());
            }
            Ok(Some(Response::no_content()))
        }
        ("revoke-force", o) if o.is_write() => {
            // Only the records go: the engine is not asked, so whatever the
            // leases stood for may still exist. Audited like every request.
            let prefix = checked_id(arg.unwrap_or(""), "prefix")?;
            for id in state.leases.ids_under(&prefix).await? {
                if let Some((entry, _)) = state.leases.get(&id).await? {
                    state.leases.forget(&entry).await?;
                }
            }
            Ok(Some(Response::no_content()))
        }
        ("tidy", o) if o.is_write() && arg.is_none() => {
            let removed = state.leases.tidy_index().await?;
            // Slots lost between a reservation and its lease (a crash) are
            // recounted from the leases that exist.
            let quotas = crate::sync::read(&state.quotas).clone();
            for q in quotas {
                let under = match q.path.trim_end_matches('/') {
                    "" => String::new(),
                    p => format!("{p}/"),
                };
                let live = state.leases.ids_under(&under).await?.len() as u64;
                crate::lease::quota::set_used(&state.barrier, &q.name, live).await?;
            }
            let mut resp = Response::data(Value::Null);
            if let crate::logical::ResponseBody::Envelope { warnings, .. } = &mut resp.body {
                warnings.push(format!(
                    "removed {removed} index entries of leases that no longer exist"
                ));
            }
            Ok(Some(resp))
        }
        _ => Err(CoreError::UnsupportedOperation),
    }
}
