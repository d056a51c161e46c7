//! The shapes of Vault's HTTP answers as serde types: the response [`Envelope`]
//! (`request_id`, `lease_id`, `renewable`, `lease_duration`, `data`, `wrap_info`,
//! `warnings`, `auth`, `mount_type`), its [`Auth`] and [`WrapInfo`] blocks, and the
//! error body [`ErrorBody`]. Deserialising is lenient as clients must be: absent
//! members and JSON `null` both give the default. Tokens are zeroized on drop and
//! never shown by `Debug`; neither are `data` values.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::SecretString;

/// The standard answer envelope.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct Envelope {
    /// Server-assigned request id.
    #[serde(default, deserialize_with = "null_default")]
    pub request_id: String,
    /// Lease id (empty for non-leased answers).
    #[serde(default, deserialize_with = "null_default")]
    pub lease_id: String,
    /// Whether the lease is renewable.
    #[serde(default, deserialize_with = "null_default")]
    pub renewable: bool,
    /// Lease duration in seconds.
    #[serde(default, deserialize_with = "null_default")]
    pub lease_duration: i64,
    /// The `data` object, if any.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// Response wrapping, if the answer was wrapped.
    #[serde(default)]
    pub wrap_info: Option<WrapInfo>,
    /// Warnings the server attached.
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    /// The `auth` block of token-issuing answers.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Type of the mount that answered (e.g. `kv`).
    #[serde(default)]
    pub mount_type: Option<String>,
}

impl fmt::Debug for Envelope {
    /// Shows data keys only: data values may be secrets (KV values, token ids).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("request_id", &self.request_id)
            .field("lease_id", &self.lease_id)
            .field("renewable", &self.renewable)
            .field("lease_duration", &self.lease_duration)
            .field(
                "data_keys",
                &self.data.as_ref().map(|d| d.keys().collect::<Vec<_>>()),
            )
            .field("wrap_info", &self.wrap_info)
            .field("warnings", &self.warnings)
            .field("auth", &self.auth)
            .field("mount_type", &self.mount_type)
            .finish()
    }
}

impl Drop for Envelope {
    fn drop(&mut self) {
        if let Some(data) = self.data.as_mut() {
            data.values_mut().for_each(zeroize_value);
        }
    }
}

/// The `auth` block: a newly issued or renewed token and its properties, with
/// Vault's member names (serialising gives them back, token included).
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct Auth {
    /// The token itself. Never printed by `Debug`.
    #[serde(
        default,
        deserialize_with = "secret_string",
        serialize_with = "expose_secret"
    )]
    pub client_token: SecretString,
    /// The token's accessor.
    #[serde(default, deserialize_with = "null_default")]
    pub accessor: String,
    /// All policies attached to the token.
    #[serde(default, deserialize_with = "null_default")]
    pub policies: Vec<String>,
    /// Policies attached directly to the token.
    #[serde(default, deserialize_with = "null_default")]
    pub token_policies: Vec<String>,
    /// Policies coming from an identity entity.
    #[serde(default, deserialize_with = "null_default")]
    pub identity_policies: Vec<String>,
    /// Token metadata (`meta`).
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Map<String, Value>,
    /// TTL in seconds (0 = never expires).
    #[serde(default, deserialize_with = "null_default")]
    pub lease_duration: i64,
    /// Whether the token can be renewed.
    #[serde(default, deserialize_with = "null_default")]
    pub renewable: bool,
    /// Whether the token has no parent.
    #[serde(default, deserialize_with = "null_default")]
    pub orphan: bool,
    /// Use limit (0 = unlimited).
    #[serde(default, deserialize_with = "null_default")]
    pub num_uses: i64,
    /// Identity entity id, if any.
    #[serde(default, deserialize_with = "null_default")]
    pub entity_id: String,
    /// `service` or `batch`.
    #[serde(default, deserialize_with = "null_default")]
    pub token_type: String,
    /// A login that needs a second factor: `mfa_request_id` and `mfa_constraints`
    /// (the token is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_requirement: Option<Value>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("client_token", &"[redacted]")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("token_policies", &self.token_policies)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .field("orphan", &self.orphan)
            .field("num_uses", &self.num_uses)
            .field("token_type", &self.token_type)
            .field("mfa_required", &self.mfa_requirement.is_some())
            .finish_non_exhaustive()
    }
}

