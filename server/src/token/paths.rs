//! The `auth/token/*` paths: create, lookup, renew and revoke, by token, by
//! accessor and for the caller itself. Answers have Vault's shapes.

use crate::clock::UnixTime;
use serde_json::{json, Map, Value};

use super::store::{CreateParams, FoundToken, TokenEntry, TokenStore};
use crate::clock::rfc3339_secs;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// Who is calling: the token they presented, found and valid.
pub struct Caller<'a> {
    /// the presented token (needed for `-self` answers that echo the id)
    pub token: &'a str,
    /// its entry
    pub found: &'a FoundToken,
    /// root, or sudo on the path: may assign any policy and create orphans
    pub privileged: bool,
}

/// Handles `auth/token/<rest>`.
pub async fn handle(
    store: &TokenStore,
    caller: &Caller<'_>,
    req: &Request,
    rest: &str,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let op = req.operation;
    match rest {
        "create" | "create-orphan" if op.is_write() => {
            create(store, caller, &f, rest == "create-orphan", now).await
        }
        "lookup-self" if op == Operation::Read || op.is_write() => Ok(Response::data(lookup_data(
            &caller.found.entry,
            Some(caller.token),
            now,
        ))),
        "lookup"
            if (op == Operation::Read || op.is_write())
                && f.string("token")?.is_none_or(|t| t.is_empty()) =>
        {
            Ok(Response::data(lookup_data(
                &caller.found.entry,
                Some(caller.token),
                now,
            )))
        }
        "lookup" if op == Operation::Read || op.is_write() => {
            let token = required(&f, "token")?;
            let found = store.lookup(&token, now).await?.ok_or_else(bad_token)?;
            Ok(Response::data(lookup_data(&found.entry, Some(&token), now)))
        }
        "lookup-accessor" if op.is_write() => {
            let accessor = required(&f, "accessor")?;
            let found = store
                .lookup_accessor(&accessor, now)
                .await?
                .ok_or_else(bad_accessor)?;
            Ok(Response::data(lookup_data(&found.entry, None, now)))
        }
        "renew-self" if op.is_write() => renew(store, caller.found, caller.token, &f, now).await,
        "renew" if op.is_write() => {
            let token = required(&f, "token")?;
            let found = store.lookup(&token, now).await?.ok_or_else(bad_token)?;
            renew(store, &found, &token, &f, now).await
        }
        "renew-accessor" if op.is_write() => {
            let accessor = required(&f, "accessor")?;
            let found = store
                .lookup_accessor(&accessor, now)
                .await?
                .ok_or_else(bad_accessor)?;
            renew(store, &found, "", &f, now).await
        }
        "revoke-self" if op.is_write() => {
            store.revoke_tree(&caller.found.key).await?;
            Ok(Response::no_content())
        }
        "revoke" if op.is_write() => {
            let token = required(&f, "token")?;
            // Vault answers 204 even for unknown tokens, so revocation is idempotent.
            if let Some(found) = store.lookup(&token, now).await? {
                store.revoke_tree(&found.key).await?;
            }
            Ok(Response::no_content())
        }
        "revoke-accessor" if op.is_write() => {
            let accessor = required(&f, "accessor")?;
            // As Vault: an unknown accessor is a warning, not an error.
            match store.lookup_accessor(&accessor, now).await? {
                Some(found) => {
                    store.revoke_tree(&found.key).await?;
                    Ok(Response::no_content())
                }
                None => Ok(Response::data(serde_json::Value::Null)
                    .with_warning("No token found with this accessor")),
            }
        }
        "revoke-orphan" if op.is_write() => {
            let token = required(&f, "token")?;
            let found = store
                .lookup(&token, now)
                .await?
                .ok_or_else(|| LogicalError::invalid("token to revoke not found"))?;
            store.revoke_orphan(&found.key, now).await?;
            Ok(Response::no_content())
        }
        "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
        | "renew-self" | "renew" | "renew-accessor" | "revoke-self" | "revoke"
        | "revoke-accessor" | "revoke-orphan" => Err(LogicalError::UnsupportedOperation),
        _ => Err(LogicalError::NotFound),
    }
}

fn bad_token() -> LogicalError {
    LogicalError::BadToken
}

fn bad_accessor() -> LogicalError {
    LogicalError::invalid("invalid accessor")
}

fn required(f: &Fields<'_>, key: &str) -> Result<String, LogicalError> {
    match f.string(key)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(LogicalError::invalid(format!(
            "missing required field '{key}'"
        ))),
    }
}

