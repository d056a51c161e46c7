//! The engine on a real barrier view: a root, a role, issue and sign, the
//! CRL after a revocation, concurrent revocations, tidy, the lease hook.

use std::sync::Arc;

use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

use super::*;
use crate::barrier::Barrier;
use crate::crypto::random_array;
use crate::logical::ResponseBody;
use crate::mounts::{MountConfig, MountEntry};
use crate::storage::{MigrationMode, Storage};

const NOW: i64 = 1_800_000_000;

async fn view() -> View {
    let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(storage));
    barrier
        .initialize(
            &random_array::<32>().unwrap(),
            crate::clock::UnixTime::EPOCH,
        )
        .await
        .unwrap();
    View::new(barrier, "logical/pki-test/")
}

fn mount() -> MountEntry {
    MountEntry {
        v: 1,
        path: "pki/".into(),
        kind: "pki".into(),
        description: String::new(),
        uuid: "pki-test".into(),
        accessor: "pki_0".into(),
        options: Default::default(),
        config: MountConfig::default(),
        created: 0,
    }
}

async fn call(
    view: &View,
    op: Operation,
    rest: &str,
    body: Value,
    now: i64,
) -> Result<Response, LogicalError> {
    let mount = mount();
    let connection = Default::default();
    let ctx = MountContext {
        mount: &mount,
        view,
        rest,
        now: crate::clock::UnixTime::from_secs(now),
        caller: None,
        connection: &connection,
        token_view: None,
    };
    let mut req = Request::new(op, format!("pki/{rest}"));
    req.data = body.as_object().cloned().unwrap_or_default();
    Pki.handle(&ctx, &req).await
}

fn data(r: &Response) -> Value {
    match &r.body {
        ResponseBody::Envelope { data: Some(d), .. } => d.clone(),
        other => panic!("{other:?}"),
    }
}

fn warnings(r: &Response) -> Vec<String> {
    match &r.body {
        ResponseBody::Envelope { warnings, .. } => warnings.clone(),
        _ => Vec::new(),
    }
}

async fn with_root_and_role(role: Value) -> View {
    let v = view().await;
    call(
        &v,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "Test Root", "key_type": "ec", "ttl": "720h"}),
        NOW,
    )
    .await
    .unwrap();
    call(&v, Operation::Update, "roles/svc", role, NOW)
        .await
        .unwrap();
    v
}

fn svc_role() -> Value {
    json!({
        "allowed_domains": "svc.internal", "allow_subdomains": true,
        "allowed_uri_sans": "spiffe://prod/ns/*/sa/*", "key_type": "ec", "max_ttl": "72h",
    })
}

async fn issue(v: &View, body: Value, now: i64) -> Result<Response, LogicalError> {
    call(v, Operation::Update, "issue/svc", body, now).await
}

fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string())
        .collect()
}

