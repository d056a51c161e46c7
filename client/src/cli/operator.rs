//! `coffer status` and `coffer operator init|unseal|seal|generate-root|rekey|rotate|
//! key-status|unlock-user`: the `sys/` endpoints of the seal, the root key and lockouts,
//! printed like `vault status` and `vault operator ...` print them.
//!
//! `generate-root` and `rekey` follow Vault's documented API (`sys/generate-root/attempt`
//! and `/update`; `sys/rekey/init`, `/update` and `/verify`). The encoded root token is
//! the token XOR the one-time password, base64 encoded; `-decode` undoes it locally.

use base64::Engine;
use clap::{Args, Subcommand};
use coffer_client::{InitResponse, Method, SealStatus, Secret};
use ring::rand::SecureRandom;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::output::{self, fmt_value, Format, Rows};
use super::{secret_arg, success, CliError, Ctx, Session};

/// `coffer operator ...`
#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Initialise a new server: create the unseal key shares and the initial root token.
    Init(InitArgs),
    /// Supply one unseal key share (prompted without echo when KEY is omitted).
    Unseal(UnsealArgs),
    /// Seal the server (needs a token allowed to do so).
    Seal,
    /// Make a new root token from a quorum of unseal keys (-init, then one key per holder,
    /// then -decode with the one-time password).
    GenerateRoot(GenerateRootArgs),
    /// Replace the unseal key shares (-init with new -key-shares/-key-threshold, then a
    /// quorum of the current keys; -verify to check the new ones before they count).
    Rekey(RekeyArgs),
    /// Add a new encryption key term to the keyring (new data is written with it).
    Rotate,
    /// Show the current encryption key term.
    KeyStatus,
    /// Unlock a userpass user locked out by failed logins.
    UnlockUser(UnlockUserArgs),
}

/// Arguments of `operator generate-root`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
coffer operator generate-root -init                 (prints the Nonce and the OTP: keep it)\n  \
coffer operator generate-root                       (each key holder, asked for the key)\n  \
coffer operator generate-root -decode=ENCODED -otp=OTP")]
pub struct GenerateRootArgs {
    /// Start a root token generation (the server makes the OTP unless -otp is given).
    #[arg(long, conflicts_with_all = ["status", "cancel", "decode", "generate_otp"])]
    pub init: bool,
    /// Show the progress of the running generation.
    #[arg(long, conflicts_with_all = ["cancel", "decode", "generate_otp"])]
    pub status: bool,
    /// Cancel the running generation (the keys given so far are forgotten).
    #[arg(long, conflicts_with_all = ["decode", "generate_otp"])]
    pub cancel: bool,
    /// Print a one-time password of the length the server wants, for -init -otp.
    #[arg(long = "generate-otp", conflicts_with = "decode")]
    pub generate_otp: bool,
    /// Decode this encoded root token with -otp and print the token.
    #[arg(long, value_name = "ENCODED")]
    pub decode: Option<String>,
    /// The one-time password (for -init, or -decode; `-` reads stdin).
    #[arg(long, value_name = "OTP")]
    pub otp: Option<String>,
    /// The generation's nonce [default: the running one].
    #[arg(long)]
    pub nonce: Option<String>,
    /// A PGP key to encrypt the token with: not supported, refused.
    #[arg(long = "pgp-key", hide = true)]
    pub pgp_key: Option<String>,
    /// An unseal key share (`-` reads stdin; prompted without echo when omitted).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
}

/// Arguments of `operator rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Start a rekey with -key-shares and -key-threshold.
    #[arg(long, conflicts_with_all = ["status", "cancel"])]
    pub init: bool,
    /// Show the progress of the running rekey (or verification, with -verify).
    #[arg(long, conflicts_with = "cancel")]
    pub status: bool,
    /// Cancel the running rekey (or verification, with -verify).
    #[arg(long)]
    pub cancel: bool,
    /// With -init: the new keys must be verified before they replace the old ones.
    /// Otherwise: give a NEW key to the verification.
    #[arg(long)]
    pub verify: bool,
    /// Number of new key shares.
    #[arg(long = "key-shares", default_value_t = 5)]
    pub key_shares: u32,
    /// Number of new key shares needed to unseal.
    #[arg(long = "key-threshold", default_value_t = 3)]
    pub key_threshold: u32,
    /// The rekey's (or verification's) nonce [default: the running one].
    #[arg(long)]
    pub nonce: Option<String>,
    /// Only `barrier` (the unseal keys) exists here; `recovery` is refused.
    #[arg(long, default_value = "barrier")]
    pub target: String,
    /// A key share (`-` reads stdin; prompted without echo when omitted).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
}

