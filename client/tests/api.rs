//! The library against a local stub server: methods, paths, headers and bodies that go
//! out, and how answers (204, 404 with and without body, errors, health states) come back.

// Test helpers outside #[test] fns may panic: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffer_client::{Client, ClientError, EnrollAuth, TokenCreateRequest, Ttl};
use serde_json::json;

const TOKEN: &str = "hvs.TEST-TOKEN-123";

fn client(stub: &common::Stub) -> Client {
    Client::new(&format!("{}/", stub.addr))
        .unwrap()
        .with_token(TOKEN)
}

#[tokio::test]
async fn list_uses_list_method_and_sends_token_headers() {
    let stub = common::start_fixed(200, r#"{"data":{"keys":["a","b/"]}}"#).await;
    let keys = client(&stub).kv_list("secret", "app").await.unwrap();
    assert_eq!(keys, ["a", "b/"]);
    let req = stub.only_request();
    assert_eq!(req.method, "LIST");
    assert_eq!(req.target, "/v1/secret/metadata/app");
    assert_eq!(req.header("x-vault-token"), Some(TOKEN));
    assert_eq!(req.header("x-vault-request"), Some("true"));
}

#[tokio::test]
async fn list_of_nothing_is_empty() {
    let stub = common::start_fixed(404, r#"{"errors":[]}"#).await;
    assert!(client(&stub)
        .kv_list("secret", "")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(stub.only_request().target, "/v1/secret/metadata");
}

#[tokio::test]
async fn no_token_header_without_token() {
    let stub = common::start_fixed(
        200,
        r#"{"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,"progress":2}"#,
    )
    .await;
    let status = Client::new(&stub.addr)
        .unwrap()
        .seal_status()
        .await
        .unwrap();
    assert!(status.sealed);
    assert_eq!((status.t, status.n, status.progress), (3, 5, 2));
    assert_eq!(status.raw()["progress"], 2);
    let req = stub.only_request();
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("GET", "/v1/sys/seal-status")
    );
    assert_eq!(req.header("x-vault-token"), None);
    assert_eq!(req.header("x-vault-request"), Some("true"));
}

#[tokio::test]
async fn kv_get_sends_version_and_parses_data() {
    let stub = common::start_fixed(
        200,
        r#"{"request_id":"r","data":{"data":{"user":"admin"},"metadata":{"created_time":"t","custom_metadata":null,"deletion_time":"","destroyed":false,"version":2}}}"#,
    )
    .await;
    let s = client(&stub)
        .kv_get("secret", "app/db", Some(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.data.as_ref().unwrap()["user"], "admin");
    assert_eq!(s.metadata.version, 2);
    assert!(!s.is_deleted());
    assert_eq!(s.raw()["request_id"], "r");
    let req = stub.only_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, "/v1/secret/data/app/db?version=2");
}

#[tokio::test]
async fn kv_get_missing_deleted_and_forbidden() {
    let stub = common::start_fixed(404, r#"{"errors":[]}"#).await;
    assert!(client(&stub)
        .kv_get("secret", "nope", None)
        .await
        .unwrap()
        .is_none());

    let stub = common::start_fixed(
        404,
        r#"{"data":{"data":null,"metadata":{"created_time":"t","deletion_time":"t2","destroyed":false,"version":3}}}"#,
    )
    .await;
    let s = client(&stub)
        .kv_get("secret", "gone", None)
        .await
        .unwrap()
        .unwrap();
    assert!(s.is_deleted() && s.data.is_none());
    assert_eq!(s.metadata.version, 3);

    let stub = common::start_fixed(403, r#"{"errors":["permission denied"]}"#).await;
    let err = client(&stub).kv_get("secret", "x", None).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Api { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "permission denied (403)");
    assert!(!format!("{err} {err:?}").contains(TOKEN));
}

#[tokio::test]
async fn kv_put_and_patch_bodies() {
    let stub = common::start_fixed(200, r#"{"data":{"version":4,"created_time":"t"}}"#).await;
    let c = client(&stub);
    let put = c
        .kv_put("secret", "a", &json!({"k": "v"}), None)
        .await
        .unwrap();
    assert_eq!(put.data_field("version"), Some(&json!(4)));
    c.kv_patch("kv", "a", &json!({"k": null}), Some(4))
        .await
        .unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/v1/secret/data/a");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(reqs[0].json(), json!({"data": {"k": "v"}}));
    assert_eq!(reqs[1].method, "PATCH");
    assert_eq!(reqs[1].target, "/v1/kv/data/a");
    assert_eq!(
        reqs[1].header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        reqs[1].json(),
        json!({"data": {"k": null}, "options": {"cas": 4}})
    );
}

#[tokio::test]
async fn kv_delete_latest_vs_versions_and_destroy() {
    let stub = common::start_fixed(204, "").await;
    let c = client(&stub);
    c.kv_delete("secret", "a", &[]).await.unwrap();
    c.kv_delete("secret", "a", &[1, 2]).await.unwrap();
    c.kv_undelete("secret", "a", &[2]).await.unwrap();
    c.kv_destroy("secret", "a", &[1]).await.unwrap();
    assert!(c.kv_destroy("secret", "a", &[]).await.is_err());
    let reqs = stub.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("DELETE", "/v1/secret/data/a"),
            ("POST", "/v1/secret/delete/a"),
            ("POST", "/v1/secret/undelete/a"),
            ("POST", "/v1/secret/destroy/a"),
        ]
    );
    assert_eq!(reqs[1].json(), json!({"versions": [1, 2]}));
    assert_eq!(reqs[3].json(), json!({"versions": [1]}));
}

#[tokio::test]
async fn generic_calls_and_raw_request() {
    let stub = common::start(|req| match req.method.as_str() {
        "DELETE" => (204, String::new()),
        _ => (200, r#"{"data":{"ok":true}}"#.to_string()),
    })
    .await;
    let c = client(&stub);
    assert!(c.delete("sys/thing").await.unwrap().is_none());
    let read = c.read("sys/thing").await.unwrap().unwrap();
    assert_eq!(read.data_field("ok"), Some(&json!(true)));
    let resp = c
        .request(
            reqwest::Method::PUT,
            "custom/path",
            &[("a", "1 2")],
            Some(&json!({"x": 1})),
            &[("X-Extra", "yes")],
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let reqs = stub.requests();
    assert_eq!(reqs[2].target, "/v1/custom/path?a=1+2");
    assert_eq!(reqs[2].header("x-extra"), Some("yes"));
    assert_eq!(reqs[2].json(), json!({"x": 1}));
}

#[tokio::test]
async fn health_states_are_answers_not_errors() {
    let stub = common::start_fixed(503, r#"{"initialized":true,"sealed":true,"standby":false,"server_time_utc":1,"version":"0.1.0"}"#).await;
    let h = client(&stub).health().await.unwrap();
    assert_eq!(h.status, 503);
    assert!(h.sealed && h.initialized);
    let stub = common::start_fixed(500, r#"{"errors":["boom"]}"#).await;
    let err = client(&stub).health().await.unwrap_err();
    assert_eq!(err.to_string(), "boom (500)");
}

#[tokio::test]
async fn init_unseal_seal() {
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/sys/init" => (
            200,
            r#"{"keys":["aa"],"keys_base64":["qg=="],"root_token":"hvs.ROOT"}"#.into(),
        ),
        "/v1/sys/seal" => (204, String::new()),
        _ => (
            200,
            r#"{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1,"progress":0}"#
                .into(),
        ),
    })
    .await;
    let c = client(&stub);
    let init = c.init(1, 1).await.unwrap();
    assert_eq!(init.root_token, "hvs.ROOT");
    assert!(!format!("{init:?}").contains("hvs.ROOT"));
    assert!(!c.unseal("qg==").await.unwrap().sealed);
    c.unseal_reset().await.unwrap();
    c.seal().await.unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(
        reqs[0].json(),
        json!({"secret_shares": 1, "secret_threshold": 1})
    );
    assert_eq!(reqs[1].json(), json!({"key": "qg=="}));
    assert_eq!(reqs[2].json(), json!({"reset": true}));
    assert_eq!(
        (reqs[3].method.as_str(), reqs[3].target.as_str()),
        ("PUT", "/v1/sys/seal")
    );
}

#[tokio::test]
async fn token_calls_send_tokens_in_bodies() {
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/auth/token/revoke" | "/v1/auth/token/revoke-self" | "/v1/auth/token/revoke-accessor" => {
            (204, String::new())
        }
        _ => (
            200,
            r#"{"data":{"id":"x"},"auth":{"client_token":"hvs.CHILD","accessor":"acc","policies":["default"],"lease_duration":3600,"renewable":true}}"#.into(),
        ),
    })
    .await;
    let c = client(&stub);
    let created = c
        .token_create(&TokenCreateRequest {
            policies: vec!["default".into()],
            ttl: Some(Ttl::parse("1h")),
            ..Default::default()
        })
        .await
        .unwrap();
    let auth = created.auth.as_ref().unwrap();
    assert_eq!(auth.client_token.expose(), "hvs.CHILD");
    assert!(!format!("{created:?}").contains("hvs.CHILD"));
    c.token_create(&json!({"policies": ["p"]})).await.unwrap();
    c.token_lookup_self().await.unwrap();
    c.token_lookup("hvs.OTHER").await.unwrap();
    c.token_lookup_accessor("acc").await.unwrap();
    c.token_renew_self(Some(Ttl::Seconds(60))).await.unwrap();
    c.token_renew("hvs.OTHER", None).await.unwrap();
    c.token_revoke("hvs.OTHER").await.unwrap();
    c.token_revoke_self().await.unwrap();
    c.token_revoke_accessor("acc").await.unwrap();
    let reqs = stub.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v1/auth/token/create"),
            ("POST", "/v1/auth/token/create"),
            ("GET", "/v1/auth/token/lookup-self"),
            ("POST", "/v1/auth/token/lookup"),
            ("POST", "/v1/auth/token/lookup-accessor"),
            ("POST", "/v1/auth/token/renew-self"),
            ("POST", "/v1/auth/token/renew"),
            ("POST", "/v1/auth/token/revoke"),
            ("POST", "/v1/auth/token/revoke-self"),
            ("POST", "/v1/auth/token/revoke-accessor"),
        ]
    );
    assert_eq!(
        reqs[0].json(),
        json!({"policies": ["default"], "ttl": "1h"})
    );
    assert_eq!(reqs[3].json(), json!({"token": "hvs.OTHER"}));
    assert_eq!(reqs[4].json(), json!({"accessor": "acc"}));
    assert_eq!(reqs[5].json(), json!({"increment": 60}));
    assert_eq!(reqs[6].json(), json!({"token": "hvs.OTHER"}));
    assert!(reqs.iter().all(|r| !r.target.contains("hvs.")));
}

