//! AppRole roles: `role/<name>` (create, read, update, delete, list) and
//! `role/<name>/role-id` (read, or set a custom one). A role's record and the
//! index from its role id back to its name change together, and a role id
//! belongs to one role only.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::tokenutil::{parse_cidr, Legacy, TokenParams};
use crate::barrier::View;
use crate::crypto::HmacKey;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// The old names AppRole still accepts for its token fields (as Vault's).
const LEGACY: &[Legacy] = &[Legacy::Policies, Legacy::Period, Legacy::BoundCidrs];
/// Where the mount's HMAC key for role and secret ids is kept.
const SALT_KEY: &str = "salt";
/// Role names: what Vault allows, bounded.
const MAX_NAME: usize = 128;

/// One role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct RoleEntry {
    pub(super) role_id: String,
    #[serde(default = "yes")]
    pub(super) bind_secret_id: bool,
    #[serde(default)]
    pub(super) secret_id_bound_cidrs: Vec<String>,
    /// uses of each new secret id (0: unlimited)
    #[serde(default)]
    pub(super) secret_id_num_uses: u64,
    /// lifetime of each new secret id in seconds (0: unlimited)
    #[serde(default)]
    pub(super) secret_id_ttl: u64,
    #[serde(default)]
    pub(super) token: TokenParams,
}

fn yes() -> bool {
    true
}

pub(super) fn role_key(name: &str) -> String {
    format!("role/{name}")
}

fn role_id_key(salt: &HmacKey, role_id: &str) -> String {
    format!("role-id/{}", salt.hex(role_id.as_bytes()))
}

/// A role name as stored (already lower case from the canonicaliser).
pub(super) fn checked_name(name: &str) -> Result<&str, LogicalError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(name)
    } else {
        Err(LogicalError::invalid(
            "invalid role name: use letters, digits, '-', '_', '.' or '@' (at most 128)",
        ))
    }
}

/// The mount's HMAC key, created on first use (two nodes creating it at once
/// agree on the first one written).
pub(super) async fn salt(view: &View) -> Result<HmacKey, LogicalError> {
    for _ in 0..3 {
        if let Some(raw) = view.get(SALT_KEY).await? {
            return Ok(HmacKey::new(&raw));
        }
        let fresh =
            crate::crypto::random_array::<32>().map_err(crate::barrier::BarrierError::from)?;
        let op = view.put_op(SALT_KEY, fresh.to_vec(), None);
        view.apply_if(&[view.absent(SALT_KEY)], vec![op]).await?;
    }
    Err(LogicalError::Barrier(
        crate::barrier::BarrierError::Contended,
    ))
}