/// Arguments of `operator unlock-user`.
#[derive(Debug, Args)]
pub struct UnlockUserArgs {
    /// The userpass mount.
    #[arg(long, default_value = "userpass")]
    pub mount: String,
    /// The locked user.
    pub username: String,
}

/// Flags of `operator init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Only say whether the server is initialised (exit 0 yes, 2 no).
    #[arg(long)]
    pub status: bool,
    /// Number of key shares to split the unseal key into.
    #[arg(long = "key-shares", default_value_t = 5)]
    pub key_shares: u32,
    /// Number of key shares needed to unseal.
    #[arg(long = "key-threshold", default_value_t = 3)]
    pub key_threshold: u32,
}

/// Arguments of `operator unseal`.
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// The key share (hex or base64); `-` reads it from stdin.
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
    /// Discard the key shares supplied so far.
    #[arg(long, conflicts_with = "key")]
    pub reset: bool,
}

/// Dispatch an operator subcommand.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: OperatorCmd) -> Result<u8, CliError> {
    match cmd {
        OperatorCmd::Init(a) => init(ctx, session, a).await,
        OperatorCmd::Unseal(a) => unseal(ctx, session, a).await,
        OperatorCmd::Seal => {
            ctx.client.seal().await?;
            success(ctx, session, "Success! Coffer is sealed.")
        }
        OperatorCmd::GenerateRoot(a) => generate_root(ctx, session, a).await,
        OperatorCmd::Rekey(a) => rekey(ctx, session, a).await,
        OperatorCmd::Rotate => {
            ctx.client.write("sys/rotate", &json!({})).await?;
            let status = read_required(ctx, "sys/key-status").await?;
            if ctx.format.is_structured() {
                session
                    .out
                    .push_str(&output::structured(ctx.format, &data_of(&status)));
            } else {
                session.out.push_str("Success! Rotated key\n\n");
                session
                    .out
                    .push_str(&output::bare_table(&key_status_rows(&status)));
            }
            Ok(0)
        }
        OperatorCmd::KeyStatus => {
            let status = read_required(ctx, "sys/key-status").await?;
            if ctx.format.is_structured() {
                session
                    .out
                    .push_str(&output::structured(ctx.format, &data_of(&status)));
            } else {
                session
                    .out
                    .push_str(&output::bare_table(&key_status_rows(&status)));
            }
            Ok(0)
        }
        OperatorCmd::UnlockUser(a) => unlock_user(ctx, session, a).await,
    }
}

/// The `data` of an answer (what `vault operator key-status -format=json` prints).
fn data_of(s: &Secret) -> Value {
    Value::Object(s.data.clone().unwrap_or_default())
}

async fn read_required(ctx: &Ctx<'_>, path: &str) -> Result<Secret, CliError> {
    ctx.client
        .read(path)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("No value found at {path}")))
}

/// `Key Term`, `Install Time`, `Encryption Count` as `vault operator key-status` shows them.
pub fn key_status_rows(s: &Secret) -> Rows {
    let get = |k: &str| {
        s.data_field(k)
            .map(fmt_value)
            .unwrap_or_else(|| "n/a".into())
    };
    vec![
        ("Key Term".into(), get("term")),
        ("Install Time".into(), get("install_time")),
        ("Encryption Count".into(), get("encryptions")),
    ]
}

async fn unlock_user(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: UnlockUserArgs,
) -> Result<u8, CliError> {
    let mount = format!("{}/", a.mount.trim().trim_matches('/'));
    let auth = read_required(ctx, "sys/auth").await?;
    let accessor = auth
        .data_field(&mount)
        .and_then(|m| m.get("accessor"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "no auth method at {mount}: see coffer auth list, or give -mount"
            ))
        })?;
    let user = a.username.trim();
    if user.is_empty() || user.contains('/') {
        return Err(CliError::Usage("give the user name to unlock".into()));
    }
    ctx.client
        .write(
            &format!("sys/locked-users/{accessor}/unlock/{user}"),
            &json!({}),
        )
        .await?;
    success(
        ctx,
        session,
        &format!("Success! Unlocked user {user} on auth/{mount} (if it was locked)"),
    )
}

