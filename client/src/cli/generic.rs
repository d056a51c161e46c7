//! `coffer read|write|list|delete|patch PATH`: the generic commands on any API path, with
//! `vault`'s arguments (`k=v`, `k=@file`, `k=-`, `-` for a JSON object on stdin,
//! `-f`/`-force` to send no data) and its output: a `Key  Value` table of the answer's
//! lease, auth and data fields, `-field` for one raw value, or the whole answer as JSON
//! or YAML. "Nothing there" is exit 2, like every other answer from the server.

use clap::Args;
use coffer_client::Secret;
use serde_json::Value;

use super::args::parse_data_args;
use super::kv::{list_text, push_field};
use super::output::{self, fmt_duration, map_rows, Rows};
use super::token::auth_rows;
use super::{CliError, Ctx, Session};

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Print only this field's value.
    #[arg(long)]
    pub field: Option<String>,
    /// The API path, e.g. sys/key-status or secret/data/app.
    pub path: String,
    /// Query parameters as k=v (e.g. version=2).
    #[arg(value_name = "K=V")]
    pub params: Vec<String>,
}

/// Arguments of `write` and `patch`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Send the request without data (no body).
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Print only this field of the answer.
    #[arg(long)]
    pub field: Option<String>,
    /// The API path.
    pub path: String,
    /// Data: k=v, k=@file (file contents), k=- (stdin), or - / @file.json (a JSON object).
    #[arg(value_name = "K=V")]
    pub data: Vec<String>,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The API path, e.g. secret/metadata/ or auth/userpass/users.
    pub path: String,
}

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The API path.
    pub path: String,
    /// Query parameters as k=v.
    #[arg(value_name = "K=V")]
    pub params: Vec<String>,
}

/// The API path as typed, without leading or trailing slashes, and never empty.
pub fn api_path(path: &str) -> Result<String, CliError> {
    let trimmed = path.trim().trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("v1/").unwrap_or(trimmed);
    if trimmed.trim_matches('/').is_empty() {
        return Err(CliError::Usage("missing PATH, e.g. sys/key-status".into()));
    }
    Ok(trimmed.to_string())
}

fn query_pairs(params: &[String]) -> Result<Vec<(String, String)>, CliError> {
    params
        .iter()
        .map(|p| super::args::parse_pair(p, "query parameters"))
        .collect()
}

/// `coffer read PATH [k=v...]`.
pub async fn read(ctx: &Ctx<'_>, session: &mut Session, a: ReadArgs) -> Result<u8, CliError> {
    let path = api_path(&a.path)?;
    let query = query_pairs(&a.params)?;
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resp = ctx
        .client
        .request(coffer_client::Method::GET, &path, &pairs, None, &[])
        .await?;
    let secret = coffer_client::optional_answer(resp)?;
    let Some(secret) = secret else {
        return Err(CliError::NotFound(format!("No value found at {path}")));
    };
    render_secret(ctx, session, &secret, a.field.as_deref())
}

/// `coffer write|patch PATH [data...]`.
pub async fn write(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: WriteArgs,
    patch: bool,
) -> Result<u8, CliError> {
    let path = api_path(&a.path)?;
    let data = parse_data_args(&a.data, &mut std::io::stdin().lock())?;
    if data.is_empty() && !a.force {
        return Err(CliError::Usage(
            "Must supply data or use -force (give k=v pairs, or - for JSON on stdin)".into(),
        ));
    }
    let answer = if data.is_empty() {
        // -force without data: a request without a body, as `vault write -f` means it.
        let method = if patch {
            coffer_client::Method::PATCH
        } else {
            coffer_client::Method::POST
        };
        let resp = ctx
            .client
            .request(method, &path, &[], None, &[])
            .await?
            .error_for_status()?;
        resp.body.map(Secret::from_value).transpose()?
    } else if patch {
        ctx.client.patch(&path, &Value::Object(data)).await?
    } else {
        ctx.client.write(&path, &Value::Object(data)).await?
    };
    match answer {
        Some(secret) if has_content(&secret) => {
            render_secret(ctx, session, &secret, a.field.as_deref())
        }
        other => {
            if let Some(field) = &a.field {
                return Err(missing_field(field));
            }
            if let Some(secret) = &other {
                session.warnings.extend(server_warnings(secret));
            }
            if ctx.format.is_structured() {
                if let Some(secret) = &other {
                    session
                        .out
                        .push_str(&output::structured(ctx.format, secret.raw()));
                }
            } else {
                session
                    .out
                    .push_str(&format!("Success! Data written to: {path}\n"));
            }
            Ok(0)
        }
    }
}

/// `coffer list PATH`: the `keys` of a LIST answer.
pub async fn list(ctx: &Ctx<'_>, session: &mut Session, a: ListArgs) -> Result<u8, CliError> {
    let path = api_path(&a.path)?;
    let secret = ctx.client.list(&path).await?;
    let keys: Vec<Value> = secret
        .as_ref()
        .and_then(|s| s.data_field("keys"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(CliError::NotFound(format!("No value found at {path}")));
    }
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Array(keys)));
    } else {
        let names: Vec<String> = keys.iter().map(output::fmt_value).collect();
        session.out.push_str(&list_text(&names));
    }
    Ok(0)
}

