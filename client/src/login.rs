//! Logging in the way services do, and remembering how: certificate login
//! (`auth/<mount>/login`, the TLS client certificate is the credential), token login
//! (a given token, verified with `lookup-self`), or a login of the caller's own
//! ([`LoginFn`], e.g. AppRole). A successful login sets the client's token (shared by
//! its clones) and keeps the [`Login`], so that [`Client::relogin`] and the
//! [`crate::Renewer`] can authenticate again when the token cannot be renewed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use coffer_proto::SecretString;
use reqwest::Method;
use serde_json::{json, Value};

use crate::error::ClientError;
use crate::types::Auth;
use crate::{required_secret, Client};

/// Mount path of the cert auth method when none is given.
pub const DEFAULT_CERT_MOUNT: &str = "cert";

/// What a [`LoginFn`] returns.
pub type LoginFuture<'a> = Pin<Box<dyn Future<Output = Result<Auth, ClientError>> + Send + 'a>>;

/// A login of the caller's own: gets the client (to send requests with) and answers the
/// `auth` block with the new token. It is called again whenever re-authentication is
/// needed, so it must fetch fresh credentials itself.
pub trait LoginFn: Send + Sync {
    /// Log in once.
    fn login<'a>(&'a self, client: &'a Client) -> LoginFuture<'a>;
}

impl<F> LoginFn for F
where
    F: for<'a> Fn(&'a Client) -> LoginFuture<'a> + Send + Sync,
{
    fn login<'a>(&'a self, client: &'a Client) -> LoginFuture<'a> {
        self(client)
    }
}

/// How a client authenticates.
#[derive(Clone)]
pub enum Login {
    /// A token given from outside; cannot be repeated (a new token needs a new login).
    Token(SecretString),
    /// `auth/<mount>/login` with the TLS client certificate, optionally naming the
    /// `certs/<name>` role to check against.
    Cert {
        /// Mount path of the cert method (`cert`).
        mount: String,
        /// Role name, when the certificate should be checked against one role only.
        name: Option<String>,
    },
    /// The caller's own login.
    Custom(Arc<dyn LoginFn>),
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Login::Token(_) => f.write_str("Login::Token([redacted])"),
            Login::Cert { mount, name } => f
                .debug_struct("Login::Cert")
                .field("mount", mount)
                .field("name", name)
                .finish(),
            Login::Custom(_) => f.write_str("Login::Custom"),
        }
    }
}

impl Login {
    /// Whether logging in again can give a new token (not so for a given token).
    pub fn can_repeat(&self) -> bool {
        !matches!(self, Login::Token(_))
    }
}

/// `cert`, `/cert/` and `auth/cert` all name the mount `cert`.
fn auth_mount(mount: &str, default: &str) -> String {
    let mount = mount.trim().trim_matches('/');
    let mount = mount.strip_prefix("auth/").unwrap_or(mount);
    if mount.is_empty() {
        default.to_string()
    } else {
        mount.to_string()
    }
}

/// The `auth` block of a login answer; an answer without a token is an error.
fn auth_of(resp: crate::Response) -> Result<Auth, ClientError> {
    let mut secret = required_secret(resp)?;
    let auth = secret
        .auth
        .take()
        .ok_or_else(|| ClientError::Decode("the login answer has no auth block".into()))?;
    if auth.client_token.expose().is_empty() {
        return Err(ClientError::Decode(
            "the login answer has no token (a second factor may be required)".into(),
        ));
    }
    Ok(auth)
}

