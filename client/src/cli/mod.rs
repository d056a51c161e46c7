//! The `coffer` command line: clap definitions of the top level, settings from flags and
//! environment (flag, then `COFFER_*`, then `VAULT_*`, then the default), the error type
//! with Vault's exit codes (0 ok, 1 usage or local error, 2 an error from the server or
//! the connection) and its one-line rendering, and dispatch to the command modules.

pub mod args;
pub mod audit;
pub mod breakglass;
pub mod child;
pub mod credentials;
pub mod generic;
pub mod kv;
pub mod login;
pub mod mounts;
pub mod operator;
pub mod output;
pub mod policy;
pub mod qr;
pub mod run;
pub mod template;
pub mod token;
pub mod totp;

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};
use coffer_client::{Client, ClientError, SecretString};
use zeroize::Zeroizing;

use output::Format;

/// Address used when neither `-address`, `COFFER_ADDR` nor `VAULT_ADDR` is set.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";
/// Token file name in the home directory: the one `vault` and `bao` use, so a login with
/// any of the three is seen by the others.
pub const TOKEN_FILE_NAME: &str = ".vault-token";

/// `coffer`: command-line client for a Coffer (Vault/OpenBao-compatible) server.
#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Command-line client for a Coffer (Vault/OpenBao-compatible) secrets server",
    arg_required_else_help = true,
    after_help = "Flags may also be written Go-style with one dash, e.g. -format=json.\n\
Settings: a flag wins, then COFFER_*, then VAULT_*, then the default:\n\
  -address     COFFER_ADDR, VAULT_ADDR (http://127.0.0.1:8200)\n\
  token        COFFER_TOKEN, VAULT_TOKEN, then the token file: COFFER_TOKEN_FILE, else ~/.vault-token\n\
  -format      COFFER_FORMAT, VAULT_FORMAT (table)\n\
  -ca-cert     COFFER_CACERT, VAULT_CACERT;  -ca-path  COFFER_CAPATH, VAULT_CAPATH\n\
  -tls-skip-verify  COFFER_SKIP_VERIFY, VAULT_SKIP_VERIFY\n\
  -client-cert COFFER_CLIENT_CERT, VAULT_CLIENT_CERT;  -client-key  COFFER_CLIENT_KEY, VAULT_CLIENT_KEY\n\
COFFER_PASSWORD and COFFER_TOTP_CODE serve userpass login.\n\
Exit codes: 0 success, 1 usage or local error, 2 error from the server or the connection."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: table, json or yaml [default: $COFFER_FORMAT, $VAULT_FORMAT, table].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Server address [default: $COFFER_ADDR, $VAULT_ADDR, http://127.0.0.1:8200].
    #[arg(long, global = true, value_name = "URL")]
    pub address: Option<String>,
    /// PEM file with the CA certificate(s) to trust [$COFFER_CACERT, $VAULT_CACERT].
    #[arg(long = "ca-cert", global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM CA certificates to trust [$COFFER_CAPATH, $VAULT_CAPATH]; -ca-cert
    /// wins when both are set.
    #[arg(long = "ca-path", global = true, value_name = "DIR")]
    pub ca_path: Option<PathBuf>,
    /// Do not verify the server's TLS certificate [$COFFER_SKIP_VERIFY, $VAULT_SKIP_VERIFY].
    #[arg(long = "tls-skip-verify", global = true)]
    pub tls_skip_verify: bool,
    /// PEM file with the client certificate to present (mTLS, cert login)
    /// [$COFFER_CLIENT_CERT, $VAULT_CLIENT_CERT].
    #[arg(long = "client-cert", global = true, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key [$COFFER_CLIENT_KEY,
    /// $VAULT_CLIENT_KEY].
    #[arg(long = "client-key", global = true, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read data at any path (GET).
    Read(generic::ReadArgs),
    /// Write data to any path (POST): k=v, k=@file, - for a JSON object on stdin, -f for none.
    Write(generic::WriteArgs),
    /// List the keys under any path (LIST).
    List(generic::ListArgs),
    /// Delete data at any path (DELETE).
    Delete(generic::DeleteArgs),
    /// Change some fields at any path (PATCH, JSON merge patch).
    Patch(generic::WriteArgs),
    /// Show the seal status (exit code 0 unsealed, 2 sealed, 1 error).
    Status,
    /// Initialise, unseal and seal the server; rotate and rekey; recover root.
    #[command(subcommand)]
    Operator(operator::OperatorCmd),
    /// Enable, disable, list and tune secrets engines.
    #[command(subcommand)]
    Secrets(mounts::SecretsCmd),
    /// Enable, disable, list and tune auth methods.
    #[command(subcommand)]
    Auth(mounts::AuthCmd),
    /// Write, read, list, delete and format policies.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Authenticate (token, or username + password + TOTP code) and store the token in
    /// the token file.
    Login(login::LoginArgs),
    /// Revoke the stored token and remove the token file (a root token only with -force).
    Logout(login::LogoutArgs),
    /// Set up the TOTP second factor of a userpass user.
    #[command(subcommand)]
    Totp(totp::TotpCmd),
    /// Read and write secrets in a KV version 2 mount.
    #[command(subcommand)]
    Kv(kv::KvCmd),
    /// Create, inspect, renew and revoke tokens; show a token's capabilities.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Enable, disable and list audit devices; verify audit log files offline.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Time-boxed emergency access approved by a second person: request, approve,
    /// fetch the token, revoke, report.
    #[command(subcommand, name = "breakglass", alias = "break-glass")]
    Breakglass(breakglass::BreakGlassCmd),
    /// Log in, put KV secrets into a command's environment, run it, and exit with its
    /// exit code: coffer run --secret secret/app/db -- ./app args.
    Run(run::RunArgs),
    /// Print a shell completion script: coffer completion bash|zsh|fish.
    Completion(CompletionArgs),
    /// Print the version of this CLI.
    Version,
}

