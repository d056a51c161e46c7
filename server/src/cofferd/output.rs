//! Where the process's own lines go. With the text log format a person reads
//! the terminal: banners on stdout, a last "Error: ..." on stderr. With the JSON
//! format every line on stdout and stderr is one JSON object, so a log shipper
//! never meets a line it cannot parse: banners become log events and the last
//! error is a log event too.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Chooses JSON lines (true) or text (false) for everything that follows.
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Whether the process speaks JSON lines.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A line for the person who started the server: stdout in text mode, an info
/// log event in JSON mode.
pub fn banner(line: &str) {
    if is_json() {
        tracing::info!("{}", line.trim_start_matches("==> "));
    } else {
        println!("{line}");
    }
}

/// The reason the process stops, as its last line on stderr.
pub fn fatal(message: &str) {
    if is_json() {
        // Before logging was set up (a config error), set it up for this line.
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_writer(std::io::stderr)
            .try_init();
        tracing::error!("{message}");
    } else {
        eprintln!("Error: {message}");
    }
}

/// Dev mode's unseal key and root token. They go to stdout on purpose (as Vault's
/// dev mode does), never through the log; in JSON mode as one JSON line.
pub fn dev_credentials(audit_dir: &std::path::Path, unseal_key: &str, root_token: &str) {
    if is_json() {
        let line = serde_json::json!({
            "timestamp": coffer_server::clock::Clock::now(&coffer_server::clock::SystemClock).rfc3339(),
            "level": "WARN",
            "message": "Coffer server started in DEV MODE: in-memory storage, plain HTTP, auto-unsealed; never store real secrets in a dev server",
            "audit_file_directory": audit_dir.display().to_string(),
            "unseal_key": unseal_key,
            "root_token": root_token,
        });
        println!("{line}");
        return;
    }
    println!(
        "==> Coffer server started in DEV MODE: in-memory storage, plain HTTP, auto-unsealed."
    );
    println!("    Never store real secrets in a dev server.");
    println!(
        "    Audit files may be written under {}.",
        audit_dir.display()
    );
    println!();
    println!("Unseal Key: {unseal_key}");
    println!("Root Token: {root_token}");
    println!();
}
