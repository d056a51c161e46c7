//! People log in with a password and a TOTP code, end to end, on both backends.

use coffer_tests::totp::{code, enrol, log_has_code, mfa_requirement, seconds_left_in_step};
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";
/// What an admin sets at creation; enrolment replaces it with [`PW`].
const ADMIN_PW: &str = "admin-chosen first password";

async fn login(s: &TestServer, user: &str, body: Value) -> (u16, Value) {
    s.call(
        "POST",
        &format!("auth/userpass/login/{user}"),
        None,
        Some(body),
    )
    .await
}

async fn flow(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let r = Some(root.as_str());
    // Keep all codes of this test inside one 30-second step window.
    if seconds_left_in_step() < 12 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    assert_eq!(
        s.call(
            "POST",
            "sys/auth/userpass",
            r,
            Some(json!({"type": "userpass"}))
        )
        .await
        .0,
        204
    );
    let (_, auth) = s.call("GET", "sys/auth", r, None).await;
    let accessor = auth["data"]["userpass/"]["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, body) = s
        .call("POST", "auth/userpass/users/alice", r, Some(json!({"password": ADMIN_PW, "token_policies": ["developer"], "metadata": {"team": "payments"}})))
        .await;
    assert_eq!(st, 204, "{body}");
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/carol",
            r,
            Some(json!({"password": PW}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/weak",
            r,
            Some(json!({"password": "short"}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/rooty",
            r,
            Some(json!({"password": PW, "token_policies": ["root"]}))
        )
        .await
        .0,
        400
    );
    let (_, user) = s.call("GET", "auth/userpass/users/alice", r, None).await;
    assert!(
        !user.to_string().contains("argon2") && !user.to_string().contains(PW),
        "no hash or password in answers"
    );
    let (_, list) = s.call("LIST", "auth/userpass/users", r, None).await;
    assert_eq!(list["data"]["keys"], json!(["alice", "carol"]));

    // A user who never enrolled cannot log in at all.
    let (st, body) = login(&s, "carol", json!({"password": PW})).await;
    assert_eq!(st, 403, "{body}");
    assert!(body["errors"][0]
        .as_str()
        .unwrap()
        .contains("second factor"));

    // Enrol: URL + QR, confirm with a code, recovery codes once.
    let enrolled = enrol(&s, &root, "alice", ADMIN_PW, PW).await;
    let (st, body) = login(&s, "alice", json!({"password": ADMIN_PW})).await;
    assert_eq!(st, 400, "the admin's password died at enrolment: {body}");
    let (url, secret, recovery) = (enrolled.url, enrolled.secret, enrolled.recovery);
    assert!(url.starts_with("otpauth://totp/Coffer:alice?secret="));
    assert!(
        enrolled.enroll["data"]["barcode"]
            .as_str()
            .unwrap()
            .starts_with("iVBORw0KGgo"),
        "a PNG"
    );
    assert_eq!(recovery.len(), 10);

    // Password only: no token, an mfa_requirement.
    let (st, first) = login(&s, "alice", json!({"password": PW})).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["auth"]["client_token"], "");
    let (req_id, method) = mfa_requirement(&first);
    let validate =
        |id: &str, c: &str| json!({"mfa_request_id": id, "mfa_payload": {method.clone(): [c]}});
    let now_code = code(&secret, 0);
    let (st, done) = s
        .call(
            "POST",
            "sys/mfa/validate",
            None,
            Some(validate(&req_id, &now_code)),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    let alice = done["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(done["auth"]["policies"], json!(["default", "developer"]));
    assert_eq!(
        done["auth"]["metadata"],
        json!({"mfa": "true", "username": "alice"})
    );
    // The request is single-use; the code cannot be replayed.
    assert_eq!(
        s.call(
            "POST",
            "sys/mfa/validate",
            None,
            Some(validate(&req_id, &now_code))
        )
        .await
        .0,
        403
    );
    let (_, again) = login(&s, "alice", json!({"password": PW})).await;
    let req2 = mfa_requirement(&again).0;
    let (st, body) = s
        .call(
            "POST",
            "sys/mfa/validate",
            None,
            Some(validate(&req2, &now_code)),
        )
        .await;
    assert_eq!(st, 403, "replayed code: {body}");

    // The token: the person's name, mfa, an 8h cap, and templated team access.
    let (_, me) = s
        .call("GET", "auth/token/lookup-self", Some(&alice), None)
        .await;
    assert_eq!(me["data"]["display_name"], "userpass-alice");
    assert_eq!(me["data"]["explicit_max_ttl"], 8 * 3600);
    assert_eq!(me["data"]["meta"]["mfa"], "true");
    assert_eq!(
        s.call(
            "POST",
            "secret/data/teams/payments/api",
            Some(&alice),
            Some(json!({"data": {"k": "v"}}))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.call("GET", "secret/data/teams/payments/api", Some(&alice), None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.call("GET", "secret/data/teams/search/api", Some(&alice), None)
            .await
            .0,
        403
    );

    // Single step: the totp field, and the X-Vault-MFA header with a recovery code.
    let (st, one) = login(
        &s,
        "alice",
        json!({"password": PW, "totp": code(&secret, 1)}),
    )
    .await;
    assert_eq!(st, 200, "{one}");
    assert!(one["auth"]["client_token"]
        .as_str()
        .unwrap()
        .starts_with("hvs."));
    let header_login = |c: String| {
        s.http
            .post(format!("{}/v1/auth/userpass/login/alice", s.addr))
            .header("X-Vault-MFA", format!("{method}:{c}"))
            .json(&json!({"password": PW}))
            .send()
    };
    let resp = header_login(recovery[0].clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .starts_with("hvs."),
        "{body}"
    );
    assert_eq!(
        header_login(recovery[0].clone())
            .await
            .unwrap()
            .status()
            .as_u16(),
        403,
        "a recovery code works once"
    );

    // Wrong password and unknown user look alike.
    let (st, wrong_pw) = login(&s, "alice", json!({"password": "not the password"})).await;
    let (st2, unknown) = login(&s, "nobody", json!({"password": PW})).await;
    assert_eq!((st, st2), (400, 400));
    assert_eq!(wrong_pw, unknown);

    // Five failures lock the user; unlocking lets them in again. (A success
    // first, which clears the counter of the failures above.)
    assert_eq!(
        login(&s, "alice", json!({"password": PW, "totp": recovery[3]}))
            .await
            .0,
        200
    );
    for _ in 0..5 {
        assert_eq!(
            login(&s, "alice", json!({"password": PW, "totp": "not-a-code"}))
                .await
                .0,
            403
        );
    }
    let (st, body) = login(&s, "alice", json!({"password": PW, "totp": recovery[1]})).await;
    assert_eq!(st, 403, "locked after 5 failures: {body}");
    assert!(body["errors"][0].as_str().unwrap().contains("locked"));
    let (_, locked) = s.call("GET", "sys/locked-users", r, None).await;
    assert_eq!(
        locked["data"]["by_namespace"][0]["mount_accessors"][0]["alias_identifiers"],
        json!(["alice"])
    );
    assert_eq!(
        s.call(
            "POST",
            &format!("sys/locked-users/{accessor}/unlock/alice"),
            r,
            None
        )
        .await
        .0,
        204
    );
    let (st, body) = login(&s, "alice", json!({"password": PW, "totp": recovery[1]})).await;
    assert_eq!(st, 200, "{body}");

    // Turning the second factor off needs sudo.
    s.call("PUT", "sys/policies/acl/up-admin", r, Some(json!({"policy": "path \"auth/userpass/*\" { capabilities = [\"create\", \"read\", \"update\"] }"}))).await;
    let (_, admin) = s
        .call(
            "POST",
            "auth/token/create",
            r,
            Some(json!({"policies": ["up-admin"]})),
        )
        .await;
    let admin = admin["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/config",
            Some(&admin),
            Some(json!({"require_mfa": false}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/dave",
            Some(&admin),
            Some(json!({"password": PW}))
        )
        .await
        .0,
        204
    );

    // Re-enrolment needs a current code; an admin reset reopens enrolment and
    // blocks logins until the user enrols again.
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/erin",
            r,
            Some(json!({"password": ADMIN_PW}))
        )
        .await
        .0,
        204
    );
    let erin = enrol(&s, &root, "erin", ADMIN_PW, PW).await.secret;
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/totp/enroll/erin",
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(
        st, 400,
        "re-enrolment without a token or a current code: {body}"
    );
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("an enrollment token is required"),
        "{body}"
    );
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/totp/enroll/erin",
            None,
            Some(json!({"password": PW, "code": code(&erin, 0)})),
        )
        .await;
    assert_eq!(st, 200, "re-enrolment with a current code: {body}");
    assert_eq!(
        s.call("DELETE", "auth/userpass/users/erin/totp", r, None)
            .await
            .0,
        204
    );
    let (st, body) = login(&s, "erin", json!({"password": PW})).await;
    assert_eq!(st, 403, "no factor after an admin reset: {body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/totp/enroll/erin",
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(st, 400, "after a reset, enrolment needs a token: {body}");
    enrol(&s, &root, "erin", PW, "erin's own new password").await;

    // token_bound_cidrs: a login from outside the networks is refused.
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/alice",
            r,
            Some(json!({"token_bound_cidrs": ["10.0.0.0/8"]}))
        )
        .await
        .0,
        204
    );
    let (st, body) = login(&s, "alice", json!({"password": PW, "totp": recovery[4]})).await;
    assert_eq!(st, 403, "login from 127.0.0.1 outside 10.0.0.0/8: {body}");
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/users/alice",
            r,
            Some(json!({"token_bound_cidrs": ["127.0.0.0/8"]}))
        )
        .await
        .0,
        204
    );
    let (st, body) = login(&s, "alice", json!({"password": PW, "totp": recovery[5]})).await;
    assert_eq!(st, 200, "{body}");
    let bound = body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&bound), None)
            .await
            .0,
        200,
        "usable from 127.0.0.1"
    );

    // Rate limit per client address: 429 with Retry-After.
    assert_eq!(
        s.call(
            "POST",
            "auth/userpass/config",
            r,
            Some(json!({"login_rate_per_minute": 1}))
        )
        .await
        .0,
        204
    );
    let mut limited = None;
    for _ in 0..3 {
        let resp = s
            .http
            .post(format!("{}/v1/auth/userpass/login/carol", s.addr))
            .json(&json!({"password": PW}))
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 429 {
            limited = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert!(
        limited.is_some_and(|v| v.parse::<u64>().unwrap() > 0),
        "429 with Retry-After"
    );

    // Nothing secret in the log: password, TOTP secret, codes, tokens.
    let log = s.log();
    for needle in [
        PW,
        url.as_str(),
        alice.as_str(),
        recovery[0].as_str(),
        recovery[2].as_str(),
    ] {
        assert!(
            !log.contains(needle),
            "{needle:?} appears in the server log"
        );
    }
    assert!(!log_has_code(&log, &now_code), "a TOTP code in the log");
}

#[tokio::test]
async fn userpass_with_totp_sqlite() {
    flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn userpass_with_totp_postgres() {
    flow(Backend::Postgres).await;
}

async fn with_userpass(backend: Backend) -> Option<(TestServer, String)> {
    let s = TestServer::start(backend).await?;
    let (_, root) = s.ready().await;
    let (st, body) = s
        .call(
            "POST",
            "sys/auth/userpass",
            Some(&root),
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/bob",
            Some(&root),
            Some(json!({"password": ADMIN_PW, "token_policies": ["developer"]})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    Some((s, root))
}

async fn enroll(s: &TestServer, body: Value) -> (u16, Value) {
    s.call("POST", "auth/userpass/totp/enroll/bob", None, Some(body))
        .await
}

async fn confirm(s: &TestServer, body: Value) -> (u16, Value) {
    s.call("POST", "auth/userpass/totp/confirm/bob", None, Some(body))
        .await
}

fn error(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_owned()
}

/// The admin who created bob never holds a working password and factor: the
/// first factor needs an enrolment token, the admin's password is replaced
/// during enrolment, and the token works once and expires.
#[tokio::test]
async fn first_factor_needs_a_one_time_enrollment_token() {
    let Some((s, root)) = with_userpass(Backend::Sqlite).await else {
        return;
    };
    if seconds_left_in_step() < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    // This test makes more deliberate mistakes than the lockout allows.
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/config",
            Some(&root),
            Some(json!({"lockout_threshold": 20})),
        )
        .await;
    assert!(st == 200 || st == 204, "{body}");
    // Without a token: refused before any password is checked.
    let (st, body) = enroll(&s, json!({"password": ADMIN_PW})).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        error(&body).contains("an enrollment token is required"),
        "{body}"
    );
    // Only a token that may update users issues one.
    let (_, child) = s
        .call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({"policies": ["default"]})),
        )
        .await;
    let child = child["auth"]["client_token"].as_str().unwrap().to_owned();
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/bob/enrollment-token",
            Some(&child),
            None,
        )
        .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/nobody/enrollment-token",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(st, 404, "{body}");
    let (st, issued) = s
        .call(
            "POST",
            "auth/userpass/users/bob/enrollment-token",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(st, 200, "{issued}");
    assert_eq!(issued["data"]["ttl"], 3600, "one hour by default");
    assert!(issued["data"]["expires_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let token = issued["data"]["enrollment_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Wrong token, same password, missing new password.
    let (st, body) = enroll(
        &s,
        json!({"enrollment_token": "cet.wrong", "password": ADMIN_PW, "new_password": PW}),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = enroll(
        &s,
        json!({"enrollment_token": token, "password": ADMIN_PW, "new_password": ADMIN_PW}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(error(&body).contains("new_password"), "{body}");
    let (st, body) = enroll(&s, json!({"enrollment_token": token, "password": ADMIN_PW})).await;
    assert_eq!(st, 400, "{body}");
    assert!(error(&body).contains("new_password"), "{body}");
    let (st, body) = enroll(
        &s,
        json!({"enrollment_token": token, "password": "not the password", "new_password": PW}),
    )
    .await;
    assert_eq!(st, 400, "wrong current password: {body}");

    let (st, enrolled) = enroll(
        &s,
        json!({"enrollment_token": token, "password": ADMIN_PW, "new_password": PW}),
    )
    .await;
    assert_eq!(st, 200, "{enrolled}");
    assert_eq!(
        enrolled["data"]["recovery_codes"].as_array().unwrap().len(),
        10
    );
    assert!(enrolled["data"]["barcode"].as_str().unwrap().len() > 100);
    let secret = coffer_tests::totp::secret_from_url(enrolled["data"]["url"].as_str().unwrap());

    // Nothing takes effect before confirm: the new password does not work yet.
    let (st, body) = login(&s, "bob", json!({"password": PW})).await;
    assert_eq!(st, 400, "new password before confirm: {body}");
    // Confirm wants the new password; the admin's is refused.
    let (st, body) = confirm(
        &s,
        json!({"enrollment_token": token, "password": ADMIN_PW, "code": code(&secret, -1)}),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = confirm(&s, json!({"password": PW, "code": code(&secret, -1)})).await;
    assert_eq!(st, 400, "confirm without the token: {body}");
    let (st, body) = confirm(
        &s,
        json!({"enrollment_token": token, "password": PW, "code": code(&secret, -1)}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["data"]["recovery_codes"], enrolled["data"]["recovery_codes"],
        "the codes shown at enrolment are the ones now active"
    );

    // Spent: neither enrol nor confirm accept it again.
    let (st, body) = confirm(
        &s,
        json!({"enrollment_token": token, "password": PW, "code": code(&secret, 0)}),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = enroll(
        &s,
        json!({"enrollment_token": token, "password": PW, "new_password": "yet another one"}),
    )
    .await;
    assert_eq!(st, 403, "{body}");
    // The admin's password is dead; the user's new one and factor log in.
    let (st, body) = login(&s, "bob", json!({"password": ADMIN_PW})).await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = login(&s, "bob", json!({"password": PW, "totp": code(&secret, 0)})).await;
    assert_eq!(st, 200, "{body}");

    // Tokens expire.
    let (_, short) = s
        .call(
            "POST",
            "auth/userpass/users/bob/enrollment-token",
            Some(&root),
            Some(json!({"ttl": "1s"})),
        )
        .await;
    assert_eq!(short["data"]["ttl"], 1, "{short}");
    let short = short["data"]["enrollment_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, body) = enroll(
        &s,
        json!({"enrollment_token": short, "password": PW, "new_password": "a fresh password"}),
    )
    .await;
    assert_eq!(st, 403, "expired: {body}");
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/bob/enrollment-token",
            Some(&root),
            Some(json!({"ttl": "1000h"})),
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert!(!s.log().contains(&token), "the enrolment token in the log");
}

/// Many confirms with one enrolment token at once: exactly one activates.
async fn one_token_confirms_once(backend: Backend) {
    let Some((s, root)) = with_userpass(backend).await else {
        return;
    };
    if seconds_left_in_step() < 15 {
        tokio::time::sleep(std::time::Duration::from_secs(seconds_left_in_step() + 1)).await;
    }
    let token = coffer_tests::totp::enrollment_token(&s, &root, "bob").await;
    let (st, enrolled) = enroll(
        &s,
        json!({"enrollment_token": token, "password": ADMIN_PW, "new_password": PW}),
    )
    .await;
    assert_eq!(st, 200, "{enrolled}");
    let secret = coffer_tests::totp::secret_from_url(enrolled["data"]["url"].as_str().unwrap());
    let body = json!({"enrollment_token": token, "password": PW, "code": code(&secret, 0)});
    const N: usize = 24;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (http, url, body, gate) = (
            s.http.clone(),
            format!("{}/v1/auth/userpass/totp/confirm/bob", s.addr),
            body.clone(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let req = http.post(url).json(&body);
            gate.wait().await;
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }));
    }
    let mut wins = 0;
    for t in tasks {
        let (st, text) = t.await.unwrap();
        match st {
            200 => wins += 1,
            400 | 403 | 429 | 503 => {}
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert_eq!(wins, 1, "one enrolment token confirmed {wins} times");
    let (st, body) = login(&s, "bob", json!({"password": PW, "totp": code(&secret, 1)})).await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn one_enrollment_token_confirms_once_sqlite() {
    one_token_confirms_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn one_enrollment_token_confirms_once_postgres() {
    one_token_confirms_once(Backend::Postgres).await;
}

/// A user carries the whole set of token parameters (auth/tokenutil.rs): a read
/// returns every one in Vault's types, a bad one is refused naming its field
/// and changes nothing, and a login's token gets them.
#[tokio::test]
async fn a_user_carries_every_token_parameter() {
    let s = TestServer::start_dev("tokenutil-root").await;
    let r = Some("tokenutil-root");
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let s = &s;
        async move { s.call(method, &path, r, body).await }
    };
    assert_eq!(
        call(
            "POST",
            "sys/auth/userpass".into(),
            Some(json!({"type": "userpass"}))
        )
        .await
        .0,
        204
    );
    // Logins here need no second factor: what is checked is the token they make.
    let (st, body) = call(
        "POST",
        "auth/userpass/config".into(),
        Some(json!({"require_mfa": false})),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (st, body) = call(
        "POST",
        "auth/userpass/users/tp".into(),
        Some(json!({
            "password": PW,
            "token_policies": "dev, ops",
            "token_ttl": "10m",
            "token_max_ttl": 3600,
            "token_explicit_max_ttl": "30m",
            "token_num_uses": "5",
            "token_bound_cidrs": ["127.0.0.0/8", "::1"],
            "token_no_default_policy": true,
            "token_type": "service",
        })),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (st, read) = call("GET", "auth/userpass/users/tp".into(), None).await;
    assert_eq!(st, 200, "{read}");
    let want = json!({
        "token_policies": ["dev", "ops"],
        "token_ttl": 600,
        "token_max_ttl": 3600,
        "token_explicit_max_ttl": 1800,
        "token_period": 0,
        "token_num_uses": 5,
        "token_bound_cidrs": ["127.0.0.0/8", "::1"],
        "token_no_default_policy": true,
        "token_type": "service",
        "token_strictly_bind_ip": false,
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&read["data"][k], v, "{k}: {read}");
    }

    // Refused, naming the field; the stored user is unchanged.
    for (body, field) in [
        (json!({"token_type": "batch"}), "token_type"),
        (json!({"token_num_uses": -1}), "token_num_uses"),
        (json!({"token_period": "soon"}), "token_period"),
        (
            json!({"token_bound_cidrs": "10.0.0.0/99"}),
            "token_bound_cidrs",
        ),
        (json!({"token_ttl": "2h"}), "token_max_ttl"),
    ] {
        let (st, answer) = call("POST", "auth/userpass/users/tp".into(), Some(body.clone())).await;
        assert_eq!(st, 400, "{body}: {answer}");
        assert!(
            answer["errors"][0].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    let (_, again) = call("GET", "auth/userpass/users/tp".into(), None).await;
    assert_eq!(again["data"], read["data"]);

    // The login's token.
    let (st, login) = s
        .call(
            "POST",
            "auth/userpass/login/tp",
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(st, 200, "{login}");
    let auth = &login["auth"];
    assert_eq!(
        auth["policies"],
        json!(["dev", "ops"]),
        "no default: {auth}"
    );
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!(auth["num_uses"], 5);
    let token = auth["client_token"].as_str().unwrap().to_owned();
    // Without the default policy the token cannot even look itself up.
    let (st, _) = s
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(st, 403);
    let (st, me) = call(
        "POST",
        "auth/token/lookup".into(),
        Some(json!({ "token": token })),
    )
    .await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["data"]["explicit_max_ttl"], 1800, "{me}");
    assert_eq!(
        me["data"]["num_uses"], 5,
        "a denied request spends no use: {me}"
    );

    // A periodic user's token gets the period as its TTL.
    let (st, body) = call(
        "POST",
        "auth/userpass/users/tp".into(),
        Some(json!({"token_period": "5m", "token_num_uses": 0})),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (_, login) = s
        .call(
            "POST",
            "auth/userpass/login/tp",
            None,
            Some(json!({"password": PW})),
        )
        .await;
    assert_eq!(login["auth"]["lease_duration"], 300, "{login}");
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let (_, me) = call(
        "POST",
        "auth/token/lookup".into(),
        Some(json!({ "token": token })),
    )
    .await;
    assert_eq!(me["data"]["period"], 300, "{me}");
    assert_eq!(me["data"]["explicit_max_ttl"], 1800, "{me}");

    // Legacy names are accepted, and shown on read while used.
    let (st, body) = call(
        "POST",
        "auth/userpass/users/legacy".into(),
        Some(json!({"password": PW, "policies": "a,b", "ttl": "2m", "max_ttl": "4m"})),
    )
    .await;
    assert_eq!(st, 204, "{body}");
    let (_, old) = call("GET", "auth/userpass/users/legacy".into(), None).await;
    assert_eq!(
        [
            &old["data"]["token_policies"],
            &old["data"]["policies"],
            &old["data"]["ttl"],
            &old["data"]["token_max_ttl"]
        ],
        [
            &json!(["a", "b"]),
            &json!(["a", "b"]),
            &json!(120),
            &json!(240)
        ],
        "{old}"
    );
    let (st, _) = call(
        "POST",
        "auth/userpass/users/legacy/policies".into(),
        Some(json!({"token_policies": ["c"]})),
    )
    .await;
    assert_eq!(st, 204);
    let (_, new) = call("GET", "auth/userpass/users/legacy".into(), None).await;
    assert_eq!(new["data"]["token_policies"], json!(["c"]));
    assert!(new["data"].get("policies").is_none(), "{new}");
}
