//! Compatibility checks for Coffer driven by the vaultrs client library (the Rust
//! client most services embed), run by tests/compat/run.sh against a dev server
//! (cofferd, or a real OpenBao for the reference run):
//!
//!     coffer-compat-vaultrs --addr URL --token ROOT --target cofferd|openbao \
//!         [--user NAME] [--mfa-method-id ID] [--failed-names FILE]
//!
//! Journeys: KV v2 (write, read, metadata, list, delete), tokens (create,
//! lookup-self, renew, revoke), ACL policies (write, read, list, delete), and
//! userpass with the second factor (create and read a user, enrol a TOTP factor
//! through the API, log in with password + code, in one step with the
//! X-Vault-MFA header and in two through sys/mfa/validate). vaultrs 0.8 has no
//! MFA call of its own: the program adds what a service would, through vaultrs'
//! own extension points (an `Endpoint` for sys/mfa/validate, a middleware for
//! the header). Enrolment uses plain HTTP, as run.sh does for hvac: on cofferd
//! the self-service enrol/confirm paths, on OpenBao identity/mfa admin-generate
//! (`--mfa-method-id`, a method that a login-enforcement applies to userpass).
//!
//! One line per check: "ok  - vaultrs: NAME" or "FAIL - vaultrs: NAME: detail",
//! then "vaultrs totals: N passed, M failed". Exit status 0 when all passed.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rustify::endpoint::{Endpoint, MiddleWare};
use rustify_derive::Endpoint;
use serde::Serialize;
use serde_json::{json, Value};
use vaultrs::api::{AuthInfo, EndpointMiddleware, EndpointResult};
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

struct Report {
    passed: u32,
    failed: Vec<String>,
}

impl Report {
    fn ok(&mut self, name: &str) {
        self.passed += 1;
        println!("ok  - vaultrs: {name}");
    }

    fn fail(&mut self, name: &str, detail: impl std::fmt::Display) {
        let detail: String = detail
            .to_string()
            .replace('\n', " ")
            .chars()
            .take(400)
            .collect();
        println!("FAIL - vaultrs: {name}: {detail}");
        self.failed.push(format!("vaultrs: {name}"));
    }

    /// Records `got == want`.
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, name: &str, got: T, want: T) {
        if got == want {
            self.ok(name);
        } else {
            self.fail(name, format!("got {got:?}, expected {want:?}"));
        }
    }

    /// Records a call that must succeed; returns its value.
    fn call<T>(&mut self, name: &str, r: Result<T, ClientError>) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok(name);
                Some(v)
            }
            Err(e) => {
                self.fail(name, format!("error: {e}"));
                None
            }
        }
    }

    /// Records a call that must fail with this HTTP status.
    fn api_error<T: std::fmt::Debug>(&mut self, name: &str, r: Result<T, ClientError>, code: u16) {
        match r {
            Err(ClientError::APIError { code: c, .. }) if c == code => self.ok(name),
            other => self.fail(name, format!("got {other:?}, expected an API error {code}")),
        }
    }
}

struct Args {
    addr: String,
    token: String,
    target: String,
    user: String,
    mfa_method_id: String,
    failed_names: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        addr: String::new(),
        token: String::new(),
        target: "cofferd".into(),
        user: "vaultrs-user".into(),
        mfa_method_id: String::new(),
        failed_names: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--addr" => a.addr = value,
            "--token" => a.token = value,
            "--target" => a.target = value,
            "--user" => a.user = value,
            "--mfa-method-id" => a.mfa_method_id = value,
            "--failed-names" => a.failed_names = Some(value),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(64);
            }
        }
    }
    if a.addr.is_empty() || a.token.is_empty() {
        eprintln!("--addr and --token are required");
        std::process::exit(64);
    }
    a
}

fn client(addr: &str, token: &str) -> VaultClient {
    VaultClient::new(
        VaultClientSettingsBuilder::default()
            .address(addr)
            .token(token)
            .timeout(Some(Duration::from_secs(20)))
            .build()
            .expect("client settings"),
    )
    .expect("client")
}

