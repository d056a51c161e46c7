//! Break-glass: time-boxed emergency access approved by a second person, under
//! `sys/breakglass/` (request, list, show, approve, deny, cancel, fetch the token once,
//! revoke, the post-incident report, and the configuration).
//!
//! Every call answers the typed [`BreakGlassRequest`] the server keeps for a grant;
//! [`Client::breakglass_fetch_token`] also answers the emergency token itself as an
//! [`EmergencyToken`] (a [`SecretString`], `[redacted]` in `Debug`). Approver TOTP codes
//! and the webhook secret are taken as `&str` and wiped from the request body after
//! sending.

use std::fmt;

use coffer_proto::SecretString;
use reqwest::Method;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use crate::error::ClientError;
use crate::types::{null_default, zeroize_value, Secret, Ttl};
use crate::{list_method, optional_secret, required_secret, Client, Response};

/// Where a grant stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BreakGlassStatus {
    /// Waiting for approvals.
    #[default]
    Pending,
    /// Approved; the requester may fetch the token.
    Approved,
    /// An approver said no.
    Denied,
    /// The requester withdrew it.
    Cancelled,
    /// Not approved (or not fetched) in time.
    Expired,
    /// The token was fetched and is live.
    Active,
    /// Ended early by `revoke`.
    Revoked,
    /// The token reached its TTL.
    Ended,
    /// A status this client does not know (a newer server).
    Other(String),
}

impl BreakGlassStatus {
    /// The server's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            BreakGlassStatus::Pending => "pending",
            BreakGlassStatus::Approved => "approved",
            BreakGlassStatus::Denied => "denied",
            BreakGlassStatus::Cancelled => "cancelled",
            BreakGlassStatus::Expired => "expired",
            BreakGlassStatus::Active => "active",
            BreakGlassStatus::Revoked => "revoked",
            BreakGlassStatus::Ended => "ended",
            BreakGlassStatus::Other(s) => s,
        }
    }

    /// From the server's word; unknown words are kept as [`BreakGlassStatus::Other`].
    pub fn parse(s: &str) -> BreakGlassStatus {
        match s {
            "pending" => BreakGlassStatus::Pending,
            "approved" => BreakGlassStatus::Approved,
            "denied" => BreakGlassStatus::Denied,
            "cancelled" => BreakGlassStatus::Cancelled,
            "expired" => BreakGlassStatus::Expired,
            "active" => BreakGlassStatus::Active,
            "revoked" => BreakGlassStatus::Revoked,
            "ended" => BreakGlassStatus::Ended,
            other => BreakGlassStatus::Other(other.to_string()),
        }
    }

    /// Whether the grant is over for good (no token can come from it any more, and a
    /// token that came from it no longer works).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            BreakGlassStatus::Denied
                | BreakGlassStatus::Cancelled
                | BreakGlassStatus::Expired
                | BreakGlassStatus::Revoked
                | BreakGlassStatus::Ended
        )
    }
}

impl fmt::Display for BreakGlassStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BreakGlassStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        Ok(s.map(|s| BreakGlassStatus::parse(&s)).unwrap_or_default())
    }
}

/// One approval of a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Approval {
    /// Who approved (username).
    #[serde(default, deserialize_with = "null_default")]
    pub approver: String,
    /// When (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
    pub time: String,
    /// The approver's comment (may be empty).
    #[serde(default, deserialize_with = "null_default")]
    pub comment: String,
}

/// The denial of a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Denial {
    /// Who denied (username).
    #[serde(default, deserialize_with = "null_default")]
    pub by: String,
    /// When (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
    pub time: String,
    /// Why.
    #[serde(default, deserialize_with = "null_default")]
    pub comment: String,
}