/// `PUT`/`GET`/`DELETE` on a seal-operation path, its answer as a JSON object (these
/// answers are not wrapped in an envelope).
async fn sys_call(
    ctx: &Ctx<'_>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Map<String, Value>, CliError> {
    let resp = ctx
        .client
        .request(method, path, &[], body, &[])
        .await?
        .error_for_status()?;
    let mut map = match resp.body {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // A server that wraps them anyway: use `data`.
    if let Some(Value::Object(data)) = map.remove("data") {
        map = data;
    }
    Ok(map)
}

fn field_str(m: &Map<String, Value>, key: &str) -> String {
    m.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn field_u64(m: &Map<String, Value>, key: &str) -> u64 {
    m.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn field_bool(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `sys/generate-root/<step>` (Vault's path, which Coffer serves); a server that has no
/// such route (404/405) is asked at `sys/generate-root-token/<step>`, OpenBao 2's name.
/// Retrying is safe: a refused route changed nothing.
async fn root_call(
    ctx: &Ctx<'_>,
    method: Method,
    step: &str,
    body: Option<&Value>,
) -> Result<Map<String, Value>, CliError> {
    match sys_call(
        ctx,
        method.clone(),
        &format!("sys/generate-root/{step}"),
        body,
    )
    .await
    {
        Err(CliError::Client(e)) if matches!(e.status(), Some(404 | 405)) => {
            sys_call(
                ctx,
                method,
                &format!("sys/generate-root-token/{step}"),
                body,
            )
            .await
        }
        other => other,
    }
}

/// A one-time password of `len` characters from A-Z, a-z, 0-9 (what Vault generates).
pub fn generate_otp(len: usize) -> Result<Zeroizing<String>, CliError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut byte = [0u8; 1];
    while out.len() < len {
        rng.fill(&mut byte)
            .map_err(|_| CliError::Failed("no randomness available for the OTP".into()))?;
        // 248 = 4 * 62: rejecting above it keeps every character equally likely.
        if byte[0] < 248 {
            out.push(char::from(ALPHABET[usize::from(byte[0] % 62)]));
        }
    }
    Ok(out)
}

/// The root token from an encoded token (base64, padded or not) and its OTP: the bytes
/// XOR the OTP's bytes.
pub fn decode_root_token(encoded: &str, otp: &str) -> Result<Zeroizing<String>, CliError> {
    let encoded = encoded.trim();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|_| CliError::Usage("-decode: the encoded token is not base64".into()))?;
    let bytes = Zeroizing::new(bytes);
    let otp = otp.trim().as_bytes();
    if otp.len() != bytes.len() {
        return Err(CliError::Usage(format!(
            "-otp has {} characters but the encoded token needs {}: use the OTP printed by \
             generate-root -init",
            otp.len(),
            bytes.len()
        )));
    }
    let plain: Zeroizing<Vec<u8>> =
        Zeroizing::new(bytes.iter().zip(otp).map(|(a, b)| a ^ b).collect());
    let token = String::from_utf8(plain.to_vec())
        .map_err(|_| CliError::Usage("-decode: wrong OTP for this encoded token".into()))?;
    Ok(Zeroizing::new(token))
}

/// Rows of a generation's status, as `vault operator generate-root -status` shows them.
pub fn generate_root_rows(m: &Map<String, Value>) -> Rows {
    let nonce = field_str(m, "nonce");
    let mut rows: Rows = vec![
        (
            "Nonce".into(),
            if nonce.is_empty() {
                "n/a".into()
            } else {
                nonce
            },
        ),
        ("Started".into(), field_bool(m, "started").to_string()),
        (
            "Progress".into(),
            format!("{}/{}", field_u64(m, "progress"), field_u64(m, "required")),
        ),
        ("Complete".into(), field_bool(m, "complete").to_string()),
    ];
    let encoded = field_str(m, "encoded_token");
    let encoded = if encoded.is_empty() {
        field_str(m, "encoded_root_token")
    } else {
        encoded
    };
    if !encoded.is_empty() {
        rows.push(("Encoded Token".into(), encoded));
    }
    let otp = field_str(m, "otp");
    if !otp.is_empty() {
        rows.push(("OTP".into(), otp));
    }
    rows.push(("OTP Length".into(), field_u64(m, "otp_length").to_string()));
    rows
}

async fn generate_root(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: GenerateRootArgs,
) -> Result<u8, CliError> {
    const ATTEMPT: &str = "attempt";
    if a.pgp_key.is_some() {
        return Err(CliError::Usage(
            "-pgp-key is not supported: use the one-time password (-init without -pgp-key)".into(),
        ));
    }
    if let Some(encoded) = &a.decode {
        let otp = match a.otp.as_deref() {
            Some(v) => secret_arg(session, Some(v), "", "OTP")?,
            None => return Err(CliError::Usage("-decode needs -otp=OTP".into())),
        };
        let token = decode_root_token(encoded, &otp)?;
        session.secrets.push(token.clone());
        if ctx.format.is_structured() {
            session.out.push_str(&output::structured(
                ctx.format,
                &json!({ "token": token.as_str() }),
            ));
        } else {
            session.out.push_str(&format!("{}\n", token.as_str()));
        }
        return Ok(0);
    }
    if a.generate_otp {
        let status = root_call(ctx, Method::GET, ATTEMPT, None).await?;
        let len = usize::try_from(field_u64(&status, "otp_length")).unwrap_or(0);
        if len == 0 {
            return Err(CliError::Failed(
                "the server did not say how long the OTP must be (otp_length)".into(),
            ));
        }
        let otp = generate_otp(len)?;
        session.secrets.push(otp.clone());
        session.out.push_str(&format!("{}\n", otp.as_str()));
        return Ok(0);
    }
    let status = if a.cancel {
        root_call(ctx, Method::DELETE, ATTEMPT, None).await?;
        return success(
            ctx,
            session,
            "Success! Root token generation canceled (if it was started)",
        );
    } else if a.status {
        root_call(ctx, Method::GET, ATTEMPT, None).await?
    } else if a.init {
        let body = match &a.otp {
            Some(otp) => json!({ "otp": otp.trim() }),
            None => json!({}),
        };
        let status = root_call(ctx, Method::PUT, ATTEMPT, Some(&body)).await?;
        if !field_str(&status, "otp").is_empty() {
            session.warnings.push(
                "a one-time password was generated for you and is shown in the OTP field: \
                 you need it to decode the new root token, so keep it safe"
                    .into(),
            );
        }
        status
    } else {
        let nonce = match &a.nonce {
            Some(n) => n.clone(),
            None => {
                let current = root_call(ctx, Method::GET, ATTEMPT, None).await?;
                if !field_bool(&current, "started") {
                    return Err(CliError::Usage(
                        "no root token generation is in progress: start one with \
                         coffer operator generate-root -init"
                            .into(),
                    ));
                }
                field_str(&current, "nonce")
            }
        };
        let key = secret_arg(
            session,
            a.key.as_deref(),
            "Unseal Key (will be hidden): ",
            "unseal key",
        )?;
        root_call(
            ctx,
            Method::PUT,
            "update",
            Some(&json!({ "key": key.as_str(), "nonce": nonce })),
        )
        .await?
    };
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Object(status)));
        return Ok(0);
    }
    session
        .out
        .push_str(&output::bare_table(&generate_root_rows(&status)));
    if field_bool(&status, "complete") {
        let encoded = generate_root_rows(&status)
            .into_iter()
            .find(|(k, _)| k == "Encoded Token")
            .map(|(_, v)| v)
            .unwrap_or_default();
        session.out.push_str(&format!(
            "\nDecode the new root token with the OTP from -init:\n  \
             coffer operator generate-root -decode={encoded} -otp=<OTP>\n"
        ));
    }
    Ok(0)
}

