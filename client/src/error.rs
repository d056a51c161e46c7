//! The error type of the client library: transport failures, bad local input, and the
//! server's `{"errors": [...]}` answers, with [`ErrorKind`] saying what failed in a form
//! a program can match on (connection refused, timeout, which TLS check, permission
//! denied with the server's message, sealed, not found, invalid request). Messages never
//! contain a token, a key or a file's content.

use std::path::PathBuf;

use thiserror::Error;

/// What failed, for programs: one value per case a service handles differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing listens at the address (TCP connection refused).
    ConnectionRefused,
    /// The server did not answer in time (connect or request timeout).
    Timeout,
    /// Another network failure (DNS, reset connection, ...).
    Network,
    /// The TLS handshake failed; [`TlsFailure`] says which check.
    Tls(TlsFailure),
    /// 403: bad or expired token, or the policy does not allow it; the server's message
    /// is in [`ClientError::server_messages`].
    PermissionDenied,
    /// 503: the server is sealed (or not ready).
    Sealed,
    /// 404.
    NotFound,
    /// 400 and other 4xx the client caused (bad parameters, refused login).
    InvalidRequest,
    /// 429.
    RateLimited,
    /// 5xx other than 503.
    Server,
    /// Local configuration: address, file, certificate, token, path.
    Config,
    /// An answer this client could not make sense of.
    Decode,
    /// No login is configured to authenticate again with.
    NoLogin,
}

/// Which TLS check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is not signed by a trusted CA.
    UnknownServerCa,
    /// The server's certificate is not for the address's host name.
    ServerNameMismatch,
    /// The server's certificate has expired.
    ServerCertificateExpired,
    /// The server's certificate was refused for another reason.
    ServerCertificateInvalid,
    /// The server wants a client certificate and none was presented.
    CertificateRequired,
    /// The server refused the client certificate (unknown CA, expired, revoked, ...).
    ClientCertificateRejected,
    /// The other side does not speak TLS (plain HTTP).
    NotTls,
    /// Anything else.
    Other,
}