/// How the announcements of a grant went out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Notifications {
    /// Webhook deliveries still to be made (retrying).
    #[serde(default, deserialize_with = "null_default")]
    pub pending: u64,
    /// Deliveries the receivers accepted.
    #[serde(default, deserialize_with = "null_default")]
    pub delivered: u64,
    /// Deliveries given up on.
    #[serde(default, deserialize_with = "null_default")]
    pub failed: u64,
    /// Delivery attempts that failed (and were retried or given up on).
    #[serde(default, deserialize_with = "null_default")]
    pub failed_attempts: u64,
    /// The last delivery error (empty when none).
    #[serde(default, deserialize_with = "null_default")]
    pub last_error: String,
}

/// A break-glass grant as the server keeps it. Times are RFC 3339 strings as the server
/// sent them; [`BreakGlassRequest::raw`] has the whole JSON object.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BreakGlassRequest {
    /// `bg-` and 26 base32 characters.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Where it stands.
    #[serde(default)]
    pub status: BreakGlassStatus,
    /// Why the access is needed.
    #[serde(default, deserialize_with = "null_default")]
    pub reason: String,
    /// Incident reference (empty when none was given).
    #[serde(default, deserialize_with = "null_default")]
    pub incident: String,
    /// Seconds the token lives once fetched.
    #[serde(default, deserialize_with = "null_default")]
    pub ttl: i64,
    /// Policies the token gets.
    #[serde(default, deserialize_with = "null_default")]
    pub policies: Vec<String>,
    /// Who asked (username).
    #[serde(default, deserialize_with = "null_default")]
    pub requester: String,
    /// The requester's entity id.
    #[serde(default, deserialize_with = "null_default")]
    pub requester_entity_id: String,
    /// When it was asked for.
    #[serde(default, deserialize_with = "null_default")]
    pub requested_at: String,
    /// Until when it must be approved (and the token fetched).
    #[serde(default, deserialize_with = "null_default")]
    pub approval_expires_at: String,
    /// Distinct approvers needed.
    #[serde(default, deserialize_with = "null_default")]
    pub required_approvals: u32,
    /// Approvals so far.
    #[serde(default, deserialize_with = "null_default")]
    pub approvals: Vec<Approval>,
    /// The denial, when denied.
    #[serde(default)]
    pub denial: Option<Denial>,
    /// Accessor of the emergency token, once fetched.
    #[serde(default)]
    pub token_accessor: Option<String>,
    /// When the token was fetched.
    #[serde(default)]
    pub activated_at: Option<String>,
    /// When the token expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// When the token was first used.
    #[serde(default)]
    pub first_used_at: Option<String>,
    /// When the grant ended (revoked, expired, cancelled, denied).
    #[serde(default)]
    pub ended_at: Option<String>,
    /// Who ended it (`expiry` when the TTL ran out).
    #[serde(default)]
    pub ended_by: Option<String>,
    /// Webhook deliveries.
    #[serde(default, deserialize_with = "null_default")]
    pub notifications: Notifications,
    /// Warnings the server attached to the answer (e.g. a TTL capped to the maximum).
    #[serde(skip)]
    pub warnings: Vec<String>,
    #[serde(skip)]
    raw: Value,
}

impl BreakGlassRequest {
    /// Decode a request object, keeping the JSON.
    pub fn from_value(value: Value) -> Result<BreakGlassRequest, ClientError> {
        let mut req: BreakGlassRequest = serde_json::from_value(value.clone())
            .map_err(|e| ClientError::Decode(format!("bad break-glass request: {e}")))?;
        req.raw = value;
        Ok(req)
    }

