//! `coffer breakglass request|list|show|approve|deny|cancel|token|revoke|report`:
//! emergency access approved by a second person, and the swap of the token file it
//! needs.
//!
//! `token <id>` writes the emergency token into the token file `coffer` uses and keeps
//! what was there in `<tokenfile>.pre-breakglass` (mode 0600, JSON: the previous token,
//! the grant id, the local expiry time and a SHA-256 fingerprint of the emergency token).
//! `revoke <id>` puts the previous token back, and so does any later `coffer` command
//! once the emergency token has expired, but only while the token file still holds the
//! emergency token (the fingerprint says so): a token the person stored since is never
//! overwritten. The emergency token is printed only when asked (`-format=json`,
//! `-field=token`), like `coffer login`.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use coffer_client::{
    BreakGlassReport, BreakGlassRequest, BreakGlassStatus, Client, EmergencyToken, SecretString,
    Ttl,
};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::credentials::{self, CODE_ENV};
use super::kv::push_field;
use super::login::{read_token_file, remove_token_file, write_token_file};
use super::output::{self, fmt_duration, fmt_value, Format, Rows};
use super::{resolve_format, CliError, Ctx, Env, Session, TokenSource};

/// The longest grant the server ever gives (its hard ceiling), checked here too so a
/// typo like `--ttl 30h` is caught before anyone is asked to approve it.
pub const MAX_TTL_SECS: u64 = 4 * 3600;
/// Suffix of the side file that keeps the token the emergency token replaced.
pub const SIDE_FILE_SUFFIX: &str = ".pre-breakglass";

/// `coffer breakglass ...`
#[derive(Debug, Subcommand)]
pub enum BreakGlassCmd {
    /// Ask for time-boxed emergency access (needs a login that passed MFA).
    Request(RequestArgs),
    /// List grants: your own, or all of them for approvers.
    List(ListArgs),
    /// Show one grant.
    Show(ShowArgs),
    /// Approve a grant (asks for your TOTP code).
    Approve(ApproveArgs),
    /// Deny a grant, with a comment (asks for your TOTP code).
    Deny(DenyArgs),
    /// Withdraw your own pending or approved grant.
    Cancel(IdArgs),
    /// Fetch the emergency token of your approved grant (once) and store it in the
    /// token file; the previous token is kept to be put back.
    Token(TokenArgs),
    /// End a grant and its token now; puts your previous token back.
    Revoke(IdArgs),
    /// The post-incident report: the grant and its timeline (-format=markdown|json).
    Report(IdArgs),
}

/// Arguments of `breakglass request`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
coffer breakglass request --reason \"primary database down, failover stuck\" --ttl 30m --incident INC-42")]
pub struct RequestArgs {
    /// Why the access is needed (at least 10 characters; approvers and the report show it).
    #[arg(long)]
    pub reason: String,
    /// How long the token lives once fetched: 30m, 1h30m, 90s or seconds (at most 4h)
    /// [default: the server's, 30m].
    #[arg(long)]
    pub ttl: Option<String>,
    /// Incident reference, e.g. INC-42.
    #[arg(long)]
    pub incident: Option<String>,
    /// Policies to grant, comma-separated [default: emergency-admin].
    #[arg(long, alias = "policy", value_delimiter = ',', value_name = "NAME")]
    pub policies: Vec<String>,
}

/// Arguments of `breakglass list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only grants waiting for approval.
    #[arg(long)]
    pub pending: bool,
}

/// Arguments of `breakglass show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The grant id (bg-...).
    pub id: String,
    /// Print only this field.
    #[arg(long)]
    pub field: Option<String>,
}

/// A grant id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The grant id (bg-...).
    pub id: String,
}

/// Arguments of `breakglass approve`.
#[derive(Debug, Args)]
#[command(
    after_help = "The TOTP code is asked for without echo; for scripts use -code or COFFER_TOTP_CODE."
)]
pub struct ApproveArgs {
    /// The grant id (bg-...).
    pub id: String,
    /// A comment for the record.
    #[arg(long)]
    pub comment: Option<String>,
    /// Your current TOTP code [$COFFER_TOTP_CODE; asked for when absent].
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
}

/// Arguments of `breakglass deny`.
#[derive(Debug, Args)]
#[command(
    after_help = "The TOTP code is asked for without echo; for scripts use -code or COFFER_TOTP_CODE."
)]
pub struct DenyArgs {
    /// The grant id (bg-...).
    pub id: String,
    /// Why (required: the requester and the report show it).
    #[arg(long)]
    pub comment: String,
    /// Your current TOTP code [$COFFER_TOTP_CODE; asked for when absent].
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
}

/// Arguments of `breakglass token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The grant id (bg-...).
    pub id: String,
    /// Print only this field (-field=token prints the token).
    #[arg(long)]
    pub field: Option<String>,
    /// Do not write the token file (the token is then only in -format=json or
    /// -field=token output: it cannot be fetched twice).
    #[arg(long = "no-store")]
    pub no_store: bool,
}

/// Whether a parsed command is `breakglass report`, whose `-format` means
/// markdown|json rather than table|json|yaml.
pub fn is_report(cmd: &BreakGlassCmd) -> bool {
    matches!(cmd, BreakGlassCmd::Report(_))
}