/// Rows of a rekey's status (or a verification's).
pub fn rekey_rows(m: &Map<String, Value>, verify: bool) -> Rows {
    let mut rows: Rows = vec![("Nonce".into(), field_str(m, "nonce"))];
    if !verify {
        rows.push(("Started".into(), field_bool(m, "started").to_string()));
    }
    rows.push((
        if verify {
            "Verification Progress"
        } else {
            "Rekey Progress"
        }
        .into(),
        format!("{}/{}", field_u64(m, "progress"), field_u64(m, "required")),
    ));
    rows.push(("New Shares".into(), field_u64(m, "n").to_string()));
    rows.push(("New Threshold".into(), field_u64(m, "t").to_string()));
    if !verify {
        rows.push((
            "Verification Required".into(),
            field_bool(m, "verification_required").to_string(),
        ));
    }
    rows
}

async fn rekey(ctx: &Ctx<'_>, session: &mut Session, a: RekeyArgs) -> Result<u8, CliError> {
    if a.target != "barrier" {
        return Err(CliError::Usage(format!(
            "-target={}: only the unseal keys (barrier) can be rekeyed; recovery keys exist \
             only with auto-unseal",
            a.target
        )));
    }
    let base = if a.verify && !a.init {
        "sys/rekey/verify"
    } else {
        "sys/rekey/init"
    };
    let verify = base == "sys/rekey/verify";
    if a.cancel {
        sys_call(ctx, Method::DELETE, base, None).await?;
        let msg = if verify {
            "Success! Rekey verification canceled; a new verification nonce was created"
        } else {
            "Success! Canceled rekeying (if it was started)"
        };
        return success(ctx, session, msg);
    }
    let status = if a.status {
        sys_call(ctx, Method::GET, base, None).await?
    } else if a.init {
        if a.key_threshold == 0 || a.key_shares == 0 || a.key_threshold > a.key_shares {
            return Err(CliError::Usage(format!(
                "-key-threshold ({}) must be between 1 and -key-shares ({})",
                a.key_threshold, a.key_shares
            )));
        }
        sys_call(
            ctx,
            Method::PUT,
            base,
            Some(&json!({
                "secret_shares": a.key_shares,
                "secret_threshold": a.key_threshold,
                "require_verification": a.verify,
            })),
        )
        .await?
    } else {
        let nonce = match &a.nonce {
            Some(n) => n.clone(),
            None => {
                let current = sys_call(ctx, Method::GET, base, None).await?;
                let nonce = field_str(&current, "nonce");
                if nonce.is_empty() || (!verify && !field_bool(&current, "started")) {
                    return Err(CliError::Usage(if verify {
                        "no rekey verification is in progress".into()
                    } else {
                        "no rekey is in progress: start one with coffer operator rekey -init \
                         -key-shares=N -key-threshold=T"
                            .to_string()
                    }));
                }
                nonce
            }
        };
        let prompt = if verify {
            "New Unseal Key (will be hidden): "
        } else {
            "Unseal Key (will be hidden): "
        };
        let key = secret_arg(session, a.key.as_deref(), prompt, "unseal key")?;
        let update = if verify {
            "sys/rekey/verify"
        } else {
            "sys/rekey/update"
        };
        let answer = sys_call(
            ctx,
            Method::PUT,
            update,
            Some(&json!({ "key": key.as_str(), "nonce": nonce })),
        )
        .await?;
        return rekey_answer(ctx, session, answer, verify);
    };
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Object(status)));
    } else {
        session
            .out
            .push_str(&output::bare_table(&rekey_rows(&status, verify)));
    }
    Ok(0)
}

