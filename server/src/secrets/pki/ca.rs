//! The mount's issuer: `root/generate/internal|exported`, `root` (delete),
//! `intermediate/generate/internal|exported` and `intermediate/set-signed`,
//! `root/sign-intermediate` (this mount signs another's CA), and the CA's
//! public reads (`ca`, `ca/pem`, `ca_chain`, `cert/ca`,
//! `cert/ca_chain`). One issuer per mount: a second root or a second
//! `set-signed` is refused until `root` is deleted. The issuer's private key
//! is stored only in its bundle behind the barrier and returned only by the
//! `exported` variants, once.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
use serde_json::{json, Map, Value};

use super::export;
use super::keys::{self, KeySpec};
use super::store::{self, CaBundle, PendingKey};
use super::ttl::{lifetime, mount_ttls};
use super::x509::{self, add_urls, at, new_serial};
use crate::engine::MountContext;
use crate::logical::{Fields, LogicalError, Request, Response};

/// The issuer, if one is configured.
pub(super) async fn load(ctx: &MountContext<'_>) -> Result<Option<CaBundle>, LogicalError> {
    store::get(ctx.view, store::CA).await
}

/// The issuer, or Vault's 400.
pub(super) async fn require(ctx: &MountContext<'_>) -> Result<CaBundle, LogicalError> {
    load(ctx)
        .await?
        .ok_or_else(|| LogicalError::invalid("no default issuer currently configured"))
}

/// The subject fields a CA request may carry (`common_name` required).
fn subject(f: &Fields<'_>, params: &mut CertificateParams) -> Result<String, LogicalError> {
    let cn = f
        .string("common_name")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| LogicalError::invalid("the common_name field is required"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, cn.clone());
    for (field, ty) in [
        ("organization", DnType::OrganizationName),
        ("ou", DnType::OrganizationalUnitName),
        ("country", DnType::CountryName),
        ("locality", DnType::LocalityName),
        ("province", DnType::StateOrProvinceName),
    ] {
        for v in f.string_list(field)?.unwrap_or_default() {
            if !v.trim().is_empty() {
                params.distinguished_name.push(ty.clone(), v.trim());
            }
        }
    }
    Ok(cn)
}

fn key_spec_of(f: &Fields<'_>) -> Result<KeySpec, LogicalError> {
    let t = f.string("key_type")?.unwrap_or_else(|| "rsa".into());
    keys::parse_spec(&t, f.u64("key_bits")?.unwrap_or(0))
}

/// CA parameters: subject, validity, serial, basic constraints, key usages, URLs.
async fn ca_params(
    ctx: &MountContext<'_>,
    f: &Fields<'_>,
    ca_not_after: Option<i64>,
) -> Result<(CertificateParams, Vec<String>), LogicalError> {
    let mut params = CertificateParams::default();
    subject(f, &mut params)?;
    let (default, max) = mount_ttls(ctx);
    // A CA's lifetime defaults to the mount's maximum (Vault's behaviour).
    let life = lifetime(
        super::now(ctx).0,
        f.duration("ttl")?,
        max.max(default),
        max,
        ca_not_after,
        30,
    );
    params.not_before = at(life.not_before)?;
    params.not_after = at(life.not_after)?;
    params.serial_number = Some(new_serial()?);
    params.is_ca = match f.i64("max_path_length")?.unwrap_or(-1) {
        n if n < 0 => IsCa::Ca(BasicConstraints::Unconstrained),
        n => IsCa::Ca(BasicConstraints::Constrained(
            u8::try_from(n).unwrap_or(u8::MAX),
        )),
    };
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = ca_not_after.is_some();
    add_urls(&mut params, &super::urls::load(ctx).await?);
    Ok((params, life.warnings))
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Stores `bundle` as the issuer unless there is one already.
async fn install(
    ctx: &MountContext<'_>,
    bundle: &CaBundle,
    also: Vec<crate::barrier::BarrierOp>,
) -> Result<(), LogicalError> {
    let mut ops = vec![store::put_op(ctx.view, store::CA, bundle)?];
    ops.extend(also);
    if ctx
        .view
        .apply_if(&[ctx.view.absent(store::CA)], ops)
        .await?
    {
        Ok(())
    } else {
        Err(already())
    }
}

fn already() -> LogicalError {
    LogicalError::invalid(
        "this mount already has an issuer; delete it (DELETE pki/root) before configuring another",
    )
}

/// `root/generate/internal|exported`.
pub(super) async fn generate_root(
    ctx: &MountContext<'_>,
    req: &Request,
    exported: bool,
) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let spec = key_spec_of(&f)?;
    if load(ctx).await?.is_some() {
        return Err(already());
    }
    let (params, warnings) = ca_params(ctx, &f, None).await?;
    let (key, key_pem) = keys::generate(spec).await?;
    let cert = x509::self_sign(&params, &key)?;
    let bundle = CaBundle {
        v: 1,
        certificate: cert.pem.clone(),
        chain: Vec::new(),
        private_key: key_pem,
        key_type: spec.kind().into(),
        issuer_id: uuid(),
        issuer_name: f.string("issuer_name")?.unwrap_or_default(),
        key_id: uuid(),
        serial: cert.serial.clone(),
        not_after: cert.not_after,
    };
    install(ctx, &bundle, Vec::new()).await?;
    super::issue::store_cert(ctx, &cert).await?;
    super::crl::rebuild(ctx.view, &bundle, super::now(ctx).0).await?;
    let mut data = json!({
        "certificate": cert.pem,
        "issuing_ca": bundle.certificate,
        "expiration": cert.not_after,
        "serial_number": cert.serial,
        "issuer_id": bundle.issuer_id,
        "issuer_name": bundle.issuer_name,
        "key_id": bundle.key_id,
        "key_name": "",
    });
    if exported {
        let (format, pkcs8) =
            export::formats(f.string("format")?, f.string("private_key_format")?)?;
        let key = export::private_key(&bundle.private_key, spec, format, pkcs8)?;
        data["private_key"] = json!(key.as_str());
        data["private_key_type"] = json!(spec.kind());
    }
    Ok(with_warnings(Response::data(data), warnings))
}

