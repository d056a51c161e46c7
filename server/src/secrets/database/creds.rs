//! `creds/<role>`: a new login role in the database, with a lease; and the
//! lease's renewal and revocation. The record of each credential
//! (`creds/<username>`) is written before the role is created, so a credential
//! that exists in the database always has a lease that can revoke it.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::config::{self, random_password};
use super::connection::{render_statements, run_statements};
use super::roles::{self, DEFAULT_RENEW, DEFAULT_REVOCATION};
use super::Database;
use crate::barrier::View;
use crate::clock::UnixTime;
use crate::engine::MountContext;
use crate::logical::{Lease, LogicalError, Response};

/// PostgreSQL's longest identifier.
const MAX_USERNAME: usize = 63;

/// What revoking one credential needs, kept with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CredRecord {
    db_name: String,
    role: String,
    revocation_statements: Vec<String>,
    renew_statements: Vec<String>,
    /// unix seconds no renewal passes (0: only the mount's max applies)
    max_expire: i64,
}

fn record_key(username: &str) -> String {
    format!("creds/{username}")
}

/// `2026-12-01T10:00:00Z`, which PostgreSQL reads as a timestamp with time zone.
fn timestamp(at: UnixTime) -> String {
    let secs = u64::try_from(at.secs()).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn slug(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max)
        .collect()
}

/// `v-<caller>-<role>-<random>-<time>`, at most 63 characters of `[a-z0-9-]`.
fn username(display: &str, role: &str, now: UnixTime) -> Result<String, LogicalError> {
    let random = crate::crypto::random_array::<8>().map_err(crate::barrier::BarrierError::from)?;
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!(
        "v-{}-{}-{}-{}",
        slug(display, 10),
        slug(role, 16),
        random,
        now.secs()
    );
    Ok(name.chars().take(MAX_USERNAME).collect())
}

async fn load_record(view: &View, username: &str) -> Result<Option<CredRecord>, LogicalError> {
    match view.get(&record_key(username)).await? {
        None => Ok(None),
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|_| LogicalError::Corrupt),
    }
}

/// `creds/<role>` (read).
pub(super) async fn issue(
    db: &Database,
    ctx: &MountContext<'_>,
    role_name: &str,
) -> Result<Response, LogicalError> {
    let view = ctx.view;
    let role_name = config::checked_name(role_name)?;
    let role = roles::load(view, role_name)
        .await?
        .ok_or_else(|| LogicalError::invalid(format!("unknown role: {role_name}")))?;
    let cfg = config::load(view, &role.db_name).await?.ok_or_else(|| {
        LogicalError::invalid(format!("database \"{}\" is not configured", role.db_name))
    })?;
    if !cfg.allows(role_name) {
        return Err(LogicalError::invalid(format!(
            "\"{role_name}\" is not an allowed role of database \"{}\"",
            role.db_name
        )));
    }
    let now = ctx.now;
    let display = ctx
        .caller
        .map(|c| c.found.entry.display_name.clone())
        .unwrap_or_default();
    let name = username(&display, role_name, now)?;
    let password = random_password()?;
    let ttl = if role.default_ttl > 0 {
        role.default_ttl
    } else if ctx.mount.config.default_lease_ttl > 0 {
        ctx.mount.config.default_lease_ttl
    } else {
        3600
    };
    let ttl = if role.max_ttl > 0 {
        ttl.min(role.max_ttl)
    } else {
        ttl
    };
    let expiration = timestamp(now.plus(Duration::from_secs(ttl)));
    let record = CredRecord {
        db_name: role.db_name.clone(),
        role: role_name.to_owned(),
        revocation_statements: if role.revocation_statements.is_empty() {
            DEFAULT_REVOCATION.iter().map(|s| (*s).to_owned()).collect()
        } else {
            role.revocation_statements.clone()
        },
        renew_statements: if role.renew_statements.is_empty() {
            DEFAULT_RENEW.iter().map(|s| (*s).to_owned()).collect()
        } else {
            role.renew_statements.clone()
        },
        max_expire: if role.max_ttl > 0 {
            now.secs()
                .saturating_add(i64::try_from(role.max_ttl).unwrap_or(i64::MAX))
        } else {
            0
        },
    };
    let raw = serde_json::to_vec(&record).map_err(|_| LogicalError::Corrupt)?;
    view.apply(vec![view.put_op(&record_key(&name), raw, None)])
        .await?;
    let pool = db.pool(view, &role.db_name, &cfg)?;
    // Concurrent GRANTs on one object make PostgreSQL fail with "tuple
    // concurrently updated": creations in one database take a transaction-level
    // advisory lock first, which serialises them across Coffer nodes too.
    let mut statements = vec![zeroize::Zeroizing::new(
        "SELECT pg_advisory_xact_lock(7268657271)".to_owned(),
    )];
    statements.extend(render_statements(
        &role.creation_statements,
        &name,
        &password,
        &expiration,
    ));
    if let Err(e) = run_statements(
        &pool,
        &statements,
        "cannot create the credential",
        &password,
    )
    .await
    {
        if !role.rollback_statements.is_empty() {
            let rollback = render_statements(&role.rollback_statements, &name, "", &expiration);
            let _ = run_statements(&pool, &rollback, "rollback", "").await;
        }
        view.apply(vec![view.delete_op(&record_key(&name))]).await?;
        return Err(e);
    }
    let mut resp = Response::data(json!({
        "username": name,
        "password": password.as_str(),
    }));
    resp.lease = Some(Lease {
        id: name,
        ttl,
        renewable: true,
    });
    Ok(resp)
}