/// What an update or verify step answered: progress so far, or the new keys.
fn rekey_answer(
    ctx: &Ctx<'_>,
    session: &mut Session,
    answer: Map<String, Value>,
    verify: bool,
) -> Result<u8, CliError> {
    if ctx.format.is_structured() {
        for key in ["keys", "keys_base64"] {
            if let Some(Value::Array(keys)) = answer.get(key) {
                for k in keys.iter().filter_map(Value::as_str) {
                    session.secrets.push(Zeroizing::new(k.to_string()));
                }
            }
        }
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Object(answer)));
        return Ok(0);
    }
    if !field_bool(&answer, "complete") {
        session
            .out
            .push_str(&output::bare_table(&rekey_rows(&answer, verify)));
        return Ok(0);
    }
    if verify {
        session.out.push_str(&format!(
            "Success! Rekey verification was successful. The rekey operation (nonce {}) is \
             complete: the new unseal keys are now active and the old ones no longer work.\n",
            field_str(&answer, "nonce")
        ));
        return Ok(0);
    }
    let keys: Vec<String> = ["keys_base64", "keys"]
        .iter()
        .find_map(|k| match answer.get(*k) {
            Some(Value::Array(a)) if !a.is_empty() => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    for (i, key) in keys.iter().enumerate() {
        session.secrets.push(Zeroizing::new(key.clone()));
        session.out.push_str(&format!("Key {}: {key}\n", i + 1));
    }
    session.out.push_str(&format!(
        "\nOperation nonce: {}\n\n",
        field_str(&answer, "nonce")
    ));
    if field_bool(&answer, "verification_required") {
        session.out.push_str(&format!(
            "Coffer has created {} new key shares, but they are not active yet: a quorum of \
             the NEW keys must be given to\n  coffer operator rekey -verify -nonce={} \
             <new key>\nUntil then the old keys keep working.\n",
            keys.len(),
            field_str(&answer, "verification_nonce")
        ));
    } else {
        session.out.push_str(&format!(
            "Coffer rekeyed with {} key shares. The old unseal keys no longer work: distribute \
             the new ones to different people and store them safely.\n",
            keys.len()
        ));
    }
    Ok(0)
}

/// `coffer status`: exit 0 when unsealed, 2 when sealed (or not initialised).
pub async fn status(ctx: &Ctx<'_>, session: &mut Session) -> Result<u8, CliError> {
    // As `vault status`: 2 means sealed, so any error (the server's or the connection's)
    // is 1 here.
    let status = ctx
        .client
        .seal_status()
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    render_seal_status(ctx.format, &status, session);
    Ok(if status.sealed { 2 } else { 0 })
}

fn render_seal_status(format: Format, status: &SealStatus, session: &mut Session) {
    match format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(format, status.raw())),
        Format::Table => session.out.push_str(&output::table(&seal_rows(status))),
    }
}

