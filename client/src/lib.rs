//! `coffer_client`: a typed async client for the Vault/OpenBao-compatible HTTP API
//! served by `cofferd`, for services and for the `coffer` CLI.
//!
//! This file owns [`Client`] and [`ClientBuilder`] (address, TLS trust and client
//! identity, timeouts, the token, the raw [`Client::request`] and the generic
//! read/write/patch/list/delete calls). The typed helpers live beside it: [`env`]
//! (a client from `COFFER_*` / `VAULT_*` variables), [`login`] (cert and token login,
//! the remembered [`Login`] the renewer re-authenticates with), [`userpass`] (password +
//! TOTP login, MFA validation, TOTP enrolment), [`kv`], [`pki`] (issue a certificate),
//! [`lease`] (renew, revoke), [`token`], [`sys`], [`breakglass`] (emergency access
//! approved by a second person), [`renewer`] (keeps the token and leases alive in the
//! background); [`audit`] verifies audit log files offline.
//!
//! # A service at startup
//!
//! ```no_run
//! # async fn demo() -> Result<(), coffer_client::ClientError> {
//! use coffer_client::{Client, RenewEvent};
//! // COFFER_ADDR, COFFER_CACERT, COFFER_CLIENT_CERT + COFFER_CLIENT_KEY (mTLS),
//! // COFFER_TOKEN; the VAULT_* names work too.
//! let client = Client::from_env()?;
//! client.login_cert("cert", Some("payments")).await?;
//! let db = client.kv_get("secret", "app/db", None).await?;
//! // Renews the token at about two thirds of its TTL, logs in again when it cannot.
//! let mut renewer = client.keep_alive()?;
//! tokio::spawn(async move {
//!     while let Some(event) = renewer.next_event().await {
//!         if let RenewEvent::Failed { what, error, .. } = &event {
//!             eprintln!("renewal of {what} failed: {error}");
//!         }
//!     }
//! });
//! # drop(db); Ok(()) }
//! ```
//!
//! Clones of a [`Client`] share its token: a login or a renewal through one is seen by
//! all. [`Client::with_token`], [`Client::set_token`] and [`Client::clear_token`] give
//! the client a token of its own instead. Tokens are [`SecretString`]s: `[redacted]` in
//! `Debug`, wiped on drop, and never part of an error message.

#![forbid(unsafe_code)]

pub mod audit;
pub mod breakglass;
pub mod env;
pub mod error;
pub mod kv;
pub mod lease;
pub mod login;
pub mod pki;
pub mod renewer;
mod session;
pub mod sys;
mod tls;
pub mod token;
pub mod types;
pub mod userpass;

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;
use serde_json::Value;
use zeroize::Zeroizing;

pub use breakglass::{
    BreakGlassConfig, BreakGlassConfigUpdate, BreakGlassReport, BreakGlassRequest,
    BreakGlassStatus, EmergencyToken, TimelineEntry,
};
pub use coffer_proto::SecretString;
pub use error::{ClientError, ErrorKind, TlsFailure};
pub use kv::{KvMetadataUpdate, KvSecret, KvVersionMetadata, DEFAULT_KV_MOUNT};
pub use lease::LeaseRenewal;
pub use login::{Login, LoginFn};
pub use pki::{IssueRequest, IssuedCertificate};
pub use renewer::{RenewEvent, RenewTarget, Renewer, RenewerOptions};
pub use reqwest::Method;
pub use sys::{Health, InitResponse, SealStatus};
pub use token::TokenCreateRequest;
pub use types::{Auth, Response, Secret, Ttl};
pub use userpass::{EnrollAuth, Enrollment, EnrollmentToken, LoginOutcome, DEFAULT_USERPASS_MOUNT};

/// Header carrying the client token.
pub const TOKEN_HEADER: &str = "X-Vault-Token";
/// Header Vault clients send on every request (CSRF guard on the server side).
pub const REQUEST_HEADER: &str = "X-Vault-Request";
/// Content type for JSON merge-patch bodies (KV v2 `PATCH`).
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;

/// A connection to one server. Cheap to clone (the HTTP pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The token and the login that produced it; shared by clones.
    session: session::Session,
    /// The rustls configuration `http` uses, when this crate built it (CA given): a
    /// failed request can then be explained by a handshake of its own.
    tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// How `http` was built, so TLS options can be changed afterwards.
    config: ClientBuilder,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.base.as_str())
            .field(
                "token",
                &if self.session.token().is_some() {
                    "[redacted]"
                } else {
                    "<none>"
                },
            )
            .field("client_identity", &self.config.client_identity.is_some())
            .finish()
    }
}