/// Arguments of `completion`.
#[derive(Debug, Args)]
#[command(after_help = "bash:  source <(coffer completion bash)\n\
zsh:   coffer completion zsh > \"${fpath[1]}/_coffer\"\n\
fish:  coffer completion fish > ~/.config/fish/completions/coffer.fish")]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells `completion` writes scripts for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script for `shell`.
pub fn completion_script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "coffer", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// A failed command, with Vault's exit codes: 1 for usage and local errors, 2 for what
/// the server (or the connection to it) said, including "nothing there".
#[derive(Debug)]
pub enum CliError {
    /// Wrong or missing arguments.
    Usage(String),
    /// Nothing at the given path (exit 2, like `vault read`).
    NotFound(String),
    /// The server or the connection said no.
    Client(ClientError),
    /// A local failure (file, terminal).
    Failed(String),
    /// A failure with its own exit code (`coffer run`: 127 when the command is not
    /// found, 126 when it cannot be executed).
    WithCode(u8, String),
}

impl CliError {
    /// Process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Failed(_) => 1,
            CliError::WithCode(code, _) => *code,
            CliError::NotFound(_) => 2,
            CliError::Client(e) if is_local(e) => 1,
            CliError::Client(_) => 2,
        }
    }
}

/// Client errors raised before anything was sent (bad address, path, token or TLS
/// settings): local, so exit 1.
fn is_local(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::InvalidAddress { .. }
            | ClientError::InvalidPath(_)
            | ClientError::InvalidToken
            | ClientError::InvalidHeader(_)
            | ClientError::Tls(_)
            | ClientError::File { .. }
            | ClientError::Config(_)
    )
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m)
            | CliError::NotFound(m)
            | CliError::Failed(m)
            | CliError::WithCode(_, m) => f.write_str(m),
            CliError::Client(e) => write!(f, "{e}"),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Client(e)
    }
}