pub(super) fn with_warnings(mut resp: Response, warnings: Vec<String>) -> Response {
    for w in warnings {
        resp = resp.with_warning(w);
    }
    resp
}

/// `DELETE root`: the issuer, its key and any pending key. Issued
/// certificates and revocations stay.
pub(super) async fn delete_root(ctx: &MountContext<'_>) -> Result<Response, LogicalError> {
    let v = ctx.view;
    v.apply(vec![
        v.delete_op(store::CA),
        v.delete_op(store::PENDING),
        v.delete_op(store::CRL),
        v.delete_op(store::CRL_STALE),
    ])
    .await?;
    Ok(Response::data(json!(null)).with_warning(
        "DELETE /root deletes this mount's issuer and its key; issued certificates and revocations stay",
    ))
}

/// `intermediate/generate/internal|exported`: a key and a CSR for it.
pub(super) async fn generate_intermediate(
    ctx: &MountContext<'_>,
    req: &Request,
    exported: bool,
) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let spec = key_spec_of(&f)?;
    let mut params = CertificateParams::default();
    subject(&f, &mut params)?;
    let (key, key_pem) = keys::generate(spec).await?;
    let csr = params
        .serialize_request(&*key)
        .and_then(|c| c.pem())
        .map_err(|e| LogicalError::invalid(format!("cannot make the CSR: {e}")))?;
    let pending = PendingKey {
        v: 1,
        private_key: key_pem,
        key_type: spec.kind().into(),
        key_id: uuid(),
        issuer_name: f.string("issuer_name")?.unwrap_or_default(),
    };
    ctx.view
        .apply(vec![store::put_op(ctx.view, store::PENDING, &pending)?])
        .await?;
    let mut data = json!({ "csr": csr.trim_end(), "key_id": pending.key_id });
    if exported {
        let (format, pkcs8) =
            export::formats(f.string("format")?, f.string("private_key_format")?)?;
        let key = export::private_key(&pending.private_key, spec, format, pkcs8)?;
        data["private_key"] = json!(key.as_str());
        data["private_key_type"] = json!(spec.kind());
    }
    Ok(Response::data(data))
}

