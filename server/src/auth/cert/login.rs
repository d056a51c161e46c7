//! `login` (optional `name`): authenticates the client certificate of the
//! connection (see `verify`) and hands the core the parameters of its token,
//! bound to that certificate (its SHA-256 fingerprint; the core refuses the
//! token over a connection without it).

use std::collections::BTreeMap;

use super::model::{load_all, load_role, validate_name, CertRoleV1, CrlV1};
use super::verify::{find_match, Matched, Refusal};
use crate::auth::tokenutil::TtlLayers;
use crate::crypto::sha256_hex;
use crate::engine::MountContext;
use crate::logical::{Fields, LogicalError, Request};
use crate::policy::Entity;
use crate::token::CreateParams;

/// Checks the connection's certificate and makes its token's parameters.
pub(super) async fn login(
    ctx: &MountContext<'_>,
    req: &Request,
) -> Result<CreateParams, LogicalError> {
    let chain = &ctx.connection.client_certificates;
    if chain.is_empty() {
        return Err(refused(&Refusal::NoCertificate));
    }
    let roles: Vec<(String, CertRoleV1)> = match Fields(&req.data).string("name")? {
        Some(name) if !name.is_empty() => {
            let name = validate_name(&name.to_lowercase())?;
            match load_role(ctx.view, &name).await? {
                Some(role) => vec![(name, role)],
                None => Vec::new(),
            }
        }
        _ => load_all(ctx.view, "cert/").await?,
    };
    let crls: Vec<(String, CrlV1)> = load_all(ctx.view, "crl/").await?;
    let matched = find_match(&roles, &crls, chain, ctx.now.secs()).map_err(|r| refused(&r))?;
    if !matched.role.token.allows(ctx.connection.remote_addr) {
        // As Vault: a login from outside the role's token_bound_cidrs is a 403.
        return Err(LogicalError::PermissionDenied);
    }
    Ok(token_params(ctx, &matched, &chain[0]))
}

fn refused(r: &Refusal) -> LogicalError {
    tracing::debug!(reason = %r.message(), "certificate login refused");
    LogicalError::invalid(r.message())
}

fn token_params(ctx: &MountContext<'_>, m: &Matched<'_>, leaf: &[u8]) -> CreateParams {
    let mount = ctx.mount;
    let mut meta = BTreeMap::new();
    meta.insert("cert_name".to_owned(), m.name.to_owned());
    meta.insert("common_name".to_owned(), m.common_name.clone());
    meta.insert("serial_number".to_owned(), m.serial.clone());
    meta.insert("subject_key_id".to_owned(), m.subject_key_id.clone());
    meta.insert("authority_key_id".to_owned(), m.authority_key_id.clone());
    // One entity per (mount, role, common name): two CAs that both issue "api"
    // do not share an identity, nor its templated policies.
    let entity_id = uuid_like(&sha256_hex(
        format!("{}\0{}\0{}", mount.uuid, m.name, m.common_name).as_bytes(),
    ));
    let display = if m.role.display_name.is_empty() {
        m.name
    } else {
        &m.role.display_name
    };
    let mut params = CreateParams {
        orphan: true,
        display_name: format!(
            "{}-{display}",
            mount.path.trim_end_matches('/').replace('/', "-")
        ),
        meta,
        path: format!("auth/{}login", mount.path),
        entity: Some(Entity {
            id: entity_id,
            name: m.common_name.clone(),
            metadata: BTreeMap::new(),
        }),
        bound_cert_sha256: Some(sha256_hex(leaf)),
        ..CreateParams::default()
    };
    m.role
        .token
        .apply(&mut params, TtlLayers::new(0, 0, &mount.config));
    params
}

fn uuid_like(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
