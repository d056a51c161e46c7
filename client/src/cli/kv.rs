//! `coffer kv ...`: KV version 2 commands (get, put, patch, list, delete, undelete, destroy,
//! metadata get/put/delete) with `vault kv`-style paths (`secret/foo`, or `-mount`).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand};
use coffer_client::kv::kv_api_path;
use coffer_client::{KvMetadataUpdate, KvSecret, Ttl};
use serde_json::{Map, Value};

use super::args::{parse_data_args, parse_pair, split_mount, split_secret_path};
use super::output::{self, fmt_value, map_rows, titled_table, Format, Rows};
use super::{success, CliError, Ctx, Session};

/// `coffer kv ...`
#[derive(Debug, Subcommand)]
pub enum KvCmd {
    /// Read a secret (latest version, or -version=N).
    Get(GetArgs),
    /// Write a new version: PATH k=v [k=@file] [k=-] [-] ...
    Put(WriteArgs),
    /// Change some keys of the latest version, keeping the others.
    Patch(WriteArgs),
    /// List the keys under a path (folders end in /).
    List(PathArgs),
    /// Soft-delete the latest version, or the -versions given.
    Delete(DeleteArgs),
    /// Restore soft-deleted versions.
    Undelete(VersionsArgs),
    /// Permanently destroy the data of versions.
    Destroy(VersionsArgs),
    /// Read and change a secret's metadata (all versions).
    #[command(subcommand)]
    Metadata(MetadataCmd),
    /// Write the data of an older -version as a new version.
    Rollback(RollbackArgs),
}

/// Arguments of `kv rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// The version whose data becomes the newest version.
    #[arg(long, required = true)]
    pub version: u64,
    /// Secret path.
    pub path: String,
}

/// `coffer kv metadata ...`
#[derive(Debug, Subcommand)]
pub enum MetadataCmd {
    /// Show the settings and every version of a secret.
    Get(PathArgs),
    /// Change settings: -max-versions, -cas-required, -delete-version-after, -custom-metadata.
    Put(MetadataPutArgs),
    /// Change only the settings given, keeping the others (custom metadata keys merge).
    Patch(MetadataPutArgs),
    /// Delete a secret with all its versions and metadata.
    Delete(PathArgs),
}

/// Arguments of `kv get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Version to read (default: latest).
    #[arg(long)]
    pub version: Option<u64>,
    /// Print only this key's value.
    #[arg(long)]
    pub field: Option<String>,
    /// Secret path, e.g. secret/app/db.
    pub path: String,
}

/// Arguments of `kv put` and `kv patch`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Check-and-set: only write if the current version is N (0 = only if new).
    #[arg(long)]
    pub cas: Option<u64>,
    /// Secret path, e.g. secret/app/db.
    pub path: String,
    /// Data: k=v, k=@file (file contents), k=- (stdin), or - / @file.json (a JSON object).
    #[arg(required = true, value_name = "K=V")]
    pub data: Vec<String>,
}

/// A path with an optional mount.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Path, e.g. secret/app.
    pub path: String,
}

/// Arguments of `kv delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Versions to delete, e.g. -versions=1,2 (default: the latest).
    #[arg(long, value_delimiter = ',')]
    pub versions: Vec<u64>,
    /// Secret path.
    pub path: String,
}

/// Arguments of `kv undelete` / `kv destroy`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Versions, e.g. -versions=1,2.
    #[arg(long, value_delimiter = ',', required = true)]
    pub versions: Vec<u64>,
    /// Secret path.
    pub path: String,
}

/// Arguments of `kv metadata put`.
#[derive(Debug, Args)]
pub struct MetadataPutArgs {
    /// KV mount; without it the first segment of PATH is the mount.
    #[arg(long)]
    pub mount: Option<String>,
    /// Number of versions to keep (0 = the mount's default).
    #[arg(long = "max-versions")]
    pub max_versions: Option<u64>,
    /// Require -cas on every write (-cas-required or -cas-required=false).
    #[arg(
        long = "cas-required",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub cas_required: Option<bool>,
    /// Soft-delete versions this long after writing them (e.g. 720h; 0s = never).
    #[arg(long = "delete-version-after")]
    pub delete_version_after: Option<String>,
    /// Custom metadata key=value (repeatable).
    #[arg(long = "custom-metadata", value_name = "K=V")]
    pub custom_metadata: Vec<String>,
    /// Secret path.
    pub path: String,
}

