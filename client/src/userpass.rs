//! Username/password login with a TOTP second factor, under `auth/<mount>/` (default
//! mount `userpass`), and the MFA step `sys/mfa/validate`, in Vault's shapes:
//!
//! 1. [`Client::login_userpass`] sends the password. The answer is either a token or an
//!    `mfa_requirement` ([`LoginOutcome::MfaRequired`]).
//! 2. [`Client::mfa_validate`] sends the TOTP (or recovery) code for that request and
//!    gets the token.
//!
//! [`Client::login_userpass_with_code`] does both in one request (the `totp` field).
//! Enrolment: [`Client::totp_enroll`] then [`Client::totp_confirm`], authenticated by the
//! password, no token needed.
//!
//! Passwords and codes are taken as `&str` (keep them in `Zeroizing` on your side); the
//! request bodies holding them are wiped after sending, and no type here shows a
//! password, code, TOTP secret or recovery code in `Debug`.

use std::fmt;

use coffer_proto::SecretString;
use reqwest::Method;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::types::{zeroize_value, Auth, Secret};
use crate::{required_secret, Client, Response};

/// Mount path of the userpass auth method when none is given.
pub const DEFAULT_USERPASS_MOUNT: &str = "userpass";

/// What a password login produced.
// `Auth` makes one variant large; an outcome exists once per login and is matched right
// away, so boxing would only make it clumsier to destructure.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Logged in: the `auth` block with the token.
    Token(Auth),
    /// The password was right and a second factor is needed: pass `request_id`,
    /// `method_id` and a code to [`Client::mfa_validate`].
    MfaRequired {
        /// `mfa_request_id` of the pending login.
        request_id: String,
        /// Id of the TOTP method to answer (the first TOTP method the server offered).
        method_id: String,
    },
}

/// A new (pending) TOTP enrolment. `url` holds the shared secret.
#[derive(Clone)]
pub struct Enrollment {
    /// `otpauth://totp/...` URL with the secret, for the authenticator app.
    pub url: Zeroizing<String>,
    /// The same URL as a QR code: a base64-encoded PNG (may be empty).
    pub barcode_png_base64: Zeroizing<String>,
    /// Id of the TOTP method (the key of `mfa_payload` in `sys/mfa/validate`).
    pub method_id: String,
    /// Recovery codes an enrolment with a token hands out (they work once the
    /// enrolment is confirmed); empty when replacing a factor with a current code.
    pub recovery_codes: Vec<Zeroizing<String>>,
}

/// What authorises a TOTP enrolment.
#[derive(Clone, Copy)]
pub enum EnrollAuth<'a> {
    /// A first factor, or one after an admin reset: the one-time enrolment token an
    /// admin issued, and the password that replaces the one the admin set.
    Token {
        /// `enrollment_token` from `auth/<mount>/users/<name>/enrollment-token`
        enrollment_token: &'a str,
        /// the user's own new password (must differ from the current one)
        new_password: &'a str,
    },
    /// Replacing a working factor: a current code from it.
    CurrentCode(&'a str),
}

impl fmt::Debug for EnrollAuth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnrollAuth::Token { .. } => "EnrollAuth::Token([redacted])",
            EnrollAuth::CurrentCode(_) => "EnrollAuth::CurrentCode([redacted])",
        })
    }
}

/// An enrolment token an admin issued for a user.
#[derive(Clone)]
pub struct EnrollmentToken {
    /// the token, to hand to the user (once)
    pub token: SecretString,
    /// RFC 3339 expiry
    pub expires_at: String,
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment")
            .field("url", &"[redacted]")
            .field("barcode_png_base64", &"[redacted]")
            .field("method_id", &self.method_id)
            .field("recovery_codes", &"[redacted]")
            .finish()
    }
}

/// `auth/<mount>/<action>/<username>`. The mount may be given as `userpass`, `/corp/up/`
/// or `auth/userpass`; the username must be one path segment.
pub fn userpass_path(mount: &str, action: &str, username: &str) -> Result<String, ClientError> {
    let mount = mount.trim().trim_matches('/');
    let mount = mount.strip_prefix("auth/").unwrap_or(mount);
    let mount = if mount.is_empty() {
        DEFAULT_USERPASS_MOUNT
    } else {
        mount
    };
    let user = username.trim();
    if user.is_empty() || user == "." || user == ".." || user.contains('/') {
        return Err(ClientError::InvalidPath(format!(
            "auth/{mount}/{action}/{username}: the username must be a single non-empty path segment"
        )));
    }
    Ok(format!("auth/{mount}/{action}/{user}"))
}