/// Everything that can go wrong while talking to a Coffer (Vault-compatible) server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server address could not be used (bad URL, unsupported scheme, ...).
    #[error("invalid server address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// Why it was refused.
        reason: String,
    },

    /// A request path that cannot be sent (e.g. `.`/`..` segments).
    #[error("invalid path {0:?}")]
    InvalidPath(String),

    /// The token cannot be sent in an HTTP header. The token itself is never included.
    #[error("the token contains characters that are not allowed in an HTTP header")]
    InvalidToken,

    /// A header name or value given to [`crate::Client::request`] is not valid HTTP.
    #[error("invalid request header {0:?}")]
    InvalidHeader(String),

    /// TLS configuration problem (unreadable CA bundle, client key not matching its
    /// certificate, ...).
    #[error("TLS configuration: {0}")]
    Tls(String),

    /// A file the configuration names cannot be read. Names the file (and the variable
    /// that gave it), never its content.
    #[error("cannot read {what} {}: {reason}", .path.display())]
    File {
        /// What the file is for, e.g. `the client key (COFFER_CLIENT_KEY)`.
        what: String,
        /// The path as given.
        path: PathBuf,
        /// Why it cannot be read (`No such file or directory`, ...).
        reason: String,
    },

    /// The configuration is incomplete or contradictory (e.g. a client certificate
    /// without its key).
    #[error("configuration: {0}")]
    Config(String),

    /// The TLS handshake failed; `message` says why and what to change.
    #[error("{message}")]
    TlsHandshake {
        /// Which check failed.
        failure: TlsFailure,
        /// A sentence for people.
        message: String,
    },

    /// Re-authentication was needed but the client has no login to repeat (it was given
    /// a token, or never logged in).
    #[error("no login is configured to authenticate again with: {0}")]
    NoLogin(String),

    /// The request could not be sent or the answer could not be read.
    #[error("{}", transport_message(.0))]
    Transport(#[source] reqwest::Error),

    /// The server answered with a non-success status. `errors` is the server's
    /// `{"errors": [...]}` list and may be empty (e.g. a 404 for a missing secret).
    #[error("{}", api_message(*.status, .errors))]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's error messages, in order.
        errors: Vec<String>,
    },

    /// The server said 429 (too many requests, e.g. login attempts from one address).
    /// `retry_after` is the `Retry-After` header in seconds, when sent.
    #[error("{}", rate_limited_message(.errors, *.retry_after))]
    RateLimited {
        /// The server's error messages, in order.
        errors: Vec<String>,
        /// Seconds to wait before trying again.
        retry_after: Option<u64>,
    },

    /// A success answer whose body was not what this API call expects.
    #[error("unexpected answer from server: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status for [`ClientError::Api`], `None` for every other kind.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Seconds the server asked to wait (429 with `Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ClientError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when the server said 403 (permission denied / bad token).
    pub fn is_permission_denied(&self) -> bool {
        self.status() == Some(403)
    }

    /// True when the server said 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when the server said it is sealed (503).
    pub fn is_sealed(&self) -> bool {
        self.status() == Some(503)
    }

    /// The server's own messages (`errors`), empty when the server said nothing.
    pub fn server_messages(&self) -> &[String] {
        match self {
            ClientError::Api { errors, .. } | ClientError::RateLimited { errors, .. } => errors,
            _ => &[],
        }
    }

    /// What failed, for programs to match on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::InvalidAddress { .. }
            | ClientError::InvalidPath(_)
            | ClientError::InvalidToken
            | ClientError::InvalidHeader(_)
            | ClientError::Tls(_)
            | ClientError::File { .. }
            | ClientError::Config(_) => ErrorKind::Config,
            ClientError::TlsHandshake { failure, .. } => ErrorKind::Tls(*failure),
            ClientError::NoLogin(_) => ErrorKind::NoLogin,
            ClientError::Transport(e) => transport_kind(e),
            ClientError::RateLimited { .. } => ErrorKind::RateLimited,
            ClientError::Api { status, .. } => match status {
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                503 => ErrorKind::Sealed,
                400..=499 => ErrorKind::InvalidRequest,
                _ => ErrorKind::Server,
            },
            ClientError::Decode(_) => ErrorKind::Decode,
        }
    }

    /// True for failures worth retrying later as they are: network, timeout, sealed,
    /// rate limit, 5xx.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::Timeout
                | ErrorKind::Network
                | ErrorKind::Sealed
                | ErrorKind::RateLimited
                | ErrorKind::Server
        )
    }
}

fn transport_kind(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ErrorKind::ConnectionRefused,
                std::io::ErrorKind::TimedOut => return ErrorKind::Timeout,
                _ => {}
            }
        }
        source = s.source();
    }
    ErrorKind::Network
}

/// `permission denied (403)`, `a; b (400)`, or a generic text for an empty list.
pub(crate) fn api_message(status: u16, errors: &[String]) -> String {
    let joined = errors
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        format!("{} ({status})", default_reason(status))
    } else {
        format!("{joined} ({status})")
    }
}

fn rate_limited_message(errors: &[String], retry_after: Option<u64>) -> String {
    let msg = api_message(429, errors);
    match retry_after {
        Some(secs) => format!("{msg}; try again in {secs}s"),
        None => msg,
    }
}

fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "permission denied",
        404 => "not found",
        405 => "method not allowed",
        409 => "conflict",
        412 => "precondition failed",
        413 => "request too large",
        415 => "unsupported media type",
        429 => "too many requests",
        500 => "internal server error",
        501 => "not implemented",
        502 => "bad gateway",
        503 => "server is sealed or unavailable",
        504 => "gateway timeout",
        _ => "request failed",
    }
}