/// `intermediate/set-signed`: the certificate (and the chain above it) for the
/// pending key becomes the issuer.
pub(super) async fn set_signed(
    ctx: &MountContext<'_>,
    req: &Request,
) -> Result<Response, LogicalError> {
    use rcgen::PublicKeyData as _;
    let f = Fields(&req.data);
    let text = f
        .string("certificate")?
        .ok_or_else(|| LogicalError::invalid("the certificate field is required"))?;
    let ders = x509::pem_blocks(&text, "CERTIFICATE")?;
    let Some(leaf) = ders.first() else {
        return Err(LogicalError::invalid(
            "no certificate in the certificate field",
        ));
    };
    let pending: PendingKey = store::get(ctx.view, store::PENDING)
        .await?
        .ok_or_else(|| LogicalError::invalid("no pending key: run intermediate/generate first"))?;
    let key = keys::load(&pending.private_key)?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|_| LogicalError::invalid("the certificate does not parse"))?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(LogicalError::invalid(
            "the certificate's public key does not match the key made by intermediate/generate",
        ));
    }
    if !cert.is_ca() {
        return Err(LogicalError::invalid(
            "the certificate is not a CA certificate",
        ));
    }
    let (serial, not_after) = x509::facts(leaf)?;
    let bundle = CaBundle {
        v: 1,
        certificate: x509::der_to_pem(leaf, "CERTIFICATE"),
        chain: ders[1..]
            .iter()
            .map(|d| x509::der_to_pem(d, "CERTIFICATE"))
            .collect(),
        private_key: pending.private_key,
        key_type: pending.key_type,
        issuer_id: uuid(),
        issuer_name: pending.issuer_name,
        key_id: pending.key_id,
        serial,
        not_after,
    };
    install(ctx, &bundle, vec![ctx.view.delete_op(store::PENDING)]).await?;
    let record = x509::Signed {
        pem: bundle.certificate.clone(),
        serial: bundle.serial.clone(),
        not_after,
    };
    super::issue::store_cert(ctx, &record).await?;
    super::crl::rebuild(ctx.view, &bundle, super::now(ctx).0).await?;
    Ok(Response::data(json!({
        "imported_issuers": [bundle.issuer_id],
        "imported_keys": [],
        "mapping": { bundle.issuer_id.clone(): bundle.key_id },
        "existing_issuers": null,
        "existing_keys": null,
    })))
}

/// `root/sign-intermediate`: signs another CA's CSR with this mount's issuer.
pub(super) async fn sign_intermediate(
    ctx: &MountContext<'_>,
    req: &Request,
) -> Result<Response, LogicalError> {
    let ca = require(ctx).await?;
    let mut data: Map<String, Value> = req.data.clone();
    let f = Fields(&req.data);
    let csr_pem = f
        .string("csr")?
        .ok_or_else(|| LogicalError::invalid("the csr field is required"))?;
    let csr = super::csr::parse(&csr_pem)?;
    if f.bool("use_csr_values")?.unwrap_or(false) && !csr.names.common_name.is_empty() {
        data.insert("common_name".into(), json!(csr.names.common_name));
    }
    let (params, warnings) = ca_params(ctx, &Fields(&data), Some(ca.not_after)).await?;
    let cert = x509::sign_with_ca(&params, &csr.public_key, &ca)?;
    super::issue::store_cert(ctx, &cert).await?;
    let resp = Response::data(json!({
        "certificate": cert.pem,
        "issuing_ca": ca.certificate,
        "ca_chain": ca.full_chain(),
        "serial_number": cert.serial,
        "expiration": cert.not_after,
    }));
    Ok(with_warnings(resp, warnings))
}

/// The CA's public reads: `ca` (DER), `ca/pem`, `ca_chain` (raw PEM, 204
/// without an issuer, as Vault) and `cert/ca`, `cert/ca_chain` (JSON).
pub(super) async fn read(ctx: &MountContext<'_>, what: &str) -> Result<Response, LogicalError> {
    let ca = load(ctx).await?;
    let json_form = |certificate: String| {
        Response::data(json!({
            "certificate": certificate,
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
        }))
    };
    match (what, ca) {
        ("cert/ca" | "cert/ca_chain", None) => Err(LogicalError::invalid(
            "no default issuer currently configured",
        )),
        (_, None) => Ok(Response::no_content()),
        ("ca", Some(ca)) => Ok(Response::bytes(
            "application/pkix-cert",
            x509::pem_to_der(&ca.certificate)?,
        )),
        ("ca/pem", Some(ca)) => Ok(Response::bytes(
            "application/pem-certificate-chain",
            ca.certificate.into_bytes(),
        )),
        ("ca_chain", Some(ca)) => Ok(Response::bytes(
            "application/pkix-cert",
            ca.full_chain().join("\n").into_bytes(),
        )),
        ("cert/ca_chain", Some(ca)) => {
            let chain = ca.full_chain().join("\n");
            let mut resp = json_form(chain.clone());
            if let crate::logical::ResponseBody::Envelope { data: Some(d), .. } = &mut resp.body {
                d["ca_chain"] = json!(chain);
            }
            Ok(resp)
        }
        (_, Some(ca)) => Ok(json_form(ca.certificate)),
    }
}
