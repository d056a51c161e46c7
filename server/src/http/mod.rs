//! The HTTP front end: one axum router serving `/v1/*` in Vault's shapes, and the
//! listeners (plain or rustls TLS) it runs on. Handlers stay thin: parse, call the
//! core, render. Errors become HTTP only in [`error`].

pub mod conn;
pub mod error;
mod lifecycle;
pub mod peer;
mod request;
pub mod tls;
mod tls_verify;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::clock::UnixTime;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::core::Core;
use crate::logical::{Response, ResponseBody};
use error::ApiError;

pub use conn::ConnectionLimits;
pub use request::{DEFAULT_MAX_JSON_VALUES, TOKEN_LESS_MAX_BODY};

/// Default `max_request_size`: 32 MiB, as in Vault.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// Requests one HTTP/2 connection may have in flight (hyper's default is 200):
/// each may hold a body being read, so this multiplies what a connection holds.
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 32;

/// Default `body_read_timeout`, as Vault's `http_read_timeout`.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// the core
    pub core: Arc<Core>,
    /// body limit in bytes
    pub max_request_size: usize,
    /// JSON structural tokens per body
    pub max_json_values: usize,
    /// the whole body must arrive within this
    pub body_read_timeout: Duration,
    /// `sys/metrics` readable without a token on this listener
    pub unauthenticated_metrics_access: bool,
}

/// The router (no socket), so tests can drive it with `oneshot`.
pub fn router(state: AppState) -> Router {
    with_panic_guard(
        Router::new()
            .route("/v1/{*path}", any(v1))
            .fallback(not_found),
    )
    .with_state(state)
}

/// A panic in a handler becomes a bare 500; the payload (which may carry request
/// data) is neither logged nor sent.
fn with_panic_guard<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |_payload: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked; answered 500");
            error::panic_response()
        },
    ))
}

async fn not_found() -> HttpResponse {
    (StatusCode::NOT_FOUND, axum::Json(json!({ "errors": [] }))).into_response()
}

