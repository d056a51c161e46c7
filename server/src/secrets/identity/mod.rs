//! `identity/`: signed deploy tokens (Vault's identity tokens). A pipeline asks
//! `oidc/token/<role>` for a JWT about its own Coffer token — who it is (`sub`:
//! its entity, or its accessor when it has none), its policies, and the metadata
//! it logged in with (the CI claims of `auth/jwt`) — signed with the role's key,
//! so a deployment target can check it against `oidc/.well-known/keys` without
//! asking Coffer for anything secret. `oidc/key/<name>` holds rotating keys,
//! `oidc/role/<name>` says which key, audience (`client_id`), lifetime and
//! extra claims (`template`); `oidc/introspect` says whether a token is valid.
//! The mount is built in at `identity/`, as in Vault.

mod keys;
#[cfg(test)]
mod tiers;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::barrier::View;
use crate::clock::UnixTime;
use crate::engine::{Engine, EngineFuture, MountContext, Ops, PathSpec, SecretsEngine};
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// The identity engine, as the registry holds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

const R: Ops = Ops::READ;
const L: Ops = Ops::LIST;
const W: Ops = Ops::WRITE;
const D: Ops = Ops::DELETE;

static PATHS: &[PathSpec] = &[
    PathSpec::new("oidc/config", R.and(W)),
    PathSpec::new("oidc/key", L),
    PathSpec::new("oidc/key/:name", R.and(W).and(D)),
    PathSpec::new("oidc/key/:name/rotate", W),
    PathSpec::new("oidc/role", L),
    PathSpec::new("oidc/role/:name", R.and(W).and(D)),
    PathSpec::new("oidc/token/:name", R),
    PathSpec::new("oidc/introspect", W),
    PathSpec::unauthenticated("oidc/.well-known/openid-configuration", R),
    PathSpec::unauthenticated("oidc/.well-known/keys", R),
];

impl Engine for Identity {
    fn kind(&self) -> &'static str {
        "identity"
    }

    fn paths(&self) -> &'static [PathSpec] {
        PATHS
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a MountContext<'a>,
        req: &'a Request,
    ) -> EngineFuture<'a, Response> {
        Box::pin(handle(ctx, req))
    }

    #[cfg(test)]
    fn tier_rows(&self) -> crate::engine::tiers::TierRows {
        tiers::rows()
    }
}

impl SecretsEngine for Identity {
    fn builtin_mount(&self) -> Option<(&'static str, &'static str)> {
        Some(("identity/", "identity store"))
    }
}

/// `oidc/role/<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Role {
    key: String,
    ttl: u64,
    client_id: String,
    #[serde(default)]
    template: String,
}

fn checked_name(name: &str) -> Result<&str, LogicalError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name)
    } else {
        Err(LogicalError::invalid(
            "invalid name: use letters, digits, '-', '_' or '.' (at most 128)",
        ))
    }
}

async fn issuer(view: &View) -> Result<String, LogicalError> {
    Ok(match view.get("oidc/config").await? {
        Some(raw) => {
            let v: Value = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
            v["issuer"].as_str().unwrap_or_default().to_owned()
        }
        None => String::new(),
    })
}

/// `iss` of the tokens: the configured issuer plus Vault's suffix, or a name
/// of this server when none is configured.
async fn token_issuer(view: &View) -> Result<String, LogicalError> {
    let base = issuer(view).await?;
    Ok(if base.is_empty() {
        "coffer/v1/identity/oidc".to_owned()
    } else {
        format!("{}/v1/identity/oidc", base.trim_end_matches('/'))
    })
}

