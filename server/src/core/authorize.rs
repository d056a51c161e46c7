//! Authorisation of one request against the token's compiled ACL: the capability
//! the operation needs (create vs update decided by whether the target exists),
//! `sudo` on root-protected paths, and parameter constraints — which, for KV v2
//! writes, apply to the keys inside `data`, not to the envelope.

use serde_json::{Map, Value};

use super::{Core, CoreError, Unsealed};
use crate::barrier::View;
use crate::logical::{Operation, Request};
use crate::policy::{Acl, Capabilities};

/// Root-protected paths: the path itself and everything below it need `sudo`
/// as well as the operation's capability, under any spelling the router
/// serves (a trailing `/` is ignored). Vault's list (its system backend's and
/// token store's root paths), with OpenBao's `sys/rotate/*` names for the
/// keyring; several are not served yet and are here so that they are
/// protected the day they are.
const ROOT_PROTECTED: &[&str] = &[
    "sys/seal",
    "sys/step-down",
    // sys/rotate and sys/rotate/keyring rotate the same keyring; also
    // rotate/keyring/config and rotate/root.
    "sys/rotate",
    // the device table and every device (sys/audit-hash is not: Vault asks
    // only update there)
    "sys/audit",
    "sys/raw",
    "sys/remount",
    "sys/config/cors",
    "sys/config/auditing",
    "sys/config/ui/headers",
    "sys/plugins/catalog",
    "sys/revoke-prefix",
    "sys/revoke-force",
    "sys/leases/revoke-prefix",
    "sys/leases/revoke-force",
    "sys/internal/inspect",
    "sys/internal/counters/activity/export",
    // unauthenticated in Vault (key shares authorise them); should they ever
    // take a token here, it is a root act
    "sys/generate-root",
    "sys/rekey",
    "auth/token/revoke-orphan",
    "auth/token/accessors",
];

/// Root-protected only below (the path itself is not): listing leases.
const ROOT_PROTECTED_BELOW: &[&str] = &["sys/leases/lookup"];

/// Whether `path` needs `sudo` for `op`.
fn needs_sudo(path: &str, op: Operation) -> bool {
    let path = path.trim_end_matches('/');
    let below = |p: &str| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    ROOT_PROTECTED.iter().any(|p| path == *p || below(p))
        || ROOT_PROTECTED_BELOW.iter().any(|p| below(p))
        // Enabling, changing or disabling an auth method (Vault: all of
        // sys/auth/*; reading one stays open here, as before).
        || (below("sys/auth") && op != Operation::Read)
        // Turning off the second factor (or changing lockout) is an admin act.
        || (path.starts_with("auth/")
            && path.ends_with("/config")
            && !path.starts_with("auth/token/")
            && op != Operation::Read)
}

/// Paths whose effect is a change to another object, and so also need `update`
/// there: issuing a user's enrolment token (which lets someone set that user's
/// password and factor) is a change to the user.
fn also_updates(path: &str) -> Option<&str> {
    path.strip_suffix("/enrollment-token")
        .filter(|user| user.starts_with("auth/") && user.contains("/users/"))
}

/// What authorisation concluded, for the handlers.
pub(super) struct Authorized {
    /// the operation after the existence check (create or update)
    pub(super) operation: Operation,
    /// root or sudo at this path
    pub(super) privileged: bool,
}

