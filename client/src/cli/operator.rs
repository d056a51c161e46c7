//! `coffer status` and `coffer operator init|unseal|seal`: talking to the `sys/` endpoints
//! and printing seal state like `vault status` does.

use clap::{Args, Subcommand};
use coffer_client::{InitResponse, SealStatus};

use super::output::{self, Format, Rows};
use super::{secret_arg, CliError, Ctx, Session};

/// `coffer operator ...`
#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Initialise a new server: create the unseal key shares and the initial root token.
    Init(InitArgs),
    /// Supply one unseal key share (prompted without echo when KEY is omitted).
    Unseal(UnsealArgs),
    /// Seal the server (needs a token allowed to do so).
    Seal,
}

/// Flags of `operator init`.
#[derive(Debug, Args)]
pub struct InitArgs {
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
            if ctx.format == Format::Table {
                session.out.push_str("Success! Coffer is sealed.\n");
            }
            Ok(0)
        }
    }
}

/// `coffer status`: exit 0 when unsealed, 2 when sealed (or not initialised).
pub async fn status(ctx: &Ctx<'_>, session: &mut Session) -> Result<u8, CliError> {
    let status = ctx.client.seal_status().await?;
    render_seal_status(ctx.format, &status, session);
    Ok(if status.sealed { 2 } else { 0 })
}

fn render_seal_status(format: Format, status: &SealStatus, session: &mut Session) {
    match format {
        Format::Json => session.out.push_str(&output::json(status.raw())),
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
    if a.key_threshold == 0 || a.key_shares == 0 || a.key_threshold > a.key_shares {
        return Err(CliError::Usage(format!(
            "-key-threshold ({}) must be between 1 and -key-shares ({})",
            a.key_threshold, a.key_shares
        )));
    }
    let init = ctx.client.init(a.key_shares, a.key_threshold).await?;
    match ctx.format {
        Format::Json => session.out.push_str(&output::json(init.raw())),
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
