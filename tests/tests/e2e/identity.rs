//! Signed deploy tokens through the real server, on both backends: a developer
//! token asks for a JWT about itself; a deployment target checks it against the
//! published keys (fetched without a token); rotation keeps old tokens
//! verifiable; introspection tells valid from tampered or foreign tokens.

use base64::Engine as _;
use coffer_tests::{Backend, TestServer};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
use serde_json::{json, Value};

fn verify(jwt: &str, keys: &Value) -> Value {
    let set: JwkSet = serde_json::from_value(keys.clone()).unwrap();
    let header = decode_header(jwt).unwrap();
    let kid = header.kid.unwrap();
    let jwk = set.find(&kid).expect("the token's key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["deploy-target"]);
    decode::<Value>(jwt, &key, &validation).unwrap().claims
}

async fn deploy_tokens(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    for (path, body) in [
        (
            "identity/oidc/config",
            json!({"issuer": "https://coffer.example:8200"}),
        ),
        (
            "identity/oidc/key/deploy",
            json!({"algorithm": "ES256", "rotation_period": "1h", "verification_ttl": "1h", "allowed_client_ids": "*"}),
        ),
        (
            "identity/oidc/role/deploy-app",
            json!({"key": "deploy", "ttl": "5m", "client_id": "deploy-target",
                   "template": "{\"repo\": \"{{identity.token.metadata.repository}}\", \"iss\": \"evil\"}"}),
        ),
        (
            "identity/oidc/role/admin",
            json!({"key": "deploy", "client_id": "deploy-target"}),
        ),
    ] {
        let (st, out) = s.call("POST", path, t, Some(body)).await;
        assert_eq!(st, 204, "{path}: {out}");
    }
    let (_, dev) = s
        .call(
            "POST",
            "auth/token/create",
            t,
            Some(json!({"policies": ["developer"], "meta": {"repository": "acme/web"}})),
        )
        .await;
    let dev_token = dev["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = dev["auth"]["accessor"].as_str().unwrap().to_owned();

    let (st, out) = s
        .call(
            "GET",
            "identity/oidc/token/deploy-app",
            Some(&dev_token),
            None,
        )
        .await;
    assert_eq!(st, 200, "{out}");
    let jwt = out["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(out["data"]["client_id"], "deploy-target");

    // The deployment target needs no token to check it.
    let (st, discovery) = s
        .call(
            "GET",
            "identity/oidc/.well-known/openid-configuration",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{discovery}");
    assert_eq!(
        discovery["issuer"],
        "https://coffer.example:8200/v1/identity/oidc"
    );
    let (st, keys) = s
        .call("GET", "identity/oidc/.well-known/keys", None, None)
        .await;
    assert_eq!(st, 200, "{keys}");
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let claims = verify(&jwt, &keys);
    assert_eq!(
        claims["iss"], "https://coffer.example:8200/v1/identity/oidc",
        "a template cannot set iss"
    );
    assert_eq!(claims["sub"], json!(accessor));
    assert_eq!(claims["repo"], "acme/web");
    assert_eq!(claims["metadata"]["repository"], "acme/web");
    assert!(claims["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("developer")));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    // The private key is nowhere in what the server answers or stores as written.
    assert!(!keys.to_string().contains("\"d\""));

    // Introspection: valid; for another audience not; tampered not.
    let introspect = |token: String, client_id: &str| {
        let body = json!({"token": token, "client_id": client_id});
        let s = &s;
        let root = root.clone();
        async move {
            let (st, out) = s
                .call("POST", "identity/oidc/introspect", Some(&root), Some(body))
                .await;
            assert_eq!(st, 200, "{out}");
            out["data"]["active"].as_bool().unwrap()
        }
    };
    assert!(introspect(jwt.clone(), "deploy-target").await);
    assert!(!introspect(jwt.clone(), "someone-else").await);
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["policies"] = json!(["root"]);
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    assert!(!introspect(parts.join("."), "").await);

    // Rotation: a new signing key; the old one stays published and its tokens valid.
    let (st, _) = s
        .call(
            "POST",
            "identity/oidc/key/deploy/rotate",
            t,
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 204);
    let (_, again) = s
        .call(
            "GET",
            "identity/oidc/token/deploy-app",
            Some(&dev_token),
            None,
        )
        .await;
    let newer = again["data"]["token"].as_str().unwrap().to_owned();
    assert_ne!(
        decode_header(&newer).unwrap().kid,
        decode_header(&jwt).unwrap().kid
    );
    let (_, keys) = s
        .call("GET", "identity/oidc/.well-known/keys", None, None)
        .await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    verify(&jwt, &keys);
    verify(&newer, &keys);
    assert!(introspect(jwt.clone(), "deploy-target").await);

    // The developer tier gets deploy tokens only, and never the keys.
    for (method, path, body) in [
        ("GET", "identity/oidc/token/admin", None),
        ("POST", "identity/oidc/key/deploy/rotate", Some(json!({}))),
        ("GET", "identity/oidc/key/deploy", None),
    ] {
        let (st, _) = s.call(method, path, Some(&dev_token), body).await;
        assert_eq!(st, 403, "{method} {path}");
    }
    let (st, _) = s
        .call("GET", "identity/oidc/token/deploy-app", None, None)
        .await;
    assert_eq!(st, 403, "no token, no deploy token");
}

#[tokio::test]
async fn deploy_tokens_sqlite() {
    deploy_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn deploy_tokens_postgres() {
    deploy_tokens(Backend::Postgres).await;
}

#[tokio::test]
async fn rs256_and_eddsa_keys_sign_verifiable_tokens() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = Some(root.as_str());
    for alg in ["RS256", "EdDSA"] {
        let key = format!("k-{}", alg.to_lowercase());
        let role = format!("r-{}", alg.to_lowercase());
        assert_eq!(
            s.call(
                "POST",
                &format!("identity/oidc/key/{key}"),
                t,
                Some(json!({"algorithm": alg, "allowed_client_ids": "*"}))
            )
            .await
            .0,
            204
        );
        assert_eq!(
            s.call(
                "POST",
                &format!("identity/oidc/role/{role}"),
                t,
                Some(json!({"key": key, "client_id": "deploy-target"}))
            )
            .await
            .0,
            204
        );
        let (st, out) = s
            .call("GET", &format!("identity/oidc/token/{role}"), t, None)
            .await;
        assert_eq!(st, 200, "{alg}: {out}");
        let jwt = out["data"]["token"].as_str().unwrap().to_owned();
        assert_eq!(format!("{:?}", decode_header(&jwt).unwrap().alg), alg);
        let (_, keys) = s
            .call("GET", "identity/oidc/.well-known/keys", None, None)
            .await;
        let claims = verify(&jwt, &keys);
        assert_eq!(claims["aud"], "deploy-target", "{alg}");
    }
    let (st, out) = s
        .call(
            "POST",
            "identity/oidc/key/bad",
            t,
            Some(json!({"algorithm": "HS256"})),
        )
        .await;
    assert_eq!(st, 400, "{out}");
}