/// reqwest's own message hides the cause ("error sending request for url ...");
/// add the innermost cause so "connection refused" is visible on one line.
fn transport_message(err: &reqwest::Error) -> String {
    let plain_to_tls = err.url().is_some_and(|u| u.scheme() == "http")
        && (err.is_request() || err.is_body())
        && !err.is_connect()
        && !err.is_timeout();
    let mut msg = if err.is_timeout() {
        "request timed out".to_string()
    } else if err.is_connect() {
        "cannot connect to server".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(url) = err.url() {
        msg.push_str(&format!(" at {}", url_origin(url)));
    }
    let mut source = std::error::Error::source(err);
    let mut innermost = None;
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    if let Some(cause) = innermost {
        let cause = match cause.find(" (os error") {
            Some(i) => cause[..i].to_string(),
            None => cause,
        };
        msg.push_str(": ");
        msg.push_str(&cause);
    }
    if err.is_connect() && !err.is_timeout() {
        msg.push_str(
            " (check that the server runs there and that VAULT_ADDR or -address is right)",
        );
    }
    if plain_to_tls {
        msg.push_str(" (if the server serves TLS, use https:// in VAULT_ADDR)");
    }
    msg
}

/// `scheme://host:port` only: paths and queries are not needed to diagnose a transport error.
fn url_origin(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_joins_messages_and_status() {
        let e = ClientError::Api {
            status: 403,
            errors: vec!["permission denied".into()],
        };
        assert_eq!(e.to_string(), "permission denied (403)");
        let e = ClientError::Api {
            status: 400,
            errors: vec!["a".into(), " ".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "a; b (400)");
    }

    #[test]
    fn api_error_with_empty_list_uses_status_text() {
        let e = ClientError::Api {
            status: 404,
            errors: vec![],
        };
        assert_eq!(e.to_string(), "not found (404)");
        assert!(e.is_not_found());
        assert!(!e.is_permission_denied());
        let e = ClientError::Api {
            status: 599,
            errors: vec![],
        };
        assert_eq!(e.to_string(), "request failed (599)");
    }

    #[test]
    fn kinds_say_what_failed() {
        let api = |status: u16, msg: &str| ClientError::Api {
            status,
            errors: vec![msg.into()],
        };
        let denied = api(
            403,
            "permission denied: token is not bound to this certificate",
        );
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            denied.server_messages(),
            ["permission denied: token is not bound to this certificate"]
        );
        assert_eq!(api(503, "Vault is sealed").kind(), ErrorKind::Sealed);
        assert!(api(503, "Vault is sealed").is_transient());
        assert_eq!(api(404, "").kind(), ErrorKind::NotFound);
        assert_eq!(api(400, "missing field").kind(), ErrorKind::InvalidRequest);
        assert!(!api(400, "missing field").is_transient());
        assert_eq!(api(500, "internal error").kind(), ErrorKind::Server);
        let file = ClientError::File {
            what: "the client key (COFFER_CLIENT_KEY)".into(),
            path: "/nope/key.pem".into(),
            reason: "No such file or directory".into(),
        };
        assert_eq!(file.kind(), ErrorKind::Config);
        assert_eq!(
            file.to_string(),
            "cannot read the client key (COFFER_CLIENT_KEY) /nope/key.pem: No such file or directory"
        );
        let tls = ClientError::TlsHandshake {
            failure: TlsFailure::CertificateRequired,
            message: "x".into(),
        };
        assert_eq!(tls.kind(), ErrorKind::Tls(TlsFailure::CertificateRequired));
        assert!(ClientError::InvalidToken.server_messages().is_empty());
    }

    #[tokio::test]
    async fn refused_and_timed_out_connections_have_their_kinds() {
        // A port nobody listens on: bind, note it, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = crate::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = c.read("sys/health").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert!(err.is_transient());
        // A listener that accepts and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let c = crate::Client::builder(&format!("http://{addr}"))
            .timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap();
        let err = c.read("sys/health").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
        drop(silent);
    }

    #[test]
    fn status_only_for_api_errors() {
        assert_eq!(ClientError::InvalidToken.status(), None);
        assert!(ClientError::Api {
            status: 503,
            errors: vec![]
        }
        .is_sealed());
    }
}
