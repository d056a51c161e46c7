//! Authorisation of one request against the token's compiled ACL: the capability
//! the operation needs (create vs update decided by the engine's existence
//! check), `sudo` on root-protected paths and on the paths an engine declares
//! so, and parameter constraints on the fields the engine names (for KV v2
//! writes, the keys inside `data`, not the envelope).

use super::route::Resolved;
use super::{CoreError, Unsealed};
use crate::clock::UnixTime;
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
}

/// What authorisation concluded, for the handlers.
pub(super) struct Authorized {
    /// the operation after the existence check (create or update)
    pub(super) operation: Operation,
    /// root or sudo at this path
    pub(super) privileged: bool,
}

pub(super) async fn authorize(
    state: &Unsealed,
    acl: &Acl,
    req: &Request,
    resolved: &Resolved,
    now: UnixTime,
) -> Result<Authorized, CoreError> {
    let path = resolved.path.as_str();
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
    let mounted = resolved.mounted();
    let mut operation = req.operation;
    if operation == Operation::Update {
        if let Some(m) = mounted {
            if m.engine.engine().exists(&m.view, &m.rest).await? == Some(false) {
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
    if let Some(m) = mounted.filter(|_| operation.is_write()) {
        if let Some(object) = m.engine.engine().also_updates(&m.rest) {
            let object = format!("{}{object}", &path[..path.len() - m.rest.len()]);
            if !acl
                .decide(&object, now)
                .allows(Capabilities::for_operation(Operation::Update))
            {
                return Err(CoreError::PermissionDenied);
            }
        }
    }
    let sudo = decision.allows(Capabilities::SUDO);
    let engine_sudo = mounted
        .and_then(|m| m.spec)
        .is_some_and(|spec| spec.sudo.has(operation));
    if (needs_sudo(path, operation) || engine_sudo) && !sudo {
        return Err(CoreError::PermissionDenied);
    }
    if !decision.root
        && !decision.params.is_empty()
        && matches!(
            operation,
            Operation::Create | Operation::Update | Operation::Patch
        )
    {
        let params = match mounted {
            Some(m) => m.engine.engine().policy_fields(&m.rest, &req.data),
            None => &req.data,
        };
        if decision.params.check(params).is_err() {
            return Err(CoreError::PermissionDenied);
        }
    }
    Ok(Authorized {
        operation,
        privileged: sudo,
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
        assert!(needs_sudo("sys/auth/people", Operation::Update));
        assert!(!needs_sudo("sys/auth/people", Operation::Read));
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
            "sys/auth/people/tune",
        ] {
            assert!(needs_sudo(path, Operation::Update), "{path}");
        }
    }
}