#[tokio::main]
async fn main() {
    // No TLS is spoken (plain HTTP on loopback), but reqwest's rustls backend
    // wants a provider: ring, so the build needs no C toolchain for aws-lc.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args();
    let mut r = Report {
        passed: 0,
        failed: Vec::new(),
    };
    let root = client(&a.addr, &a.token);
    kv(&mut r, &root).await;
    tokens(&mut r, &a, &root).await;
    policies(&mut r, &root).await;
    userpass(&mut r, &a, &root).await;
    println!(
        "vaultrs totals: {} passed, {} failed",
        r.passed,
        r.failed.len()
    );
    if let Some(path) = &a.failed_names {
        let mut text = r.failed.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = std::fs::write(path, text);
    }
    std::process::exit(if r.failed.is_empty() { 0 } else { 1 });
}

async fn kv(r: &mut Report, c: &VaultClient) {
    use vaultrs::kv2;
    let data = HashMap::from([("user", "app"), ("pass", "s3cr3t-1")]);
    if let Some(meta) = r.call(
        "kv2::set secret/vaultrs/app",
        kv2::set(c, "secret", "vaultrs/app", &data).await,
    ) {
        r.eq("kv2::set -> version 1", meta.version, 1);
    }
    let got: Option<HashMap<String, String>> = r.call(
        "kv2::read secret/vaultrs/app",
        kv2::read(c, "secret", "vaultrs/app").await,
    );
    r.eq(
        "kv2::read returns what was written",
        got.as_ref().and_then(|m| m.get("pass")).map(String::as_str),
        Some("s3cr3t-1"),
    );
    let data2 = HashMap::from([("user", "app"), ("pass", "s3cr3t-2")]);
    if let Some(meta) = r.call(
        "kv2::set again",
        kv2::set(c, "secret", "vaultrs/app", &data2).await,
    ) {
        r.eq("kv2::set again -> version 2", meta.version, 2);
    }
    let old: Option<HashMap<String, String>> = r.call(
        "kv2::read_version 1",
        kv2::read_version(c, "secret", "vaultrs/app", 1).await,
    );
    r.eq(
        "kv2::read_version 1 returns the first value",
        old.as_ref().and_then(|m| m.get("pass")).map(String::as_str),
        Some("s3cr3t-1"),
    );
    if let Some(m) = r.call(
        "kv2::read_metadata",
        kv2::read_metadata(c, "secret", "vaultrs/app").await,
    ) {
        r.eq(
            "kv2::read_metadata: current_version 2, versions 1 and 2",
            (m.current_version, {
                let mut v: Vec<_> = m.versions.keys().cloned().collect();
                v.sort();
                v
            }),
            (2, vec!["1".to_owned(), "2".to_owned()]),
        );
    }
    if let Some(keys) = r.call(
        "kv2::list secret/vaultrs",
        kv2::list(c, "secret", "vaultrs").await,
    ) {
        r.eq("kv2::list -> [app]", keys, vec!["app".to_owned()]);
    }
    r.call(
        "kv2::delete_latest",
        kv2::delete_latest(c, "secret", "vaultrs/app").await,
    );
    let after: Result<HashMap<String, String>, _> = kv2::read(c, "secret", "vaultrs/app").await;
    match after {
        Err(_) => r.ok("kv2::read after delete_latest is an error"),
        Ok(v) => r.fail(
            "kv2::read after delete_latest is an error",
            format!("read {v:?}"),
        ),
    }
    r.call(
        "kv2::delete_metadata",
        kv2::delete_metadata(c, "secret", "vaultrs/app").await,
    );
    r.api_error(
        "kv2::list after delete_metadata -> 404",
        kv2::list(c, "secret", "vaultrs").await,
        404,
    );
}