/// The output format of `report`: `markdown` (the default, shown as [`Format::Table`]),
/// `json` or `yaml`, from `-format`, else `COFFER_FORMAT`/`VAULT_FORMAT`.
pub fn report_format(flag: Option<&str>, env: Env<'_>) -> Result<Format, CliError> {
    if let Some(flag) = flag {
        if matches!(flag.trim().to_ascii_lowercase().as_str(), "markdown" | "md") {
            return Ok(Format::Table);
        }
        return Format::parse(flag).ok_or_else(|| {
            CliError::Usage(format!(
                "invalid -format {flag:?} for a report: use markdown or json"
            ))
        });
    }
    resolve_format(None, env)
}

/// Dispatch a breakglass subcommand.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: BreakGlassCmd) -> Result<u8, CliError> {
    let client = own_client(ctx, session);
    match cmd {
        BreakGlassCmd::Request(a) => {
            let ttl = a.ttl.as_deref().map(parse_ttl).transpose()?;
            let policies: Vec<String> = a
                .policies
                .iter()
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            let req = client
                .breakglass_request(
                    a.reason.trim(),
                    ttl.map(Ttl::Seconds),
                    a.incident.as_deref(),
                    &policies,
                )
                .await?;
            let head = format!(
                "Success! Break-glass request {id} is {status}. An approver runs\n  \
                 coffer breakglass approve {id}\nthen you fetch the token with\n  \
                 coffer breakglass token {id}\n\n",
                id = req.id,
                status = req.status
            );
            render_request(ctx, session, &req, &head)
        }
        BreakGlassCmd::List(a) => {
            let list = client.breakglass_list(a.pending).await?;
            if ctx.format.is_structured() {
                let all: Vec<Value> = list.iter().map(|r| r.raw().clone()).collect();
                session
                    .out
                    .push_str(&output::structured(ctx.format, &Value::from(all)));
            } else if list.is_empty() {
                session.out.push_str(if a.pending {
                    "No pending break-glass requests.\n"
                } else {
                    "No break-glass requests.\n"
                });
            } else {
                session.out.push_str(&list_text(&list));
            }
            Ok(0)
        }
        BreakGlassCmd::Show(a) => {
            let req = client.breakglass_show(&a.id).await?;
            if let Some(field) = &a.field {
                let value = output::pick_field(&request_rows(&req), field)
                    .ok_or_else(|| CliError::Failed(format!("Field {field:?} not present")))?;
                push_field(session, &value);
                return Ok(0);
            }
            render_request(ctx, session, &req, "")
        }
        BreakGlassCmd::Approve(a) => {
            let code = approver_code(ctx, session, a.code.as_deref(), &a.id)?;
            let req = client
                .breakglass_approve(&a.id, &code, a.comment.as_deref())
                .await?;
            let head = match req.status {
                BreakGlassStatus::Approved => format!(
                    "Success! Approved {id}: {who} can now fetch the token with\n  \
                     coffer breakglass token {id}\n\n",
                    id = req.id,
                    who = requester(&req)
                ),
                _ => format!(
                    "Success! Approval recorded for {} ({} of {} needed).\n\n",
                    req.id,
                    req.approvals.len(),
                    req.required_approvals
                ),
            };
            render_request(ctx, session, &req, &head)
        }
        BreakGlassCmd::Deny(a) => {
            if a.comment.trim().is_empty() {
                return Err(CliError::Usage(
                    "a denial needs a --comment saying why".into(),
                ));
            }
            let code = approver_code(ctx, session, a.code.as_deref(), &a.id)?;
            let req = client
                .breakglass_deny(&a.id, &code, a.comment.trim())
                .await?;
            let head = format!("Success! Denied {}.\n\n", req.id);
            render_request(ctx, session, &req, &head)
        }
        BreakGlassCmd::Cancel(a) => {
            let req = client.breakglass_cancel(&a.id).await?;
            let head = format!("Success! Cancelled {}.\n\n", req.id);
            render_request(ctx, session, &req, &head)
        }
        BreakGlassCmd::Token(a) => token(ctx, &client, session, a).await,
        BreakGlassCmd::Revoke(a) => revoke(ctx, &client, session, a).await,
        BreakGlassCmd::Report(a) => {
            let report = client.breakglass_report(&a.id).await?;
            match ctx.format {
                Format::Table => session.out.push_str(&report_markdown(&report)),
                Format::Json | Format::Yaml => session
                    .out
                    .push_str(&output::structured(ctx.format, report.raw())),
            }
            Ok(0)
        }
    }
}

/// The client for `sys/breakglass/*`: with the person's own token when the token file
/// holds an emergency token (the server treats a break-glass token as nobody's: it may
/// neither ask, approve, see nor end grants), else the usual one.
fn own_client(ctx: &Ctx<'_>, session: &mut Session) -> Client {
    if let TokenSource::File(path) = &ctx.settings.token_source {
        if let Ok(Some(saved)) = read_side_file(path) {
            if holds_emergency_token(path, &saved).unwrap_or(false) {
                if let Some(previous) = saved.previous_token {
                    session
                        .secrets
                        .push(Zeroizing::new(previous.expose().to_string()));
                    return ctx.client.clone().with_token(previous);
                }
            }
        }
    }
    ctx.client.clone()
}