/// `Error: <message>` on one line, with every known secret replaced by `[redacted]`.
pub fn render_error(err: &CliError, secrets: &[Zeroizing<String>]) -> String {
    let mut msg = err.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        msg = msg.replace(secret.as_str(), "[redacted]");
    }
    let one_line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("Error: {one_line}\n")
}

/// Looks up an environment variable; empty values count as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_first(env: Env<'_>, names: &[&str]) -> Option<(String, String)> {
    names.iter().find_map(|n| {
        env(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (n.to_string(), v))
    })
}

/// Where a token came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable (its name).
    Env(String),
    /// The token file.
    File(PathBuf),
    /// No token.
    None,
}

/// Everything a command needs to reach the server.
#[derive(Debug)]
pub struct Settings {
    pub address: String,
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub skip_verify: bool,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub token: Option<SecretString>,
    pub token_source: TokenSource,
    pub token_file: Option<PathBuf>,
}

/// `COFFER_TOKEN_FILE`, else `$HOME/.vault-token` (shared with `vault` and `bao`).
pub fn token_file_path(env: Env<'_>) -> Option<PathBuf> {
    if let Some((_, path)) = env_first(env, &["COFFER_TOKEN_FILE"]) {
        return Some(PathBuf::from(path));
    }
    env_first(env, &["HOME"]).map(|(_, home)| PathBuf::from(home).join(TOKEN_FILE_NAME))
}

/// The output format: `-format`, else `COFFER_FORMAT`, else `VAULT_FORMAT`, else table.
pub fn resolve_format(flag: Option<&str>, env: Env<'_>) -> Result<Format, CliError> {
    let (name, value) = match flag {
        Some(v) => ("-format".to_string(), v.to_string()),
        None => match env_first(env, &["COFFER_FORMAT", "VAULT_FORMAT"]) {
            Some(found) => found,
            None => return Ok(Format::Table),
        },
    };
    Format::parse(&value).ok_or_else(|| {
        CliError::Usage(format!("invalid {name} {value:?}: use table, json or yaml"))
    })
}

/// Combine flags and environment into [`Settings`]; reads the token file if no token
/// variable is set.
pub fn resolve_settings(global: &GlobalArgs, env: Env<'_>) -> Result<Settings, CliError> {
    let address = global
        .address
        .clone()
        .or_else(|| env_first(env, &["COFFER_ADDR", "VAULT_ADDR"]).map(|(_, v)| v))
        .unwrap_or_else(|| DEFAULT_ADDR.to_string());
    let ca_cert = global.ca_cert.clone().or_else(|| {
        env_first(env, &["COFFER_CACERT", "VAULT_CACERT"]).map(|(_, v)| PathBuf::from(v))
    });
    let ca_path = global.ca_path.clone().or_else(|| {
        env_first(env, &["COFFER_CAPATH", "VAULT_CAPATH"]).map(|(_, v)| PathBuf::from(v))
    });
    let skip_verify = match env_first(env, &["COFFER_SKIP_VERIFY", "VAULT_SKIP_VERIFY"]) {
        _ if global.tls_skip_verify => true,
        Some((name, value)) => args::parse_env_bool(&name, &value)?,
        None => false,
    };
    let client_cert = global.client_cert.clone().or_else(|| {
        env_first(env, &["COFFER_CLIENT_CERT", "VAULT_CLIENT_CERT"]).map(|(_, v)| PathBuf::from(v))
    });
    let client_key = global.client_key.clone().or_else(|| {
        env_first(env, &["COFFER_CLIENT_KEY", "VAULT_CLIENT_KEY"]).map(|(_, v)| PathBuf::from(v))
    });
    let token_file = token_file_path(env);
    let (token, token_source) = match env_first(env, &["COFFER_TOKEN", "VAULT_TOKEN"]) {
        Some((name, value)) => (
            Some(SecretString::new(value.trim().to_string())),
            TokenSource::Env(name),
        ),
        None => match &token_file {
            Some(path) => match login::read_token_file(path)? {
                Some(t) => (Some(t), TokenSource::File(path.clone())),
                None => (None, TokenSource::None),
            },
            None => (None, TokenSource::None),
        },
    };
    Ok(Settings {
        address,
        ca_cert,
        ca_path,
        skip_verify,
        client_cert,
        client_key,
        token,
        token_source,
        token_file,
    })
}