async fn tokens(r: &mut Report, a: &Args, root: &VaultClient) {
    use vaultrs::api::token::requests::CreateTokenRequest;
    use vaultrs::token;
    let created = r.call(
        "token::new (policies [default], ttl 1h)",
        token::new(
            root,
            Some(
                CreateTokenRequest::builder()
                    .policies(vec!["default".to_owned()])
                    .ttl("1h"),
            ),
        )
        .await,
    );
    let Some(created) = created else { return };
    r.eq(
        "token::new: lease_duration 3600, renewable, policies [default]",
        (
            created.lease_duration,
            created.renewable,
            created.policies.clone(),
        ),
        (3600, true, vec!["default".to_owned()]),
    );
    let t = client(&a.addr, &created.client_token);
    if let Some(l) = r.call("token::lookup_self", token::lookup_self(&t).await) {
        r.eq(
            "token::lookup_self: the same accessor, policies [default], ttl <= 3600",
            (
                l.accessor == created.accessor,
                l.policies,
                l.ttl <= 3600 && l.ttl > 3500,
            ),
            (true, vec!["default".to_owned()], true),
        );
    }
    if let Some(renewed) = r.call(
        "token::renew_self 2h",
        token::renew_self(&t, Some("2h")).await,
    ) {
        r.eq(
            "token::renew_self 2h -> lease_duration 7200",
            renewed.lease_duration,
            7200,
        );
    }
    r.call(
        "token::revoke",
        token::revoke(root, &created.client_token).await,
    );
    r.api_error(
        "token::lookup_self with the revoked token -> 403",
        token::lookup_self(&t).await,
        403,
    );
}

const POLICY: &str = "path \"secret/data/vaultrs/*\" {\n  capabilities = [\"read\"]\n}\n";

async fn policies(r: &mut Report, c: &VaultClient) {
    use vaultrs::sys::policy;
    r.call(
        "sys::policy::set vaultrs-read",
        policy::set(c, "vaultrs-read", POLICY).await,
    );
    if let Some(p) = r.call("sys::policy::read", policy::read(c, "vaultrs-read").await) {
        r.eq(
            "sys::policy::read: name and rules as written",
            (p.name.as_str(), p.rules.as_str()),
            ("vaultrs-read", POLICY),
        );
    }
    if let Some(l) = r.call("sys::policy::list", policy::list(c).await) {
        r.eq(
            "sys::policy::list has vaultrs-read and default",
            (
                l.policies.iter().any(|p| p == "vaultrs-read"),
                l.policies.iter().any(|p| p == "default"),
            ),
            (true, true),
        );
    }
    r.call(
        "sys::policy::delete",
        policy::delete(c, "vaultrs-read").await,
    );
    r.api_error(
        "sys::policy::read after delete -> 404",
        policy::read(c, "vaultrs-read").await,
        404,
    );
}

// ---- userpass + TOTP ----------------------------------------------------------

/// A password-only login, answered with the whole envelope: vaultrs' own
/// `userpass::login` decodes only `auth` into `AuthInfo`, which has no
/// `mfa_requirement`.
#[derive(Debug, Endpoint, Serialize)]
#[endpoint(
    path = "/auth/{self.mount}/login/{self.username}",
    method = "POST",
    response = "Value"
)]
struct PasswordStep {
    #[endpoint(skip)]
    #[serde(skip)]
    mount: String,
    #[endpoint(skip)]
    #[serde(skip)]
    username: String,
    password: String,
}

/// `sys/mfa/validate`, which vaultrs 0.8 does not have.
#[derive(Debug, Endpoint, Serialize)]
#[endpoint(path = "/sys/mfa/validate", method = "POST")]
struct MfaValidate {
    mfa_request_id: String,
    mfa_payload: HashMap<String, Vec<String>>,
}

/// vaultrs' middleware plus the `X-Vault-MFA: <method id>:<code>` header.
struct WithMfa<'a> {
    inner: &'a EndpointMiddleware,
    value: String,
}

impl MiddleWare for WithMfa<'_> {
    fn request<E: Endpoint>(
        &self,
        e: &E,
        req: &mut http::Request<Vec<u8>>,
    ) -> Result<(), rustify::errors::ClientError> {
        self.inner.request(e, req)?;
        if let Ok(v) = http::HeaderValue::from_str(&self.value) {
            req.headers_mut().insert("X-Vault-MFA", v);
        }
        Ok(())
    }

    fn response<E: Endpoint>(
        &self,
        e: &E,
        resp: &mut http::Response<Vec<u8>>,
    ) -> Result<(), rustify::errors::ClientError> {
        self.inner.response(e, resp)
    }
}

