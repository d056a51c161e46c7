//! `config/urls`: the issuing-certificate, CRL and OCSP URLs put into every
//! certificate the mount signs (Authority Information Access and CRL
//! Distribution Points). A write changes the fields it names.

use serde_json::{json, Value};

use super::store::{self, Urls};
use super::x509;
use crate::engine::MountContext;
use crate::logical::{Fields, LogicalError, Request, Response};

/// The URLs in `config/urls` (none configured: empty).
pub(super) async fn load(ctx: &MountContext<'_>) -> Result<Urls, LogicalError> {
    Ok(store::get(ctx.view, store::URLS).await?.unwrap_or_default())
}

fn urls_json(u: &Urls) -> Value {
    json!({
        "issuing_certificates": u.issuing_certificates,
        "crl_distribution_points": u.crl_distribution_points,
        "ocsp_servers": u.ocsp_servers,
        "delta_crl_distribution_points": [],
        "enable_templating": false,
    })
}

/// `config/urls`: read, or write the fields given (the others stay).
pub(super) async fn handle(
    ctx: &MountContext<'_>,
    req: &Request,
) -> Result<Response, LogicalError> {
    let mut u = load(ctx).await?;
    if req.operation.is_write() {
        let f = Fields(&req.data);
        for (field, slot) in [
            ("issuing_certificates", &mut u.issuing_certificates),
            ("crl_distribution_points", &mut u.crl_distribution_points),
            ("ocsp_servers", &mut u.ocsp_servers),
        ] {
            if let Some(list) = f.string_list(field)? {
                let list: Vec<String> = list
                    .into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                for url in &list {
                    x509::check_url(url)?;
                }
                *slot = list;
            }
        }
        ctx.view
            .apply(vec![store::put_op(ctx.view, store::URLS, &u)?])
            .await?;
    }
    Ok(Response::data(urls_json(&u)))
}