/// Options for building a [`Client`] (TLS trust, timeouts, initial token).
#[derive(Clone)]
pub struct ClientBuilder {
    addr: String,
    ca_cert_pem: Option<Vec<u8>>,
    accept_invalid_certs: bool,
    timeout: Duration,
    token: Option<SecretString>,
    /// Client certificate chain (PEM) and its private key (PEM), for mTLS.
    client_identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("addr", &self.addr)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|p| p.len()))
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("client_identity", &self.client_identity.is_some())
            .finish()
    }
}

impl ClientBuilder {
    /// Trust only the CA certificate(s) in this PEM bundle for `https://` addresses.
    pub fn ca_cert_pem(mut self, pem: &[u8]) -> Self {
        self.ca_cert_pem = Some(pem.to_vec());
        self
    }

    /// Skip TLS certificate verification. Only for tests and local development.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Overall per-request timeout (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Token to send with every request.
    pub fn token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Present this client certificate (PEM chain, leaf first) and private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1) in TLS handshakes, for mTLS listeners and `auth/cert`.
    /// Both are checked at [`ClientBuilder::build`]; an error never shows the key.
    pub fn client_identity_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client_identity = Some((cert_pem.to_vec(), Zeroizing::new(key_pem.to_vec())));
        self
    }

    /// Validate the address and build the client.
    pub fn build(mut self) -> Result<Client, ClientError> {
        let base = parse_address(&self.addr)?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .timeout(self.timeout)
            .redirect(same_origin_redirects())
            .danger_accept_invalid_certs(self.accept_invalid_certs);
        let identity = match &self.client_identity {
            Some((cert, key)) => Some(tls::client_identity(cert, key)?),
            None => None,
        };
        let preconfigured = match &self.ca_cert_pem {
            // Checked even when verification is off, so a wrong file is reported.
            Some(pem) => {
                let config = tls::client_config(pem, identity)?;
                (!self.accept_invalid_certs).then_some(config)
            }
            None => None,
        };
        let tls_config = preconfigured.clone().map(std::sync::Arc::new);
        match preconfigured {
            Some(config) => http = http.use_preconfigured_tls(config),
            None => {
                if let Some((cert, key)) = &self.client_identity {
                    // Built-in roots (or no verification): reqwest's own rustls setup
                    // with this identity.
                    // Sized up front: no reallocation leaves a copy of the key behind.
                    let mut pem = Zeroizing::new(Vec::with_capacity(key.len() + 1 + cert.len()));
                    pem.extend_from_slice(key);
                    pem.push(b'\n');
                    pem.extend_from_slice(cert);
                    let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                        ClientError::Tls(
                            "the client certificate and key cannot be used together".into(),
                        )
                    })?;
                    http = http.identity(id);
                }
            }
        }
        let http = http
            .build()
            .map_err(|e| ClientError::Tls(format!("cannot build HTTP client: {e}")))?;
        let session = session::Session::new(self.token.take());
        Ok(Client {
            http,
            base,
            session,
            tls_config,
            config: self,
        })
    }
}

/// Follow redirects only to the same scheme/host/port: the token header would
/// otherwise be sent to whatever host a redirect names.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn parse_address(addr: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::InvalidAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = addr.trim();
    if trimmed.is_empty() {
        return Err(bad("empty address"));
    }
    let url = Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("missing host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not contain a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    Ok(url)
}

impl Client {
    /// A client for `addr` (e.g. `http://127.0.0.1:8200`, trailing slash tolerated)
    /// with default TLS settings and no token.
    pub fn new(addr: &str) -> Result<Client, ClientError> {
        Client::builder(addr).build()
    }

    /// Start building a client with TLS or timeout options.
    pub fn builder(addr: &str) -> ClientBuilder {
        ClientBuilder {
            addr: addr.to_string(),
            ca_cert_pem: None,
            accept_invalid_certs: false,
            timeout: DEFAULT_TIMEOUT,
            token: None,
            client_identity: None,
        }
    }

    /// The same client (and token) with certificate verification switched off or on.
    /// Only for tests and local development.
    pub fn danger_accept_invalid_certs(self, accept: bool) -> Result<Client, ClientError> {
        let config = self.config.clone().danger_accept_invalid_certs(accept);
        self.rebuild(config)
    }

    /// The same client (and token) trusting only the CA certificate(s) in `pem`.
    pub fn ca_cert_pem(self, pem: &[u8]) -> Result<Client, ClientError> {
        let config = self.config.clone().ca_cert_pem(pem);
        self.rebuild(config)
    }