/// vaultrs' userpass `LoginRequest`, sent with the code in `X-Vault-MFA`.
async fn login_with_header(
    c: &VaultClient,
    user: &str,
    password: &str,
    method_id: &str,
    code: &str,
) -> Result<AuthInfo, String> {
    let endpoint = vaultrs::api::auth::userpass::requests::LoginRequest::builder()
        .mount("userpass")
        .username(user)
        .password(password)
        .build()
        .map_err(|e| e.to_string())?;
    let mw = WithMfa {
        inner: c.middle(),
        value: format!("{method_id}:{code}"),
    };
    let result: EndpointResult<()> = endpoint
        .with_middleware(&mw)
        .exec(c.http())
        .await
        .map_err(|e| e.to_string())?
        .wrap::<EndpointResult<()>>()
        .map_err(|e| e.to_string())?;
    result
        .auth
        .ok_or_else(|| "no auth in the answer".to_owned())
}

/// Plain HTTP for the enrolment calls (not what this program checks).
async fn raw(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        format!("{addr}/v1/{path}"),
    );
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if !body.is_null() {
        req = req.json(&body);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let v = resp.json::<Value>().await.unwrap_or(Value::Null);
            (status, v)
        }
        Err(e) => (0, json!({ "errors": [e.to_string()] })),
    }
}

/// The TOTP codes of this run, each time step used once and in order.
struct Totp {
    key: Vec<u8>,
    last: u64,
}

impl Totp {
    fn from_url(url: &str) -> Option<Totp> {
        let secret = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("secret="))?;
        Some(Totp {
            key: base32(secret)?,
            last: 0,
        })
    }

    fn code_at(&self, step: u64) -> String {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&self.key).expect("any key length");
        mac.update(&step.to_be_bytes());
        let d = mac.finalize().into_bytes();
        let off = usize::from(d[19] & 0x0f);
        let v = u32::from_be_bytes([d[off], d[off + 1], d[off + 2], d[off + 3]]) & 0x7fff_ffff;
        format!("{:06}", v % 1_000_000)
    }

    /// The next usable code: the lowest step above the last one used that the
    /// server accepts now (one step of skew either way), waiting when needed.
    async fn next(&mut self) -> String {
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (cur, left) = (now / 30, 30 - now % 30);
            let lowest = if left >= 6 { cur - 1 } else { cur };
            let step = (self.last + 1).max(lowest);
            if step <= cur + 1 {
                self.last = step;
                return self.code_at(step);
            }
            tokio::time::sleep(Duration::from_secs(left.min(30))).await;
        }
    }
}

fn base32(s: &str) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