/// `coffer delete PATH [k=v...]`.
pub async fn delete(ctx: &Ctx<'_>, session: &mut Session, a: DeleteArgs) -> Result<u8, CliError> {
    let path = api_path(&a.path)?;
    let query = query_pairs(&a.params)?;
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resp = ctx
        .client
        .request(coffer_client::Method::DELETE, &path, &pairs, None, &[])
        .await?
        .error_for_status()?;
    if let Some(body) = resp.body {
        if let Ok(secret) = Secret::from_value(body) {
            session.warnings.extend(server_warnings(&secret));
        }
    }
    if !ctx.format.is_structured() {
        session.out.push_str(&format!(
            "Success! Data deleted (if it existed) at: {path}\n"
        ));
    }
    Ok(0)
}

/// Whether an answer has anything to show beyond the envelope (data, auth or a lease).
fn has_content(s: &Secret) -> bool {
    s.data.as_ref().is_some_and(|d| !d.is_empty()) || s.auth.is_some() || s.lease_duration > 0
}

fn server_warnings(s: &Secret) -> Vec<String> {
    s.warnings.clone().unwrap_or_default()
}

fn missing_field(field: &str) -> CliError {
    CliError::Failed(format!("Field {field:?} not present in secret"))
}

/// The `vault read` table of an answer: lease (or refresh interval), auth, then data.
pub fn secret_rows(s: &Secret) -> Rows {
    let mut rows = Rows::new();
    if s.lease_duration > 0 {
        if s.lease_id.is_empty() {
            rows.push(("refresh_interval".into(), fmt_duration(s.lease_duration)));
        } else {
            rows.push(("lease_id".into(), s.lease_id.clone()));
            rows.push(("lease_duration".into(), fmt_duration(s.lease_duration)));
            rows.push(("lease_renewable".into(), s.renewable.to_string()));
        }
    }
    if let Some(auth) = &s.auth {
        rows.extend(auth_rows(auth));
    }
    rows.extend(map_rows(&s.data.clone().unwrap_or_default()));
    rows
}

/// Print an answer: one `-field`, the structured answer, or the table and warnings.
pub fn render_secret(
    ctx: &Ctx<'_>,
    session: &mut Session,
    secret: &Secret,
    field: Option<&str>,
) -> Result<u8, CliError> {
    if let Some(field) = field {
        // A data value is printed as the server sent it (a string raw, anything else as
        // JSON); auth and lease fields from the table.
        let value = match secret.data_field(field) {
            Some(Value::String(s)) => s.clone(),
            Some(other) if !other.is_null() => other.to_string(),
            _ => output::pick_field(&secret_rows(secret), field)
                .ok_or_else(|| missing_field(field))?,
        };
        push_field(session, &value);
        return Ok(0);
    }
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, secret.raw()));
        return Ok(0);
    }
    session.out.push_str(&output::table(&secret_rows(secret)));
    let warnings = server_warnings(secret);
    if !warnings.is_empty() {
        session.out.push_str(&warnings_text(&warnings));
    }
    Ok(0)
}

/// `WARNING! The following warnings were returned from the server:` and a bullet list.
pub fn warnings_text(warnings: &[String]) -> String {
    let mut out =
        String::from("\nWARNING! The following warnings were returned from the server:\n\n");
    for w in warnings {
        out.push_str(&format!("  * {w}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_lose_slashes_and_v1() {
        assert_eq!(api_path("/sys/mounts").unwrap(), "sys/mounts");
        assert_eq!(api_path("v1/sys/mounts").unwrap(), "sys/mounts");
        assert_eq!(api_path("secret/metadata/").unwrap(), "secret/metadata/");
        assert!(api_path(" / ").is_err());
    }

    #[test]
    fn rows_show_lease_auth_then_data() {
        let s = Secret::from_value(json!({
            "lease_id": "", "lease_duration": 3600, "renewable": false,
            "data": {"zeta": 1, "alpha": "a"}
        }))
        .unwrap();
        let rows = secret_rows(&s);
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["refresh_interval", "alpha", "zeta"]);
        assert_eq!(rows[0].1, "1h");
        let s = Secret::from_value(json!({
            "lease_id": "db/creds/x/abc", "lease_duration": 60, "renewable": true,
            "auth": {"client_token": "hvs.T", "accessor": "acc", "policies": ["default"],
                     "token_policies": ["default"], "lease_duration": 60, "renewable": true}
        }))
        .unwrap();
        let rows = secret_rows(&s);
        assert_eq!(rows[0], ("lease_id".into(), "db/creds/x/abc".into()));
        assert!(rows.contains(&("token".into(), "hvs.T".into())));
        assert!(has_content(&s));
        let empty = Secret::from_value(json!({"data": {}})).unwrap();
        assert!(!has_content(&empty));
    }

    #[test]
    fn warnings_are_listed() {
        assert_eq!(
            warnings_text(&["a".into()]),
            "\nWARNING! The following warnings were returned from the server:\n\n  * a\n"
        );
    }
}