    /// The same client (and token) presenting this client certificate and key in TLS
    /// handshakes (see [`ClientBuilder::client_identity_pem`]).
    pub fn client_identity_pem(
        self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Client, ClientError> {
        let config = self.config.clone().client_identity_pem(cert_pem, key_pem);
        self.rebuild(config)
    }

    fn rebuild(self, config: ClientBuilder) -> Result<Client, ClientError> {
        let mut client = config.build()?;
        client.session = self.session;
        Ok(client)
    }

    /// The same client with a token of its own (no longer shared with its clones).
    pub fn with_token(mut self, token: impl Into<SecretString>) -> Self {
        self.set_token(token);
        self
    }

    /// Use `token` from now on, in this client only (clones made earlier keep theirs).
    pub fn set_token(&mut self, token: impl Into<SecretString>) {
        self.session = session::Session::new(Some(token.into()));
    }

    /// Forget the token, in this client only.
    pub fn clear_token(&mut self) {
        self.session = session::Session::new(None);
    }

    /// The current token, if any.
    pub fn token(&self) -> Option<SecretString> {
        self.session.token()
    }

    /// Whether a client certificate is configured for TLS handshakes.
    pub fn has_client_identity(&self) -> bool {
        self.config.client_identity.is_some()
    }

    /// The server address as normalised URL.
    pub fn address(&self) -> &str {
        self.base.as_str()
    }

    /// The full URL for an API path (relative to `/v1/`), segments percent-encoded.
    pub fn url_for(&self, path: &str) -> Result<Url, ClientError> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(ClientError::InvalidPath(path.to_string()));
        }
        let mut url = self.base.clone();
        {
            let mut parts = url
                .path_segments_mut()
                .map_err(|()| ClientError::InvalidPath(path.to_string()))?;
            parts.pop_if_empty().push("v1").extend(segments);
        }
        Ok(url)
    }

    /// Send one request and return the answer whatever its status.
    ///
    /// `path` is relative to `/v1/`. The token (if any) goes in `X-Vault-Token`,
    /// `X-Vault-Request: true` is always sent, a body is sent as JSON unless
    /// `extra_headers` sets another `Content-Type`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let (status, retry_after, bytes) =
            self.send(method, path, query, body, extra_headers).await?;
        Ok(Response {
            status,
            body: decode_body(status, &bytes)?,
            retry_after,
        })
    }

    /// `GET path` for an answer that is not JSON (PEM or DER: `pki/ca/pem`,
    /// `pki/crl`). `Ok(None)` for 204 and for a 404 without error messages; an error
    /// status is [`ClientError::Api`] as for every other call.
    pub async fn read_bytes(&self, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let (status, retry_after, bytes) = self.send(Method::GET, path, &[], None, &[]).await?;
        if (200..300).contains(&status) {
            return Ok((status != 204 && !bytes.is_empty()).then_some(bytes));
        }
        let resp = Response {
            status,
            body: decode_body(status, &bytes)?,
            retry_after,
        };
        if status == 404 && resp.errors().is_empty() {
            return Ok(None);
        }
        Err(resp.to_api_error())
    }

    /// One request: status, `Retry-After` seconds, and the body as sent.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        extra_headers: &[(&str, &str)],
    ) -> Result<(u16, Option<u64>, Vec<u8>), ClientError> {
        let mut url = self.url_for(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-vault-request"),
            HeaderValue::from_static("true"),
        );
        if let Some(token) = self.session.token().filter(|t| !t.expose().is_empty()) {
            let mut value =
                HeaderValue::from_str(token.expose()).map_err(|_| ClientError::InvalidToken)?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-vault-token"), value);
        }
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in extra_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::InvalidHeader(name.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| ClientError::InvalidHeader(name.to_string()))?;
            headers.insert(name, value);
        }
        let mut req = self.http.request(method, url).headers(headers);
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| ClientError::Decode(format!("cannot encode request body: {e}")))?;
            req = req.body(bytes);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return Err(self.explain_failure(e).await),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        Ok((status, retry_after, bytes.to_vec()))
    }

    /// A request that failed before an answer. A server that refuses the client's
    /// certificate after a TLS 1.3 handshake often closes the connection before the
    /// refusal can be read (the request it did not read makes the close a reset), so
    /// a closed connection over TLS is explained by a handshake of its own that sends
    /// no request and reads the server's alert.
    async fn explain_failure(&self, e: reqwest::Error) -> ClientError {
        let err = self.transport_error(e);
        let closed = matches!(&err, ClientError::Transport(t)
            if !t.is_timeout() && !t.is_connect() && err.kind() == ErrorKind::Network);
        let (Some(config), Some(host), Some(port)) = (
            self.tls_config.clone(),
            self.base.host_str(),
            self.base.port_or_known_default(),
        ) else {
            return err;
        };
        if !closed || self.base.scheme() != "https" {
            return err;
        }
        match tls::probe_alert(config, host.to_string(), port).await {
            Some(alert) => self.tls_error(&alert),
            None => err,
        }
    }

    /// A failed send: a TLS handshake failure as a sentence saying what to fix, anything
    /// else as [`ClientError::Transport`].
    fn transport_error(&self, e: reqwest::Error) -> ClientError {
        match tls::rustls_error(&e) {
            Some(rustls_err) => self.tls_error(rustls_err),
            None => ClientError::Transport(e),
        }
    }

    /// [`ClientError::TlsHandshake`] for a rustls error on the way to this server.
    fn tls_error(&self, rustls_err: &rustls::Error) -> ClientError {
        let host = self.base.host_str().unwrap_or("the server").to_string();
        let origin = match self.base.port_or_known_default() {
            Some(port) => format!("{}://{host}:{port}", self.base.scheme()),
            None => format!("{}://{host}", self.base.scheme()),
        };
        let failure = tls::classify(rustls_err, self.config.client_identity.is_some());
        ClientError::TlsHandshake {
            failure,
            message: format!(
                "cannot connect to {origin}: {}",
                tls::explain(
                    rustls_err,
                    &host,
                    self.config.ca_cert_pem.is_some(),
                    self.config.client_identity.is_some()
                )
            ),
        }
    }

    /// `GET path`. `Ok(None)` for 204 and for a 404 without data or error messages.
    pub async fn read(&self, path: &str) -> Result<Option<Secret>, ClientError> {
        let resp = self.request(Method::GET, path, &[], None, &[]).await?;
        optional_secret(resp)
    }

    /// `POST path` with a JSON body. `Ok(None)` for 204.
    pub async fn write(&self, path: &str, body: &Value) -> Result<Option<Secret>, ClientError> {
        let resp = self
            .request(Method::POST, path, &[], Some(body), &[])
            .await?;
        success_secret(resp)
    }

    /// `PATCH path` with a JSON merge-patch body. `Ok(None)` for 204.
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Option<Secret>, ClientError> {
        let resp = self
            .request(
                Method::PATCH,
                path,
                &[],
                Some(body),
                &[("Content-Type", MERGE_PATCH_JSON)],
            )
            .await?;
        success_secret(resp)
    }

    /// `LIST path` (HTTP method `LIST`). `Ok(None)` when there is nothing to list (404).
    pub async fn list(&self, path: &str) -> Result<Option<Secret>, ClientError> {
        let resp = self.request(list_method()?, path, &[], None, &[]).await?;
        optional_secret(resp)
    }

    /// `DELETE path`. `Ok(None)` for 204.
    pub async fn delete(&self, path: &str) -> Result<Option<Secret>, ClientError> {
        let resp = self.request(Method::DELETE, path, &[], None, &[]).await?;
        success_secret(resp)
    }
}

