//! `coffer login` and the token file (`~/.coffer-token`, or `$COFFER_TOKEN_FILE`): verify a
//! token with `lookup-self`, store it with mode 0600 set at creation, print who it is.
//! Auth methods are dispatched by `-method`; only `token` exists so far, and a method such
//! as `userpass` only has to produce a token and hand it to [`finish_login`].

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use coffer_client::Secret;
use serde_json::Value;
use zeroize::Zeroizing;

use super::output::{self, fmt_value, Format, Rows};
use super::{secret_arg, CliError, Ctx, Session, TokenSource};

/// Arguments of `coffer login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Auth method. Only `token` is supported for now.
    #[arg(long, default_value = "token")]
    pub method: String,
    /// Verify the token but do not write it to the token file.
    #[arg(long = "no-store")]
    pub no_store: bool,
    /// For `-method=token`: the token (or token=TOKEN); `-` reads it from stdin; prompted
    /// without echo when omitted. Other methods will take key=value pairs.
    #[arg(value_name = "TOKEN | K=V")]
    pub args: Vec<String>,
}

/// Dispatch on `-method`.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, a: LoginArgs) -> Result<u8, CliError> {
    match a.method.as_str() {
        "token" => login_token(ctx, session, &a).await,
        other => Err(CliError::Usage(format!(
            "unsupported auth method {other:?} (supported: token)"
        ))),
    }
}

async fn login_token(ctx: &Ctx<'_>, session: &mut Session, a: &LoginArgs) -> Result<u8, CliError> {
    let arg = match a.args.as_slice() {
        [] => None,
        [one] => Some(one.strip_prefix("token=").unwrap_or(one)),
        _ => {
            return Err(CliError::Usage(
                "login -method=token takes a single TOKEN argument".into(),
            ))
        }
    };
    let token = secret_arg(session, arg, "Token (will be hidden): ", "token")?;
    let client = ctx.client.clone().with_token(token.as_str());
    let lookup = client.token_lookup_self().await?;
    finish_login(ctx, session, &token, &lookup, a.no_store)
}

/// Store the verified token (unless `no_store`) and print the login report.
pub fn finish_login(
    ctx: &Ctx<'_>,
    session: &mut Session,
    token: &str,
    lookup: &Secret,
    no_store: bool,
) -> Result<u8, CliError> {
    let stored_at = if no_store {
        None
    } else {
        let path = ctx.settings.token_file.clone().ok_or_else(|| {
            CliError::Failed("cannot locate the token file: set HOME or COFFER_TOKEN_FILE".into())
        })?;
        write_token_file(&path, token)?;
        Some(path)
    };
    if let TokenSource::Env(name) = &ctx.settings.token_source {
        session.warnings.push(format!(
            "{name} is set and takes precedence over the token file; unset it to use this login"
        ));
    }
    match ctx.format {
        Format::Json => session.out.push_str(&output::json(lookup.raw())),
        Format::Table => session
            .out
            .push_str(&login_text(stored_at.as_deref(), &login_rows(lookup))),
    }
    Ok(0)
}

fn login_text(stored_at: Option<&Path>, rows: &Rows) -> String {
    let head = match stored_at {
        Some(path) => format!(
            "Success! You are now authenticated. The token is stored in {}\n\
             and future coffer commands will use it.\n\n",
            path.display()
        ),
        None => "Success! The token is valid (not stored).\n\n".to_string(),
    };
    format!("{head}{}", output::table(rows))
}

/// Who the token is: display name, accessor, policies, remaining TTL and expiry.
pub fn login_rows(lookup: &Secret) -> Rows {
    let get = |k: &str| lookup.data_field(k).cloned().unwrap_or(Value::Null);
    let ttl = match get("ttl").as_i64() {
        Some(0) => "∞".to_string(),
        Some(secs) => output::fmt_duration(secs),
        None => "n/a".to_string(),
    };
    vec![
        ("display_name".into(), fmt_value(&get("display_name"))),
        ("token_accessor".into(), fmt_value(&get("accessor"))),
        ("token_policies".into(), fmt_value(&get("policies"))),
        ("token_duration".into(), ttl),
        ("expire_time".into(), fmt_value(&get("expire_time"))),
        ("token_renewable".into(), fmt_value(&get("renewable"))),
    ]
}

/// The stored token, trimmed; `None` when the file does not exist or is empty.
pub fn read_token_file(path: &Path) -> Result<Option<Zeroizing<String>>, CliError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let token = text.trim();
            Ok((!token.is_empty()).then(|| Zeroizing::new(token.to_string())))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Failed(format!(
            "cannot read token file {}: {e}",
            path.display()
        ))),
    }
}

/// Write the token file atomically: a new file created with mode 0600 next to the target
/// (never chmod-ed afterwards), then renamed over it, so the token is never readable by
/// others, even for a moment, and an older file with wider permissions is replaced.
pub fn write_token_file(path: &Path, token: &str) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::Failed(format!("cannot {what} token file {}: {e}", path.display()))
    };
    let tmp = temp_path(path);
    let _ = fs::remove_file(&tmp);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| fail("create", e))?;
    let written = file
        .write_all(token.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "coffer-token".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_created_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".coffer-token");
        write_token_file(&path, "hvs.NEW").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "hvs.NEW\n");
        assert_eq!(
            read_token_file(&path)
                .unwrap()
                .as_deref()
                .map(String::as_str),
            Some("hvs.NEW")
        );
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn existing_world_readable_file_is_replaced_with_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_token_file(&path, "hvs.NEW").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "hvs.NEW\n");
    }

    #[test]
    fn missing_or_empty_token_file_is_no_token() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_token_file(&dir.path().join("none")).unwrap().is_none());
        let empty = dir.path().join("empty");
        fs::write(&empty, " \n").unwrap();
        assert!(read_token_file(&empty).unwrap().is_none());
    }

    #[test]
    fn unwritable_location_is_an_error() {
        let err = write_token_file(Path::new("/nonexistent-dir/x/.coffer-token"), "t").unwrap_err();
        assert!(
            err.to_string().contains("cannot create token file"),
            "{err}"
        );
        assert!(!err.to_string().contains(" t\n"));
    }

    #[test]
    fn login_rows_show_identity_not_token() {
        let s = Secret::from_value(serde_json::json!({"data": {
            "id": "hvs.SECRET", "accessor": "acc1", "display_name": "token-ci",
            "policies": ["default", "ci"], "ttl": 3600, "expire_time": "2030-01-01T00:00:00Z",
            "renewable": true
        }}))
        .unwrap();
        let rows = login_rows(&s);
        assert!(rows.iter().all(|(_, v)| !v.contains("hvs.SECRET")));
        assert!(rows.contains(&("token_policies".to_string(), "[default ci]".to_string())));
        assert!(rows.contains(&("token_duration".to_string(), "1h".to_string())));
        let root = Secret::from_value(serde_json::json!({"data": {"ttl": 0}})).unwrap();
        assert!(login_rows(&root).contains(&("token_duration".to_string(), "∞".to_string())));
    }
}
