//! The error type of the client library: transport failures, bad local input, and the
//! server's `{"errors": [...]}` answers. Messages never contain a token.

use thiserror::Error;

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

    /// TLS configuration problem (unreadable CA bundle, ...).
    #[error("TLS configuration: {0}")]
    Tls(String),

    /// The TLS handshake failed; the message says why and what to change.
    #[error("{0}")]
    TlsHandshake(String),

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
    fn status_only_for_api_errors() {
        assert_eq!(ClientError::InvalidToken.status(), None);
        assert!(ClientError::Api {
            status: 503,
            errors: vec![]
        }
        .is_sealed());
    }
}
