//! `coffer audit enable|disable|list` (the `sys/audit` endpoints, as `vault audit` has
//! them) and `coffer audit verify FILE...`, which checks audit log files offline with
//! [`coffer_client::audit`] and prints the verdict as one line: exit 0 the chain holds,
//! 1 it is broken or a file or an argument is unusable. `verify` never contacts the server.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use coffer_client::audit::{
    verify_files, BreakKind, ChainBreak, CheckpointKey, VerifyFailure, VerifyOptions, VerifyReport,
};
use serde_json::{json, Map, Value};

use super::args::parse_pair;
use super::output::{self, fmt_value};
use super::{CliError, Ctx, Session};

/// `coffer audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Enable an audit device: coffer audit enable file file_path=/var/log/coffer/audit.log
    Enable(EnableArgs),
    /// Disable the audit device at PATH.
    Disable(DisableArgs),
    /// List the enabled audit devices.
    List(ListArgs),
    /// Check the hash chain (and with -public-key the signed checkpoints) of audit log
    /// files, read in the order given as one chain. Exit 0 intact, 1 broken or unreadable.
    Verify(VerifyArgs),
}

/// Arguments of `audit enable`.
#[derive(Debug, Args)]
pub struct EnableArgs {
    /// Where to enable it [default: the type, e.g. file/].
    #[arg(long)]
    pub path: Option<String>,
    /// Human-readable description.
    #[arg(long)]
    pub description: Option<String>,
    /// Only this node (accepted for compatibility; Coffer devices are per cluster).
    #[arg(long)]
    pub local: bool,
    /// Device type (file).
    #[arg(value_name = "TYPE")]
    pub device_type: String,
    /// Device options: key=value (file_path=..., mode=0600, log_raw=true, ...).
    #[arg(value_name = "K=V")]
    pub options: Vec<String>,
}

/// Arguments of `audit disable`.
#[derive(Debug, Args)]
pub struct DisableArgs {
    /// The device's path, e.g. file/.
    pub path: String,
}

/// Arguments of `audit list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show options too.
    #[arg(long)]
    pub detailed: bool,
}

/// Arguments of `audit verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "Give rotated files oldest first, e.g. audit.log.2 audit.log.1 audit.log.\n\
The public key is served at GET /v1/sys/audit-checkpoint-key."
)]
pub struct VerifyArgs {
    /// Audit log files, oldest first.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Accept a first entry other than seq 1 (older rotated files were deleted).
    #[arg(long)]
    pub partial: bool,
    /// Ed25519 public key (standard base64, 32 bytes) to check checkpoint signatures with.
    #[arg(long = "public-key", value_name = "BASE64")]
    pub public_key: Option<String>,
}

/// Dispatch an audit subcommand that talks to the server.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: AuditCmd) -> Result<u8, CliError> {
    match cmd {
        AuditCmd::Enable(a) => enable(ctx, session, a).await,
        AuditCmd::Disable(a) => {
            let path = device_path(&a.path)?;
            ctx.client.delete(&format!("sys/audit/{path}")).await?;
            if !ctx.format.is_structured() {
                session.out.push_str(&format!(
                    "Success! Disabled audit device (if it was enabled) at: {path}/\n"
                ));
            }
            Ok(0)
        }
        AuditCmd::List(a) => list(ctx, session, a).await,
        AuditCmd::Verify(a) => verify(session, a),
    }
}

fn device_path(path: &str) -> Result<String, CliError> {
    let path = path.trim().trim_matches('/');
    if path.is_empty() {
        return Err(CliError::Usage(
            "missing audit device path, e.g. file/".into(),
        ));
    }
    Ok(path.to_string())
}

async fn enable(ctx: &Ctx<'_>, session: &mut Session, a: EnableArgs) -> Result<u8, CliError> {
    let path = device_path(a.path.as_deref().unwrap_or(&a.device_type))?;
    let mut options = Map::new();
    for pair in &a.options {
        let (k, v) = parse_pair(pair, "audit device options")?;
        options.insert(k, Value::String(v));
    }
    let mut body = json!({ "type": a.device_type, "options": options, "local": a.local });
    if let Some(d) = &a.description {
        body["description"] = Value::String(d.clone());
    }
    ctx.client
        .write(&format!("sys/audit/{path}"), &body)
        .await?;
    if !ctx.format.is_structured() {
        session.out.push_str(&format!(
            "Success! Enabled the {} audit device at: {path}/\n",
            a.device_type
        ));
    }
    Ok(0)
}

async fn list(ctx: &Ctx<'_>, session: &mut Session, a: ListArgs) -> Result<u8, CliError> {
    let answer = ctx.client.read("sys/audit").await?;
    let devices = answer.as_ref().map(devices_of).unwrap_or_default();
    if ctx.format.is_structured() {
        session
            .out
            .push_str(&output::structured(ctx.format, &Value::Object(devices)));
        return Ok(0);
    }
    if devices.is_empty() {
        session.out.push_str("No audit devices are enabled.\n");
        return Ok(2);
    }
    session.out.push_str(&list_text(&devices, a.detailed));
    Ok(0)
}

