//! Physical storage: a dumb, ordered map of `key -> opaque bytes` in SQLite or
//! PostgreSQL.
//!
//! Storage knows nothing about secrets, keys or tokens: everything above the seal
//! config is barrier ciphertext by the time it arrives here. It offers point reads,
//! atomic batches of writes (so that a change and its index entries, and later its
//! audit record, commit together), paginated prefix listing, and an index on
//! `expires_at` so that expiring entries (tokens, leases) are found by a range scan
//! rather than by loading everything at unseal.
//!
//! Its own crate so that nothing above it can reach sqlx: the server sees only
//! [`Storage`] (re-exported there as `crate::storage`).
#![forbid(unsafe_code)]

mod postgres;
mod sqlite;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod testutil;

use std::str::FromStr;

pub use postgres::PostgresStorage;
pub use sqlite::SqliteStorage;

/// Keys with this prefix (the server's lease store) live in a partition of
/// their own on PostgreSQL (migration 0002), so that however many leases there
/// are, lookups of everything else descend an index that does not hold them.
/// The migration names the same prefix; a unit test checks the two agree.
pub const EXPIRING_PARTITION_PREFIX: &str = "sys/expire/";

/// Errors from the storage layer. The text never includes values or SQL details
/// that could carry data; the cause goes to the log through `source` at debug level.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL did not name a supported backend or could not be parsed.
    #[error("invalid storage url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the {backend} storage: {reason}")]
    Connect {
        /// `sqlite` or `postgres`
        backend: &'static str,
        /// a short, data-free reason
        reason: String,
    },
    /// Applying or checking the schema failed.
    #[error("storage migration failed: {0}")]
    Migrate(String),
    /// The schema is older than this server and migrations are not run on start.
    #[error("the storage schema is not up to date; run `cofferd migrate --config FILE`")]
    SchemaOutdated,
    /// A query failed at run time.
    #[error("an internal storage error occurred")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Query(e)
    }
}

/// One write inside an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace `key`.
    Put {
        /// storage key
        key: String,
        /// opaque (encrypted) bytes
        value: Vec<u8>,
        /// unix seconds after which the entry is due for expiry work
        expires_at: Option<i64>,
    },
    /// Remove `key` (absent keys are fine).
    Delete {
        /// storage key
        key: String,
    },
}

/// A precondition of [`Storage::apply_if`], checked inside the batch's transaction.
///
/// `Unchanged` compares the stored bytes with the bytes read earlier. Above the
/// seal every value is barrier ciphertext under a fresh random nonce, so no two
/// writes ever store the same bytes: equal bytes mean nothing was written in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `key` still holds exactly `value`.
    Unchanged {
        /// storage key
        key: String,
        /// the bytes read earlier
        value: Vec<u8>,
    },
    /// `key` does not exist.
    Absent {
        /// storage key
        key: String,
    },
}

impl Expect {
    pub(crate) fn key(&self) -> &str {
        match self {
            Expect::Unchanged { key, .. } | Expect::Absent { key } => key,
        }
    }
}

/// A page of keys from [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Full keys, in byte order.
    pub keys: Vec<String>,
}

/// The storage backends. An enum rather than a trait object: there are two, both
/// are always compiled in, and the conformance suite runs against each.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Embedded default.
    Sqlite(SqliteStorage),
    /// Production store; several nodes share it.
    Postgres(PostgresStorage),
}

/// How `connect` treats the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationMode {
    /// Apply pending migrations now.
    Apply,
    /// Only check that nothing is pending (the server role has no DDL rights).
    VerifyOnly,
}

