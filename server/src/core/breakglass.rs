//! Break-glass in the request pipeline and in the background: a break-glass
//! token works only while its grant is active (read from storage on every
//! use, so an end on one node holds on every node at once), never on the
//! paths that would let it outlive or hide its grant, and its first use is
//! announced. The worker ends grants whose time ran out and delivers their
//! announcements; the report's timeline is read back from the audit log.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::{Core, CoreError, Unsealed};
use crate::audit::{Record, RequestInfo};
use crate::breakglass::{notify, Change, Config, EventKind, Grant, Status, Store};
use crate::clock::UnixTime;
use crate::logical::{LogicalError, Operation};
use crate::token::FoundToken;

/// This node's break-glass counters and webhook client.
pub(super) struct Runtime {
    requests: AtomicU64,
    delivery_failures: AtomicU64,
    http: reqwest::Client,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            requests: AtomicU64::new(0),
            delivery_failures: AtomicU64::new(0),
            // Webhooks get five seconds and no redirects: an announcement goes
            // where it was configured to, nowhere else.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Runtime {
    pub(super) fn requested(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(super) fn delivery_failures(&self) -> u64 {
        self.delivery_failures.load(Ordering::Relaxed)
    }
}

/// Paths a break-glass token never reaches, whatever its policies say: it
/// cannot hide what it does (audit devices), change the rules it was given
/// under (break-glass configuration, policies), grant itself more
/// (break-glass requests and approvals, tokens, auth methods), or take the
/// server away from everyone else (seal, rekey, root generation, rotation).
pub(super) fn closed_to_grants(path: &str, operation: Operation) -> bool {
    let prefixes = [
        "sys/audit",
        "sys/breakglass",
        "sys/seal",
        "sys/step-down",
        "sys/rekey",
        "sys/rotate",
        "sys/generate-root",
        "sys/unseal",
        "sys/init",
        "sys/auth",
        "auth/token/create",
    ];
    let reads = ["sys/audit", "sys/auth"];
    let hit = |p: &str| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('-'))
    };
    // Computing an audit hash (to search the log) and reading the checkpoint
    // key change nothing.
    if hit("sys/audit-hash") || hit("sys/audit-checkpoint-key") {
        return false;
    }
    let writes_only = ["sys/policy", "sys/policies"];
    if writes_only.iter().any(|p| hit(p)) {
        return operation != Operation::Read && operation != Operation::List;
    }
    if reads.iter().any(|p| hit(p)) && matches!(operation, Operation::Read | Operation::List) {
        return false;
    }
    prefixes.iter().any(|p| hit(p))
}

/// For a break-glass token: refuses unless its grant is active and names this
/// token, and announces its first use. Other tokens pass untouched.
pub(super) async fn check_grant_token(
    state: &Unsealed,
    found: &FoundToken,
    now: UnixTime,
) -> Result<(), CoreError> {
    let Some(id) = found.entry.meta.get("breakglass_id") else {
        return Ok(());
    };
    let store = Store::new(&state.barrier);
    let grant = store.get(id).await?;
    let usable = grant.as_ref().is_some_and(|g| {
        g.status_at(now) == Status::Active
            && g.token_key
                .as_deref()
                .is_some_and(|k| crate::crypto::ct_eq(k.as_bytes(), found.key.as_bytes()))
    });
    if !usable {
        let status = grant.as_ref().map_or("gone", |g| g.status_at(now).as_str());
        return Err(LogicalError::Forbidden(format!(
            "permission denied: the break-glass grant {id} is {status}"
        ))
        .into());
    }
    if grant.as_ref().is_some_and(|g| g.first_used_at.is_none()) {
        let cfg = Config::load(&state.barrier).await?;
        let first = store
            .update(id, &cfg, now, |g| {
                if g.first_used_at.is_some() {
                    // Another request (on any node) was first.
                    return Err(LogicalError::invalid("already used"));
                }
                g.first_used_at = Some(now.secs());
                Ok(Change::announce(EventKind::FirstUse))
            })
            .await;
        if first.is_ok() {
            tracing::warn!(%id, "break-glass token used for the first time");
        }
    }
    Ok(())
}