async fn crl_der(v: &View, now: i64) -> Vec<u8> {
    match call(v, Operation::Read, "crl", json!({}), now)
        .await
        .unwrap()
        .body
    {
        ResponseBody::Bytes { body, content_type } => {
            assert_eq!(content_type, "application/pkix-crl");
            body
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_issued_certificate_has_the_names_usages_and_lease() {
    let v = with_root_and_role(svc_role()).await;
    let r = issue(
        &v,
        json!({"common_name": "api.svc.internal", "uri_sans": "spiffe://prod/ns/pay/sa/api", "ttl": "1h"}),
        NOW,
    )
    .await
    .unwrap();
    let d = data(&r);
    assert_eq!(d["private_key_type"], "ec");
    assert_eq!(d["expiration"], NOW + 3600);
    assert_eq!(d["not_before"], NOW - 30);
    assert!(d["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
    let serial = d["serial_number"].as_str().unwrap();
    assert_eq!(serial.split(':').count(), 20);
    let lease = r.lease.clone().unwrap();
    assert_eq!((lease.ttl, lease.renewable), (3600, false));
    assert_eq!(lease.id, serial.replace(':', "-"));
    let der = x509::pem_to_der(d["certificate"].as_str().unwrap()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert!(
        names.iter().any(|n| n.contains("api.svc.internal")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains("spiffe://prod/ns/pay/sa/api")),
        "{names:?}"
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert_eq!(cert.issuer().to_string(), "CN=Test Root");
    // Stored, and listed.
    let list = call(&v, Operation::List, "certs", json!({}), NOW)
        .await
        .unwrap();
    assert!(data(&list)["keys"]
        .as_array()
        .unwrap()
        .contains(&json!(serial)));
}

#[tokio::test]
async fn the_role_refuses_names_and_caps_the_ttl() {
    let v = with_root_and_role(svc_role()).await;
    let e = issue(&v, json!({"common_name": "api.evil.com"}), NOW)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "common name api.evil.com not allowed by this role"
    );
    let e = issue(
        &v,
        json!({"common_name": "a.svc.internal", "uri_sans": "spiffe://dev/ns/a/sa/b"}),
        NOW,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("spiffe://dev/ns/a/sa/b"), "{e}");
    let r = issue(
        &v,
        json!({"common_name": "a.svc.internal", "ttl": "100h"}),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(data(&r)["expiration"], NOW + 72 * 3600);
    assert!(warnings(&r)[0].contains("maxTTL"), "{:?}", warnings(&r));
    // The issuer's own expiry caps it too (root: 720h).
    let wide = json!({"allow_any_name": true, "key_type": "ec", "max_ttl": "10000h"});
    call(&v, Operation::Update, "roles/wide", wide, NOW)
        .await
        .unwrap();
    let r = call(
        &v,
        Operation::Update,
        "issue/wide",
        json!({"common_name": "x.example", "ttl": "5000h"}),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(data(&r)["expiration"], NOW + 720 * 3600);
}

#[tokio::test]
async fn a_revoked_serial_is_on_the_crl_and_tidy_removes_it_once_expired() {
    let v = with_root_and_role(svc_role()).await;
    let keep = issue(
        &v,
        json!({"common_name": "keep.svc.internal", "ttl": "48h"}),
        NOW,
    )
    .await
    .unwrap();
    let gone = issue(
        &v,
        json!({"common_name": "gone.svc.internal", "ttl": "1h"}),
        NOW,
    )
    .await
    .unwrap();
    let keep = data(&keep)["serial_number"].as_str().unwrap().to_owned();
    let gone = data(&gone)["serial_number"].as_str().unwrap().to_owned();
    assert!(crl_serials(&crl_der(&v, NOW).await).is_empty());
    for s in [&keep, &gone] {
        let r = call(
            &v,
            Operation::Update,
            "revoke",
            json!({"serial_number": s}),
            NOW + 10,
        )
        .await
        .unwrap();
        assert_eq!(data(&r)["revocation_time"], NOW + 10);
    }
    let mut on_crl = crl_serials(&crl_der(&v, NOW + 20).await);
    on_crl.sort();
    let mut want = vec![keep.clone(), gone.clone()];
    want.sort();
    assert_eq!(on_crl, want);
    let r = call(&v, Operation::List, "certs/revoked", json!({}), NOW)
        .await
        .unwrap();
    let mut listed: Vec<String> = serde_json::from_value(data(&r)["keys"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, want);
    let r = call(&v, Operation::Read, &format!("cert/{gone}"), json!({}), NOW)
        .await
        .unwrap();
    assert_eq!(data(&r)["revocation_time"], NOW + 10);

    // Two hours on, with the default 72h buffer nothing goes; with 1s, `gone` does.
    let later = NOW + 2 * 3600;
    let body = json!({"tidy_cert_store": true, "tidy_revoked_certs": true});
    let r = call(&v, Operation::Update, "tidy", body.clone(), later)
        .await
        .unwrap();
    assert_eq!(
        (r.status, data(&r)["revoked_cert_deleted_count"].clone()),
        (202, json!(0))
    );
    let mut quick = body;
    quick["safety_buffer"] = json!("1s");
    let r = call(&v, Operation::Update, "tidy", quick, later)
        .await
        .unwrap();
    assert_eq!(data(&r)["revoked_cert_deleted_count"], 1);
    assert_eq!(
        crl_serials(&crl_der(&v, later).await),
        std::slice::from_ref(&keep)
    );
    let e = call(
        &v,
        Operation::Read,
        &format!("cert/{gone}"),
        json!({}),
        later,
    )
    .await;
    assert!(matches!(e, Err(LogicalError::NotFound)), "{e:?}");
    assert!(call(
        &v,
        Operation::Read,
        &format!("cert/{keep}"),
        json!({}),
        later
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn concurrent_revocations_agree_on_one_time() {
    let v = with_root_and_role(svc_role()).await;
    let r = issue(&v, json!({"common_name": "race.svc.internal"}), NOW)
        .await
        .unwrap();
    let serial = data(&r)["serial_number"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let (v, serial) = (v.clone(), serial.clone());
            tokio::spawn(async move {
                let r = call(
                    &v,
                    Operation::Update,
                    "revoke",
                    json!({"serial_number": serial}),
                    NOW + i,
                )
                .await
                .unwrap();
                data(&r)["revocation_time"].as_i64().unwrap()
            })
        })
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.push(t.await.unwrap());
    }
    times.dedup();
    assert_eq!(times.len(), 1, "{times:?}");
    assert_eq!(crl_serials(&crl_der(&v, NOW + 30).await), [serial]);
}

#[tokio::test]
async fn sign_uses_the_csrs_key_and_the_role_checks_its_names() {
    let v = with_root_and_role(svc_role()).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr_for = |cn: &str| {
        let mut p = rcgen::CertificateParams::new(vec![cn.to_owned()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serialize_request(&key).unwrap().pem().unwrap()
    };
    let r = call(
        &v,
        Operation::Update,
        "sign/svc",
        json!({"csr": csr_for("web.svc.internal")}),
        NOW,
    )
    .await
    .unwrap();
    let d = data(&r);
    assert!(d.get("private_key").is_none());
    let der = x509::pem_to_der(d["certificate"].as_str().unwrap()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
    );
    let e = call(
        &v,
        Operation::Update,
        "sign/svc",
        json!({"csr": csr_for("web.evil.com")}),
        NOW,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("web.evil.com"), "{e}");
}

#[tokio::test]
async fn an_intermediate_signed_by_another_mount_issues_with_its_chain() {
    let root = with_root_and_role(svc_role()).await;
    let int = view().await;
    let r = call(
        &int,
        Operation::Update,
        "intermediate/generate/internal",
        json!({"common_name": "Int", "key_type": "ec"}),
        NOW,
    )
    .await
    .unwrap();
    let csr = data(&r)["csr"].as_str().unwrap().to_owned();
    assert!(data(&r).get("private_key").is_none());
    let r = call(
        &root,
        Operation::Update,
        "root/sign-intermediate",
        json!({"csr": csr, "common_name": "Int", "ttl": "100h"}),
        NOW,
    )
    .await
    .unwrap();
    let signed = data(&r)["certificate"].as_str().unwrap().to_owned();
    let root_pem = data(&r)["issuing_ca"].as_str().unwrap().to_owned();
    call(
        &int,
        Operation::Update,
        "intermediate/set-signed",
        json!({"certificate": format!("{signed}{root_pem}")}),
        NOW,
    )
    .await
    .unwrap();
    call(&int, Operation::Update, "roles/svc", svc_role(), NOW)
        .await
        .unwrap();
    let r = issue(&int, json!({"common_name": "leaf.svc.internal"}), NOW)
        .await
        .unwrap();
    let d = data(&r);
    assert_eq!(d["ca_chain"].as_array().unwrap().len(), 2);
    // The leaf verifies under the intermediate, the intermediate under the root.
    let pem = |v: &Value| x509::pem_to_der(v.as_str().unwrap()).unwrap();
    let (leaf, int_der, root_der) = (
        pem(&d["certificate"]),
        pem(&d["issuing_ca"]),
        x509::pem_to_der(&root_pem).unwrap(),
    );
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let (_, int_cert) = x509_parser::parse_x509_certificate(&int_der).unwrap();
    let (_, root_cert) = x509_parser::parse_x509_certificate(&root_der).unwrap();
    leaf.verify_signature(Some(int_cert.public_key())).unwrap();
    int_cert
        .verify_signature(Some(root_cert.public_key()))
        .unwrap();
    assert!(int_cert.is_ca());
    // A second issuer is refused.
    let e = call(
        &int,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "again"}),
        NOW,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("already has an issuer"), "{e}");
}

#[tokio::test]
async fn only_exported_returns_the_ca_key() {
    let v = view().await;
    let r = call(
        &v,
        Operation::Update,
        "root/generate/internal",
        json!({"common_name": "R", "key_type": "ec"}),
        NOW,
    )
    .await
    .unwrap();
    assert!(data(&r).get("private_key").is_none());
    assert_eq!(
        call(&v, Operation::Delete, "root", json!({}), NOW)
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        call(&v, Operation::Read, "ca/pem", json!({}), NOW)
            .await
            .unwrap()
            .status,
        204
    );
    let r = call(
        &v,
        Operation::Update,
        "root/generate/exported",
        json!({"common_name": "R", "key_type": "ed25519"}),
        NOW,
    )
    .await
    .unwrap();
    assert!(data(&r)["private_key"]
        .as_str()
        .unwrap()
        .contains("PRIVATE KEY"));
    assert_eq!(data(&r)["private_key_type"], "ed25519");
}

#[tokio::test]
async fn no_store_issues_without_a_record_or_lease() {
    let mut role = svc_role();
    role["no_store"] = json!(true);
    let v = with_root_and_role(role).await;
    let r = issue(&v, json!({"common_name": "x.svc.internal"}), NOW)
        .await
        .unwrap();
    assert!(r.lease.is_none());
    let serial = data(&r)["serial_number"].as_str().unwrap().to_owned();
    let e = call(
        &v,
        Operation::Read,
        &format!("cert/{serial}"),
        json!({}),
        NOW,
    )
    .await;
    assert!(matches!(e, Err(LogicalError::NotFound)), "{e:?}");
}

#[tokio::test]
async fn revoking_a_lease_revokes_the_certificate() {
    let v = with_root_and_role(svc_role()).await;
    let r = issue(&v, json!({"common_name": "leased.svc.internal"}), NOW)
        .await
        .unwrap();
    let serial = data(&r)["serial_number"].as_str().unwrap().to_owned();
    let lease = Lease {
        id: format!("issue/svc/{}", r.lease.unwrap().id),
        ttl: 0,
        renewable: false,
    };
    Pki.revoke_lease(&v, &lease).await.unwrap();
    Pki.revoke_lease(&v, &lease).await.unwrap();
    let r = call(
        &v,
        Operation::Read,
        &format!("cert/{serial}"),
        json!({}),
        NOW,
    )
    .await
    .unwrap();
    assert_ne!(data(&r)["revocation_time"], 0);
}

/// The number of the stored CRL (each signature takes the next one).
async fn crl_number(v: &View) -> u64 {
    store::get::<store::CrlRecord>(v, store::CRL)
        .await
        .unwrap()
        .unwrap()
        .number
}

#[tokio::test]
async fn revocations_mark_the_crl_stale_and_one_read_signs_it_with_all_of_them() {
    let v = with_root_and_role(svc_role()).await;
    assert!(crl_serials(&crl_der(&v, NOW).await).is_empty());
    let signed = crl_number(&v).await;
    let mut want = Vec::new();
    for i in 0..24 {
        let r = issue(
            &v,
            json!({"common_name": format!("n{i}.svc.internal")}),
            NOW,
        )
        .await
        .unwrap();
        let serial = data(&r)["serial_number"].as_str().unwrap().to_owned();
        // Half through `revoke`, half as the expiry worker does, by lease.
        if i % 2 == 0 {
            call(
                &v,
                Operation::Update,
                "revoke",
                json!({"serial_number": serial}),
                NOW + 1,
            )
            .await
            .unwrap();
        } else {
            let lease = Lease {
                id: format!("issue/svc/{}", r.lease.unwrap().id),
                ttl: 0,
                renewable: false,
            };
            Pki.revoke_lease(&v, &lease).await.unwrap();
        }
        want.push(serial);
    }
    // No revocation signed a CRL ...
    assert_eq!(crl_number(&v).await, signed);
    // ... the first read signs one, holding all 24, and the next read reuses it.
    let mut on_crl = crl_serials(&crl_der(&v, NOW + 2).await);
    on_crl.sort();
    want.sort();
    assert_eq!(on_crl, want);
    assert_eq!(crl_number(&v).await, signed + 1);
    assert_eq!(crl_serials(&crl_der(&v, NOW + 3).await).len(), 24);
    assert_eq!(crl_number(&v).await, signed + 1);

    // A read right after one more revocation has it.
    let r = issue(&v, json!({"common_name": "last.svc.internal"}), NOW)
        .await
        .unwrap();
    let last = data(&r)["serial_number"].as_str().unwrap().to_owned();
    call(
        &v,
        Operation::Update,
        "revoke",
        json!({"serial_number": last}),
        NOW + 4,
    )
    .await
    .unwrap();
    let on_crl = crl_serials(&crl_der(&v, NOW + 4).await);
    assert_eq!(on_crl.len(), 25);
    assert!(on_crl.contains(&last));
    assert_eq!(crl_number(&v).await, signed + 2);
}

#[tokio::test]
async fn a_role_write_is_a_create_until_the_role_exists() {
    let v = view().await;
    assert_eq!(Pki.exists(&v, "roles/svc").await.unwrap(), Some(false));
    call(&v, Operation::Update, "roles/svc", svc_role(), NOW)
        .await
        .unwrap();
    assert_eq!(Pki.exists(&v, "roles/svc").await.unwrap(), Some(true));
    assert_eq!(Pki.exists(&v, "issue/svc").await.unwrap(), None);
}
