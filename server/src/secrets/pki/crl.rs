//! Revocation and the CRL: `revoke` (the first revocation of a serial wins,
//! through a conditional write, so every concurrent caller reports the same
//! time), the CRL signed by the issuer and stored with its number, and its
//! reads `crl` (DER), `crl/pem`, `cert/crl`.
//!
//! A revocation does not sign a CRL: it marks the CRL stale (`crl/stale`, in
//! the same write as the revocation record), and the next read rebuilds it
//! once, however many revocations came before (the expiry worker revoking a
//! batch of certificate leases used to re-list and re-sign every revocation
//! for each one). `crl/rotate`, tidy and a new issuer rebuild at once; a read
//! also rebuilds once the CRL is past its `next_update`. A rebuild clears the
//! mark only if no revocation re-marked it meanwhile, so a read never answers
//! a CRL without a revocation that was acknowledged before it.

use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, RevokedCertParams, SerialNumber,
};
use serde_json::json;

use super::store::{self, CaBundle, CertRecord, CrlRecord, RevokedRecord};
use super::x509::{self, at};
use crate::barrier::{BarrierError, View, CAS_ATTEMPTS};
use crate::logical::{Fields, LogicalError, Request, Response};

/// How long a CRL is valid (Vault's default `expiry`).
const CRL_LIFETIME: i64 = 72 * 3600;

/// Signs a CRL of every revocation and stores it with the next number.
pub(super) async fn rebuild(
    view: &View,
    ca: &CaBundle,
    now: i64,
) -> Result<CrlRecord, LogicalError> {
    build(view, ca, now, false).await
}

/// [`rebuild`], or with `only_if_stale` the stored CRL when, read inside the
/// retry loop, it is current and not marked stale (another reader rebuilt it
/// meanwhile: one signature for all of them).
async fn build(
    view: &View,
    ca: &CaBundle,
    now: i64,
    only_if_stale: bool,
) -> Result<CrlRecord, LogicalError> {
    use base64::Engine as _;
    let key = super::keys::load(&ca.private_key)?;
    let ca_der = x509::pem_to_der(&ca.certificate)?;
    let issuer =
        Issuer::from_ca_cert_der(&ca_der.into(), &*key).map_err(|_| LogicalError::Corrupt)?;
    for _ in 0..CAS_ATTEMPTS {
        let (old, guard) = view.get_versioned(store::CRL).await?;
        // Read before the revocations are listed: a revocation after this
        // point re-marks the CRL, and the conditional write below then fails.
        let (stale, stale_guard) = view.get_versioned(store::CRL_STALE).await?;
        let old: Option<CrlRecord> = match old {
            Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?),
            None => None,
        };
        let number = match &old {
            Some(old) if only_if_stale && stale.is_none() && old.next_update > now => {
                return Ok(old.clone());
            }
            Some(old) => old.number + 1,
            None => 1,
        };
        let mut revoked_certs = Vec::new();
        for hyphen in store::list_all(view, store::REVOKED).await? {
            let Some(r): Option<RevokedRecord> =
                store::get(view, &store::revoked_key(&hyphen)).await?
            else {
                continue;
            };
            let bytes = store::serial_bytes(&hyphen).ok_or(LogicalError::Corrupt)?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: at(r.revocation_time)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let next_update = now + CRL_LIFETIME;
        let params = CertificateRevocationListParams {
            this_update: at(now)?,
            next_update: at(next_update)?,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&issuer)
            .map_err(|e| LogicalError::invalid(format!("cannot sign the CRL: {e}")))?;
        let record = CrlRecord {
            der: base64::engine::general_purpose::STANDARD.encode(crl.der()),
            number,
            next_update,
        };
        let ops = vec![
            store::put_op(view, store::CRL, &record)?,
            view.delete_op(store::CRL_STALE),
        ];
        if view.apply_if(&[guard, stale_guard], ops).await? {
            return Ok(record);
        }
    }
    Err(BarrierError::Contended.into())
}

/// The current CRL's DER (rebuilt first when missing, marked stale by a
/// revocation, or past `next_update`); `None` without an issuer.
async fn current(view: &View, now: i64) -> Result<Option<Vec<u8>>, LogicalError> {
    use base64::Engine as _;
    let Some(ca): Option<CaBundle> = store::get(view, store::CA).await? else {
        return Ok(None);
    };
    // The CRL and its stale mark straight from storage: a revocation made
    // through another node must show in the next CRL served here.
    let fresh = match store::get_uncached::<CrlRecord>(view, store::CRL).await? {
        Some(r)
            if r.next_update > now && view.get_versioned(store::CRL_STALE).await?.0.is_none() =>
        {
            Some(r)
        }
        _ => None,
    };
    let record = match fresh {
        Some(r) => r,
        None => build(view, &ca, now, true).await?,
    };
    base64::engine::general_purpose::STANDARD
        .decode(record.der)
        .map(Some)
        .map_err(|_| LogicalError::Corrupt)
}

