//! The shapes every engine speaks: an operation on a path with JSON data in, a
//! response or a [`LogicalError`] out. Also the typed readers for request fields
//! (Vault accepts numbers as strings, booleans as strings, durations as "1h30m"
//! or seconds, lists as arrays or comma-separated strings).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::barrier::BarrierError;
use crate::crypto::SecretString;

/// What a request does, as policies will name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GET
    Read,
    /// LIST or GET ?list=true
    List,
    /// POST/PUT to a path that does not exist yet (engines may not distinguish)
    Create,
    /// POST/PUT
    Update,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Operation {
    /// Vault's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
        }
    }

    /// POST/PUT (create and update are treated alike by most handlers).
    pub fn is_write(self) -> bool {
        matches!(self, Operation::Create | Operation::Update)
    }
}

/// A request as the core and engines see it: transport details are gone.
/// Its fields may hold passwords, codes and secret values: they are zeroized when
/// the request is dropped and `Debug` shows only their names.
#[derive(Clone)]
pub struct Request {
    /// unique id, echoed as `request_id`
    pub id: String,
    /// what to do
    pub operation: Operation,
    /// path below `/v1/`, without leading or trailing slash handling applied
    pub path: String,
    /// body fields (or query fields for reads)
    pub data: Map<String, Value>,
    /// the body's media type, for PATCH
    pub content_type: Option<String>,
    /// the token presented, if any
    pub client_token: Option<SecretString>,
    /// list pagination: return keys after this one
    pub list_after: Option<String>,
    /// list pagination: at most this many keys
    pub list_limit: Option<u32>,
    /// `X-Vault-MFA: <method>:<code>` (single-step login)
    pub mfa_header: Option<SecretString>,
    /// the connection it came over: client address, verified client certificates
    pub connection: ConnectionInfo,
    /// the listener lets `sys/metrics` be read without a token
    pub unauthenticated_metrics: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("path", &self.path)
            .field("fields", &self.data.keys().collect::<Vec<_>>())
            .field("client_token", &self.client_token)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// The connection a request came over, as the listener verified it.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// the client's address, for rate limits and bound CIDRs
    pub remote_addr: Option<std::net::IpAddr>,
    /// the client's certificate chain (DER, leaf first) when the listener asked
    /// for one; empty otherwise. The handshake proved the client holds the
    /// leaf's key; the chain was verified only if the listener has a client CA
    /// file, so whoever trusts it verifies it (as `auth/cert` does)
    pub client_certificates: std::sync::Arc<[Vec<u8>]>,
}

impl Request {
    /// A request with no body, token or connection details (tests, internal calls).
    pub fn new(operation: Operation, path: impl Into<String>) -> Request {
        Request {
            id: String::new(),
            operation,
            path: path.into(),
            data: Map::new(),
            content_type: None,
            client_token: None,
            list_after: None,
            list_limit: None,
            mfa_header: None,
            connection: ConnectionInfo::default(),
            unauthenticated_metrics: false,
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        for v in self.data.values_mut() {
            zeroize_value(v);
        }
    }
}

/// Overwrites every string inside `value` (keys are names, not secrets).
pub fn zeroize_value(value: &mut Value) {
    use zeroize::Zeroize as _;
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

/// The body kind of a [`Response`].
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseBody {
    /// Vault's envelope (`request_id`, `data`, `auth`, ...).
    Envelope {
        /// `data`
        data: Option<Value>,
        /// `auth`
        auth: Option<Value>,
        /// `warnings`
        warnings: Vec<String>,
    },
    /// A bare JSON document (sys/health, sys/seal-status, sys/init, ...).
    Raw(Value),
    /// 204.
    Empty,
    /// Plain text (Prometheus exposition).
    Text(String),
    /// Bytes with their media type: a DER certificate or CRL, a PEM file
    /// (PKI's unauthenticated reads, as Vault serves them).
    Bytes {
        /// the `Content-Type`
        content_type: &'static str,
        /// the body
        body: Vec<u8>,
    },
}

/// A lease on what a response hands out (a credential, a certificate): the
/// client renews it or lets it run out, and the engine that issued it revokes
/// what it stands for when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// the engine's id; the core prefixes the request path, as Vault's ids are
    pub id: String,
    /// seconds until it ends unless renewed
    pub ttl: u64,
    /// whether `sys/leases/renew` may extend it
    pub renewable: bool,
}

/// What a handler answers. Most answers are 200; KV answers 404 with a body for
/// deleted versions, which is why status is part of a successful response.
/// `Debug` names the body's kind only: answers carry secrets.
#[derive(Clone, PartialEq)]
pub struct Response {
    /// HTTP status
    pub status: u16,
    /// body
    pub body: ResponseBody,
    /// the mount type for `mount_type`
    pub mount_type: Option<String>,
    /// also copy `data`'s fields to the top level (old clients of sys/mounts,
    /// sys/auth and sys/key-status read them there)
    pub legacy_top_level: bool,
    /// the lease on what `data` hands out, rendered as `lease_id`,
    /// `lease_duration` and `renewable`
    pub lease: Option<Lease>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = match &self.body {
            ResponseBody::Envelope { data, auth, .. } => match (data.is_some(), auth.is_some()) {
                (_, true) => "envelope with auth",
                (true, false) => "envelope with data",
                (false, false) => "envelope",
            },
            ResponseBody::Raw(_) => "document",
            ResponseBody::Empty => "empty",
            ResponseBody::Text(_) => "text",
            ResponseBody::Bytes { .. } => "bytes",
        };
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body", &body)
            .field("mount_type", &self.mount_type)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// 200 with `data`.
    pub fn data(data: Value) -> Response {
        Response {
            status: 200,
            body: ResponseBody::Envelope {
                data: Some(data),
                auth: None,
                warnings: Vec::new(),
            },
            mount_type: None,
            legacy_top_level: false,
            lease: None,
        }
    }