/// An [`Auth`] block made from a `lookup-self` answer for `token`.
fn auth_from_lookup(token: SecretString, data: &serde_json::Map<String, Value>) -> Auth {
    let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    let list = |k: &str| {
        data.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Auth {
        client_token: token,
        accessor: text("accessor").to_string(),
        policies: list("policies"),
        token_policies: list("policies"),
        metadata: data
            .get("meta")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        lease_duration: data.get("ttl").and_then(Value::as_i64).unwrap_or_default(),
        renewable: data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or_default(),
        orphan: data
            .get("orphan")
            .and_then(Value::as_bool)
            .unwrap_or_default(),
        num_uses: data
            .get("num_uses")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        entity_id: text("entity_id").to_string(),
        token_type: text("type").to_string(),
        ..Auth::default()
    }
}

impl Client {
    /// Log in as `login` says; on success the client (and its clones) use the new token
    /// and remember the login for [`Client::relogin`].
    pub async fn login(&self, login: Login) -> Result<Auth, ClientError> {
        let auth = match &login {
            Login::Token(token) => self.verify_token(token.clone()).await?,
            Login::Cert { mount, name } => self.cert_login_request(mount, name.as_deref()).await?,
            Login::Custom(f) => f.login(self).await?,
        };
        let login = match login {
            // Remember the token the server confirmed, not a padded spelling of it.
            Login::Token(_) => Login::Token(auth.client_token.clone()),
            other => other,
        };
        self.session.logged_in(auth.client_token.clone(), login);
        Ok(auth)
    }

    /// `POST auth/<mount>/login {"name"?}`: log in with the TLS client certificate (see
    /// [`crate::ClientBuilder::client_identity_pem`], `COFFER_CLIENT_CERT`). `name`
    /// checks the certificate against that `certs/<name>` role only.
    pub async fn login_cert(&self, mount: &str, name: Option<&str>) -> Result<Auth, ClientError> {
        self.login(Login::Cert {
            mount: auth_mount(mount, DEFAULT_CERT_MOUNT),
            name: name.map(str::to_string),
        })
        .await
    }

    /// Use `token`, after checking with `lookup-self` that the server accepts it. The
    /// answer's `lease_duration` is the token's remaining TTL.
    pub async fn login_token(&self, token: impl Into<SecretString>) -> Result<Auth, ClientError> {
        self.login(Login::Token(token.into())).await
    }

    /// Log in again with the remembered login ([`ClientError::NoLogin`] when there is
    /// none that can be repeated).
    pub async fn relogin(&self) -> Result<Auth, ClientError> {
        match self.session.login() {
            Some(login) if login.can_repeat() => self.login(login).await,
            Some(_) => Err(ClientError::NoLogin(
                "the client was given a token, and a new one needs a login".into(),
            )),
            None => Err(ClientError::NoLogin("the client never logged in".into())),
        }
    }

    /// The remembered login, if any.
    pub fn current_login(&self) -> Option<Login> {
        self.session.login()
    }

    async fn cert_login_request(
        &self,
        mount: &str,
        name: Option<&str>,
    ) -> Result<Auth, ClientError> {
        let mount = auth_mount(mount, DEFAULT_CERT_MOUNT);
        let body = match name {
            Some(n) => json!({ "name": n }),
            None => json!({}),
        };
        // No token: a login starts from nothing.
        let anonymous = self.clone().without_token();
        let resp = anonymous
            .request(
                Method::POST,
                &format!("auth/{mount}/login"),
                &[],
                Some(&body),
                &[],
            )
            .await?;
        auth_of(resp)
    }

    async fn verify_token(&self, token: SecretString) -> Result<Auth, ClientError> {
        let token = SecretString::new(token.expose().trim().to_string());
        if token.expose().is_empty() {
            return Err(ClientError::InvalidToken);
        }
        let probe = self.clone().with_token(token.clone());
        let secret = probe.token_lookup_self().await?;
        let data = secret.data.clone().unwrap_or_default();
        Ok(auth_from_lookup(token, &data))
    }

    /// A copy with a session of its own and no token.
    fn without_token(mut self) -> Client {
        self.clear_token();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_normalised() {
        assert_eq!(auth_mount("auth/cert/", DEFAULT_CERT_MOUNT), "cert");
        assert_eq!(auth_mount("/svc-cert", DEFAULT_CERT_MOUNT), "svc-cert");
        assert_eq!(auth_mount("", DEFAULT_CERT_MOUNT), "cert");
    }

    #[test]
    fn lookup_answers_become_auth_blocks() {
        let data = json!({"accessor": "acc", "policies": ["default", "svc"], "ttl": 42,
                          "renewable": true, "type": "service", "meta": {"app": "x"}});
        let auth = auth_from_lookup("hvs.T".into(), data.as_object().unwrap());
        assert_eq!(auth.client_token.expose(), "hvs.T");
        assert_eq!(auth.policies, ["default", "svc"]);
        assert_eq!(auth.lease_duration, 42);
        assert!(auth.renewable);
        assert_eq!(auth.metadata["app"], "x");
    }

    #[test]
    fn logins_never_show_secrets() {
        let t = Login::Token("hvs.SECRET".into());
        assert!(!format!("{t:?}").contains("SECRET"));
        assert!(!t.can_repeat());
        let c = Login::Cert {
            mount: "cert".into(),
            name: Some("web".into()),
        };
        assert!(c.can_repeat() && format!("{c:?}").contains("web"));
    }

    #[test]
    fn login_answers_need_a_token() {
        let resp = |body: Value| crate::Response {
            status: 200,
            body: Some(body),
            retry_after: None,
        };
        assert!(auth_of(resp(json!({"auth": {"client_token": ""}}))).is_err());
        assert!(auth_of(resp(json!({"data": {}}))).is_err());
        let auth = auth_of(resp(
            json!({"auth": {"client_token": "hvs.X", "lease_duration": 60}}),
        ))
        .unwrap();
        assert_eq!(auth.lease_duration, 60);
        let denied = crate::Response {
            status: 403,
            body: Some(json!({"errors": ["certificate is not trusted by role web"]})),
            retry_after: None,
        };
        let err = auth_of(denied).unwrap_err();
        assert_eq!(
            err.server_messages(),
            ["certificate is not trusted by role web"]
        );
    }
}