/// The CA certificates to trust, as one PEM bundle: the `-ca-cert` file, else every
/// file in the `-ca-path` directory; `None` for the built-in roots.
pub fn trusted_ca_pem(settings: &Settings) -> Result<Option<Vec<u8>>, CliError> {
    if let Some(path) = &settings.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            CliError::Failed(format!(
                "cannot read the CA certificate {}: {} (check VAULT_CACERT / -ca-cert)",
                path.display(),
                args::io_reason(&e)
            ))
        })?;
        return Ok(Some(pem));
    }
    let Some(dir) = &settings.ca_path else {
        return Ok(None);
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot read the CA directory {}: {} (check VAULT_CAPATH / -ca-path)",
            dir.display(),
            args::io_reason(&e)
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut bundle = Vec::new();
    for file in files {
        // Unreadable or non-PEM files are skipped, as OpenSSL's hashed directories hold
        // other things too; an empty result is reported by the client builder.
        if let Ok(bytes) = std::fs::read(&file) {
            if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                bundle.extend_from_slice(&bytes);
                bundle.push(b'\n');
            }
        }
    }
    if bundle.is_empty() {
        return Err(CliError::Failed(format!(
            "no PEM certificate found in the CA directory {} (VAULT_CAPATH / -ca-path): \
             put the CA certificate there as a .pem file",
            dir.display()
        )));
    }
    Ok(Some(bundle))
}

/// A client for these settings, authenticating with `token`.
pub fn build_client(settings: &Settings, token: Option<&str>) -> Result<Client, CliError> {
    let mut builder =
        Client::builder(&settings.address).danger_accept_invalid_certs(settings.skip_verify);
    if let Some(pem) = trusted_ca_pem(settings)? {
        builder = builder.ca_cert_pem(&pem);
    }
    match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let cert = read_setting_file(
                cert,
                "client certificate",
                "COFFER_CLIENT_CERT / -client-cert",
            )?;
            let key = Zeroizing::new(read_setting_file(
                key,
                "client key",
                "COFFER_CLIENT_KEY / -client-key",
            )?);
            builder = builder.client_identity_pem(&cert, &key);
        }
        (Some(_), None) => {
            return Err(CliError::Usage(
                "a client certificate is given but no key: set -client-key or COFFER_CLIENT_KEY"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "a client key is given but no certificate: set -client-cert or COFFER_CLIENT_CERT"
                    .into(),
            ))
        }
        (None, None) => {}
    }
    if let Some(token) = token {
        builder = builder.token(token);
    }
    Ok(builder.build()?)
}

/// A file named by a setting; the error names the file and the setting, never the content.
fn read_setting_file(
    path: &std::path::Path,
    what: &str,
    setting: &str,
) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| {
        CliError::Failed(format!(
            "cannot read the {what} {}: {} (check {setting})",
            path.display(),
            args::io_reason(&e)
        ))
    })
}

/// What a command produced: stdout text, warnings for stderr, and secrets to redact
/// from any error message.
#[derive(Default)]
pub struct Session {
    pub out: Zeroizing<String>,
    pub warnings: Vec<String>,
    pub secrets: Vec<Zeroizing<String>>,
}

/// The shared state command handlers get.
pub struct Ctx<'a> {
    pub client: Client,
    pub format: Format,
    pub settings: &'a Settings,
    pub env: Env<'a>,
}