    /// 200 with `auth`.
    pub fn auth(auth: Value) -> Response {
        Response {
            status: 200,
            body: ResponseBody::Envelope {
                data: None,
                auth: Some(auth),
                warnings: Vec::new(),
            },
            mount_type: None,
            legacy_top_level: false,
            lease: None,
        }
    }

    /// 204.
    pub fn no_content() -> Response {
        Response {
            status: 204,
            body: ResponseBody::Empty,
            mount_type: None,
            legacy_top_level: false,
            lease: None,
        }
    }

    /// A bare document with a status.
    pub fn raw(status: u16, body: Value) -> Response {
        Response {
            status,
            body: ResponseBody::Raw(body),
            mount_type: None,
            legacy_top_level: false,
            lease: None,
        }
    }

    /// 200 with a body of bytes and its media type.
    pub fn bytes(content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status: 200,
            body: ResponseBody::Bytes { content_type, body },
            mount_type: None,
            legacy_top_level: false,
            lease: None,
        }
    }

    /// Sets the status (e.g. 404 with a body).
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Copies `data`'s fields to the top level too.
    pub fn with_legacy_top_level(mut self) -> Response {
        self.legacy_top_level = true;
        self
    }

    /// Attaches a lease.
    pub fn with_lease(mut self, lease: Lease) -> Response {
        self.lease = Some(lease);
        self
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Response {
        if let ResponseBody::Envelope { warnings, .. } = &mut self.body {
            warnings.push(warning.into());
        }
        self
    }

    /// A LIST answer: `{"keys": [...]}` or 404 when there are none, as Vault does.
    pub fn list(keys: Vec<String>) -> Result<Response, LogicalError> {
        if keys.is_empty() {
            return Err(LogicalError::NotFound);
        }
        Ok(Response::data(serde_json::json!({ "keys": keys })))
    }
}

/// Errors of engines and the token store. Mapped to HTTP once, in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum LogicalError {
    /// 400 with this message.
    #[error("{0}")]
    InvalidRequest(String),
    /// 404 with an empty error list.
    #[error("not found")]
    NotFound,
    /// 403.
    #[error("permission denied")]
    PermissionDenied,
    /// 429: too many attempts; retry after this many seconds.
    #[error("too many attempts; retry in {0} seconds")]
    RateLimited(u64),
    /// 503: the server is at a bound it keeps (password hashing pool full);
    /// retry after this many seconds.
    #[error("the server is busy; retry in {0} seconds")]
    Busy(u64),
    /// 403 with an explanation.
    #[error("{0}")]
    Forbidden(String),
    /// 403 for a token named in a request body that is unknown or expired.
    #[error("bad token")]
    BadToken,
    /// 405.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500; details stay in the log.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// 500 for a stored record that does not parse.
    #[error("a stored record is corrupt")]
    Corrupt,
    /// 429: a lease-count quota is full (the text names it).
    #[error("{0}")]
    QuotaExceeded(String),
    /// 500: a system the engine manages (a database, a CA) failed. The text
    /// is shown to the caller, so it names the failure and never a secret.
    #[error("{0}")]
    Upstream(String),
}

