//! `sys/` endpoints: seal status, init, unseal, seal and health. These answers are not
//! wrapped in the usual envelope, so each has its own type that also keeps the raw JSON.

use std::fmt;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroize;

use crate::error::ClientError;
use crate::types::{null_default, zeroize_value, Response};
use crate::Client;

/// `GET sys/seal-status` / `PUT sys/unseal` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SealStatus {
    /// Seal type, `shamir`.
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub seal_type: String,
    /// Whether `sys/init` has run.
    #[serde(default, deserialize_with = "null_default")]
    pub initialized: bool,
    /// Whether the barrier is sealed.
    #[serde(default, deserialize_with = "null_default")]
    pub sealed: bool,
    /// Threshold: key shares needed to unseal.
    #[serde(default, deserialize_with = "null_default")]
    pub t: u32,
    /// Total key shares.
    #[serde(default, deserialize_with = "null_default")]
    pub n: u32,
    /// Shares supplied so far in this unseal attempt.
    #[serde(default, deserialize_with = "null_default")]
    pub progress: u32,
    /// Nonce of the running unseal attempt.
    #[serde(default, deserialize_with = "null_default")]
    pub nonce: String,
    /// Server version.
    #[serde(default, deserialize_with = "null_default")]
    pub version: String,
    /// Storage backend (`sqlite`, `postgres`).
    #[serde(default, deserialize_with = "null_default")]
    pub storage_type: String,
    /// Cluster name (empty while sealed).
    #[serde(default, deserialize_with = "null_default")]
    pub cluster_name: String,
    /// Cluster id (empty while sealed).
    #[serde(default, deserialize_with = "null_default")]
    pub cluster_id: String,
    #[serde(skip)]
    raw: Value,
}

impl SealStatus {
    /// The JSON as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

/// `PUT sys/init` answer: the unseal key shares and the initial root token.
/// `Debug` shows none of them; everything is wiped on drop.
#[derive(Clone, Default, Deserialize)]
pub struct InitResponse {
    /// Key shares, hex encoded.
    #[serde(default, deserialize_with = "null_default")]
    pub keys: Vec<String>,
    /// Key shares, base64 encoded.
    #[serde(default, deserialize_with = "null_default")]
    pub keys_base64: Vec<String>,
    /// The initial root token.
    #[serde(default, deserialize_with = "null_default")]
    pub root_token: String,
    #[serde(skip)]
    raw: Value,
}

impl InitResponse {
    /// The JSON as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

impl fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitResponse")
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("root_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for InitResponse {
    fn drop(&mut self) {
        self.keys.zeroize();
        self.keys_base64.zeroize();
        self.root_token.zeroize();
        zeroize_value(&mut self.raw);
    }
}

/// `GET sys/health` answer plus the HTTP status (200 active, 429 standby,
/// 501 not initialised, 503 sealed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Health {
    /// HTTP status the server chose.
    #[serde(skip)]
    pub status: u16,
    /// Whether `sys/init` has run.
    #[serde(default, deserialize_with = "null_default")]
    pub initialized: bool,
    /// Whether the barrier is sealed.
    #[serde(default, deserialize_with = "null_default")]
    pub sealed: bool,
    /// Whether this node is a standby.
    #[serde(default, deserialize_with = "null_default")]
    pub standby: bool,
    /// Server clock, Unix seconds.
    #[serde(default, deserialize_with = "null_default")]
    pub server_time_utc: i64,
    /// Server version.
    #[serde(default, deserialize_with = "null_default")]
    pub version: String,
    /// Cluster name.
    #[serde(default, deserialize_with = "null_default")]
    pub cluster_name: String,
    /// Cluster id.
    #[serde(default, deserialize_with = "null_default")]
    pub cluster_id: String,
    #[serde(skip)]
    raw: Value,
}

impl Health {
    /// The JSON as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }
}

/// Statuses `sys/health` uses to report a state rather than a failure.
const HEALTH_STATES: [u16; 6] = [200, 429, 472, 473, 501, 503];

fn decode_unwrapped<T: for<'de> Deserialize<'de>>(
    resp: Response,
    what: &str,
) -> Result<(T, Value), ClientError> {
    let resp = resp.error_for_status()?;
    let body = resp
        .body
        .ok_or_else(|| ClientError::Decode(format!("empty {what} answer")))?;
    let value = serde_json::from_value(body.clone())
        .map_err(|e| ClientError::Decode(format!("bad {what} answer: {e}")))?;
    Ok((value, body))
}

impl Client {
    /// `GET sys/seal-status`.
    pub async fn seal_status(&self) -> Result<SealStatus, ClientError> {
        let resp = self
            .request(Method::GET, "sys/seal-status", &[], None, &[])
            .await?;
        let (mut status, raw): (SealStatus, Value) = decode_unwrapped(resp, "seal status")?;
        status.raw = raw;
        Ok(status)
    }

