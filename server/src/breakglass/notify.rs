//! Announcements: every change of a grant queues one delivery per configured
//! webhook in the same transaction as the change (so a change is never
//! unannounced and an announcement never describes a change that did not
//! happen). Deliveries wait in `sys/breakglass/outbox/` with their next
//! attempt as expiry; the worker on any node claims due ones, POSTs them
//! signed (`X-Coffer-Signature: sha256=<hex HMAC-SHA256 of the body>`), and on
//! failure puts them back with a doubled delay until it gives up. The request
//! that caused an event never waits for its delivery.

use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::{Change, Config, Grant, Store};
use crate::barrier::{Barrier, BarrierOp};
use crate::clock::UnixTime;
use crate::logical::LogicalError;

/// Deliveries waiting, keyed by a random id, expiring at their next attempt.
pub const OUTBOX_PREFIX: &str = "sys/breakglass/outbox/";
/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-coffer-signature";

/// What happened to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// someone asked
    Requested,
    /// an approver approved (the grant may still need more)
    Approved,
    /// an approver denied
    Denied,
    /// the requester withdrew it
    Cancelled,
    /// the token was fetched
    Activated,
    /// the token was used for the first time
    FirstUse,
    /// ended early
    Revoked,
    /// the request or the grant ran out of time
    Expired,
}

impl EventKind {
    /// The name in events and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Requested => "requested",
            EventKind::Approved => "approved",
            EventKind::Denied => "denied",
            EventKind::Cancelled => "cancelled",
            EventKind::Activated => "activated",
            EventKind::FirstUse => "first_use",
            EventKind::Revoked => "revoked",
            EventKind::Expired => "expired",
        }
    }
}

/// One delivery waiting in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivery {
    id: String,
    grant_id: String,
    event: EventKind,
    url: String,
    /// the JSON body, fixed when the event happened
    body: String,
    attempts: u32,
}

/// A Slack-compatible one-line summary.
fn summary(kind: EventKind, g: &Grant) -> String {
    let who = &g.requester.name;
    let incident = if g.incident.is_empty() {
        String::new()
    } else {
        format!(" ({})", g.incident)
    };
    let what = format!(
        "{} for {}",
        g.policies.join(", "),
        crate::logical::format_duration(g.ttl)
    );
    match kind {
        EventKind::Requested => format!(
            ":rotating_light: Break-glass {} requested by {who}{incident}: {} ({what}); waiting for approval",
            g.id, g.reason
        ),
        EventKind::Approved => format!(
            ":white_check_mark: Break-glass {} of {who}{incident} approved by {} ({}/{})",
            g.id,
            g.approvals.last().map_or("?", |a| a.by.name.as_str()),
            g.approvals.len(),
            g.required_approvals
        ),
        EventKind::Denied => format!(
            ":no_entry: Break-glass {} of {who}{incident} denied by {}",
            g.id,
            g.denial.as_ref().map_or("?", |d| d.by.as_str())
        ),
        EventKind::Cancelled => format!(":leftwards_arrow_with_hook: Break-glass {} of {who}{incident} cancelled", g.id),
        EventKind::Activated => format!(
            ":key: Break-glass {} of {who}{incident} is active: {what}",
            g.id
        ),
        EventKind::FirstUse => format!(
            ":eyes: Break-glass {} of {who}{incident} was used for the first time",
            g.id
        ),
        EventKind::Revoked => format!(
            ":lock: Break-glass {} of {who}{incident} revoked by {}",
            g.id,
            g.ended_by.as_deref().unwrap_or("?")
        ),
        EventKind::Expired => format!(
            ":hourglass: Break-glass {} of {who}{incident} expired ({})",
            g.id,
            g.status.as_str()
        ),
    }
}

/// The writes that queue `kind` about `grant` for every webhook.
pub(super) fn queue_ops(
    cfg: &Config,
    kind: EventKind,
    grant: &Grant,
    now: UnixTime,
) -> Result<Vec<BarrierOp>, LogicalError> {
    let mut ops = Vec::new();
    for url in &cfg.webhook_urls {
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "event": kind.as_str(),
            "id": grant.id,
            "delivery": id,
            "time": now.rfc3339(),
            "status": grant.status.as_str(),
            "request": grant.view(now),
            "text": summary(kind, grant),
        })
        .to_string();
        let d = Delivery {
            id: id.clone(),
            grant_id: grant.id.clone(),
            event: kind,
            url: url.clone(),
            body,
            attempts: 0,
        };
        ops.push(put_op(&d, now.secs())?);
    }
    Ok(ops)
}

fn put_op(d: &Delivery, due: i64) -> Result<BarrierOp, LogicalError> {
    Ok(BarrierOp::Put {
        key: format!("{OUTBOX_PREFIX}{}", d.id),
        value: Zeroizing::new(serde_json::to_vec(d).map_err(|_| LogicalError::Corrupt)?),
        expires_at: Some(due),
    })
}

