//! `login`: `role` and `jwt` in, token parameters out. The signature is checked
//! with a key of the token's own kind only; time, issuer, audience, subject and
//! bound claims are checked by Coffer on its own clock.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::config;
use super::jwks::KeyCache;
use super::role::{self, JwtRole};
use crate::auth::tokenutil::TtlLayers;
use crate::engine::MountContext;
use crate::logical::{Fields, LogicalError};
use crate::token::CreateParams;

/// The JWT's header and payload must fit in this (CI tokens are ~1-2 KiB).
const MAX_JWT: usize = 16 * 1024;

fn refused(why: &str) -> LogicalError {
    LogicalError::invalid(format!("login refused: {why}"))
}

/// A claim by name, or by JSON pointer when it starts with `/`.
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    }
}

fn as_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(items) => items.iter().flat_map(as_strings).collect(),
        _ => Vec::new(),
    }
}

/// `*` matches any run of characters (including `/`); nothing else is special.
pub(super) fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

fn check_time(claims: &Value, role: &JwtRole, now: i64) -> Result<(), LogicalError> {
    let skew = i64::try_from(role.clock_skew_leeway).unwrap_or(0);
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| refused("the token has no expiry (exp)"))?;
    let exp_leeway = i64::try_from(role.expiration_leeway).unwrap_or(0);
    if now > exp.saturating_add(skew).saturating_add(exp_leeway) {
        return Err(refused("the token has expired"));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        let nbf_leeway = i64::try_from(role.not_before_leeway).unwrap_or(0);
        if now < nbf.saturating_sub(skew).saturating_sub(nbf_leeway) {
            return Err(refused("the token is not valid yet (nbf)"));
        }
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_i64) {
        if now < iat.saturating_sub(skew) {
            return Err(refused("the token was issued in the future (iat)"));
        }
    }
    Ok(())
}

fn check_bounds(claims: &Value, role: &JwtRole, bound_issuer: &str) -> Result<(), LogicalError> {
    if !bound_issuer.is_empty() && claims.get("iss").and_then(Value::as_str) != Some(bound_issuer) {
        return Err(refused("wrong issuer (iss)"));
    }
    let audiences = claims.get("aud").map(as_strings).unwrap_or_default();
    if role.bound_audiences.is_empty() {
        if !audiences.is_empty() {
            return Err(refused(
                "the token names an audience (aud) but the role binds none",
            ));
        }
    } else if !audiences.iter().any(|a| role.bound_audiences.contains(a)) {
        return Err(refused("wrong audience (aud)"));
    }
    if !role.bound_subject.is_empty()
        && claims.get("sub").and_then(Value::as_str) != Some(role.bound_subject.as_str())
    {
        return Err(refused("wrong subject (sub)"));
    }
    let glob = role.bound_claims_type == "glob";
    for (name, allowed) in &role.bound_claims {
        let actual = claim(claims, name).map(as_strings).unwrap_or_default();
        let fits = actual.iter().any(|a| {
            allowed
                .iter()
                .any(|p| if glob { glob_match(p, a) } else { p == a })
        });
        if !fits {
            return Err(refused(&format!(
                "claim \"{name}\" does not match the role"
            )));
        }
    }
    Ok(())
}

/// Verifies the signature with a key that may verify the header's algorithm.
async fn verified_claims(
    keys: &KeyCache,
    mount: &str,
    cfg: &config::JwtConfig,
    jwt: &str,
) -> Result<Value, LogicalError> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| {
        // "none" and unknown algorithms do not even parse as a header here.
        match e.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => {
                refused("the token's algorithm is not accepted")
            }
            _ => refused("not a JWT"),
        }
    })?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(refused(
            "symmetric algorithms (HS*) are not accepted: a public key is not a MAC key",
        ));
    }
    let mut refreshed = false;
    loop {
        let set = keys.keys(mount, cfg, refreshed).await?;
        let candidates: Vec<_> = set
            .iter()
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => true,
                (None, _) => true,
            })
            .collect();
        if candidates.is_empty() && !refreshed && header.kid.is_some() {
            refreshed = true;
            continue;
        }
        if candidates.is_empty() {
            return Err(refused("no key is known for the token's kid"));
        }
        let mut algorithm_fits = false;
        for key in candidates {
            if !key.algorithms.contains(&header.alg) {
                continue;
            }
            algorithm_fits = true;
            let mut validation = Validation::new(header.alg);
            validation.algorithms = key.algorithms.clone();
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            validation.required_spec_claims.clear();
            if let Ok(data) = jsonwebtoken::decode::<Value>(jwt, &key.key, &validation) {
                return Ok(data.claims);
            }
        }
        return Err(if algorithm_fits {
            refused("the signature does not verify")
        } else {
            refused("the token's algorithm does not fit its key")
        });
    }
}

