//! `coffer secrets enable|disable|list|tune` and `coffer auth enable|disable|list|tune`:
//! the mount tables at `sys/mounts` and `sys/auth`, with `vault`'s flags, success lines
//! and list columns.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::args::parse_pair;
use super::output::{self, fmt_duration};
use super::{success, CliError, Ctx, Session};

/// `coffer secrets ...`
#[derive(Debug, Subcommand)]
pub enum SecretsCmd {
    /// Enable a secrets engine: coffer secrets enable -path=secret kv-v2
    Enable(EnableArgs),
    /// Disable the secrets engine at PATH (its data is deleted).
    Disable(PathArg),
    /// List the enabled secrets engines.
    List(ListArgs),
    /// Change a secrets engine's settings.
    Tune(TuneArgs),
}

/// `coffer auth ...`
#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Enable an auth method: coffer auth enable userpass
    Enable(EnableArgs),
    /// Disable the auth method at PATH (its users are deleted).
    Disable(PathArg),
    /// List the enabled auth methods.
    List(ListArgs),
    /// Change an auth method's settings.
    Tune(TuneArgs),
}

/// Arguments of `enable`.
#[derive(Debug, Args)]
pub struct EnableArgs {
    /// Where to mount it [default: the type, e.g. kv/ or userpass/].
    #[arg(long)]
    pub path: Option<String>,
    /// Human-readable description.
    #[arg(long)]
    pub description: Option<String>,
    /// Default lease TTL, e.g. 1h.
    #[arg(long = "default-lease-ttl", value_name = "DURATION")]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL, e.g. 24h.
    #[arg(long = "max-lease-ttl", value_name = "DURATION")]
    pub max_lease_ttl: Option<String>,
    /// Engine options as key=value (repeatable), e.g. -options=version=2.
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,
    /// KV version (2; kv-v2 implies it).
    #[arg(long)]
    pub version: Option<u32>,
    /// unauth (listed in the UI before login) or hidden.
    #[arg(long = "listing-visibility", value_name = "VISIBILITY")]
    pub listing_visibility: Option<String>,
    /// Mark the mount local to this cluster.
    #[arg(long)]
    pub local: bool,
    /// Engine type: kv, kv-v2, userpass, ...
    #[arg(value_name = "TYPE")]
    pub kind: String,
}

/// Arguments of `tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Default lease TTL, e.g. 1h ("system" for the server's default).
    #[arg(long = "default-lease-ttl", value_name = "DURATION")]
    pub default_lease_ttl: Option<String>,
    /// Maximum lease TTL.
    #[arg(long = "max-lease-ttl", value_name = "DURATION")]
    pub max_lease_ttl: Option<String>,
    /// Engine options as key=value (repeatable).
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,
    /// unauth or hidden.
    #[arg(long = "listing-visibility", value_name = "VISIBILITY")]
    pub listing_visibility: Option<String>,
    /// The mount path, e.g. secret/.
    pub path: String,
}

/// A mount path argument.
#[derive(Debug, Args)]
pub struct PathArg {
    /// The mount path, e.g. secret/.
    pub path: String,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show TTLs, options and ids too.
    #[arg(long)]
    pub detailed: bool,
}

/// Which table a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Secrets,
    Auth,
}

impl Table {
    fn api(self) -> &'static str {
        match self {
            Table::Secrets => "sys/mounts",
            Table::Auth => "sys/auth",
        }
    }
}

/// Dispatch `coffer secrets ...`.
pub async fn run_secrets(
    ctx: &Ctx<'_>,
    session: &mut Session,
    cmd: SecretsCmd,
) -> Result<u8, CliError> {
    match cmd {
        SecretsCmd::Enable(a) => enable(ctx, session, Table::Secrets, a).await,
        SecretsCmd::Disable(a) => disable(ctx, session, Table::Secrets, &a.path).await,
        SecretsCmd::List(a) => list(ctx, session, Table::Secrets, a.detailed).await,
        SecretsCmd::Tune(a) => tune(ctx, session, Table::Secrets, a).await,
    }
}

/// Dispatch `coffer auth ...`.
pub async fn run_auth(ctx: &Ctx<'_>, session: &mut Session, cmd: AuthCmd) -> Result<u8, CliError> {
    match cmd {
        AuthCmd::Enable(a) => enable(ctx, session, Table::Auth, a).await,
        AuthCmd::Disable(a) => disable(ctx, session, Table::Auth, &a.path).await,
        AuthCmd::List(a) => list(ctx, session, Table::Auth, a.detailed).await,
        AuthCmd::Tune(a) => tune(ctx, session, Table::Auth, a).await,
    }
}

