//! `coffer totp enroll|confirm`: set up the TOTP second factor of a userpass user. No
//! Coffer token is needed: a first factor (or one after an admin reset) is enrolled with
//! the one-time enrolment token an admin issued (`-enrollment-token` or
//! `$COFFER_ENROLLMENT_TOKEN`), the password the admin set, and a new password the user
//! chooses (asked for twice); a working factor is replaced with `-code`. `enroll` shows
//! the otpauth URL as a terminal QR code (Unicode half blocks) and as text, asks for a
//! code from the app, confirms, and prints the recovery codes, which the server shows
//! only once. `enroll -no-confirm` followed by `confirm -code` splits this for scripts.

use std::io::IsTerminal;

use clap::{Args, Subcommand};
use coffer_client::{ClientError, EnrollAuth, DEFAULT_USERPASS_MOUNT};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::credentials::{self, NO_PASSWORD_ARGS};
use super::login::{tokenless, username_arg};
use super::output::{self, Format};
use super::qr::{self, Matrix, QrStyle};
use super::{flush_stdout, write_stderr, CliError, Ctx, Session};

/// Attempts at typing the confirmation code before giving up.
const CONFIRM_ATTEMPTS: usize = 3;
const CONFIRM_PROMPT: &str = "Code shown by the app: ";
/// Environment variable holding the enrolment token.
pub const ENROLLMENT_TOKEN_ENV: &str = "COFFER_ENROLLMENT_TOKEN";
const TOKEN_NEEDED: &str = "an enrollment token is required to enrol a first factor: ask an \
administrator for one and pass it with -enrollment-token or COFFER_ENROLLMENT_TOKEN \
(or use -code with a current code to replace a working factor)";
const ONCE_WARNING: &str = "the recovery codes are shown only this once: store them somewhere \
safe now (a password manager); each works once in place of a TOTP code";

/// `coffer totp ...`
#[derive(Debug, Subcommand)]
pub enum TotpCmd {
    /// Enrol an authenticator app for a userpass user: shows a QR code, confirms it with
    /// a code from the app, prints the recovery codes.
    Enroll(EnrollArgs),
    /// Confirm an enrolment started with `totp enroll -no-confirm`; prints the recovery
    /// codes.
    Confirm(ConfirmArgs),
}

/// Arguments of `totp enroll`.
#[derive(Debug, Args)]
#[command(
    after_help = "The password comes from the prompt, -password-stdin or COFFER_PASSWORD; the new\n\
password from the prompt (asked twice), the second line of -password-stdin or\n\
COFFER_NEW_PASSWORD. On a terminal the QR code is drawn black on white (-qr=ansi), which\n\
scans on light and dark backgrounds; -qr=utf8 (dark background) and -qr=utf8-light draw\n\
it without colours, -qr=png:FILE writes a PNG instead. Code and otpauth:// URL fit 80x24\n\
(COLUMNS is honoured); without a prompt after them the URL is also printed on one line."
)]
pub struct EnrollArgs {
    /// The one-time enrolment token an admin issued (or COFFER_ENROLLMENT_TOKEN).
    #[arg(long = "enrollment-token", value_name = "TOKEN")]
    pub enrollment_token: Option<String>,
    /// Mount path of the userpass auth method.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_USERPASS_MOUNT)]
    pub path: String,
    /// Read the password from the first line of stdin.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Current TOTP code (or recovery code): needed only to replace a confirmed factor.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Code from the app to confirm with, instead of asking for it.
    #[arg(long = "confirm-code", value_name = "CODE")]
    pub confirm_code: Option<String>,
    /// Only start the enrolment (QR code and URL); finish with `coffer totp confirm`.
    #[arg(long = "no-confirm", conflicts_with = "confirm_code")]
    pub no_confirm: bool,
    /// How to show the QR code: ansi, utf8, utf8-light or png:FILE [default: ansi on a
    /// terminal unless NO_COLOR, else utf8].
    #[arg(long, value_name = "STYLE")]
    pub qr: Option<String>,
    /// Refused: passwords do not belong in argv.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    pub password: Option<String>,
    /// The userpass user (NAME or username=NAME).
    #[arg(value_name = "USERNAME")]
    pub username: String,
}

/// Arguments of `totp confirm`.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The enrolment token the enrolment was started with (or COFFER_ENROLLMENT_TOKEN);
    /// the password is then the new one.
    #[arg(long = "enrollment-token", value_name = "TOKEN")]
    pub enrollment_token: Option<String>,
    /// Mount path of the userpass auth method.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_USERPASS_MOUNT)]
    pub path: String,
    /// Read the password from the first line of stdin.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Code from the app (asked for when omitted).
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// Refused: passwords do not belong in argv.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    pub password: Option<String>,
    /// The userpass user (NAME or username=NAME).
    #[arg(value_name = "USERNAME")]
    pub username: String,
}