#[tokio::test]
async fn non_json_error_and_transport_error() {
    let stub = common::start_fixed(502, "upstream down").await;
    let err = client(&stub).read("sys/x").await.unwrap_err();
    assert_eq!(err.to_string(), "upstream down (502)");

    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Client::new(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_token(TOKEN);
    let err = c.seal_status().await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot connect to server at http://127.0.0.1:"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN));
}

#[tokio::test]
async fn redirects_followed_only_within_the_same_origin() {
    // Another port is another origin: the token must not be carried there.
    let other = common::start_fixed(200, r#"{"data":{}}"#).await;
    let target = format!("{}/v1/sys/x", other.addr);
    let stub = common::start(move |_| (307, target.clone())).await;
    let err = client(&stub).read("sys/x").await.unwrap_err();
    assert_eq!(err.status(), Some(307));
    assert!(other.requests().is_empty());

    // Same origin: followed, token still sent.
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/sys/old" => (307, "/v1/sys/new".to_string()),
        _ => (200, r#"{"data":{"moved":true}}"#.to_string()),
    })
    .await;
    let read = client(&stub).read("sys/old").await.unwrap().unwrap();
    assert_eq!(read.data_field("moved"), Some(&json!(true)));
    let reqs = stub.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].target, "/v1/sys/new");
    assert_eq!(reqs[1].header("x-vault-token"), Some(TOKEN));
}