impl Storage {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:`, `postgres://...`).
    pub async fn connect(url: &str, mode: MigrationMode) -> Result<Storage, StorageError> {
        let storage = if url.starts_with("sqlite:") {
            Storage::Sqlite(SqliteStorage::connect(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Storage::Postgres(PostgresStorage::connect(url).await?)
        } else {
            return Err(StorageError::InvalidUrl(
                "expected a url starting with sqlite: or postgres://".into(),
            ));
        };
        match mode {
            MigrationMode::Apply => storage.migrate().await?,
            MigrationMode::VerifyOnly => storage.verify_schema().await?,
        }
        Ok(storage)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.migrate().await,
            Storage::Postgres(s) => s.migrate().await,
        }
    }

    async fn verify_schema(&self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.verify_schema().await,
            Storage::Postgres(s) => s.verify_schema().await,
        }
    }

    /// Short name for `sys/seal-status`.
    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgresql",
        }
    }

    /// Reads one entry.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.get(key).await,
            Storage::Postgres(s) => s.get(key).await,
        }
    }

    /// Applies every op in one transaction: all or nothing.
    pub async fn apply(&self, ops: &[WriteOp]) -> Result<(), StorageError> {
        if ops.is_empty() {
            return Ok(());
        }
        // Only the count: keys can name users and secret paths.
        tracing::trace!(operations = ops.len(), "storage batch");
        match self {
            Storage::Sqlite(s) => s.apply(ops).await,
            Storage::Postgres(s) => s.apply(ops).await,
        }
    }

    /// Applies `ops` in one transaction only if every expectation holds when the
    /// transaction checks it; `Ok(false)` (nothing written) when one does not.
    ///
    /// This is the one primitive for single-use and counted state: two requests,
    /// on one node or on several sharing a database, that read the same entry and
    /// both try to change it cannot both succeed. The check takes the row's write
    /// lock (or the would-be row's unique-index slot), so a concurrent writer waits
    /// and then sees the changed row.
    pub async fn apply_if(&self, expect: &[Expect], ops: &[WriteOp]) -> Result<bool, StorageError> {
        tracing::trace!(
            expectations = expect.len(),
            operations = ops.len(),
            "conditional storage batch"
        );
        // One lock order for every transaction, so two batches cannot deadlock on
        // their expectations.
        let mut expect: Vec<&Expect> = expect.iter().collect();
        expect.sort_by(|a, b| a.key().cmp(b.key()));
        match self {
            Storage::Sqlite(s) => s.apply_if(&expect, ops).await,
            Storage::Postgres(s) => s.apply_if(&expect, ops).await,
        }
    }

    /// Puts one entry.
    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.apply(&[WriteOp::Put {
            key: key.to_owned(),
            value,
            expires_at: None,
        }])
        .await
    }

    /// Deletes one entry.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.apply(&[WriteOp::Delete {
            key: key.to_owned(),
        }])
        .await
    }

    /// Lists full keys starting with `prefix`, strictly after `after` (a full key),
    /// in byte order, at most `limit` of them.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StorageError> {
        let range = KeyRange::new(prefix, after);
        let keys = match self {
            Storage::Sqlite(s) => s.list(&range, limit).await?,
            Storage::Postgres(s) => s.list(&range, limit).await?,
        };
        Ok(ListPage { keys })
    }

    /// How many keys lie under `prefix` (an index range count, for gauges).
    pub async fn count(&self, prefix: &str) -> Result<u64, StorageError> {
        let range = KeyRange::new(prefix, None);
        match self {
            Storage::Sqlite(s) => s.count(&range).await,
            Storage::Postgres(s) => s.count(&range).await,
        }
    }

    /// Keys under `prefix` whose `expires_at` is at or before `now`, oldest first.
    pub async fn expired(
        &self,
        prefix: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let range = KeyRange::new(prefix, None);
        match self {
            Storage::Sqlite(s) => s.expired(&range, now, limit).await,
            Storage::Postgres(s) => s.expired(&range, now, limit).await,
        }
    }

    /// Deletes up to `limit` keys under `prefix` whose `expires_at` is at or before
    /// `now`, deciding expiry in the delete itself (an entry rewritten with a later
    /// expiry meanwhile stays). Returns the deleted keys.
    pub async fn delete_expired(
        &self,
        prefix: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let range = KeyRange::new(prefix, None);
        match self {
            Storage::Sqlite(s) => s.delete_expired(&range, now, limit).await,
            Storage::Postgres(s) => s.delete_expired(&range, now, limit).await,
        }
    }

    /// Claims up to `limit` keys under `prefix` whose `expires_at` is at or before
    /// `now` by moving their expiry to `until`, in one statement, and returns them.
    /// Workers on several nodes each get different keys: on PostgreSQL the rows are
    /// chosen `FOR UPDATE SKIP LOCKED`, on SQLite the statement holds the write lock.
    /// A claim that is not finished (the node died) comes due again at `until`.
    pub async fn claim_expired(
        &self,
        prefix: &str,
        now: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<String>, StorageError> {
        let range = KeyRange::new(prefix, None);
        match self {
            Storage::Sqlite(s) => s.claim_expired(&range, now, until, limit).await,
            Storage::Postgres(s) => s.claim_expired(&range, now, until, limit).await,
        }
    }

    /// Deletes every key under `prefix`, in bounded batches.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let mut removed = 0u64;
        loop {
            let page = self.list(prefix, None, 500).await?;
            if page.keys.is_empty() {
                return Ok(removed);
            }
            removed += page.keys.len() as u64;
            let ops: Vec<WriteOp> = page
                .keys
                .into_iter()
                .map(|key| WriteOp::Delete { key })
                .collect();
            self.apply(&ops).await?;
        }
    }
}