/// Dispatch a totp subcommand.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: TotpCmd) -> Result<u8, CliError> {
    match cmd {
        TotpCmd::Enroll(a) => enroll(ctx, session, a).await,
        TotpCmd::Confirm(a) => confirm_only(ctx, session, a).await,
    }
}

/// The enrolment token from its flag or the environment, remembered for redaction.
fn enrollment_token(
    ctx: &Ctx<'_>,
    session: &mut Session,
    flag: Option<&str>,
) -> Result<Option<Zeroizing<String>>, CliError> {
    let value = flag
        .map(str::to_owned)
        .or_else(|| (ctx.env)(ENROLLMENT_TOKEN_ENV))
        .map(|t| Zeroizing::new(t.trim().to_string()))
        .filter(|t| !t.is_empty());
    if let Some(t) = &value {
        session.secrets.push(t.clone());
    }
    Ok(value)
}

fn no_code_source(flag: &str) -> String {
    format!("no terminal to ask for the code from the app; use {flag}")
}

async fn enroll(ctx: &Ctx<'_>, session: &mut Session, a: EnrollArgs) -> Result<u8, CliError> {
    if a.password.is_some() {
        return Err(CliError::Usage(NO_PASSWORD_ARGS.into()));
    }
    let username = username_arg(std::slice::from_ref(&a.username))?;
    let style = match &a.qr {
        Some(v) => QrStyle::parse(v)?,
        None => QrStyle::default_for(
            std::io::stdout().is_terminal(),
            (ctx.env)("NO_COLOR").is_some(),
            (ctx.env)("TERM").as_deref() == Some("dumb"),
        ),
    };
    let columns = (ctx.env)("COLUMNS")
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c >= 20)
        .unwrap_or(80);
    let token = enrollment_token(ctx, session, a.enrollment_token.as_deref())?;
    if token.is_none() && a.code.is_none() {
        return Err(CliError::Usage(TOKEN_NEEDED.into()));
    }
    let password = credentials::password(session, ctx.env, a.password_stdin)?;
    let new_password = match &token {
        Some(_) => Some(credentials::new_password(
            session,
            ctx.env,
            a.password_stdin,
        )?),
        None => None,
    };
    let confirm_code = credentials::given_code(session, a.confirm_code.as_deref())?;
    // Without a way to get the app's code, fail before the server starts an enrolment.
    if !a.no_confirm && confirm_code.is_none() && !credentials::interactive() {
        return Err(CliError::Usage(no_code_source(
            "-confirm-code, or -no-confirm and later coffer totp confirm",
        )));
    }
    let current = credentials::given_code(session, a.code.as_deref())?;
    let auth = match (&token, &new_password, &current) {
        (Some(t), Some(p), _) => EnrollAuth::Token {
            enrollment_token: t,
            new_password: p,
        },
        (_, _, Some(c)) => EnrollAuth::CurrentCode(c),
        _ => return Err(CliError::Usage(TOKEN_NEEDED.into())),
    };
    let client = tokenless(ctx);
    let enrollment = client
        .totp_enroll(&a.path, &username, &password, auth)
        .await?;
    session.secrets.push(enrollment.url.clone());

    let will_prompt = !a.no_confirm && confirm_code.is_none();
    let shown = enrollment_text(&enrollment.url, &style, columns, !will_prompt)?;
    match ctx.format {
        Format::Table => session.out.push_str(&shown),
        // stdout stays pure JSON; a person typing the code still needs to see the QR code.
        Format::Json | Format::Yaml if will_prompt => write_stderr(&shown),
        Format::Json | Format::Yaml => {}
    }
    if a.no_confirm {
        match ctx.format {
            Format::Table => session.out.push_str(&format!(
                "Then confirm with a code from the app:\n  coffer totp confirm -path={} {username}\n",
                a.path
            )),
            Format::Json | Format::Yaml => session.out.push_str(&output::structured(ctx.format, &json!({
                "url": enrollment.url.as_str(),
                "method_id": enrollment.method_id,
            }))),
        }
        return Ok(0);
    }

    // After an enrolment with a token, confirm proves the new password.
    let confirm_password = new_password.as_ref().unwrap_or(&password);
    let codes = confirm_with_retries(
        ctx,
        session,
        &a.path,
        &username,
        confirm_password,
        confirm_code,
        token.as_ref().map(|t| t.as_str()),
    )
    .await?;
    let mut answer = json!({ "url": enrollment.url.as_str() });
    print_recovery_codes(ctx, session, &username, &codes, &mut answer);
    Ok(0)
}