/// `secret` → `secret/`; empty is a usage error.
pub fn mount_path(path: &str) -> Result<String, CliError> {
    let p = path.trim().trim_matches('/');
    if p.is_empty() {
        return Err(CliError::Usage("missing mount path, e.g. secret/".into()));
    }
    Ok(format!("{p}/"))
}

fn options_map(pairs: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut map = Map::new();
    for pair in pairs {
        let (k, v) = parse_pair(pair, "-options")?;
        map.insert(k, Value::String(v));
    }
    Ok(map)
}

/// The `sys/mounts/<path>` or `sys/auth/<path>` body of `enable`, and the type shown in
/// the success line. `kv-v2` is sent as `kv` with `version=2`, as `vault` does.
pub fn enable_body(a: &EnableArgs) -> Result<(Value, String), CliError> {
    let mut kind = a.kind.trim().to_string();
    if kind.is_empty() {
        return Err(CliError::Usage("missing TYPE".into()));
    }
    let mut options = options_map(&a.options)?;
    let mut version = a.version;
    if kind == "kv-v2" {
        kind = "kv".into();
        version = Some(2);
    }
    if let Some(v) = version {
        options.insert("version".into(), Value::String(v.to_string()));
    }
    let mut config = Map::new();
    if let Some(t) = &a.default_lease_ttl {
        config.insert("default_lease_ttl".into(), Value::String(t.clone()));
    }
    if let Some(t) = &a.max_lease_ttl {
        config.insert("max_lease_ttl".into(), Value::String(t.clone()));
    }
    if let Some(v) = &a.listing_visibility {
        config.insert("listing_visibility".into(), Value::String(v.clone()));
    }
    let mut body = json!({
        "type": kind,
        "description": a.description.clone().unwrap_or_default(),
        "config": config,
        "local": a.local,
    });
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    Ok((body, kind))
}

async fn enable(
    ctx: &Ctx<'_>,
    session: &mut Session,
    table: Table,
    a: EnableArgs,
) -> Result<u8, CliError> {
    let (body, _) = enable_body(&a)?;
    // The success line names the type as typed (kv-v2), the default path is the type.
    let kind = a.kind.trim().to_string();
    let path = mount_path(a.path.as_deref().unwrap_or(&kind))?;
    ctx.client
        .write(&format!("{}/{path}", table.api()), &body)
        .await?;
    let msg = match table {
        Table::Secrets => format!("Success! Enabled the {kind} secrets engine at: {path}"),
        Table::Auth => format!("Success! Enabled {kind} auth method at: {path}"),
    };
    success(ctx, session, &msg)
}

async fn disable(
    ctx: &Ctx<'_>,
    session: &mut Session,
    table: Table,
    path: &str,
) -> Result<u8, CliError> {
    let path = mount_path(path)?;
    ctx.client
        .delete(&format!("{}/{path}", table.api()))
        .await?;
    let msg = match table {
        Table::Secrets => {
            format!("Success! Disabled the secrets engine (if it existed) at: {path}")
        }
        Table::Auth => format!("Success! Disabled the auth method (if it existed) at: {path}"),
    };
    success(ctx, session, &msg)
}

/// The body of `tune`: TTLs and visibility at the top level, as `sys/mounts/<p>/tune`
/// takes them.
pub fn tune_body(a: &TuneArgs) -> Result<Value, CliError> {
    let mut body = Map::new();
    if let Some(d) = &a.description {
        body.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(t) = &a.default_lease_ttl {
        body.insert("default_lease_ttl".into(), Value::String(t.clone()));
    }
    if let Some(t) = &a.max_lease_ttl {
        body.insert("max_lease_ttl".into(), Value::String(t.clone()));
    }
    if let Some(v) = &a.listing_visibility {
        body.insert("listing_visibility".into(), Value::String(v.clone()));
    }
    let options = options_map(&a.options)?;
    if !options.is_empty() {
        body.insert("options".into(), Value::Object(options));
    }
    if body.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give -description, -default-lease-ttl, -max-lease-ttl, \
             -listing-visibility or -options"
                .into(),
        ));
    }
    Ok(Value::Object(body))
}

async fn tune(
    ctx: &Ctx<'_>,
    session: &mut Session,
    table: Table,
    a: TuneArgs,
) -> Result<u8, CliError> {
    let path = mount_path(&a.path)?;
    let body = tune_body(&a)?;
    ctx.client
        .write(&format!("{}/{path}tune", table.api()), &body)
        .await?;
    let msg = match table {
        Table::Secrets => format!("Success! Tuned the secrets engine at: {path}"),
        Table::Auth => format!("Success! Tuned the auth method at: {path}"),
    };
    success(ctx, session, &msg)
}

