//! `cofferd`: parses the command line, sets up logging, opens storage and serves.
#![forbid(unsafe_code)]

mod cofferd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use coffer_server::clock::SystemClock;
use coffer_server::config::{
    resolve_listen_address, ServerConfig, DEFAULT_STORAGE_CONNECT_TIMEOUT,
};
use coffer_server::core::{Core, CoreConfig};
use coffer_server::crypto::SecretString;
use coffer_server::http::{self, ListenerSpec};
use coffer_server::storage::MigrationMode;

use cofferd::output::{self, banner};
use cofferd::startup::open_storage;

/// The Coffer secrets server. Long flags may also be written Go-style, as for
/// `bao server`: `-config=FILE`, `-dev`.
#[derive(Parser, Debug)]
#[command(name = "cofferd", version, about)]
struct Cli {
    /// Development mode: in-memory storage, auto-initialised and unsealed, plain
    /// HTTP, KV v2 at secret/. Never for real secrets.
    #[arg(long)]
    dev: bool,
    /// Dev mode listen address, host:port (`0.0.0.0:8200` inside a container, to
    /// reach it through a published port).
    #[arg(long, default_value = "127.0.0.1:8200")]
    dev_listen_address: String,
    /// Dev mode root token id (random when absent).
    #[arg(long, env = "COFFER_DEV_ROOT_TOKEN_ID", hide_env_values = true)]
    dev_root_token_id: Option<String>,
    /// Configuration file (TOML).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Log level (trace, debug, info, warn, error); overrides the file.
    #[arg(long)]
    log_level: Option<String>,
    /// Log format: text or json; overrides the file.
    #[arg(long)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply database migrations and exit (run with a role that may change the schema).
    Migrate {
        /// Configuration file (TOML).
        #[arg(long, short = 'c')]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(cofferd::args::go_style_to_clap(std::env::args_os()));
    output::set_json(early_json(&cli));
    install_panic_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::fatal(&format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A write stuck on a dead disk must not keep the process from exiting.
    runtime.shutdown_timeout(Duration::from_secs(3));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            output::fatal(&message);
            ExitCode::FAILURE
        }
    }
}

/// Whether JSON lines were asked for, known before the config file is read in
/// full, so that an error about the file itself comes out as JSON too: the
/// flag, then the environment, then `log_format` in the file if it says so.
fn early_json(cli: &Cli) -> bool {
    let env = std::env::var("COFFER_LOG_FORMAT")
        .ok()
        .filter(|v| !v.is_empty());
    let config = match &cli.command {
        Some(Command::Migrate { config }) => Some(config),
        None => cli.config.as_ref(),
    };
    let format = cli
        .log_format
        .clone()
        .or(env)
        .or_else(|| config.and_then(|c| coffer_server::config::peek_log_format(c)));
    format.as_deref() == Some("json")
}

/// Panics are reported by location only: a payload may hold request data.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        tracing::error!(%location, "panic");
        if !output::is_json() {
            eprintln!("cofferd: internal error (panic at {location})");
        }
    }));
}

/// Only plain levels are accepted. Our own crates log at the level asked for;
/// dependencies never below `info`, because HTTP/2 and TLS internals at debug or
/// trace can print request headers, and a header may be a token.
fn log_filter(level: Option<&str>) -> Result<tracing_subscriber::EnvFilter, String> {
    let level = level.unwrap_or("info").trim().to_ascii_lowercase();
    let dependencies = match level.as_str() {
        "trace" | "debug" | "info" => "info",
        "warn" => "warn",
        "error" => "error",
        other => {
            return Err(format!(
                "invalid log level \"{other}\" (trace, debug, info, warn or error)"
            ))
        }
    };
    tracing_subscriber::EnvFilter::try_new(format!(
        "{dependencies},coffer_server={level},cofferd={level}"
    ))
    .map_err(|e| format!("invalid log level: {e}"))
}

fn init_logging(level: Option<&str>, format: Option<&str>) -> Result<(), String> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(level)?)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journals.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false);
    let result = match format {
        Some("json") => {
            output::set_json(true);
            builder.json().flatten_event(true).try_init()
        }
        None | Some("text") => {
            output::set_json(false);
            builder.try_init()
        }
        Some(other) => return Err(format!("invalid log format \"{other}\" (text or json)")),
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Some(Command::Migrate { config }) = &cli.command {
        let cfg = ServerConfig::load(config).map_err(|e| e.to_string())?;
        init_logging(
            cli.log_level.as_deref().or(cfg.log_level.as_deref()),
            cli.log_format.as_deref().or(cfg.log_format.as_deref()),
        )?;
        open_storage(
            &cfg.storage_url,
            MigrationMode::Apply,
            cfg.storage_connect_timeout,
        )
        .await?;
        banner("Storage schema is up to date.");
        return Ok(());
    }
    if cli.dev {
        return run_dev(cli).await;
    }
    let Some(path) = cli.config.as_ref() else {
        return Err("either --dev or --config FILE is required (see cofferd --help)".into());
    };
    let cfg = ServerConfig::load(path).map_err(|e| e.to_string())?;
    init_logging(
        cli.log_level.as_deref().or(cfg.log_level.as_deref()),
        cli.log_format.as_deref().or(cfg.log_format.as_deref()),
    )?;
    // Bad TLS files stop the server here, before storage is opened.
    http::check_tls(
        &cfg.listeners,
        coffer_server::clock::Clock::now(&SystemClock),
    )?;
    coffer_server::auth::password::configure(cfg.password_hashing);
    for l in cfg.listeners.iter().filter(|l| l.tls.is_none()) {
        tracing::warn!(address = %l.address, "TLS IS DISABLED on this listener: tokens and secrets cross the network in clear text");
    }
    let mode = if cfg.migrate_on_start {
        MigrationMode::Apply
    } else {
        MigrationMode::VerifyOnly
    };
    let (storage, _storage_guard) =
        open_storage(&cfg.storage_url, mode, cfg.storage_connect_timeout).await?;
    let core = Arc::new(Core::new(
        storage,
        Arc::new(SystemClock),
        CoreConfig {
            ttl: cfg.ttl,
            cluster_name: cfg.cluster_name.clone(),
            audit: cfg.audit,
            ..CoreConfig::default()
        },
    ));
    tracing::info!(
        storage = core_storage_kind(&cfg.storage_url),
        "cofferd starting sealed"
    );
    spawn_tidy(core.clone());
    let reloader = http::TlsReloader::default();
    spawn_reopen_on_hangup(core.clone(), reloader.clone());
    serve(core, cfg.listeners, &reloader).await
}

