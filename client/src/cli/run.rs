//! `coffer run`: log in (the token from the environment or token file, or the client
//! certificate), read each `--secret` (KV v2), turn every field into an environment
//! variable of the child (upper-cased, other characters than letters and digits as
//! `_`, `--prefix` in front; values that are not strings JSON-encoded), refuse two
//! fields that map to one name (naming both, never a value), then start the command
//! ([`super::child`]) and exit with its code. `--template IN:OUT` renders files from
//! the same variables first ([`super::template`]). Secret values are never printed,
//! with or without `-v` (which names the secrets and variables loaded).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde_json::Value;
use zeroize::Zeroizing;

use super::args::split_secret_path;
use super::template::{self, TemplateSpec};
use super::{child, write_stderr, CliError, Ctx, Session};

/// How `coffer run` logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunAuth {
    /// The token from COFFER_TOKEN / VAULT_TOKEN or the token file, checked with lookup-self.
    Token,
    /// The TLS client certificate (-client-cert/-client-key, COFFER_CLIENT_CERT/KEY) at auth/cert.
    Cert,
}

/// Arguments of `run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each field of each secret becomes one variable: secret/app/db with \
fields user and db-password gives USER and DB_PASSWORD (with --prefix APP_: APP_USER, \
APP_DB_PASSWORD). Two fields giving the same name are an error. Signals TERM, INT and HUP \
are passed to the command; coffer exits with its exit code (128+N when signal N ended it)."
)]
pub struct RunArgs {
    /// A KV v2 secret to load, as MOUNT/PATH (e.g. secret/app/db); may be repeated.
    #[arg(long = "secret", value_name = "MOUNT/PATH")]
    pub secrets: Vec<String>,
    /// Put this in front of every variable name (e.g. APP_).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,
    /// How to log in.
    #[arg(long, value_enum, default_value_t = RunAuth::Token)]
    pub auth: RunAuth,
    /// Mount path of the auth method for --auth=cert [default: cert].
    #[arg(long, value_name = "PATH")]
    pub mount: Option<String>,
    /// The certs/<name> role to check the certificate against (--auth=cert).
    #[arg(long, value_name = "ROLE")]
    pub name: Option<String>,
    /// Render the file IN into OUT (mode 0600) before the command starts: each
    /// {{ NAME }} becomes the value of the variable NAME; may be repeated.
    #[arg(long = "template", value_name = "IN:OUT", value_parser = template::parse_spec)]
    pub templates: Vec<TemplateSpec>,
    /// Say on stderr which secrets and variable names were loaded (never values).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// The command and its arguments, after --.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// One variable for the child and where it came from.
pub struct Var {
    pub value: Zeroizing<String>,
    /// `secret/app/db field "password"`: for messages.
    pub source: String,
}

/// `db-password` → `DB_PASSWORD`; a name that would start with a digit gets a `_`.
pub fn env_name(prefix: &str, field: &str) -> String {
    let mut name: String = prefix.to_string();
    name.extend(field.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A field's value as the child sees it: strings as they are, anything else as JSON.
fn env_value(v: &Value) -> Zeroizing<String> {
    match v {
        Value::String(s) => Zeroizing::new(s.clone()),
        other => Zeroizing::new(other.to_string()),
    }
}

/// Add the fields of one secret; a name already taken is an error naming both fields.
pub fn add_fields(
    vars: &mut BTreeMap<String, Var>,
    prefix: &str,
    secret: &str,
    data: &serde_json::Map<String, Value>,
) -> Result<(), CliError> {
    for (field, value) in data {
        let name = env_name(prefix, field);
        let source = format!("{secret} field {field:?}");
        if name.is_empty() {
            return Err(CliError::Failed(format!(
                "{source} gives no usable variable name: rename the field or use --prefix"
            )));
        }
        let value = env_value(value);
        if value.contains('\0') {
            return Err(CliError::Failed(format!(
                "{source} holds a NUL character, which an environment variable cannot hold"
            )));
        }
        if let Some(existing) = vars.get(&name) {
            return Err(CliError::Failed(format!(
                "{} and {source} both give the variable {name}: rename one of the fields \
                 or load the secrets with different --prefix values in two runs",
                existing.source
            )));
        }
        vars.insert(name, Var { value, source });
    }
    Ok(())
}

/// `coffer run`.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, a: RunArgs) -> Result<u8, CliError> {
    if a.command.first().is_none_or(|c| c.is_empty()) {
        return Err(CliError::Usage(
            "missing command: coffer run [--secret MOUNT/PATH]... -- COMMAND [ARGS]".into(),
        ));
    }
    let prefix_ok = a
        .prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !prefix_ok {
        return Err(CliError::Usage(
            "--prefix may hold only letters, digits and _".into(),
        ));
    }
    let client = &ctx.client;
    match a.auth {
        RunAuth::Token => {
            let Some(token) = ctx.settings.token.as_ref() else {
                return Err(CliError::Usage(
                    "no token: set COFFER_TOKEN (or VAULT_TOKEN), log in with coffer login, \
                     or use --auth=cert"
                        .into(),
                ));
            };
            client.login_token(token.clone()).await?;
        }
        RunAuth::Cert => {
            if !client.has_client_identity() {
                return Err(CliError::Usage(
                    "--auth=cert needs a client certificate: -client-cert and -client-key, \
                     or COFFER_CLIENT_CERT and COFFER_CLIENT_KEY"
                        .into(),
                ));
            }
            let mount = a.mount.as_deref().unwrap_or("cert");
            client.login_cert(mount, a.name.as_deref()).await?;
        }
    }
    if a.verbose {
        let how = match a.auth {
            RunAuth::Token => "a token",
            RunAuth::Cert => "the client certificate",
        };
        write_stderr(&format!("coffer run: logged in with {how}\n"));
    }
    let mut vars = BTreeMap::new();
    for spec in &a.secrets {
        let (mount, path) = split_secret_path(spec, None)?;
        let shown = format!("{mount}/{path}");
        let secret = client
            .kv_get(&mount, &path, None)
            .await?
            .filter(|s| !s.is_deleted() && !s.is_destroyed());
        let Some(data) = secret.as_ref().and_then(|s| s.data.as_ref()) else {
            return Err(CliError::NotFound(format!("no secret at {shown}")));
        };
        let before: Vec<String> = vars.keys().cloned().collect();
        add_fields(&mut vars, &a.prefix, &shown, data)?;
        if a.verbose {
            let mut names = String::new();
            for name in vars.keys().filter(|k| !before.contains(k)) {
                let _ = write!(names, " {name}");
            }
            write_stderr(&format!(
                "coffer run: {shown} ({} fields):{names}\n",
                data.len()
            ));
        }
    }
    for var in vars.values() {
        session.secrets.push(var.value.clone());
    }
    for spec in &a.templates {
        template::write(spec, &vars)?;
        if a.verbose {
            write_stderr(&format!(
                "coffer run: wrote {} from {}\n",
                spec.output.display(),
                spec.input.display()
            ));
        }
    }
    if a.verbose {
        write_stderr(&format!(
            "coffer run: starting {} with {} variables\n",
            a.command[0],
            vars.len()
        ));
    }
    let env: Vec<(String, Zeroizing<String>)> =
        vars.into_iter().map(|(k, v)| (k, v.value)).collect();
    child::run(&a.command, env).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_upper_cased_and_sanitised() {
        assert_eq!(env_name("", "password"), "PASSWORD");
        assert_eq!(env_name("APP_", "db-pass.word"), "APP_DB_PASS_WORD");
        assert_eq!(env_name("", "2fa"), "_2FA");
        assert_eq!(env_name("", "clé"), "CL_");
    }

    proptest::proptest! {
        #[test]
        fn names_are_always_usable_in_a_shell(field in ".*", prefix in "[A-Z_]{0,4}") {
            let name = env_name(&prefix, &field);
            proptest::prop_assert!(name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
            proptest::prop_assert!(!name.starts_with(|c: char| c.is_ascii_digit()));
            proptest::prop_assert_eq!(name.len() >= field.chars().count(), true);
        }
    }

    #[test]
    fn values_are_strings_or_json() {
        let data = json!({"s": "x y", "n": 5, "b": true, "o": {"k": [1, "2"]}, "z": null});
        let mut vars = BTreeMap::new();
        add_fields(&mut vars, "", "secret/a", data.as_object().unwrap()).unwrap();
        let get = |k: &str| vars[k].value.to_string();
        assert_eq!(get("S"), "x y");
        assert_eq!(get("N"), "5");
        assert_eq!(get("B"), "true");
        assert_eq!(get("O"), r#"{"k":[1,"2"]}"#);
        assert_eq!(get("Z"), "null");
    }

    #[test]
    fn collisions_name_both_fields_and_no_value() {
        let mut vars = BTreeMap::new();
        let a = json!({"db-password": "hunter2-one"});
        let b = json!({"db_password": "hunter2-two"});
        add_fields(&mut vars, "APP_", "secret/app/db", a.as_object().unwrap()).unwrap();
        let err = add_fields(
            &mut vars,
            "APP_",
            "secret/app/other",
            b.as_object().unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("secret/app/db field \"db-password\""), "{err}");
        assert!(
            err.contains("secret/app/other field \"db_password\""),
            "{err}"
        );
        assert!(err.contains("APP_DB_PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        // Within one secret too.
        let mut vars = BTreeMap::new();
        let c = json!({"a.b": "1", "a-b": "2"});
        assert!(add_fields(&mut vars, "", "secret/c", c.as_object().unwrap()).is_err());
    }

    #[test]
    fn nul_bytes_are_refused_without_the_value() {
        let mut vars = BTreeMap::new();
        let d = json!({"k": "hunter\u{0}2"});
        let err = add_fields(&mut vars, "", "secret/d", d.as_object().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("NUL") && !err.contains("hunter"), "{err}");
    }
}
