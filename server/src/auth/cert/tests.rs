//! Unit tests of the certificate checks (`verify`) with certificates made by rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};

use super::model::{CertRoleV1, CrlV1};
use super::verify::{find_match, Refusal};

/// 2026-09-21
const NOW: i64 = 1_790_000_000;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(p, key),
        pem,
    }
}

struct Spec<'a> {
    cn: &'a str,
    dns: &'a [&'a str],
    uris: &'a [&'a str],
    ous: &'a [&'a str],
    years: (i32, i32),
    serial: u64,
}

const SPEC: Spec<'static> = Spec {
    cn: "api",
    dns: &[],
    uris: &[],
    ous: &[],
    years: (2025, 2027),
    serial: 7,
};

fn params(s: &Spec<'_>) -> CertificateParams {
    let mut p =
        CertificateParams::new(s.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    for u in s.uris {
        p.subject_alt_names
            .push(SanType::URI(u.to_string().try_into().unwrap()));
    }
    p.distinguished_name.push(DnType::CommonName, s.cn);
    for ou in s.ous {
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, *ou);
    }
    p.not_before = rcgen::date_time_ymd(s.years.0, 1, 1);
    p.not_after = rcgen::date_time_ymd(s.years.1, 1, 1);
    p.serial_number = Some(SerialNumber::from(s.serial));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

fn leaf(ca: &Ca, s: &Spec<'_>) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params(s)
        .signed_by(&key, &ca.issuer)
        .unwrap()
        .der()
        .to_vec()
}

fn role(pem: &str) -> CertRoleV1 {
    CertRoleV1 {
        certificate: pem.to_owned(),
        ..CertRoleV1::default()
    }
}

fn check(
    roles: &[(String, CertRoleV1)],
    crls: &[(String, CrlV1)],
    der: Vec<u8>,
) -> Result<String, Refusal> {
    find_match(roles, crls, &[der], NOW).map(|m| m.name.to_owned())
}

fn one(r: CertRoleV1) -> Vec<(String, CertRoleV1)> {
    vec![("web".to_owned(), r)]
}

#[test]
fn a_chain_to_the_ca_matches_and_each_failing_check_is_named() {
    let ca1 = ca("one");
    let roles = one(role(&ca1.pem));
    assert_eq!(check(&roles, &[], leaf(&ca1, &SPEC)), Ok("web".into()));
    assert_eq!(
        find_match(&roles, &[], &[], NOW).err(),
        Some(Refusal::NoCertificate)
    );
    let old = Spec {
        years: (2020, 2021),
        ..SPEC
    };
    assert!(matches!(
        check(&roles, &[], leaf(&ca1, &old)),
        Err(Refusal::Expired(_))
    ));
    let early = Spec {
        years: (2030, 2031),
        ..SPEC
    };
    assert!(matches!(
        check(&roles, &[], leaf(&ca1, &early)),
        Err(Refusal::NotYetValid(_))
    ));
    let other = ca("two");
    let e = check(&roles, &[], leaf(&other, &SPEC)).unwrap_err();
    assert_eq!(e, Refusal::Untrusted("unknown issuer".into()));
    assert!(e
        .message()
        .contains("does not chain to a trusted certificate"));
    assert_eq!(check(&[], &[], leaf(&ca1, &SPEC)), Err(Refusal::NoRole));
}

#[test]
fn names_sans_and_ous_are_matched_with_globs() {
    let ca1 = ca("one");
    let spiffe = Spec {
        cn: "api.payments",
        dns: &["api.payments.svc.internal"],
        uris: &["spiffe://prod/ns/payments/sa/api"],
        ous: &["payments"],
        ..SPEC
    };
    let cert = leaf(&ca1, &spiffe);
    let with = |f: &dyn Fn(&mut CertRoleV1)| {
        let mut r = role(&ca1.pem);
        f(&mut r);
        check(&one(r), &[], cert.clone())
    };
    assert!(with(&|r| r.allowed_uri_sans = vec!["spiffe://prod/ns/payments/sa/*".into()]).is_ok());
    assert_eq!(
        with(&|r| r.allowed_uri_sans = vec!["spiffe://prod/ns/billing/*".into()]),
        Err(Refusal::Constraint("URI SANs"))
    );
    assert!(with(&|r| r.allowed_dns_sans = vec!["*.svc.internal".into()]).is_ok());
    assert_eq!(
        with(&|r| r.allowed_dns_sans = vec!["*.svc.external".into()]),
        Err(Refusal::Constraint("DNS SANs"))
    );
    assert!(with(&|r| r.allowed_common_names = vec!["api.*".into()]).is_ok());
    assert_eq!(
        with(&|r| r.allowed_common_names = vec!["web".into()]),
        Err(Refusal::Constraint("common names"))
    );
    assert!(with(&|r| r.allowed_organizational_units = vec!["payments".into()]).is_ok());
    assert_eq!(
        with(&|r| r.allowed_organizational_units = vec!["billing".into()]),
        Err(Refusal::Constraint("organizational units"))
    );
    assert!(with(&|r| r.allowed_names = vec!["*.svc.internal".into()]).is_ok());
    let e = with(&|r| r.allowed_email_sans = vec!["*@x".into()]).unwrap_err();
    assert!(e.message().contains("email SANs"), "{}", e.message());
}

#[test]
fn the_furthest_check_is_reported_and_the_first_matching_role_wins() {
    let ca1 = ca("one");
    let ca2 = ca("two");
    let mut strict = role(&ca1.pem);
    strict.allowed_common_names = vec!["web".into()];
    let roles = vec![
        ("a-strict".to_owned(), strict),
        ("b-other".to_owned(), role(&ca2.pem)),
    ];
    // Chains to a-strict's CA but fails its CN; b-other's CA is unknown to it.
    assert_eq!(
        check(&roles, &[], leaf(&ca1, &SPEC)),
        Err(Refusal::Constraint("common names"))
    );
    assert_eq!(check(&roles, &[], leaf(&ca2, &SPEC)), Ok("b-other".into()));
}

fn crl(ca: &Ca, serials: &[u64]) -> CrlV1 {
    let p = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2027, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let der = p.signed_by(&ca.issuer).unwrap().der().to_vec();
    let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
    CrlV1 {
        serials: parsed
            .iter_revoked_certificates()
            .map(|r| r.user_certificate.to_string())
            .collect(),
        issuer: parsed.issuer().as_raw().to_vec(),
        der,
    }
}

#[test]
fn a_serial_on_a_crl_of_its_issuer_is_refused() {
    let ca1 = ca("one");
    let ca2 = ca("two");
    let roles = one(role(&ca1.pem));
    let cert = leaf(&ca1, &SPEC);
    let crls = vec![("one".to_owned(), crl(&ca1, &[SPEC.serial]))];
    assert_eq!(check(&roles, &crls, cert.clone()), Err(Refusal::Revoked));
    // Another serial revoked: fine. The same serial revoked by another CA: fine.
    let crls = vec![("one".to_owned(), crl(&ca1, &[99]))];
    assert!(check(&roles, &crls, cert.clone()).is_ok());
    let crls = vec![("two".to_owned(), crl(&ca2, &[SPEC.serial]))];
    assert!(check(&roles, &crls, cert).is_ok());
}

#[test]
fn a_pinned_certificate_matches_only_itself_byte_for_byte() {
    // CVE-2024-2048 / CVE-2025-6037: a pinned (non-CA) certificate must not be
    // matched by serial, key ids or public key: here a certificate with the
    // same key, serial and issuer name but another common name is refused.
    let ca1 = ca("one");
    let key = KeyPair::generate().unwrap();
    let pinned = params(&SPEC).signed_by(&key, &ca1.issuer).unwrap();
    let roles = one(role(&pinned.pem()));
    assert_eq!(check(&roles, &[], pinned.der().to_vec()), Ok("web".into()));
    let twin = params(&Spec {
        cn: "admin",
        ..SPEC
    })
    .signed_by(&key, &ca1.issuer)
    .unwrap();
    assert_eq!(
        check(&roles, &[], twin.der().to_vec()),
        Err(Refusal::Untrusted(
            "it is not the pinned certificate".into()
        ))
    );
    let crls = vec![("one".to_owned(), crl(&ca1, &[SPEC.serial]))];
    assert_eq!(
        check(&roles, &crls, pinned.der().to_vec()),
        Err(Refusal::Revoked)
    );
}

#[test]
fn a_ca_certificate_is_not_a_login_certificate() {
    let ca1 = ca("one");
    let roles = one(role(&ca1.pem));
    let der = rustls_pemfile::certs(&mut ca1.pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    let e = check(&roles, &[], der).unwrap_err();
    assert!(matches!(e, Refusal::Untrusted(_)), "{e:?}");
}

#[test]
fn an_intermediate_presented_by_the_client_completes_the_chain() {
    let root = ca("root");
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "intermediate");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let inter_der = p.signed_by(&key, &root.issuer).unwrap().der().to_vec();
    let inter = Ca {
        issuer: Issuer::new(p, key),
        pem: String::new(),
    };
    let roles = one(role(&root.pem));
    let cert = leaf(&inter, &SPEC);
    let m = find_match(&roles, &[], &[cert.clone(), inter_der.clone()], NOW);
    assert_eq!(m.map(|m| m.name.to_owned()), Ok("web".into()));
    assert_eq!(
        check(&roles, &[], cert.clone()),
        Err(Refusal::Untrusted("unknown issuer".into())),
        "without the intermediate"
    );
    let crls = vec![("inter".to_owned(), crl(&inter, &[SPEC.serial]))];
    assert_eq!(
        find_match(&roles, &crls, &[cert, inter_der], NOW).err(),
        Some(Refusal::Revoked),
        "revoked by the intermediate's CRL"
    );
}