impl LogicalError {
    /// Shorthand for a 400.
    pub fn invalid(msg: impl Into<String>) -> LogicalError {
        LogicalError::InvalidRequest(msg.into())
    }
}

/// Typed access to request fields.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl Fields<'_> {
    /// A string field; numbers and booleans are accepted as their text.
    pub fn string(&self, key: &str) -> Result<Option<String>, LogicalError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(LogicalError::invalid(format!(
                "field '{key}' must be a string"
            ))),
        }
    }

    /// A secret string field (password, code, token): held zeroizing and
    /// redacted in `Debug` from the moment it is read.
    pub fn secret(&self, key: &str) -> Result<Option<SecretString>, LogicalError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(SecretString::new(s.clone()))),
            Some(Value::Number(n)) => Ok(Some(SecretString::new(n.to_string()))),
            Some(_) => Err(LogicalError::invalid(format!(
                "field '{key}' must be a string"
            ))),
        }
    }

    /// A non-negative integer; accepts numeric strings.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, LogicalError> {
        let bad = || LogicalError::invalid(format!("field '{key}' must be a non-negative integer"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A signed integer; accepts numeric strings.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, LogicalError> {
        let bad = || LogicalError::invalid(format!("field '{key}' must be an integer"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A boolean; accepts "true"/"false"/"1"/"0".
    pub fn bool(&self, key: &str) -> Result<Option<bool>, LogicalError> {
        let bad = || LogicalError::invalid(format!("field '{key}' must be a boolean"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "t" => Ok(Some(true)),
                "false" | "0" | "f" | "" => Ok(Some(false)),
                _ => Err(bad()),
            },
            Some(Value::Number(n)) => match n.as_u64() {
                Some(1) => Ok(Some(true)),
                Some(0) => Ok(Some(false)),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }

    /// A duration in whole seconds: an integer, or a string like "1h30m", "90s", "45".
    pub fn duration(&self, key: &str) -> Result<Option<u64>, LogicalError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                LogicalError::invalid(format!("field '{key}' must be a non-negative duration"))
            }),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => parse_duration(s)
                .map(Some)
                .map_err(|e| LogicalError::invalid(format!("field '{key}': {e}"))),
            Some(_) => Err(LogicalError::invalid(format!(
                "field '{key}' must be a duration"
            ))),
        }
    }

    /// A list of strings: a JSON array or a comma-separated string.
    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, LogicalError> {
        let bad = || LogicalError::invalid(format!("field '{key}' must be a list of strings"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// A map of string to string (metadata, options), in every form Vault's
    /// key-value fields take: a JSON object (numbers become their text, booleans `1`/`0`, null the empty string, as Vault reads them),
    /// a list of `"k=v"` strings, or a `"k=v"` string. A string may hold
    /// several pairs separated by commas (`team=payments,env=prod`); Vault
    /// would keep `payments,env=prod` as the value of `team`, which silently
    /// puts a person in a team that does not exist. A value with a comma is
    /// still possible as an object or a list element. An empty string or list
    /// is an empty map.
    pub fn map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, LogicalError> {
        let bad_pair = |i: usize| {
            LogicalError::invalid(format!(
                "field '{key}': pair {} is not of the form key=value",
                i + 1
            ))
        };
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    // As Vault's weak decoding reads them.
                    Value::Bool(b) => Ok((k.clone(), if *b { "1" } else { "0" }.to_owned())),
                    Value::Null => Ok((k.clone(), String::new())),
                    _ => Err(LogicalError::invalid(format!(
                        "field '{key}': the value of '{k}' must be a string"
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(Value::Array(items)) => {
                let mut out = BTreeMap::new();
                for (i, item) in items.iter().enumerate() {
                    let Value::String(s) = item else {
                        return Err(bad_pair(i));
                    };
                    let (k, v) = split_pair(s).ok_or_else(|| bad_pair(i))?;
                    out.insert(k.to_owned(), v.to_owned());
                }
                Ok(Some(out))
            }
            Some(Value::String(s)) => parse_kv_pairs(s)
                .map(Some)
                .map_err(|KvPairError(i)| bad_pair(i)),
            Some(_) => Err(LogicalError::invalid(format!(
                "field '{key}' must be a map of strings, a list of key=value strings or key=value pairs separated by commas"
            ))),
        }
    }

    /// The same reader as [`Fields::map`], under the name older callers use.
    pub fn string_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, LogicalError> {
        self.map(key)
    }
}

/// The position (from 0) of a piece of a `k=v,k=v` string that is not a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvPairError(pub usize);

/// Parses `k=v,k2=v2` (whitespace around each pair ignored, empty pieces
/// skipped, the first `=` splits, a later pair wins over an earlier one with
/// the same key); every piece needs a non-empty key.
pub fn parse_kv_pairs(s: &str) -> Result<BTreeMap<String, String>, KvPairError> {
    let mut out = BTreeMap::new();
    for (i, piece) in s.split(',').map(str::trim).enumerate() {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = split_pair(piece).ok_or(KvPairError(i))?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// `k=v` at the first `=`, as Vault splits a pair; the key must not be empty.
fn split_pair(s: &str) -> Option<(&str, &str)> {
    s.split_once('=').filter(|(k, _)| !k.is_empty())
}

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// not a number with units
    #[error("invalid duration (expected e.g. \"90\", \"90s\", \"15m\", \"1h30m\")")]
    Invalid,
    /// too large
    #[error("duration is too large")]
    Overflow,
}

/// Parses Go-style durations ("1h30m", "1.5h", "250ms", "7d") or plain seconds,
/// into whole seconds (sub-second remainders are dropped).
pub fn parse_duration(input: &str) -> Result<u64, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Invalid);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(DurationError::Invalid)?;
        if num_len == 0 {
            return Err(DurationError::Invalid);
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(DurationError::Invalid),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(DurationError::Invalid);
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| DurationError::Overflow)?
        };
        let mut part = int.checked_mul(unit_nanos).ok_or(DurationError::Overflow)?;
        let mut scale = unit_nanos;
        for digit in frac_part.chars().take(18) {
            scale /= 10;
            part += u128::from(digit.to_digit(10).ok_or(DurationError::Invalid)?) * scale;
        }
        total_nanos = total_nanos
            .checked_add(part)
            .ok_or(DurationError::Overflow)?;
        rest = next;
    }
    u64::try_from(total_nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)
}

/// Formats seconds the way Vault prints durations ("1h30m0s", "0s").
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_vault() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1.5h"), Ok(5400));
        assert_eq!(parse_duration("768h"), Ok(2_764_800));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("1500ms"), Ok(1));
        assert_eq!(parse_duration("h"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("10x"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("-5s"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("1..5s"), Err(DurationError::Invalid));
        assert_eq!(parse_duration(""), Err(DurationError::Invalid));
    }

    #[test]
    fn durations_format_like_vault() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(5400), "1h30m0s");
        assert_eq!(format_duration(61), "1m1s");
    }

    #[test]
    fn fields_accept_vault_encodings() {
        let m = json!({"n": "5", "b": "true", "l": "a, b,,c", "d": "1m", "bad": [1], "neg": -1})
            .as_object()
            .cloned()
            .unwrap();
        let f = Fields(&m);
        assert_eq!(f.u64("n").unwrap(), Some(5));
        assert_eq!(f.bool("b").unwrap(), Some(true));
        assert_eq!(f.string_list("l").unwrap().unwrap(), vec!["a", "b", "c"]);
        assert_eq!(f.duration("d").unwrap(), Some(60));
        assert!(f.string_list("bad").is_err());
        assert!(f.u64("neg").is_err());
        assert_eq!(f.u64("missing").unwrap(), None);
    }

    #[test]
    fn maps_are_read_in_every_form_vault_takes() {
        let m = json!({
            "object": {"team": "payments", "n": 5, "t": true, "z": null},
            "string": "team=payments,env=prod",
            "spaced": " team = payments , env=prod,",
            "one": "url=https://x?a=b",
            "list": ["team=payments", "env=prod,eu", "k=a=b"],
            "empty_string": "",
            "empty_list": [],
            "no_equals": "team=payments,prod",
            "no_key": "=x",
            "list_no_key": ["a=1", "=x"],
            "list_not_string": [1],
            "nested": {"a": {"b": "c"}},
            "number": 5,
        })
        .as_object()
        .cloned()
        .unwrap();
        let f = Fields(&m);
        let map = |k: &str| f.map(k).unwrap().unwrap();
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            map("object"),
            pairs(&[("team", "payments"), ("n", "5"), ("t", "1"), ("z", "")])
        );
        assert_eq!(
            map("string"),
            pairs(&[("team", "payments"), ("env", "prod")])
        );
        assert_eq!(
            map("spaced"),
            pairs(&[("team ", " payments"), ("env", "prod")])
        );
        assert_eq!(map("one"), pairs(&[("url", "https://x?a=b")]));
        assert_eq!(
            map("list"),
            pairs(&[("team", "payments"), ("env", "prod,eu"), ("k", "a=b")])
        );
        assert!(map("empty_string").is_empty());
        assert!(map("empty_list").is_empty());
        assert_eq!(f.map("missing").unwrap(), None);
        for bad in [
            "no_equals",
            "no_key",
            "list_no_key",
            "list_not_string",
            "nested",
            "number",
        ] {
            let err = f.map(bad).unwrap_err().to_string();
            assert!(err.contains(bad) || err.contains("field"), "{bad}: {err}");
        }
        assert_eq!(
            f.map("no_equals").unwrap_err().to_string(),
            "field 'no_equals': pair 2 is not of the form key=value"
        );
        assert_eq!(f.string_map("string").unwrap(), f.map("string").unwrap());
    }

    #[test]
    fn secret_fields_and_requests_never_show_their_values() {
        let mut data = Map::new();
        data.insert("password".into(), Value::String("hunter2-secret".into()));
        data.insert("nested".into(), serde_json::json!({"code": ["123456"]}));
        let req = Request {
            id: "r".into(),
            operation: Operation::Update,
            path: "auth/userpass/login/alice".into(),
            data,
            content_type: None,
            client_token: Some(SecretString::from("hvs.token-secret")),
            list_after: None,
            list_limit: None,
            mfa_header: None,
            connection: Default::default(),
            unauthenticated_metrics: false,
        };
        let shown = format!("{req:?}");
        for secret in ["hunter2-secret", "123456", "hvs.token-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("password"), "field names stay: {shown}");
        let pw = Fields(&req.data).secret("password").unwrap().unwrap();
        assert_eq!(pw.expose(), "hunter2-secret");
        assert_eq!(format!("{pw:?}"), "[redacted]");
        let mut v = serde_json::json!({"a": ["x-secret", {"b": "y-secret"}], "n": 1});
        zeroize_value(&mut v);
        assert!(!v.to_string().contains("secret"), "{v}");
    }

    #[test]
    fn empty_list_is_404() {
        assert!(matches!(
            Response::list(vec![]),
            Err(LogicalError::NotFound)
        ));
    }

    proptest! {
        #[test]
        fn duration_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn kv_pairs_parse_back_and_never_panic(
            pairs in proptest::collection::btree_map("[a-z_][a-z0-9_.-]{0,8}", "[^,\\s][^,]{0,8}[^,\\s]|[^,\\s]?", 0..6),
            noise in "\\PC{0,24}",
        ) {
            let _ = parse_kv_pairs(&noise);
            let text = pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(parse_kv_pairs(&text), Ok(pairs.clone()));
            // The list form of the same pairs reads the same map.
            let list: Vec<Value> = pairs.iter().map(|(k, v)| Value::String(format!("{k}={v}"))).collect();
            let mut m = Map::new();
            m.insert("f".into(), Value::Array(list));
            prop_assert_eq!(Fields(&m).map("f").unwrap(), Some(pairs));
        }

        #[test]
        fn a_piece_without_a_key_is_refused_where_it_stands(
            before in proptest::collection::vec("[a-z]{1,4}=[a-z]{0,4}", 0..4),
            bad in "[a-z]{1,6}|=[a-z]{0,4}",
        ) {
            let mut pieces = before.clone();
            pieces.push(bad);
            prop_assert_eq!(parse_kv_pairs(&pieces.join(",")), Err(KvPairError(before.len())));
        }

        #[test]
        fn formatted_durations_parse_back(secs in 0u64..10_000_000) {
            prop_assert_eq!(parse_duration(&format_duration(secs)), Ok(secs));
        }
    }
}
