//! The PKI engine through the real server, on both backends: a root, a role
//! for `*.svc.internal` with a SPIFFE URI SAN, EC P-256 and RSA-2048
//! certificates checked with x509-parser (SANs, EKU flags, issuer, validity,
//! key), refusals naming the name, revocation onto the DER CRL, the public
//! reads without a token, the CA key absent from the raw database, and the
//! single-use steps (the one root, the one revocation time) under a race;
//! and an intermediate mount signed by a root mount, signing a CSR.

use std::sync::Arc;

use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};
use x509_parser::prelude::*;

const CONTENDERS: usize = 24;

async fn ok(s: &TestServer, method: &str, path: &str, token: &str, body: Value) -> Value {
    let (status, resp) = s.call(method, path, Some(token), Some(body)).await;
    assert!(
        status == 200 || status == 204,
        "{method} {path}: {status} {resp}"
    );
    resp
}

/// GET without a token: status, content type, body.
async fn public_get(s: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let resp = s
        .http
        .get(format!("{}/v1/{path}", s.addr))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

fn der_of(pem_text: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).unwrap();
    pem.contents
}

/// Every SAN of a certificate, rendered (`DNSName(a)`, `URI(b)`, ...).
fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect()
        })
        .unwrap_or_default()
}

fn role_body(key_type: &str, bits: u32, server: bool) -> Value {
    json!({
        "allowed_domains": "svc.internal",
        "allow_subdomains": true,
        "allowed_uri_sans": "spiffe://prod/ns/*/sa/*",
        "key_type": key_type,
        "key_bits": bits,
        "max_ttl": "72h",
        "server_flag": server,
        "client_flag": true,
    })
}