async fn confirm_only(
    ctx: &Ctx<'_>,
    session: &mut Session,
    a: ConfirmArgs,
) -> Result<u8, CliError> {
    if a.password.is_some() {
        return Err(CliError::Usage(NO_PASSWORD_ARGS.into()));
    }
    let username = username_arg(std::slice::from_ref(&a.username))?;
    let token = enrollment_token(ctx, session, a.enrollment_token.as_deref())?;
    let password = credentials::password(session, ctx.env, a.password_stdin)?;
    let code = credentials::given_code(session, a.code.as_deref())?;
    if code.is_none() && !credentials::interactive() {
        return Err(CliError::Usage(no_code_source("-code")));
    }
    let codes = confirm_with_retries(
        ctx,
        session,
        &a.path,
        &username,
        &password,
        code,
        token.as_ref().map(|t| t.as_str()),
    )
    .await?;
    let mut answer = json!({});
    print_recovery_codes(ctx, session, &username, &codes, &mut answer);
    Ok(0)
}

/// Confirm with the given code, or ask for one (again after a rejected code, up to
/// [`CONFIRM_ATTEMPTS`] times).
async fn confirm_with_retries(
    ctx: &Ctx<'_>,
    session: &mut Session,
    mount: &str,
    username: &str,
    password: &str,
    given: Option<Zeroizing<String>>,
    enrollment_token: Option<&str>,
) -> Result<Vec<Zeroizing<String>>, CliError> {
    let client = tokenless(ctx);
    if let Some(code) = given {
        return Ok(client
            .totp_confirm(mount, username, password, &code, enrollment_token)
            .await?);
    }
    // What was printed so far (the QR code) must be on screen before the prompt.
    flush_stdout(session);
    let mut attempt = 1;
    loop {
        let code = credentials::prompt_code(
            session,
            CONFIRM_PROMPT,
            false,
            &no_code_source("-confirm-code"),
        )?;
        match client
            .totp_confirm(mount, username, password, &code, enrollment_token)
            .await
        {
            Ok(codes) => return Ok(codes),
            Err(ClientError::Api { status: 400, .. }) if attempt < CONFIRM_ATTEMPTS => {
                write_stderr("That code was not accepted; check the app and try again.\n");
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn print_recovery_codes(
    ctx: &Ctx<'_>,
    session: &mut Session,
    username: &str,
    codes: &[Zeroizing<String>],
    answer: &mut Value,
) {
    match ctx.format {
        Format::Table => {
            let mut text =
                format!("Success! TOTP is enrolled for {username}. Your recovery codes:\n\n");
            for code in codes {
                text.push_str(&format!("    {}\n", code.as_str()));
            }
            text.push_str(&format!("\nWARNING: {ONCE_WARNING}.\n"));
            session.out.push_str(&text);
        }
        Format::Json | Format::Yaml => {
            if let Some(obj) = answer.as_object_mut() {
                let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                obj.insert("recovery_codes".into(), json!(list));
            }
            session
                .out
                .push_str(&output::structured(ctx.format, answer));
            session.warnings.push(ONCE_WARNING.to_string());
        }
    }
}

/// The QR code of `url` (see [`qr`]) with the key and URL beside it; `whole_url`: the
/// URL again on one line below, for copying, when no prompt follows (so the 24 rows
/// above a prompt are not needed).
pub fn enrollment_text(
    url: &str,
    style: &QrStyle,
    columns: usize,
    whole_url: bool,
) -> Result<String, CliError> {
    let matrix = Matrix::new(&qr::qr_payload(url))?;
    let mut out = String::from("\n");
    match style {
        QrStyle::Png(path) => {
            qr::write_png(&matrix, path)?;
            out.push_str(&format!(
                "QR code written to {} (mode 0600; it holds the TOTP secret: delete it once \
                 scanned).\n\n",
                path.display()
            ));
            for line in qr::side_text(url, columns.saturating_sub(1)) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        QrStyle::Ansi => out.push_str(&qr::layout(
            &qr::render_ansi(&matrix),
            matrix.size,
            url,
            columns,
        )),
        QrStyle::Utf8 => out.push_str(&qr::layout(
            &qr::render_plain(&matrix, false),
            matrix.size,
            url,
            columns,
        )),
        QrStyle::Utf8Light => out.push_str(&qr::layout(
            &qr::render_plain(&matrix, true),
            matrix.size,
            url,
            columns,
        )),
    }
    if whole_url {
        out.push_str(&format!("\nThe otpauth URL on one line:\n{url}\n\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "otpauth://totp/Coffer:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn enrollment_text_has_qr_and_url() {
        let text = enrollment_text(URL, &QrStyle::Utf8, 80, true).unwrap();
        assert!(text.contains('█'));
        assert!(text.contains(&format!("\n{URL}\n")));
        let prompt_next = enrollment_text(URL, &QrStyle::Ansi, 80, false).unwrap();
        assert!(!prompt_next.contains(&format!("\n{URL}\n")));
        assert!(prompt_next.contains("\x1b[30;"));
        assert!(prompt_next.lines().count() <= 24, "{prompt_next}");
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("qr.png");
        let text = enrollment_text(URL, &QrStyle::Png(png.clone()), 80, false).unwrap();
        assert!(text.contains("QR code written to"), "{text}");
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&png).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