pub(super) async fn authorize(
    core: &Core,
    state: &Unsealed,
    acl: &Acl,
    req: &Request,
    path: &str,
    now: i64,
) -> Result<Authorized, CoreError> {
    if let Some(mount_path) = path.strip_prefix("sys/internal/ui/mounts/") {
        // Any token may ask about a mount it has some access to; nothing more.
        let mounts = state.mounts.read().await;
        let mount = mounts
            .route(mount_path)
            .map(|(m, _)| m.path.clone())
            .unwrap_or_default();
        if req.operation == Operation::Read
            && !mount.is_empty()
            && acl.grants_anything_under(&mount, now)
        {
            return Ok(Authorized {
                operation: Operation::Read,
                privileged: false,
            });
        }
        return Err(crate::logical::LogicalError::Forbidden(format!(
            "preflight capability check returned 403, please ensure client's policies grant access to path \"{}/\"",
            mount_path.trim_end_matches('/')
        ))
        .into());
    }
    let mut operation = req.operation;
    let kv_rest = kv_route(state, path).await;
    if operation == Operation::Update {
        if let Some((view, rest)) = &kv_rest {
            if !crate::secrets::kv::exists(view, rest).await? {
                operation = Operation::Create;
            }
        }
    }
    // As Vault: a LIST is checked against the path with a trailing slash.
    let checked = if operation == Operation::List && !path.ends_with('/') {
        std::borrow::Cow::Owned(format!("{path}/"))
    } else {
        std::borrow::Cow::Borrowed(path)
    };
    let decision = acl.decide(&checked, now);
    if !decision.allows(Capabilities::for_operation(operation)) {
        return Err(CoreError::PermissionDenied);
    }
    if let Some(object) = also_updates(path).filter(|_| operation.is_write()) {
        if !acl
            .decide(object, now)
            .allows(Capabilities::for_operation(Operation::Update))
        {
            return Err(CoreError::PermissionDenied);
        }
    }
    let sudo = decision.allows(Capabilities::SUDO);
    if needs_sudo(path, operation) && !sudo {
        return Err(CoreError::PermissionDenied);
    }
    if !decision.root
        && !decision.params.is_empty()
        && matches!(
            operation,
            Operation::Create | Operation::Update | Operation::Patch
        )
    {
        let inner = kv_rest
            .as_ref()
            .filter(|(_, rest)| rest.starts_with("data/"))
            .and_then(|_| match req.data.get("data") {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            });
        let empty = Map::new();
        let params = inner.unwrap_or(
            if kv_rest
                .as_ref()
                .is_some_and(|(_, r)| r.starts_with("data/"))
            {
                &empty
            } else {
                &req.data
            },
        );
        if decision.params.check(params).is_err() {
            return Err(CoreError::PermissionDenied);
        }
    }
    let _ = core;
    Ok(Authorized {
        operation,
        privileged: sudo,
    })
}

/// The KV view and in-mount path when `path` is under a KV mount.
async fn kv_route(state: &Unsealed, path: &str) -> Option<(View, String)> {
    let mounts = state.mounts.read().await;
    let (entry, rest) = mounts.route(path)?;
    (entry.kind == "kv").then(|| {
        (
            View::new(state.barrier.clone(), entry.storage_prefix()),
            rest.to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_protected_paths_need_sudo() {
        assert!(needs_sudo("sys/seal", Operation::Update));
        assert!(needs_sudo("sys/audit/file", Operation::Update));
        assert!(needs_sudo("sys/audit", Operation::Read));
        assert!(needs_sudo("sys/auth/userpass", Operation::Update));
        assert!(!needs_sudo("sys/auth/userpass", Operation::Read));
        assert!(needs_sudo("auth/userpass/config", Operation::Update));
        assert!(!needs_sudo("auth/userpass/config", Operation::Read));
        assert!(!needs_sudo("secret/data/x", Operation::Update));
        assert!(!needs_sudo("sys/audit-hash/file", Operation::Update));
        assert!(!needs_sudo("sys/sealed", Operation::Update));
        assert!(!needs_sudo("sys/leases/lookup", Operation::Update));
        assert!(needs_sudo("sys/leases/lookup/x/", Operation::List));
    }

    #[test]
    fn every_alias_of_a_root_protected_path_needs_sudo() {
        for path in [
            "sys/rotate",
            "sys/rotate/",
            "sys/rotate/keyring",
            "sys/rotate/keyring/",
            "sys/rotate/keyring/config",
            "sys/rotate/root",
            "sys/seal/",
            "sys/audit/",
            "sys/raw",
            "sys/raw/core/keyring",
            "auth/token/revoke-orphan",
            "auth/token/revoke-orphan/",
            "auth/token/revoke-orphan/x",
            "auth/token/accessors",
            "auth/token/accessors/",
            "sys/leases/revoke-prefix/secret",
            "sys/auth/userpass/tune",
        ] {
            assert!(needs_sudo(path, Operation::Update), "{path}");
        }
    }
}