    /// The JSON object as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

/// The emergency token of a grant, as `sys/breakglass/<id>/token` hands it out (once).
/// `Debug` never shows the token; the answer is wiped on drop.
#[derive(Debug)]
pub struct EmergencyToken {
    /// The token.
    pub token: SecretString,
    /// Its accessor (safe to show and log).
    pub accessor: String,
    /// Policies it carries.
    pub policies: Vec<String>,
    /// Seconds it lives from now (it is not renewable).
    pub lease_duration: i64,
    /// When it expires (RFC 3339), as the grant records it.
    pub expires_at: Option<String>,
    /// The grant, now `active`.
    pub request: BreakGlassRequest,
    answer: Secret,
}

impl EmergencyToken {
    /// The whole answer as the server sent it (it holds the token: for `-format=json`).
    pub fn raw(&self) -> &Value {
        self.answer.raw()
    }
}

/// One line of a grant's timeline: an event of the grant or an operation made with its
/// token, from the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TimelineEntry {
    /// When (RFC 3339).
    #[serde(default, deserialize_with = "null_default")]
    pub time: String,
    /// `requested`, `approved`, `denied`, `activated`, `used`, `revoked`, `expired`,
    /// `ended` or `cancelled`.
    #[serde(default, deserialize_with = "null_default")]
    pub event: String,
    /// Who (username, or `expiry`).
    #[serde(default, deserialize_with = "null_default")]
    pub actor: String,
    /// The request path, for `used`.
    #[serde(default, deserialize_with = "null_default")]
    pub path: String,
    /// The operation (`read`, `update`, ...), for `used`.
    #[serde(default, deserialize_with = "null_default")]
    pub operation: String,
    /// The error the operation met (empty when it succeeded).
    #[serde(default, deserialize_with = "null_default")]
    pub error: String,
}

/// `sys/breakglass/<id>/report`: the grant and its timeline, for the post-incident review.
#[derive(Debug, Clone, Default)]
pub struct BreakGlassReport {
    /// The grant's id.
    pub id: String,
    /// The grant.
    pub request: BreakGlassRequest,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    raw: Value,
}

impl BreakGlassReport {
    /// Decode the `data` of a report answer, keeping the JSON.
    pub fn from_value(value: Value) -> Result<BreakGlassReport, ClientError> {
        let bad = |e: String| ClientError::Decode(format!("bad break-glass report: {e}"));
        let request = match value.get("request") {
            Some(r) if !r.is_null() => BreakGlassRequest::from_value(r.clone())?,
            _ => return Err(bad("no request".into())),
        };
        let timeline = match value.get("timeline") {
            Some(t) if !t.is_null() => {
                serde_json::from_value(t.clone()).map_err(|e| bad(e.to_string()))?
            }
            _ => Vec::new(),
        };
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| request.id.clone());
        Ok(BreakGlassReport {
            id,
            request,
            timeline,
            raw: value,
        })
    }

    /// The `data` object as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

/// `sys/breakglass/config` as read. Durations are as the server shows them (`"30m"`);
/// the webhook secret is never read back, only whether one is set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BreakGlassConfig {
    /// TTL of a grant when the request names none.
    #[serde(default, deserialize_with = "duration_text")]
    pub default_ttl: String,
    /// Longest TTL a request may have (at most 4h).
    #[serde(default, deserialize_with = "duration_text")]
    pub max_ttl: String,
    /// How long a request waits for approval.
    #[serde(default, deserialize_with = "duration_text")]
    pub approval_window: String,
    /// Distinct approvers needed.
    #[serde(default, deserialize_with = "null_default")]
    pub required_approvals: u32,
    /// Policies a grant may carry.
    #[serde(default, deserialize_with = "null_default")]
    pub grantable_policies: Vec<String>,
    /// Where announcements go.
    #[serde(default, deserialize_with = "null_default")]
    pub webhook_urls: Vec<String>,
    /// Whether a webhook signing secret is set.
    #[serde(default, deserialize_with = "null_default")]
    pub webhook_secret_set: bool,
    #[serde(skip)]
    raw: Value,
}

