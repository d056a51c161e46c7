//! `issue/<role>` (a new key and its certificate) and `sign/<role>` (a
//! certificate for a CSR's key): the role's limits on names, key type and
//! lifetime, the certificate's extensions (key usages, server/client flags,
//! URLs), the record in `certs/` and the lease (none with `no_store`). The
//! new private key is returned once and never stored.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose as Eku, IsCa,
    KeyUsagePurpose as Ku, SanType,
};
use serde_json::json;

use super::ca::{self, with_warnings};
use super::export::{self, Format};
use super::keys::{self, KeySpec};
use super::names::{self, Names};
use super::roles::{self, Role};
use super::store::{self, CertRecord};
use super::ttl::{lifetime, mount_ttls};
use super::x509::{self, add_urls, at, new_serial, Signed};
use crate::engine::MountContext;
use crate::logical::{Fields, Lease, LogicalError, Request, Response};

/// Records an issued certificate in `certs/<serial>`.
pub(super) async fn store_cert(ctx: &MountContext<'_>, cert: &Signed) -> Result<(), LogicalError> {
    let hyphen = cert.serial.replace(':', "-");
    let record = CertRecord {
        certificate: cert.pem.clone(),
        not_after: cert.not_after,
    };
    let op = store::put_op(ctx.view, &store::cert_key(&hyphen), &record)?;
    ctx.view.apply(vec![op]).await?;
    Ok(())
}

/// The names a request asks for, from its fields.
fn requested_names(f: &Fields<'_>) -> Result<Names, LogicalError> {
    let mut names = Names {
        common_name: f
            .string("common_name")?
            .unwrap_or_default()
            .trim()
            .to_owned(),
        ..Names::default()
    };
    for alt in f.string_list("alt_names")?.unwrap_or_default() {
        let alt = alt.trim();
        if alt.is_empty() {
            continue;
        }
        if alt.contains('@') {
            names.emails.push(alt.to_owned());
        } else {
            names.dns.push(alt.to_owned());
        }
    }
    for ip in f.string_list("ip_sans")?.unwrap_or_default() {
        let ip = ip.trim();
        if ip.is_empty() {
            continue;
        }
        names.ips.push(ip.parse().map_err(|_| {
            LogicalError::invalid(format!("the value {ip:?} is not a valid IP address"))
        })?);
    }
    names.uris = f
        .string_list("uri_sans")?
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    Ok(names)
}

/// The common name also goes into the SANs (as a DNS name, an email address
/// or an IP address), unless `exclude_cn_from_sans`.
fn with_cn_in_sans(mut names: Names, exclude: bool) -> Names {
    let cn = names.common_name.clone();
    if exclude || cn.is_empty() {
        return names;
    }
    if let Ok(ip) = cn.parse::<IpAddr>() {
        if !names.ips.contains(&ip) {
            names.ips.insert(0, ip);
        }
    } else if cn.contains('@') {
        if !names.emails.contains(&cn) {
            names.emails.insert(0, cn);
        }
    } else if !names.dns.iter().any(|d| d.eq_ignore_ascii_case(&cn)) {
        names.dns.insert(0, cn);
    }
    names
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String, LogicalError> {
    rcgen::string::Ia5String::try_from(s)
        .map_err(|_| LogicalError::invalid(format!("the name {s:?} is not ASCII")))
}

fn key_usage(name: &str) -> Option<Ku> {
    Some(match name {
        "DigitalSignature" => Ku::DigitalSignature,
        "ContentCommitment" => Ku::ContentCommitment,
        "KeyEncipherment" => Ku::KeyEncipherment,
        "DataEncipherment" => Ku::DataEncipherment,
        "KeyAgreement" => Ku::KeyAgreement,
        "CertSign" => Ku::KeyCertSign,
        "CRLSign" => Ku::CrlSign,
        "EncipherOnly" => Ku::EncipherOnly,
        "DecipherOnly" => Ku::DecipherOnly,
        _ => return None,
    })
}

/// The leaf's parameters: subject, SANs, usages, validity, serial.
fn leaf_params(
    role: &Role,
    names: &Names,
    not_before: i64,
    not_after: i64,
) -> Result<CertificateParams, LogicalError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    if !names.common_name.is_empty() {
        p.distinguished_name
            .push(DnType::CommonName, names.common_name.clone());
    }
    for o in &role.organization {
        p.distinguished_name
            .push(DnType::OrganizationName, o.clone());
    }
    for ou in &role.ou {
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou.clone());
    }
    for d in &names.dns {
        p.subject_alt_names.push(SanType::DnsName(ia5(d)?));
    }
    for e in &names.emails {
        p.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
    }
    for ip in &names.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for u in &names.uris {
        p.subject_alt_names.push(SanType::URI(ia5(u)?));
    }
    p.key_usages = role.key_usage.iter().filter_map(|u| key_usage(u)).collect();
    let flags = [
        (role.server_flag, Eku::ServerAuth),
        (role.client_flag, Eku::ClientAuth),
        (role.code_signing_flag, Eku::CodeSigning),
        (role.email_protection_flag, Eku::EmailProtection),
    ];
    for (on, eku) in flags {
        if on {
            p.insert_extended_key_usage(eku);
        }
    }
    for name in &role.ext_key_usage {
        let eku = match name.as_str() {
            "ServerAuth" => Eku::ServerAuth,
            "ClientAuth" => Eku::ClientAuth,
            "CodeSigning" => Eku::CodeSigning,
            "EmailProtection" => Eku::EmailProtection,
            "TimeStamping" => Eku::TimeStamping,
            "OCSPSigning" => Eku::OcspSigning,
            _ => Eku::Any,
        };
        p.insert_extended_key_usage(eku);
    }
    p.is_ca = IsCa::NoCa;
    p.not_before = at(not_before)?;
    p.not_after = at(not_after)?;
    p.serial_number = Some(new_serial()?);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// Whether a CSR's key satisfies the role's key type and minimum size.
