//! Token endpoints under `auth/token/`: create, lookup (self/token/accessor), renew and
//! revoke. Tokens passed in are sent in request bodies, never in URLs.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ClientError;
use crate::types::{zeroize_value, Secret, Ttl};
use crate::{required_secret, Client};

/// Body of `POST auth/token/create`; unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TokenCreateRequest {
    /// Policies to attach.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Initial TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// Hard upper bound on the lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit_max_ttl: Option<Ttl>,
    /// Use limit (0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_uses: Option<u64>,
    /// Whether the token may be renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// Create an orphan token (no parent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_parent: Option<bool>,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Metadata key/value pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    /// Do not attach the `default` policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_default_policy: Option<bool>,
}

fn increment_body(token: Option<&str>, increment: Option<Ttl>) -> Value {
    let mut body = json!({});
    if let Some(obj) = body.as_object_mut() {
        if let Some(token) = token {
            obj.insert("token".into(), json!(token));
        }
        if let Some(inc) = increment {
            obj.insert("increment".into(), json!(inc));
        }
    }
    body
}

impl Client {
    async fn token_post(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<crate::Response, ClientError> {
        self.request(Method::POST, path, &[], body, &[]).await
    }

    /// `POST auth/token/create` (body: a [`TokenCreateRequest`] or any JSON object).
    /// The new token is in `auth.client_token`.
    pub async fn token_create<B: Serialize + ?Sized>(
        &self,
        body: &B,
    ) -> Result<Secret, ClientError> {
        let body = serde_json::to_value(body)
            .map_err(|e| ClientError::Decode(format!("cannot encode request body: {e}")))?;
        required_secret(self.token_post("auth/token/create", Some(&body)).await?)
    }

    /// `GET auth/token/lookup-self`: properties of the client's own token.
    pub async fn token_lookup_self(&self) -> Result<Secret, ClientError> {
        let resp = self
            .request(Method::GET, "auth/token/lookup-self", &[], None, &[])
            .await?;
        required_secret(resp)
    }

    /// `POST auth/token/lookup {"token"}`.
    pub async fn token_lookup(&self, token: &str) -> Result<Secret, ClientError> {
        let mut body = json!({ "token": token });
        let resp = self.token_post("auth/token/lookup", Some(&body)).await;
        zeroize_value(&mut body);
        required_secret(resp?)
    }

    /// `POST auth/token/lookup-accessor {"accessor"}`.
    pub async fn token_lookup_accessor(&self, accessor: &str) -> Result<Secret, ClientError> {
        let body = json!({ "accessor": accessor });
        required_secret(
            self.token_post("auth/token/lookup-accessor", Some(&body))
                .await?,
        )
    }

    /// `POST auth/token/renew-self {"increment"}`; the answer's `auth` has the new TTL.
    pub async fn token_renew_self(&self, increment: Option<Ttl>) -> Result<Secret, ClientError> {
        let body = increment_body(None, increment);
        required_secret(
            self.token_post("auth/token/renew-self", Some(&body))
                .await?,
        )
    }

    /// `POST auth/token/renew {"token","increment"}`.
    pub async fn token_renew(
        &self,
        token: &str,
        increment: Option<Ttl>,
    ) -> Result<Secret, ClientError> {
        let mut body = increment_body(Some(token), increment);
        let resp = self.token_post("auth/token/renew", Some(&body)).await;
        zeroize_value(&mut body);
        required_secret(resp?)
    }

    /// `POST auth/token/revoke {"token"}` (revokes its children too).
    pub async fn token_revoke(&self, token: &str) -> Result<(), ClientError> {
        let mut body = json!({ "token": token });
        let resp = self.token_post("auth/token/revoke", Some(&body)).await;
        zeroize_value(&mut body);
        resp?.error_for_status()?;
        Ok(())
    }

    /// `POST auth/token/revoke-self`: revoke the client's own token.
    pub async fn token_revoke_self(&self) -> Result<(), ClientError> {
        self.token_post("auth/token/revoke-self", Some(&json!({})))
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `POST auth/token/revoke-accessor {"accessor"}`.
    pub async fn token_revoke_accessor(&self, accessor: &str) -> Result<(), ClientError> {
        let body = json!({ "accessor": accessor });
        self.token_post("auth/token/revoke-accessor", Some(&body))
            .await?
            .error_for_status()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_sends_only_set_fields() {
        let req = TokenCreateRequest {
            policies: vec!["a".into()],
            ttl: Some(Ttl::parse("1h")),
            num_uses: Some(2),
            no_parent: Some(true),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"policies": ["a"], "ttl": "1h", "num_uses": 2, "no_parent": true})
        );
        assert_eq!(
            serde_json::to_value(TokenCreateRequest::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn increment_body_shapes() {
        assert_eq!(increment_body(None, None), json!({}));
        assert_eq!(
            increment_body(Some("t"), Some(Ttl::parse("90"))),
            json!({"token": "t", "increment": 90})
        );
    }
}