impl BreakGlassConfig {
    /// The `data` object as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

/// A change of `sys/breakglass/config`: unset fields are not sent (the server keeps
/// them). `Debug` does not show the webhook secret.
#[derive(Clone, Default)]
pub struct BreakGlassConfigUpdate {
    /// TTL of a grant when the request names none.
    pub default_ttl: Option<Ttl>,
    /// Longest TTL a request may have.
    pub max_ttl: Option<Ttl>,
    /// How long a request waits for approval.
    pub approval_window: Option<Ttl>,
    /// Distinct approvers needed.
    pub required_approvals: Option<u32>,
    /// Policies a grant may carry.
    pub grantable_policies: Option<Vec<String>>,
    /// Where announcements go.
    pub webhook_urls: Option<Vec<String>>,
    /// The HMAC-SHA256 key announcements are signed with.
    pub webhook_secret: Option<SecretString>,
}

impl fmt::Debug for BreakGlassConfigUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakGlassConfigUpdate")
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("approval_window", &self.approval_window)
            .field("required_approvals", &self.required_approvals)
            .field("grantable_policies", &self.grantable_policies)
            .field("webhook_urls", &self.webhook_urls)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl BreakGlassConfigUpdate {
    /// The JSON body (holds the webhook secret when set: wipe it after use).
    fn body(&self) -> Value {
        let mut body = Map::new();
        let mut put = |k: &str, v: Value| {
            body.insert(k.to_string(), v);
        };
        if let Some(t) = &self.default_ttl {
            put("default_ttl", json!(t));
        }
        if let Some(t) = &self.max_ttl {
            put("max_ttl", json!(t));
        }
        if let Some(t) = &self.approval_window {
            put("approval_window", json!(t));
        }
        if let Some(n) = self.required_approvals {
            put("required_approvals", json!(n));
        }
        if let Some(p) = &self.grantable_policies {
            put("grantable_policies", json!(p));
        }
        if let Some(u) = &self.webhook_urls {
            put("webhook_urls", json!(u));
        }
        if let Some(s) = &self.webhook_secret {
            put("webhook_secret", json!(s.expose()));
        }
        Value::Object(body)
    }
}

/// A duration the server may show as `"30m"` or as seconds: kept as text.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    })
}

/// A grant id as one path segment: refused when it could name another path.
fn grant_path(id: &str, action: Option<&str>) -> Result<String, ClientError> {
    let id = id.trim();
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(ClientError::InvalidPath(format!("sys/breakglass/{id}")));
    }
    Ok(match action {
        Some(action) => format!("sys/breakglass/{id}/{action}"),
        None => format!("sys/breakglass/{id}"),
    })
}

/// The request object in the `data` of an answer.
fn request_of(resp: Response) -> Result<BreakGlassRequest, ClientError> {
    let secret = required_secret(resp)?;
    let data = secret
        .data
        .clone()
        .ok_or_else(|| ClientError::Decode("the answer has no break-glass request".into()))?;
    let mut req = BreakGlassRequest::from_value(Value::Object(data))?;
    req.warnings = secret.warnings.clone().unwrap_or_default();
    Ok(req)
}

/// The body of `request`.
fn request_body(
    reason: &str,
    ttl: Option<&Ttl>,
    incident: Option<&str>,
    policies: &[String],
) -> Value {
    let mut body = Map::new();
    body.insert("reason".into(), json!(reason));
    if let Some(incident) = incident.map(str::trim).filter(|i| !i.is_empty()) {
        body.insert("incident".into(), json!(incident));
    }
    if let Some(ttl) = ttl {
        body.insert("ttl".into(), json!(ttl));
    }
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    Value::Object(body)
}

/// The body of `approve` and `deny`: the approver's code and the comment.
fn decision_body(totp: &str, comment: Option<&str>) -> Value {
    let mut body = json!({ "totp": totp });
    if let (Some(comment), Some(obj)) = (comment, body.as_object_mut()) {
        obj.insert("comment".into(), json!(comment));
    }
    body
}