fn core_storage_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgresql"
    }
}

async fn run_dev(cli: Cli) -> Result<(), String> {
    init_logging(cli.log_level.as_deref(), cli.log_format.as_deref())?;
    let address = resolve_listen_address(&cli.dev_listen_address)
        .map_err(|e| format!("--dev-listen-address: {e}"))?;
    if !address.ip().is_loopback() {
        // Vault allows it too: a dev server in a container is only reachable
        // through a published port when it binds the container's interfaces.
        tracing::warn!(%address, "DEV MODE on a non-loopback address: anyone who reaches it gets plain HTTP to an unsealed server whose root token was printed");
    }
    let (storage, _storage_guard) = open_storage(
        "sqlite::memory:",
        MigrationMode::Apply,
        DEFAULT_STORAGE_CONNECT_TIMEOUT,
    )
    .await?;
    // A dev server is a throwaway on a workstation: its audit files may go
    // anywhere under the temp dir (where test and compat scripts keep them).
    let audit_dir = std::env::temp_dir();
    let core = Arc::new(Core::new(
        storage,
        Arc::new(SystemClock),
        CoreConfig {
            audit: coffer_server::audit::AuditSettings {
                file_directory: audit_dir.clone(),
                ..Default::default()
            },
            ..Default::default()
        },
    ));
    let chosen = cli.dev_root_token_id.as_deref().map(SecretString::from);
    let (unseal_key, root_token) = core
        .dev_setup(chosen.as_ref())
        .await
        .map_err(|e| format!("dev setup failed: {e}"))?;
    // Dev mode prints its keys on purpose, to stdout (not the log), as Vault's does.
    output::dev_credentials(&audit_dir, unseal_key.as_str(), root_token.as_str());
    drop(root_token);
    drop(unseal_key);
    spawn_tidy(core.clone());
    let reloader = http::TlsReloader::default();
    spawn_reopen_on_hangup(core.clone(), reloader.clone());
    let listener = ListenerSpec::plain(address);
    serve(core, vec![listener], &reloader).await
}

fn spawn_tidy(core: Arc<Core>) {
    // Lease expiry runs on every node each second: a tick is one indexed claim
    // query, and a lease must not outlive its TTL by more than that.
    let leases = core.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match leases.expire_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(revoked = n, "revoked expired leases"),
                Err(e) => tracing::warn!(error = %e, "lease expiry failed; will retry"),
            }
        }
    });
    // Break-glass deadlines and announcements: also each second, so a grant
    // ends (and is announced) within a second of its time.
    let breakglass = core.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = breakglass.breakglass_tick().await {
                tracing::warn!(error = %e, "break-glass worker failed; will retry");
            }
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            match core.tidy().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(revoked = n, "revoked expired tokens"),
                Err(e) => tracing::warn!(error = %e, "token tidy failed; will retry"),
            }
        }
    });
}

/// SIGHUP: audit devices reopen their files, so logrotate can move them away,
/// and TLS listeners read their certificate, key and client CA files again
/// (open connections keep going; a listener whose files fail keeps the old ones).
fn spawn_reopen_on_hangup(core: Arc<Core>, reloader: http::TlsReloader) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; audit files will not be reopened");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reopening audit files and reloading TLS certificates");
            core.reopen_audit_files();
            for (address, result) in reloader.reload(core.now()) {
                match result {
                    Ok(()) => tracing::info!(%address, "TLS certificates reloaded"),
                    Err(reason) => tracing::error!(
                        %address,
                        %reason,
                        "TLS reload failed; the listener keeps its previous certificates"
                    ),
                }
            }
        }
    });
    #[cfg(not(unix))]
    drop((core, reloader));
}

async fn serve(
    core: Arc<Core>,
    listeners: Vec<ListenerSpec>,
    reloader: &http::TlsReloader,
) -> Result<(), String> {
    let on_bound = |spec: &ListenerSpec, addr: SocketAddr| {
        let scheme = if spec.tls.is_some() { "https" } else { "http" };
        if output::is_json() {
            tracing::info!(address = %addr, tls = spec.tls.is_some(), url = %format!("{scheme}://{addr}"), "listening");
        } else {
            println!("==> cofferd listening on {scheme}://{addr}");
            tracing::info!(address = %addr, tls = spec.tls.is_some(), "listening");
        }
    };
    let result = http::serve(
        core.clone(),
        listeners,
        on_bound,
        shutdown_signal(),
        reloader,
    )
    .await
    .map_err(|e| format!("listener failed: {e}"));
    // After the listeners stop: a last signed checkpoint and the chain heads.
    core.shutdown().await;
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