/// Rows of `coffer status`, in `vault status` order.
pub fn seal_rows(s: &SealStatus) -> Rows {
    let or_na = |v: &str| {
        if v.is_empty() {
            "n/a".to_string()
        } else {
            v.to_string()
        }
    };
    let mut rows: Rows = vec![
        ("Seal Type".into(), or_na(&s.seal_type)),
        ("Initialized".into(), s.initialized.to_string()),
        ("Sealed".into(), s.sealed.to_string()),
        ("Total Shares".into(), s.n.to_string()),
        ("Threshold".into(), s.t.to_string()),
    ];
    if s.sealed {
        rows.push(("Unseal Progress".into(), format!("{}/{}", s.progress, s.t)));
        rows.push(("Unseal Nonce".into(), or_na(&s.nonce)));
    }
    rows.push(("Version".into(), or_na(&s.version)));
    rows.push(("Storage Type".into(), or_na(&s.storage_type)));
    if !s.cluster_name.is_empty() {
        rows.push(("Cluster Name".into(), s.cluster_name.clone()));
    }
    if !s.cluster_id.is_empty() {
        rows.push(("Cluster ID".into(), s.cluster_id.clone()));
    }
    rows
}

async fn init(ctx: &Ctx<'_>, session: &mut Session, a: InitArgs) -> Result<u8, CliError> {
    if a.status {
        let status = sys_call(ctx, Method::GET, "sys/init", None).await?;
        let initialized = field_bool(&status, "initialized");
        if ctx.format.is_structured() {
            session
                .out
                .push_str(&output::structured(ctx.format, &Value::Object(status)));
        } else if initialized {
            session.out.push_str("Coffer is initialized\n");
        } else {
            session.out.push_str("Coffer is not initialized\n");
        }
        return Ok(if initialized { 0 } else { 2 });
    }
    if a.key_threshold == 0 || a.key_shares == 0 || a.key_threshold > a.key_shares {
        return Err(CliError::Usage(format!(
            "-key-threshold ({}) must be between 1 and -key-shares ({})",
            a.key_threshold, a.key_shares
        )));
    }
    let init = ctx.client.init(a.key_shares, a.key_threshold).await?;
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, init.raw())),
        Format::Table => session
            .out
            .push_str(&init_text(&init, a.key_shares, a.key_threshold)),
    }
    Ok(0)
}

/// The `operator init` report: key shares (base64 like `vault`, hex if the server sent
/// no base64), the root token, and what to do next.
pub fn init_text(init: &InitResponse, shares: u32, threshold: u32) -> String {
    let keys = if init.keys_base64.is_empty() {
        &init.keys
    } else {
        &init.keys_base64
    };
    let mut out = String::new();
    for (i, key) in keys.iter().enumerate() {
        out.push_str(&format!("Unseal Key {}: {key}\n", i + 1));
    }
    out.push_str(&format!("\nInitial Root Token: {}\n\n", init.root_token));
    out.push_str(&format!(
        "Coffer initialized with {shares} key shares and a key threshold of {threshold}.\n\
         Distribute the unseal keys to different people and store them safely: the server\n\
         starts sealed and needs {threshold} of these keys (coffer operator unseal) after\n\
         every restart. Use the root token only to set up policies and other tokens.\n"
    ));
    out
}