/// `--ttl`: `30m`, `1h30m`, `90s`, `2h` or whole seconds; more than zero and at most
/// [`MAX_TTL_SECS`].
pub fn parse_ttl(text: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "invalid --ttl {text:?}: use e.g. 30m, 1h30m, 90s or seconds"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let secs = if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>().map_err(|_| bad())?
    } else {
        let mut total: u64 = 0;
        let mut number = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            number.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if !number.is_empty() {
            // `1h30`: a number without its unit.
            return Err(bad());
        }
        total
    };
    if secs == 0 {
        return Err(CliError::Usage("--ttl must be more than 0s".into()));
    }
    if secs > MAX_TTL_SECS {
        return Err(CliError::Usage(format!(
            "--ttl {text} is longer than the 4h a break-glass grant may last"
        )));
    }
    Ok(secs)
}

/// The approver's TOTP code: `-code`, else `$COFFER_TOTP_CODE`, else a prompt without echo.
fn approver_code(
    ctx: &Ctx<'_>,
    session: &mut Session,
    flag: Option<&str>,
    id: &str,
) -> Result<Zeroizing<String>, CliError> {
    let env_code = (ctx.env)(CODE_ENV);
    if let Some(code) = credentials::given_code(session, flag.or(env_code.as_deref()))? {
        return Ok(code);
    }
    credentials::prompt_code(
        session,
        &format!("Your TOTP code, to decide on {id} (will be hidden): "),
        true,
        "no terminal to ask for your TOTP code; use -code or COFFER_TOTP_CODE",
    )
}

fn requester(req: &BreakGlassRequest) -> &str {
    if req.requester.is_empty() {
        "the requester"
    } else {
        &req.requester
    }
}

/// `-format=json|yaml`: the request object; table: `head`, then the rows.
fn render_request(
    ctx: &Ctx<'_>,
    session: &mut Session,
    req: &BreakGlassRequest,
    head: &str,
) -> Result<u8, CliError> {
    session.warnings.extend(req.warnings.iter().cloned());
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, req.raw())),
        Format::Table => {
            session.out.push_str(head);
            session.out.push_str(&output::table(&request_rows(req)));
        }
    }
    Ok(0)
}

fn or_na(v: &Option<String>) -> String {
    v.clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "n/a".into())
}

fn approvers_text(req: &BreakGlassRequest) -> String {
    if req.approvals.is_empty() {
        return "none".into();
    }
    req.approvals
        .iter()
        .map(|a| {
            let mut s = format!("{} at {}", a.approver, a.time);
            if !a.comment.is_empty() {
                s.push_str(&format!(" ({})", one_line(&a.comment)));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whitespace (newlines included) collapsed to single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows `show` prints, in reading order.
pub fn request_rows(req: &BreakGlassRequest) -> Rows {
    let mut rows: Rows = vec![
        ("id".into(), req.id.clone()),
        ("status".into(), req.status.to_string()),
        ("requester".into(), req.requester.clone()),
        ("reason".into(), one_line(&req.reason)),
        ("incident".into(), req.incident.clone()),
        (
            "policies".into(),
            fmt_value(&Value::from(req.policies.clone())),
        ),
        ("ttl".into(), fmt_duration(req.ttl)),
        ("requested_at".into(), req.requested_at.clone()),
        (
            "approval_expires_at".into(),
            req.approval_expires_at.clone(),
        ),
        (
            "approvals".into(),
            format!("{} of {}", req.approvals.len(), req.required_approvals),
        ),
        ("approvers".into(), approvers_text(req)),
    ];
    if let Some(d) = &req.denial {
        rows.push((
            "denied_by".into(),
            format!("{} at {} ({})", d.by, d.time, one_line(&d.comment)),
        ));
    }
    rows.extend([
        ("activated_at".into(), or_na(&req.activated_at)),
        ("expires_at".into(), or_na(&req.expires_at)),
        ("first_used_at".into(), or_na(&req.first_used_at)),
        ("ended_at".into(), or_na(&req.ended_at)),
        ("ended_by".into(), or_na(&req.ended_by)),
        ("notifications".into(), notifications_text(req)),
    ]);
    rows
}

fn notifications_text(req: &BreakGlassRequest) -> String {
    let n = &req.notifications;
    let mut s = format!("{} delivered, {} failed", n.delivered, n.failed);
    if n.pending > 0 {
        s.push_str(&format!(", {} pending", n.pending));
    }
    if n.failed_attempts > 0 {
        s.push_str(&format!(", {} failed attempts", n.failed_attempts));
    }
    if !n.last_error.is_empty() {
        s.push_str(&format!(" (last error: {})", one_line(&n.last_error)));
    }
    s
}

/// The `list` table: one line per grant.
pub fn list_text(list: &[BreakGlassRequest]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.to_string(),
                r.requester.clone(),
                fmt_duration(r.ttl),
                r.incident.clone(),
                r.requested_at.clone(),
                truncate(&one_line(&r.reason), 50),
            ]
        })
        .collect();
    output::columns(
        &[
            "ID",
            "Status",
            "Requester",
            "TTL",
            "Incident",
            "Requested",
            "Reason",
        ],
        &rows,
    )
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A table cell: one line, pipes escaped, `—` for nothing.
fn cell(s: &str) -> String {
    let s = one_line(s);
    if s.is_empty() {
        "—".into()
    } else {
        s.replace('|', "\\|")
    }
}

/// The report as Markdown: a header with who, why and when, then the timeline table.
pub fn report_markdown(report: &BreakGlassReport) -> String {
    let r = &report.request;
    let id = if report.id.is_empty() {
        &r.id
    } else {
        &report.id
    };
    let opt = |v: &Option<String>| match v.as_deref() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "—".to_string(),
    };
    let nonempty = |s: &str| {
        if s.trim().is_empty() {
            "—".to_string()
        } else {
            one_line(s)
        }
    };
    let mut out = format!("# Break-glass report {id}\n\n");
    let mut line = |k: &str, v: String| out.push_str(&format!("- **{k}:** {v}\n"));
    line("Status", r.status.to_string());
    line("Requester", nonempty(&r.requester));
    line("Reason", nonempty(&r.reason));
    line("Incident", nonempty(&r.incident));
    line("Policies", nonempty(&r.policies.join(", ")));
    line("TTL", fmt_duration(r.ttl));
    line("Requested", nonempty(&r.requested_at));
    line(
        "Approvers",
        if r.approvals.is_empty() {
            "—".into()
        } else {
            approvers_text(r)
        },
    );
    if let Some(d) = &r.denial {
        line(
            "Denied",
            format!("by {} at {} ({})", d.by, d.time, one_line(&d.comment)),
        );
    }
    line("Activated", opt(&r.activated_at));
    line("Token expiry", opt(&r.expires_at));
    line("First use", opt(&r.first_used_at));
    let ended = match (&r.ended_at, &r.ended_by) {
        (Some(at), Some(by)) if !at.is_empty() && !by.is_empty() => format!("{at} by {by}"),
        (at, _) => opt(at),
    };
    line("Ended", ended);
    line("Notifications", notifications_text(r));
    out.push_str("\n## Timeline\n\n");
    if report.timeline.is_empty() {
        out.push_str("No events recorded.\n");
        return out;
    }
    out.push_str("| Time | Event | Actor | Operation | Path | Error |\n");
    out.push_str("|------|-------|-------|-----------|------|-------|\n");
    for e in &report.timeline {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            cell(&e.time),
            cell(&e.event),
            cell(&e.actor),
            cell(&e.operation),
            cell(&e.path),
            cell(&e.error)
        ));
    }
    out
}