/// `crl` (DER), `crl/pem` (raw PEM) and `cert/crl` (JSON).
pub(super) async fn read(view: &View, what: &str, now: i64) -> Result<Response, LogicalError> {
    let Some(der) = current(view, now).await? else {
        return match what {
            "cert/crl" => Err(LogicalError::invalid(
                "no default issuer currently configured",
            )),
            _ => Ok(Response::no_content()),
        };
    };
    let pem = x509::der_to_pem(&der, "X509 CRL");
    Ok(match what {
        "crl" => Response::bytes("application/pkix-crl", der),
        "crl/pem" => Response::bytes("application/x-pem-file", pem.into_bytes()),
        _ => Response::data(json!({
            "certificate": pem,
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
        })),
    })
}

/// `crl/rotate` (without an issuer there is nothing to sign: success, as
/// OpenBao answers).
pub(super) async fn rotate(view: &View, now: i64) -> Result<Response, LogicalError> {
    if let Some(ca) = store::get::<CaBundle>(view, store::CA).await? {
        rebuild(view, &ca, now).await?;
    }
    Ok(Response::data(json!({ "success": true })))
}

fn revoked_json(r: &RevokedRecord) -> serde_json::Value {
    json!({
        "revocation_time": r.revocation_time,
        "revocation_time_rfc3339": crate::clock::rfc3339(r.revocation_nanos),
        "state": "revoked",
    })
}

/// What revoking a serial came to.
pub(super) enum Revoked {
    /// revoked now, or earlier (the first revocation's record)
    Yes(RevokedRecord),
    /// the certificate had already expired: nothing to revoke
    Expired,
}

/// Revokes the certificate with this serial (stored form) at `now`.
pub(super) async fn revoke_serial(
    view: &View,
    hyphen: &str,
    now: i64,
    now_nanos: i128,
) -> Result<Revoked, LogicalError> {
    let colon = hyphen.replace('-', ":");
    let ca: Option<CaBundle> = store::get(view, store::CA).await?;
    if let Some(ca) = ca.as_ref().filter(|ca| ca.serial == colon) {
        return Err(LogicalError::invalid(format!(
            "adding issuer (id: {}) to its own CRL is not allowed",
            ca.issuer_id
        )));
    }
    let cert: CertRecord = store::get(view, &store::cert_key(hyphen))
        .await?
        .ok_or_else(|| {
            LogicalError::invalid(format!("certificate with serial {colon} not found."))
        })?;
    let key = store::revoked_key(hyphen);
    let (existing, guard) = view.get_versioned(&key).await?;
    if let Some(raw) = existing {
        return serde_json::from_slice(&raw)
            .map(Revoked::Yes)
            .map_err(|_| LogicalError::Corrupt);
    }
    if cert.not_after < now {
        return Ok(Revoked::Expired);
    }
    let record = RevokedRecord {
        revocation_time: now,
        revocation_nanos: now_nanos,
        not_after: cert.not_after,
    };
    // The record and the CRL's stale mark in one write: no revocation is
    // acknowledged that the next CRL read would leave out.
    let ops = vec![
        store::put_op(view, &key, &record)?,
        store::put_op(view, store::CRL_STALE, &now)?,
    ];
    if !view.apply_if(&[guard], ops).await? {
        // Another revocation came first: its time is the revocation time.
        let first: RevokedRecord = store::get(view, &key).await?.ok_or(LogicalError::Corrupt)?;
        return Ok(Revoked::Yes(first));
    }
    Ok(Revoked::Yes(record))
}

/// `revoke` (`serial_number`, colon- or hyphen-separated).
pub(super) async fn revoke(
    view: &View,
    req: &Request,
    now: i64,
    now_nanos: i128,
) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let given = f
        .string("serial_number")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| LogicalError::invalid("the serial_number field is required"))?;
    let hyphen = store::hyphen_serial(&given)
        .ok_or_else(|| LogicalError::invalid(format!("invalid serial number {given:?}")))?;
    match revoke_serial(view, &hyphen, now, now_nanos).await? {
        Revoked::Yes(r) => Ok(Response::data(revoked_json(&r))),
        Revoked::Expired => Ok(Response::data(json!({})).with_warning(format!(
            "certificate with serial {} has already expired; it was not added to the CRL",
            hyphen.replace('-', ":")
        ))),
    }
}
