//! Audit entries in Vault's shape, built per device: every token, accessor and
//! string value in request and response data becomes
//! `hmac-sha256:<hex>` under the device's salt unless the device logs raw.
//! So do the free-form parts of a token (display name and metadata, which a
//! token's creator writes) and a pending login's `mfa_request_id`, which is a
//! bearer secret until the login completes.

use serde_json::{json, Map, Value};

use crate::crypto::{HmacKey, SecretString};

/// Who made the request, as far as the token tells.
#[derive(Debug, Clone)]
pub struct AuthInfo {
    /// the token id presented (hashed in the entry)
    pub client_token: SecretString,
    /// its accessor
    pub accessor: SecretString,
    /// chosen by the token's creator, so hashed like any free-form value
    pub display_name: String,
    /// the token's policies
    pub policies: Vec<String>,
    /// token metadata (free-form; its strings are hashed)
    pub metadata: Value,
    /// entity of the login
    pub entity_id: String,
    /// seconds the token was created for
    pub token_ttl: u64,
    /// RFC 3339 creation time
    pub token_issue_time: String,
}

/// The request side of an entry.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// request id (echoed to the client as `request_id`)
    pub id: String,
    /// Vault's operation name
    pub operation: &'static str,
    /// path below `/v1/`
    pub path: String,
    /// the mount that serves it, when known
    pub mount_point: String,
    /// the mount's type, when known
    pub mount_type: String,
    /// body or query fields
    pub data: Map<String, Value>,
    /// client address
    pub remote_address: String,
    /// the token presented, if any (even one that turned out invalid)
    pub client_token: Option<SecretString>,
}

/// The response side of an entry.
#[derive(Debug, Clone, Default)]
pub struct ResponseInfo {
    /// `data` (or a bare JSON answer)
    pub data: Option<Value>,
    /// `auth` of a login or token creation
    pub auth: Option<Value>,
    /// warnings
    pub warnings: Vec<String>,
}

/// Both halves of a request's audit trail share this.
#[derive(Debug, Clone)]
pub struct Record {
    /// the caller, when a valid token was presented
    pub auth: Option<AuthInfo>,
    /// the request
    pub request: RequestInfo,
    /// (Coffer) the break-glass grant the request belongs to: made with its
    /// token, or about it. Written plain, as a top-level field, so the
    /// grant's report and an auditor find every entry of an episode.
    pub breakglass_id: Option<String>,
}

/// How one device renders values.
pub struct Hasher<'a> {
    /// the device's salt, prepared as an HMAC key
    pub key: &'a HmacKey,
    /// write values in clear (`log_raw`)
    pub raw: bool,
    /// hash accessors too (`hmac_accessor`, default true)
    pub hash_accessor: bool,
}

impl<'a> Hasher<'a> {
    /// A hasher HMAC-ing under `key`.
    pub fn new(key: &'a HmacKey, raw: bool, hash_accessor: bool) -> Self {
        Hasher {
            key,
            raw,
            hash_accessor,
        }
    }

    /// `hmac-sha256:<hex>` of `value`, or the value itself when logging raw.
    pub fn hash(&self, value: &str) -> String {
        if self.raw {
            value.to_owned()
        } else {
            format!("hmac-sha256:{}", self.key.hex(value.as_bytes()))
        }
    }

    fn accessor(&self, value: &str) -> String {
        if self.hash_accessor {
            self.hash(value)
        } else {
            value.to_owned()
        }
    }