    /// `PUT sys/init` with `secret_shares`/`secret_threshold`.
    pub async fn init(&self, shares: u32, threshold: u32) -> Result<InitResponse, ClientError> {
        let body = json!({ "secret_shares": shares, "secret_threshold": threshold });
        let resp = self
            .request(Method::PUT, "sys/init", &[], Some(&body), &[])
            .await?;
        let (mut init, raw): (InitResponse, Value) = decode_unwrapped(resp, "init")?;
        init.raw = raw;
        Ok(init)
    }

    /// `PUT sys/unseal` with one key share (hex or base64).
    pub async fn unseal(&self, key: &str) -> Result<SealStatus, ClientError> {
        let mut body = json!({ "key": key });
        let result = self.unseal_call(&body).await;
        zeroize_value(&mut body);
        result
    }

    /// `PUT sys/unseal {"reset": true}`: discard the shares supplied so far.
    pub async fn unseal_reset(&self) -> Result<SealStatus, ClientError> {
        self.unseal_call(&json!({ "reset": true })).await
    }

    async fn unseal_call(&self, body: &Value) -> Result<SealStatus, ClientError> {
        let resp = self
            .request(Method::PUT, "sys/unseal", &[], Some(body), &[])
            .await?;
        let (mut status, raw): (SealStatus, Value) = decode_unwrapped(resp, "unseal")?;
        status.raw = raw;
        Ok(status)
    }

    /// `PUT sys/seal` (204).
    pub async fn seal(&self) -> Result<(), ClientError> {
        self.request(Method::PUT, "sys/seal", &[], Some(&json!({})), &[])
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `GET sys/health`. Sealed (503), uninitialised (501) and standby (429) are
    /// answers, not errors: look at [`Health::status`], `sealed`, `initialized`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let resp = self
            .request(Method::GET, "sys/health", &[], None, &[])
            .await?;
        let status = resp.status;
        let is_state = HEALTH_STATES.contains(&status)
            && resp
                .body
                .as_ref()
                .is_some_and(|b| b.get("initialized").is_some());
        if !is_state {
            return Err(resp.to_api_error());
        }
        let body = resp.body.unwrap_or_default();
        let mut health: Health = serde_json::from_value(body.clone())
            .map_err(|e| ClientError::Decode(format!("bad health answer: {e}")))?;
        health.status = status;
        health.raw = body;
        Ok(health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_response_debug_redacts() {
        let init: InitResponse = serde_json::from_value(json!({
            "keys": ["abcd"], "keys_base64": ["q80="], "root_token": "hvs.ROOT"
        }))
        .unwrap();
        let dbg = format!("{init:?}");
        assert!(!dbg.contains("hvs.ROOT") && !dbg.contains("abcd"), "{dbg}");
        assert!(dbg.contains("1 redacted"));
    }

    #[test]
    fn seal_status_parses_type_field() {
        let s: SealStatus = serde_json::from_value(json!({
            "type": "shamir", "initialized": true, "sealed": true, "t": 3, "n": 5,
            "progress": 1, "nonce": "x", "version": "0.1.0", "storage_type": "sqlite",
            "cluster_name": null
        }))
        .unwrap();
        assert_eq!(s.seal_type, "shamir");
        assert_eq!((s.t, s.n, s.progress), (3, 5, 1));
        assert!(s.cluster_name.is_empty());
    }
}