/// A success line for people (`Success! ...`); with `-format=json|yaml` nothing is
/// printed, so stdout stays parseable.
pub fn success(ctx: &Ctx<'_>, session: &mut Session, msg: &str) -> Result<u8, CliError> {
    if !ctx.format.is_structured() {
        session.out.push_str(msg);
        session.out.push('\n');
    }
    Ok(0)
}

/// Ask for a secret without echo when stdin is a terminal; otherwise it is a usage error
/// (pass the value as an argument, or `-` to read stdin).
pub fn prompt_secret(prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "missing {what}: pass it as an argument, or - to read it from stdin"
        )));
    }
    let value = rpassword::prompt_password(prompt)
        .map_err(|e| CliError::Failed(format!("cannot read {what} from the terminal: {e}")))?;
    Ok(Zeroizing::new(value.trim().to_string()))
}

/// The first line of stdin, trimmed (for `-` in place of a token or key).
pub fn read_stdin_line(what: &str) -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read {what} from stdin: {e}")))?;
    Ok(Zeroizing::new(line.trim().to_string()))
}

/// A secret given on the command line: the value itself, `-` for stdin, or a prompt
/// when absent. Remembered for redaction.
pub fn secret_arg(
    session: &mut Session,
    arg: Option<&str>,
    prompt: &str,
    what: &str,
) -> Result<Zeroizing<String>, CliError> {
    let value = match arg {
        Some("-") => read_stdin_line(what)?,
        Some(v) => Zeroizing::new(v.trim().to_string()),
        None => prompt_secret(prompt, what)?,
    };
    if value.is_empty() {
        return Err(CliError::Usage(format!("empty {what}")));
    }
    session.secrets.push(value.clone());
    Ok(value)
}

/// Run a parsed command. Returns the exit code on success.
pub async fn run(cli: Cli, env: Env<'_>, session: &mut Session) -> Result<u8, CliError> {
    let format = match &cli.command {
        // `report -format=markdown|json`: markdown is its table.
        Command::Breakglass(cmd) if breakglass::is_report(cmd) => {
            breakglass::report_format(cli.global.format.as_deref(), env)?
        }
        _ => resolve_format(cli.global.format.as_deref(), env)?,
    };
    // Offline commands: no settings, so a bad COFFER_* variable or token file cannot
    // stop them.
    let cli = match cli.command {
        Command::Version => {
            session
                .out
                .push_str(&format!("coffer {}\n", env!("CARGO_PKG_VERSION")));
            return Ok(0);
        }
        Command::Completion(a) => {
            session.out.push_str(&completion_script(a.shell));
            return Ok(0);
        }
        Command::Audit(audit::AuditCmd::Verify(a)) => return audit::verify(session, a),
        Command::Policy(policy::PolicyCmd::Fmt(a)) => return policy::fmt(session, a),
        command => Cli { command, ..cli },
    };
    // An emergency token that has expired gives the token file back to the token it
    // replaced, before the file is read.
    if env_first(env, &["COFFER_TOKEN", "VAULT_TOKEN"]).is_none() {
        if let Some(path) = token_file_path(env) {
            if let Some(warning) = breakglass::restore_if_expired(&path, breakglass::unix_now()) {
                session.warnings.push(warning);
            }
        }
    }
    let settings = resolve_settings(&cli.global, env)?;
    if let Some(t) = &settings.token {
        session.secrets.push(Zeroizing::new(t.expose().to_string()));
    }
    let client = build_client(&settings, settings.token.as_ref().map(SecretString::expose))?;
    let ctx = Ctx {
        client,
        format,
        settings: &settings,
        env,
    };
    match cli.command {
        Command::Version | Command::Completion(_) => Ok(0),
        Command::Read(a) => generic::read(&ctx, session, a).await,
        Command::Write(a) => generic::write(&ctx, session, a, false).await,
        Command::Patch(a) => generic::write(&ctx, session, a, true).await,
        Command::List(a) => generic::list(&ctx, session, a).await,
        Command::Delete(a) => generic::delete(&ctx, session, a).await,
        Command::Status => operator::status(&ctx, session).await,
        Command::Operator(cmd) => operator::run(&ctx, session, cmd).await,
        Command::Secrets(cmd) => mounts::run_secrets(&ctx, session, cmd).await,
        Command::Auth(cmd) => mounts::run_auth(&ctx, session, cmd).await,
        Command::Policy(cmd) => policy::run(&ctx, session, cmd).await,
        Command::Login(a) => login::run(&ctx, session, a).await,
        Command::Logout(a) => login::logout(&ctx, session, a).await,
        Command::Totp(cmd) => totp::run(&ctx, session, cmd).await,
        Command::Kv(cmd) => kv::run(&ctx, session, cmd).await,
        Command::Token(cmd) => token::run(&ctx, session, cmd).await,
        Command::Audit(cmd) => audit::run(&ctx, session, cmd).await,
        Command::Breakglass(cmd) => breakglass::run(&ctx, session, cmd).await,
        Command::Run(a) => run::run(&ctx, session, a).await,
    }
}

