//! `coffer login`, `coffer logout` and the token file (`~/.vault-token`, shared with
//! `vault` and `bao`, or
//! `$COFFER_TOKEN_FILE`, mode 0600 set at creation).
//!
//! Methods: `token` verifies a token with `lookup-self`; `userpass` sends a password (never
//! taken from argv, see [`super::credentials`]), answers the TOTP `mfa_requirement` through
//! `sys/mfa/validate` (or sends `-code` with the password), and stores the token it gets.
//! Both end in [`finish_login`]. `logout` revokes the token (`revoke-self`) and removes the
//! token file.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use coffer_client::{Auth, LoginOutcome, Secret, SecretString, DEFAULT_USERPASS_MOUNT};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::credentials::{self, CODE_ENV, CODE_PROMPT, NO_PASSWORD_ARGS};
use super::output::{self, fmt_value, Format, Rows};
use super::{secret_arg, CliError, Ctx, Session, TokenSource};

/// Arguments of `coffer login`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
coffer login                          (asks for a token)\n  \
coffer login -method=userpass alice   (asks for the password, then the TOTP code)\n  \
coffer login username=alice           (same: username= selects userpass)\n  \
printf '%s\\n' \"$PW\" | coffer login -method=userpass -password-stdin -code=123456 alice\n\n\
Passwords are never accepted as arguments: use the prompt, -password-stdin or COFFER_PASSWORD.\n\
The code may also come from COFFER_TOTP_CODE.")]
pub struct LoginArgs {
    /// Auth method: token or userpass [default: token, or userpass when an argument is
    /// username=NAME].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Mount path of the auth method (userpass) [default: userpass].
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Read the password from the first line of stdin (userpass).
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// TOTP code or recovery code, sent with the password in one request (userpass)
    /// [$COFFER_TOTP_CODE].
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Refused: passwords do not belong in argv.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    pub password: Option<String>,
    /// Verify the token but do not write it to the token file.
    #[arg(long = "no-store")]
    pub no_store: bool,
    /// For -method=token: the token (or token=TOKEN); `-` reads it from stdin; prompted
    /// without echo when omitted. For -method=userpass: the username (or username=NAME).
    #[arg(value_name = "TOKEN | USERNAME")]
    pub args: Vec<String>,
}

/// Arguments of `coffer logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Revoke the token even when it is a root token.
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// The method `-method` names, or the default for these arguments.
pub fn chosen_method(a: &LoginArgs) -> String {
    match a.method.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.to_ascii_lowercase(),
        _ if a.args.iter().any(|x| x.starts_with("username=")) => "userpass".into(),
        _ => "token".into(),
    }
}

