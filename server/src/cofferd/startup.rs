//! Opening storage when the server starts. Two promises to the operator:
//!
//! - the wait is bounded (`[storage] connect_timeout`, 5 s by default) and a
//!   failure names the address tried, never the password in the URL;
//! - one server per SQLite file: the file's write-ahead log and the server's
//!   in-memory state (the seal, caches) assume no other writer, so a second
//!   `cofferd` on the same file refuses to start. The guard is an exclusive
//!   `flock` on `<file>.lock`, taken before the database is touched: the kernel
//!   grants it to exactly one process and drops it when that process dies, so a
//!   crash leaves no stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::Duration;

use coffer_server::config::io_reason;
use coffer_server::storage::{MigrationMode, Storage};

/// Held for as long as the server runs: the SQLite file's lock.
#[derive(Debug)]
pub struct StorageGuard {
    _lock: Option<File>,
}

/// Opens `url` (taking the SQLite lock first), giving up after `timeout`.
pub async fn open_storage(
    url: &str,
    mode: MigrationMode,
    timeout: Duration,
) -> Result<(Storage, StorageGuard), String> {
    let target = describe(url);
    let lock = match sqlite_file(url) {
        Some(path) => Some(lock_sqlite(&path)?),
        None => None,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    // The pool retries a refused connection until its own timeout; one plain TCP
    // connect first turns "nothing listens there" into that reason, at once.
    if let Some((host, port)) = postgres_tcp_target(url) {
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect((host, port))).await
        {
            Ok(Ok(_probe)) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot open storage ({target}): cannot connect: {}",
                    io_reason(&e)
                ))
            }
            Err(_) => return Err(no_answer(&target, timeout)),
        }
    }
    match tokio::time::timeout_at(deadline, Storage::connect(url, mode)).await {
        Ok(Ok(storage)) => Ok((storage, StorageGuard { _lock: lock })),
        Ok(Err(e)) => Err(format!("cannot open storage ({target}): {e}")),
        Err(_) => Err(no_answer(&target, timeout)),
    }
}

fn no_answer(target: &str, timeout: Duration) -> String {
    format!(
        "cannot open storage ({target}): no answer within {} (raise [storage] connect_timeout if the database is slow to answer)",
        humantime::format_duration(timeout)
    )
}

/// Host and port of a PostgreSQL url that names a TCP host (not a socket directory).
fn postgres_tcp_target(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.split('&').any(|p| p.starts_with("host=")) {
        return None;
    }
    let authority = before_query.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, p.parse().ok()?),
        _ => (host_port, 5432),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty() && !host.contains(',')).then(|| (host.to_owned(), port))
}

/// "PostgreSQL at db.internal:5432/coffer" or "SQLite file /var/lib/coffer/coffer.db":
/// where the server looked, without user name, password or options.
pub fn describe(url: &str) -> String {
    if let Some(path) = sqlite_file(url) {
        return format!("SQLite file {}", path.display());
    }
    if url.starts_with("sqlite:") {
        return "SQLite in memory".into();
    }
    let Some((_, rest)) = url.split_once("://") else {
        return "unrecognised url".into();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host_port = match host_port {
        "" => "the local socket".to_owned(),
        h if h.ends_with(']') || !h.contains(':') => format!("{h}:5432"),
        h => h.to_owned(),
    };
    if database.is_empty() {
        format!("PostgreSQL at {host_port}")
    } else {
        format!("PostgreSQL at {host_port}/{database}")
    }
}

/// The database file of a file-backed SQLite url; `None` for memory and other backends.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

fn lock_sqlite(db: &std::path::Path) -> Result<File, String> {
    let mut lock_path = db.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            format!(
                "cannot open the SQLite lock file: {}: {}",
                io_reason(&e),
                lock_path.display()
            )
        })?;
    match try_lock_exclusive(&file) {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(format!(
            "another cofferd is already using the SQLite database {} (it holds the lock on {}): \
             one SQLite file serves one server; stop the other server, or use PostgreSQL to run several nodes",
            db.display(),
            lock_path.display()
        )),
        Err(e) => Err(format!(
            "cannot lock the SQLite lock file: {}: {}",
            io_reason(&e),
            lock_path.display()
        )),
    }
}

#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<()> {
    use rustix::fs::{flock, FlockOperation};
    flock(file, FlockOperation::NonBlockingLockExclusive).map_err(std::io::Error::from)
}

/// Coffer's servers run on Unix; elsewhere the guard is not available.
#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_the_place_and_never_the_credentials() {
        assert_eq!(
            describe("postgres://coffer:s3cret@db.internal:6432/coffer?sslmode=require"),
            "PostgreSQL at db.internal:6432/coffer"
        );
        assert_eq!(
            describe("postgresql://u@10.0.0.1/x"),
            "PostgreSQL at 10.0.0.1:5432/x"
        );
        assert_eq!(
            describe("postgres:///coffer"),
            "PostgreSQL at the local socket/coffer"
        );
        assert_eq!(
            describe("sqlite:///var/lib/coffer/coffer.db"),
            "SQLite file /var/lib/coffer/coffer.db"
        );
        assert_eq!(describe("sqlite:rel.db?mode=rwc"), "SQLite file rel.db");
        assert_eq!(describe("sqlite::memory:"), "SQLite in memory");
    }

    #[test]
    fn tcp_targets_of_postgres_urls() {
        let t = |u: &str| postgres_tcp_target(u);
        assert_eq!(
            t("postgres://u:p@db:6432/x?sslmode=require"),
            Some(("db".into(), 6432))
        );
        assert_eq!(t("postgresql://db/x"), Some(("db".into(), 5432)));
        assert_eq!(t("postgres://[::1]:7/x"), Some(("::1".into(), 7)));
        assert_eq!(t("postgres:///x?host=/run/postgresql"), None);
        assert_eq!(t("postgres:///x"), None);
        assert_eq!(t("sqlite:x.db"), None);
    }

    #[test]
    fn the_lock_is_held_once_and_released_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let first = lock_sqlite(&db).unwrap();
        let e = lock_sqlite(&db).unwrap_err();
        assert!(
            e.contains("another cofferd") && e.contains("c.db.lock"),
            "{e}"
        );
        drop(first);
        assert!(lock_sqlite(&db).is_ok());
    }
}