/// The whole program: argv in, exit code out. Never panics; writes stdout, then
/// warnings and at most one error line to stderr.
pub async fn main_entry(argv: Vec<String>, env: Env<'_>) -> u8 {
    let argv = args::normalize_args(argv);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(&e),
    };
    let mut session = Session::default();
    let result = run(cli, env, &mut session).await;
    write_out(&mut std::io::stdout(), &session.out);
    let mut stderr = std::io::stderr();
    for w in &session.warnings {
        write_out(&mut stderr, &format!("Warning: {w}\n"));
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            write_out(&mut stderr, &render_error(&e, &session.secrets));
            e.exit_code()
        }
    }
}

/// Help and `--version` go to stdout with exit 0; other parse errors become one line
/// and exit 1 (a usage error).
fn report_clap_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            write_out(&mut std::io::stdout(), &e.render().to_string());
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            write_out(&mut std::io::stderr(), &e.render().to_string());
            1
        }
        _ => {
            write_out(&mut std::io::stderr(), &clap_one_line(e));
            1
        }
    }
}

/// `Error: <clap's first paragraph on one line> (see --help)`.
pub fn clap_one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let paragraph: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let text = paragraph.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let text = if text.is_empty() {
        "invalid arguments"
    } else {
        text
    };
    format!("Error: {text} (see --help)\n")
}

/// Write what the command produced so far to stdout now (before an interactive prompt).
pub fn flush_stdout(session: &mut Session) {
    write_out(&mut std::io::stdout(), &session.out);
    session.out.clear();
}

/// Write a message for the person at the terminal to stderr now.
pub fn write_stderr(text: &str) {
    write_out(&mut std::io::stderr(), text);
}

