//! `sys/breakglass/config`: how long grants may last, how long a request
//! waits, how many approvers it needs, which policies it may grant and where
//! it is announced. Stored behind the barrier; the webhook secret is never
//! answered.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::barrier::Barrier;
use crate::crypto::SecretString;
use crate::logical::{Fields, LogicalError};

const CONFIG_KEY: &str = "sys/breakglass/config";

/// The longest grant any configuration allows.
pub const HARD_MAX_TTL: u64 = 4 * 3600;

/// The break-glass settings.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    /// TTL of a grant whose request names none (seconds)
    pub default_ttl: u64,
    /// the longest TTL a request may ask for (at most [`HARD_MAX_TTL`])
    pub max_ttl: u64,
    /// how long a request waits for its approvals and fetch (seconds)
    pub approval_window: u64,
    /// distinct approvers a request needs
    pub required_approvals: u32,
    /// the policies a request may ask for
    pub grantable_policies: Vec<String>,
    /// where events are POSTed
    pub webhook_urls: Vec<String>,
    /// the HMAC-SHA256 key of the signature header (empty: unsigned)
    #[serde(serialize_with = "stored_secret")]
    pub webhook_secret: SecretString,
}

/// `scheme://host:port/…`: where a webhook goes, without the path or query
/// that may carry its credential.
fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = if u.path() == "/" && u.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!(
                "{}://{}{port}{hidden}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => "…".into(),
    }
}

/// The secret is written only into the (encrypted) stored record.
fn stored_secret<S: serde::Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.expose())
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("max_ttl", &self.max_ttl)
            .field("webhook_urls", &self.webhook_urls.len())
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_ttl: 30 * 60,
            max_ttl: HARD_MAX_TTL,
            approval_window: 3600,
            required_approvals: 1,
            grantable_policies: vec!["emergency-admin".into()],
            webhook_urls: Vec::new(),
            webhook_secret: SecretString::new(String::new()),
        }
    }
}

impl Config {
    /// The stored configuration, or the defaults.
    pub async fn load(barrier: &Barrier) -> Result<Config, LogicalError> {
        match barrier.get(CONFIG_KEY).await? {
            Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt),
            None => Ok(Config::default()),
        }
    }

    /// Stores it.
    pub async fn store(&self, barrier: &Barrier) -> Result<(), LogicalError> {
        let raw =
            zeroize::Zeroizing::new(serde_json::to_vec(self).map_err(|_| LogicalError::Corrupt)?);
        barrier.put(CONFIG_KEY, &raw).await?;
        Ok(())
    }

    /// This configuration with the fields of a write applied and checked.
    pub fn updated(&self, data: &Map<String, Value>) -> Result<Config, LogicalError> {
        let f = Fields(data);
        let mut c = self.clone();
        if let Some(v) = f.duration("default_ttl")? {
            c.default_ttl = v;
        }
        if let Some(v) = f.duration("max_ttl")? {
            c.max_ttl = v;
        }
        if let Some(v) = f.duration("approval_window")? {
            c.approval_window = v;
        }
        if let Some(v) = f.u64("required_approvals")? {
            c.required_approvals = u32::try_from(v)
                .map_err(|_| LogicalError::invalid("required_approvals is too large"))?;
        }
        if let Some(v) = f.string_list("grantable_policies")? {
            c.grantable_policies = v.into_iter().map(|p| p.trim().to_owned()).collect();
        }
        if let Some(v) = f.string_list("webhook_urls")? {
            c.webhook_urls = v.into_iter().map(|u| u.trim().to_owned()).collect();
        }
        if let Some(v) = f.secret("webhook_secret")? {
            c.webhook_secret = v;
        }
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), LogicalError> {
        if self.max_ttl == 0 || self.max_ttl > HARD_MAX_TTL {
            return Err(LogicalError::invalid(format!(
                "max_ttl must be between 1s and {}h",
                HARD_MAX_TTL / 3600
            )));
        }
        if self.default_ttl == 0 || self.default_ttl > self.max_ttl {
            return Err(LogicalError::invalid(
                "default_ttl must be at least 1s and at most max_ttl",
            ));
        }
        if !(60..=7 * 86400).contains(&self.approval_window) {
            return Err(LogicalError::invalid(
                "approval_window must be between 1m and 168h",
            ));
        }
        if !(1..=10).contains(&self.required_approvals) {
            return Err(LogicalError::invalid(
                "required_approvals must be between 1 and 10",
            ));
        }
        for p in &self.grantable_policies {
            let ok = !p.is_empty()
                && p.len() <= 128
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(LogicalError::invalid(format!(
                    "grantable policy {p:?} is not a policy name"
                )));
            }
            if p == "root" {
                return Err(LogicalError::invalid(
                    "the root policy can never be granted through break-glass",
                ));
            }
        }
        if self.webhook_urls.len() > 10 {
            return Err(LogicalError::invalid("at most 10 webhook_urls"));
        }
        for u in &self.webhook_urls {
            let parsed = reqwest::Url::parse(u)
                .map_err(|_| LogicalError::invalid(format!("webhook url {u:?} does not parse")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(LogicalError::invalid(format!(
                    "webhook url {u:?} must be http:// or https:// with a host"
                )));
            }
        }
        Ok(())
    }

    /// The answer to a read (the secret only as set or not).
    pub fn view(&self) -> Value {
        json!({
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "approval_window": self.approval_window,
            "required_approvals": self.required_approvals,
            "grantable_policies": self.grantable_policies,
            // A webhook URL often is a credential (Slack's are): only where it goes.
            "webhook_urls": self.webhook_urls.iter().map(|u| redacted_url(u)).collect::<Vec<_>>(),
            "webhook_secret_set": !self.webhook_secret.expose().is_empty(),
        })
    }
}