async fn handle(ctx: &MountContext<'_>, req: &Request) -> Result<Response, LogicalError> {
    let (view, now) = (ctx.view, ctx.now);
    let rest = ctx.rest.trim_end_matches('/');
    let parts: Vec<&str> = rest.split('/').collect();
    let f = Fields(&req.data);
    match (parts.as_slice(), req.operation) {
        (["oidc", "config"], Operation::Read) => {
            Ok(Response::data(json!({ "issuer": issuer(view).await? })))
        }
        (["oidc", "config"], o) if o.is_write() => {
            let iss = f.string("issuer")?.unwrap_or_default();
            let url = iss.starts_with("https://") || iss.starts_with("http://");
            if !(iss.is_empty() || url) {
                return Err(LogicalError::invalid(
                    "issuer: an http(s):// URL (the server's address as clients reach it)",
                ));
            }
            view.apply(vec![view.put_op(
                "oidc/config",
                json!({ "issuer": iss }).to_string().into_bytes(),
                None,
            )])
            .await?;
            Ok(Response::no_content())
        }
        (["oidc", "key"], Operation::List) => crate::engine::list_names(view, "oidc/key/").await,
        (["oidc", "role"], Operation::List) => crate::engine::list_names(view, "oidc/role/").await,
        (["oidc", "key", name], op) => key_paths(view, checked_name(name)?, op, &f, now).await,
        (["oidc", "key", name, "rotate"], o) if o.is_write() => {
            let name = checked_name(name)?;
            let (mut key, guard) = keys::load(view, name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            if let Some(ttl) = f.duration("verification_ttl")? {
                key.verification_ttl = ttl;
            }
            keys::rotate_now(&mut key, now)?;
            if !view
                .apply_if(&[guard], vec![keys::put_op(view, name, &key)?])
                .await?
            {
                return Err(LogicalError::Barrier(
                    crate::barrier::BarrierError::Contended,
                ));
            }
            Ok(Response::no_content())
        }
        (["oidc", "role", name], op) => role_paths(view, checked_name(name)?, op, &f).await,
        (["oidc", "token", name], Operation::Read) => token(ctx, checked_name(name)?).await,
        (["oidc", "introspect"], o) if o.is_write() => introspect(view, &f, now).await,
        (["oidc", ".well-known", "keys"], Operation::Read) => Ok(Response::raw(
            200,
            json!({ "keys": keys::published(view, now).await? }),
        )),
        (["oidc", ".well-known", "openid-configuration"], Operation::Read) => {
            let iss = token_issuer(view).await?;
            Ok(Response::raw(
                200,
                json!({
                    "issuer": iss,
                    "jwks_uri": format!("{iss}/.well-known/keys"),
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
                }),
            ))
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

async fn key_paths(
    view: &View,
    name: &str,
    op: Operation,
    f: &Fields<'_>,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    match op {
        Operation::Read => {
            let (key, _) = keys::load(view, name)
                .await?
                .ok_or(LogicalError::NotFound)?;
            Ok(Response::data(json!({
                "algorithm": key.algorithm,
                "rotation_period": key.rotation_period,
                "verification_ttl": key.verification_ttl,
                "allowed_client_ids": key.allowed_client_ids,
            })))
        }
        Operation::Delete => {
            let roles = view.list("oidc/role/", None, 10_000).await?;
            for r in roles {
                if let Some(raw) = view.get(&r).await? {
                    let role: Role =
                        serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
                    if role.key == name {
                        return Err(LogicalError::invalid(format!(
                            "unable to delete key \"{name}\": a role still uses it"
                        )));
                    }
                }
            }
            view.apply(vec![view.delete_op(&keys::key_path(name))])
                .await?;
            Ok(Response::no_content())
        }
        o if o.is_write() => {
            let existing = keys::load(view, name).await?;
            let algorithm = f
                .string("algorithm")?
                .or_else(|| existing.as_ref().map(|(k, _)| k.algorithm.clone()))
                .unwrap_or_else(|| "ES256".to_owned());
            let rotation_period = f
                .duration("rotation_period")?
                .or_else(|| existing.as_ref().map(|(k, _)| k.rotation_period))
                .unwrap_or(24 * 3600);
            let verification_ttl = f
                .duration("verification_ttl")?
                .or_else(|| existing.as_ref().map(|(k, _)| k.verification_ttl))
                .unwrap_or(24 * 3600);
            let allowed_client_ids = f
                .string_list("allowed_client_ids")?
                .or_else(|| existing.as_ref().map(|(k, _)| k.allowed_client_ids.clone()))
                .unwrap_or_default();
            let (key, guards) = match existing {
                Some((mut key, guard)) => {
                    if key.algorithm != algorithm {
                        key.algorithm = algorithm;
                        keys::rotate_now(&mut key, now)?;
                    }
                    key.rotation_period = rotation_period;
                    key.verification_ttl = verification_ttl;
                    key.allowed_client_ids = allowed_client_ids;
                    (key, vec![guard])
                }
                None => (
                    keys::NamedKey {
                        current: keys::generate(&algorithm)?,
                        algorithm,
                        rotation_period,
                        verification_ttl,
                        allowed_client_ids,
                        previous: Vec::new(),
                        next_rotation: now
                            .secs()
                            .saturating_add(i64::try_from(rotation_period).unwrap_or(i64::MAX)),
                    },
                    vec![view.absent(&keys::key_path(name))],
                ),
            };
            if !view
                .apply_if(&guards, vec![keys::put_op(view, name, &key)?])
                .await?
            {
                return Err(LogicalError::Barrier(
                    crate::barrier::BarrierError::Contended,
                ));
            }
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

async fn role_paths(
    view: &View,
    name: &str,
    op: Operation,
    f: &Fields<'_>,
) -> Result<Response, LogicalError> {
    let path = format!("oidc/role/{name}");
    let existing: Option<Role> = match view.get(&path).await? {
        Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?),
        None => None,
    };
    match op {
        Operation::Read => {
            let r = existing.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(
                json!({"key": r.key, "ttl": r.ttl, "client_id": r.client_id, "template": r.template}),
            ))
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&path)]).await?;
            Ok(Response::no_content())
        }
        o if o.is_write() => {
            let key = f
                .string("key")?
                .or_else(|| existing.as_ref().map(|r| r.key.clone()))
                .ok_or_else(|| LogicalError::invalid("missing required field 'key'"))?;
            if keys::load(view, &key).await?.is_none() {
                return Err(LogicalError::invalid(format!(
                    "key \"{key}\" does not exist"
                )));
            }
            let template = f
                .string("template")?
                .or_else(|| existing.as_ref().map(|r| r.template.clone()))
                .unwrap_or_default();
            if !template.trim().is_empty() {
                let parsed: Value = serde_json::from_str(&template)
                    .map_err(|_| LogicalError::invalid("template: not a JSON object"))?;
                if !parsed.is_object() {
                    return Err(LogicalError::invalid("template: not a JSON object"));
                }
            }
            let role = Role {
                key,
                ttl: f
                    .duration("ttl")?
                    .or(existing.as_ref().map(|r| r.ttl))
                    .unwrap_or(24 * 3600),
                client_id: f
                    .string("client_id")?
                    .filter(|c| !c.is_empty())
                    .or_else(|| existing.as_ref().map(|r| r.client_id.clone()))
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
                template,
            };
            let raw = serde_json::to_vec(&role).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op(&path, raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

/// Replaces `{{identity.token.metadata.<k>}}`, `{{identity.token.policies}}`,
/// `{{identity.entity.id}}` / `.name` in the template's string values.
fn render_template(
    template: &str,
    meta: &BTreeMap<String, String>,
    policies: &[String],
    entity: Option<&crate::policy::Entity>,
) -> Map<String, Value> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(template) else {
        return Map::new();
    };
    let fill = |s: &str| -> Value {
        let t = s.trim();
        if t == "{{identity.token.policies}}" {
            return json!(policies);
        }
        let mut out = s.to_owned();
        for (k, v) in meta {
            out = out.replace(&format!("{{{{identity.token.metadata.{k}}}}}"), v);
        }
        if let Some(e) = entity {
            out = out
                .replace("{{identity.entity.id}}", &e.id)
                .replace("{{identity.entity.name}}", &e.name);
        }
        Value::String(out)
    };
    obj.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => fill(&s),
                other => other,
            };
            (k, v)
        })
        .collect()
}

/// Reserved claims a template may not set.
const RESERVED: &[&str] = &["iss", "sub", "aud", "exp", "iat", "nbf", "namespace"];

async fn token(ctx: &MountContext<'_>, name: &str) -> Result<Response, LogicalError> {
    let (view, now) = (ctx.view, ctx.now);
    let caller = ctx.caller.ok_or(LogicalError::PermissionDenied)?;
    let raw = view
        .get(&format!("oidc/role/{name}"))
        .await?
        .ok_or_else(|| LogicalError::invalid(format!("role \"{name}\" does not exist")))?;
    let role: Role = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
    let key = keys::current(view, &role.key, now).await?;
    if !key.allowed_client_ids.is_empty()
        && !key
            .allowed_client_ids
            .iter()
            .any(|c| c == "*" || *c == role.client_id)
    {
        return Err(LogicalError::invalid(format!(
            "the key \"{}\" does not allow the role's client_id",
            role.key
        )));
    }
    let entry = &caller.found.entry;
    let ttl = i64::try_from(role.ttl).unwrap_or(i64::MAX);
    let mut claims = render_template(
        &role.template,
        &entry.meta,
        &entry.policies,
        entry.entity.as_ref(),
    );
    for r in RESERVED {
        claims.remove(*r);
    }
    let sub = entry
        .entity
        .as_ref()
        .map(|e| e.id.clone())
        .unwrap_or_else(|| entry.accessor.clone());
    claims.insert("iss".into(), json!(token_issuer(view).await?));
    claims.insert("sub".into(), json!(sub));
    claims.insert("aud".into(), json!(role.client_id));
    claims.insert("iat".into(), json!(now.secs()));
    claims.insert("nbf".into(), json!(now.secs()));
    claims.insert("exp".into(), json!(now.secs().saturating_add(ttl)));
    claims.insert("namespace".into(), json!("root"));
    claims
        .entry("policies")
        .or_insert_with(|| json!(entry.policies));
    claims
        .entry("metadata")
        .or_insert_with(|| json!(entry.meta));
    let (signing, alg) = key.current.encoding_key(&key.algorithm)?;
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(key.current.kid.clone());
    let jwt = jsonwebtoken::encode(&header, &Value::Object(claims), &signing)
        .map_err(|_| LogicalError::Upstream("cannot sign the token".into()))?;
    Ok(Response::data(
        json!({ "token": jwt, "client_id": role.client_id, "ttl": role.ttl }),
    ))
}

async fn introspect(view: &View, f: &Fields<'_>, now: UnixTime) -> Result<Response, LogicalError> {
    let jwt = zeroize::Zeroizing::new(
        f.string("token")?
            .ok_or_else(|| LogicalError::invalid("missing required field 'token'"))?,
    );
    let client_id = f.string("client_id")?.unwrap_or_default();
    let inactive = |why: &str| Response::data(json!({ "active": false, "error": why }));
    let Ok(header) = jsonwebtoken::decode_header(jwt.as_str()) else {
        return Ok(inactive("not a JWT"));
    };
    let published = keys::published(view, now).await?;
    let Some(jwk) = published
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
    else {
        return Ok(inactive("unknown signing key"));
    };
    let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(jwk.clone()) else {
        return Ok(inactive("unknown signing key"));
    };
    let Ok(decoding) = jsonwebtoken::DecodingKey::from_jwk(&jwk) else {
        return Ok(inactive("unknown signing key"));
    };
    let alg = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
        Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => jsonwebtoken::Algorithm::RS256,
        _ => jsonwebtoken::Algorithm::ES256,
    };
    if header.alg != alg {
        return Ok(inactive("the algorithm does not fit the key"));
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let Ok(data) = jsonwebtoken::decode::<Value>(jwt.as_str(), &decoding, &validation) else {
        return Ok(inactive("the signature does not verify"));
    };
    if data.claims["exp"].as_i64().is_none_or(|e| e <= now.secs()) {
        return Ok(inactive("the token has expired"));
    }
    if !client_id.is_empty() && data.claims["aud"].as_str() != Some(client_id.as_str()) {
        return Ok(inactive("the token is for another client_id"));
    }
    Ok(Response::data(json!({ "active": true })))
}