/// Checks the login and makes the token's parameters.
pub(super) async fn login(
    keys: &KeyCache,
    ctx: &MountContext<'_>,
    data: &Map<String, Value>,
) -> Result<CreateParams, LogicalError> {
    let f = Fields(data);
    let cfg = config::load(ctx.view)
        .await?
        .ok_or_else(|| LogicalError::invalid("the JWT auth method is not configured"))?;
    let role_name = f
        .string("role")?
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| cfg.default_role.clone())
        .to_lowercase();
    if role_name.is_empty() {
        return Err(LogicalError::invalid("missing role"));
    }
    let role = role::load(ctx.view, &role_name)
        .await?
        .ok_or_else(|| LogicalError::invalid(format!("role \"{role_name}\" could not be found")))?;
    let jwt = zeroize::Zeroizing::new(
        f.string("jwt")?
            .filter(|j| !j.is_empty())
            .ok_or_else(|| LogicalError::invalid("missing jwt"))?,
    );
    if jwt.len() > MAX_JWT {
        return Err(refused("the token is too large"));
    }
    if !role.token.allows(ctx.connection.remote_addr) {
        return Err(refused("source address not allowed by the role"));
    }
    let claims = verified_claims(keys, &ctx.mount.uuid, &cfg, &jwt).await?;
    check_time(&claims, &role, ctx.now.secs())?;
    check_bounds(&claims, &role, &cfg.bound_issuer)?;
    let user = claim(&claims, &role.user_claim)
        .and_then(|v| as_strings(v).into_iter().next())
        .ok_or_else(|| {
            refused(&format!(
                "the user claim \"{}\" is missing",
                role.user_claim
            ))
        })?;
    let mut mapped = BTreeMap::new();
    for (from, to) in &role.claim_mappings {
        if let Some(v) = claim(&claims, from) {
            mapped.insert(to.clone(), as_strings(v).join(","));
        }
    }
    let mut meta = mapped.clone();
    meta.insert("role".to_owned(), role_name.clone());
    // The identity a templated policy sees: stable per mount and user claim,
    // with the mapped claims as its metadata (`{{identity.entity.metadata.<k>}}`).
    let entity = crate::policy::Entity {
        id: crate::crypto::sha256_hex(format!("{}\u{0}{user}", ctx.mount.uuid).as_bytes())
            .chars()
            .take(32)
            .collect(),
        name: user.clone(),
        metadata: mapped,
    };
    let mut params = CreateParams {
        orphan: true,
        display_name: format!(
            "{}-{}",
            ctx.mount.path.trim_end_matches('/').replace('/', "-"),
            user.chars().take(64).collect::<String>()
        ),
        meta,
        path: format!("auth/{}login", ctx.mount.path),
        entity: Some(entity),
        ..CreateParams::default()
    };
    role.token
        .apply(&mut params, TtlLayers::new(0, 0, &ctx.mount.config));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_anything_and_nothing_else() {
        assert!(glob_match("refs/heads/*", "refs/heads/main"));
        assert!(glob_match("refs/heads/*", "refs/heads/feature/x"));
        assert!(!glob_match("refs/heads/*", "refs/tags/v1"));
        assert!(glob_match(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/web:ref:refs/heads/main"
        ));
        assert!(!glob_match(
            "repo:acme/*:ref:refs/heads/main",
            "repo:acme/web:ref:refs/heads/dev"
        ));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
    }

    proptest::proptest! {
        #[test]
        fn a_pattern_without_stars_matches_only_itself(p in "[a-z/:.-]{0,12}", s in "[a-z/:.-]{0,12}") {
            proptest::prop_assert_eq!(glob_match(&p, &s), p == s);
        }

        #[test]
        fn a_star_between_two_parts_matches_any_middle(a in "[a-z/]{0,6}", m in "[a-z/*]{0,6}", b in "[a-z/]{0,6}") {
            let s = format!("{a}{}{b}", m.replace('*', ""));
            let pattern = format!("{a}*{b}");
            proptest::prop_assert!(glob_match(&pattern, &s));
        }
    }
}