/// A half-open byte range `[start, end)` covering every key with a prefix, with an
/// optional exclusive lower bound for pagination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub(crate) start: String,
    pub(crate) end: Option<String>,
    pub(crate) after: Option<String>,
}

impl KeyRange {
    pub(crate) fn new(prefix: &str, after: Option<&str>) -> KeyRange {
        KeyRange {
            start: prefix.to_owned(),
            end: prefix_upper_bound(prefix),
            after: after.map(str::to_owned),
        }
    }

    /// The lower end of the range as the backends bind it: `after` (exclusive)
    /// when it lies at or above the prefix, else the prefix itself (inclusive).
    /// An `after` below the prefix is ignored rather than widening the range.
    pub(crate) fn lower(&self) -> (&str, Bound) {
        match self.after.as_deref() {
            Some(after) if after >= self.start.as_str() => (after, Bound::Exclusive),
            _ => (self.start.as_str(), Bound::Inclusive),
        }
    }
}

/// Whether the lower end of a [`KeyRange`] is part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// `key >= lower`
    Inclusive,
    /// `key > lower`
    Exclusive,
}

/// The smallest string greater than every string that starts with `prefix`, in
/// code-point (= UTF-8 byte) order; `None` when there is none (empty prefix).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Parses `sqlite:` URLs leniently: `sqlite:///abs/path`, `sqlite://rel/path`,
/// `sqlite:path` and `sqlite::memory:`.
pub(crate) fn sqlite_options(
    url: &str,
) -> Result<sqlx::sqlite::SqliteConnectOptions, StorageError> {
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|_| StorageError::InvalidUrl("cannot parse the sqlite url".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upper_bound_of_slash_prefix() {
        assert_eq!(prefix_upper_bound("a/b/").as_deref(), Some("a/b0"));
        assert_eq!(prefix_upper_bound(""), None);
    }

    proptest! {
        #[test]
        fn upper_bound_is_above_every_key_with_the_prefix(prefix in "\\PC{0,8}", rest in "\\PC{0,8}") {
            let key = format!("{prefix}{rest}");
            if let Some(upper) = prefix_upper_bound(&prefix) {
                prop_assert!(key.as_str() < upper.as_str());
                prop_assert!(prefix.as_str() < upper.as_str());
            }
        }
    }
}
