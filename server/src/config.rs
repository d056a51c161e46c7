//! The server configuration file (TOML) and its environment overrides. Parsing is
//! strict: unknown keys, missing files and impossible combinations are errors
//! that name the problem.
//!
//! Errors say where: a parse or schema error names the line, the column, the
//! `[table]` and the key it was found at, because serde's own messages name
//! neither (an untagged enum once answered a typo in `[listener]` with "data did
//! not match any variant").
//!
//! Environment overrides (applied after the file):
//! - `COFFER_STORAGE_URL` replaces `[storage] url` (keeps database passwords out of files)
//! - `COFFER_LOG_LEVEL` replaces `log_level`
//! - `COFFER_LOG_FORMAT` replaces `log_format`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::http::tls::{ClientAuth, TlsFiles};
use crate::http::{ListenerSpec, DEFAULT_MAX_REQUEST_SIZE};
use crate::logical::parse_duration;
use crate::token::TtlLimits;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File unreadable: "No such file or directory: PATH", as a shell says it.
    #[error("cannot read config file: {reason}: {path}")]
    Read {
        /// path
        path: String,
        /// the operating system's description, without its error number
        reason: String,
    },
    /// TOML or schema error, with where it was found.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// path
        path: String,
        /// what is wrong
        message: String,
    },
    /// Semantically wrong.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[storage]`
    pub storage: Option<StorageSection>,
    /// `[listener]` or `[[listener]]`
    #[serde(default)]
    pub listener: Option<OneOrMany<ListenerSection>>,
    /// trace, debug, info, warn, error
    pub log_level: Option<String>,
    /// text or json
    pub log_format: Option<String>,
    /// e.g. "24h"
    pub default_lease_ttl: Option<String>,
    /// e.g. "768h"
    pub max_lease_ttl: Option<String>,
    /// shown in status answers
    pub cluster_name: Option<String>,
    /// longest a request waits for an audit device, e.g. "2s" or "500ms"
    pub audit_write_timeout: Option<String>,
    /// how often audit devices write a signed checkpoint, e.g. "5m"
    pub audit_checkpoint_interval: Option<String>,
    /// the only directory API-created file audit devices may write in
    /// (default `/var/log/coffer`)
    pub audit_file_directory: Option<PathBuf>,
    /// password hashes computed at once (default: the number of cores)
    pub password_hash_concurrency: Option<usize>,
    /// how long a login waits for a hashing slot before 503, e.g. "1s"
    pub password_hash_queue_timeout: Option<String>,
}

/// A table or an array of tables.
///
/// Not `#[serde(untagged)]`: an untagged enum buffers the table, tries each
/// variant and then reports only "data did not match any variant", losing the
/// key and the line of the real mistake. This looks at the shape first and lets
/// the table's own error (say, an unknown field) through.
#[derive(Debug)]
pub enum OneOrMany<T> {
    /// `[x]`
    One(T),
    /// `[[x]]`
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Shape<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [table] or an [[array of tables]]")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OneOrMany::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(OneOrMany::Many)
            }
        }
        deserializer.deserialize_any(Shape(std::marker::PhantomData))
    }
}

/// `[storage]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `sqlite:///path/coffer.db` or `postgres://...`
    pub url: Option<String>,
    /// apply migrations on start (default true); set false when the server's
    /// database role has no DDL rights and `cofferd migrate` runs separately
    pub migrate_on_start: Option<bool>,
    /// longest the server waits for the database at start, e.g. "5s" (the default)
    pub connect_timeout: Option<String>,
}

/// `[listener]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// host:port
    pub address: String,
    /// PEM chain
    pub tls_cert_file: Option<PathBuf>,
    /// PEM key
    pub tls_key_file: Option<PathBuf>,
    /// PEM CAs that client certificate chains are verified against
    pub tls_client_ca_file: Option<PathBuf>,
    /// "none" (default), "request" or "require"
    pub client_auth: Option<String>,
    /// plain HTTP (loudly warned)
    #[serde(default)]
    pub tls_disable: bool,
    /// bytes
    pub max_request_size: Option<usize>,
    /// JSON structural tokens (`[`, `{`, `,`, `:`) per body
    pub max_json_values: Option<usize>,
    /// e.g. "10s": accept (or first byte) to the end of a request's headers
    pub header_read_timeout: Option<String>,
    /// e.g. "30s": the whole body of a request
    pub body_read_timeout: Option<String>,
    /// e.g. "5m": a kept-alive connection with no request
    pub idle_timeout: Option<String>,
    /// connections this listener holds at once
    pub max_connections: Option<usize>,
    /// connections this listener holds at once from one IP address
    pub max_connections_per_address: Option<usize>,
    /// `sys/metrics` without a token (for a scraper on a private listener)
    #[serde(default)]
    pub unauthenticated_metrics_access: bool,
}

