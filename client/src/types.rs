//! Answer types shared by every API area: the raw [`Response`], the standard Vault
//! envelope [`Secret`] with its [`Auth`] block, and [`Ttl`] for durations sent to the
//! server. Secret material is redacted from `Debug` and wiped from memory on drop.

use std::fmt;

pub(crate) use coffer_proto::envelope::zeroize_value;
pub use coffer_proto::envelope::Auth;
use coffer_proto::envelope::Envelope;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::ClientError;

/// A raw HTTP answer: status code and the JSON body (`None` for an empty body / 204).
///
/// A non-JSON error body (e.g. from a proxy) is turned into `{"errors": ["<text>"]}`
/// so callers only ever deal with the Vault error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Parsed JSON body, if any.
    pub body: Option<Value>,
    /// Seconds from a `Retry-After` header (sent with 429 answers), if any.
    pub retry_after: Option<u64>,
}

impl Response {
    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's `errors` list (empty when absent).
    pub fn errors(&self) -> Vec<String> {
        match self.body.as_ref().and_then(|b| b.get("errors")) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `Ok(self)` for 2xx answers, [`ClientError::Api`] otherwise.
    pub fn error_for_status(self) -> Result<Self, ClientError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.to_api_error())
        }
    }

    /// The error describing this answer: [`ClientError::RateLimited`] for 429,
    /// [`ClientError::Api`] otherwise.
    pub fn to_api_error(&self) -> ClientError {
        if self.status == 429 {
            return ClientError::RateLimited {
                errors: self.errors(),
                retry_after: self.retry_after,
            };
        }
        ClientError::Api {
            status: self.status,
            errors: self.errors(),
        }
    }
}

/// The standard Vault answer envelope (`request_id`, `data`, `auth`, ...), parsed as
/// the shared [`Envelope`].
///
/// [`Secret::raw`] keeps the full JSON as the server sent it, for `-format=json` output.
#[derive(Clone, Default)]
pub struct Secret {
    /// Server-assigned request id.
    pub request_id: String,
    /// Lease id (empty for non-leased answers).
    pub lease_id: String,
    /// Whether the lease is renewable.
    pub renewable: bool,
    /// Lease duration in seconds.
    pub lease_duration: i64,
    /// The `data` object, if any.
    pub data: Option<Map<String, Value>>,
    /// Warnings the server attached.
    pub warnings: Option<Vec<String>>,
    /// The `auth` block of token-issuing answers.
    pub auth: Option<Auth>,
    /// Type of the mount that answered (e.g. `kv`).
    pub mount_type: Option<String>,
    raw: Value,
}

impl Secret {
    /// Parse an envelope, keeping the original JSON.
    pub fn from_value(value: Value) -> Result<Secret, ClientError> {
        let mut env: Envelope = serde_json::from_value(value.clone())
            .map_err(|e| ClientError::Decode(format!("not a response envelope: {e}")))?;
        Ok(Secret {
            request_id: std::mem::take(&mut env.request_id),
            lease_id: std::mem::take(&mut env.lease_id),
            renewable: env.renewable,
            lease_duration: env.lease_duration,
            data: env.data.take(),
            warnings: env.warnings.take(),
            auth: env.auth.take(),
            mount_type: env.mount_type.take(),
            raw: value,
        })
    }

    /// The full JSON answer as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// One field of `data`.
    pub fn data_field(&self, key: &str) -> Option<&Value> {
        self.data.as_ref().and_then(|d| d.get(key))
    }

    /// `data` decoded into a typed struct.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let data = Value::Object(self.data.clone().unwrap_or_default());
        serde_json::from_value(data).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

impl fmt::Debug for Secret {
    /// Shows data keys only: data values may be secrets (KV values, token ids).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("request_id", &self.request_id)
            .field("lease_id", &self.lease_id)
            .field("renewable", &self.renewable)
            .field("lease_duration", &self.lease_duration)
            .field(
                "data_keys",
                &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
            )
            .field("warnings", &self.warnings)
            .field("auth", &self.auth)
            .field("mount_type", &self.mount_type)
            .finish_non_exhaustive()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize_value(&mut self.raw);
        if let Some(data) = self.data.as_mut() {
            data.values_mut().for_each(zeroize_value);
        }
    }
}

