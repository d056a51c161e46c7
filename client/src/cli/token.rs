//! `coffer token create|lookup|renew|revoke|capabilities`. Tokens given as arguments (or `-` for stdin)
//! are sent in request bodies and redacted from error messages.

use std::collections::BTreeMap;

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand};
use coffer_client::{Auth, Secret, TokenCreateRequest, Ttl};
use serde_json::Value;

use super::args::parse_pair;
use super::kv::push_field;
use super::output::{self, fmt_duration, fmt_value, map_rows, Format, Rows};
use super::{secret_arg, CliError, Ctx, Session};

/// `coffer token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a child (or -orphan) token.
    Create(CreateArgs),
    /// Show a token's properties (your own without arguments).
    Lookup(LookupArgs),
    /// Extend a token's TTL (your own without arguments).
    Renew(RenewArgs),
    /// Revoke a token and its children.
    Revoke(RevokeArgs),
    /// Show what a token (your own without TOKEN) may do on a path.
    Capabilities(CapabilitiesArgs),
}

/// Arguments of `token capabilities`.
#[derive(Debug, Args)]
pub struct CapabilitiesArgs {
    /// Look up the token with this accessor instead.
    #[arg(long, value_name = "ACCESSOR")]
    pub accessor: Option<String>,
    /// [TOKEN] PATH: the token (`-` reads stdin; omit for your own), then the path.
    #[arg(value_name = "TOKEN | PATH", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
}

/// Flags of `token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Policy to attach (repeatable, or comma-separated).
    #[arg(long = "policy", value_name = "NAME", value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Initial TTL, e.g. 1h, 30m, 90s or seconds.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Maximum lifetime, renewals included.
    #[arg(long = "explicit-max-ttl")]
    pub explicit_max_ttl: Option<String>,
    /// Number of uses (0 = unlimited).
    #[arg(long = "use-limit")]
    pub use_limit: Option<u64>,
    /// Whether the token can be renewed (-renewable=false to forbid).
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub renewable: Option<bool>,
    /// Create a token without parent (not revoked with its creator).
    #[arg(long)]
    pub orphan: bool,
    /// Do not attach the default policy.
    #[arg(long = "no-default-policy")]
    pub no_default_policy: bool,
    /// Display name.
    #[arg(long = "display-name")]
    pub display_name: Option<String>,
    /// Metadata key=value (repeatable).
    #[arg(long = "metadata", value_name = "K=V")]
    pub metadata: Vec<String>,
    /// Print only this field (e.g. -field=token).
    #[arg(long)]
    pub field: Option<String>,
}

/// Arguments of `token lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Token to look up (`-` reads stdin); omit for your own token.
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Look up by accessor instead.
    #[arg(long, value_name = "ACCESSOR", conflicts_with = "token")]
    pub accessor: Option<String>,
    /// Print only this field.
    #[arg(long)]
    pub field: Option<String>,
}

/// Arguments of `token renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// Token to renew (`-` reads stdin); omit for your own token.
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Requested TTL from now, e.g. 1h.
    #[arg(long)]
    pub increment: Option<String>,
    /// Print only this field.
    #[arg(long)]
    pub field: Option<String>,
}

/// Arguments of `token revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Token to revoke (`-` reads stdin).
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// Revoke your own token.
    #[arg(long = "self", conflicts_with_all = ["token", "accessor"])]
    pub revoke_self: bool,
    /// Revoke the token with this accessor.
    #[arg(long, value_name = "ACCESSOR", conflicts_with = "token")]
    pub accessor: Option<String>,
}

