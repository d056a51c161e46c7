//! Break-glass grants as stored: the request record, its state machine and
//! the conditional change that moves it from one state to the next, with the
//! announcements a change queues and the expiry index the worker claims from.
//! It knows nothing of tokens, logins or HTTP: the core decides who may ask,
//! approve and fetch; this module makes each transition happen exactly once,
//! on any node (every change is one `apply_if` over the record's last read).
//!
//! Storage (behind the barrier): `sys/breakglass/grant/<id>` the record,
//! `sys/breakglass/due/<id>` an empty row whose expiry is the record's next
//! deadline (approval window, then the grant's end), `sys/breakglass/outbox/`
//! the webhook deliveries waiting (see [`notify`]), `sys/breakglass/config`.

pub mod config;
pub mod notify;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierOp, Guard, CAS_ATTEMPTS};
use crate::clock::{rfc3339_secs, UnixTime};
use crate::logical::LogicalError;
pub use config::Config;
pub use notify::EventKind;

const GRANT_PREFIX: &str = "sys/breakglass/grant/";
/// The expiry index the worker claims from.
pub const DUE_PREFIX: &str = "sys/breakglass/due/";

/// Where a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// waiting for approvals
    Pending,
    /// approved; the token has not been fetched
    Approved,
    /// an approver said no
    Denied,
    /// the requester withdrew it
    Cancelled,
    /// nobody approved (or fetched) it in time
    Expired,
    /// the token was fetched and is in force
    Active,
    /// ended early by the requester or an approver
    Revoked,
    /// its TTL ran out
    Ended,
}

impl Status {
    /// The lower-case name used in answers and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Active => "active",
            Status::Revoked => "revoked",
            Status::Ended => "ended",
        }
    }

    /// Whether nothing can happen to the grant any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Approved | Status::Active)
    }
}

/// A person as their login token tells: who asked, approved or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// the username of the login
    pub name: String,
    /// the login's entity (the same person across tokens)
    pub entity_id: String,
    /// the auth mount they logged in through (`userpass/`)
    pub mount: String,
    /// accessor of the token they acted with
    pub accessor: String,
}

impl Person {
    /// Whether `other` is the same person (same entity, or same user of the
    /// same mount when an entity is missing).
    pub fn same_as(&self, other: &Person) -> bool {
        if !self.entity_id.is_empty() && !other.entity_id.is_empty() {
            return self.entity_id == other.entity_id;
        }
        self.mount == other.mount && self.name == other.name
    }
}

/// One approval, bound to the request as it stood.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    /// who approved
    pub by: Person,
    /// unix seconds
    pub time: i64,
    /// free text
    pub comment: String,
    /// [`Grant::binding`] when approved: a request changed since is void
    pub binding: String,
}

/// A denial (or the note of a revocation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    /// who decided (a name, or `expiry`)
    pub by: String,
    /// unix seconds
    pub time: i64,
    /// free text
    pub comment: String,
}

/// How its announcements fared.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Notifications {
    /// deliveries that reached their webhook
    pub delivered: u64,
    /// deliveries given up after the last retry
    pub failed: u64,
    /// failed attempts (each retried until given up)
    pub failed_attempts: u64,
    /// the last delivery error, if any
    pub last_error: String,
}

/// A break-glass request and everything that happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// layout version
    pub version: u32,
    /// `bg-` and 26 random base32 characters
    pub id: String,
    /// where it stands
    pub status: Status,
    /// why (at least ten characters)
    pub reason: String,
    /// a free incident reference
    pub incident: String,
    /// seconds the token lasts from activation
    pub ttl: u64,
    /// what the token gets
    pub policies: Vec<String>,
    /// who asked
    pub requester: Person,
    /// unix seconds
    pub requested_at: i64,
    /// approvals and the fetch must happen before this (unix seconds)
    pub approval_expires_at: i64,
    /// distinct approvers needed
    pub required_approvals: u32,
    /// approvals so far
    pub approvals: Vec<Approval>,
    /// set when denied
    pub denial: Option<Decision>,
    /// HMAC storage key of the token (never the token)
    pub token_key: Option<String>,
    /// the token's accessor
    pub token_accessor: Option<String>,
    /// unix seconds the token was fetched
    pub activated_at: Option<i64>,
    /// unix seconds the token expires
    pub expires_at: Option<i64>,
    /// unix seconds the token was first used
    pub first_used_at: Option<i64>,
    /// unix seconds it ended (revoked, ended, expired, cancelled, denied)
    pub ended_at: Option<i64>,
    /// who ended it (a name, or `expiry`)
    pub ended_by: Option<String>,
    /// announcement delivery
    #[serde(default)]
    pub notifications: Notifications,
}