    /// Every string inside `value`, recursively (keys stay readable).
    fn hash_strings(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.hash(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.hash_strings(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.hash_strings(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn auth(&self, auth: Option<&AuthInfo>) -> Value {
        match auth {
            None => json!({}),
            Some(a) => json!({
                "client_token": self.hash(a.client_token.expose()),
                "accessor": self.accessor(a.accessor.expose()),
                "display_name": self.hash(&a.display_name),
                "policies": a.policies,
                "token_policies": a.policies,
                "metadata": self.hash_strings(&a.metadata),
                "entity_id": a.entity_id,
                "token_type": "service",
                "token_ttl": a.token_ttl,
                "token_issue_time": a.token_issue_time,
            }),
        }
    }

    fn request(&self, r: &RequestInfo, auth: Option<&AuthInfo>) -> Value {
        let token = r.client_token.as_ref().map(|t| self.hash(t.expose()));
        let accessor = auth.map(|a| self.accessor(a.accessor.expose()));
        json!({
            "id": r.id,
            "operation": r.operation,
            "mount_point": r.mount_point,
            "mount_type": r.mount_type,
            "client_token": token.unwrap_or_default(),
            "client_token_accessor": accessor.unwrap_or_default(),
            "namespace": {"id": "root"},
            "path": r.path,
            "data": if r.data.is_empty() { Value::Null } else { self.hash_strings(&Value::Object(r.data.clone())) },
            "remote_address": r.remote_address,
        })
    }

    /// A login's or token creation's `auth`: tokens, accessors, metadata and a
    /// pending MFA request id hashed; policies, TTLs and what the MFA step asks
    /// for stay readable.
    fn response_auth(&self, auth: &Value) -> Value {
        let Value::Object(map) = auth else {
            return self.hash_strings(auth);
        };
        let out = map
            .iter()
            .map(|(k, v)| {
                let v = match (k.as_str(), v) {
                    ("client_token", Value::String(s)) => Value::String(self.hash(s)),
                    ("accessor", Value::String(s)) => Value::String(self.accessor(s)),
                    ("metadata", m) => self.hash_strings(m),
                    ("mfa_requirement", Value::Object(req)) => Value::Object(
                        req.iter()
                            .map(|(rk, rv)| {
                                let rv = match (rk.as_str(), rv) {
                                    ("mfa_request_id", Value::String(id)) => {
                                        Value::String(self.hash(id))
                                    }
                                    _ => rv.clone(),
                                };
                                (rk.clone(), rv)
                            })
                            .collect(),
                    ),
                    // Anything else that is a string could be a secret some day.
                    (_, Value::String(s)) if k != "token_type" && k != "entity_id" => {
                        Value::String(self.hash(s))
                    }
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        Value::Object(out)
    }

    /// The request entry.
    pub fn request_entry(
        &self,
        rec: &Record,
        time: &str,
        error: Option<&str>,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), json!("request"));
        m.insert("time".into(), json!(time));
        m.insert("auth".into(), self.auth(rec.auth.as_ref()));
        m.insert(
            "request".into(),
            self.request(&rec.request, rec.auth.as_ref()),
        );
        m.insert("error".into(), json!(error.unwrap_or("")));
        if let Some(id) = &rec.breakglass_id {
            m.insert("breakglass_id".into(), json!(id));
        }
        m
    }

    /// The response entry.
    pub fn response_entry(
        &self,
        rec: &Record,
        time: &str,
        response: Option<&ResponseInfo>,
        error: Option<&str>,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), json!("response"));
        m.insert("time".into(), json!(time));
        m.insert("auth".into(), self.auth(rec.auth.as_ref()));
        m.insert(
            "request".into(),
            self.request(&rec.request, rec.auth.as_ref()),
        );
        if let Some(resp) = response {
            m.insert(
                "response".into(),
                json!({
                    "mount_point": rec.request.mount_point,
                    "mount_type": rec.request.mount_type,
                    "data": resp.data.as_ref().map(|d| self.hash_strings(d)),
                    "auth": resp.auth.as_ref().map(|a| self.response_auth(a)),
                    "warnings": resp.warnings,
                }),
            );
        }
        m.insert("error".into(), json!(error.unwrap_or("")));
        if let Some(id) = &rec.breakglass_id {
            m.insert("breakglass_id".into(), json!(id));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hmac_hex;

    fn record() -> Record {
        let mut data = Map::new();
        data.insert(
            "data".into(),
            json!({"password": "hunter2", "n": 3, "list": ["x"]}),
        );
        Record {
            auth: Some(AuthInfo {
                client_token: SecretString::new("s.root-token".into()),
                accessor: SecretString::new("acc-1".into()),
                display_name: "root".into(),
                policies: vec!["root".into()],
                metadata: Value::Null,
                entity_id: String::new(),
                token_ttl: 0,
                token_issue_time: "2026-01-01T00:00:00Z".into(),
            }),
            request: RequestInfo {
                id: "req-1".into(),
                operation: "update",
                path: "secret/data/app".into(),
                mount_point: "secret/".into(),
                mount_type: "kv".into(),
                data,
                remote_address: "127.0.0.1".into(),
                client_token: Some(SecretString::new("s.root-token".into())),
            },
            breakglass_id: None,
        }
    }

    #[test]
    fn secrets_are_hashed_and_reproducible() {
        let h = Hasher {
            key: &HmacKey::new(b"salt"),
            raw: false,
            hash_accessor: true,
        };
        let resp = ResponseInfo {
            data: Some(json!({"data": {"password": "hunter2"}, "version": 1})),
            auth: Some(
                json!({"client_token": "s.child", "accessor": "acc-2", "policies": ["default"]}),
            ),
            warnings: vec![],
        };
        let e = h.response_entry(&record(), "t", Some(&resp), None);
        let text = serde_json::to_string(&e).unwrap();
        for secret in ["hunter2", "s.root-token", "acc-1", "s.child", "acc-2"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let expected = format!("hmac-sha256:{}", hmac_hex(b"salt", b"hunter2"));
        assert_eq!(e["request"]["data"]["data"]["password"], json!(expected));
        assert_eq!(e["response"]["data"]["data"]["password"], json!(expected));
        assert_eq!(e["request"]["data"]["data"]["n"], json!(3));
        assert_eq!(e["response"]["data"]["version"], json!(1));
        assert_eq!(e["response"]["auth"]["policies"], json!(["default"]));
        assert_eq!(e["auth"]["policies"], json!(["root"]));
        assert_eq!(e["request"]["path"], json!("secret/data/app"));
        assert_eq!(e["type"], json!("response"));
    }

    #[test]
    fn raw_and_clear_accessor_options() {
        let h = Hasher {
            key: &HmacKey::new(b"salt"),
            raw: false,
            hash_accessor: false,
        };
        let e = h.request_entry(&record(), "t", Some("permission denied"));
        assert_eq!(e["auth"]["accessor"], json!("acc-1"));
        assert_eq!(e["error"], json!("permission denied"));
        assert!(e["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"));
        let raw = Hasher {
            key: &HmacKey::new(b"salt"),
            raw: true,
            hash_accessor: true,
        };
        let e = raw.request_entry(&record(), "t", None);
        assert_eq!(e["request"]["data"]["data"]["password"], json!("hunter2"));
        assert_eq!(e["error"], json!(""));
    }

    #[test]
    fn mfa_request_ids_and_free_form_token_fields_are_hashed() {
        let h = Hasher {
            key: &HmacKey::new(b"salt"),
            raw: false,
            hash_accessor: true,
        };
        let mut rec = record();
        if let Some(a) = rec.auth.as_mut() {
            a.display_name = "userpass-alice-secret-name".into();
            a.metadata = json!({"note": "free-form-secret"});
        }
        let resp = ResponseInfo {
            data: None,
            auth: Some(json!({
                "client_token": null,
                "metadata": {"username": "alice-meta"},
                "mfa_requirement": {
                    "mfa_request_id": "pending-request-id",
                    "mfa_constraints": {"totp": {"any": [{"type": "totp", "id": "m1"}]}}
                },
                "policies": ["default"]
            })),
            warnings: vec![],
        };
        let e = h.response_entry(&rec, "t", Some(&resp), None);
        let text = serde_json::to_string(&e).unwrap();
        for secret in [
            "pending-request-id",
            "userpass-alice-secret-name",
            "free-form-secret",
            "alice-meta",
        ] {
            assert!(!text.contains(secret), "{secret} in clear: {text}");
        }
        let expected = format!("hmac-sha256:{}", hmac_hex(b"salt", b"pending-request-id"));
        assert_eq!(
            e["response"]["auth"]["mfa_requirement"]["mfa_request_id"],
            json!(expected)
        );
        assert_eq!(
            e["response"]["auth"]["mfa_requirement"]["mfa_constraints"]["totp"]["any"][0]["type"],
            json!("totp"),
            "what the client must do stays readable"
        );
        assert_eq!(e["response"]["auth"]["policies"], json!(["default"]));
        let req = h.request_entry(&rec, "t", None);
        assert!(req["auth"]["display_name"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"));
        assert!(req["auth"]["metadata"]["note"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:"));
    }
}