pub(super) async fn load(view: &View, name: &str) -> Result<Option<RoleEntry>, LogicalError> {
    match view.get(&role_key(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

/// The role a role id belongs to.
pub(super) async fn by_role_id(
    view: &View,
    salt: &HmacKey,
    role_id: &str,
) -> Result<Option<(String, RoleEntry)>, LogicalError> {
    let Some(name) = view.get(&role_id_key(salt, role_id)).await? else {
        return Ok(None);
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    Ok(load(view, &name).await?.map(|r| (name, r)))
}

fn entry_op(
    view: &View,
    name: &str,
    role: &RoleEntry,
) -> Result<crate::barrier::BarrierOp, LogicalError> {
    let raw = serde_json::to_vec(role).map_err(|_| LogicalError::Corrupt)?;
    Ok(view.put_op(&role_key(name), raw, None))
}

/// `LIST role`.
pub(super) async fn list(view: &View) -> Result<Response, LogicalError> {
    crate::engine::list_names(view, "role/").await
}

fn read_json(role: &RoleEntry) -> Value {
    let mut data = Map::new();
    data.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    data.insert(
        "secret_id_bound_cidrs".into(),
        json!(role.secret_id_bound_cidrs),
    );
    data.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    data.insert("local_secret_ids".into(), json!(false));
    role.token.fill_read(&mut data);
    Value::Object(data)
}

fn cidrs(f: &Fields<'_>, field: &str) -> Result<Option<Vec<String>>, LogicalError> {
    let Some(list) = f.string_list(field)? else {
        return Ok(None);
    };
    for c in &list {
        parse_cidr(c).map_err(|_| {
            LogicalError::invalid(format!("field '{field}': invalid CIDR block \"{c}\""))
        })?;
    }
    Ok(Some(list))
}

/// `role/<name>`: create or update (absent fields keep their value), read, delete.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    let name = checked_name(name)?;
    let existing = load(view, name).await?;
    match req.operation {
        Operation::Read => {
            let role = existing.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(read_json(&role)))
        }
        Operation::Delete => {
            let Some(role) = existing else {
                return Ok(Response::no_content());
            };
            let salt = salt(view).await?;
            view.apply(vec![
                view.delete_op(&role_key(name)),
                view.delete_op(&role_id_key(&salt, &role.role_id)),
            ])
            .await?;
            // Its secret ids cannot be used without it; remove them too.
            view.sub(&format!("secret-id/{name}/")).delete_all().await?;
            view.sub(&format!("accessor/{name}/")).delete_all().await?;
            Ok(Response::no_content())
        }
        Operation::Create | Operation::Update => {
            let f = Fields(&req.data);
            let is_new = existing.is_none();
            let mut role = existing.unwrap_or_else(|| RoleEntry {
                role_id: uuid::Uuid::new_v4().to_string(),
                bind_secret_id: true,
                secret_id_bound_cidrs: Vec::new(),
                secret_id_num_uses: 0,
                secret_id_ttl: 0,
                token: TokenParams::default(),
            });
            if let Some(b) = f.bool("bind_secret_id")? {
                role.bind_secret_id = b;
            }
            if let Some(c) = cidrs(&f, "secret_id_bound_cidrs")? {
                role.secret_id_bound_cidrs = c;
            }
            if let Some(n) = f.u64("secret_id_num_uses")? {
                role.secret_id_num_uses = n;
            }
            if let Some(t) = f.duration("secret_id_ttl")? {
                role.secret_id_ttl = t;
            }
            role.token.update(&f, LEGACY)?;
            if !role.bind_secret_id
                && role.secret_id_bound_cidrs.is_empty()
                && role.token.token_bound_cidrs.is_empty()
            {
                return Err(LogicalError::invalid(
                    "at least one constraint should be enabled on the role: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs",
                ));
            }
            let mut ops = vec![entry_op(view, name, &role)?];
            let mut guards = Vec::new();
            if is_new {
                let salt = salt(view).await?;
                let index = role_id_key(&salt, &role.role_id);
                guards.push(view.absent(&index));
                guards.push(view.absent(&role_key(name)));
                ops.push(view.put_op(&index, name.as_bytes().to_vec(), None));
            }
            if !view.apply_if(&guards, ops).await? {
                return Err(LogicalError::Barrier(
                    crate::barrier::BarrierError::Contended,
                ));
            }
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

/// `role/<name>/role-id`: read it, or set a custom one (unique over the mount).
pub(super) async fn role_id(
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    let name = checked_name(name)?;
    let (mut role, guard) = {
        let (raw, guard) = view.get_versioned(&role_key(name)).await?;
        let raw = raw.ok_or(LogicalError::NotFound)?;
        let role: RoleEntry = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        (role, guard)
    };
    match req.operation {
        Operation::Read => Ok(Response::data(json!({ "role_id": role.role_id }))),
        Operation::Create | Operation::Update => {
            let wanted = Fields(&req.data)
                .string("role_id")?
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| LogicalError::invalid("missing required field 'role_id'"))?;
            if wanted.len() > 256 || wanted.chars().any(char::is_control) {
                return Err(LogicalError::invalid("invalid role_id"));
            }
            if wanted == role.role_id {
                return Ok(Response::no_content());
            }
            let salt = salt(view).await?;
            let old = role_id_key(&salt, &role.role_id);
            let new = role_id_key(&salt, &wanted);
            role.role_id = wanted;
            let ops = vec![
                entry_op(view, name, &role)?,
                view.delete_op(&old),
                view.put_op(&new, name.as_bytes().to_vec(), None),
            ];
            if view.apply_if(&[guard, view.absent(&new)], ops).await? {
                Ok(Response::no_content())
            } else {
                Err(LogicalError::invalid(
                    "role_id is already in use (or the role changed meanwhile)",
                ))
            }
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}