/// `wrap_info` of a wrapped answer.
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct WrapInfo {
    /// The wrapping token. Never printed by `Debug`.
    #[serde(
        default,
        deserialize_with = "secret_string",
        serialize_with = "expose_secret"
    )]
    pub token: SecretString,
    /// Its accessor.
    #[serde(default, deserialize_with = "null_default")]
    pub accessor: String,
    /// Seconds the wrapping token lives.
    #[serde(default, deserialize_with = "null_default")]
    pub ttl: i64,
    /// RFC 3339 creation time.
    #[serde(default, deserialize_with = "null_default")]
    pub creation_time: String,
    /// The path whose answer was wrapped.
    #[serde(default, deserialize_with = "null_default")]
    pub creation_path: String,
    /// Accessor of a wrapped token, if one was wrapped.
    #[serde(default, deserialize_with = "null_default")]
    pub wrapped_accessor: String,
}

impl fmt::Debug for WrapInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapInfo")
            .field("token", &"[redacted]")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .field("creation_time", &self.creation_time)
            .field("creation_path", &self.creation_path)
            .finish_non_exhaustive()
    }
}

/// An error answer: `{"errors": ["..."]}` (empty for a plain 404).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ErrorBody {
    /// The messages, in order.
    #[serde(default, deserialize_with = "null_default")]
    pub errors: Vec<String>,
}

/// Overwrites every string inside a JSON value (best effort: map keys stay).
pub fn zeroize_value(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        _ => {}
    }
}

/// Treats an explicit JSON `null` like an absent member.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn secret_string<'de, D>(d: D) -> Result<SecretString, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(SecretString::new(
        Option::<String>::deserialize(d)?.unwrap_or_default(),
    ))
}

/// Serialising an [`Auth`] or [`WrapInfo`] gives the token back (the CLI's
/// `-format=json` output); `SecretString` itself is not `Serialize`, so nothing else
/// writes one out by accident.
fn expose_secret<S>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
{
    s.serialize_str(secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_and_absent_members_are_defaults_and_tokens_hidden() {
        let e: Envelope = serde_json::from_value(json!({
            "request_id": "r1", "lease_id": null, "renewable": false, "lease_duration": 0,
            "data": null, "wrap_info": null, "warnings": null,
            "auth": {"client_token": "hvs.SECRET", "accessor": "acc", "policies": null,
                     "metadata": null, "lease_duration": 3600, "renewable": true},
            "mount_type": "token"
        }))
        .unwrap();
        assert_eq!(e.request_id, "r1");
        assert_eq!(e.lease_id, "");
        let auth = e.auth.as_ref().unwrap();
        assert_eq!(auth.client_token.expose(), "hvs.SECRET");
        assert!(auth.policies.is_empty() && auth.mfa_requirement.is_none());
        assert_eq!(auth.lease_duration, 3600);
        let dbg = format!("{e:?}");
        assert!(
            !dbg.contains("hvs.SECRET") && dbg.contains("[redacted]"),
            "{dbg}"
        );
        // Serialising gives Vault's member names back, without an absent MFA block.
        let back = serde_json::to_value(auth).unwrap();
        assert_eq!(back["client_token"], json!("hvs.SECRET"));
        assert!(back.get("mfa_requirement").is_none());
    }

    #[test]
    fn data_values_and_wrapping_tokens_stay_out_of_debug() {
        let e: Envelope = serde_json::from_value(json!({
            "data": {"password": "hunter2"},
            "wrap_info": {"token": "hvs.WRAP", "ttl": 60, "creation_path": "secret/data/x"}
        }))
        .unwrap();
        let dbg = format!("{e:?}");
        assert!(
            dbg.contains("password") && dbg.contains("secret/data/x"),
            "{dbg}"
        );
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("hvs.WRAP"),
            "{dbg}"
        );
        assert_eq!(e.wrap_info.as_ref().unwrap().ttl, 60);
    }

    #[test]
    fn error_bodies() {
        let e: ErrorBody =
            serde_json::from_value(json!({"errors": ["permission denied"]})).unwrap();
        assert_eq!(e.errors, vec!["permission denied".to_string()]);
        let empty: ErrorBody = serde_json::from_value(json!({"errors": null})).unwrap();
        assert!(empty.errors.is_empty());
        assert_eq!(
            serde_json::to_value(ErrorBody {
                errors: vec!["x".into()]
            })
            .unwrap(),
            json!({"errors": ["x"]})
        );
    }
}