/// Dispatch a kv subcommand.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: KvCmd) -> Result<u8, CliError> {
    match cmd {
        KvCmd::Get(a) => get(ctx, session, a).await,
        KvCmd::Put(a) => write(ctx, session, a, false).await,
        KvCmd::Patch(a) => write(ctx, session, a, true).await,
        KvCmd::List(a) => list(ctx, session, a).await,
        KvCmd::Delete(a) => {
            let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
            ctx.client.kv_delete(&mount, &path, &a.versions).await?;
            let endpoint = if a.versions.is_empty() {
                "data"
            } else {
                "delete"
            };
            success(
                ctx,
                session,
                &format!(
                    "Success! Data deleted (if it existed) at: {}",
                    kv_api_path(&mount, endpoint, &path)
                ),
            )
        }
        KvCmd::Undelete(a) => {
            let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
            ctx.client.kv_undelete(&mount, &path, &a.versions).await?;
            success(ctx, session, &written_to(&mount, "undelete", &path))
        }
        KvCmd::Destroy(a) => {
            let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
            ctx.client.kv_destroy(&mount, &path, &a.versions).await?;
            success(ctx, session, &written_to(&mount, "destroy", &path))
        }
        KvCmd::Metadata(MetadataCmd::Get(a)) => metadata_get(ctx, session, a).await,
        KvCmd::Metadata(MetadataCmd::Put(a)) => metadata_put(ctx, session, a).await,
        KvCmd::Metadata(MetadataCmd::Patch(a)) => metadata_patch(ctx, session, a).await,
        KvCmd::Rollback(a) => rollback(ctx, session, a).await,
        KvCmd::Metadata(MetadataCmd::Delete(a)) => {
            let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
            ctx.client.kv_metadata_delete(&mount, &path).await?;
            success(
                ctx,
                session,
                &format!(
                    "Success! Data deleted (if it existed) at: {}",
                    kv_api_path(&mount, "metadata", &path)
                ),
            )
        }
    }
}

fn written_to(mount: &str, endpoint: &str, path: &str) -> String {
    format!(
        "Success! Data written to: {}",
        kv_api_path(mount, endpoint, path)
    )
}

fn path_header(title: &str, api_path: &str) -> String {
    let width = api_path.chars().count();
    format!("{}{api_path}\n\n", output::section(title, width))
}

/// Version metadata rows; an empty `deletion_time` reads `n/a`.
pub fn version_rows(meta: &Map<String, Value>) -> Rows {
    map_rows(meta)
        .into_iter()
        .map(|(k, v)| {
            if v.is_empty() && k == "deletion_time" {
                (k, "n/a".to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

/// Human output of `kv get`: path, version metadata and (if present) data.
pub fn kv_get_text(api_path: &str, secret: &KvSecret) -> String {
    let mut out = path_header("Secret Path", api_path);
    let meta = secret
        .secret
        .data_field("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    out.push_str(&titled_table("Metadata", &version_rows(&meta)));
    if let Some(data) = &secret.data {
        out.push('\n');
        out.push_str(&titled_table("Data", &map_rows(data)));
    }
    out
}

async fn get(ctx: &Ctx<'_>, session: &mut Session, a: GetArgs) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let shown = format!("{mount}/{path}");
    let Some(secret) = ctx.client.kv_get(&mount, &path, a.version).await? else {
        return Err(CliError::NotFound(match a.version {
            Some(v) => format!("no version {v} of a secret at {shown}"),
            None => format!("no secret at {shown}"),
        }));
    };
    let version = secret.metadata.version;
    if secret.data.is_none() {
        if a.field.is_none() {
            render_get(ctx, session, &mount, &path, &secret);
        }
        let msg = if secret.is_destroyed() {
            format!("version {version} of {shown} has been destroyed")
        } else if secret.is_deleted() {
            format!(
                "version {version} of {shown} has been deleted (restore it with: coffer kv undelete -versions={version} {shown})"
            )
        } else {
            format!("version {version} of {shown} has no data")
        };
        return Err(CliError::NotFound(msg));
    }
    if let Some(field) = &a.field {
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(field))
            .ok_or_else(|| CliError::Failed(format!("Field {field:?} not present in {shown}")))?;
        push_field(session, &fmt_value(value));
        return Ok(0);
    }
    render_get(ctx, session, &mount, &path, &secret);
    Ok(0)
}

fn render_get(ctx: &Ctx<'_>, session: &mut Session, mount: &str, path: &str, s: &KvSecret) {
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, s.raw())),
        Format::Table => session
            .out
            .push_str(&kv_get_text(&kv_api_path(mount, "data", path), s)),
    }
}

/// A `-field` value: raw, with a newline only when stdout is a terminal (like `vault`),
/// so `coffer kv get -field=cert secret/x > cert.pem` writes the value exactly.
pub fn push_field(session: &mut Session, value: &str) {
    session.out.push_str(value);
    if std::io::stdout().is_terminal() {
        session.out.push('\n');
    }
}

async fn write(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: WriteArgs,
    patch: bool,
) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let data = parse_data_args(&a.data, &mut std::io::stdin().lock())?;
    if data.is_empty() {
        return Err(CliError::Usage(
            "no data given: pass key=value pairs".into(),
        ));
    }
    let data = Value::Object(data);
    let answer = if patch {
        ctx.client.kv_patch(&mount, &path, &data, a.cas).await?
    } else {
        ctx.client.kv_put(&mount, &path, &data, a.cas).await?
    };
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, answer.raw())),
        Format::Table => {
            let api_path = kv_api_path(&mount, "data", &path);
            session.out.push_str(&path_header("Secret Path", &api_path));
            let meta = answer.data.clone().unwrap_or_default();
            session
                .out
                .push_str(&titled_table("Metadata", &version_rows(&meta)));
        }
    }
    Ok(0)
}