impl Grant {
    /// The hash an approval is bound to: what was asked, by whom, for how
    /// long. A record whose fields no longer give the same hash is void.
    pub fn binding(&self) -> String {
        let canonical = json!([
            self.id,
            self.requester.entity_id,
            self.requester.mount,
            self.requester.name,
            self.reason,
            self.incident,
            self.ttl,
            self.policies,
        ]);
        crate::crypto::sha256_hex(canonical.to_string().as_bytes())
    }

    /// Whether every approval still matches the request as stored.
    pub fn approvals_hold(&self) -> bool {
        let now = self.binding();
        self.approvals
            .iter()
            .all(|a| crate::crypto::ct_eq(a.binding.as_bytes(), now.as_bytes()))
    }

    /// The status as of `now`: a stored pending, approved or active grant
    /// whose deadline passed reads as expired or ended even before the
    /// worker has written it so.
    pub fn status_at(&self, now: UnixTime) -> Status {
        match self.status {
            Status::Pending | Status::Approved if self.approval_expires_at <= now.secs() => {
                Status::Expired
            }
            Status::Active if self.expires_at.is_some_and(|e| e <= now.secs()) => Status::Ended,
            s => s,
        }
    }

    /// The next deadline the worker must act on (`None` once final).
    fn deadline(&self) -> Option<i64> {
        match self.status {
            Status::Pending | Status::Approved => Some(self.approval_expires_at),
            Status::Active => self.expires_at,
            _ => None,
        }
    }

    /// The answer shape (see the API docs): times in RFC 3339, no token key.
    pub fn view(&self, now: UnixTime) -> Value {
        let time = |t: Option<i64>| t.map(rfc3339_secs);
        json!({
            "id": self.id,
            "status": self.status_at(now).as_str(),
            "reason": self.reason,
            "incident": self.incident,
            "ttl": self.ttl,
            "policies": self.policies,
            "requester": self.requester.name,
            "requester_entity_id": self.requester.entity_id,
            "requested_at": rfc3339_secs(self.requested_at),
            "approval_expires_at": rfc3339_secs(self.approval_expires_at),
            "required_approvals": self.required_approvals,
            "approvals": self.approvals.iter().map(|a| json!({
                "approver": a.by.name,
                "time": rfc3339_secs(a.time),
                "comment": a.comment,
            })).collect::<Vec<_>>(),
            "denial": self.denial.as_ref().map(|d| json!({
                "by": d.by, "time": rfc3339_secs(d.time), "comment": d.comment,
            })),
            "token_accessor": self.token_accessor,
            "activated_at": time(self.activated_at),
            "expires_at": time(self.expires_at),
            "first_used_at": time(self.first_used_at),
            "ended_at": time(self.ended_at),
            "ended_by": self.ended_by,
            "notifications": {
                "delivered": self.notifications.delivered,
                "failed": self.notifications.failed,
                "failed_attempts": self.notifications.failed_attempts,
                "last_error": self.notifications.last_error,
            },
        })
    }
}

fn grant_key(id: &str) -> String {
    format!("{GRANT_PREFIX}{id}")
}

/// Whether `id` is shaped like one this module makes (so a path segment
/// never reaches storage unchecked).
pub fn is_grant_id(id: &str) -> bool {
    id.len() == 29
        && id.starts_with("bg-")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The grant a `sys/breakglass/<id>/...` path is about.
pub fn id_in_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix("sys/breakglass/")?.split('/').next()?;
    is_grant_id(id).then_some(id)
}

/// A fresh grant id.
pub fn new_id() -> Result<String, LogicalError> {
    let bytes = crate::crypto::random_array::<20>().map_err(crate::barrier::BarrierError::from)?;
    let encoded = crate::auth::totp::base32(bytes.as_ref()).to_ascii_lowercase();
    Ok(format!("bg-{}", &encoded[..26]))
}

/// A grant as last read, with the guard a change must hold.
struct Read {
    grant: Grant,
    guard: Guard,
}

/// The grants of one unsealed node.
pub struct Store<'a> {
    barrier: &'a Barrier,
}