/// Dispatch a token subcommand.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: TokenCmd) -> Result<u8, CliError> {
    match cmd {
        TokenCmd::Create(a) => {
            let req = create_request(&a)?;
            let answer = ctx.client.token_create(&req).await?;
            render_auth(ctx, session, &answer, a.field.as_deref())
        }
        TokenCmd::Lookup(a) => {
            let answer = match (&a.accessor, &a.token) {
                (Some(acc), _) => ctx.client.token_lookup_accessor(acc).await?,
                (None, Some(t)) => {
                    let token = secret_arg(session, Some(t), "", "token")?;
                    ctx.client.token_lookup(&token).await?
                }
                (None, None) => ctx.client.token_lookup_self().await?,
            };
            render_data(ctx, session, &answer, a.field.as_deref())
        }
        TokenCmd::Renew(a) => {
            let increment = a.increment.as_deref().map(Ttl::parse);
            let answer = match &a.token {
                Some(t) => {
                    let token = secret_arg(session, Some(t), "", "token")?;
                    ctx.client.token_renew(&token, increment).await?
                }
                None => ctx.client.token_renew_self(increment).await?,
            };
            render_auth(ctx, session, &answer, a.field.as_deref())
        }
        TokenCmd::Capabilities(a) => capabilities(ctx, session, a).await,
        TokenCmd::Revoke(a) => {
            match (&a.token, &a.accessor, a.revoke_self) {
                (_, _, true) => ctx.client.token_revoke_self().await?,
                (_, Some(acc), false) => ctx.client.token_revoke_accessor(acc).await?,
                (Some(t), None, false) => {
                    let token = secret_arg(session, Some(t), "", "token")?;
                    ctx.client.token_revoke(&token).await?
                }
                (None, None, false) => {
                    return Err(CliError::Usage(
                        "give the TOKEN to revoke, -self, or -accessor=ACCESSOR".into(),
                    ))
                }
            }
            if ctx.format == Format::Table {
                session
                    .out
                    .push_str("Success! Revoked token (if it existed)\n");
            }
            Ok(0)
        }
    }
}

async fn capabilities(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: CapabilitiesArgs,
) -> Result<u8, CliError> {
    let (token, path) = match a.args.as_slice() {
        [path] => (None, path.as_str()),
        [token, path] if a.accessor.is_none() => (Some(token.as_str()), path.as_str()),
        _ => {
            return Err(CliError::Usage(
                "give PATH, TOKEN PATH, or -accessor=ACCESSOR PATH".into(),
            ))
        }
    };
    let path = path.trim().trim_start_matches('/');
    let (endpoint, body) = match (&a.accessor, token) {
        (Some(acc), _) => (
            "sys/capabilities-accessor",
            serde_json::json!({ "accessor": acc, "paths": [path] }),
        ),
        (None, Some(t)) => {
            let token = secret_arg(session, Some(t), "", "token")?;
            (
                "sys/capabilities",
                serde_json::json!({ "token": token.as_str(), "paths": [path] }),
            )
        }
        (None, None) => (
            "sys/capabilities-self",
            serde_json::json!({ "paths": [path] }),
        ),
    };
    let answer = ctx.client.write(endpoint, &body).await?;
    let caps = answer
        .as_ref()
        .and_then(|s| s.data_field(path).or_else(|| s.data_field("capabilities")))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut caps = caps;
    caps.sort();
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::from(caps)));
    } else {
        session.out.push_str(&caps.join(", "));
        session.out.push('\n');
    }
    Ok(0)
}

/// The `auth/token/create` body from the flags.
pub fn create_request(a: &CreateArgs) -> Result<TokenCreateRequest, CliError> {
    let meta = if a.metadata.is_empty() {
        None
    } else {
        let mut map = BTreeMap::new();
        for pair in &a.metadata {
            let (k, v) = parse_pair(pair, "-metadata")?;
            map.insert(k, v);
        }
        Some(map)
    };
    Ok(TokenCreateRequest {
        policies: a
            .policies
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        ttl: a.ttl.as_deref().map(Ttl::parse),
        explicit_max_ttl: a.explicit_max_ttl.as_deref().map(Ttl::parse),
        num_uses: a.use_limit,
        renewable: a.renewable,
        no_parent: a.orphan.then_some(true),
        display_name: a.display_name.clone(),
        meta,
        no_default_policy: a.no_default_policy.then_some(true),
    })
}

