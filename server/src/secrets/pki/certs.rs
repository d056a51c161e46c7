//! The certificate store: `cert/<serial>` (public, with its revocation),
//! `certs` and `certs/revoked` (LISTs of serials) and `tidy` (removes certificates and
//! revocations whose certificate expired more than `safety_buffer` ago,
//! then rebuilds the CRL without them).

use serde_json::json;

use super::store::{self, CaBundle, CertRecord, RevokedRecord};
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Request, Response};

/// `cert/<serial>` (colon or hyphen form).
pub(super) async fn read(view: &View, serial: &str) -> Result<Response, LogicalError> {
    let hyphen = store::hyphen_serial(serial).ok_or(LogicalError::NotFound)?;
    let cert: CertRecord = store::get(view, &store::cert_key(&hyphen))
        .await?
        .ok_or(LogicalError::NotFound)?;
    let revoked: Option<RevokedRecord> = store::get(view, &store::revoked_key(&hyphen)).await?;
    let ca: Option<CaBundle> = store::get(view, store::CA).await?;
    Ok(Response::data(json!({
        "certificate": cert.certificate,
        "issuer_id": ca.map(|c| c.issuer_id).unwrap_or_default(),
        "revocation_time": revoked.as_ref().map_or(0, |r| r.revocation_time),
        "revocation_time_rfc3339": revoked
            .as_ref()
            .map(|r| crate::clock::rfc3339(r.revocation_nanos))
            .unwrap_or_default(),
    })))
}

/// `certs` (every stored serial) and `certs/revoked` (every revoked one),
/// colon-separated.
pub(super) async fn list(view: &View, prefix: &str) -> Result<Response, LogicalError> {
    let keys = store::list_all(view, prefix)
        .await?
        .into_iter()
        .map(|k| k.replace('-', ":"))
        .collect();
    Response::list(keys)
}

/// How many records tidy removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Tidied {
    pub certs: u64,
    pub revoked: u64,
}

/// Removes what expired before `cutoff`: stored certificates (`certs`) and
/// revocations (`revoked`, with their certificate); rebuilds the CRL when a
/// revocation went.
pub(super) async fn tidy_before(
    view: &View,
    cutoff: i64,
    now: i64,
    certs: bool,
    revoked: bool,
) -> Result<Tidied, LogicalError> {
    let mut done = Tidied::default();
    if revoked {
        for hyphen in store::list_all(view, store::REVOKED).await? {
            let key = store::revoked_key(&hyphen);
            let Some(r): Option<RevokedRecord> = store::get(view, &key).await? else {
                continue;
            };
            if r.not_after < cutoff {
                view.apply(vec![
                    view.delete_op(&key),
                    view.delete_op(&store::cert_key(&hyphen)),
                ])
                .await?;
                done.revoked += 1;
            }
        }
    }
    if certs {
        for hyphen in store::list_all(view, store::CERTS).await? {
            let key = store::cert_key(&hyphen);
            let Some(c): Option<CertRecord> = store::get(view, &key).await? else {
                continue;
            };
            if c.not_after < cutoff {
                view.apply(vec![view.delete_op(&key)]).await?;
                done.certs += 1;
            }
        }
    }
    if done.revoked > 0 {
        if let Some(ca) = store::get::<CaBundle>(view, store::CA).await? {
            super::crl::rebuild(view, &ca, now).await?;
        }
    }
    Ok(done)
}

/// `tidy`: runs at once (Vault starts it in the background); answers 202 as
/// Vault does, with what was removed.
pub(super) async fn tidy(view: &View, req: &Request, now: i64) -> Result<Response, LogicalError> {
    let f = Fields(&req.data);
    let certs = f.bool("tidy_cert_store")?.unwrap_or(false);
    let revoked = f.bool("tidy_revoked_certs")?.unwrap_or(false);
    if !certs && !revoked {
        return Ok(Response::data(json!(null)).with_status(202).with_warning(
            "Manual tidy requested but no tidy operations were set. Enable at least one tidy operation to be run (tidy_cert_store / tidy_revoked_certs).",
        ));
    }
    let buffer = f.duration("safety_buffer")?.unwrap_or(72 * 3600);
    let cutoff = now.saturating_sub(i64::try_from(buffer).unwrap_or(i64::MAX));
    let done = tidy_before(view, cutoff, now, certs, revoked).await?;
    tracing::info!(
        certs = done.certs,
        revoked = done.revoked,
        "pki tidy removed expired certificates"
    );
    Ok(Response::data(json!({
        "cert_store_deleted_count": done.certs,
        "revoked_cert_deleted_count": done.revoked,
    }))
    .with_status(202)
    .with_warning("Tidy operation successfully started. Any information from the operation will be printed to the server's log."))
}