impl<'a> Store<'a> {
    /// The store over `barrier`.
    pub fn new(barrier: &'a Barrier) -> Store<'a> {
        Store { barrier }
    }

    /// Reads a grant straight from storage (never a cached copy, so a
    /// revocation on another node is seen at once).
    pub async fn get(&self, id: &str) -> Result<Option<Grant>, LogicalError> {
        Ok(self.read(id).await?.map(|r| r.grant))
    }

    async fn read(&self, id: &str) -> Result<Option<Read>, LogicalError> {
        if !is_grant_id(id) {
            return Ok(None);
        }
        let (raw, guard) = self.barrier.get_versioned(&grant_key(id)).await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let grant: Grant = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        Ok(Some(Read { grant, guard }))
    }

    /// A grant with the guard a change of it must hold, for changes made in
    /// another store's transaction (the token of a fetch).
    pub async fn read_for_change(&self, id: &str) -> Result<Option<(Grant, Guard)>, LogicalError> {
        Ok(self.read(id).await?.map(|r| (r.grant, r.guard)))
    }

    /// The writes that store `grant` as changed, with its index row and the
    /// announcement `event`.
    pub fn change_ops(
        &self,
        grant: &Grant,
        cfg: &Config,
        event: Option<EventKind>,
        now: UnixTime,
    ) -> Result<Vec<BarrierOp>, LogicalError> {
        let mut ops = vec![self.put_op(grant)?];
        ops.extend(self.due_ops(grant));
        if let Some(kind) = event {
            ops.extend(notify::queue_ops(cfg, kind, grant, now)?);
        }
        Ok(ops)
    }

    /// Every grant, newest first (at most `limit`).
    pub async fn list(&self, limit: u32) -> Result<Vec<Grant>, LogicalError> {
        let page = self.barrier.list(GRANT_PREFIX, None, limit).await?;
        let mut out = Vec::new();
        for key in page.keys {
            if let Some(g) = self.get(&key).await? {
                out.push(g);
            }
        }
        out.sort_by(|a, b| b.requested_at.cmp(&a.requested_at));
        Ok(out)
    }

    /// Stores a new grant and queues its `requested` announcement.
    pub async fn create(
        &self,
        grant: &Grant,
        cfg: &Config,
        now: UnixTime,
    ) -> Result<(), LogicalError> {
        let ops = self.change_ops(grant, cfg, Some(EventKind::Requested), now)?;
        let written = self
            .barrier
            .apply_if(&[Guard::absent(grant_key(&grant.id))], ops)
            .await?;
        if written {
            Ok(())
        } else {
            Err(crate::barrier::BarrierError::Contended.into())
        }
    }

    /// Applies `change` to the grant `id` as stored now, with `extra` writes
    /// in the same transaction, retrying on a concurrent change. `change`
    /// answers the announcement it makes (or `None`) or refuses; it runs again
    /// on every retry, so it decides on what is stored, never on a stale copy.
    /// Answers the grant as written.
    pub async fn update<F>(
        &self,
        id: &str,
        cfg: &Config,
        now: UnixTime,
        mut change: F,
    ) -> Result<Grant, LogicalError>
    where
        F: FnMut(&mut Grant) -> Result<Change, LogicalError>,
    {
        for _ in 0..CAS_ATTEMPTS {
            let Some(Read { mut grant, guard }) = self.read(id).await? else {
                return Err(LogicalError::NotFound);
            };
            let Change { event, extra } = change(&mut grant)?;
            let mut ops = self.change_ops(&grant, cfg, event, now)?;
            ops.extend(extra);
            if self.barrier.apply_if(&[guard], ops).await? {
                return Ok(grant);
            }
        }
        Err(crate::barrier::BarrierError::Contended.into())
    }

    /// Ids whose deadline passed, claimed for `lease` seconds so another
    /// node's worker takes other ones.
    pub async fn claim_due(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<String>, LogicalError> {
        let keys = self
            .barrier
            .claim_expired(
                DUE_PREFIX,
                now,
                UnixTime::from_secs(now.secs() + lease),
                limit,
            )
            .await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(DUE_PREFIX).map(str::to_owned))
            .collect())
    }

    fn put_op(&self, grant: &Grant) -> Result<BarrierOp, LogicalError> {
        let raw = serde_json::to_vec(grant).map_err(|_| LogicalError::Corrupt)?;
        Ok(BarrierOp::Put {
            key: grant_key(&grant.id),
            value: Zeroizing::new(raw),
            expires_at: None,
        })
    }

    /// The expiry-index row for the grant's next deadline, or its removal.
    fn due_ops(&self, grant: &Grant) -> Vec<BarrierOp> {
        let key = format!("{DUE_PREFIX}{}", grant.id);
        vec![match grant.deadline() {
            Some(at) => BarrierOp::Put {
                key,
                value: Zeroizing::new(Vec::new()),
                expires_at: Some(at),
            },
            None => BarrierOp::Delete { key },
        }]
    }
}

/// What a change to a grant makes happen besides the record itself.
#[derive(Default)]
pub struct Change {
    /// the announcement to queue
    pub event: Option<EventKind>,
    /// more writes in the same transaction (a token's rows)
    pub extra: Vec<BarrierOp>,
}

impl Change {
    /// A change that announces `kind`.
    pub fn announce(kind: EventKind) -> Change {
        Change {
            event: Some(kind),
            extra: Vec::new(),
        }
    }

    /// A change announcing nothing.
    pub fn quiet() -> Change {
        Change::default()
    }
}

#[cfg(test)]
mod tests;