/// Dispatch on `-method`.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, a: LoginArgs) -> Result<u8, CliError> {
    if a.password.is_some() || a.args.iter().any(|x| x.starts_with("password=")) {
        return Err(CliError::Usage(NO_PASSWORD_ARGS.into()));
    }
    match chosen_method(&a).as_str() {
        "token" => {
            if a.path.is_some() || a.password_stdin || a.code.is_some() {
                return Err(CliError::Usage(
                    "-path, -password-stdin and -code apply to -method=userpass".into(),
                ));
            }
            login_token(ctx, session, &a).await
        }
        "userpass" => login_userpass(ctx, session, &a).await,
        other => Err(CliError::Usage(format!(
            "unsupported auth method {other:?} (supported: token, userpass)"
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
    finish_login(
        ctx,
        session,
        &token,
        lookup.raw(),
        &login_rows(&lookup),
        a.no_store,
    )
}

/// The username from `[username=]NAME`; anything else is refused without echoing it.
pub fn username_arg(args: &[String]) -> Result<String, CliError> {
    let mut username: Option<&str> = None;
    for arg in args {
        let name = match arg.split_once('=') {
            None => arg.as_str(),
            Some(("username", v)) => v,
            Some(("password", _)) => return Err(CliError::Usage(NO_PASSWORD_ARGS.into())),
            Some((key, _)) => {
                return Err(CliError::Usage(format!(
                    "unexpected argument {key}=...: give the username as NAME or username=NAME"
                )))
            }
        };
        if username.replace(name).is_some() {
            return Err(CliError::Usage("give a single username".into()));
        }
    }
    match username.map(str::trim) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(CliError::Usage(
            "missing username: coffer login -method=userpass NAME".into(),
        )),
    }
}

async fn login_userpass(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: &LoginArgs,
) -> Result<u8, CliError> {
    let username = username_arg(&a.args)?;
    let mount = a.path.as_deref().unwrap_or(DEFAULT_USERPASS_MOUNT);
    let password = credentials::password(session, ctx.env, a.password_stdin)?;
    let env_code = (ctx.env)(CODE_ENV);
    let code = credentials::given_code(session, a.code.as_deref().or(env_code.as_deref()))?;
    let client = tokenless(ctx);
    let outcome = match &code {
        Some(code) => {
            client
                .login_userpass_with_code(mount, &username, &password, code)
                .await?
        }
        None => client.login_userpass(mount, &username, &password).await?,
    };
    drop(password);
    let auth = match outcome {
        LoginOutcome::Token(auth) => auth,
        LoginOutcome::MfaRequired {
            request_id,
            method_id,
        } => {
            let code = match code {
                Some(code) => code,
                None => credentials::prompt_code(
                    session,
                    CODE_PROMPT,
                    true,
                    "no terminal to ask for the TOTP code; use -code or COFFER_TOTP_CODE",
                )?,
            };
            client.mfa_validate(&request_id, &method_id, &code).await?
        }
    };
    session
        .secrets
        .push(Zeroizing::new(auth.client_token.expose().to_string()));
    let answer = Secret::from_value(json!({ "auth": auth }))?;
    let rows = userpass_rows(&auth, &username, unix_now());
    finish_login(
        ctx,
        session,
        auth.client_token.expose(),
        answer.raw(),
        &rows,
        a.no_store,
    )
}

/// The context's client without its token: logins and enrolment authenticate with the
/// password, and an old token has no business travelling with them.
pub fn tokenless(ctx: &Ctx<'_>) -> coffer_client::Client {
    let mut client = ctx.client.clone();
    client.clear_token();
    client
}

// The CLI has no injected clock: it shows when a token expires, by the wall clock.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Who logged in and until when: username, accessor, policies, duration, expiry.
pub fn userpass_rows(auth: &Auth, typed_username: &str, now: u64) -> Rows {
    let username = auth
        .metadata
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(typed_username);
    let policies = if auth.policies.is_empty() {
        &auth.token_policies
    } else {
        &auth.policies
    };
    let (duration, expires) = match u64::try_from(auth.lease_duration) {
        Ok(0) | Err(_) => ("∞".to_string(), "never".to_string()),
        Ok(secs) => (
            output::fmt_duration(auth.lease_duration),
            output::fmt_utc(now.saturating_add(secs)),
        ),
    };
    vec![
        ("username".into(), username.to_string()),
        ("token_accessor".into(), auth.accessor.clone()),
        ("policies".into(), fmt_value(&Value::from(policies.clone()))),
        ("token_duration".into(), duration),
        ("expire_time".into(), expires),
        ("token_renewable".into(), auth.renewable.to_string()),
    ]
}

/// Store the verified token (unless `no_store`) and print the login report: `answer`
/// as JSON, or `rows` under a success message.
pub fn finish_login(
    ctx: &Ctx<'_>,
    session: &mut Session,
    token: &str,
    answer: &Value,
    rows: &Rows,
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
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, answer)),
        Format::Table => session
            .out
            .push_str(&login_text(stored_at.as_deref(), rows)),
    }
    Ok(0)
}

/// `coffer logout`: revoke the token in use (`revoke-self`) and remove the token file.
/// A token the server no longer accepts (403) counts as logged out; other failures keep
/// the file so the command can be retried. A root token is kept (not revoked, file left
/// alone, exit 1) unless `-force`: revoking the last root token leaves only
/// `operator generate-root` with a quorum of unseal keys to get one back.
pub async fn logout(ctx: &Ctx<'_>, session: &mut Session, a: LogoutArgs) -> Result<u8, CliError> {
    let source = &ctx.settings.token_source;
    if ctx.settings.token.is_none() || *source == TokenSource::None {
        match ctx.format {
            Format::Table => session
                .out
                .push_str("No token found: you are not logged in. Nothing to do.\n"),
            Format::Json | Format::Yaml => session.out.push_str(&output::structured(
                ctx.format,
                &json!({ "revoked": false }),
            )),
        }
        return Ok(0);
    }
    if !a.force {
        match ctx.client.token_lookup_self().await {
            Ok(lookup) if is_root(&lookup) => {
                let kept = match source {
                    TokenSource::File(path) => format!("it stays in {}", path.display()),
                    TokenSource::Env(name) => format!("it stays in {name}"),
                    TokenSource::None => "it is kept".to_string(),
                };
                return Err(CliError::Usage(format!(
                    "this is a root token and was NOT revoked ({kept}): revoking it leaves                      only coffer operator generate-root (a quorum of unseal keys) to get a                      root token back. Create a non-root admin token first, or use                      coffer logout -force to revoke it anyway"
                )));
            }
            // Not root, or no longer valid: the revocation below decides.
            _ => {}
        }
    }
    let revoked = match ctx.client.token_revoke_self().await {
        Ok(()) => true,
        Err(e) if e.is_permission_denied() => false,
        Err(e) => return Err(e.into()),
    };
    let mut text = if revoked {
        "Success! The token has been revoked".to_string()
    } else {
        "The token was no longer valid (already revoked or expired)".to_string()
    };
    match source {
        TokenSource::File(path) => {
            remove_token_file(path)?;
            text.push_str(&format!(" and {} removed.\n", path.display()));
        }
        TokenSource::Env(name) => {
            text.push_str(".\n");
            session.warnings.push(format!(
                "the token came from {name}, which still holds it: unset {name}"
            ));
        }
        TokenSource::None => text.push_str(".\n"),
    }
    if ctx.format == Format::Table {
        session.out.push_str(&text);
    } else {
        session.out.push_str(&output::structured(
            ctx.format,
            &json!({ "revoked": revoked }),
        ));
    }
    Ok(0)
}