/// How long the server waits for its database by default before it stops with
/// the address it tried: long enough for a database on another host, short
/// enough that a wrong address is seen at once rather than after a minute.
pub const DEFAULT_STORAGE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The resolved, validated settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// storage url (may hold a password: never log it)
    pub storage_url: String,
    /// run migrations on start
    pub migrate_on_start: bool,
    /// how long opening storage may take before the server gives up
    pub storage_connect_timeout: std::time::Duration,
    /// listeners
    pub listeners: Vec<ListenerSpec>,
    /// log level
    pub log_level: Option<String>,
    /// log format
    pub log_format: Option<String>,
    /// token TTLs
    pub ttl: TtlLimits,
    /// cluster name
    pub cluster_name: String,
    /// audit timeouts and checkpoint interval
    pub audit: crate::audit::AuditSettings,
    /// the password hashing pool
    pub password_hashing: crate::auth::password::PoolSettings,
}

impl ServerConfig {
    /// Reads, parses and validates `path`, then applies environment overrides.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: io_reason(&e),
        })?;
        let file = parse_file(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        ServerConfig::resolve(
            file,
            env("COFFER_STORAGE_URL"),
            env("COFFER_LOG_LEVEL"),
            env("COFFER_LOG_FORMAT"),
        )
    }

    fn resolve(
        file: FileConfig,
        env_storage: Option<String>,
        env_level: Option<String>,
        env_format: Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let storage = file.storage.unwrap_or(StorageSection {
            url: None,
            migrate_on_start: None,
            connect_timeout: None,
        });
        let storage_connect_timeout = match &storage.connect_timeout {
            Some(t) => parse_interval(t, "[storage] connect_timeout")?,
            None => DEFAULT_STORAGE_CONNECT_TIMEOUT,
        };
        let storage_url = env_storage.or(storage.url).ok_or_else(|| {
            ConfigError::Invalid("[storage] url is required (or set COFFER_STORAGE_URL)".into())
        })?;
        let listeners = match file.listener {
            None => {
                return Err(ConfigError::Invalid(
                    "at least one [listener] is required".into(),
                ))
            }
            Some(OneOrMany::One(l)) => vec![l],
            Some(OneOrMany::Many(v)) if v.is_empty() => {
                return Err(ConfigError::Invalid(
                    "at least one [listener] is required".into(),
                ))
            }
            Some(OneOrMany::Many(v)) => v,
        };
        let listeners = listeners
            .into_iter()
            .map(listener_spec)
            .collect::<Result<Vec<_>, _>>()?;
        let mut ttl = TtlLimits::default();
        if let Some(d) = &file.default_lease_ttl {
            ttl.default_ttl = parse_duration(d)
                .map_err(|e| ConfigError::Invalid(format!("default_lease_ttl: {e}")))?;
        }
        if let Some(m) = &file.max_lease_ttl {
            ttl.max_ttl = parse_duration(m)
                .map_err(|e| ConfigError::Invalid(format!("max_lease_ttl: {e}")))?;
        }
        if ttl.default_ttl == 0 || ttl.max_ttl == 0 || ttl.default_ttl > ttl.max_ttl {
            return Err(ConfigError::Invalid(
                "default_lease_ttl must be positive and at most max_lease_ttl".into(),
            ));
        }
        let log_format = env_format.or(file.log_format);
        if let Some(f) = &log_format {
            if f != "text" && f != "json" {
                return Err(ConfigError::Invalid(format!(
                    "log_format must be \"text\" or \"json\", not \"{f}\""
                )));
            }
        }
        let mut audit = crate::audit::AuditSettings::default();
        if let Some(t) = &file.audit_write_timeout {
            audit.write_timeout = parse_interval(t, "audit_write_timeout")?;
        }
        if let Some(t) = &file.audit_checkpoint_interval {
            audit.checkpoint_interval = parse_interval(t, "audit_checkpoint_interval")?;
        }
        if let Some(dir) = file.audit_file_directory {
            if !dir.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "audit_file_directory must be an absolute path, not \"{}\"",
                    dir.display()
                )));
            }
            audit.file_directory = dir;
        }
        let mut password_hashing = crate::auth::password::PoolSettings::default();
        if let Some(n) = file.password_hash_concurrency {
            if n == 0 {
                return Err(ConfigError::Invalid(
                    "password_hash_concurrency must be positive".into(),
                ));
            }
            password_hashing.concurrency = n;
        }
        if let Some(t) = &file.password_hash_queue_timeout {
            password_hashing.queue_timeout = parse_interval(t, "password_hash_queue_timeout")?;
        }
        Ok(ServerConfig {
            audit,
            password_hashing,
            storage_url,
            migrate_on_start: storage.migrate_on_start.unwrap_or(true),
            storage_connect_timeout,
            listeners,
            log_level: env_level.or(file.log_level),
            log_format,
            ttl,
            cluster_name: file.cluster_name.unwrap_or_else(|| "coffer-cluster".into()),
        })
    }
}