/// Moves the credential's `VALID UNTIL` to `now + increment` (capped by the
/// role's max TTL as it was at issue).
pub(super) async fn renew(
    db: &Database,
    view: &View,
    lease: &Lease,
    increment: u64,
    now: UnixTime,
) -> Result<Lease, LogicalError> {
    let record = load_record(view, &lease.id)
        .await?
        .ok_or_else(|| LogicalError::invalid("the credential no longer exists"))?;
    let mut granted = increment.max(1);
    if record.max_expire > 0 {
        let left = u64::try_from(record.max_expire.saturating_sub(now.secs())).unwrap_or(0);
        if left == 0 {
            return Err(LogicalError::invalid("the credential reached its max_ttl"));
        }
        granted = granted.min(left);
    }
    let cfg = config::load(view, &record.db_name).await?.ok_or_else(|| {
        LogicalError::Upstream(format!(
            "database \"{}\" is no longer configured",
            record.db_name
        ))
    })?;
    let pool = db.pool(view, &record.db_name, &cfg)?;
    let expiration = timestamp(now.plus(Duration::from_secs(granted)));
    let statements = render_statements(&record.renew_statements, &lease.id, "", &expiration);
    run_statements(&pool, &statements, "cannot renew the credential", "").await?;
    Ok(Lease {
        id: lease.id.clone(),
        ttl: granted,
        renewable: true,
    })
}

/// Ends the credential's sessions and drops it. Safe to call again.
pub(super) async fn revoke(db: &Database, view: &View, username: &str) -> Result<(), LogicalError> {
    let Some(record) = load_record(view, username).await? else {
        return Ok(());
    };
    let cfg = config::load(view, &record.db_name).await?.ok_or_else(|| {
        LogicalError::Upstream(format!(
            "database \"{}\" is no longer configured",
            record.db_name
        ))
    })?;
    let pool = db.pool(view, &record.db_name, &cfg)?;
    let statements = render_statements(&record.revocation_statements, username, "", "");
    run_statements(&pool, &statements, "cannot revoke the credential", "").await?;
    view.apply(vec![view.delete_op(&record_key(username))])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_safe_identifiers() {
        let name = username(
            "Token-CI Deploy/web",
            "Deploy_App.v2",
            UnixTime::from_secs(1_700_000_000),
        )
        .unwrap();
        assert!(name.len() <= MAX_USERNAME, "{name}");
        assert!(name.starts_with("v-token-ci-d-deploy-app-v2-"), "{name}");
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        let long = username(&"x".repeat(200), &"y".repeat(200), UnixTime::from_secs(1)).unwrap();
        assert_eq!(long.len(), MAX_USERNAME.min(long.len()));
        assert!(long.len() <= MAX_USERNAME);
    }

    #[test]
    fn expiration_is_a_timestamp_postgres_reads() {
        assert_eq!(
            timestamp(UnixTime::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20Z"
        );
    }
}