async fn list(ctx: &Ctx<'_>, session: &mut Session, a: PathArgs) -> Result<u8, CliError> {
    let (mount, path) = split_mount(&a.path, a.mount.as_deref())?;
    let keys = ctx.client.kv_list(&mount, &path).await?;
    if keys.is_empty() {
        return Err(CliError::NotFound(format!(
            "no keys under {}",
            kv_api_path(&mount, "metadata", &path)
        )));
    }
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, &Value::from(keys))),
        Format::Table => session.out.push_str(&list_text(&keys)),
    }
    Ok(0)
}

/// `Keys` / `----` / one key per line, as the server ordered them.
pub fn list_text(keys: &[String]) -> String {
    let mut out = String::from("Keys\n----\n");
    for k in keys {
        out.push_str(k);
        out.push('\n');
    }
    out
}

async fn metadata_get(ctx: &Ctx<'_>, session: &mut Session, a: PathArgs) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let Some(secret) = ctx.client.kv_metadata_get(&mount, &path).await? else {
        return Err(CliError::NotFound(format!("no secret at {mount}/{path}")));
    };
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, secret.raw())),
        Format::Table => {
            let data = secret.data.clone().unwrap_or_default();
            session.out.push_str(&metadata_text(
                &kv_api_path(&mount, "metadata", &path),
                &data,
            ));
        }
    }
    Ok(0)
}

/// Human output of `kv metadata get`: settings, then one section per version (ascending).
pub fn metadata_text(api_path: &str, data: &Map<String, Value>) -> String {
    let mut out = path_header("Metadata Path", api_path);
    let mut settings = data.clone();
    let versions = settings.remove("versions");
    out.push_str(&titled_table("Metadata", &map_rows(&settings)));
    if let Some(Value::Object(versions)) = versions {
        let mut numbered: Vec<(u64, &Value)> = versions
            .iter()
            .filter_map(|(k, v)| k.parse::<u64>().ok().map(|n| (n, v)))
            .collect();
        numbered.sort_by_key(|(n, _)| *n);
        for (n, v) in numbered {
            if let Some(meta) = v.as_object() {
                out.push('\n');
                out.push_str(&titled_table(&format!("Version {n}"), &version_rows(meta)));
            }
        }
    }
    out
}

async fn metadata_put(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: MetadataPutArgs,
) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let update = metadata_update(&a)?;
    if update == KvMetadataUpdate::default() {
        return Err(CliError::Usage(
            "nothing to change: give -max-versions, -cas-required, -delete-version-after or -custom-metadata".into(),
        ));
    }
    ctx.client.kv_metadata_put(&mount, &path, &update).await?;
    success(ctx, session, &written_to(&mount, "metadata", &path))
}

async fn metadata_patch(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: MetadataPutArgs,
) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let update = metadata_update(&a)?;
    if update == KvMetadataUpdate::default() {
        return Err(CliError::Usage(
            "nothing to change: give -max-versions, -cas-required, -delete-version-after or -custom-metadata".into(),
        ));
    }
    let body = serde_json::to_value(&update)
        .map_err(|e| CliError::Failed(format!("cannot encode the metadata: {e}")))?;
    ctx.client
        .patch(&kv_api_path(&mount, "metadata", &path), &body)
        .await?;
    success(ctx, session, &written_to(&mount, "metadata", &path))
}

/// `kv rollback -version=N`: the data of version N, written as a new version with
/// check-and-set on the current one, so a write in between is not overwritten.
async fn rollback(ctx: &Ctx<'_>, session: &mut Session, a: RollbackArgs) -> Result<u8, CliError> {
    let (mount, path) = split_secret_path(&a.path, a.mount.as_deref())?;
    let shown = format!("{mount}/{path}");
    let Some(meta) = ctx.client.kv_metadata_get(&mount, &path).await? else {
        return Err(CliError::NotFound(format!("no secret at {shown}")));
    };
    let current = meta
        .data_field("current_version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if a.version == 0 || a.version > current {
        return Err(CliError::Usage(format!(
            "-version must be between 1 and the current version {current} of {shown}"
        )));
    }
    let Some(old) = ctx.client.kv_get(&mount, &path, Some(a.version)).await? else {
        return Err(CliError::NotFound(format!(
            "no version {} of a secret at {shown}",
            a.version
        )));
    };
    let Some(data) = old.data.clone() else {
        return Err(CliError::NotFound(format!(
            "version {} of {shown} has been deleted or destroyed: nothing to roll back to",
            a.version
        )));
    };
    let answer = ctx
        .client
        .kv_put(&mount, &path, &Value::Object(data), Some(current))
        .await?;
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, answer.raw())),
        Format::Table => {
            let api_path = kv_api_path(&mount, "data", &path);
            session.out.push_str(&path_header("Secret Path", &api_path));
            let meta = answer.data.clone().unwrap_or_default();
            session
                .out
                .push_str(&titled_table("Metadata", &version_rows(&meta)));
        }
    }
    Ok(0)
}

