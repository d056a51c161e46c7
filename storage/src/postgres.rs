//! PostgreSQL backend: the production store that several nodes share.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Row;

use super::sqlite::short_reason;
use super::{Bound, Expect, KeyRange, StorageError, WriteOp};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A pool of PostgreSQL connections.
#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub(super) async fn connect(url: &str) -> Result<PostgresStorage, StorageError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|_| StorageError::InvalidUrl("cannot parse the postgres url".into()))?;
        // Plan each statement once per connection. By default PostgreSQL plans
        // a prepared statement afresh for the values of each run as long as
        // its generic plan looks dearer than those custom plans; with the
        // table partitioned (migration 0002) a generic plan covers both
        // partitions, so once the expiring one holds many leases every point
        // read and listing was planned anew on each run (0.1-0.2 ms in bind,
        // against 0.05 on a server without leases). Each statement is a key
        // lookup, a key-range scan or an expiry-index scan whatever the
        // values; the generic plan prunes partitions when it runs.
        let options = options.options([("plan_cache_mode", "force_generic_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .min_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every query doubles the round trips; a broken
            // connection fails its query and is replaced.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Connect {
                backend: "postgres",
                reason: short_reason(&e),
            })?;
        Ok(PostgresStorage { pool })
    }

    pub(super) async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StorageError::Migrate(e.to_string()))
    }

    pub(super) async fn verify_schema(&self) -> Result<(), StorageError> {
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.pool)
            .await
            .map_err(|_| StorageError::SchemaOutdated)?;
        if MIGRATOR.iter().all(|m| applied.contains(&m.version)) {
            Ok(())
        } else {
            Err(StorageError::SchemaOutdated)
        }
    }

    pub(super) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row = sqlx::query("SELECT value FROM coffer_entries WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    pub(super) async fn apply(&self, ops: &[WriteOp]) -> Result<(), StorageError> {
        let mut tx = self.pool.begin().await?;
        write_ops(&mut tx, ops).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn apply_if(
        &self,
        expect: &[&Expect],
        ops: &[WriteOp],
    ) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin().await?;
        let mut placeholders = Vec::new();
        for e in expect {
            let held = match e {
                // A no-op update: it takes the row's write lock and, if another
                // transaction changed the row meanwhile, re-reads it before matching.
                Expect::Unchanged { key, value } => sqlx::query(
                    "UPDATE coffer_entries SET value = value WHERE key = $1 AND value = $2",
                )
                .bind(key)
                .bind(value.as_slice())
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() == 1),
                // Claims the key's slot in the unique index; a concurrent claim
                // waits for this transaction and then finds the key taken.
                Expect::Absent { key } => sqlx::query(
                    "INSERT INTO coffer_entries (key, value, expires_at) VALUES ($1, $2, NULL) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await
                .map(|r| {
                    placeholders.push(key.as_str());
                    r.rows_affected() == 1
                }),
            };
            match held {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) if is_conflict(&e) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        match write_ops(&mut tx, ops).await {
            Ok(()) => {}
            Err(StorageError::Query(e)) if is_conflict(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
        // A key expected absent that no op wrote must not be left as an empty row.
        for key in placeholders {
            let written = ops
                .iter()
                .any(|op| matches!(op, WriteOp::Put { key: k, .. } if k == key));
            if !written {
                sqlx::query("DELETE FROM coffer_entries WHERE key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        match tx.commit().await {
            Ok(()) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn list(
        &self,
        range: &KeyRange,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let (lower, bound) = range.lower();
        // Both ends are plain comparisons in the statement (as on SQLite, see
        // `sqlite::list_sql`): with `($2::text IS NULL OR key < $2)` a generic
        // plan, which PostgreSQL may switch a prepared statement to after five
        // runs, can bound the index scan only from below.
        let sql = match (bound, range.end.is_some()) {
            (Bound::Inclusive, true) => {
                "SELECT key FROM coffer_entries WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
            }
            (Bound::Exclusive, true) => {
                "SELECT key FROM coffer_entries WHERE key > $1 AND key < $2 ORDER BY key LIMIT $3"
            }
            (Bound::Inclusive, false) => {
                "SELECT key FROM coffer_entries WHERE key >= $1 ORDER BY key LIMIT $2"
            }
            (Bound::Exclusive, false) => {
                "SELECT key FROM coffer_entries WHERE key > $1 ORDER BY key LIMIT $2"
            }
        };
        let mut query = sqlx::query_scalar::<_, String>(sql).bind(lower);
        if let Some(end) = range.end.as_deref() {
            query = query.bind(end);
        }
        Ok(query.bind(i64::from(limit)).fetch_all(&self.pool).await?)
    }

    pub(super) async fn count(&self, range: &KeyRange) -> Result<u64, StorageError> {
        // Bounded on both sides for the same reason as `list`.
        let n = match range.end.as_deref() {
            Some(end) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM coffer_entries WHERE key >= $1 AND key < $2",
                )
                .bind(&range.start)
                .bind(end)
                .fetch_one(&self.pool)
                .await?
            }
            None => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM coffer_entries WHERE key >= $1")
                    .bind(&range.start)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    // `delete_expired` and `claim_expired` pick their batch in an array
    // subquery (run once, first) and then touch those keys through the
    // primary key: with `key IN (subquery)` the generic plan (see `connect`)
    // joined the batch against every due row of the table, so each batch
    // cost as much as all the leases due.
    pub(super) async fn delete_expired(
        &self,
        range: &KeyRange,
        now: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query_scalar::<_, String>(
            "DELETE FROM coffer_entries WHERE key = ANY(ARRAY( \
               SELECT key FROM coffer_entries \
               WHERE expires_at IS NOT NULL AND expires_at <= $1 \
                 AND key >= $2 AND ($3::text IS NULL OR key < $3) \
               ORDER BY expires_at LIMIT $4)) \
             AND expires_at IS NOT NULL AND expires_at <= $1 \
             RETURNING key",
        )
        .bind(now)
        .bind(&range.start)
        .bind(range.end.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub(super) async fn claim_expired(
        &self,
        range: &KeyRange,
        now: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query_scalar::<_, String>(
            "UPDATE coffer_entries SET expires_at = $5 WHERE key = ANY(ARRAY( \
               SELECT key FROM coffer_entries \
               WHERE expires_at IS NOT NULL AND expires_at <= $1 \
                 AND key >= $2 AND ($3::text IS NULL OR key < $3) \
               ORDER BY expires_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
             AND expires_at IS NOT NULL AND expires_at <= $1 \
             RETURNING key",
        )
        .bind(now)
        .bind(&range.start)
        .bind(range.end.as_deref())
        .bind(i64::from(limit))
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub(super) async fn expired(
        &self,
        range: &KeyRange,
        now: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT key FROM coffer_entries \
             WHERE expires_at IS NOT NULL AND expires_at <= $1 \
               AND key >= $2 AND ($3::text IS NULL OR key < $3) \
             ORDER BY expires_at LIMIT $4",
        )
        .bind(now)
        .bind(&range.start)
        .bind(range.end.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

async fn write_ops(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ops: &[WriteOp],
) -> Result<(), StorageError> {
    for op in ops {
        match op {
            WriteOp::Put {
                key,
                value,
                expires_at,
            } => {
                sqlx::query(
                    "INSERT INTO coffer_entries (key, value, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
                )
                .bind(key)
                .bind(value.as_slice())
                .bind(*expires_at)
                .execute(&mut **tx)
                .await?;
            }
            WriteOp::Delete { key } => {
                sqlx::query("DELETE FROM coffer_entries WHERE key = $1")
                    .bind(key)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// A serialisation failure or deadlock: the expectation is treated as not met,
/// so the caller re-reads and tries again.
fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40001" || c == "40P01"))
}