/// `vault token create`-style rows of an `auth` block. This does show the token: it is
/// the point of `token create`.
pub fn auth_rows(auth: &Auth) -> Rows {
    let duration = if auth.lease_duration == 0 {
        "∞".to_string()
    } else {
        fmt_duration(auth.lease_duration)
    };
    let list = |v: &[String]| fmt_value(&Value::from(v.to_vec()));
    let mut rows: Rows = vec![
        ("token".into(), auth.client_token.expose().to_string()),
        ("token_accessor".into(), auth.accessor.clone()),
        ("token_duration".into(), duration),
        ("token_renewable".into(), auth.renewable.to_string()),
        ("token_policies".into(), list(&auth.token_policies)),
        ("identity_policies".into(), list(&auth.identity_policies)),
        ("policies".into(), list(&auth.policies)),
    ];
    let mut meta: Vec<(&String, &Value)> = auth.metadata.iter().collect();
    meta.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in meta {
        rows.push((format!("token_meta_{k}"), fmt_value(v)));
    }
    rows
}

fn render_auth(
    ctx: &Ctx<'_>,
    session: &mut Session,
    answer: &Secret,
    field: Option<&str>,
) -> Result<u8, CliError> {
    let auth = answer
        .auth
        .as_ref()
        .ok_or_else(|| CliError::Failed("the server's answer has no auth block".into()))?;
    let rows = auth_rows(auth);
    render_rows(ctx, session, answer, &rows, field)
}

fn render_data(
    ctx: &Ctx<'_>,
    session: &mut Session,
    answer: &Secret,
    field: Option<&str>,
) -> Result<u8, CliError> {
    let rows = map_rows(&answer.data.clone().unwrap_or_default());
    render_rows(ctx, session, answer, &rows, field)
}

fn render_rows(
    ctx: &Ctx<'_>,
    session: &mut Session,
    answer: &Secret,
    rows: &Rows,
    field: Option<&str>,
) -> Result<u8, CliError> {
    if let Some(field) = field {
        let value = output::pick_field(rows, field).ok_or_else(|| {
            CliError::Failed(format!("Field {field:?} not present in the answer"))
        })?;
        push_field(session, &value);
        return Ok(0);
    }
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, answer.raw())),
        Format::Table => session.out.push_str(&output::table(rows)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args() -> CreateArgs {
        CreateArgs {
            policies: vec!["a".into(), " b ".into(), String::new()],
            ttl: Some("1h".into()),
            explicit_max_ttl: Some("7200".into()),
            use_limit: Some(3),
            renewable: Some(false),
            orphan: true,
            no_default_policy: false,
            display_name: Some("ci".into()),
            metadata: vec!["team=infra".into()],
            field: None,
        }
    }

    #[test]
    fn create_body_from_flags() {
        let body = serde_json::to_value(create_request(&args()).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"policies": ["a", "b"], "ttl": "1h", "explicit_max_ttl": 7200,
                   "num_uses": 3, "renewable": false, "no_parent": true,
                   "display_name": "ci", "meta": {"team": "infra"}})
        );
        let bad = CreateArgs {
            metadata: vec!["x".into()],
            ..args()
        };
        assert!(create_request(&bad).is_err());
    }

    #[test]
    fn auth_rows_in_vault_order() {
        let s = Secret::from_value(json!({"auth": {
            "client_token": "hvs.NEW", "accessor": "acc", "policies": ["default", "ops"],
            "token_policies": ["default", "ops"], "metadata": {"z": "1", "a": "2"},
            "lease_duration": 2764800, "renewable": true
        }}))
        .unwrap();
        let rows = auth_rows(s.auth.as_ref().unwrap());
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "token",
                "token_accessor",
                "token_duration",
                "token_renewable",
                "token_policies",
                "identity_policies",
                "policies",
                "token_meta_a",
                "token_meta_z"
            ]
        );
        assert_eq!(rows[0].1, "hvs.NEW");
        assert_eq!(rows[2].1, "768h");
        assert_eq!(rows[5].1, "[]");
    }
}
