//! Connections to target databases: the URL with `{{username}}`/`{{password}}`
//! filled in (percent-encoded, so a password cannot change the URL's shape), a
//! small pool per mount, configuration and root password (a rotation or a new
//! config makes a new pool), and failures turned into messages that name the
//! problem and never the URL's credentials.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use zeroize::Zeroizing;

use crate::logical::LogicalError;

/// How long connecting to a target database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool per (mount, config name, config version).
#[derive(Debug, Default)]
pub(super) struct Pools {
    pools: std::sync::Mutex<HashMap<String, (String, PgPool)>>,
}

/// Characters left as they are in a URL's user or password part.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `connection_url` with the credentials filled in.
pub(super) fn render_url(template: &str, username: &str, password: &str) -> Zeroizing<String> {
    Zeroizing::new(
        template
            .replace("{{username}}", &url_escape(username))
            .replace("{{password}}", &url_escape(password)),
    )
}

/// `message` with every occurrence of `secret` (a password the statements
/// carried) replaced, in any case: PostgreSQL quotes the offending token of a
/// statement it refuses, which may be the password, folded to lower case as
/// an unquoted identifier.
fn redacted(message: &str, secret: &str) -> String {
    if secret.is_empty() || !secret.is_ascii() {
        return message.to_owned();
    }
    let (lower, needle) = (message.to_ascii_lowercase(), secret.to_ascii_lowercase());
    let mut out = String::with_capacity(message.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(&needle) {
        out.push_str(&message[at..at + i]);
        out.push_str("[redacted]");
        at += i + needle.len();
    }
    out.push_str(&message[at..]);
    out
}

/// A failure of the target database, without anything secret in it.
pub(super) fn db_error(what: &str, e: &sqlx::Error) -> LogicalError {
    let reason = match e {
        sqlx::Error::Database(d) => format!(
            "{} (SQLSTATE {})",
            d.message(),
            d.code().as_deref().unwrap_or("?")
        ),
        sqlx::Error::PoolTimedOut => "timed out connecting".to_owned(),
        sqlx::Error::Io(io) => format!("cannot connect: {}", io.kind()),
        sqlx::Error::Tls(_) => "TLS handshake with the database failed".to_owned(),
        sqlx::Error::Configuration(_) => "invalid connection_url".to_owned(),
        _ => "the database refused the request".to_owned(),
    };
    LogicalError::Upstream(format!("{what}: {reason}"))
}

impl Pools {
    /// The pool for `key` at `version` (the config's fingerprint), connecting
    /// lazily to `url`.
    pub(super) fn get(
        &self,
        key: &str,
        version: &str,
        url: &str,
        max_open: u32,
    ) -> Result<PgPool, LogicalError> {
        let mut pools = crate::sync::lock(&self.pools);
        if let Some((v, pool)) = pools.get(key) {
            if v == version {
                return Ok(pool.clone());
            }
        }
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| LogicalError::invalid("invalid connection_url"))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_open.clamp(1, 16))
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(60)))
            .connect_lazy_with(options);
        if let Some((_, old)) = pools.insert(key.to_owned(), (version.to_owned(), pool.clone())) {
            tokio::spawn(async move { old.close().await });
        }
        Ok(pool)
    }

    /// Forgets the pool for `key` (its config was deleted).
    pub(super) fn drop_pool(&self, key: &str) {
        if let Some((_, old)) = crate::sync::lock(&self.pools).remove(key) {
            tokio::spawn(async move { old.close().await });
        }
    }
}

/// Runs the statements (each may hold several, `;`-separated) in one
/// transaction. The work runs as its own task, which owns what it needs:
/// sqlx's borrowed executors do not satisfy the `Send` bound of an engine's
/// boxed future. `secret` (a password filled into the statements, or "") never
/// appears in the error.
pub(super) async fn run_statements(
    pool: &PgPool,
    statements: &[Zeroizing<String>],
    what: &str,
    secret: &str,
) -> Result<(), LogicalError> {
    let pool = pool.clone();
    let statements: Vec<Zeroizing<String>> = statements.to_vec();
    let what = what.to_owned();
    let secret = Zeroizing::new(secret.to_owned());
    let task = tokio::spawn(async move {
        let mut tx = pool.begin().await.map_err(|e| db_error(&what, &e))?;
        for statement in &statements {
            let conn: &mut sqlx::PgConnection = &mut tx;
            sqlx::Executor::execute(conn, sqlx::raw_sql(statement.as_str()))
                .await
                .map_err(|e| db_error(&what, &e))?;
        }
        tx.commit().await.map_err(|e| db_error(&what, &e))?;
        Ok(())
    });
    match task.await {
        Ok(Err(LogicalError::Upstream(m))) => Err(LogicalError::Upstream(redacted(&m, &secret))),
        Ok(other) => other,
        Err(_) => Err(LogicalError::Upstream("the database task failed".into())),
    }
}

/// Fills `{{name}}`, `{{password}}` and `{{expiration}}` into statements.
pub(super) fn render_statements(
    statements: &[String],
    name: &str,
    password: &str,
    expiration: &str,
) -> Vec<Zeroizing<String>> {
    statements
        .iter()
        .map(|s| {
            Zeroizing::new(
                s.replace("{{name}}", name)
                    .replace("{{username}}", name)
                    .replace("{{password}}", password)
                    .replace("{{expiration}}", expiration),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_cannot_change_the_shape_of_the_url() {
        let url = render_url(
            "postgresql://{{username}}:{{password}}@db:5432/app",
            "root",
            "p@ss/w:rd?x#",
        );
        assert_eq!(
            url.as_str(),
            "postgresql://root:p%40ss%2Fw%3Ard%3Fx%23@db:5432/app"
        );
    }

    #[test]
    fn a_password_quoted_back_by_the_database_is_redacted() {
        assert_eq!(
            redacted("syntax error at or near \"A1aSecret\"", "A1aSecret"),
            "syntax error at or near \"[redacted]\""
        );
        assert_eq!(
            redacted("unrecognized role option \"a1asecret\"", "A1aSecret"),
            "unrecognized role option \"[redacted]\""
        );
        assert_eq!(redacted("no secret here", ""), "no secret here");
    }

    #[test]
    fn statements_get_every_placeholder() {
        let out = render_statements(
            &[
                "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"
                    .into(),
            ],
            "v-app-1",
            "pw",
            "2026-12-01 10:00:00+00",
        );
        assert_eq!(
            out[0].as_str(),
            "CREATE ROLE \"v-app-1\" PASSWORD 'pw' VALID UNTIL '2026-12-01 10:00:00+00'"
        );
    }
}
