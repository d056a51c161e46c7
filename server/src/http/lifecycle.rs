//! The node's lifecycle in the server log, at info: initialised (with the next
//! step), unsealed, sealed. An operator watches the log for these; OpenBao logs
//! "vault is unsealed" / "vault is sealed" the same way.
//!
//! A production init mounts no secrets engine (as in OpenBao, unlike dev mode's
//! `secret/`), so the log says what to do next rather than leave a first
//! `kv put secret/...` to fail.

use axum::http::{Method, StatusCode};

const PATHS: [&str; 3] = ["sys/init", "sys/unseal", "sys/seal"];

/// Whether `path` is one whose effect on the seal is logged.
pub(super) fn watches(path: &str) -> bool {
    PATHS.contains(&path.trim_end_matches('/'))
}

/// Logs what a successful `sys/init`, `sys/unseal` or `sys/seal` write changed.
/// `was_sealed`/`is_sealed` are the node's state before and after the request.
pub(super) fn note(
    method: &Method,
    path: &str,
    status: StatusCode,
    was_sealed: bool,
    is_sealed: bool,
) {
    if !status.is_success() || method == Method::GET || method == Method::HEAD {
        return;
    }
    match path.trim_end_matches('/') {
        "sys/init" if is_sealed => tracing::info!(
            "Coffer initialised (still sealed). Next: unseal with the threshold of key shares \
             (`coffer operator unseal` or `bao operator unseal`), log in with the root token, \
             then mount a KV v2 engine, which a production init does not do: \
             `bao secrets enable -path=secret kv-v2`"
        ),
        "sys/unseal" if was_sealed && !is_sealed => tracing::info!("Coffer is unsealed"),
        "sys/seal" if !was_sealed && is_sealed => tracing::info!("Coffer is sealed"),
        _ => {}
    }
}
