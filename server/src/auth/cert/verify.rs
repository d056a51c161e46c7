//! Which trusted certificate (role) a login certificate matches, or which
//! check refused it. The checks, in order, each with its own message:
//!
//! 1. a certificate was presented on the connection (TLS, with a certificate);
//! 2. the leaf is inside its validity period (not expired, not yet valid);
//! 3. trust, per role: a CA role verifies the presented chain to the role's
//!    certificates with rustls-webpki (signatures, validity of every link,
//!    client-auth usage, CA constraints), checking every link against the
//!    configured CRLs of its issuer (signature-verified); a pinned role (a
//!    certificate that is not a CA) matches only the very same certificate,
//!    byte for byte (never by serial, key id or public key alone: see
//!    SECURITY.md on CVE-2024-2048), and its serial must not be on a CRL
//!    naming its issuer;
//! 4. the role's constraints: names, common names, DNS, email and URI SANs,
//!    organizational units (globs with `*`, as Vault's).
//!
//! When no role matches, the refusal is the check that got furthest among
//! the roles tried: a certificate from the right CA with the wrong SAN hears
//! about its SAN, not about another role's CA. Messages hold no secret.

use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::model::{parse_pem_certificates, CertRoleV1, CrlV1};

/// Why a login certificate was refused (each says which check failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    NoCertificate,
    Unreadable,
    Expired(i64),
    NotYetValid(i64),
    NoRole,
    Untrusted(String),
    Revoked,
    Constraint(&'static str),
}

impl Refusal {
    /// How far the login got: a later check's refusal is more telling.
    fn rank(&self) -> u8 {
        match self {
            Refusal::NoCertificate | Refusal::Unreadable => 0,
            Refusal::Expired(_) | Refusal::NotYetValid(_) => 1,
            Refusal::NoRole => 2,
            Refusal::Untrusted(_) => 3,
            Refusal::Revoked => 4,
            Refusal::Constraint(_) => 5,
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            Refusal::NoCertificate => "client certificate must be supplied: log in over a TLS listener with client_auth = \"request\" or \"require\", presenting a certificate".into(),
            Refusal::Unreadable => "the client certificate is not valid X.509".into(),
            Refusal::Expired(at) => format!(
                "the client certificate expired at {}",
                crate::clock::rfc3339_secs(*at)
            ),
            Refusal::NotYetValid(at) => format!(
                "the client certificate is not valid before {}",
                crate::clock::rfc3339_secs(*at)
            ),
            Refusal::NoRole => "no trusted certificate is configured for this login (see auth/<mount>/certs)".into(),
            Refusal::Untrusted(why) => format!(
                "invalid certificate: it does not chain to a trusted certificate ({why})"
            ),
            Refusal::Revoked => "the client certificate (or a certificate of its chain) is revoked by a configured CRL".into(),
            Refusal::Constraint(which) => format!(
                "the client certificate does not match the {which} allowed by any trusted certificate it chains to"
            ),
        }
    }
}

/// What was checked about the presented certificate, for the token.
pub(super) struct Matched<'r> {
    pub name: &'r str,
    pub role: &'r CertRoleV1,
    pub common_name: String,
    pub serial: String,
    pub subject_key_id: String,
    pub authority_key_id: String,
}

/// Finds the first role (in name order) the chain (DER, leaf first) matches
/// at `now` (unix seconds).
pub(super) fn find_match<'r>(
    roles: &'r [(String, CertRoleV1)],
    crls: &[(String, CrlV1)],
    chain: &[Vec<u8>],
    now: i64,
) -> Result<Matched<'r>, Refusal> {
    let leaf_der = chain.first().ok_or(Refusal::NoCertificate)?;
    let (_, leaf) =
        x509_parser::parse_x509_certificate(leaf_der).map_err(|_| Refusal::Unreadable)?;
    let validity = leaf.validity();
    if now > validity.not_after.timestamp() {
        return Err(Refusal::Expired(validity.not_after.timestamp()));
    }
    if now < validity.not_before.timestamp() {
        return Err(Refusal::NotYetValid(validity.not_before.timestamp()));
    }
    let mut best = Refusal::NoRole;
    for (name, role) in roles {
        match check_role(role, crls, chain, &leaf, now) {
            Ok(()) => {
                return Ok(Matched {
                    name,
                    role,
                    common_name: first_cn(&leaf).unwrap_or_default(),
                    serial: leaf.serial.to_string(),
                    subject_key_id: key_id(&leaf, true),
                    authority_key_id: key_id(&leaf, false),
                })
            }
            Err(r) if r.rank() > best.rank() => best = r,
            Err(_) => {}
        }
    }
    Err(best)
}

fn check_role(
    role: &CertRoleV1,
    crls: &[(String, CrlV1)],
    chain: &[Vec<u8>],
    leaf: &X509Certificate<'_>,
    now: i64,
) -> Result<(), Refusal> {
    let trusted = parse_pem_certificates(&role.certificate, "certificate")
        .map_err(|_| Refusal::Untrusted("the configured certificate does not parse".into()))?;
    let (cas, pinned): (Vec<_>, Vec<_>) = trusted.into_iter().partition(|der| is_ca(der));
    let leaf_der = &chain[0];
    let pinned_match = pinned.iter().any(|p| p == leaf_der);
    if pinned_match {
        if revoked_by_serial(leaf, crls) {
            return Err(Refusal::Revoked);
        }
    } else if cas.is_empty() {
        return Err(Refusal::Untrusted(
            "it is not the pinned certificate".into(),
        ));
    } else {
        verify_chain(&cas, crls, chain, now)?;
    }
    check_constraints(role, leaf)
}