/// The non-standard `LIST` method Vault uses for listings.
pub fn list_method() -> Result<Method, ClientError> {
    Method::from_bytes(b"LIST").map_err(|e| ClientError::Decode(e.to_string()))
}

/// `Retry-After` in its delta-seconds form (the HTTP-date form is not used by the server).
fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

fn decode_body(status: u16, bytes: &[u8]) -> Result<Option<Value>, ClientError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) if (200..300).contains(&status) => {
            Err(ClientError::Decode(format!("body is not JSON ({e})")))
        }
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let snippet: String = text.trim().chars().take(200).collect();
            Ok(Some(serde_json::json!({ "errors": [snippet] })))
        }
    }
}

/// 2xx: the envelope (or `None` without body). Anything else: [`ClientError::Api`].
pub(crate) fn success_secret(resp: Response) -> Result<Option<Secret>, ClientError> {
    let resp = resp.error_for_status()?;
    resp.body.map(Secret::from_value).transpose()
}

/// Like [`success_secret`] but a body is required.
pub(crate) fn required_secret(resp: Response) -> Result<Secret, ClientError> {
    success_secret(resp)?.ok_or_else(|| ClientError::Decode("empty answer".into()))
}

/// What [`Client::read`] makes of an answer, for callers of [`Client::request`]: `None`
/// for a 204 or a 404 without data and error messages, the envelope for a 2xx (or a 404
/// with data), [`ClientError::Api`] otherwise.
pub fn optional_answer(resp: Response) -> Result<Option<Secret>, ClientError> {
    optional_secret(resp)
}