async fn list(
    ctx: &Ctx<'_>,
    session: &mut Session,
    table: Table,
    detailed: bool,
) -> Result<u8, CliError> {
    let answer = ctx.client.read(table.api()).await?;
    let mounts: Map<String, Value> = answer
        .as_ref()
        .and_then(|s| s.data.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| v.get("type").is_some())
        .collect();
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Object(mounts)));
        return Ok(0);
    }
    session.out.push_str(&list_text(&mounts, detailed));
    Ok(0)
}

/// The `Path  Type  Accessor  Description` table (more columns with `-detailed`),
/// sorted by path.
pub fn list_text(mounts: &Map<String, Value>, detailed: bool) -> String {
    let mut paths: Vec<&String> = mounts.keys().collect();
    paths.sort();
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => "n/a".to_string(),
    };
    let ttl = |v: &Value, key: &str| match v.get("config").and_then(|c| c.get(key)) {
        Some(Value::Number(n)) if n.as_i64() == Some(0) => "system".to_string(),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(fmt_duration)
            .unwrap_or_else(|| n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => "system".to_string(),
    };
    let options = |v: &Value| match v.get("options") {
        Some(Value::Object(m)) if !m.is_empty() => {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", output::fmt_value(v)))
                .collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
        _ => "map[]".to_string(),
    };
    let rows: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let m = &mounts[p.as_str()];
            if detailed {
                vec![
                    p.to_string(),
                    text(m, "type"),
                    text(m, "accessor"),
                    ttl(m, "default_lease_ttl"),
                    ttl(m, "max_lease_ttl"),
                    options(m),
                    text(m, "description"),
                    text(m, "uuid"),
                ]
            } else {
                vec![
                    p.to_string(),
                    text(m, "type"),
                    text(m, "accessor"),
                    text(m, "description"),
                ]
            }
        })
        .collect();
    if detailed {
        output::columns(
            &[
                "Path",
                "Plugin",
                "Accessor",
                "Default TTL",
                "Max TTL",
                "Options",
                "Description",
                "UUID",
            ],
            &rows,
        )
    } else {
        output::columns(&["Path", "Type", "Accessor", "Description"], &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enable_args(kind: &str) -> EnableArgs {
        EnableArgs {
            path: None,
            description: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            options: vec![],
            version: None,
            listing_visibility: None,
            local: false,
            kind: kind.into(),
        }
    }

    #[test]
    fn kv_v2_is_kv_with_version_2() {
        let (body, kind) = enable_body(&enable_args("kv-v2")).unwrap();
        assert_eq!(kind, "kv");
        assert_eq!(body["type"], "kv");
        assert_eq!(body["options"]["version"], "2");
        let a = EnableArgs {
            options: vec!["version=2".into(), "x=y=z".into()],
            max_lease_ttl: Some("24h".into()),
            ..enable_args("kv")
        };
        let (body, _) = enable_body(&a).unwrap();
        assert_eq!(body["options"], json!({"version": "2", "x": "y=z"}));
        assert_eq!(body["config"]["max_lease_ttl"], "24h");
        let (body, _) = enable_body(&enable_args("userpass")).unwrap();
        assert!(body.get("options").is_none());
        assert!(enable_body(&enable_args(" ")).is_err());
    }

    #[test]
    fn tune_needs_a_change() {
        let a = TuneArgs {
            description: None,
            default_lease_ttl: None,
            max_lease_ttl: Some("1h".into()),
            options: vec![],
            listing_visibility: None,
            path: "secret".into(),
        };
        assert_eq!(tune_body(&a).unwrap(), json!({"max_lease_ttl": "1h"}));
        let none = TuneArgs {
            max_lease_ttl: None,
            ..a
        };
        assert!(tune_body(&none).is_err());
    }

    #[test]
    fn mount_paths_end_in_one_slash() {
        assert_eq!(mount_path("/secret//").unwrap(), "secret/");
        assert!(mount_path("/").is_err());
    }

    #[test]
    fn list_table() {
        let mounts = json!({
            "secret/": {"type": "kv", "accessor": "kv_1", "description": "",
                        "options": {"version": "2"}, "config": {"default_lease_ttl": 0,
                        "max_lease_ttl": 3600}, "uuid": "u1"},
            "cubbyhole/": {"type": "cubbyhole", "accessor": "c_1", "description": "private"},
        });
        let m = mounts.as_object().unwrap();
        assert_eq!(
            list_text(m, false),
            "Path          Type         Accessor    Description\n\
             ----          ----         --------    -----------\n\
             cubbyhole/    cubbyhole    c_1         private\n\
             secret/       kv           kv_1        n/a\n"
        );
        let detailed = list_text(m, true);
        assert!(detailed.contains("map[version:2]"), "{detailed}");
        assert!(
            detailed.contains("system") && detailed.contains("1h"),
            "{detailed}"
        );
    }
}
