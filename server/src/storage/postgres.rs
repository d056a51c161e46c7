//! PostgreSQL backend: the production store that several nodes share.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use super::sqlite::short_reason;
use super::{KeyRange, StorageError, WriteOp};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// A pool of PostgreSQL connections.
#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub(super) async fn connect(url: &str) -> Result<PostgresStorage, StorageError> {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .min_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            // A ping before every query doubles the round trips; a broken
            // connection fails its query and is replaced.
            .test_before_acquire(false)
            .connect(url)
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
                    .execute(&mut *tx)
                    .await?;
                }
                WriteOp::Delete { key } => {
                    sqlx::query("DELETE FROM coffer_entries WHERE key = $1")
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn list(
        &self,
        range: &KeyRange,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let lower = range
            .after
            .as_deref()
            .filter(|a| *a >= range.start.as_str());
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT key FROM coffer_entries \
             WHERE key >= $1 AND ($2::text IS NULL OR key < $2) AND ($3::text IS NULL OR key > $3) \
             ORDER BY key LIMIT $4",
        )
        .bind(&range.start)
        .bind(range.end.as_deref())
        .bind(lower)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub(super) async fn count(&self, range: &KeyRange) -> Result<u64, StorageError> {
        let n = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM coffer_entries WHERE key >= $1 AND ($2::text IS NULL OR key < $2)",
        )
        .bind(&range.start)
        .bind(range.end.as_deref())
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