impl Core {
    /// One pass of the break-glass worker: ends requests and grants whose
    /// time ran out, then delivers due announcements. Runs on every node; the
    /// claims keep two nodes off the same grant or delivery.
    pub async fn breakglass_tick(&self) -> Result<usize, CoreError> {
        let Ok(state) = self.unsealed() else {
            return Ok(0);
        };
        let now = self.now();
        let store = Store::new(&state.barrier);
        let due = store.claim_due(now, 60, 50).await?;
        let mut ended = 0;
        if !due.is_empty() {
            let cfg = Config::load(&state.barrier).await?;
            for id in due {
                if self.end_if_due(&state, &store, &cfg, &id, now).await? {
                    ended += 1;
                }
            }
        }
        let delivered = notify::deliver_due(&state.barrier, &self.breakglass.http, now).await?;
        self.breakglass
            .delivery_failures
            .fetch_add(delivered.failed_attempts, Ordering::Relaxed);
        Ok(ended + delivered.ok as usize)
    }

    async fn end_if_due(
        &self,
        state: &Unsealed,
        store: &Store<'_>,
        cfg: &Config,
        id: &str,
        now: UnixTime,
    ) -> Result<bool, CoreError> {
        let mut changed = false;
        let result = store
            .update(id, cfg, now, |g| {
                changed = false;
                let became = g.status_at(now);
                if became == g.status {
                    // Not due (yet): writing it back re-arms its index row.
                    return Ok(Change::quiet());
                }
                g.status = became;
                g.ended_at = Some(now.secs());
                g.ended_by = Some("expiry".into());
                changed = true;
                Ok(Change::announce(EventKind::Expired))
            })
            .await;
        let grant = match result {
            Ok(g) => g,
            Err(LogicalError::NotFound) => {
                state
                    .barrier
                    .delete(&format!("{}{id}", crate::breakglass::DUE_PREFIX))
                    .await?;
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        if changed {
            if let Some(key) = &grant.token_key {
                state.tokens.revoke_tree(key).await?;
            }
            tracing::warn!(%id, status = grant.status.as_str(), "break-glass grant ran out of time");
            self.audit_end(state, &grant).await;
        }
        Ok(changed)
    }

    /// The audit log's record of an end no request caused, so the episode's
    /// timeline (read from the log) has its end.
    async fn audit_end(&self, state: &Unsealed, grant: &Grant) {
        let mut data = serde_json::Map::new();
        data.insert("status".into(), json!(grant.status.as_str()));
        let record = Record {
            auth: None,
            request: RequestInfo {
                id: uuid::Uuid::new_v4().to_string(),
                operation: "update",
                path: format!("sys/breakglass/{}/expire", grant.id),
                mount_point: "sys/".into(),
                mount_type: "system".into(),
                data,
                remote_address: String::new(),
                client_token: None,
            },
            breakglass_id: Some(grant.id.clone()),
        };
        let logged = async {
            state.audit.log_request(&record, None).await?;
            state.audit.log_response(&record, None, None).await
        }
        .await;
        if logged.is_err() {
            tracing::error!(id = %grant.id, "no audit device took the end of a break-glass grant");
        }
    }

    /// Grants in force now (for the metrics gauge).
    pub(super) async fn active_grants(&self, state: &Unsealed) -> u64 {
        let now = self.now();
        Store::new(&state.barrier)
            .list(1000)
            .await
            .map(|all| {
                all.iter()
                    .filter(|g| g.status_at(now) == Status::Active)
                    .count() as u64
            })
            .unwrap_or(0)
    }
}

/// The timeline of `grant` from the audit log: every response entry that
/// carries its id, in the order written, named by what it did. Reads the
/// first of `files` that opens (every device holds the same entries).
pub(super) async fn timeline(files: &[PathBuf], grant: &Grant) -> Result<Vec<Value>, CoreError> {
    let id = grant.id.clone();
    let files = files.to_vec();
    let requester = grant.requester.name.clone();
    let approvers: Vec<String> = grant.approvals.iter().map(|a| a.by.name.clone()).collect();
    let denier = grant.denial.as_ref().map(|d| d.by.clone());
    let ended_by = grant.ended_by.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let Some(file) = files.iter().find_map(|f| std::fs::File::open(f).ok()) else {
            return Err(LogicalError::invalid(
                "no audit file device is readable on this node: the report is read from the audit log",
            )
            .into());
        };
        // Line by line: an audit file may be far larger than memory.
        let lines = std::io::BufReader::new(file).lines().map_while(Result::ok);
        let needle = format!("\"breakglass_id\":\"{id}\"");
        let mut out = Vec::new();
        let mut approvals = approvers.iter();
        for line in lines.filter(|l| l.contains(&needle)) {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if entry["type"] != "response" || entry["breakglass_id"] != json!(id) {
                continue;
            }
            let path = entry["request"]["path"].as_str().unwrap_or_default().to_owned();
            let error = entry["error"].as_str().unwrap_or_default().to_owned();
            let with_grant_token = entry["auth"]["metadata"]["breakglass_id"].is_string();
            let action = path
                .strip_prefix(&format!("sys/breakglass/{id}/"))
                .unwrap_or("");
            let (event, actor) = if path == "sys/breakglass/request" {
                ("requested", requester.clone())
            } else if with_grant_token {
                ("used", requester.clone())
            } else {
                match action {
                    "approve" if error.is_empty() => (
                        "approved",
                        approvals.next().cloned().unwrap_or_default(),
                    ),
                    "approve" => ("approval refused", String::new()),
                    "deny" if error.is_empty() => ("denied", denier.clone().unwrap_or_default()),
                    "deny" => ("denial refused", String::new()),
                    "token" if error.is_empty() => ("activated", requester.clone()),
                    "token" => ("fetch refused", String::new()),
                    "revoke" if error.is_empty() => {
                        ("revoked", ended_by.clone().unwrap_or_default())
                    }
                    "cancel" if error.is_empty() => ("cancelled", requester.clone()),
                    "expire" => ("ended", "expiry".to_owned()),
                    // Looking at the grant is not part of the episode.
                    "" | "report" => continue,
                    _ => ("other", String::new()),
                }
            };
            out.push(json!({
                "time": entry["time"],
                "event": event,
                "actor": actor,
                "path": path,
                "operation": entry["request"]["operation"],
                "error": error,
                "request_id": entry["request"]["id"],
            }));
        }
        Ok(out)
    })
    .await
    .map_err(|_| CoreError::Logical(LogicalError::Corrupt))?
}