/// `sha256=<hex>` of `body` under `secret` (empty secret: no signature).
pub fn signature(secret: &str, body: &[u8]) -> Option<String> {
    (!secret.is_empty()).then(|| {
        format!(
            "sha256={}",
            crate::crypto::hmac_hex(secret.as_bytes(), body)
        )
    })
}

/// Seconds before attempt `n + 1` (after `n` failures): 2, 4, 8 ... 300.
pub fn backoff(failures: u32) -> i64 {
    (1i64 << failures.min(9)).clamp(2, 300)
}

/// What one worker pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// deliveries that reached their webhook
    pub ok: u64,
    /// failed attempts
    pub failed_attempts: u64,
    /// deliveries given up
    pub given_up: u64,
}

/// Claims due deliveries and attempts each once (concurrently, each bounded
/// by the client's timeout).
pub async fn deliver_due(
    barrier: &Barrier,
    http: &reqwest::Client,
    now: UnixTime,
) -> Result<Delivered, LogicalError> {
    let keys = barrier
        .claim_expired(OUTBOX_PREFIX, now, UnixTime::from_secs(now.secs() + 60), 32)
        .await?;
    if keys.is_empty() {
        return Ok(Delivered::default());
    }
    let cfg = Config::load(barrier).await?;
    let mut jobs = tokio::task::JoinSet::new();
    for key in keys {
        let Some(raw) = barrier.get(&key).await? else {
            continue;
        };
        let Ok(d) = serde_json::from_slice::<Delivery>(&raw) else {
            // Not ours to fix by hand: an unreadable entry is dropped, not retried forever.
            barrier.delete(&key).await?;
            continue;
        };
        jobs.spawn(attempt(
            http.clone(),
            d,
            Zeroizing::new(cfg.webhook_secret.expose().to_owned()),
        ));
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = jobs.join_next().await {
        if let Ok(outcome) = joined {
            outcomes.push(outcome);
        }
    }
    let store = Store::new(barrier);
    let mut done = Delivered::default();
    for (mut d, outcome) in outcomes {
        let key = format!("{OUTBOX_PREFIX}{}", d.id);
        let grant_id = d.grant_id.clone();
        match outcome {
            Ok(()) => {
                done.ok += 1;
                settle(
                    &store,
                    &grant_id,
                    &cfg,
                    now,
                    BarrierOp::Delete { key },
                    |n| {
                        n.delivered += 1;
                    },
                )
                .await?;
            }
            Err(error) => {
                d.attempts += 1;
                done.failed_attempts += 1;
                let give_up = d.attempts >= MAX_ATTEMPTS;
                if give_up {
                    done.given_up += 1;
                }
                tracing::warn!(grant = %grant_id, event = d.event.as_str(), attempts = d.attempts, give_up, %error, "break-glass webhook delivery failed");
                let next = if give_up {
                    BarrierOp::Delete { key }
                } else {
                    put_op(&d, now.secs() + backoff(d.attempts))?
                };
                let error = format!("{}: {error}", d.url);
                settle(&store, &grant_id, &cfg, now, next, |n| {
                    n.failed_attempts += 1;
                    if give_up {
                        n.failed += 1;
                    }
                    n.last_error.clone_from(&error);
                })
                .await?;
            }
        }
    }
    Ok(done)
}

/// Applies the outbox change `op` together with `count` on the grant's
/// delivery counters; alone when the grant is gone.
async fn settle(
    store: &Store<'_>,
    grant_id: &str,
    cfg: &Config,
    now: UnixTime,
    op: BarrierOp,
    count: impl Fn(&mut super::Notifications),
) -> Result<(), LogicalError> {
    let counted = store
        .update(grant_id, cfg, now, |g| {
            count(&mut g.notifications);
            Ok(Change {
                event: None,
                extra: vec![op.clone()],
            })
        })
        .await;
    match counted {
        Ok(_) => Ok(()),
        Err(LogicalError::NotFound) => Ok(store.barrier.apply(vec![op]).await?),
        Err(e) => Err(e),
    }
}

/// One POST; the error says what went wrong without the body.
async fn attempt(
    http: reqwest::Client,
    d: Delivery,
    secret: Zeroizing<String>,
) -> (Delivery, Result<(), String>) {
    let mut req = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-coffer-event", d.event.as_str())
        .header("x-coffer-delivery", &d.id)
        .body(d.body.clone());
    if let Some(sig) = signature(&secret, d.body.as_bytes()) {
        req = req.header(SIGNATURE_HEADER, sig);
    }
    let outcome = match req.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("the webhook answered {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err("the webhook did not answer in time".to_owned()),
        Err(e) if e.is_connect() => Err("the webhook could not be reached".to_owned()),
        Err(_) => Err("the request to the webhook failed".to_owned()),
    };
    (d, outcome)
}