// The CLI has no injected clock: when the emergency token expires is a wall-clock fact
// on this machine (the server enforces the real expiry; this only decides when to put
// the previous token back).
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `breakglass token <id>`.
async fn token(
    ctx: &Ctx<'_>,
    client: &Client,
    session: &mut Session,
    a: TokenArgs,
) -> Result<u8, CliError> {
    // Checked before the fetch: the token comes only once, so there must be a place
    // to put it.
    let token_file = if a.no_store {
        None
    } else {
        Some(ctx.settings.token_file.clone().ok_or_else(|| {
            CliError::Failed("cannot locate the token file: set HOME or COFFER_TOKEN_FILE".into())
        })?)
    };
    let grant = client.breakglass_fetch_token(&a.id).await?;
    session
        .secrets
        .push(Zeroizing::new(grant.token.expose().to_string()));
    let now = unix_now();
    let expires_unix = now.saturating_add(u64::try_from(grant.lease_duration).unwrap_or(0));
    if let Some(path) = &token_file {
        install_emergency_token(path, &grant.token, &a.id, expires_unix).map_err(|e| {
            CliError::Failed(format!(
                "{e}; the emergency token was fetched but could not be stored and cannot be \
                 fetched again: end it with coffer breakglass revoke {}",
                a.id
            ))
        })?;
        if let TokenSource::Env(name) = &ctx.settings.token_source {
            session.warnings.push(format!(
                "{name} is set and takes precedence over the token file; unset it to use the emergency token"
            ));
        }
    }
    let rows = token_rows(&grant, now);
    if let Some(field) = &a.field {
        let value = if field == "token" {
            grant.token.expose().to_string()
        } else {
            output::pick_field(&rows, field)
                .ok_or_else(|| CliError::Failed(format!("Field {field:?} not present")))?
        };
        push_field(session, &value);
        return Ok(0);
    }
    match ctx.format {
        Format::Json | Format::Yaml => session
            .out
            .push_str(&output::structured(ctx.format, grant.raw())),
        Format::Table => {
            session
                .out
                .push_str(&token_text(token_file.as_deref(), &grant, now));
            session.out.push_str(&output::table(&rows));
        }
    }
    Ok(0)
}

/// When the token expires, for people: the server's time, else now + its TTL.
fn expiry_text(grant: &EmergencyToken, now: u64) -> String {
    let secs = u64::try_from(grant.lease_duration).unwrap_or(0);
    match grant.expires_at.as_deref().filter(|s| !s.is_empty()) {
        Some(at) => at.to_string(),
        None => output::fmt_utc(now.saturating_add(secs)),
    }
}

/// The rows `token` prints; never the token.
fn token_rows(grant: &EmergencyToken, now: u64) -> Rows {
    vec![
        ("breakglass_id".into(), grant.request.id.clone()),
        ("token_accessor".into(), grant.accessor.clone()),
        (
            "token_policies".into(),
            fmt_value(&Value::from(grant.policies.clone())),
        ),
        ("token_duration".into(), fmt_duration(grant.lease_duration)),
        ("expire_time".into(), expiry_text(grant, now)),
        ("token_renewable".into(), "false".into()),
    ]
}