const MFA_REQUIRED: &str = r#"{"request_id":"r","auth":{"client_token":"","accessor":"","policies":null,
 "mfa_requirement":{"mfa_request_id":"5f1c-req","mfa_constraints":{"totp":{"any":[
 {"type":"totp","id":"m-totp-1","uses_passcode":true}]}}}}}"#;
const USER_AUTH: &str = r#"{"request_id":"r2","auth":{"client_token":"hvs.USER-TOKEN","accessor":"acc-u",
 "policies":["default","dev"],"token_policies":["default","dev"],
 "metadata":{"username":"alice","mfa":"true"},"lease_duration":3600,"renewable":true,"entity_id":"e1"}}"#;

#[tokio::test]
async fn userpass_login_without_code_returns_mfa_requirement() {
    let stub = common::start_fixed(200, MFA_REQUIRED).await;
    let c = Client::new(&stub.addr).unwrap();
    let outcome = c
        .login_userpass("userpass", "alice", "pw-Hunter2!")
        .await
        .unwrap();
    let coffer_client::LoginOutcome::MfaRequired {
        request_id,
        method_id,
    } = outcome
    else {
        panic!("expected an MFA requirement: {outcome:?}");
    };
    assert_eq!(request_id, "5f1c-req");
    assert_eq!(method_id, "m-totp-1");
    let req = stub.only_request();
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("POST", "/v1/auth/userpass/login/alice")
    );
    assert_eq!(req.json(), json!({"password": "pw-Hunter2!"}));
    assert_eq!(req.header("x-vault-token"), None);
}

