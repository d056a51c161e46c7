//! A role's secret ids: generate (`secret-id`), bring your own
//! (`custom-secret-id`), list their accessors (`LIST secret-id`), look up and
//! destroy by value or by accessor. A secret id is stored at
//! `secret-id/<role>/<HMAC of the value>` with its expiry in the storage index
//! (tidy removes it once due), and its accessor at `accessor/<role>/<accessor>`
//! pointing back to that HMAC. The value is answered once, at creation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::role::{checked_name, load, salt};
use crate::auth::tokenutil::parse_cidr;
use crate::barrier::{BarrierOp, View};
use crate::clock::{rfc3339_secs, UnixTime};
use crate::crypto::HmacKey;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// A custom secret id must be at least this long.
const MIN_CUSTOM_LEN: usize = 16;

/// One secret id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct SecretIdEntry {
    pub(super) accessor: String,
    #[serde(default)]
    pub(super) metadata: BTreeMap<String, String>,
    /// networks a login with it may come from (empty: the role's, or anywhere)
    #[serde(default)]
    pub(super) cidr_list: Vec<String>,
    /// networks its tokens may be used from
    #[serde(default)]
    pub(super) token_bound_cidrs: Vec<String>,
    /// logins left (0: unlimited)
    pub(super) num_uses: u64,
    pub(super) creation_time: i64,
    /// 0: never
    pub(super) expiration_time: i64,
    pub(super) last_updated_time: i64,
}

pub(super) fn entry_key(salt: &HmacKey, role: &str, secret_id: &str) -> String {
    format!("secret-id/{role}/{}", salt.hex(secret_id.as_bytes()))
}

fn accessor_key(role: &str, accessor: &str) -> String {
    format!("accessor/{role}/{accessor}")
}

/// The ops that store `entry` under `key`.
pub(super) fn put_ops(
    view: &View,
    role: &str,
    key: &str,
    entry: &SecretIdEntry,
) -> Result<Vec<BarrierOp>, LogicalError> {
    let raw = serde_json::to_vec(entry).map_err(|_| LogicalError::Corrupt)?;
    let expires = (entry.expiration_time > 0).then_some(entry.expiration_time);
    Ok(vec![
        view.put_op(key, raw, expires),
        view.put_op(
            &accessor_key(role, &entry.accessor),
            key.as_bytes().to_vec(),
            expires,
        ),
    ])
}

/// The ops that remove the secret id stored at `key`.
pub(super) fn delete_ops(
    view: &View,
    role: &str,
    key: &str,
    entry: &SecretIdEntry,
) -> Vec<BarrierOp> {
    vec![
        view.delete_op(key),
        view.delete_op(&accessor_key(role, &entry.accessor)),
    ]
}

fn info_json(entry: &SecretIdEntry) -> Value {
    json!({
        "secret_id_accessor": entry.accessor,
        "metadata": entry.metadata,
        "cidr_list": entry.cidr_list,
        "token_bound_cidrs": entry.token_bound_cidrs,
        "secret_id_num_uses": entry.num_uses,
        "creation_time": rfc3339_secs(entry.creation_time),
        "expiration_time": if entry.expiration_time > 0 { rfc3339_secs(entry.expiration_time) } else { "0001-01-01T00:00:00Z".to_owned() },
        "last_updated_time": rfc3339_secs(entry.last_updated_time),
        "secret_id_ttl": if entry.expiration_time > 0 { entry.expiration_time - entry.creation_time } else { 0 },
    })
}

fn cidr_field(f: &Fields<'_>, field: &str) -> Result<Vec<String>, LogicalError> {
    let list = f.string_list(field)?.unwrap_or_default();
    for c in &list {
        parse_cidr(c).map_err(|_| {
            LogicalError::invalid(format!("field '{field}': invalid CIDR block \"{c}\""))
        })?;
    }
    Ok(list)
}

/// `metadata` is a JSON object of strings sent as a string (Vault's form), or
/// an object.
fn metadata_field(f: &Fields<'_>) -> Result<BTreeMap<String, String>, LogicalError> {
    match f.0.get("metadata") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(BTreeMap::new()),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| {
            LogicalError::invalid("field 'metadata': expected a JSON object of strings")
        }),
        Some(Value::Object(_)) => f.string_map("metadata").map(Option::unwrap_or_default),
        Some(_) => Err(LogicalError::invalid(
            "field 'metadata': expected a JSON object of strings",
        )),
    }
}