fn is_ca(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
        .unwrap_or(false)
}

fn verify_chain(
    cas: &[Vec<u8>],
    crls: &[(String, CrlV1)],
    chain: &[Vec<u8>],
    now: i64,
) -> Result<(), Refusal> {
    let ca_ders: Vec<CertificateDer<'_>> = cas
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let anchors: Vec<_> = ca_ders
        .iter()
        .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
        .collect();
    let leaf = CertificateDer::from(chain[0].as_slice());
    let end_entity = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| Refusal::Untrusted(webpki_reason(&e)))?;
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let owned: Vec<webpki::CertRevocationList<'static>> = crls
        .iter()
        .filter_map(|(_, c)| webpki::OwnedCertRevocationList::from_der(&c.der).ok())
        .map(webpki::CertRevocationList::from)
        .collect();
    let refs: Vec<&webpki::CertRevocationList<'_>> = owned.iter().collect();
    let revocation = webpki::RevocationOptionsBuilder::new(&refs).ok().map(|b| {
        b.with_depth(webpki::RevocationCheckDepth::Chain)
            .with_status_policy(webpki::UnknownStatusPolicy::Allow)
            .with_expiration_policy(webpki::ExpirationPolicy::Ignore)
            .build()
    });
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    end_entity
        .verify_for_usage(
            algs,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::client_auth(),
            revocation,
            None,
        )
        .map(|_| ())
        .map_err(|e| match e {
            webpki::Error::CertRevoked => Refusal::Revoked,
            other => Refusal::Untrusted(webpki_reason(&other)),
        })
}

fn webpki_reason(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => "unknown issuer".into(),
        E::CertExpired { .. } => "a certificate of the chain has expired".into(),
        E::CertNotValidYet { .. } => "a certificate of the chain is not valid yet".into(),
        E::CaUsedAsEndEntity => "a CA certificate was presented as the client certificate".into(),
        E::InvalidSignatureForPublicKey => "a signature does not verify".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "the certificate is not for client authentication".into()
        }
        E::InvalidCrlSignatureForPublicKey => "a configured CRL's signature does not verify".into(),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

fn revoked_by_serial(leaf: &X509Certificate<'_>, crls: &[(String, CrlV1)]) -> bool {
    let serial = leaf.serial.to_string();
    let issuer = leaf.issuer().as_raw();
    crls.iter()
        .any(|(_, c)| c.issuer == issuer && c.serials.contains(&serial))
}

fn first_cn(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}

fn key_id(cert: &X509Certificate<'_>, subject: bool) -> String {
    use x509_parser::extensions::ParsedExtension;
    let bytes = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) if subject => Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) if !subject => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    bytes
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

struct Names {
    cn: Vec<String>,
    dns: Vec<String>,
    email: Vec<String>,
    uri: Vec<String>,
    ou: Vec<String>,
}

fn names(cert: &X509Certificate<'_>) -> Names {
    let attr = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let mut n = Names {
        cn: attr(&mut cert.subject().iter_common_name()),
        ou: attr(&mut cert.subject().iter_organizational_unit()),
        dns: Vec::new(),
        email: Vec::new(),
        uri: Vec::new(),
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(s) => n.dns.push((*s).to_owned()),
                GeneralName::RFC822Name(s) => n.email.push((*s).to_owned()),
                GeneralName::URI(s) => n.uri.push((*s).to_owned()),
                _ => {}
            }
        }
    }
    n
}

/// Vault's rule for each list: empty allows all; otherwise some pattern
/// matches some value.
fn allows(patterns: &[String], values: &[&String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| values.iter().any(|v| glob(p, v)))
}

fn check_constraints(role: &CertRoleV1, leaf: &X509Certificate<'_>) -> Result<(), Refusal> {
    let n = names(leaf);
    let cn: Vec<&String> = n.cn.iter().take(1).collect();
    let any_name: Vec<&String> = cn.iter().copied().chain(&n.dns).chain(&n.email).collect();
    let checks: [(&[String], Vec<&String>, &'static str); 6] = [
        (&role.allowed_names, any_name, "names"),
        (&role.allowed_common_names, cn, "common names"),
        (&role.allowed_dns_sans, n.dns.iter().collect(), "DNS SANs"),
        (
            &role.allowed_email_sans,
            n.email.iter().collect(),
            "email SANs",
        ),
        (&role.allowed_uri_sans, n.uri.iter().collect(), "URI SANs"),
        (
            &role.allowed_organizational_units,
            n.ou.iter().collect(),
            "organizational units",
        ),
    ];
    for (patterns, values, which) in checks {
        if !allows(patterns, &values) {
            return Err(Refusal::Constraint(which));
        }
    }
    Ok(())
}

/// `*` matches any run of characters (`/` and `.` included), as go-glob.
pub(super) fn glob(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_vaults() {
        assert!(glob("*", "anything"));
        assert!(glob(
            "spiffe://prod/ns/payments/sa/*",
            "spiffe://prod/ns/payments/sa/api"
        ));
        assert!(!glob(
            "spiffe://prod/ns/payments/sa/*",
            "spiffe://prod/ns/billing/sa/api"
        ));
        assert!(glob("*.svc.internal", "api.payments.svc.internal"));
        assert!(!glob("*.svc.internal", "svc.internal"));
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(!glob("a*b*c", "a-c-b"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("ab*ba", "aba"), "prefix and suffix may not overlap");
    }
}