#[tokio::test]
async fn userpass_login_with_code_and_mfa_validate() {
    let stub = common::start_fixed(200, USER_AUTH).await;
    let c = Client::new(&stub.addr).unwrap();
    let outcome = c
        .login_userpass_with_code("corp/up", "bob smith", "pw", "123456")
        .await
        .unwrap();
    let coffer_client::LoginOutcome::Token(auth) = outcome else {
        panic!("expected a token");
    };
    assert_eq!(auth.client_token.expose(), "hvs.USER-TOKEN");
    assert_eq!(auth.policies, ["default", "dev"]);
    assert_eq!(auth.metadata["username"], "alice");
    assert_eq!(auth.entity_id, "e1");

    let auth = c
        .mfa_validate("5f1c-req", "m-totp-1", "ABCD-EFGH-IJKL-MNOP")
        .await
        .unwrap();
    assert_eq!(auth.accessor, "acc-u");
    assert_eq!(auth.lease_duration, 3600);

    let reqs = stub.requests();
    assert_eq!(reqs[0].target, "/v1/auth/corp/up/login/bob%20smith");
    assert_eq!(reqs[0].json(), json!({"password": "pw", "totp": "123456"}));
    assert_eq!(reqs[1].target, "/v1/sys/mfa/validate");
    assert_eq!(
        reqs[1].json(),
        json!({"mfa_request_id": "5f1c-req", "mfa_payload": {"m-totp-1": ["ABCD-EFGH-IJKL-MNOP"]}})
    );
}

#[tokio::test]
async fn userpass_errors_wrong_locked_and_rate_limited() {
    let stub =
        common::start_fixed(400, r#"{"errors":["invalid username, password or code"]}"#).await;
    let c = Client::new(&stub.addr).unwrap();
    let err = c
        .login_userpass("userpass", "alice", "nope")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.to_string(), "invalid username, password or code (400)");
    // A username that would change the path never leaves the client.
    let err = c
        .login_userpass("userpass", "../sys", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidPath(_)), "{err:?}");
    assert_eq!(stub.requests().len(), 1);

    let stub = common::start_fixed(403, r#"{"errors":["user is locked out until 10:00"]}"#).await;
    let err = Client::new(&stub.addr)
        .unwrap()
        .mfa_validate("r", "m", "000000")
        .await
        .unwrap_err();
    assert!(err.is_permission_denied());

    let stub = common::start_with_headers(|_| {
        (
            429,
            vec![("Retry-After".into(), "17".into())],
            r#"{"errors":["too many login attempts"]}"#.into(),
        )
    })
    .await;
    let err = Client::new(&stub.addr)
        .unwrap()
        .login_userpass("userpass", "alice", "pw")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::RateLimited {
                retry_after: Some(17),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        err.to_string(),
        "too many login attempts (429); try again in 17s"
    );
}