/// "500ms", or anything [`parse_duration`] takes; must be positive.
fn parse_interval(text: &str, key: &str) -> Result<std::time::Duration, ConfigError> {
    let parsed = match text.trim().strip_suffix("ms") {
        Some(ms) => ms
            .trim()
            .parse::<u64>()
            .ok()
            .map(std::time::Duration::from_millis),
        None => parse_duration(text)
            .ok()
            .map(std::time::Duration::from_secs),
    };
    parsed.filter(|d| !d.is_zero()).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{key}: \"{text}\" is not a positive duration such as \"2s\" or \"500ms\""
        ))
    })
}

/// The file's text as TOML into [`FileConfig`]; the error says where.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.message().trim_end().to_owned() + &where_in(text, e.span()))
}

/// `log_format` as written in a file that may not parse, so that even the error
/// about that file comes out in the format asked for.
pub fn peek_log_format(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table.get("log_format")?.as_str().map(str::to_owned)
}

/// An io error as the operating system words it ("No such file or directory"),
/// without Rust's " (os error 2)".
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// " (line 7, column 1: [listener] tls_disabel)": where the error is, and the table
/// and key on that line when there is one.
fn where_in(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let start = floor_char_boundary(text, span.start);
    let before = &text[..start];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim());
    let key = if line.starts_with('[') {
        None
    } else {
        line.split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|k| !k.is_empty())
    };
    let place = match (table, key) {
        (_, None) if line.starts_with('[') => {
            format!(": {}", line.split('#').next().unwrap_or(line).trim())
        }
        (Some(t), Some(k)) => format!(": {t} {k}"),
        (None, Some(k)) => format!(": {k}"),
        (Some(t), None) => format!(": in {t}"),
        (None, None) => String::new(),
    };
    format!(" (line {line_no}, column {column}{place})")
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `host:port`, where the host may be a name: `localhost:8200` binds loopback as
/// Vault does. A name that resolves to several addresses binds the first IPv4 one
/// (Go's choice for `localhost`), else the first.
pub fn resolve_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = || {
        format!("listen address \"{text}\" is not host:port (e.g. 0.0.0.0:8200 or localhost:8200)")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| {
            format!(
                "listen address \"{text}\": cannot resolve {host}: {}",
                io_reason(&e)
            )
        })?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("listen address \"{text}\": {host} resolves to no address"))
}