/// Everything below `role/<name>/` that concerns secret ids.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    name: &str,
    tail: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let name = checked_name(name)?;
    let role = load(view, name)
        .await?
        .ok_or_else(|| LogicalError::invalid(format!("role \"{name}\" does not exist")))?;
    let salt = salt(view).await?;
    let f = Fields(&req.data);
    match (tail, req.operation) {
        ("secret-id", Operation::List) => {
            crate::engine::list_names(view, &format!("accessor/{name}/")).await
        }
        ("secret-id" | "custom-secret-id", op) if op.is_write() => {
            let value = if tail == "custom-secret-id" {
                let v = f
                    .string("secret_id")?
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| LogicalError::invalid("missing required field 'secret_id'"))?;
                if v.len() < MIN_CUSTOM_LEN || v.len() > 256 || v.chars().any(char::is_control) {
                    return Err(LogicalError::invalid(format!(
                        "secret_id must be {MIN_CUSTOM_LEN} to 256 printable characters"
                    )));
                }
                zeroize::Zeroizing::new(v)
            } else {
                zeroize::Zeroizing::new(uuid::Uuid::new_v4().to_string())
            };
            let uses = f.u64("num_uses")?.unwrap_or(role.secret_id_num_uses);
            if role.secret_id_num_uses > 0 && (uses == 0 || uses > role.secret_id_num_uses) {
                return Err(LogicalError::invalid(format!(
                    "num_uses cannot be higher than the role's secret_id_num_uses ({})",
                    role.secret_id_num_uses
                )));
            }
            let ttl = f.duration("ttl")?.unwrap_or(role.secret_id_ttl);
            if role.secret_id_ttl > 0 && (ttl == 0 || ttl > role.secret_id_ttl) {
                return Err(LogicalError::invalid(format!(
                    "ttl cannot be longer than the role's secret_id_ttl ({}s)",
                    role.secret_id_ttl
                )));
            }
            let entry = SecretIdEntry {
                accessor: uuid::Uuid::new_v4().to_string(),
                metadata: metadata_field(&f)?,
                cidr_list: cidr_field(&f, "cidr_list")?,
                token_bound_cidrs: cidr_field(&f, "token_bound_cidrs")?,
                num_uses: uses,
                creation_time: now.secs(),
                expiration_time: if ttl > 0 {
                    now.secs()
                        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX))
                } else {
                    0
                },
                last_updated_time: now.secs(),
            };
            let key = entry_key(&salt, name, &value);
            let ops = put_ops(view, name, &key, &entry)?;
            if !view.apply_if(&[view.absent(&key)], ops).await? {
                return Err(LogicalError::invalid("secret_id is already registered"));
            }
            Ok(Response::data(json!({
                "secret_id": value.as_str(),
                "secret_id_accessor": entry.accessor,
                "secret_id_ttl": ttl,
                "secret_id_num_uses": uses,
            })))
        }
        ("secret-id/lookup" | "secret-id/destroy", op)
            if op.is_write() || op == Operation::Delete =>
        {
            let value = zeroize::Zeroizing::new(
                f.string("secret_id")?
                    .ok_or_else(|| LogicalError::invalid("missing required field 'secret_id'"))?,
            );
            let key = entry_key(&salt, name, &value);
            by_key(view, name, &key, tail.ends_with("destroy"), now).await
        }
        ("secret-id-accessor/lookup" | "secret-id-accessor/destroy", op)
            if op.is_write() || op == Operation::Delete =>
        {
            let accessor = f.string("secret_id_accessor")?.ok_or_else(|| {
                LogicalError::invalid("missing required field 'secret_id_accessor'")
            })?;
            if accessor.contains('/') {
                return Err(LogicalError::invalid("invalid secret_id_accessor"));
            }
            let Some(key) = view.get(&accessor_key(name, &accessor)).await? else {
                return Err(LogicalError::invalid(format!(
                    "failed to find accessor entry for secret_id_accessor: \"{accessor}\""
                )));
            };
            let key = String::from_utf8_lossy(&key).into_owned();
            by_key(view, name, &key, tail.ends_with("destroy"), now).await
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

async fn by_key(
    view: &View,
    role: &str,
    key: &str,
    destroy: bool,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let entry: Option<SecretIdEntry> = match view.get(key).await? {
        Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?),
        None => None,
    };
    let live = entry.filter(|e| e.expiration_time == 0 || e.expiration_time > now.secs());
    if destroy {
        if let Some(e) = &live {
            view.apply(delete_ops(view, role, key, e)).await?;
        }
        return Ok(Response::no_content());
    }
    match live {
        Some(e) => Ok(Response::data(info_json(&e))),
        None => Ok(Response::no_content()),
    }
}