#[tokio::test]
async fn totp_enroll_and_confirm() {
    let stub = common::start(|req| {
        if req.target.contains("/totp/enroll/") {
            (200, r#"{"data":{"url":"otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXP&issuer=Coffer","barcode":"iVBORw0KGgo=","method_id":"m-totp-1","recovery_codes":["AAAA-BBBB-CCCC-DDDD"]}}"#.into())
        } else {
            (200, r#"{"data":{"recovery_codes":["AAAA-BBBB-CCCC-DDDD","EEEE-FFFF-GGGG-HHHH"]}}"#.into())
        }
    })
    .await;
    let c = Client::new(&stub.addr).unwrap();
    let e = c
        .totp_enroll(
            "userpass",
            "alice",
            "pw",
            EnrollAuth::Token {
                enrollment_token: "cet.t1",
                new_password: "new pw",
            },
        )
        .await
        .unwrap();
    assert!(e.url.starts_with("otpauth://totp/Coffer:alice?secret="));
    assert_eq!(e.barcode_png_base64.as_str(), "iVBORw0KGgo=");
    assert_eq!(e.method_id, "m-totp-1");
    let shown: Vec<&str> = e.recovery_codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(shown, ["AAAA-BBBB-CCCC-DDDD"]);
    assert!(!format!("{e:?}").contains("JBSWY3DPEHPK3PXP"));
    assert!(!format!("{e:?}").contains("AAAA-BBBB"));
    c.totp_enroll("userpass", "alice", "pw", EnrollAuth::CurrentCode("111111"))
        .await
        .unwrap();
    let codes = c
        .totp_confirm("userpass", "alice", "new pw", "222222", Some("cet.t1"))
        .await
        .unwrap();
    let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ["AAAA-BBBB-CCCC-DDDD", "EEEE-FFFF-GGGG-HHHH"]);
    c.totp_confirm("userpass", "alice", "pw", "333333", None)
        .await
        .unwrap();

    let reqs = stub.requests();
    assert_eq!(reqs[0].target, "/v1/auth/userpass/totp/enroll/alice");
    assert_eq!(
        reqs[0].json(),
        json!({"enrollment_token": "cet.t1", "password": "pw", "new_password": "new pw"})
    );
    assert_eq!(reqs[1].json(), json!({"password": "pw", "code": "111111"}));
    assert_eq!(reqs[2].target, "/v1/auth/userpass/totp/confirm/alice");
    assert_eq!(
        reqs[2].json(),
        json!({"enrollment_token": "cet.t1", "password": "new pw", "code": "222222"})
    );
    assert_eq!(reqs[3].json(), json!({"password": "pw", "code": "333333"}));

    // An answer without a usable URL is an error, not an empty enrolment.
    let stub = common::start_fixed(200, r#"{"data":{"barcode":""}}"#).await;
    let err = Client::new(&stub.addr)
        .unwrap()
        .totp_enroll("userpass", "alice", "pw", EnrollAuth::CurrentCode("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn an_admin_issues_an_enrollment_token() {
    let stub = common::start_fixed(
        200,
        r#"{"data":{"enrollment_token":"cet.abc","expires_at":"2026-12-01T10:00:00Z","ttl":3600}}"#,
    )
    .await;
    let mut c = Client::new(&stub.addr).unwrap();
    c.set_token("root");
    let t = c
        .userpass_enrollment_token("userpass", "alice", Some("30m"))
        .await
        .unwrap();
    assert_eq!(t.token.expose(), "cet.abc");
    assert_eq!(t.expires_at, "2026-12-01T10:00:00Z");
    assert!(!format!("{t:?}").contains("cet.abc"));
    let reqs = stub.requests();
    assert_eq!(
        reqs[0].target,
        "/v1/auth/userpass/users/alice/enrollment-token"
    );
    assert_eq!(reqs[0].json(), json!({"ttl": "30m"}));
}