async fn v1(
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: axum::extract::Request,
) -> HttpResponse {
    // axum's own rejection is plain text; every error here is `{"errors": [...]}`.
    let path = match path {
        Ok(Path(path)) => path,
        Err(rejection) => return ApiError::BadPath(rejection.body_text()).into_response(),
    };
    let started = Instant::now();
    // Only the few lifecycle paths pay for the seal-state reads.
    let was_sealed = lifecycle::watches(&path).then(|| state.core.is_sealed());
    let id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let is_head = method == Method::HEAD;
    let span = tracing::info_span!("request", request_id = %id);
    let result = async {
        let connection = crate::logical::ConnectionInfo {
            remote_addr: parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            client_certificates: parts
                .extensions
                .get::<peer::PeerCertificates>()
                .map(|p| p.0.clone())
                .unwrap_or_else(|| Vec::new().into()),
        };
        let remote = connection.remote_addr;
        let has_body = request::may_have_body(&body);
        let admission = admit_body(&state, &path, &parts.headers, has_body, &connection).await;
        let request = request::parse(
            id.clone(),
            remote,
            &method,
            path.clone(),
            parts.uri.query(),
            &parts.headers,
            body,
            admission,
        )
        .await?;
        let mut request = request;
        request.connection = connection;
        request.unauthenticated_metrics = state.unauthenticated_metrics_access;
        if is_head && request.path != "sys/health" {
            return Err(ApiError::Method);
        }
        // The core runs in its own task: a client that goes away must not cancel a
        // request half-way through its storage work.
        let core = state.core.clone();
        // Boxed: spawning moves the future several times, and the core's is large.
        let handled = Box::pin(async move { core.handle_labelled(request).await });
        match tokio::spawn(handled.in_current_span()).await {
            Ok((label, result)) => Ok((label, result.map_err(ApiError::from))),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(ApiError::Cancelled),
        }
    }
    .instrument(span.clone())
    .await;
    // Requests refused before the core resolved their path (body too large,
    // bad method) count as unmounted: a label never comes from the path sent.
    let (label, result) = match result {
        Ok((label, result)) => (label, result),
        Err(e) => ("unmounted".to_owned(), Err(e)),
    };
    let mut response = match result {
        Ok(resp) => render(&id, resp),
        Err(e) => e.into_response(),
    };
    if is_head {
        *response.body_mut() = Body::empty();
    }
    if let Some(was_sealed) = was_sealed {
        lifecycle::note(
            &method,
            &path,
            response.status(),
            was_sealed,
            state.core.is_sealed(),
        );
    }
    state.core.record_request(
        &label,
        operation_label(&method, parts.uri.query()),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    tracing::info!(
        parent: &span,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Decides, before a byte of the body is read, whether it will be: a body is read
/// only on a token-less path (login, enrolment, init, unseal: at most
/// [`TOKEN_LESS_MAX_BODY`]) or with a token the core finds usable from this
/// address. Anything else goes to the core without its body, which refuses
/// (and audits) it as it refuses any request without a usable token.
async fn admit_body(
    state: &AppState,
    path: &str,
    headers: &axum::http::HeaderMap,
    has_body: bool,
    connection: &crate::logical::ConnectionInfo,
) -> request::BodyAdmission {
    let limits = |max_bytes: usize, max_values: usize| {
        request::BodyAdmission::Read(request::BodyLimits {
            max_bytes,
            max_values,
            read_timeout: state.body_read_timeout,
        })
    };
    if !has_body {
        // Nothing to read: no token check needed here (the core does its own).
        return limits(0, 0);
    }
    if state.core.is_token_less(path).await {
        return limits(
            state.max_request_size.min(TOKEN_LESS_MAX_BODY),
            state
                .max_json_values
                .min(request::TOKEN_LESS_MAX_JSON_VALUES),
        );
    }
    match request::token_from(headers) {
        Some(token) if state.core.token_usable(&token, connection).await => {
            limits(state.max_request_size, state.max_json_values)
        }
        _ => request::BodyAdmission::Withhold,
    }
}

/// The operation name for metrics, from the method alone.
fn operation_label(method: &Method, query: Option<&str>) -> &'static str {
    match method.as_str() {
        "GET" | "HEAD" if query.is_some_and(|q| q.contains("list=true")) => "list",
        "GET" | "HEAD" => "read",
        "LIST" => "list",
        "POST" | "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "other",
    }
}

/// Renders a core response in Vault's envelope (or bare, or empty).
fn render(id: &str, resp: Response) -> HttpResponse {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    // A 204 has no body, whatever the handler built (sys/health?activecode=204).
    if status == StatusCode::NO_CONTENT {
        return StatusCode::NO_CONTENT.into_response();
    }
    match resp.body {
        ResponseBody::Empty => StatusCode::NO_CONTENT.into_response(),
        ResponseBody::Text(t) => (
            status,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            t,
        )
            .into_response(),
        ResponseBody::Bytes { content_type, body } => (
            status,
            [(axum::http::header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response(),
        ResponseBody::Raw(v) => (status, axum::Json(v)).into_response(),
        ResponseBody::Envelope {
            data,
            auth,
            warnings,
        } => {
            let top: Option<serde_json::Map<String, Value>> = match (&data, resp.legacy_top_level) {
                (Some(Value::Object(m)), true) => Some(m.clone()),
                _ => None,
            };
            let lease = resp.lease.unwrap_or_else(|| crate::logical::Lease {
                id: String::new(),
                ttl: 0,
                renewable: false,
            });
            let mut body = json!({
                "request_id": id,
                "lease_id": lease.id,
                "renewable": lease.renewable,
                "lease_duration": lease.ttl,
                "data": data.unwrap_or(Value::Null),
                "wrap_info": null,
                "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
                "auth": auth.unwrap_or(Value::Null),
                "mount_type": resp.mount_type.unwrap_or_default(),
            });
            if let (Some(top), Value::Object(b)) = (top, &mut body) {
                for (k, v) in top {
                    b.entry(k).or_insert(v);
                }
            }
            (status, axum::Json(body)).into_response()
        }
    }
}

/// One listener's settings, resolved.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// where to bind
    pub address: SocketAddr,
    /// `None` = plain HTTP
    pub tls: Option<tls::TlsFiles>,
    /// body limit
    pub max_request_size: usize,
    /// JSON structural tokens per body
    pub max_json_values: usize,
    /// the whole body must arrive within this
    pub body_read_timeout: Duration,
    /// timeouts and caps of its connections
    pub connections: ConnectionLimits,
    /// `sys/metrics` without a token
    pub unauthenticated_metrics_access: bool,
}

impl ListenerSpec {
    /// Plain HTTP on `address` with every default bound.
    pub fn plain(address: SocketAddr) -> ListenerSpec {
        ListenerSpec {
            address,
            tls: None,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_json_values: DEFAULT_MAX_JSON_VALUES,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            connections: ConnectionLimits::default(),
            unauthenticated_metrics_access: false,
        }
    }
}

/// Builds the TLS configuration of every TLS listener: the first problem
/// (a missing or unreadable file, a key that does not match, an expired
/// certificate, an unusable client CA) as one line naming the listener and
/// the file.
pub fn check_tls(listeners: &[ListenerSpec], now: UnixTime) -> Result<(), String> {
    let now = now.secs();
    for spec in listeners {
        if let Some(files) = &spec.tls {
            tls::server_config(files, now)
                .map_err(|e| format!("listener {}: {e}", spec.address))?;
        }
    }
    Ok(())
}

/// The TLS listeners of a running server, whose certificates, keys and client
/// CAs can be read again (SIGHUP): new connections get the new configuration,
/// open ones keep theirs. A listener whose files fail keeps its old one.
#[derive(Clone, Default)]
pub struct TlsReloader {
    listeners: Arc<std::sync::Mutex<Vec<ReloadableTls>>>,
}

struct ReloadableTls {
    address: SocketAddr,
    files: tls::TlsFiles,
    config: axum_server::tls_rustls::RustlsConfig,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsReloader { .. }")
    }
}

impl TlsReloader {
    fn add(&self, item: ReloadableTls) {
        crate::sync::lock(&self.listeners).push(item);
    }

    /// Reads every TLS listener's files again at `now`; per listener, its
    /// bound address and `Ok` or the one-line reason it kept its old files.
    pub fn reload(&self, now: UnixTime) -> Vec<(SocketAddr, Result<(), String>)> {
        let now = now.secs();
        let listeners = crate::sync::lock(&self.listeners);
        listeners
            .iter()
            .map(|l| {
                let result = tls::server_config(&l.files, now)
                    .map(|c| l.config.reload_from_config(Arc::new(c)))
                    .map_err(|e| e.to_string());
                (l.address, result)
            })
            .collect()
    }
}

/// Binds every listener, reports each bound address through `on_bound`, and
/// serves until `shutdown` resolves. TLS listeners are registered with
/// `reloader`. Every TLS configuration is built before any socket is bound.
pub async fn serve(
    core: Arc<Core>,
    listeners: Vec<ListenerSpec>,
    on_bound: impl Fn(&ListenerSpec, SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    reloader: &TlsReloader,
) -> Result<(), std::io::Error> {
    let now = core.now().secs();
    let mut prepared = Vec::with_capacity(listeners.len());
    for spec in listeners {
        let config =
            match &spec.tls {
                Some(files) => Some(tls::server_config(files, now).map_err(|e| {
                    std::io::Error::other(format!("listener {}: {e}", spec.address))
                })?),
                None => None,
            };
        prepared.push((spec, config));
    }
    let handle = axum_server::Handle::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (spec, tls_config) in prepared {
        let app = router(AppState {
            core: core.clone(),
            max_request_size: spec.max_request_size,
            max_json_values: spec.max_json_values,
            body_read_timeout: spec.body_read_timeout,
            unauthenticated_metrics_access: spec.unauthenticated_metrics_access,
        });
        let acceptor = conn::Acceptor::new(conn::Limiter::new(spec.connections));
        let std_listener = std::net::TcpListener::bind(spec.address).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {}: {}",
                    spec.address,
                    crate::config::io_reason(&e)
                ),
            )
        })?;
        let streams = HTTP2_MAX_CONCURRENT_STREAMS;
        std_listener.set_nonblocking(true)?;
        let bound = std_listener.local_addr()?;
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        match (tls_config, &spec.tls) {
            (Some(config), Some(files)) => {
                let rustls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config));
                reloader.add(ReloadableTls {
                    address: bound,
                    files: files.clone(),
                    config: rustls.clone(),
                });
                // The caps and timers sit under TLS: a refused connection costs
                // no handshake, and the handshake counts against the header timeout.
                let tls = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
                    .handshake_timeout(spec.connections.header_read_timeout)
                    .acceptor(acceptor);
                let mut server = axum_server::from_tcp(std_listener)
                    .acceptor(peer::PeerChain::new(tls))
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http2()
                    .max_concurrent_streams(streams);
                on_bound(&spec, bound);
                tasks.spawn(async move { server.serve(make).await });
            }
            _ => {
                let mut server = axum_server::from_tcp(std_listener)
                    .acceptor(acceptor)
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http2()
                    .max_concurrent_streams(streams);
                on_bound(&spec, bound);
                tasks.spawn(async move { server.serve(make).await });
            }
        }
    }
    let shutdown_handle = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        shutdown_handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    while let Some(res) = tasks.join_next().await {
        res.map_err(std::io::Error::other)??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        #[allow(clippy::panic)]
        {
            panic!("secret-in-panic-payload")
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_without_detail() {
        let app: Router = with_panic_guard(Router::new().route("/boom", axum::routing::get(boom)));
        let request = axum::http::Request::get("/boom")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(request).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"errors":["internal error"]}"#
        );
    }

    #[tokio::test]
    async fn envelope_has_every_vault_field() {
        let resp = render("rid", Response::data(json!({"k": "v"})).with_warning("w"));
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        for field in [
            "request_id",
            "lease_id",
            "renewable",
            "lease_duration",
            "data",
            "wrap_info",
            "warnings",
            "auth",
            "mount_type",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert_eq!(v["request_id"], "rid");
        assert_eq!(v["warnings"], json!(["w"]));
    }
}
