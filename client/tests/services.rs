//! What a service's calls send and how answers come back, against the local stub:
//! cert login (no token, optional `name`), token login (verified with lookup-self),
//! PKI issue, lease renew/revoke (lease id in the body), relogin, and the error kinds
//! of 403 (with the server's message) and 503 (sealed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use coffer_client::{Client, ErrorKind, IssueRequest, Login};
use serde_json::json;

#[tokio::test]
async fn cert_login_sends_no_token_and_the_role_name_and_sets_the_token_for_clones() {
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/auth/cert/login" => (
            200,
            json!({"auth": {"client_token": "hvs.CERT", "accessor": "a", "policies": ["read-only"],
                            "lease_duration": 600, "renewable": true}})
            .to_string(),
        ),
        _ => (200, json!({"data": {}}).to_string()),
    })
    .await;
    let c = Client::new(&stub.addr).unwrap().with_token("hvs.OLD");
    let clone = c.clone();
    let auth = c.login_cert("auth/cert/", Some("payments")).await.unwrap();
    assert_eq!(auth.lease_duration, 600);
    assert_eq!(clone.token().unwrap().expose(), "hvs.CERT");
    c.read("secret/data/x").await.unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].header("x-vault-token"), None);
    assert_eq!(reqs[0].json(), json!({"name": "payments"}));
    assert_eq!(reqs[1].header("x-vault-token"), Some("hvs.CERT"));
    assert!(
        matches!(c.current_login(), Some(Login::Cert { name: Some(n), .. }) if n == "payments")
    );
    // Logging in again repeats the same request.
    c.relogin().await.unwrap();
    assert_eq!(stub.requests()[2].target, "/v1/auth/cert/login");
    // Without a name the body is empty.
    c.login_cert("cert", None).await.unwrap();
    assert_eq!(stub.requests()[3].json(), json!({}));
}

#[tokio::test]
async fn token_login_is_verified_and_cannot_be_repeated() {
    let stub = common::start(|req| match req.header("x-vault-token") {
        Some("hvs.GOOD") => (
            200,
            json!({"data": {"accessor": "acc", "policies": ["default"], "ttl": 120, "renewable": true}})
                .to_string(),
        ),
        _ => (403, json!({"errors": ["permission denied"]}).to_string()),
    })
    .await;
    let c = Client::new(&stub.addr).unwrap();
    let err = c.login_token("hvs.BAD").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.server_messages(), ["permission denied"]);
    assert!(c.token().is_none(), "a refused token is not kept");
    let auth = c.login_token(" hvs.GOOD\n").await.unwrap();
    assert_eq!((auth.lease_duration, auth.accessor.as_str()), (120, "acc"));
    assert_eq!(c.token().unwrap().expose(), "hvs.GOOD");
    assert_eq!(stub.requests()[1].target, "/v1/auth/token/lookup-self");
    let err = c.relogin().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoLogin);
    assert!(!err.to_string().contains("hvs.GOOD"), "{err}");
}

#[tokio::test]
async fn pki_issue_and_leases() {
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/pki/issue/web" => (
            200,
            json!({"lease_id": "pki/issue/web/L1", "lease_duration": 3600, "renewable": true,
                   "data": {"certificate": "CERT", "private_key": "KEY", "private_key_type": "ec",
                            "issuing_ca": "CA", "ca_chain": ["CA"], "serial_number": "0a:0b",
                            "expiration": 1800000000}})
            .to_string(),
        ),
        "/v1/sys/leases/renew" => (
            200,
            json!({"lease_id": "pki/issue/web/L1", "lease_duration": 1800, "renewable": true})
                .to_string(),
        ),
        "/v1/sys/leases/revoke" => (204, String::new()),
        "/v1/pki/ca/pem" => (
            200,
            "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into(),
        ),
        "/v1/pki/crl/pem" => (403, json!({"errors": ["permission denied"]}).to_string()),
        _ => (404, json!({"errors": []}).to_string()),
    })
    .await;
    let c = Client::new(&stub.addr).unwrap().with_token("hvs.T");
    let mut req = IssueRequest::new("api.svc.internal");
    req.uri_sans = Some("spiffe://prod/ns/payments/sa/api".into());
    let issued = c.pki_issue("pki", "web", &req).await.unwrap();
    assert_eq!(issued.private_key.expose(), "KEY");
    assert_eq!(issued.lease_id, "pki/issue/web/L1");
    assert_eq!(issued.serial_number, "0a:0b");
    assert_eq!(
        stub.requests()[0].json(),
        json!({"common_name": "api.svc.internal", "uri_sans": "spiffe://prod/ns/payments/sa/api"})
    );
    let r = c
        .lease_renew(&issued.lease_id, Some(1800.into()))
        .await
        .unwrap();
    assert_eq!(r.lease_duration, 1800);
    c.lease_revoke(&issued.lease_id).await.unwrap();
    let reqs = stub.requests();
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(
        reqs[1].json(),
        json!({"lease_id": "pki/issue/web/L1", "increment": 1800})
    );
    assert_eq!(reqs[2].json(), json!({"lease_id": "pki/issue/web/L1"}));
    assert!(c.pki_issue("pki", "a/b", &req).await.is_err());
    // Non-JSON answers (PEM) are text; errors are errors; nothing there is None.
    let ca = c.pki_ca_pem("pki").await.unwrap().unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let err = c.pki_crl_pem("pki").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(c.pki_ca_pem("other").await.unwrap().is_none());
}

#[tokio::test]
async fn sealed_and_denied_answers_have_kinds() {
    let stub = common::start(|req| match req.target.as_str() {
        "/v1/secret/data/sealed" => (503, json!({"errors": ["Vault is sealed"]}).to_string()),
        "/v1/bad" => (400, json!({"errors": ["missing common_name"]}).to_string()),
        _ => (
            403,
            json!({"errors": ["permission denied: the token is bound to another certificate"]})
                .to_string(),
        ),
    })
    .await;
    let c = Client::new(&stub.addr).unwrap().with_token("hvs.T");
    let err = c.read("secret/data/sealed").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sealed);
    assert!(err.is_transient());
    let err = c.read("secret/data/other").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(
        err.to_string().contains("bound to another certificate"),
        "{err}"
    );
    let err = c.write("bad", &json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
}