async fn unseal(ctx: &Ctx<'_>, session: &mut Session, a: UnsealArgs) -> Result<u8, CliError> {
    let status = if a.reset {
        ctx.client.unseal_reset().await?
    } else {
        let key = secret_arg(
            session,
            a.key.as_deref(),
            "Unseal Key (will be hidden): ",
            "unseal key",
        )?;
        ctx.client.unseal(&key).await?
    };
    render_seal_status(ctx.format, &status, session);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(sealed: bool) -> SealStatus {
        serde_json::from_value(serde_json::json!({
            "type": "shamir", "initialized": true, "sealed": sealed, "t": 3, "n": 5,
            "progress": 1, "nonce": "", "version": "0.1.0", "storage_type": "sqlite",
            "cluster_name": if sealed { "" } else { "coffer-1" },
            "cluster_id": if sealed { "" } else { "abc" }
        }))
        .unwrap()
    }

    #[test]
    fn sealed_status_shows_progress_not_cluster() {
        let rows = seal_rows(&status(true));
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Seal Type",
                "Initialized",
                "Sealed",
                "Total Shares",
                "Threshold",
                "Unseal Progress",
                "Unseal Nonce",
                "Version",
                "Storage Type"
            ]
        );
        assert_eq!(rows[5].1, "1/3");
        assert_eq!(rows[6].1, "n/a");
    }

    #[test]
    fn unsealed_status_shows_cluster() {
        let rows = seal_rows(&status(false));
        assert!(rows.iter().all(|(k, _)| k != "Unseal Progress"));
        assert!(rows.contains(&("Cluster Name".to_string(), "coffer-1".to_string())));
    }

    #[test]
    fn otp_decodes_what_it_encoded() {
        let token = "hvs.AbCdEfGhIjKlMnOpQrStUvWx";
        let otp = generate_otp(token.len()).unwrap();
        assert_eq!(otp.len(), token.len());
        assert!(otp.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(otp.as_str(), generate_otp(token.len()).unwrap().as_str());
        let xored: Vec<u8> = token.bytes().zip(otp.bytes()).map(|(a, b)| a ^ b).collect();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&xored);
        assert_eq!(decode_root_token(&encoded, &otp).unwrap().as_str(), token);
        // Padded base64 works too.
        let padded = base64::engine::general_purpose::STANDARD.encode(&xored);
        assert_eq!(decode_root_token(&padded, &otp).unwrap().as_str(), token);
        let err = decode_root_token(&encoded, "short").unwrap_err();
        assert!(err.to_string().contains("-otp has 5 characters"), "{err}");
        assert!(decode_root_token("!!!", &otp).is_err());
    }

    #[test]
    fn generate_root_and_rekey_rows() {
        let m = json!({"nonce": "n1", "started": true, "progress": 1, "required": 3,
            "complete": false, "encoded_token": "", "otp": "OTPOTP", "otp_length": 28});
        let rows = generate_root_rows(m.as_object().unwrap());
        assert!(rows.contains(&("Progress".into(), "1/3".into())));
        assert!(rows.contains(&("OTP".into(), "OTPOTP".into())));
        assert!(!rows.iter().any(|(k, _)| k == "Encoded Token"));
        let m = json!({"nonce": "n2", "started": true, "progress": 2, "required": 3,
            "n": 3, "t": 2, "verification_required": true});
        let rows = rekey_rows(m.as_object().unwrap(), false);
        assert!(rows.contains(&("Rekey Progress".into(), "2/3".into())));
        assert!(rows.contains(&("New Shares".into(), "3".into())));
        assert!(rows.contains(&("Verification Required".into(), "true".into())));
        let rows = rekey_rows(m.as_object().unwrap(), true);
        assert!(rows.contains(&("Verification Progress".into(), "2/3".into())));
    }

    #[test]
    fn init_text_prefers_base64_keys() {
        let init: InitResponse = serde_json::from_value(serde_json::json!({
            "keys": ["aa", "bb"], "keys_base64": ["qg==", "uw=="], "root_token": "hvs.R"
        }))
        .unwrap();
        let text = init_text(&init, 2, 1);
        assert!(text
            .starts_with("Unseal Key 1: qg==\nUnseal Key 2: uw==\n\nInitial Root Token: hvs.R\n"));
        assert!(text.contains("2 key shares and a key threshold of 1"));
    }
}
