//! `login`: role id and secret id in, token parameters out. Spending a use of a
//! limited secret id is a conditional change on what was read: of many logins
//! racing for the last use, one wins and the others find it gone.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::role::{by_role_id, salt, RoleEntry};
use super::secret_id::{delete_ops, entry_key, put_ops, SecretIdEntry};
use crate::auth::tokenutil::{parse_cidr, TtlLayers};
use crate::barrier::{BarrierError, View, CAS_ATTEMPTS};
use crate::clock::UnixTime;
use crate::logical::{Fields, LogicalError};
use crate::mounts::MountEntry;
use crate::token::CreateParams;

fn within(cidrs: &[String], addr: Option<IpAddr>) -> bool {
    cidrs.is_empty()
        || addr.is_some_and(|ip| {
            cidrs
                .iter()
                .filter_map(|c| parse_cidr(c).ok())
                .any(|net| net.contains(&ip))
        })
}

/// Checks the credentials and spends one use of the secret id.
pub(super) async fn login(
    view: &View,
    mount: &MountEntry,
    data: &Map<String, Value>,
    remote: Option<IpAddr>,
    now: UnixTime,
) -> Result<CreateParams, LogicalError> {
    let f = Fields(data);
    let role_id = f
        .string("role_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LogicalError::invalid("missing role_id"))?;
    let salt = salt(view).await?;
    let (name, role) = by_role_id(view, &salt, &role_id)
        .await?
        .ok_or_else(|| LogicalError::invalid("invalid role or secret ID"))?;
    if !within(&role.secret_id_bound_cidrs, remote) {
        return Err(LogicalError::invalid(
            "source address unauthorized by the role",
        ));
    }
    let mut metadata = BTreeMap::new();
    let mut token_cidrs = Vec::new();
    if role.bind_secret_id {
        let secret = zeroize::Zeroizing::new(
            f.string("secret_id")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| LogicalError::invalid("missing secret_id"))?,
        );
        let spent = spend(view, &name, &entry_key(&salt, &name, &secret), remote, now).await?;
        metadata = spent.metadata;
        token_cidrs = spent.token_bound_cidrs;
    }
    Ok(token_params(mount, &name, &role, metadata, token_cidrs))
}

/// One use of the secret id at `key`, decided on what was read.
async fn spend(
    view: &View,
    role: &str,
    key: &str,
    remote: Option<IpAddr>,
    now: UnixTime,
) -> Result<SecretIdEntry, LogicalError> {
    for _ in 0..CAS_ATTEMPTS {
        let (raw, guard) = view.get_versioned(key).await?;
        let raw = raw.ok_or_else(|| LogicalError::invalid("invalid role or secret ID"))?;
        let entry: SecretIdEntry =
            serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        if entry.expiration_time > 0 && entry.expiration_time <= now.secs() {
            return Err(LogicalError::invalid("invalid role or secret ID"));
        }
        if !within(&entry.cidr_list, remote) {
            return Err(LogicalError::invalid(
                "source address unauthorized by the secret ID",
            ));
        }
        let ops = match entry.num_uses {
            0 => return Ok(entry),
            1 => delete_ops(view, role, key, &entry),
            n => {
                let mut next = entry.clone();
                next.num_uses = n - 1;
                next.last_updated_time = now.secs();
                put_ops(view, role, key, &next)?
            }
        };
        if view.apply_if(&[guard], ops).await? {
            return Ok(entry);
        }
    }
    Err(LogicalError::Barrier(BarrierError::Contended))
}

fn token_params(
    mount: &MountEntry,
    name: &str,
    role: &RoleEntry,
    secret_metadata: BTreeMap<String, String>,
    secret_token_cidrs: Vec<String>,
) -> CreateParams {
    let mut meta = secret_metadata;
    meta.insert("role_name".to_owned(), name.to_owned());
    let mut params = CreateParams {
        orphan: true,
        display_name: mount.path.trim_end_matches('/').replace('/', "-"),
        meta,
        path: format!("auth/{}login", mount.path),
        ..CreateParams::default()
    };
    role.token
        .apply(&mut params, TtlLayers::new(0, 0, &mount.config));
    if !secret_token_cidrs.is_empty() {
        params.bound_cidrs = secret_token_cidrs;
    }
    params
}
