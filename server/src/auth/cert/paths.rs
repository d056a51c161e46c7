//! Admin paths of `auth/cert`: `certs/<name>` (read, write, delete) and
//! `certs` (LIST), `crls/<name>` (write `crl` PEM, read its serials, delete)
//! and `crls` (LIST), in Vault's shapes.

use serde_json::{json, Map, Value};

use super::model::{load_crl, load_role, save, validate_name, CertRoleV1, CrlV1};
use crate::barrier::View;
use crate::logical::{Fields, LogicalError, Operation, Request, Response};

/// Handles every admin path; `rest` is the path below the mount.
pub(super) async fn handle(
    view: &View,
    req: &Request,
    rest: &str,
) -> Result<Response, LogicalError> {
    let rest = rest.trim_end_matches('/');
    match rest {
        "certs" => return list(view, req, "cert/").await,
        "crls" => return list(view, req, "crl/").await,
        _ => {}
    }
    if let Some(name) = rest.strip_prefix("certs/") {
        let name = validate_name(name)?;
        return certs(view, req, &name).await;
    }
    if let Some(name) = rest.strip_prefix("crls/") {
        let name = validate_name(name)?;
        return crls(view, req, &name).await;
    }
    Err(LogicalError::NotFound)
}

async fn list(view: &View, req: &Request, prefix: &str) -> Result<Response, LogicalError> {
    if req.operation != Operation::List {
        return Err(LogicalError::UnsupportedOperation);
    }
    let after = req.list_after.as_deref().map(|a| format!("{prefix}{a}"));
    let keys: Vec<String> = view
        .list(prefix, after.as_deref(), req.list_limit.unwrap_or(10_000))
        .await?
        .into_iter()
        .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
        .collect();
    Response::list(keys)
}

async fn certs(view: &View, req: &Request, name: &str) -> Result<Response, LogicalError> {
    let key = format!("cert/{name}");
    match req.operation {
        Operation::Read => {
            let role = load_role(view, name).await?.ok_or(LogicalError::NotFound)?;
            Ok(Response::data(role.read_json()))
        }
        op if op.is_write() => {
            let existing = load_role(view, name).await?;
            let creating = existing.is_none();
            let mut role = existing.unwrap_or_default();
            role.update(&Fields(&req.data), creating)?;
            if role.display_name.is_empty() {
                role.display_name = name.to_owned();
            }
            save::<CertRoleV1>(view, &key, &role).await?;
            Ok(Response::no_content())
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&key)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

async fn crls(view: &View, req: &Request, name: &str) -> Result<Response, LogicalError> {
    let key = format!("crl/{name}");
    match req.operation {
        Operation::Read => {
            let crl = load_crl(view, name).await?.ok_or(LogicalError::NotFound)?;
            let serials: Map<String, Value> =
                crl.serials.iter().map(|s| (s.clone(), json!({}))).collect();
            Ok(Response::data(json!({ "serials": serials })))
        }
        op if op.is_write() => {
            let pem = Fields(&req.data)
                .string("crl")?
                .ok_or_else(|| LogicalError::invalid("missing required field 'crl'"))?;
            let crl = parse_crl(&pem)?;
            save::<CrlV1>(view, &key, &crl).await?;
            Ok(Response::no_content())
        }
        Operation::Delete => {
            view.apply(vec![view.delete_op(&key)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

/// A CRL from PEM (or bare DER in base64-less PEM): its DER, issuer, serials.
fn parse_crl(pem: &str) -> Result<CrlV1, LogicalError> {
    let der = rustls_pemfile::crls(&mut pem.as_bytes())
        .next()
        .ok_or_else(|| LogicalError::invalid("field 'crl' holds no PEM X509 CRL"))?
        .map_err(|_| LogicalError::invalid("field 'crl' is not PEM"))?
        .as_ref()
        .to_vec();
    let (_, parsed) = x509_parser::parse_x509_crl(&der)
        .map_err(|_| LogicalError::invalid("field 'crl' is not a valid X.509 CRL"))?;
    // What logins use must parse for the chain check too.
    webpki::OwnedCertRevocationList::from_der(&der)
        .map_err(|_| LogicalError::invalid("field 'crl' is not a CRL this server can check"))?;
    let serials = parsed
        .iter_revoked_certificates()
        .map(|r| r.user_certificate.to_string())
        .collect();
    let issuer = parsed.issuer().as_raw().to_vec();
    Ok(CrlV1 {
        der,
        serials,
        issuer,
    })
}