/// A duration sent to the server: whole seconds or a Go-style string (`"1h"`, `"30m"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Ttl {
    /// Whole seconds.
    Seconds(u64),
    /// A duration string such as `"1h30m"`, interpreted by the server.
    Text(String),
}

impl Ttl {
    /// `"3600"` becomes `Seconds(3600)`; anything else is sent as text for the server to parse.
    pub fn parse(s: &str) -> Ttl {
        let s = s.trim();
        match s.parse::<u64>() {
            Ok(n) => Ttl::Seconds(n),
            Err(_) => Ttl::Text(s.to_string()),
        }
    }
}

impl From<u64> for Ttl {
    fn from(secs: u64) -> Ttl {
        Ttl::Seconds(secs)
    }
}

impl From<&str> for Ttl {
    fn from(s: &str) -> Ttl {
        Ttl::parse(s)
    }
}

/// Treat an explicit JSON `null` like an absent field.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keeps_raw_and_tolerates_nulls() {
        let v = json!({
            "request_id": "r1", "lease_id": "", "renewable": false, "lease_duration": 0,
            "data": null, "wrap_info": null, "warnings": null,
            "auth": {"client_token": "hvs.SECRET", "accessor": "acc", "policies": null,
                     "metadata": null, "lease_duration": 3600, "renewable": true},
            "mount_type": "token"
        });
        let s = Secret::from_value(v.clone()).unwrap();
        assert_eq!(s.raw(), &v);
        let auth = s.auth.as_ref().unwrap();
        assert_eq!(auth.client_token.expose(), "hvs.SECRET");
        assert!(auth.policies.is_empty());
        assert_eq!(auth.lease_duration, 3600);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hvs.SECRET"), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn secret_debug_hides_data_values() {
        let s = Secret::from_value(json!({"data": {"password": "hunter2"}})).unwrap();
        let dbg = format!("{s:?}");
        assert!(dbg.contains("password"));
        assert!(!dbg.contains("hunter2"));
    }

    #[test]
    fn ttl_numbers_become_integers() {
        assert_eq!(
            serde_json::to_value(Ttl::parse("3600")).unwrap(),
            json!(3600)
        );
        assert_eq!(serde_json::to_value(Ttl::parse("1h")).unwrap(), json!("1h"));
        assert_eq!(Ttl::from(5u64), Ttl::Seconds(5));
    }

    #[test]
    fn response_errors_and_status() {
        let r = Response {
            status: 403,
            body: Some(json!({"errors": ["permission denied", 7]})),
            retry_after: None,
        };
        assert_eq!(
            r.errors(),
            vec!["permission denied".to_string(), "7".into()]
        );
        let err = r.error_for_status().unwrap_err();
        assert_eq!(err.to_string(), "permission denied; 7 (403)");
        let ok = Response {
            status: 204,
            body: None,
            retry_after: None,
        };
        assert!(ok.error_for_status().is_ok());
        let limited = Response {
            status: 429,
            body: Some(json!({"errors": ["too many login attempts"]})),
            retry_after: Some(30),
        };
        let err = limited.error_for_status().unwrap_err();
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.retry_after(), Some(30));
        assert_eq!(
            err.to_string(),
            "too many login attempts (429); try again in 30s"
        );
    }

    #[test]
    fn zeroize_value_wipes_nested_strings() {
        let mut v = json!({"a": ["x", {"b": "yy"}], "n": 1});
        zeroize_value(&mut v);
        assert_eq!(v, json!({"a": ["", {"b": ""}], "n": 1}));
    }
}