/// The devices of a `sys/audit` answer: its `data`, or (older servers) the top level
/// without the envelope's own keys.
fn devices_of(secret: &coffer_client::Secret) -> Map<String, Value> {
    let source = match &secret.data {
        Some(d) if !d.is_empty() => d.clone(),
        _ => secret.raw().as_object().cloned().unwrap_or_default(),
    };
    source
        .into_iter()
        .filter(|(_, v)| v.get("type").is_some())
        .collect()
}

/// `Path  Type  Description` (plus `Options` with -detailed), sorted by path.
pub fn list_text(devices: &Map<String, Value>, detailed: bool) -> String {
    let mut paths: Vec<&String> = devices.keys().collect();
    paths.sort();
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Object(m)) if !m.is_empty() => fmt_value(&Value::Object(m.clone())),
        _ => "n/a".to_string(),
    };
    let rows: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let d = &devices[p.as_str()];
            let mut row = vec![p.to_string(), text(d, "type"), text(d, "description")];
            if detailed {
                row.push(text(d, "options"));
            }
            row
        })
        .collect();
    if detailed {
        output::columns(&["Path", "Type", "Description", "Options"], &rows)
    } else {
        output::columns(&["Path", "Type", "Description"], &rows)
    }
}

/// `coffer audit verify`: offline.
pub fn verify(session: &mut Session, args: VerifyArgs) -> Result<u8, CliError> {
    let public_key = args
        .public_key
        .as_deref()
        .map(CheckpointKey::from_base64)
        .transpose()
        .map_err(|e| CliError::Usage(format!("invalid -public-key: {e}")))?;
    let opts = VerifyOptions {
        partial: args.partial,
        public_key,
    };
    match verify_files(&args.files, &opts) {
        Ok(report) => {
            session.out.push_str(&ok_line(&report));
            Ok(0)
        }
        // A verdict, not an error of the command: stdout, like `status` when sealed.
        Err(VerifyFailure::Broken(b)) => {
            session.out.push_str(&fail_line(&b));
            Ok(1)
        }
        // A local error: the files given cannot be checked at all.
        Err(e @ VerifyFailure::Read { .. }) => Err(CliError::Failed(e.to_string())),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `OK: 57 entries (seq 1..57) in 2 files, 3 checkpoints verified`.
pub fn ok_line(r: &VerifyReport) -> String {
    let mut line = format!("OK: {}", plural(r.entries, "entry", "entries"));
    if let (Some(first), Some(last)) = (r.first_seq, r.last_seq) {
        line.push_str(&format!(" (seq {first}..{last})"));
    }
    let files = u64::try_from(r.files).unwrap_or(u64::MAX);
    line.push_str(&format!(" in {}", plural(files, "file", "files")));
    let checkpoints = plural(r.checkpoints, "checkpoint", "checkpoints");
    match (r.signatures_checked, r.checkpoints) {
        (true, 0) => line.push_str(", no checkpoints found to verify"),
        (true, _) => line.push_str(&format!(", {checkpoints} verified")),
        (false, 0) => line.push_str(", no checkpoints"),
        (false, _) => line.push_str(&format!(
            ", {checkpoints} not signature-checked (no -public-key)"
        )),
    }
    line.push('\n');
    line
}

/// `FAIL at seq 12: entry 12 was modified (audit.log line 12)`. A log whose first
/// entry is not seq 1 is usually a rotated one, so that case suggests `--partial`
/// rather than reporting tampering.
pub fn fail_line(b: &ChainBreak) -> String {
    if let BreakKind::StartsLater { first_seq } = b.kind {
        return format!(
            "NOT VERIFIED: the chain starts at seq {first_seq}, not 1 ({} line {}): \
             entries 1..{} are not in these files. If older rotated files were deleted, \
             run again with --partial to verify from seq {first_seq}; otherwise give them \
             too, oldest first.\n",
            b.file,
            b.line,
            first_seq - 1
        );
    }
    match b.seq {
        Some(n) => format!("FAIL at seq {n}: {b}\n"),
        None => format!("FAIL at the first entry: {b}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{args::normalize_args, Cli, Command};
    use clap::Parser;

    fn report(entries: u64, files: usize, checkpoints: u64, signed: bool) -> VerifyReport {
        VerifyReport {
            entries,
            first_seq: (entries > 0).then_some(1),
            last_seq: (entries > 0).then_some(entries),
            files,
            checkpoints,
            signatures_checked: signed,
        }
    }

    #[test]
    fn ok_lines() {
        assert_eq!(
            ok_line(&report(57, 2, 3, true)),
            "OK: 57 entries (seq 1..57) in 2 files, 3 checkpoints verified\n"
        );
        assert_eq!(
            ok_line(&report(1, 1, 0, true)),
            "OK: 1 entry (seq 1..1) in 1 file, no checkpoints found to verify\n"
        );
        assert_eq!(
            ok_line(&report(9, 1, 1, false)),
            "OK: 9 entries (seq 1..9) in 1 file, 1 checkpoint not signature-checked (no -public-key)\n"
        );
        assert_eq!(
            ok_line(&report(0, 1, 0, false)),
            "OK: 0 entries in 1 file, no checkpoints\n"
        );
    }

    #[test]
    fn fail_lines() {
        let b = ChainBreak {
            seq: Some(12),
            kind: BreakKind::Modified,
            file: "audit.log".into(),
            line: 12,
        };
        assert_eq!(
            fail_line(&b),
            "FAIL at seq 12: entry 12 was modified (audit.log line 12)\n"
        );
        let b = ChainBreak {
            seq: Some(42),
            kind: BreakKind::CheckpointSignatureInvalid,
            file: "audit.log.1".into(),
            line: 3,
        };
        assert_eq!(
            fail_line(&b),
            "FAIL at seq 42: entry 42: checkpoint signature invalid (audit.log.1 line 3)\n"
        );
        let b = ChainBreak {
            seq: None,
            kind: BreakKind::Incomplete,
            file: "a".into(),
            line: 1,
        };
        assert_eq!(
            fail_line(&b),
            "FAIL at the first entry: the first entry is incomplete (file truncated) (a line 1)\n"
        );

        let b = ChainBreak {
            seq: Some(1),
            kind: BreakKind::StartsLater { first_seq: 120 },
            file: "audit.log".into(),
            line: 1,
        };
        let line = fail_line(&b);
        assert_eq!(
            line,
            "NOT VERIFIED: the chain starts at seq 120, not 1 (audit.log line 1): entries \
             1..119 are not in these files. If older rotated files were deleted, run again \
             with --partial to verify from seq 120; otherwise give them too, oldest first.\n"
        );
        assert!(
            !line.contains("FAIL") && !line.contains("missing"),
            "{line}"
        );
    }

    #[test]
    fn device_list_is_a_sorted_table() {
        let devices = json!({
            "syslog/": {"type": "syslog", "description": "", "options": {}},
            "file/": {"type": "file", "description": "main", "options": {"file_path": "/x"}},
        });
        let map = devices.as_object().unwrap();
        assert_eq!(
            list_text(map, false),
            "Path       Type      Description\n----       ----      -----------\n\
             file/      file      main\nsyslog/    syslog    n/a\n"
        );
        assert!(list_text(map, true).contains(r#"{"file_path":"/x"}"#));
        let secret = coffer_client::Secret::from_value(json!({
            "request_id": "r", "data": devices.clone(), "file/": devices["file/"].clone()
        }))
        .unwrap();
        assert_eq!(devices_of(&secret).len(), 2);
        assert!(device_path("/").is_err());
        assert_eq!(device_path("/file/").unwrap(), "file");
    }

    #[test]
    fn bad_key_and_missing_file_are_usage_errors() {
        let mut session = Session::default();
        let args = VerifyArgs {
            files: vec![PathBuf::from("/nonexistent/audit.log")],
            partial: false,
            public_key: Some("AAAA".into()),
        };
        let e = verify(&mut session, args).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let args = VerifyArgs {
            files: vec![PathBuf::from("/nonexistent/audit.log")],
            partial: false,
            public_key: None,
        };
        let e = verify(&mut session, args).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/audit.log: "),
            "{e}"
        );
        assert!(session.out.is_empty());
    }

    #[tokio::test]
    async fn parses_and_runs_without_server_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.log");
        std::fs::write(&file, b"").unwrap();
        let file = file.display().to_string();
        let argv = [
            "coffer",
            "audit",
            "verify",
            "-partial",
            "-public-key=AAAA",
            &file,
        ];
        let cli = Cli::try_parse_from(normalize_args(argv.iter().map(|s| s.to_string()))).unwrap();
        let Command::Audit(AuditCmd::Verify(a)) = &cli.command else {
            panic!("expected audit verify");
        };
        assert!(a.partial);
        assert_eq!(a.public_key.as_deref(), Some("AAAA"));
        assert_eq!(a.files, vec![PathBuf::from(&file)]);

        // A settings problem (bad COFFER_SKIP_VERIFY) does not matter offline.
        let env = |k: &str| (k == "COFFER_SKIP_VERIFY").then(|| "perhaps".to_string());
        let argv = ["coffer", "audit", "verify", &file];
        let cli = Cli::try_parse_from(argv).unwrap();
        let mut session = Session::default();
        let code = crate::cli::run(cli, &env, &mut session).await.unwrap();
        assert_eq!(code, 0);
        assert_eq!(
            session.out.as_str(),
            "OK: 0 entries in 1 file, no checkpoints\n"
        );
        assert!(Cli::try_parse_from(["coffer", "audit", "verify"]).is_err());
    }
}