fn token_text(stored_at: Option<&Path>, grant: &EmergencyToken, now: u64) -> String {
    let id = &grant.request.id;
    let mut s = match stored_at {
        Some(path) => format!(
            "Success! The emergency token of {id} is stored in {}\n\
             and future coffer commands will use it; your previous token is kept in\n\
             {} and comes back with coffer breakglass revoke or at expiry.\n",
            path.display(),
            side_file(path).display()
        ),
        None => format!(
            "Success! The emergency token of {id} was fetched but not stored (-no-store):\n\
             it is gone; end the grant with coffer breakglass revoke {id}.\n"
        ),
    };
    s.push_str(&format!(
        "It expires at {} (in {}) and cannot be renewed. End it early with\n  \
         coffer breakglass revoke {id}\n\n",
        expiry_text(grant, now),
        fmt_duration(grant.lease_duration)
    ));
    s
}

/// `breakglass revoke <id>`: end the grant, then put the previous token back.
async fn revoke(
    ctx: &Ctx<'_>,
    client: &Client,
    session: &mut Session,
    a: IdArgs,
) -> Result<u8, CliError> {
    let token_file = ctx.settings.token_file.clone();
    let (req, already) = match client.breakglass_revoke(&a.id).await {
        Ok(req) => (req, false),
        Err(e) if e.status() == Some(400) => {
            // "already over": nothing to end, but the token file may still need its
            // previous token back.
            match client.breakglass_show(&a.id).await {
                Ok(req) if req.status.is_final() => (req, true),
                _ => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let restored = match &token_file {
        Some(path) => restore_previous(path, Some(&a.id))?,
        None => Restore::NoSideFile,
    };
    match ctx.format {
        Format::Json | Format::Yaml => {
            let mut v = req.raw().clone();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("token_file_restored".into(), json!(restored.restored()));
            }
            session.out.push_str(&output::structured(ctx.format, &v));
        }
        Format::Table => {
            let mut s = if already {
                format!("{} was already over ({}).", req.id, req.status)
            } else {
                format!("Success! Revoked {}: its token no longer works.", req.id)
            };
            s.push('\n');
            if let Some(path) = &token_file {
                s.push_str(&restored.describe(path));
            }
            session.out.push_str(&s);
        }
    }
    Ok(0)
}

/// `<tokenfile>.pre-breakglass`.
pub fn side_file(token_file: &Path) -> PathBuf {
    let mut name = token_file.as_os_str().to_owned();
    name.push(SIDE_FILE_SUFFIX);
    PathBuf::from(name)
}

/// What the side file holds.
pub struct Saved {
    /// The token the emergency token replaced (`None`: the file was empty or absent).
    pub previous_token: Option<SecretString>,
    /// The grant whose token is in the token file.
    pub breakglass_id: String,
    /// When that token expires, by this machine's clock.
    pub expires_unix: u64,
    /// SHA-256 (hex) of the emergency token, to know it is still the one in the file.
    fingerprint: SecretString,
}

fn fingerprint(token: &str) -> SecretString {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    SecretString::new(hex)
}

/// The side file; `None` when there is none. A file that cannot be understood is an
/// error (it is left alone).
pub fn read_side_file(token_file: &Path) -> Result<Option<Saved>, CliError> {
    let path = side_file(token_file);
    let text = match fs::read_to_string(&path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let bad = || {
        CliError::Failed(format!(
            "{} is not a break-glass side file; remove it if it is not needed",
            path.display()
        ))
    };
    let mut v: Value = serde_json::from_str(&text).map_err(|_| bad())?;
    let text_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let saved = Saved {
        previous_token: text_of("previous_token")
            .filter(|t| !t.is_empty())
            .map(SecretString::new),
        breakglass_id: text_of("breakglass_id").ok_or_else(bad)?,
        expires_unix: v
            .get("expires_unix")
            .and_then(Value::as_u64)
            .ok_or_else(bad)?,
        fingerprint: SecretString::new(text_of("emergency_token_sha256").ok_or_else(bad)?),
    };
    zeroize_json(&mut v);
    Ok(Some(saved))
}

fn zeroize_json(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(zeroize_json),
        Value::Object(m) => m.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

/// Whether the token file holds the token the side file describes.
fn holds_emergency_token(token_file: &Path, saved: &Saved) -> Result<bool, CliError> {
    Ok(match read_token_file(token_file)? {
        Some(current) => fingerprint(current.expose()) == saved.fingerprint,
        None => false,
    })
}

/// Put `token` into the token file and keep what was there in the side file. When the
/// file already holds an earlier emergency token, the token before that one stays the
/// one to come back to.
pub fn install_emergency_token(
    token_file: &Path,
    token: &SecretString,
    id: &str,
    expires_unix: u64,
) -> Result<(), CliError> {
    let current = read_token_file(token_file)?;
    let earlier = read_side_file(token_file).unwrap_or(None);
    let previous = match earlier {
        Some(saved) if holds_emergency_token(token_file, &saved)? => saved.previous_token,
        _ => current,
    };
    let mut side = json!({
        "breakglass_id": id,
        "expires_unix": expires_unix,
        "emergency_token_sha256": fingerprint(token.expose()).expose(),
        "previous_token": previous.as_ref().map(SecretString::expose),
    });
    let text = Zeroizing::new(side.to_string());
    zeroize_json(&mut side);
    // The side file first: if that fails, the token file still has the previous token.
    write_token_file(&side_file(token_file), &text)?;
    write_token_file(token_file, token.expose())
}

/// What [`restore_previous`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Restore {
    /// The previous token is back in the token file.
    Restored,
    /// There was no previous token: the token file was removed.
    Removed,
    /// The token file holds another token than the emergency one now: left alone (the
    /// side file is removed, its token is not needed any more).
    Replaced,
    /// The side file is for another grant: nothing changed.
    OtherGrant(String),
    /// No side file: nothing to restore.
    NoSideFile,
}

impl Restore {
    /// Whether the token file changed back.
    pub fn restored(&self) -> bool {
        matches!(self, Restore::Restored | Restore::Removed)
    }

    fn describe(&self, token_file: &Path) -> String {
        let f = token_file.display();
        match self {
            Restore::Restored => format!("Your previous token is back in {f}.\n"),
            Restore::Removed => {
                format!("{f} is removed (there was no token before the emergency one).\n")
            }
            Restore::Replaced => {
                format!("{f} holds another token than the emergency one now: left as it is.\n")
            }
            Restore::OtherGrant(other) => format!(
                "{f} holds the emergency token of {other}, not of this grant: left as it is.\n"
            ),
            Restore::NoSideFile => String::new(),
        }
    }
}

/// Put the previous token back if the token file still holds the emergency token of
/// `id` (of any grant when `None`), and remove the side file.
pub fn restore_previous(token_file: &Path, id: Option<&str>) -> Result<Restore, CliError> {
    let Some(saved) = read_side_file(token_file)? else {
        return Ok(Restore::NoSideFile);
    };
    if let Some(id) = id {
        if saved.breakglass_id != id {
            return Ok(Restore::OtherGrant(saved.breakglass_id));
        }
    }
    let outcome = if !holds_emergency_token(token_file, &saved)? {
        Restore::Replaced
    } else {
        match &saved.previous_token {
            Some(previous) => {
                write_token_file(token_file, previous.expose())?;
                Restore::Restored
            }
            None => {
                remove_token_file(token_file)?;
                Restore::Removed
            }
        }
    };
    remove_token_file(&side_file(token_file))?;
    Ok(outcome)
}

/// Before any command: once the emergency token in the token file has expired (by this
/// machine's clock), put the previous token back. Answers a warning for the person;
/// problems are warnings too (they must not stop an unrelated command).
pub fn restore_if_expired(token_file: &Path, now: u64) -> Option<String> {
    let saved = match read_side_file(token_file) {
        Ok(Some(saved)) => saved,
        Ok(None) => return None,
        Err(e) => return Some(e.to_string()),
    };
    if now < saved.expires_unix {
        return None;
    }
    match restore_previous(token_file, Some(&saved.breakglass_id)) {
        Ok(Restore::Restored) => Some(format!(
            "the emergency token of {} has expired; your previous token is back in {}",
            saved.breakglass_id,
            token_file.display()
        )),
        Ok(Restore::Removed) => Some(format!(
            "the emergency token of {} has expired and was removed from {}",
            saved.breakglass_id,
            token_file.display()
        )),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<BreakGlassCmd, clap::Error> {
        let argv = crate::cli::args::normalize_args(args.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Breakglass(cmd) => Ok(cmd),
            other => panic!("not breakglass: {other:?}"),
        }
    }

    #[test]
    fn arguments_parse() {
        let cmd = parse(&[
            "coffer",
            "breakglass",
            "request",
            "--reason",
            "db down, failover stuck",
            "--ttl",
            "30m",
            "--incident",
            "INC-42",
            "--policies",
            "a,b",
        ])
        .unwrap();
        let BreakGlassCmd::Request(r) = cmd else {
            panic!("request");
        };
        assert_eq!(r.reason, "db down, failover stuck");
        assert_eq!(r.ttl.as_deref(), Some("30m"));
        assert_eq!(r.incident.as_deref(), Some("INC-42"));
        assert_eq!(r.policies, ["a", "b"]);
        // Go-style single-dash flags too.
        let cmd = parse(&[
            "coffer",
            "breakglass",
            "request",
            "-reason=ten chars at least",
        ])
        .unwrap();
        assert!(
            matches!(cmd, BreakGlassCmd::Request(r) if r.ttl.is_none() && r.policies.is_empty())
        );
        assert!(
            parse(&["coffer", "breakglass", "request"]).is_err(),
            "reason is required"
        );

        let BreakGlassCmd::List(l) = parse(&["coffer", "breakglass", "list", "--pending"]).unwrap()
        else {
            panic!("list");
        };
        assert!(l.pending);
        let BreakGlassCmd::Approve(a) =
            parse(&["coffer", "breakglass", "approve", "bg-x", "-comment=ok"]).unwrap()
        else {
            panic!("approve");
        };
        assert_eq!(
            (a.id.as_str(), a.comment.as_deref(), a.code),
            ("bg-x", Some("ok"), None)
        );
        assert!(
            parse(&["coffer", "breakglass", "deny", "bg-x"]).is_err(),
            "deny needs --comment"
        );
        let BreakGlassCmd::Deny(d) = parse(&[
            "coffer",
            "breakglass",
            "deny",
            "bg-x",
            "--comment",
            "no",
            "-code=123456",
        ])
        .unwrap() else {
            panic!("deny");
        };
        assert_eq!(d.code.as_deref(), Some("123456"));
        let BreakGlassCmd::Token(t) =
            parse(&["coffer", "breakglass", "token", "bg-x", "-field=token"]).unwrap()
        else {
            panic!("token");
        };
        assert_eq!(t.field.as_deref(), Some("token"));
        for sub in ["show", "cancel", "revoke", "report"] {
            assert!(
                parse(&["coffer", "breakglass", sub, "bg-x"]).is_ok(),
                "{sub}"
            );
            assert!(
                parse(&["coffer", "breakglass", sub]).is_err(),
                "{sub} needs the id"
            );
        }
        // `report --format markdown` is the global flag, read by report_format.
        let cli = Cli::try_parse_from([
            "coffer",
            "breakglass",
            "report",
            "bg-x",
            "--format",
            "markdown",
        ])
        .unwrap();
        assert_eq!(cli.global.format.as_deref(), Some("markdown"));
    }

    #[test]
    fn report_formats() {
        let none = |_: &str| None;
        assert_eq!(
            report_format(Some("markdown"), &none).unwrap(),
            Format::Table
        );
        assert_eq!(report_format(Some("MD"), &none).unwrap(), Format::Table);
        assert_eq!(report_format(Some("json"), &none).unwrap(), Format::Json);
        assert_eq!(report_format(None, &none).unwrap(), Format::Table);
        let json_env = |k: &str| (k == "COFFER_FORMAT").then(|| "json".to_string());
        assert_eq!(report_format(None, &json_env).unwrap(), Format::Json);
        let err = report_format(Some("pdf"), &none).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("markdown or json"), "{err}");
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("30m").unwrap(), 1800);
        assert_eq!(parse_ttl("1h30m").unwrap(), 5400);
        assert_eq!(parse_ttl(" 90s ").unwrap(), 90);
        assert_eq!(parse_ttl("1800").unwrap(), 1800);
        assert_eq!(parse_ttl("4h").unwrap(), 14_400);
        assert_eq!(parse_ttl("1m30s").unwrap(), 90);
        for bad in ["", "30x", "h", "1h30", "-5m", "1.5h", "thirty"] {
            let err = parse_ttl(bad).unwrap_err();
            assert_eq!(err.exit_code(), 1, "{bad}");
        }
        assert!(parse_ttl("0")
            .unwrap_err()
            .to_string()
            .contains("more than 0s"));
        assert!(parse_ttl("4h1s").unwrap_err().to_string().contains("4h"));
        assert!(parse_ttl("99999999999999999999h").is_err());
    }

    fn sample_request() -> Value {
        json!({
            "id": "bg-abcdefghijklmnopqrstuvwxyz",
            "status": "ended",
            "reason": "primary database down,\nfailover stuck",
            "incident": "INC-42",
            "ttl": 1800,
            "policies": ["emergency-admin"],
            "requester": "alice",
            "requester_entity_id": "ent-1",
            "requested_at": "2026-12-01T10:00:00Z",
            "approval_expires_at": "2026-12-01T11:00:00Z",
            "required_approvals": 1,
            "approvals": [{"approver": "bob", "time": "2026-12-01T10:02:00Z", "comment": "go"}],
            "denial": null,
            "activated_at": "2026-12-01T10:03:00Z",
            "expires_at": "2026-12-01T10:33:00Z",
            "first_used_at": "2026-12-01T10:04:00Z",
            "ended_at": "2026-12-01T10:20:00Z",
            "ended_by": "alice",
            "notifications": {"pending": 0, "delivered": 6, "failed": 1, "last_error": "503"}
        })
    }

    #[test]
    fn markdown_report() {
        let report = BreakGlassReport::from_value(json!({
            "id": "bg-abcdefghijklmnopqrstuvwxyz",
            "request": sample_request(),
            "timeline": [
                {"time": "2026-12-01T10:00:00Z", "event": "requested", "actor": "alice",
                 "path": "", "operation": "", "error": ""},
                {"time": "2026-12-01T10:02:00Z", "event": "approved", "actor": "bob",
                 "path": "", "operation": "", "error": ""},
                {"time": "2026-12-01T10:04:00Z", "event": "used", "actor": "alice",
                 "path": "sys/policies/acl/a|b", "operation": "update", "error": ""},
                {"time": "2026-12-01T10:05:00Z", "event": "used", "actor": "alice",
                 "path": "sys/audit/file", "operation": "delete", "error": "permission denied"},
                {"time": "2026-12-01T10:20:00Z", "event": "revoked", "actor": "alice",
                 "path": null, "operation": null, "error": null}
            ]
        }))
        .unwrap();
        let md = report_markdown(&report);
        let expected = "\
# Break-glass report bg-abcdefghijklmnopqrstuvwxyz

- **Status:** ended
- **Requester:** alice
- **Reason:** primary database down, failover stuck
- **Incident:** INC-42
- **Policies:** emergency-admin
- **TTL:** 30m
- **Requested:** 2026-12-01T10:00:00Z
- **Approvers:** bob at 2026-12-01T10:02:00Z (go)
- **Activated:** 2026-12-01T10:03:00Z
- **Token expiry:** 2026-12-01T10:33:00Z
- **First use:** 2026-12-01T10:04:00Z
- **Ended:** 2026-12-01T10:20:00Z by alice
- **Notifications:** 6 delivered, 1 failed (last error: 503)

## Timeline

| Time | Event | Actor | Operation | Path | Error |
|------|-------|-------|-----------|------|-------|
| 2026-12-01T10:00:00Z | requested | alice | — | — | — |
| 2026-12-01T10:02:00Z | approved | bob | — | — | — |
| 2026-12-01T10:04:00Z | used | alice | update | sys/policies/acl/a\\|b | — |
| 2026-12-01T10:05:00Z | used | alice | delete | sys/audit/file | permission denied |
| 2026-12-01T10:20:00Z | revoked | alice | — | — | — |
";
        assert_eq!(md, expected);

        // A pending request: nothing activated or ended yet, no events.
        let mut pending = sample_request();
        for k in [
            "activated_at",
            "expires_at",
            "first_used_at",
            "ended_at",
            "ended_by",
        ] {
            pending[k] = Value::Null;
        }
        pending["approvals"] = json!([]);
        pending["incident"] = json!("");
        let report =
            BreakGlassReport::from_value(json!({"request": pending, "timeline": null})).unwrap();
        let md = report_markdown(&report);
        assert!(
            md.starts_with("# Break-glass report bg-abcdefghijklmnopqrstuvwxyz\n"),
            "{md}"
        );
        assert!(
            md.contains("- **Incident:** —\n") && md.contains("- **Approvers:** —\n"),
            "{md}"
        );
        assert!(md.contains("- **Ended:** —\n"), "{md}");
        assert!(md.ends_with("## Timeline\n\nNo events recorded.\n"), "{md}");
    }

    #[test]
    fn show_rows_and_list_table() {
        let req = BreakGlassRequest::from_value(sample_request()).unwrap();
        let rows = request_rows(&req);
        assert_eq!(
            rows[0],
            ("id".into(), "bg-abcdefghijklmnopqrstuvwxyz".into())
        );
        assert!(rows.contains(&("ttl".into(), "30m".into())));
        assert!(rows.contains(&("approvals".into(), "1 of 1".into())));
        assert!(rows.contains(&(
            "reason".into(),
            "primary database down, failover stuck".into()
        )));
        let text = list_text(&[req]);
        assert!(text.starts_with("ID "), "{text}");
        assert!(text.lines().nth(2).unwrap().contains("ended"), "{text}");
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn token_file_swap_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".vault-token");
        write_token_file(&file, "hvs.MINE").unwrap();
        let side = side_file(&file);
        assert_eq!(side, dir.path().join(".vault-token.pre-breakglass"));

        install_emergency_token(&file, &"hvs.EMERGENCY".into(), "bg-1", 1_000).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.EMERGENCY\n");
        #[cfg(unix)]
        assert_eq!(mode(&side), 0o600);
        let side_text = fs::read_to_string(&side).unwrap();
        assert!(side_text.contains("hvs.MINE") && !side_text.contains("hvs.EMERGENCY"));
        let saved = read_side_file(&file).unwrap().unwrap();
        assert_eq!(saved.breakglass_id, "bg-1");
        assert_eq!(saved.expires_unix, 1_000);

        // Another grant's revoke leaves everything alone.
        assert_eq!(
            restore_previous(&file, Some("bg-2")).unwrap(),
            Restore::OtherGrant("bg-1".into())
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.EMERGENCY\n");
        // Not expired yet: nothing happens.
        assert_eq!(restore_if_expired(&file, 999), None);
        assert!(side.exists());
        // Revoke of this grant: the previous token is back, the side file gone.
        assert_eq!(
            restore_previous(&file, Some("bg-1")).unwrap(),
            Restore::Restored
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.MINE\n");
        assert!(!side.exists());
        assert_eq!(
            restore_previous(&file, Some("bg-1")).unwrap(),
            Restore::NoSideFile
        );

        // Two grants in a row: the token to come back to is still the person's own.
        install_emergency_token(&file, &"hvs.E1".into(), "bg-1", 1_000).unwrap();
        install_emergency_token(&file, &"hvs.E2".into(), "bg-2", 2_000).unwrap();
        let saved = read_side_file(&file).unwrap().unwrap();
        assert_eq!(
            saved.previous_token.as_ref().map(SecretString::expose),
            Some("hvs.MINE")
        );
        // Expiry restores it, with a warning saying so.
        let warning = restore_if_expired(&file, 2_000).unwrap();
        assert!(
            warning.contains("bg-2") && warning.contains("expired"),
            "{warning}"
        );
        assert!(!warning.contains("hvs."), "{warning}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.MINE\n");
        assert!(!side.exists());

        // A token stored since (a new login) is never overwritten.
        install_emergency_token(&file, &"hvs.E3".into(), "bg-3", 1_000).unwrap();
        write_token_file(&file, "hvs.NEWLOGIN").unwrap();
        assert_eq!(
            restore_previous(&file, Some("bg-3")).unwrap(),
            Restore::Replaced
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.NEWLOGIN\n");
        assert!(!side.exists());

        // No token before: restoring removes the token file.
        fs::remove_file(&file).unwrap();
        install_emergency_token(&file, &"hvs.E4".into(), "bg-4", 1_000).unwrap();
        assert_eq!(restore_previous(&file, None).unwrap(), Restore::Removed);
        assert!(!file.exists() && !side.exists());

        // A side file that is not ours is reported, not acted on.
        write_token_file(&file, "hvs.MINE").unwrap();
        fs::write(&side, "garbage").unwrap();
        let warning = restore_if_expired(&file, u64::MAX).unwrap();
        assert!(warning.contains("not a break-glass side file"), "{warning}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "hvs.MINE\n");
    }
}