async fn create(
    store: &TokenStore,
    caller: &Caller<'_>,
    f: &Fields<'_>,
    orphan_path: bool,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    if f.0.contains_key("id") {
        return Err(LogicalError::invalid(
            "choosing a token id is not supported",
        ));
    }
    if let Some(t) = f.string("type")? {
        if t != "service" && t != "default" {
            return Err(LogicalError::invalid("only service tokens are supported"));
        }
    }
    let meta = f.string_map("meta")?.unwrap_or_default();
    if let Some(key) = meta.keys().find(|k| is_reserved_meta_key(k)) {
        return Err(LogicalError::invalid(format!(
            "metadata key '{key}' is reserved: it is set by the auth method that logged the token in"
        )));
    }
    let display = f.string("display_name")?.unwrap_or_default();
    let display_name = sanitize_display_name(&display);
    let params = CreateParams {
        policies: f.string_list("policies")?.unwrap_or_default(),
        no_default_policy: f.bool("no_default_policy")?.unwrap_or(false),
        ttl: f.duration("ttl")?.or(f.duration("lease")?),
        explicit_max_ttl: f.duration("explicit_max_ttl")?.unwrap_or(0),
        num_uses: f.u64("num_uses")?.unwrap_or(0),
        renewable: f.bool("renewable")?.unwrap_or(true),
        orphan: orphan_path || f.bool("no_parent")?.unwrap_or(false),
        display_name,
        meta,
        path: if orphan_path {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        }
        .into(),
        entity: None,
        period: f.duration("period")?.unwrap_or(0),
        bound_cidrs: Vec::new(),
        bound_cert_sha256: None,
    };
    if !caller.privileged {
        // Without root or sudo a token can only hand out what it holds itself.
        let own = &caller.found.entry.policies;
        if params
            .policies
            .iter()
            .any(|p| p != "default" && !own.contains(p))
        {
            return Err(LogicalError::invalid(
                "child policies must be a subset of the parent's policies",
            ));
        }
        if params.period > 0 {
            return Err(LogicalError::invalid(
                "root or sudo privileges are required to create a periodic token",
            ));
        }
        if params.orphan && !orphan_path {
            return Err(LogicalError::invalid(
                "root or sudo privileges are required to create a token without a parent",
            ));
        }
    }
    let (token, entry) = store.create(params, Some(caller.found), now).await?;
    Ok(Response::auth(auth_data(&token, &entry, now)))
}

/// Keys an auth method writes into a login's metadata (`username`, and `mfa`
/// saying the second factor was checked). A token's creator could otherwise mint
/// a child that looks, in lookups and audit, like an MFA login of someone else.
fn is_reserved_meta_key(key: &str) -> bool {
    [
        "username",
        "mfa",
        "cert_name",
        "common_name",
        "breakglass_id",
    ]
    .iter()
    .any(|r| key.trim().eq_ignore_ascii_case(r))
}

fn sanitize_display_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "token".into()
    } else {
        format!("token-{cleaned}")
    }
}

async fn renew(
    store: &TokenStore,
    found: &FoundToken,
    token: &str,
    f: &Fields<'_>,
    now: UnixTime,
) -> Result<Response, LogicalError> {
    let increment = f.duration("increment")?;
    let (entry, capped) = store.renew(found, increment, now).await?;
    let response = Response::auth(auth_data(token, &entry, now));
    Ok(if capped {
        response.with_warning(
            "TTL of the renewed token was capped by its maximum TTL or its parent's expiry",
        )
    } else {
        response
    })
}

/// The `auth` block of a login, create or renew answer.
pub fn auth_data(token: &str, entry: &TokenEntry, now: UnixTime) -> Value {
    json!({
        "client_token": token,
        "accessor": entry.accessor,
        "policies": entry.policies,
        "token_policies": entry.policies,
        "identity_policies": null,
        "metadata": meta_value(entry),
        "lease_duration": entry.ttl_remaining(now),
        "renewable": entry.renewable,
        "entity_id": entry.entity_id,
        "token_type": "service",
        "orphan": entry.parent.is_none(),
        "mfa_requirement": null,
        "num_uses": entry.num_uses,
    })
}

fn meta_value(entry: &TokenEntry) -> Value {
    if entry.meta.is_empty() {
        Value::Null
    } else {
        Value::Object(
            entry
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<_, _>>(),
        )
    }
}

/// The `data` of a lookup answer.
pub fn lookup_data(entry: &TokenEntry, token: Option<&str>, now: UnixTime) -> Value {
    let mut data = json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": entry.expire_time.map(rfc3339_secs),
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token.unwrap_or(""),
        "issue_time": rfc3339_secs(entry.creation_time),
        "meta": meta_value(entry),
        "num_uses": entry.num_uses,
        "orphan": entry.parent.is_none(),
        "path": entry.path,
        "period": (entry.period > 0).then_some(entry.period),
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": entry.ttl_remaining(now),
        "type": "service",
    });
    // Coffer's own, only on bound tokens: the client certificate (SHA-256 of
    // its DER, hex) the token works with (auth/cert).
    if let (Some(bound), Value::Object(m)) = (&entry.bound_cert_sha256, &mut data) {
        m.insert("bound_cert_sha256".into(), json!(bound));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_prefixed_and_cleaned() {
        assert_eq!(sanitize_display_name(""), "token");
        assert_eq!(sanitize_display_name("ci job/1"), "token-ci-job-1");
    }
}
