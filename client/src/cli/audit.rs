//! `coffer audit verify FILE...`: checks audit log files offline with
//! [`coffer_client::audit`] and prints the verdict as one line. This module owns the
//! arguments, the wording of that line and the exit codes: 0 the chain holds, 1 it is
//! broken, 2 a file or an argument is unusable. It never contacts the server.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use coffer_client::audit::{
    verify_files, ChainBreak, CheckpointKey, VerifyFailure, VerifyOptions, VerifyReport,
};

use super::{CliError, Session};

/// `coffer audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain (and with -public-key the signed checkpoints) of audit log
    /// files, read in the order given as one chain. Exit 0 intact, 1 broken, 2 unreadable.
    Verify(VerifyArgs),
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

/// Dispatch an audit subcommand.
pub fn run(session: &mut Session, cmd: AuditCmd) -> Result<u8, CliError> {
    match cmd {
        AuditCmd::Verify(a) => verify(session, a),
    }
}

fn verify(session: &mut Session, args: VerifyArgs) -> Result<u8, CliError> {
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
        // Exit 2 like a usage error: the files given cannot be checked at all.
        Err(e @ VerifyFailure::Read { .. }) => Err(CliError::Usage(e.to_string())),
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

/// `FAIL at seq 12: entry 12 was modified (audit.log line 12)`.
pub fn fail_line(b: &ChainBreak) -> String {
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
    use coffer_client::audit::BreakKind;

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
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let args = VerifyArgs {
            files: vec![PathBuf::from("/nonexistent/audit.log")],
            partial: false,
            public_key: None,
        };
        let e = verify(&mut session, args).unwrap_err();
        assert_eq!(e.exit_code(), 2);
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