impl Client {
    /// `POST auth/<mount>/login/<username> {"password"}`: a token, or the MFA requirement
    /// to answer with [`Client::mfa_validate`].
    ///
    /// Errors: 400 wrong username/password, 403 locked out, and
    /// [`ClientError::RateLimited`] (with `retry_after`) for too many attempts.
    pub async fn login_userpass(
        &self,
        mount: &str,
        username: &str,
        password: &str,
    ) -> Result<LoginOutcome, ClientError> {
        let path = userpass_path(mount, "login", username)?;
        let body = json!({ "password": password });
        login_outcome(self.post_secret_body(&path, body).await?)
    }

    /// Login in one step: the password plus the TOTP code (or a recovery code) in the
    /// `totp` field. A server that only knows the two-step flow (Vault) ignores the field
    /// and answers [`LoginOutcome::MfaRequired`]; the same code can then go to
    /// [`Client::mfa_validate`].
    pub async fn login_userpass_with_code(
        &self,
        mount: &str,
        username: &str,
        password: &str,
        code: &str,
    ) -> Result<LoginOutcome, ClientError> {
        let path = userpass_path(mount, "login", username)?;
        let body = json!({ "password": password, "totp": code });
        login_outcome(self.post_secret_body(&path, body).await?)
    }

    /// `POST sys/mfa/validate {"mfa_request_id", "mfa_payload": {method_id: [code]}}`:
    /// finish a login that answered [`LoginOutcome::MfaRequired`]. No token is needed.
    pub async fn mfa_validate(
        &self,
        request_id: &str,
        method_id: &str,
        code: &str,
    ) -> Result<Auth, ClientError> {
        let mut payload = Map::new();
        payload.insert(method_id.to_string(), json!([code]));
        let body = json!({ "mfa_request_id": request_id, "mfa_payload": payload });
        let secret = required_secret(self.post_secret_body("sys/mfa/validate", body).await?)?;
        match login_outcome_of(secret)? {
            LoginOutcome::Token(auth) => Ok(auth),
            LoginOutcome::MfaRequired { .. } => Err(ClientError::Decode(
                "the server asked for another factor after MFA validation".into(),
            )),
        }
    }