fn listener_spec(l: ListenerSection) -> Result<ListenerSpec, ConfigError> {
    let address = resolve_listen_address(&l.address)
        .map_err(|e| ConfigError::Invalid(format!("[listener] address: {e}")))?;
    if l.tls_disable && (l.client_auth.is_some() || l.tls_client_ca_file.is_some()) {
        return Err(ConfigError::Invalid(format!(
            "listener {address}: client_auth and tls_client_ca_file need TLS, and tls_disable = true"
        )));
    }
    let tls = if l.tls_disable {
        None
    } else {
        match (l.tls_cert_file, l.tls_key_file) {
            (Some(cert_file), Some(key_file)) => {
                let client_auth = match l.client_auth.as_deref() {
                    None => ClientAuth::None,
                    Some(text) => ClientAuth::parse(text).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "listener {address}: client_auth = \"{text}\": expected \"none\", \"request\" or \"require\""
                        ))
                    })?,
                };
                if client_auth == ClientAuth::Require && l.tls_client_ca_file.is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "listener {address}: client_auth = \"require\" needs tls_client_ca_file (the CAs client certificates are verified against)"
                    )));
                }
                Some(TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: l.tls_client_ca_file,
                    client_auth,
                })
            }
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "listener {address}: tls_cert_file and tls_key_file are required unless tls_disable = true"
                )))
            }
        }
    };
    let max_request_size = l.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE);
    if max_request_size == 0 {
        return Err(ConfigError::Invalid(
            "max_request_size must be positive".into(),
        ));
    }
    let mut spec = ListenerSpec::plain(address);
    let positive = |v: Option<usize>, key: &str, default: usize| match v {
        Some(0) => Err(ConfigError::Invalid(format!(
            "listener {address}: {key} must be positive"
        ))),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    spec.max_json_values = positive(l.max_json_values, "max_json_values", spec.max_json_values)?;
    let c = &mut spec.connections;
    c.max_connections = positive(l.max_connections, "max_connections", c.max_connections)?;
    c.max_connections_per_address = positive(
        l.max_connections_per_address,
        "max_connections_per_address",
        c.max_connections_per_address,
    )?;
    if let Some(t) = &l.header_read_timeout {
        c.header_read_timeout = parse_interval(t, "header_read_timeout")?;
    }
    if let Some(t) = &l.idle_timeout {
        c.idle_timeout = parse_interval(t, "idle_timeout")?;
    }
    if let Some(t) = &l.body_read_timeout {
        spec.body_read_timeout = parse_interval(t, "body_read_timeout")?;
    }
    spec.tls = tls;
    spec.max_request_size = max_request_size;
    spec.unauthenticated_metrics_access = l.unauthenticated_metrics_access;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfigError> {
        let file = parse_file(text).map_err(|message| ConfigError::Parse {
            path: "t".into(),
            message,
        })?;
        ServerConfig::resolve(file, None, None, None)
    }

    #[test]
    fn a_typo_in_a_listener_names_the_key_the_table_and_its_line() {
        for header in ["[listener]", "[[listener]]"] {
            let text = format!(
                "log_level = 'info'\n[storage]\nurl = 'x'\n\n{header}\naddress = '127.0.0.1:0'\ntls_disabel = true\n"
            );
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("unknown field `tls_disabel`"), "{e}");
            assert!(
                e.contains(&format!("(line 7, column 1: {header} tls_disabel)")),
                "{e}"
            );
            assert!(!e.contains("variant"), "{e}");
        }
    }

    #[test]
    fn a_wrong_type_names_the_key_and_its_line() {
        let e = parse("[storage]\nurl = 'x'\nmigrate_on_start = 'yes'\n[listener]\naddress = '127.0.0.1:0'\ntls_disable = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("[storage] migrate_on_start"),
            "{e}"
        );
        let e = parse("[storage]\nurl = 'x'\n[listener]\naddress = 8200\ntls_disable = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4") && e.contains("[listener] address"),
            "{e}"
        );
        let e = parse("[storage]\nurl = 'x'\n[listener]\ntls_disable = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing field `address`") && e.contains("[listener]"),
            "{e}"
        );
        let e = parse("bogus_top = 1\n[storage]\nurl = 'x'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus_top") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn localhost_is_a_listen_address() {
        let c =
            parse("[storage]\nurl='x'\n[listener]\naddress='localhost:8200'\ntls_disable=true\n")
                .unwrap();
        assert_eq!(c.listeners[0].address, "127.0.0.1:8200".parse().unwrap());
        let e = parse("[storage]\nurl='x'\n[listener]\naddress='localhost'\ntls_disable=true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[listener] address") && e.contains("host:port"),
            "{e}"
        );
    }

    #[test]
    fn the_storage_connect_timeout_defaults_to_five_seconds() {
        let base = "[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n[storage]\nurl='x'\n";
        assert_eq!(parse(base).unwrap().storage_connect_timeout.as_secs(), 5);
        let c = parse(&format!("{base}connect_timeout = '750ms'\n")).unwrap();
        assert_eq!(c.storage_connect_timeout.as_millis(), 750);
        let e = parse(&format!("{base}connect_timeout = '0s'\n")).unwrap_err();
        assert!(e.to_string().contains("connect_timeout"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named_as_a_shell_names_it() {
        let e = ServerConfig::load(Path::new("/nonexistent/coffer.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read config file: No such file or directory: /nonexistent/coffer.toml"
        );
    }

    #[test]
    fn client_auth_is_checked_where_the_config_is_read() {
        let tls = "tls_cert_file='c.pem'\ntls_key_file='k.pem'\n";
        let with = |extra: &str| {
            parse(&format!(
                "[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\n{extra}\n"
            ))
        };
        let c = with(&format!("{tls}client_auth='request'")).unwrap();
        let files = c.listeners[0].tls.as_ref().unwrap();
        assert_eq!(files.client_auth, ClientAuth::Request);
        assert!(files.client_ca_file.is_none());
        let c = with(&format!(
            "{tls}client_auth='require'\ntls_client_ca_file='ca.pem'"
        ))
        .unwrap();
        let files = c.listeners[0].tls.as_ref().unwrap();
        assert_eq!(files.client_auth, ClientAuth::Require);
        assert_eq!(files.client_ca_file.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(
            with(tls).unwrap().listeners[0]
                .tls
                .as_ref()
                .unwrap()
                .client_auth,
            ClientAuth::None
        );
        let e = with(&format!("{tls}client_auth='require'"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs tls_client_ca_file"), "{e}");
        let e = with(&format!("{tls}client_auth='always'"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"none\", \"request\" or \"require\""), "{e}");
        let e = with("tls_disable=true\nclient_auth='request'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("need TLS"), "{e}");
    }

    #[test]
    fn single_and_array_listeners() {
        let one = parse("[storage]\nurl='sqlite::memory:'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n").unwrap();
        assert_eq!(one.listeners.len(), 1);
        assert!(one.listeners[0].tls.is_none());
        let many = parse(
            "[storage]\nurl='sqlite::memory:'\n[[listener]]\naddress='127.0.0.1:1'\ntls_disable=true\n[[listener]]\naddress='127.0.0.1:2'\ntls_cert_file='c.pem'\ntls_key_file='k.pem'\n",
        )
        .unwrap();
        assert_eq!(many.listeners.len(), 2);
        assert!(many.listeners[1].tls.is_some());
        assert_eq!(many.listeners[0].max_request_size, DEFAULT_MAX_REQUEST_SIZE);
        assert_eq!(
            many.listeners[0].connections,
            crate::http::ConnectionLimits::default()
        );
    }

    #[test]
    fn connection_bounds_and_the_hashing_pool_are_configurable() {
        let c = parse(
            "password_hash_concurrency = 3\npassword_hash_queue_timeout = '250ms'\n[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\nheader_read_timeout='2s'\nbody_read_timeout='3s'\nidle_timeout='1m'\nmax_connections=10\nmax_connections_per_address=5\nmax_json_values=100\n",
        )
        .unwrap();
        let l = &c.listeners[0];
        assert_eq!(l.connections.header_read_timeout.as_secs(), 2);
        assert_eq!(l.connections.idle_timeout.as_secs(), 60);
        assert_eq!(l.body_read_timeout.as_secs(), 3);
        assert_eq!(
            (
                l.connections.max_connections,
                l.connections.max_connections_per_address
            ),
            (10, 5)
        );
        assert_eq!(l.max_json_values, 100);
        assert_eq!(c.password_hashing.concurrency, 3);
        assert_eq!(c.password_hashing.queue_timeout.as_millis(), 250);
        for bad in [
            "max_connections=0",
            "max_connections_per_address=0",
            "header_read_timeout='0s'",
            "idle_timeout='soon'",
        ] {
            let text = format!(
                "[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n{bad}\n"
            );
            assert!(parse(&text).is_err(), "{bad}");
        }
        assert!(parse("password_hash_concurrency = 0\n[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n").is_err());
    }

    #[test]
    fn unknown_keys_and_missing_tls_are_errors() {
        let e =
            parse("[storage]\nurl='x'\nbogus=1\n[listener]\naddress='127.0.0.1:0'\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = parse("[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\n").unwrap_err();
        assert!(e.to_string().contains("tls_cert_file"), "{e}");
        let e = parse("[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n").unwrap_err();
        assert!(e.to_string().contains("[storage] url"), "{e}");
        let e = parse("[storage]\nurl='x'\n[listener]\naddress='nope'\ntls_disable=true\n")
            .unwrap_err();
        assert!(e.to_string().contains("host:port"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let file: FileConfig = toml::from_str(
            "[storage]\nurl='sqlite:a.db'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n",
        )
        .unwrap();
        let c = ServerConfig::resolve(
            file,
            Some("postgres://x/y".into()),
            Some("debug".into()),
            None,
        )
        .unwrap();
        assert_eq!(c.storage_url, "postgres://x/y");
        assert_eq!(c.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn audit_file_directory_defaults_and_must_be_absolute() {
        let base = "[storage]\nurl='x'\n[listener]\naddress='127.0.0.1:0'\ntls_disable=true\n";
        let c = parse(base).unwrap();
        assert_eq!(c.audit.file_directory, PathBuf::from("/var/log/coffer"));
        let c = parse(&format!("audit_file_directory = '/srv/audit'\n{base}")).unwrap();
        assert_eq!(c.audit.file_directory, PathBuf::from("/srv/audit"));
        let e = parse(&format!("audit_file_directory = 'logs'\n{base}")).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