/// Whether a `lookup-self` answer describes a root token (the `root` policy).
pub fn is_root(lookup: &Secret) -> bool {
    lookup
        .data_field("policies")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|v| v == "root"))
}

/// Remove the token file; a file that is already gone is fine.
pub fn remove_token_file(path: &Path) -> Result<(), CliError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::Failed(format!(
            "cannot remove token file {}: {e}",
            path.display()
        ))),
    }
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
pub fn read_token_file(path: &Path) -> Result<Option<SecretString>, CliError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let token = text.trim();
            Ok((!token.is_empty()).then(|| SecretString::new(token.to_string())))
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
                .as_ref()
                .map(SecretString::expose),
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

    fn login_args(args: &[&str], method: Option<&str>) -> LoginArgs {
        LoginArgs {
            method: method.map(str::to_string),
            path: None,
            password_stdin: false,
            code: None,
            password: None,
            no_store: false,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn method_defaults_to_token_unless_username_given() {
        assert_eq!(chosen_method(&login_args(&["hvs.X"], None)), "token");
        assert_eq!(chosen_method(&login_args(&[], None)), "token");
        assert_eq!(
            chosen_method(&login_args(&["username=alice"], None)),
            "userpass"
        );
        assert_eq!(
            chosen_method(&login_args(&["alice"], Some("UserPass"))),
            "userpass"
        );
        assert_eq!(
            chosen_method(&login_args(&["username=a"], Some("token"))),
            "token"
        );
    }

    #[test]
    fn username_argument_forms() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(username_arg(&args(&["alice"])).unwrap(), "alice");
        assert_eq!(username_arg(&args(&["username=bob"])).unwrap(), "bob");
        assert!(username_arg(&args(&[])).is_err());
        assert!(username_arg(&args(&["username="])).is_err());
        assert!(username_arg(&args(&["a", "b"])).is_err());
        let err = username_arg(&args(&["alice", "password=hunter2"])).unwrap_err();
        assert!(err.to_string().contains("not accepted"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = username_arg(&args(&["alice", "passcode=hunter2"])).unwrap_err();
        assert!(err.to_string().contains("passcode=..."), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn userpass_rows_show_user_policies_and_expiry() {
        let s = Secret::from_value(serde_json::json!({"auth": {
            "client_token": "hvs.SECRET", "accessor": "acc2", "policies": ["default", "dev"],
            "token_policies": ["default", "dev"], "metadata": {"username": "alice", "mfa": "true"},
            "lease_duration": 3600, "renewable": true
        }}))
        .unwrap();
        let auth = s.auth.as_ref().unwrap();
        let rows = userpass_rows(auth, "typed", 1_893_452_400);
        assert!(rows.iter().all(|(_, v)| !v.contains("hvs.SECRET")));
        assert!(rows.contains(&("username".to_string(), "alice".to_string())));
        assert!(rows.contains(&("policies".to_string(), "[default dev]".to_string())));
        assert!(rows.contains(&("token_duration".to_string(), "1h".to_string())));
        assert!(rows.contains(&(
            "expire_time".to_string(),
            "2030-01-01T00:00:00Z".to_string()
        )));
        let root = Secret::from_value(serde_json::json!({"auth": {
            "client_token": "t", "token_policies": ["root"], "lease_duration": 0}}))
        .unwrap();
        let rows = userpass_rows(root.auth.as_ref().unwrap(), "typed", 0);
        assert!(rows.contains(&("username".to_string(), "typed".to_string())));
        assert!(rows.contains(&("policies".to_string(), "[root]".to_string())));
        assert!(rows.contains(&("expire_time".to_string(), "never".to_string())));
    }

    #[test]
    fn removing_a_missing_token_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        fs::write(&path, "t").unwrap();
        remove_token_file(&path).unwrap();
        assert!(!path.exists());
        remove_token_file(&path).unwrap();
        assert!(remove_token_file(dir.path()).is_err());
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