fn check_csr_key(role: &Role, spec: KeySpec) -> Result<(), LogicalError> {
    if role.key_type == "any" {
        return Ok(());
    }
    if role.key_type != spec.kind() {
        return Err(LogicalError::invalid(format!(
            "role requires keys of type {}",
            role.key_type
        )));
    }
    if spec.bits() < role.key_bits {
        return Err(LogicalError::invalid(format!(
            "role requires a minimum of a {}-bit key, but CSR's key is {} bits",
            role.key_bits,
            spec.bits()
        )));
    }
    Ok(())
}

/// `issue/<role>` (`csr` false) and `sign/<role>` (`csr` true).
pub(super) async fn handle(
    ctx: &MountContext<'_>,
    req: &Request,
    role_name: &str,
    signing: bool,
) -> Result<Response, LogicalError> {
    let role = roles::load(ctx.view, role_name).await?;
    let f = Fields(&req.data);
    let (format, pkcs8) = export::formats(f.string("format")?, f.string("private_key_format")?)?;
    let mut names = requested_names(&f)?;
    let mut new_key = None;
    let csr = if signing {
        let pem = f
            .string("csr")?
            .ok_or_else(|| LogicalError::invalid("the csr field is required"))?;
        let csr = super::csr::parse(&pem)?;
        check_csr_key(&role, csr.spec)?;
        if role.use_csr_common_name && !csr.names.common_name.is_empty() {
            names.common_name = csr.names.common_name.clone();
        }
        if role.use_csr_sans {
            names.dns = csr.names.dns.clone();
            names.emails = csr.names.emails.clone();
            names.ips = csr.names.ips.clone();
            names.uris = csr.names.uris.clone();
        }
        Some(csr)
    } else {
        if role.key_type == "any" {
            return Err(LogicalError::invalid(
                "role key type \"any\" not allowed for issuing certificates, only signing",
            ));
        }
        new_key = Some(keys::parse_spec(&role.key_type, u64::from(role.key_bits))?);
        None
    };
    if names.common_name.is_empty() && role.require_cn {
        return Err(LogicalError::invalid(
            "the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false",
        ));
    }
    let names = with_cn_in_sans(names, f.bool("exclude_cn_from_sans")?.unwrap_or(false));
    names::check(&role, &names)?;
    let ca = ca::require(ctx).await?;
    let (mount_default, mount_max) = mount_ttls(ctx);
    let default = if role.ttl > 0 {
        role.ttl
    } else {
        mount_default
    };
    let max = if role.max_ttl > 0 {
        role.max_ttl
    } else {
        mount_max
    };
    let life = lifetime(
        super::now(ctx).0,
        f.duration("ttl")?,
        default.min(max),
        max,
        Some(ca.not_after),
        role.not_before_duration,
    );
    let mut params = leaf_params(&role, &names, life.not_before, life.not_after)?;
    add_urls(&mut params, &super::urls::load(ctx).await?);
    let (cert, private_key) = match (csr, new_key) {
        (Some(csr), _) => (x509::sign_with_ca(&params, &csr.public_key, &ca)?, None),
        (None, Some(spec)) => {
            let (key, pem) = keys::generate(spec).await?;
            (x509::sign_with_ca(&params, &*key, &ca)?, Some((pem, spec)))
        }
        (None, None) => return Err(LogicalError::Corrupt),
    };
    if !role.no_store {
        store_cert(ctx, &cert).await?;
    }
    let key_out = match &private_key {
        Some((pem, spec)) => Some((export::private_key(pem, *spec, format, pkcs8)?, *spec)),
        None => None,
    };
    let certificate = match format {
        // Vault's bundle: the key (when issued), the certificate, the issuer.
        Format::PemBundle => key_out
            .iter()
            .map(|(k, _)| k.trim_end())
            .chain([cert.pem.trim_end(), ca.certificate.trim_end()])
            .collect::<Vec<_>>()
            .join("\n"),
        _ => export::cert(&cert.pem, format)?,
    };
    let chain = ca
        .full_chain()
        .iter()
        .map(|c| export::cert(c, format))
        .collect::<Result<Vec<_>, _>>()?;
    let mut data = json!({
        "certificate": certificate,
        "issuing_ca": export::cert(&ca.certificate, format)?,
        "ca_chain": chain,
        "serial_number": cert.serial,
        "expiration": cert.not_after,
        "not_before": life.not_before,
    });
    if let Some((key, spec)) = key_out {
        data["private_key"] = json!(key.as_str());
        data["private_key_type"] = json!(spec.kind());
    }
    let mut resp = with_warnings(Response::data(data), life.warnings);
    if !role.no_store {
        resp = resp.with_lease(Lease {
            id: cert.serial.replace(':', "-"),
            ttl: u64::try_from(cert.not_after - super::now(ctx).0).unwrap_or(0),
            renewable: false,
        });
    }
    Ok(resp)
}