/// The grants of a LIST answer, in the order of `keys`.
fn list_of(secret: Option<Secret>) -> Result<Vec<BreakGlassRequest>, ClientError> {
    let Some(secret) = secret else {
        return Ok(Vec::new());
    };
    let keys: Vec<String> = secret
        .data_field("keys")
        .and_then(Value::as_array)
        .map(|k| {
            k.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let info = secret.data_field("key_info").and_then(Value::as_object);
    keys.into_iter()
        .map(|id| match info.and_then(|i| i.get(&id)) {
            Some(v) if v.is_object() => BreakGlassRequest::from_value(v.clone()),
            // A server that lists ids only: the id is all there is to show.
            _ => BreakGlassRequest::from_value(json!({ "id": id })),
        })
        .collect()
}

impl Client {
    async fn breakglass_post(
        &self,
        id: &str,
        action: &str,
        body: &Value,
    ) -> Result<Response, ClientError> {
        let path = grant_path(id, Some(action))?;
        self.request(Method::POST, &path, &[], Some(body), &[])
            .await
    }

    /// `POST sys/breakglass/request`: ask for emergency access. `reason` (at least 10
    /// characters) is required; `ttl`, `incident` and `policies` fall back to the
    /// server's configuration when `None`/empty. The token must come from an MFA login.
    pub async fn breakglass_request(
        &self,
        reason: &str,
        ttl: Option<Ttl>,
        incident: Option<&str>,
        policies: &[String],
    ) -> Result<BreakGlassRequest, ClientError> {
        let body = request_body(reason, ttl.as_ref(), incident, policies);
        request_of(
            self.request(
                Method::POST,
                "sys/breakglass/request",
                &[],
                Some(&body),
                &[],
            )
            .await?,
        )
    }

    /// `LIST sys/breakglass` (only `pending` ones with `pending_only`): a requester sees
    /// their own grants, an approver all of them. Empty when there are none.
    pub async fn breakglass_list(
        &self,
        pending_only: bool,
    ) -> Result<Vec<BreakGlassRequest>, ClientError> {
        let query: &[(&str, &str)] = if pending_only {
            &[("status", "pending")]
        } else {
            &[]
        };
        let resp = self
            .request(list_method()?, "sys/breakglass", query, None, &[])
            .await?;
        list_of(optional_secret(resp)?)
    }

    /// `GET sys/breakglass/<id>`.
    pub async fn breakglass_show(&self, id: &str) -> Result<BreakGlassRequest, ClientError> {
        let path = grant_path(id, None)?;
        request_of(self.request(Method::GET, &path, &[], None, &[]).await?)
    }

    /// `POST sys/breakglass/<id>/approve` with the approver's fresh TOTP `totp` code.
    pub async fn breakglass_approve(
        &self,
        id: &str,
        totp: &str,
        comment: Option<&str>,
    ) -> Result<BreakGlassRequest, ClientError> {
        let mut body = decision_body(totp, comment);
        let resp = self.breakglass_post(id, "approve", &body).await;
        zeroize_value(&mut body);
        request_of(resp?)
    }

    /// `POST sys/breakglass/<id>/deny` with the approver's TOTP code and a comment.
    pub async fn breakglass_deny(
        &self,
        id: &str,
        totp: &str,
        comment: &str,
    ) -> Result<BreakGlassRequest, ClientError> {
        let mut body = decision_body(totp, Some(comment));
        let resp = self.breakglass_post(id, "deny", &body).await;
        zeroize_value(&mut body);
        request_of(resp?)
    }

    /// `POST sys/breakglass/<id>/cancel` (the requester, while pending or approved).
    pub async fn breakglass_cancel(&self, id: &str) -> Result<BreakGlassRequest, ClientError> {
        request_of(self.breakglass_post(id, "cancel", &json!({})).await?)
    }

    /// `POST sys/breakglass/<id>/token`: the emergency token of an approved grant. The
    /// server hands it out exactly once, to the requester; keep it.
    pub async fn breakglass_fetch_token(&self, id: &str) -> Result<EmergencyToken, ClientError> {
        let mut answer = required_secret(self.breakglass_post(id, "token", &json!({})).await?)?;
        let auth = answer
            .auth
            .take()
            .ok_or_else(|| ClientError::Decode("the answer has no auth block".into()))?;
        if auth.client_token.expose().is_empty() {
            return Err(ClientError::Decode("the answer has no token".into()));
        }
        let request =
            BreakGlassRequest::from_value(Value::Object(answer.data.clone().unwrap_or_default()))?;
        let policies = if auth.policies.is_empty() {
            auth.token_policies.clone()
        } else {
            auth.policies.clone()
        };
        Ok(EmergencyToken {
            expires_at: request.expires_at.clone(),
            accessor: auth.accessor.clone(),
            lease_duration: auth.lease_duration,
            policies,
            token: auth.client_token.clone(),
            request,
            answer,
        })
    }

    /// `POST sys/breakglass/<id>/revoke`: end the grant and its token now (the requester
    /// or an approver).
    pub async fn breakglass_revoke(&self, id: &str) -> Result<BreakGlassRequest, ClientError> {
        request_of(self.breakglass_post(id, "revoke", &json!({})).await?)
    }

    /// `GET sys/breakglass/<id>/report`: the grant and its timeline.
    pub async fn breakglass_report(&self, id: &str) -> Result<BreakGlassReport, ClientError> {
        let path = grant_path(id, Some("report"))?;
        let secret = required_secret(self.request(Method::GET, &path, &[], None, &[]).await?)?;
        let data = secret
            .data
            .clone()
            .ok_or_else(|| ClientError::Decode("the report answer has no data".into()))?;
        BreakGlassReport::from_value(Value::Object(data))
    }

    /// `GET sys/breakglass/config`.
    pub async fn breakglass_config(&self) -> Result<BreakGlassConfig, ClientError> {
        let secret = required_secret(
            self.request(Method::GET, "sys/breakglass/config", &[], None, &[])
                .await?,
        )?;
        let data = Value::Object(secret.data.clone().unwrap_or_default());
        let mut config: BreakGlassConfig = serde_json::from_value(data.clone())
            .map_err(|e| ClientError::Decode(format!("bad break-glass config: {e}")))?;
        config.raw = data;
        Ok(config)
    }

    /// `POST sys/breakglass/config` with the fields set in `update`.
    pub async fn breakglass_write_config(
        &self,
        update: &BreakGlassConfigUpdate,
    ) -> Result<(), ClientError> {
        let mut body = update.body();
        let resp = self
            .request(Method::POST, "sys/breakglass/config", &[], Some(&body), &[])
            .await;
        zeroize_value(&mut body);
        resp?.error_for_status()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request object as the API document shows it.
    fn sample_request() -> Value {
        json!({
            "id": "bg-abcdefghijklmnopqrstuvwxyz",
            "status": "active",
            "reason": "database failover stuck",
            "incident": "INC-42",
            "ttl": 1800,
            "policies": ["emergency-admin"],
            "requester": "alice",
            "requester_entity_id": "ent-1",
            "requested_at": "2026-12-01T10:00:00Z",
            "approval_expires_at": "2026-12-01T11:00:00Z",
            "required_approvals": 1,
            "approvals": [{"approver": "bob", "time": "2026-12-01T10:02:00Z", "comment": ""}],
            "denial": null,
            "activated_at": "2026-12-01T10:03:00Z",
            "expires_at": "2026-12-01T10:33:00Z",
            "first_used_at": null,
            "ended_at": null,
            "ended_by": null,
            "notifications": {"pending": 0, "delivered": 3, "failed": 0, "last_error": ""}
        })
    }

    #[test]
    fn request_object_decodes() {
        let r = BreakGlassRequest::from_value(sample_request()).unwrap();
        assert_eq!(r.status, BreakGlassStatus::Active);
        assert_eq!(r.ttl, 1800);
        assert_eq!(r.approvals[0].approver, "bob");
        assert!(r.denial.is_none() && r.first_used_at.is_none());
        assert_eq!(r.expires_at.as_deref(), Some("2026-12-01T10:33:00Z"));
        assert_eq!(r.notifications.delivered, 3);
        assert_eq!(r.raw(), &sample_request());
        let odd = BreakGlassRequest::from_value(json!({"id": "bg-x", "status": "frozen",
            "policies": null, "approvals": null}))
        .unwrap();
        assert_eq!(odd.status, BreakGlassStatus::Other("frozen".into()));
        assert_eq!(odd.status.to_string(), "frozen");
        assert!(BreakGlassStatus::Revoked.is_final() && !BreakGlassStatus::Active.is_final());
    }

    #[test]
    fn list_keeps_key_order_and_tolerates_missing_info() {
        let secret = Secret::from_value(json!({"data": {
            "keys": ["bg-b", "bg-a"],
            "key_info": {"bg-a": {"id": "bg-a", "status": "pending"}}
        }}))
        .unwrap();
        let list = list_of(Some(secret)).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, "bg-b");
        assert_eq!(list[1].status, BreakGlassStatus::Pending);
        assert!(list_of(None).unwrap().is_empty());
    }

    #[test]
    fn bodies_and_paths() {
        assert_eq!(
            request_body("ten chars!", Some(&Ttl::Seconds(600)), Some(" "), &[]),
            json!({"reason": "ten chars!", "ttl": 600})
        );
        assert_eq!(
            request_body("r", None, Some("INC-1"), &["a".into()]),
            json!({"reason": "r", "incident": "INC-1", "policies": ["a"]})
        );
        assert_eq!(decision_body("123456", None), json!({"totp": "123456"}));
        assert_eq!(
            grant_path("bg-x", Some("approve")).unwrap(),
            "sys/breakglass/bg-x/approve"
        );
        assert!(grant_path("../sys/seal", None).is_err());
        assert!(grant_path(" ", None).is_err());
    }

    #[test]
    fn emergency_token_and_config_never_show_secrets() {
        let answer = Secret::from_value(json!({"auth": {"client_token": "hvs.EMERGENCY",
            "accessor": "acc", "policies": ["emergency-admin"], "lease_duration": 1800,
            "renewable": false}, "data": sample_request()}))
        .unwrap();
        let token = EmergencyToken {
            token: "hvs.EMERGENCY".into(),
            accessor: "acc".into(),
            policies: vec![],
            lease_duration: 1800,
            expires_at: None,
            request: BreakGlassRequest::default(),
            answer,
        };
        assert!(!format!("{token:?}").contains("hvs.EMERGENCY"));
        let update = BreakGlassConfigUpdate {
            webhook_secret: Some("whsec-TOPSECRET".into()),
            max_ttl: Some(Ttl::parse("4h")),
            ..Default::default()
        };
        assert!(!format!("{update:?}").contains("TOPSECRET"));
        assert_eq!(
            update.body(),
            json!({"max_ttl": "4h", "webhook_secret": "whsec-TOPSECRET"})
        );
        let config: BreakGlassConfig = serde_json::from_value(json!({"default_ttl": "30m",
            "max_ttl": 14400, "webhook_secret_set": true, "webhook_urls": null}))
        .unwrap();
        assert_eq!(
            (config.default_ttl.as_str(), config.max_ttl.as_str()),
            ("30m", "14400")
        );
        assert!(config.webhook_secret_set && config.webhook_urls.is_empty());
    }

    #[test]
    fn report_decodes() {
        let r = BreakGlassReport::from_value(json!({
            "id": "bg-abcdefghijklmnopqrstuvwxyz",
            "request": sample_request(),
            "timeline": [{"time": "2026-12-01T10:00:00Z", "event": "requested", "actor": "alice",
                          "path": "", "operation": "", "error": ""},
                         {"time": "2026-12-01T10:05:00Z", "event": "used", "actor": "alice",
                          "path": "sys/policies/acl/x", "operation": "update", "error": null}]
        }))
        .unwrap();
        assert_eq!(r.timeline.len(), 2);
        assert_eq!(r.timeline[1].operation, "update");
        assert!(r.timeline[1].error.is_empty());
        assert!(BreakGlassReport::from_value(json!({"id": "x"})).is_err());
    }
}