#[cfg(test)]
mod tests {
    use super::closed_to_grants;
    use crate::logical::Operation::{Delete, List, Read, Update};

    #[test]
    fn grant_tokens_never_reach_what_would_hide_extend_or_widen_them() {
        for (path, op) in [
            ("sys/audit/file", Update),
            ("sys/audit/file", Delete),
            ("sys/breakglass/config", Update),
            ("sys/breakglass/config", Read),
            ("sys/breakglass/request", Update),
            (
                "sys/breakglass/bg-aaaaaaaaaaaaaaaaaaaaaaaaaa/approve",
                Update,
            ),
            ("sys/seal", Update),
            ("sys/rekey/init", Update),
            ("sys/rotate", Update),
            ("sys/rotate/keyring", Update),
            ("sys/generate-root/attempt", Update),
            ("sys/generate-root-token/attempt", Update),
            ("sys/policies/acl/developer", Update),
            ("sys/policy/developer", Delete),
            ("sys/auth/userpass", Update),
            ("sys/auth/userpass/tune", Update),
            ("auth/token/create", Update),
            ("auth/token/create-orphan", Update),
        ] {
            assert!(closed_to_grants(path, op), "{op:?} {path}");
        }
        for (path, op) in [
            ("sys/audit", Read),
            ("sys/audit-hash/file", Update),
            ("sys/auth", Read),
            ("sys/policies/acl/developer", Read),
            ("sys/policies/acl", List),
            ("secret/data/teams/payments/db", Update),
            ("auth/token/revoke-accessor", Update),
            ("sys/leases/revoke", Update),
            ("sys/mounts/secret/tune", Update),
            ("sys/auditor", Update),
        ] {
            assert!(!closed_to_grants(path, op), "{op:?} {path}");
        }
    }
}