/// Like [`success_secret`] but a 404 without data and without error messages is `None`,
/// and a 404 that carries `data` (e.g. a deleted KV version) is returned as a secret.
pub(crate) fn optional_secret(resp: Response) -> Result<Option<Secret>, ClientError> {
    if resp.status == 404 {
        let has_data = resp
            .body
            .as_ref()
            .and_then(|b| b.get("data"))
            .is_some_and(|d| !d.is_null());
        if has_data {
            return resp.body.map(Secret::from_value).transpose();
        }
        if resp.errors().is_empty() {
            return Ok(None);
        }
    }
    success_secret(resp)
}

/// Join a KV-style path from parts, trimming stray slashes: `("secret", "data", "/a/b")`
/// gives `secret/data/a/b`; an empty last part gives `secret/data`.
pub(crate) fn join_path(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_token() {
        let c = Client::new("http://127.0.0.1:8200")
            .unwrap()
            .with_token("hvs.TOPSECRET");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("TOPSECRET"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
        assert_eq!(c.token().unwrap().expose(), "hvs.TOPSECRET");
        let b = Client::builder("http://x").token("hvs.TOPSECRET");
        assert!(!format!("{b:?}").contains("TOPSECRET"));
    }

    #[test]
    fn url_building_tolerates_trailing_slash_and_encodes() {
        let c = Client::new("http://127.0.0.1:8200/").unwrap();
        assert_eq!(
            c.url_for("secret/data/foo").unwrap().as_str(),
            "http://127.0.0.1:8200/v1/secret/data/foo"
        );
        assert_eq!(
            c.url_for("/secret/data/a b?c#d").unwrap().as_str(),
            "http://127.0.0.1:8200/v1/secret/data/a%20b%3Fc%23d"
        );
        let c = Client::new("https://vault.example.com/prefix").unwrap();
        assert_eq!(
            c.url_for("sys/health").unwrap().as_str(),
            "https://vault.example.com/prefix/v1/sys/health"
        );
        assert!(matches!(
            c.url_for("secret/../sys/seal"),
            Err(ClientError::InvalidPath(_))
        ));
    }

    #[test]
    fn bad_addresses_are_rejected() {
        for addr in [
            "",
            "localhost:8200",
            "ftp://x",
            "http://x/?a=b",
            "http://u:p@x",
        ] {
            assert!(
                matches!(Client::new(addr), Err(ClientError::InvalidAddress { .. })),
                "{addr}"
            );
        }
    }

    #[test]
    fn garbage_ca_pem_is_rejected() {
        let r = Client::builder("https://127.0.0.1:8200")
            .ca_cert_pem(b"not a certificate")
            .build();
        assert!(matches!(r, Err(ClientError::Tls(_))), "{r:?}");
        let c = Client::new("https://127.0.0.1:8200")
            .unwrap()
            .with_token("t");
        assert!(matches!(
            c.clone().ca_cert_pem(b"junk"),
            Err(ClientError::Tls(_))
        ));
        let c = c.danger_accept_invalid_certs(true).unwrap();
        assert_eq!(c.token().unwrap().expose(), "t");
        assert!(c.config.accept_invalid_certs);
    }

    #[test]
    fn join_path_trims_slashes() {
        assert_eq!(join_path(&["secret", "data", "/a/b/"]), "secret/data/a/b");
        assert_eq!(join_path(&["secret/", "metadata", ""]), "secret/metadata");
    }

    #[test]
    fn non_json_error_body_becomes_errors_list() {
        let b = decode_body(502, b"<html>Bad Gateway</html>").unwrap();
        assert_eq!(
            b,
            Some(serde_json::json!({"errors": ["<html>Bad Gateway</html>"]}))
        );
        assert!(decode_body(200, b"nope").is_err());
        assert_eq!(decode_body(204, b"").unwrap(), None);
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after(" 42 "), Some(42));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn optional_secret_rules() {
        let missing = Response {
            status: 404,
            body: Some(serde_json::json!({"errors": []})),
            retry_after: None,
        };
        assert!(optional_secret(missing).unwrap().is_none());
        let no_route = Response {
            status: 404,
            body: Some(serde_json::json!({"errors": ["no handler for route"]})),
            retry_after: None,
        };
        assert_eq!(optional_secret(no_route).unwrap_err().status(), Some(404));
        let deleted = Response {
            status: 404,
            body: Some(serde_json::json!({"data": {"data": null}})),
            retry_after: None,
        };
        assert!(optional_secret(deleted).unwrap().is_some());
    }
}
