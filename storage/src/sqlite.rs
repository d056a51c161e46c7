//! SQLite backend: the embedded default (`--dev` and single-node installs).

use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use super::{Bound, Expect, KeyRange, StorageError, WriteOp};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// A pool of SQLite connections.
#[derive(Clone, Debug)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// For in-memory databases: a connection that is never used and never
    /// closed, so the database outlives any pool connection that is dropped.
    _anchor: Option<std::sync::Arc<tokio::sync::Mutex<sqlx::SqliteConnection>>>,
    /// For in-memory databases: the memdb name (see [`memdb_options`]); kept
    /// so that a test can open the same memdb file beside the pool.
    #[cfg_attr(not(test), allow(dead_code))]
    memdb: Option<String>,
}

impl SqliteStorage {
    pub(super) async fn connect(url: &str) -> Result<SqliteStorage, StorageError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let parsed = super::sqlite_options(url)?;
        let memdb = in_memory.then(|| format!("/coffer-memdb/{}", parsed.get_filename().display()));
        let options = match &memdb {
            Some(name) => memdb_options(name),
            None => parsed,
        };
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut pool = SqlitePoolOptions::new();
        let options = if in_memory {
            // An in-memory database lives as long as its one connection: keep it forever.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            options
        } else {
            // Durability over speed: a secret acknowledged is a secret on disk.
            pool = pool.max_connections(8).test_before_acquire(false);
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
        };
        let anchor = if in_memory {
            use sqlx::ConnectOptions;
            let conn = options
                .clone()
                .connect()
                .await
                .map_err(|e| StorageError::Connect {
                    backend: "sqlite",
                    reason: short_reason(&e),
                })?;
            Some(std::sync::Arc::new(tokio::sync::Mutex::new(conn)))
        } else {
            None
        };
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Connect {
                backend: "sqlite",
                reason: short_reason(&e),
            })?;
        Ok(SqliteStorage {
            pool,
            _anchor: anchor,
            memdb,
        })
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
        let row = sqlx::query("SELECT value FROM coffer_entries WHERE key = ?1")
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
                    "UPDATE coffer_entries SET value = value WHERE key = ?1 AND value = ?2",
                )
                .bind(key)
                .bind(value.as_slice())
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() == 1),
                // Claims the key's slot in the unique index; a concurrent claim
                // waits for this transaction and then finds the key taken.
                Expect::Absent { key } => sqlx::query(
                    "INSERT INTO coffer_entries (key, value, expires_at) VALUES (?1, ?2, NULL) \
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
                sqlx::query("DELETE FROM coffer_entries WHERE key = ?1")
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
        let sql = list_sql(bound, range.end.is_some());
        let mut query = sqlx::query_scalar::<_, String>(sql).bind(lower);
        if let Some(end) = range.end.as_deref() {
            query = query.bind(end);
        }
        Ok(query.bind(i64::from(limit)).fetch_all(&self.pool).await?)
    }

    pub(super) async fn count(&self, range: &KeyRange) -> Result<u64, StorageError> {
        let n = match range.end.as_deref() {
            Some(end) => {
                sqlx::query_scalar::<_, i64>(COUNT_SQL)
                    .bind(&range.start)
                    .bind(end)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM coffer_entries WHERE key >= ?1")
                    .bind(&range.start)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn delete_expired(
        &self,
        range: &KeyRange,
        now: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query_scalar::<_, String>(
            "DELETE FROM coffer_entries WHERE key IN ( \
               SELECT key FROM coffer_entries \
               WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 AND key >= ?2 AND (?3 IS NULL OR key < ?3) \
               ORDER BY expires_at LIMIT ?4) \
             AND expires_at IS NOT NULL AND expires_at <= ?1 \
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
            "UPDATE coffer_entries SET expires_at = ?5 WHERE key IN ( \
               SELECT key FROM coffer_entries \
               WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 AND key >= ?2 AND (?3 IS NULL OR key < ?3) \
               ORDER BY expires_at LIMIT ?4) \
             AND expires_at IS NOT NULL AND expires_at <= ?1 \
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
             WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
               AND key >= ?2 AND (?3 IS NULL OR key < ?3) \
             ORDER BY expires_at LIMIT ?4",
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

/// An in-memory database on SQLite's `memdb` VFS, `name` starting with "/"
/// (made from sqlx's name for the url: every `sqlite::memory:` gets one of its
/// own; a `mode=memory` url keeps the name it gives, so two pools on it share
/// one database).
///
/// Not SQLite's own in-memory pager (`mode=memory&cache=shared`, what sqlx
/// makes of such urls): that pager keeps every page of the database in its
/// page cache, and a commit after a B-tree balance that renumbered pages
/// (they pass through the lock-byte page number, far above the last page)
/// scans the cache's whole hash table. So a commit's cost grew with the size
/// of the database: with 100,000 leases, login p90 was 3.9 times that of an
/// empty database (`perf` and a uprobe on `pcache1TruncateUnsafe`;
/// BENCHMARKS.md).
/// On `memdb` the database is a file in memory behind an ordinary, bounded
/// page cache, as a file on disk is. Its rollback journal is kept in memory
/// too: the VFS would otherwise put it on disk, beside a path that is not one.
/// A memdb file grows to 1 GiB at most (SQLite's default; writes beyond it
/// fail as on a full disk): 100,000 leases took 90 MB, so over a million fit.
fn memdb_options(name: &str) -> SqliteConnectOptions {
    // A memdb name that starts with "/" is one database for every connection
    // of this process that opens it, alive while one of them is open.
    SqliteConnectOptions::new()
        .filename(name)
        .vfs("memdb")
        .journal_mode(SqliteJournalMode::Memory)
        .pragma("temp_store", "memory")
}

/// The prefix listing for a lower bound of kind `bound`, with an upper bound
/// when `bounded`. Both ends are plain comparisons in the statement: with
/// `(?2 IS NULL OR key < ?2)` SQLite bounded the index scan only from below, so
/// a prefix with few keys walked every key after it to the end of the table
/// (unseal lists `core/policy/`, after which come every lease and token: it
/// grew from about 1 ms to 19–30 ms with 100,000 leases).
fn list_sql(bound: Bound, bounded: bool) -> &'static str {
    match (bound, bounded) {
        (Bound::Inclusive, true) => {
            "SELECT key FROM coffer_entries WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
        }
        (Bound::Exclusive, true) => {
            "SELECT key FROM coffer_entries WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
        }
        (Bound::Inclusive, false) => {
            "SELECT key FROM coffer_entries WHERE key >= ?1 ORDER BY key LIMIT ?2"
        }
        (Bound::Exclusive, false) => {
            "SELECT key FROM coffer_entries WHERE key > ?1 ORDER BY key LIMIT ?2"
        }
    }
}

/// The prefix count (bounded on both sides, as [`list_sql`]).
const COUNT_SQL: &str = "SELECT COUNT(*) FROM coffer_entries WHERE key >= ?1 AND key < ?2";

async fn write_ops(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
                    "INSERT INTO coffer_entries (key, value, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                )
                .bind(key)
                .bind(value.as_slice())
                .bind(*expires_at)
                .execute(&mut **tx)
                .await?;
            }
            WriteOp::Delete { key } => {
                sqlx::query("DELETE FROM coffer_entries WHERE key = ?1")
                    .bind(key)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Lock contention that outlasted the busy timeout: the expectation is treated as
/// not met, so the caller re-reads and tries again rather than failing the request.
fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "5" || c == "6" || c == "517"))
}

/// A connection error's kind without anything that could carry a password.
pub(super) fn short_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.kind().to_string(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Tls(_) => "tls error".into(),
        sqlx::Error::Configuration(_) => "invalid configuration".into(),
        _ => "connection failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MigrationMode, Storage};

    /// The index scan of a bounded listing or count is bounded on both sides
    /// (`key>? AND key<?`), so its cost follows the keys under the prefix, not
    /// the keys after it.
    #[tokio::test]
    async fn prefix_scans_are_bounded_on_both_sides() {
        let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
            .await
            .unwrap();
        let Storage::Sqlite(s) = &storage else {
            unreachable!()
        };
        for sql in [
            super::list_sql(super::Bound::Inclusive, true),
            super::list_sql(super::Bound::Exclusive, true),
            super::COUNT_SQL,
        ] {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind("a/")
                .bind("a0")
                .bind(10i64)
                .fetch_all(&s.pool)
                .await
                .unwrap();
            let detail: Vec<String> = rows
                .iter()
                .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
                .collect();
            assert!(
                detail.iter().any(|d| d.contains("key>? AND key<?")),
                "{sql}: {detail:?}"
            );
        }
    }

    /// `sqlite::memory:` is a database on the memdb VFS (not the shared-cache
    /// pager whose commits grew with the database, see [`super::memdb_options`]),
    /// one per connect, with nothing on disk: no journal beside its name.
    #[tokio::test]
    async fn in_memory_databases_are_memdb_files_of_their_own() {
        use sqlx::ConnectOptions;
        let connect = || Storage::connect("sqlite::memory:", MigrationMode::Apply);
        let (one, two) = (connect().await.unwrap(), connect().await.unwrap());
        let name = |storage: &Storage| match storage {
            Storage::Sqlite(s) => s.memdb.clone().unwrap(),
            _ => unreachable!(),
        };
        assert_ne!(name(&one), name(&two));
        // A write in a transaction (a journal's moment) keeps to its database.
        one.put("k", b"v".to_vec()).await.unwrap();
        assert!(two.get("k").await.unwrap().is_none());
        // Another connection on the memdb VFS under that name sees the write:
        // the database is that memdb file.
        let mut other = super::memdb_options(&name(&one)).connect().await.unwrap();
        let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM coffer_entries WHERE key = 'k'")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(found, 1);
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(journal, "memory");
        assert!(!std::path::Path::new("/coffer-memdb").exists());
    }

    #[tokio::test]
    async fn in_memory_database_survives_a_closed_pool_connection() {
        let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
            .await
            .unwrap();
        storage.put("k", b"v".to_vec()).await.unwrap();
        let Storage::Sqlite(s) = &storage else {
            unreachable!()
        };
        // Lose the pool's only connection, as a cancelled query can.
        let conn = s.pool.acquire().await.unwrap();
        conn.close().await.unwrap();
        assert_eq!(storage.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    }
}
