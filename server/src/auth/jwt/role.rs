//! `role/<name>`: which JWTs a role accepts and what token they get.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::tokenutil::{Legacy, TokenParams};
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

const LEGACY: &[Legacy] = &[
    Legacy::Policies,
    Legacy::Ttl,
    Legacy::MaxTtl,
    Legacy::Period,
    Legacy::NumUses,
    Legacy::BoundCidrs,
];

/// One role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct JwtRole {
    #[serde(default)]
    pub(super) bound_audiences: Vec<String>,
    #[serde(default)]
    pub(super) bound_subject: String,
    /// claim (name or JSON pointer) → accepted values
    #[serde(default)]
    pub(super) bound_claims: BTreeMap<String, Vec<String>>,
    /// "string" (exact) or "glob" (`*` matches any run of characters)
    #[serde(default = "string_type")]
    pub(super) bound_claims_type: String,
    /// claim → token metadata key
    #[serde(default)]
    pub(super) claim_mappings: BTreeMap<String, String>,
    #[serde(default = "sub")]
    pub(super) user_claim: String,
    #[serde(default = "sixty")]
    pub(super) clock_skew_leeway: u64,
    #[serde(default = "one_fifty")]
    pub(super) expiration_leeway: u64,
    #[serde(default = "one_fifty")]
    pub(super) not_before_leeway: u64,
    #[serde(default)]
    pub(super) token: TokenParams,
}

fn string_type() -> String {
    "string".into()
}
fn sub() -> String {
    "sub".into()
}
fn sixty() -> u64 {
    60
}
fn one_fifty() -> u64 {
    150
}

fn key(name: &str) -> String {
    format!("role/{name}")
}

fn checked_name(name: &str) -> Result<&str, LogicalError> {
    let ok = !name.is_empty()
        && name.len() <= 128
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

pub(super) async fn load(view: &View, name: &str) -> Result<Option<JwtRole>, LogicalError> {
    let name = checked_name(name)?;
    match view.get(&key(name)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

/// `bound_claims`: an object whose values are a string, a comma-separated
/// string, or a list of strings.
fn bound_claims(v: &Value) -> Result<BTreeMap<String, Vec<String>>, LogicalError> {
    let bad =
        || LogicalError::invalid("bound_claims: expected an object of strings or lists of strings");
    let obj = match v {
        Value::Object(o) => o.clone(),
        Value::String(s) if !s.trim().is_empty() => {
            serde_json::from_str::<Map<String, Value>>(s).map_err(|_| bad())?
        }
        Value::String(_) | Value::Null => return Ok(BTreeMap::new()),
        _ => return Err(bad()),
    };
    obj.into_iter()
        .map(|(k, v)| {
            let values = match v {
                Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
                Value::Array(items) => items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Ok(s),
                        Value::Number(n) => Ok(n.to_string()),
                        Value::Bool(b) => Ok(b.to_string()),
                        _ => Err(bad()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Value::Number(n) => vec![n.to_string()],
                Value::Bool(b) => vec![b.to_string()],
                _ => return Err(bad()),
            };
            Ok((k, values))
        })
        .collect()
}

pub(super) async fn list(view: &View) -> Result<Response, LogicalError> {
    crate::engine::list_names(view, "role/").await
}

fn read_json(role: &JwtRole) -> Value {
    let mut data = Map::new();
    data.insert("role_type".into(), json!("jwt"));
    data.insert("bound_audiences".into(), json!(role.bound_audiences));
    data.insert("bound_subject".into(), json!(role.bound_subject));
    data.insert("bound_claims".into(), json!(role.bound_claims));
    data.insert("bound_claims_type".into(), json!(role.bound_claims_type));
    data.insert("claim_mappings".into(), json!(role.claim_mappings));
    data.insert("user_claim".into(), json!(role.user_claim));
    data.insert("clock_skew_leeway".into(), json!(role.clock_skew_leeway));
    data.insert("expiration_leeway".into(), json!(role.expiration_leeway));
    data.insert("not_before_leeway".into(), json!(role.not_before_leeway));
    role.token.fill_read(&mut data);
    Value::Object(data)
}

/// `role/<name>`.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    name: &str,
) -> Result<Response, LogicalError> {
    let name = checked_name(name)?;
    match req.operation {
        Operation::Read => {
            let role = load(view, name).await?.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(read_json(&role)))
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&key(name))]).await?;
            Ok(Response::no_content())
        }
        Operation::Create | Operation::Update => {
            let f = Fields(&req.data);
            if let Some(t) = f.string("role_type")? {
                if t != "jwt" {
                    return Err(LogicalError::invalid(
                        "role_type: only \"jwt\" is supported (no interactive OIDC logins)",
                    ));
                }
            }
            let mut role = load(view, name).await?.unwrap_or(JwtRole {
                bound_audiences: Vec::new(),
                bound_subject: String::new(),
                bound_claims: BTreeMap::new(),
                bound_claims_type: string_type(),
                claim_mappings: BTreeMap::new(),
                user_claim: sub(),
                clock_skew_leeway: 60,
                expiration_leeway: 150,
                not_before_leeway: 150,
                token: TokenParams::default(),
            });
            if let Some(a) = f.string_list("bound_audiences")? {
                role.bound_audiences = a;
            }
            if let Some(s) = f.string("bound_subject")? {
                role.bound_subject = s;
            }
            if let Some(v) = req.data.get("bound_claims") {
                role.bound_claims = bound_claims(v)?;
            }
            if let Some(t) = f.string("bound_claims_type")? {
                if t != "string" && t != "glob" {
                    return Err(LogicalError::invalid(
                        "bound_claims_type: \"string\" or \"glob\"",
                    ));
                }
                role.bound_claims_type = t;
            }
            if let Some(m) = f.string_map("claim_mappings")? {
                role.claim_mappings = m;
            }
            if let Some(u) = f.string("user_claim")? {
                if u.trim().is_empty() {
                    return Err(LogicalError::invalid("user_claim cannot be empty"));
                }
                role.user_claim = u;
            }
            for (field, slot) in [
                ("clock_skew_leeway", &mut role.clock_skew_leeway),
                ("expiration_leeway", &mut role.expiration_leeway),
                ("not_before_leeway", &mut role.not_before_leeway),
            ] {
                if let Some(v) = f.duration(field)? {
                    *slot = v.min(3600);
                }
            }
            role.token.update(&f, LEGACY)?;
            if role.bound_audiences.is_empty()
                && role.bound_subject.is_empty()
                && role.bound_claims.is_empty()
            {
                return Err(LogicalError::invalid(
                    "a role must bind at least one of bound_audiences, bound_subject or bound_claims (otherwise any token of the issuer logs in)",
                ));
            }
            let raw = serde_json::to_vec(&role).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op(&key(name), raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}