    /// `POST auth/<mount>/users/<username>/enrollment-token {"ttl"?}` (admin, needs a
    /// token): a one-time token with which the user enrols a first factor.
    pub async fn userpass_enrollment_token(
        &self,
        mount: &str,
        username: &str,
        ttl: Option<&str>,
    ) -> Result<EnrollmentToken, ClientError> {
        let user_path = userpass_path(mount, "users", username)?;
        let path = format!("{user_path}/enrollment-token");
        let body = match ttl {
            Some(t) => json!({ "ttl": t }),
            None => json!({}),
        };
        let secret = required_secret(
            self.request(Method::POST, &path, &[], Some(&body), &[])
                .await?,
        )?;
        let token = secret
            .data_field("enrollment_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::Decode("the answer has no enrollment_token".into()))?;
        Ok(EnrollmentToken {
            token: SecretString::new(token.to_string()),
            expires_at: secret
                .data_field("expires_at")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// `POST auth/<mount>/totp/enroll/<username>`: start a TOTP enrolment, with the
    /// user's current `password` and either an enrolment token and a new password
    /// (`{"enrollment_token", "password", "new_password"}`) or a current code
    /// (`{"password", "code"}`). Nothing changes until [`Client::totp_confirm`].
    pub async fn totp_enroll(
        &self,
        mount: &str,
        username: &str,
        password: &str,
        auth: EnrollAuth<'_>,
    ) -> Result<Enrollment, ClientError> {
        let path = userpass_path(mount, "totp/enroll", username)?;
        let body = match auth {
            EnrollAuth::Token {
                enrollment_token,
                new_password,
            } => json!({
                "enrollment_token": enrollment_token,
                "password": password,
                "new_password": new_password,
            }),
            EnrollAuth::CurrentCode(code) => json!({ "password": password, "code": code }),
        };
        let secret = required_secret(self.post_secret_body(&path, body).await?)?;
        let text = |key: &str| {
            Zeroizing::new(
                secret
                    .data_field(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let url = text("url");
        if !url.starts_with("otpauth://") {
            return Err(ClientError::Decode(
                "the enrolment answer has no otpauth:// url".into(),
            ));
        }
        let recovery_codes = match secret.data_field("recovery_codes") {
            Some(v) => string_list(v)?,
            None => Vec::new(),
        };
        Ok(Enrollment {
            url,
            barcode_png_base64: text("barcode"),
            method_id: text("method_id").to_string(),
            recovery_codes,
        })
    }

    /// `POST auth/<mount>/totp/confirm/<username> {"enrollment_token"?, "password", "code"}`:
    /// confirm the pending enrolment with a code from the app. After an enrolment with a
    /// token, `password` is the new password and the token is spent here; only then do
    /// the new password and factor work. Returns the recovery codes.
    pub async fn totp_confirm(
        &self,
        mount: &str,
        username: &str,
        password: &str,
        code: &str,
        enrollment_token: Option<&str>,
    ) -> Result<Vec<Zeroizing<String>>, ClientError> {
        let path = userpass_path(mount, "totp/confirm", username)?;
        let mut body = json!({ "password": password, "code": code });
        if let (Some(t), Some(obj)) = (enrollment_token, body.as_object_mut()) {
            obj.insert("enrollment_token".into(), json!(t));
        }
        let secret = required_secret(self.post_secret_body(&path, body).await?)?;
        let codes = secret.data_field("recovery_codes").ok_or_else(|| {
            ClientError::Decode("the confirmation answer has no recovery_codes".into())
        })?;
        string_list(codes)
    }

    /// POST a body holding secrets, then wipe it whatever happened.
    async fn post_secret_body(&self, path: &str, mut body: Value) -> Result<Response, ClientError> {
        let resp = self
            .request(Method::POST, path, &[], Some(&body), &[])
            .await;
        zeroize_value(&mut body);
        resp
    }
}

/// Recovery codes: a JSON array of strings.
fn string_list(v: &Value) -> Result<Vec<Zeroizing<String>>, ClientError> {
    v.as_array()
        .ok_or_else(|| ClientError::Decode("recovery_codes is not a list".into()))?
        .iter()
        .map(|c| {
            c.as_str()
                .map(|s| Zeroizing::new(s.to_string()))
                .ok_or_else(|| ClientError::Decode("a recovery code is not a string".into()))
        })
        .collect()
}

fn login_outcome(resp: Response) -> Result<LoginOutcome, ClientError> {
    login_outcome_of(required_secret(resp)?)
}

/// A login answer: `auth.mfa_requirement` wins over an (empty) `client_token`.
fn login_outcome_of(mut secret: Secret) -> Result<LoginOutcome, ClientError> {
    let requirement = secret
        .raw()
        .get("auth")
        .and_then(|a| a.get("mfa_requirement"))
        .filter(|r| !r.is_null());
    if let Some(req) = requirement {
        return mfa_requirement(req);
    }
    let auth = secret
        .auth
        .take()
        .ok_or_else(|| ClientError::Decode("the login answer has no auth block".into()))?;
    if auth.client_token.expose().is_empty() {
        return Err(ClientError::Decode(
            "the login answer has neither a token nor an MFA requirement".into(),
        ));
    }
    Ok(LoginOutcome::Token(auth))
}

/// `{"mfa_request_id", "mfa_constraints": {name: {"any": [{"type","id",...}]}}}`: the
/// request id and the first TOTP method (or, failing that, the first method that takes a
/// passcode).
fn mfa_requirement(req: &Value) -> Result<LoginOutcome, ClientError> {
    let request_id = req
        .get("mfa_request_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ClientError::Decode("mfa_requirement without mfa_request_id".into()))?;
    let methods: Vec<&Value> = req
        .get("mfa_constraints")
        .and_then(Value::as_object)
        .map(|c| {
            c.values()
                .filter_map(|v| v.get("any").and_then(Value::as_array))
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    fn id_of(m: &Value) -> Option<&str> {
        m.get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
    let is_totp = |m: &&&Value| m.get("type").and_then(Value::as_str) == Some("totp");
    let takes_code = |m: &&&Value| {
        m.get("uses_passcode")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    };
    let method_id = methods
        .iter()
        .filter(is_totp)
        .find_map(|m| id_of(m))
        .or_else(|| methods.iter().filter(takes_code).find_map(|m| id_of(m)))
        .ok_or_else(|| {
            ClientError::Decode("MFA is required but the server offered no TOTP method".into())
        })?;
    Ok(LoginOutcome::MfaRequired {
        request_id: request_id.to_string(),
        method_id: method_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(v: Value) -> Result<LoginOutcome, ClientError> {
        login_outcome_of(Secret::from_value(v).unwrap())
    }

    #[test]
    fn paths_are_single_segment_usernames() {
        assert_eq!(
            userpass_path("userpass", "login", "alice").unwrap(),
            "auth/userpass/login/alice"
        );
        assert_eq!(
            userpass_path("/auth/corp/up/", "totp/enroll", " bob ").unwrap(),
            "auth/corp/up/totp/enroll/bob"
        );
        assert_eq!(
            userpass_path("", "login", "a").unwrap(),
            "auth/userpass/login/a"
        );
        for bad in ["", " ", "..", "a/b"] {
            assert!(
                matches!(
                    userpass_path("userpass", "login", bad),
                    Err(ClientError::InvalidPath(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mfa_requirement_picks_totp_method() {
        let o = outcome(json!({"auth": {"client_token": "", "mfa_requirement": {
        "mfa_request_id": "req-1",
        "mfa_constraints": {
            "duo": {"any": [{"type": "duo", "id": "m-duo", "uses_passcode": false}]},
            "totp": {"any": [{"type": "totp", "id": "m-totp", "uses_passcode": true}]}
        }}}}))
        .unwrap();
        match o {
            LoginOutcome::MfaRequired {
                request_id,
                method_id,
            } => {
                assert_eq!(request_id, "req-1");
                assert_eq!(method_id, "m-totp");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_answer_and_broken_answers() {
        let o = outcome(
            json!({"auth": {"client_token": "hvs.U", "policies": ["dev"],
            "metadata": {"username": "alice", "mfa": "true"}, "lease_duration": 60}}),
        )
        .unwrap();
        let LoginOutcome::Token(auth) = o else {
            panic!("expected a token")
        };
        assert_eq!(auth.client_token.expose(), "hvs.U");
        assert_eq!(auth.metadata["username"], "alice");
        assert!(!format!("{auth:?}").contains("hvs.U"));

        assert!(matches!(
            outcome(json!({"auth": {"client_token": ""}})),
            Err(ClientError::Decode(_))
        ));
        assert!(matches!(
            outcome(json!({"data": {}})),
            Err(ClientError::Decode(_))
        ));
        // A requirement without any usable method cannot be answered.
        assert!(matches!(
            outcome(json!({"auth": {"mfa_requirement": {"mfa_request_id": "r",
                "mfa_constraints": {"x": {"any": [{"type": "duo", "id": "d", "uses_passcode": false}]}}}}})),
            Err(ClientError::Decode(_))
        ));
        assert!(matches!(
            outcome(json!({"auth": {"mfa_requirement": {"mfa_constraints": {}}}})),
            Err(ClientError::Decode(_))
        ));
    }

    #[test]
    fn enrollment_debug_hides_secret() {
        let e = Enrollment {
            url: Zeroizing::new("otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXP".into()),
            barcode_png_base64: Zeroizing::new("iVBORw0KGgo".into()),
            method_id: "m1".into(),
            recovery_codes: vec![Zeroizing::new("RC01-AAAA".into())],
        };
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("JBSWY3DPEHPK3PXP"), "{dbg}");
        assert!(!dbg.contains("RC01"), "{dbg}");
        assert!(!dbg.contains("iVBORw0KGgo"), "{dbg}");
        assert!(dbg.contains("m1"));
    }
}