async fn userpass(r: &mut Report, a: &Args, root: &VaultClient) {
    use vaultrs::api::auth::userpass::requests::CreateUserRequest;
    use vaultrs::auth::userpass;
    let first_pw = "the first password, from the admin";
    let pw = "vaultrs user's own password";
    let user = a.user.as_str();
    let create_pw = if a.target == "cofferd" { first_pw } else { pw };
    r.call(
        "auth::userpass::user::set (token_policies, token_ttl, token_max_ttl, token_num_uses 0)",
        userpass::user::set(
            root,
            "userpass",
            user,
            create_pw,
            Some(
                CreateUserRequest::builder()
                    .token_policies(vec!["read-only".to_owned()])
                    .token_ttl("1h")
                    .token_max_ttl("4h")
                    .token_num_uses(0u64),
            ),
        )
        .await,
    );
    // The answer vaultrs failed to decode before every token parameter was returned.
    if let Some(u) = r.call(
        "auth::userpass::user::read decodes (every token_* field present, Vault's types)",
        userpass::user::read(root, "userpass", user).await,
    ) {
        r.eq(
            "auth::userpass::user::read: token_policies, token_ttl, token_max_ttl, token_type",
            (
                u.token_policies.clone(),
                u.token_ttl,
                u.token_max_ttl,
                u.token_type.as_str(),
            ),
            (vec!["read-only".to_owned()], 3600, 14_400, "default"),
        );
        r.eq(
            "auth::userpass::user::read: the other parameters have Vault's defaults",
            (
                u.token_explicit_max_ttl,
                u.token_no_default_policy,
                u.token_num_uses,
                u.token_period,
                u.token_bound_cidrs.len(),
            ),
            (0, false, 0, 0, 0),
        );
    }
    if let Some(l) = r.call(
        "auth::userpass::user::list",
        userpass::user::list(root, "userpass").await,
    ) {
        r.eq(
            "auth::userpass::user::list has the user",
            l.keys.iter().any(|k| k == user),
            true,
        );
    }

    // The second factor.
    let enrolment = if a.target == "cofferd" {
        enrol_coffer(r, a, user, first_pw, pw).await
    } else {
        enrol_openbao(r, a, root, user).await
    };
    let method_id = enrolment.method_id.clone();
    let Some(mut totp) = enrolment.url.as_deref().and_then(Totp::from_url) else {
        r.fail(
            "userpass+mfa: a TOTP factor was enrolled",
            format!("no otpauth URL ({:?})", enrolment.url),
        );
        return;
    };
    let anon = client(&a.addr, "");
    if a.target == "cofferd" {
        // Enrolment is confirmed with a code (OpenBao's admin-generate needs none).
        confirm_coffer(r, a, user, pw, &enrolment.enrollment_token, &mut totp).await;
    }

    // vaultrs' own call with the password alone: no token.
    match userpass::login(&anon, "userpass", user, pw).await {
        Ok(auth) if auth.client_token.is_empty() => {
            r.ok("auth::userpass::login (password only) gives no token")
        }
        Ok(auth) => r.fail(
            "auth::userpass::login (password only) gives no token",
            format!("got a token with policies {:?}", auth.policies),
        ),
        Err(e) => {
            let shown: String = format!("{e:?}")
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(240)
                .collect();
            println!("# vaultrs: auth::userpass::login with the password alone: {shown}");
            r.ok("auth::userpass::login (password only) gives no token")
        }
    }

    // One step: vaultrs' LoginRequest with the code in X-Vault-MFA.
    let code = totp.next().await;
    match login_with_header(&anon, user, pw, &method_id, &code).await {
        Ok(auth) => {
            r.eq(
                "login with X-Vault-MFA: <method id>:<code> -> a token with the user's policies",
                (!auth.client_token.is_empty(), {
                    let mut p = auth.token_policies.clone();
                    p.sort();
                    p
                }),
                (true, vec!["default".to_owned(), "read-only".to_owned()]),
            );
            r.eq(
                "... its lease_duration is the user's token_ttl",
                auth.lease_duration,
                3600,
            );
            let t = client(&a.addr, &auth.client_token);
            if let Some(l) = r.call(
                "... token::lookup_self with it",
                vaultrs::token::lookup_self(&t).await,
            ) {
                r.eq(
                    "... meta.username is the user",
                    l.meta.as_ref().and_then(|m| m.get("username")).cloned(),
                    Some(user.to_owned()),
                );
            }
        }
        Err(e) => r.fail(
            "login with X-Vault-MFA: <method id>:<code> -> a token with the user's policies",
            e,
        ),
    }

    // Two steps: the password (whole answer), then sys/mfa/validate.
    let step = PasswordStep {
        mount: "userpass".into(),
        username: user.into(),
        password: pw.into(),
    };
    let first = vaultrs::api::exec_with_no_result(&anon, step).await;
    let req = first
        .as_ref()
        .ok()
        .and_then(|v| v["auth"]["mfa_requirement"].as_object().cloned());
    let Some(req) = req else {
        r.fail(
            "password step -> auth.mfa_requirement with an mfa_request_id",
            format!("{first:?}"),
        );
        return;
    };
    r.ok("password step -> auth.mfa_requirement with an mfa_request_id");
    let request_id = req["mfa_request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let constraint_id = req["mfa_constraints"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|c| c["any"][0]["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    r.eq(
        "... the constraint names the TOTP method",
        constraint_id.as_str(),
        method_id.as_str(),
    );
    let code = totp.next().await;
    let validate = MfaValidate {
        mfa_request_id: request_id,
        mfa_payload: HashMap::from([(constraint_id, vec![code])]),
    };
    match vaultrs::api::auth(&anon, validate).await {
        Ok(auth) => r.eq(
            "sys/mfa/validate (a vaultrs Endpoint) -> a token",
            !auth.client_token.is_empty() && auth.renewable,
            true,
        ),
        Err(e) => r.fail("sys/mfa/validate (a vaultrs Endpoint) -> a token", e),
    }
    r.call(
        "auth::userpass::user::delete",
        userpass::user::delete(root, "userpass", user).await,
    );
}

/// A factor enrolled for the user.
struct Enrolment {
    method_id: String,
    url: Option<String>,
    /// cofferd: the one-time token the enrolment is confirmed with
    enrollment_token: String,
}

/// cofferd: the admin issues an enrolment token; the user enrols with it and
/// replaces the admin's password. Returns (method id, otpauth URL).
async fn enrol_coffer(r: &mut Report, a: &Args, user: &str, first_pw: &str, pw: &str) -> Enrolment {
    let (st, body) = raw(
        &a.addr,
        Some(&a.token),
        "POST",
        &format!("auth/userpass/users/{user}/enrollment-token"),
        json!({}),
    )
    .await;
    let token = body["data"]["enrollment_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    r.eq("(coffer setup) enrollment-token -> 200", st, 200);
    let (st, body) = raw(
        &a.addr,
        None,
        "POST",
        &format!("auth/userpass/totp/enroll/{user}"),
        json!({"enrollment_token": token, "password": first_pw, "new_password": pw}),
    )
    .await;
    r.eq("(coffer setup) totp/enroll -> 200", st, 200);
    Enrolment {
        method_id: body["data"]["method_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        url: body["data"]["url"].as_str().map(str::to_owned),
        enrollment_token: token,
    }
}

async fn confirm_coffer(
    r: &mut Report,
    a: &Args,
    user: &str,
    pw: &str,
    token: &str,
    totp: &mut Totp,
) {
    let code = totp.next().await;
    let (st, body) = raw(
        &a.addr,
        None,
        "POST",
        &format!("auth/userpass/totp/confirm/{user}"),
        json!({"enrollment_token": token, "password": pw, "code": code}),
    )
    .await;
    if st == 200 {
        r.ok("(coffer setup) totp/confirm -> 200");
    } else {
        r.fail("(coffer setup) totp/confirm -> 200", format!("{st} {body}"));
    }
}

/// OpenBao: an entity with an alias on the userpass mount, and a TOTP secret
/// generated for it under the method the login-enforcement names.
async fn enrol_openbao(r: &mut Report, a: &Args, root: &VaultClient, user: &str) -> Enrolment {
    let accessor = match vaultrs::sys::auth::list(root).await {
        Ok(m) => m
            .get("userpass/")
            .map(|m| m.accessor.clone())
            .unwrap_or_default(),
        Err(e) => {
            r.fail("(openbao setup) sys::auth::list", e);
            String::new()
        }
    };
    let (_, e) = raw(
        &a.addr,
        Some(&a.token),
        "POST",
        "identity/entity",
        json!({"name": user}),
    )
    .await;
    let entity = e["data"]["id"].as_str().unwrap_or_default().to_owned();
    let (st, _) = raw(
        &a.addr,
        Some(&a.token),
        "POST",
        "identity/entity-alias",
        json!({"name": user, "canonical_id": entity, "mount_accessor": accessor}),
    )
    .await;
    r.eq("(openbao setup) identity/entity-alias -> 200", st, 200);
    let (_, g) = raw(
        &a.addr,
        Some(&a.token),
        "POST",
        "identity/mfa/method/totp/admin-generate",
        json!({"method_id": a.mfa_method_id, "entity_id": entity}),
    )
    .await;
    Enrolment {
        method_id: a.mfa_method_id.clone(),
        url: g["data"]["url"].as_str().map(str::to_owned),
        enrollment_token: String::new(),
    }
}