/// The request body for `kv metadata put` from its flags.
pub fn metadata_update(a: &MetadataPutArgs) -> Result<KvMetadataUpdate, CliError> {
    let custom_metadata = if a.custom_metadata.is_empty() {
        None
    } else {
        let mut map = BTreeMap::new();
        for pair in &a.custom_metadata {
            let (k, v) = parse_pair(pair, "-custom-metadata")?;
            map.insert(k, v);
        }
        Some(map)
    };
    Ok(KvMetadataUpdate {
        max_versions: a.max_versions,
        cas_required: a.cas_required,
        delete_version_after: a.delete_version_after.as_deref().map(Ttl::parse),
        custom_metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_client::Secret;
    use serde_json::json;

    fn kv_secret(v: Value) -> KvSecret {
        // Build through the public API the way kv_get does.
        let secret = Secret::from_value(v).unwrap();
        let meta = secret
            .data_field("metadata")
            .cloned()
            .map(|m| serde_json::from_value(m).unwrap())
            .unwrap_or_default();
        let data = secret
            .data_field("data")
            .and_then(Value::as_object)
            .cloned();
        KvSecret {
            data,
            metadata: meta,
            secret,
        }
    }

    #[test]
    fn get_text_has_metadata_then_sorted_data() {
        let s = kv_secret(json!({"data": {
            "data": {"zz": "last", "password": "p@ss", "n": 3},
            "metadata": {"created_time": "2024-01-01T00:00:00Z", "custom_metadata": null,
                         "deletion_time": "", "destroyed": false, "version": 2}
        }}));
        let text = kv_get_text("secret/data/foo", &s);
        let expected = "\
=== Secret Path ===
secret/data/foo

============== Metadata ===============
Key                Value
---                -----
created_time       2024-01-01T00:00:00Z
custom_metadata    n/a
deletion_time      n/a
destroyed          false
version            2

===== Data ======
Key         Value
---         -----
n           3
password    p@ss
zz          last
";
        assert_eq!(text, expected);
    }

    #[test]
    fn deleted_version_text_has_no_data_section() {
        let s = kv_secret(json!({"data": {"data": null, "metadata": {
            "created_time": "t0", "deletion_time": "t1", "destroyed": false, "version": 1}}}));
        let text = kv_get_text("secret/data/foo", &s);
        assert!(text.contains("\ndeletion_time    t1\n"), "{text}");
        assert!(!text.contains("Data ="), "{text}");
    }

    #[test]
    fn metadata_text_orders_versions_numerically() {
        let data = json!({
            "current_version": 10, "max_versions": 0, "cas_required": false,
            "versions": {
                "10": {"created_time": "b", "deletion_time": "", "destroyed": false},
                "9": {"created_time": "a", "deletion_time": "x", "destroyed": false}
            }
        });
        let text = metadata_text("secret/metadata/foo", data.as_object().unwrap());
        let v9 = text.find("Version 9 ").unwrap();
        let v10 = text.find("Version 10 ").unwrap();
        assert!(v9 < v10, "{text}");
        assert!(text.contains("current_version    10"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("versions")), "{text}");
    }

    #[test]
    fn list_text_lists_keys() {
        assert_eq!(list_text(&["a".into(), "b/".into()]), "Keys\n----\na\nb/\n");
    }

    #[test]
    fn metadata_update_from_flags() {
        let a = MetadataPutArgs {
            mount: None,
            max_versions: Some(5),
            cas_required: Some(true),
            delete_version_after: Some("3600".into()),
            custom_metadata: vec!["owner=team=a".into(), "env=prod".into()],
            path: "secret/x".into(),
        };
        let body = serde_json::to_value(metadata_update(&a).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"max_versions": 5, "cas_required": true, "delete_version_after": 3600,
                   "custom_metadata": {"env": "prod", "owner": "team=a"}})
        );
        let bad = MetadataPutArgs {
            custom_metadata: vec!["novalue".into()],
            ..a
        };
        assert!(metadata_update(&bad).is_err());
    }
}