/// Write everything, ignoring a closed pipe (`coffer kv list | head -1`).
fn write_out(w: &mut dyn Write, text: &str) {
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args::normalize_args(args.iter().map(|s| s.to_string())))
    }

    #[test]
    fn error_lines_are_single_and_redacted() {
        let secrets = vec![Zeroizing::new("hvs.SECRET-TOKEN".to_string())];
        let e = CliError::Client(ClientError::Api {
            status: 403,
            errors: vec!["permission denied".into()],
        });
        assert_eq!(
            render_error(&e, &secrets),
            "Error: permission denied (403)\n"
        );
        // Vault's exit codes: the server said no = 2; local problems and usage = 1.
        assert_eq!(e.exit_code(), 2);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 1);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
        let bad_addr = CliError::Client(ClientError::InvalidAddress {
            addr: "x".into(),
            reason: "y".into(),
        });
        assert_eq!(bad_addr.exit_code(), 1);
        let e = CliError::Failed("bad token hvs.SECRET-TOKEN\nsecond line".into());
        assert_eq!(
            render_error(&e, &secrets),
            "Error: bad token [redacted] second line\n"
        );
        let e = CliError::NotFound("no secret at secret/foo".into());
        assert_eq!(render_error(&e, &[]), "Error: no secret at secret/foo\n");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn settings_prefer_coffer_then_vault_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "hvs.FROMFILE\n").unwrap();
        let file_s = file.display().to_string();
        let global = GlobalArgs {
            format: None,
            address: None,
            ca_cert: None,
            ca_path: None,
            tls_skip_verify: false,
            client_cert: None,
            client_key: None,
        };

        let env = env_of(&[
            ("COFFER_ADDR", "http://a:1"),
            ("VAULT_ADDR", "http://b:2"),
            ("COFFER_TOKEN", ""),
            ("VAULT_TOKEN", "hvs.VAULT"),
            ("COFFER_TOKEN_FILE", &file_s),
            ("VAULT_CLIENT_CERT", "/v/cert.pem"),
            ("COFFER_CLIENT_KEY", "/c/key.pem"),
        ]);
        let s = resolve_settings(&global, &env).unwrap();
        assert_eq!(
            s.client_cert.as_deref(),
            Some(std::path::Path::new("/v/cert.pem"))
        );
        assert_eq!(
            s.client_key.as_deref(),
            Some(std::path::Path::new("/c/key.pem"))
        );
        let err = build_client(&s, None).unwrap_err().to_string();
        assert!(
            err.contains("/v/cert.pem") && err.contains("COFFER_CLIENT_CERT"),
            "{err}"
        );
        assert_eq!(s.address, "http://a:1");
        assert_eq!(
            s.token.as_ref().map(SecretString::expose),
            Some("hvs.VAULT")
        );
        assert_eq!(s.token_source, TokenSource::Env("VAULT_TOKEN".into()));

        let env = env_of(&[("VAULT_ADDR", "http://b:2"), ("COFFER_TOKEN_FILE", &file_s)]);
        let s = resolve_settings(&global, &env).unwrap();
        assert_eq!(s.address, "http://b:2");
        assert_eq!(
            s.token.as_ref().map(SecretString::expose),
            Some("hvs.FROMFILE")
        );
        assert_eq!(s.token_source, TokenSource::File(file.clone()));

        let env = env_of(&[("HOME", "/nonexistent-home")]);
        let s = resolve_settings(&global, &env).unwrap();
        assert_eq!(s.address, DEFAULT_ADDR);
        assert!(s.token.is_none());
        assert_eq!(
            s.token_file,
            Some(PathBuf::from("/nonexistent-home/.vault-token"))
        );
        assert!(!s.skip_verify);

        let env = env_of(&[("VAULT_SKIP_VERIFY", "true")]);
        assert!(resolve_settings(&global, &env).unwrap().skip_verify);
        let env = env_of(&[("COFFER_SKIP_VERIFY", "perhaps")]);
        assert!(resolve_settings(&global, &env).is_err());
    }

    #[test]
    fn format_comes_from_flag_then_coffer_then_vault() {
        let env = env_of(&[("COFFER_FORMAT", "yaml"), ("VAULT_FORMAT", "json")]);
        assert_eq!(resolve_format(None, &env).unwrap(), Format::Yaml);
        assert_eq!(resolve_format(Some("table"), &env).unwrap(), Format::Table);
        let env = env_of(&[("VAULT_FORMAT", "JSON")]);
        assert_eq!(resolve_format(None, &env).unwrap(), Format::Json);
        let env = env_of(&[("VAULT_FORMAT", "pretty")]);
        let err = resolve_format(None, &env).unwrap_err();
        assert!(err.to_string().contains("VAULT_FORMAT"), "{err}");
        assert_eq!(resolve_format(None, &env_of(&[])).unwrap(), Format::Table);
    }

    #[test]
    fn ca_path_bundles_the_pem_files_and_ca_cert_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), "-----BEGIN CERTIFICATE-----\nA\n").unwrap();
        std::fs::write(dir.path().join("b.crt"), "-----BEGIN CERTIFICATE-----\nB\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a cert").unwrap();
        let env = env_of(&[("VAULT_CAPATH", dir.path().to_str().unwrap())]);
        let global = parse(&["coffer", "status"]).unwrap().global;
        let s = resolve_settings(&global, &env).unwrap();
        let pem = String::from_utf8(trusted_ca_pem(&s).unwrap().unwrap()).unwrap();
        assert!(pem.contains("\nA\n") && pem.contains("\nB\n") && !pem.contains("not a"));
        let file = dir.path().join("a.pem");
        let env = env_of(&[
            ("VAULT_CAPATH", dir.path().to_str().unwrap()),
            ("VAULT_CACERT", file.to_str().unwrap()),
        ]);
        let s = resolve_settings(&global, &env).unwrap();
        let pem = String::from_utf8(trusted_ca_pem(&s).unwrap().unwrap()).unwrap();
        assert!(!pem.contains("\nB\n"));
        let empty = tempfile::tempdir().unwrap();
        let env = env_of(&[("VAULT_CAPATH", empty.path().to_str().unwrap())]);
        let s = resolve_settings(&global, &env).unwrap();
        let err = trusted_ca_pem(&s).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let env = env_of(&[("VAULT_CACERT", "/nonexistent/ca.pem")]);
        let s = resolve_settings(&global, &env).unwrap();
        let err = trusted_ca_pem(&s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the CA certificate /nonexistent/ca.pem: No such file or directory \
             (check VAULT_CACERT / -ca-cert)"
        );
    }

    #[test]
    fn completion_scripts_name_the_commands() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let script = completion_script(shell);
            assert!(script.contains("coffer"), "{shell:?}");
            assert!(
                script.contains("secrets") && script.contains("generate-root"),
                "{shell:?}"
            );
        }
    }

    #[test]
    fn address_flag_wins_over_env() {
        let cli = parse(&["coffer", "status", "-address=http://flag:9"]).unwrap();
        let env = env_of(&[("COFFER_ADDR", "http://env:1")]);
        assert_eq!(
            resolve_settings(&cli.global, &env).unwrap().address,
            "http://flag:9"
        );
    }

    #[test]
    fn go_style_and_gnu_style_flags_parse() {
        let cli = parse(&[
            "coffer",
            "kv",
            "get",
            "-format=json",
            "-version=2",
            "secret/foo",
        ])
        .unwrap();
        assert_eq!(cli.global.format.as_deref(), Some("json"));
        let Command::Kv(kv::KvCmd::Get(get)) = cli.command else {
            panic!("expected kv get");
        };
        assert_eq!(get.version, Some(2));
        assert_eq!(get.path, "secret/foo");
        let cli = parse(&["coffer", "--format", "json", "status"]).unwrap();
        assert_eq!(cli.global.format.as_deref(), Some("json"));
        let env = env_of(&[]);
        assert_eq!(resolve_format(Some("yaml"), &env).unwrap(), Format::Yaml);
        let err = resolve_format(Some("xml"), &env).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("table, json or yaml"), "{err}");
    }

    #[test]
    fn clap_errors_render_as_one_line() {
        let err = parse(&["coffer", "kv", "get", "-bogus", "secret/x"]).unwrap_err();
        let line = clap_one_line(&err);
        assert!(line.starts_with("Error: "), "{line}");
        assert!(line.contains("--bogus"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let err = parse(&["coffer", "kv", "put", "secret/x"]).unwrap_err();
        let line = clap_one_line(&err);
        assert!(line.contains("not provided: <K=V>"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
    }
}