async fn journey(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = root.as_str();
    ok(&s, "POST", "sys/mounts/pki", t, json!({"type": "pki"})).await;
    // Before a root: the public CA read is empty, as in Vault.
    assert_eq!(public_get(&s, "pki/ca/pem").await.0, 204);

    let gen = ok(
        &s,
        "POST",
        "pki/root/generate/internal",
        t,
        json!({"common_name": "Coffer Test Root", "key_type": "ec", "ttl": "720h"}),
    )
    .await;
    assert!(
        gen["data"].get("private_key").is_none(),
        "internal keeps its key"
    );
    let root_pem = gen["data"]["certificate"].as_str().unwrap().to_owned();
    let root_der = der_of(&root_pem);
    let (_, root_cert) = parse_x509_certificate(&root_der).unwrap();
    assert!(root_cert.is_ca());

    ok(&s, "POST", "pki/roles/svc", t, role_body("ec", 256, true)).await;
    ok(
        &s,
        "POST",
        "pki/roles/svc-rsa",
        t,
        role_body("rsa", 2048, false),
    )
    .await;
    let roles = ok(&s, "LIST", "pki/roles", t, json!({})).await;
    assert_eq!(roles["data"]["keys"], json!(["svc", "svc-rsa"]));

    // An EC P-256 service certificate.
    let issued = ok(
        &s,
        "POST",
        "pki/issue/svc",
        t,
        json!({
            "common_name": "api.svc.internal",
            "alt_names": "alt.svc.internal",
            "uri_sans": "spiffe://prod/ns/payments/sa/api",
            "ip_sans": "10.0.0.7",
            "ttl": "1h",
        }),
    )
    .await;
    let d = &issued["data"];
    assert_eq!(d["private_key_type"], "ec");
    assert_eq!(d["issuing_ca"], json!(root_pem));
    assert_eq!(d["ca_chain"], json!([root_pem]));
    assert!(issued["lease_id"]
        .as_str()
        .unwrap()
        .starts_with("pki/issue/svc/"));
    assert_eq!(
        (
            issued["lease_duration"].clone(),
            issued["renewable"].clone()
        ),
        (json!(3600), json!(false))
    );
    let ec_serial = d["serial_number"].as_str().unwrap().to_owned();
    let ec_key_pem = d["private_key"].as_str().unwrap().to_owned();
    assert!(
        ec_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"),
        "SEC1, as Vault"
    );
    let der = der_of(d["certificate"].as_str().unwrap());
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.raw_serial_as_string(), ec_serial);
    assert_eq!(cert.raw_serial().len(), 20);
    let names = sans(&cert);
    for want in [
        "DNSName(\"api.svc.internal\")",
        "DNSName(\"alt.svc.internal\")",
        "URI(\"spiffe://prod/ns/payments/sa/api\")",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("IPAddress")),
        "{names:?}"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(cert.issuer(), root_cert.subject());
    cert.verify_signature(Some(root_cert.public_key())).unwrap();
    let (nb, na) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    assert_eq!(na - nb, 3600 + 30, "1h plus the 30s back-dating");
    assert_eq!(d["expiration"], json!(na));
    assert!(cert.validity().is_valid());
    assert_eq!(
        cert.public_key()
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok()),
        Some(x509_parser::oid_registry::OID_EC_P256)
    );

    // An RSA-2048 client-only certificate.
    let rsa = ok(
        &s,
        "POST",
        "pki/issue/svc-rsa",
        t,
        json!({"common_name": "batch.svc.internal"}),
    )
    .await;
    assert_eq!(rsa["data"]["private_key_type"], "rsa");
    assert!(rsa["data"]["private_key"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let der = der_of(rsa["data"]["certificate"].as_str().unwrap());
    let (_, rsa_cert) = parse_x509_certificate(&der).unwrap();
    match rsa_cert.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 2048),
        other => panic!("not RSA: {other:?}"),
    }
    let eku = rsa_cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth, "server_flag=false");
    rsa_cert
        .verify_signature(Some(root_cert.public_key()))
        .unwrap();
    // Capped by max_ttl (72h) with Vault's warning.
    let na = rsa_cert.validity().not_after.timestamp();
    let nb = rsa_cert.validity().not_before.timestamp();
    assert_eq!(na - nb, 72 * 3600 + 30);

    // Vault's other answer formats: base64 DER with a PKCS#8 key, and the bundle.
    let der_form = ok(
        &s,
        "POST",
        "pki/issue/svc",
        t,
        json!({"common_name": "der.svc.internal", "format": "der", "private_key_format": "pkcs8"}),
    )
    .await;
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let cert_der = b64(&der_form["data"]["certificate"]);
    assert!(parse_x509_certificate(&cert_der).is_ok());
    assert_eq!(b64(&der_form["data"]["issuing_ca"]), root_der);
    assert_eq!(b64(&der_form["data"]["private_key"])[0], 0x30);
    let bundle = ok(
        &s,
        "POST",
        "pki/issue/svc",
        t,
        json!({"common_name": "bundle.svc.internal", "format": "pem_bundle"}),
    )
    .await;
    let text = bundle["data"]["certificate"].as_str().unwrap();
    assert!(text.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{text}");
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2, "{text}");
    let (status, _) = s
        .call(
            "POST",
            "pki/issue/svc",
            Some(t),
            Some(json!({"common_name": "x.svc.internal", "format": "jwk"})),
        )
        .await;
    assert_eq!(status, 400);

    // Refusals name what is refused.
    let (status, body) = s
        .call(
            "POST",
            "pki/issue/svc",
            Some(t),
            Some(json!({"common_name": "api.evil.com"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        "common name api.evil.com not allowed by this role"
    );
    let (status, body) = s
        .call(
            "POST",
            "pki/issue/svc",
            Some(t),
            Some(json!({"common_name": "a.svc.internal", "uri_sans": "spiffe://dev/ns/a/sa/b"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("spiffe://dev/ns/a/sa/b"),
        "{body}"
    );
    let (status, _) = s
        .call(
            "POST",
            "pki/issue/nope",
            Some(t),
            Some(json!({"common_name": "a.svc.internal"})),
        )
        .await;
    assert_eq!(status, 400);

    // A service's token, with a policy for its one role: it issues there only.
    ok(
        &s,
        "POST",
        "sys/policies/acl/svc-issuer",
        t,
        json!({"policy": "path \"pki/issue/svc\" {\n  capabilities = [\"update\"]\n}\n"}),
    )
    .await;
    let svc = ok(
        &s,
        "POST",
        "auth/token/create",
        t,
        json!({"policies": ["svc-issuer"], "ttl": "10m"}),
    )
    .await;
    let svc = svc["auth"]["client_token"].as_str().unwrap().to_owned();
    let body = json!({"common_name": "svc.svc.internal"});
    assert_eq!(
        s.call("POST", "pki/issue/svc", Some(&svc), Some(body.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        s.call("POST", "pki/issue/svc-rsa", Some(&svc), Some(body.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "pki/roles/svc",
            Some(&svc),
            Some(json!({"allow_any_name": true}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "pki/revoke",
            Some(&svc),
            Some(json!({"serial_number": ec_serial}))
        )
        .await
        .0,
        403
    );

    // Revoke: the serial is on the DER CRL, served without a token.
    let rev = ok(
        &s,
        "POST",
        "pki/revoke",
        t,
        json!({"serial_number": ec_serial}),
    )
    .await;
    assert!(rev["data"]["revocation_time"].as_i64().unwrap() > 0);
    let (status, ct, crl_der) = public_get(&s, "pki/crl").await;
    assert_eq!((status, ct.as_str()), (200, "application/pkix-crl"));
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl_der).unwrap();
    let revoked: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string())
        .collect();
    assert_eq!(revoked, std::slice::from_ref(&ec_serial));
    crl.verify_signature(root_cert.public_key()).unwrap();
    let (status, _, pem) = public_get(&s, "pki/crl/pem").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(pem).unwrap().contains("BEGIN X509 CRL"));

    // Public reads, without a token.
    let (status, ct, body) = public_get(&s, "pki/ca/pem").await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/pem-certificate-chain")
    );
    assert_eq!(String::from_utf8(body).unwrap(), root_pem);
    let (status, _, body) = public_get(&s, "pki/ca").await;
    assert_eq!((status, body), (200, root_der.clone()));
    let (status, body) = s
        .call("GET", &format!("pki/cert/{ec_serial}"), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["revocation_time"],
        rev["data"]["revocation_time"]
    );
    // ...but nothing else.
    assert_eq!(s.call("LIST", "pki/certs", None, None).await.0, 403);
    assert_eq!(s.call("GET", "pki/roles/svc", None, None).await.0, 403);
    assert_eq!(
        s.call(
            "POST",
            "pki/issue/svc",
            None,
            Some(json!({"common_name": "x.svc.internal"}))
        )
        .await
        .0,
        403
    );
    let certs = ok(&s, "LIST", "pki/certs", t, json!({})).await;
    assert!(certs["data"]["keys"]
        .as_array()
        .unwrap()
        .contains(&json!(ec_serial)));

    // The CA private key (an exported root shows it once) and the leaf keys
    // are not in the raw database.
    ok(&s, "POST", "sys/mounts/pki2", t, json!({"type": "pki"})).await;
    let exp = ok(
        &s,
        "POST",
        "pki2/root/generate/exported",
        t,
        json!({"common_name": "Exported Root", "key_type": "ec"}),
    )
    .await;
    let ca_key = exp["data"]["private_key"].as_str().unwrap().to_owned();
    if backend == Backend::Sqlite {
        let raw = s.raw_sqlite_bytes();
        for key in [&ca_key, &ec_key_pem] {
            let (_, pem) = x509_parser::pem::parse_x509_pem(key.as_bytes()).unwrap();
            let b64_line = key.lines().nth(1).unwrap();
            assert!(!raw
                .windows(b64_line.len())
                .any(|w| w == b64_line.as_bytes()));
            assert!(!raw
                .windows(pem.contents.len())
                .any(|w| w == pem.contents.as_slice()));
        }
        let raw_text = String::from_utf8_lossy(&raw);
        assert!(!raw_text.contains("PRIVATE KEY"));
    }
    assert!(!s.log().contains(ca_key.lines().nth(1).unwrap()));
}

#[tokio::test]
async fn pki_journey_sqlite() {
    journey(Backend::Sqlite).await;
}

#[tokio::test]
async fn pki_journey_postgres() {
    journey(Backend::Postgres).await;
}

async fn race(s: &Arc<TestServer>, token: &str, path: &str, body: Value) -> Vec<(u16, Value)> {
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let (s, start, token, path, body) = (
            s.clone(),
            start.clone(),
            token.to_owned(),
            path.to_owned(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.call("POST", &path, Some(&token), Some(body)).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// One root per mount however many ask at once; one revocation time however
/// many revoke at once.
async fn single_use_under_a_race(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let s = Arc::new(s);
    let t = root.as_str();
    ok(&s, "POST", "sys/mounts/pki", t, json!({"type": "pki"})).await;
    let answers = race(
        &s,
        t,
        "pki/root/generate/internal",
        json!({"common_name": "Raced Root", "key_type": "ec"}),
    )
    .await;
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|(st, _)| *st == 200 || *st == 400));
    let (_, _, ca) = public_get(&s, "pki/ca/pem").await;
    assert_eq!(
        json!(String::from_utf8(ca).unwrap()),
        won[0]["data"]["certificate"]
    );

    ok(&s, "POST", "pki/roles/svc", t, role_body("ec", 256, true)).await;
    let issued = ok(
        &s,
        "POST",
        "pki/issue/svc",
        t,
        json!({"common_name": "race.svc.internal"}),
    )
    .await;
    let serial = issued["data"]["serial_number"].as_str().unwrap().to_owned();
    let answers = race(&s, t, "pki/revoke", json!({"serial_number": serial})).await;
    let mut times: Vec<Value> = answers
        .iter()
        .map(|(st, b)| {
            assert_eq!(*st, 200, "{b}");
            b["data"]["revocation_time_rfc3339"].clone()
        })
        .collect();
    times.dedup();
    assert_eq!(
        times.len(),
        1,
        "every revoker sees the first revocation: {times:?}"
    );
    let (_, _, crl_der) = public_get(&s, "pki/crl").await;
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&crl_der).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 1);
}

#[tokio::test]
async fn pki_single_use_under_a_race_sqlite() {
    single_use_under_a_race(Backend::Sqlite).await;
}

#[tokio::test]
async fn pki_single_use_under_a_race_postgres() {
    single_use_under_a_race(Backend::Postgres).await;
}

/// A root mount signs an intermediate mount's CSR; the intermediate issues
/// (and signs a service's CSR) with the whole chain, each link verifying.
async fn intermediate(backend: Backend) {
    let Some(s) = TestServer::start(backend).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let t = root.as_str();
    for m in ["pki-root", "pki-int"] {
        ok(
            &s,
            "POST",
            &format!("sys/mounts/{m}"),
            t,
            json!({"type": "pki"}),
        )
        .await;
    }
    let r = ok(
        &s,
        "POST",
        "pki-root/root/generate/internal",
        t,
        json!({"common_name": "Root", "key_type": "rsa"}),
    )
    .await;
    let root_pem = r["data"]["certificate"].as_str().unwrap().to_owned();
    let csr = ok(
        &s,
        "POST",
        "pki-int/intermediate/generate/internal",
        t,
        json!({"common_name": "Intermediate", "key_type": "ec"}),
    )
    .await;
    let csr = csr["data"]["csr"].as_str().unwrap().to_owned();
    let signed = ok(
        &s,
        "POST",
        "pki-root/root/sign-intermediate",
        t,
        json!({"csr": csr, "common_name": "Intermediate", "ttl": "240h"}),
    )
    .await;
    let int_pem = signed["data"]["certificate"].as_str().unwrap().to_owned();
    ok(
        &s,
        "POST",
        "pki-int/intermediate/set-signed",
        t,
        json!({"certificate": format!("{int_pem}\n{root_pem}")}),
    )
    .await;
    let (_, _, chain) = public_get(&s, "pki-int/ca_chain").await;
    let chain = String::from_utf8(chain).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");

    ok(
        &s,
        "POST",
        "pki-int/roles/svc",
        t,
        role_body("ec", 256, true),
    )
    .await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["web.svc.internal".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "web.svc.internal");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let leaf = ok(
        &s,
        "POST",
        "pki-int/sign/svc",
        t,
        json!({"csr": csr, "ttl": "1h"}),
    )
    .await;
    assert!(leaf["data"].get("private_key").is_none());
    assert_eq!(leaf["data"]["ca_chain"].as_array().unwrap().len(), 2);
    let der = |p: &Value| der_of(p.as_str().unwrap());
    let (leaf_der, int_der, root_der) = (
        der(&leaf["data"]["certificate"]),
        der_of(&int_pem),
        der_of(&root_pem),
    );
    let (_, leaf_cert) = parse_x509_certificate(&leaf_der).unwrap();
    let (_, int_cert) = parse_x509_certificate(&int_der).unwrap();
    let (_, root_cert) = parse_x509_certificate(&root_der).unwrap();
    assert_eq!(
        leaf_cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
    );
    leaf_cert
        .verify_signature(Some(int_cert.public_key()))
        .unwrap();
    int_cert
        .verify_signature(Some(root_cert.public_key()))
        .unwrap();
    assert!(int_cert.is_ca());
    assert_eq!(int_cert.issuer(), root_cert.subject());
    // A CSR for a name outside the role is refused by name.
    let mut params = rcgen::CertificateParams::new(vec!["web.evil.com".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "web.evil.com");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let (status, body) = s
        .call(
            "POST",
            "pki-int/sign/svc",
            Some(t),
            Some(json!({"csr": csr})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0].as_str().unwrap().contains("web.evil.com"),
        "{body}"
    );
}

#[tokio::test]
async fn pki_intermediate_signed_by_a_root_mount_sqlite() {
    intermediate(Backend::Sqlite).await;
}

#[tokio::test]
async fn pki_intermediate_signed_by_a_root_mount_postgres() {
    intermediate(Backend::Postgres).await;
}
