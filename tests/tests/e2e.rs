//! All end-to-end tests, in one binary: each starts the real `cofferd`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e/approle.rs"]
mod approle;
#[path = "e2e/audit.rs"]
mod audit;
#[cfg(unix)]
#[path = "e2e/audit_failure.rs"]
mod audit_failure;
#[path = "e2e/bounds.rs"]
mod bounds;
#[path = "e2e/breakglass.rs"]
mod breakglass;
#[path = "e2e/canonical.rs"]
mod canonical;
#[path = "e2e/cli.rs"]
mod cli;
#[path = "e2e/cli_breakglass.rs"]
mod cli_breakglass;
#[cfg(unix)]
#[path = "e2e/cli_login.rs"]
mod cli_login;
#[path = "e2e/cli_ops.rs"]
mod cli_ops;
#[path = "e2e/client_journey.rs"]
mod client_journey;
#[path = "e2e/client_lib.rs"]
mod client_lib;
#[path = "e2e/conventions.rs"]
mod conventions;
#[path = "e2e/cubbyhole.rs"]
mod cubbyhole;
#[cfg(unix)]
#[path = "e2e/database.rs"]
mod database;
#[path = "e2e/deploy.rs"]
mod deploy;
#[path = "e2e/envelope.rs"]
mod envelope;
#[path = "e2e/errors.rs"]
mod errors;
#[cfg(unix)]
#[path = "e2e/github_actions.rs"]
mod github_actions;
#[path = "e2e/identity.rs"]
mod identity;
#[path = "e2e/jwt.rs"]
mod jwt;
#[path = "e2e/kv.rs"]
mod kv;
#[path = "e2e/logs.rs"]
mod logs;
#[path = "e2e/metrics.rs"]
mod metrics;
#[path = "e2e/mtls.rs"]
mod mtls;
#[path = "e2e/pki.rs"]
mod pki;
#[path = "e2e/races.rs"]
mod races;
#[path = "e2e/root_recovery.rs"]
mod root_recovery;
#[cfg(unix)]
#[path = "e2e/run.rs"]
mod run;
#[path = "e2e/seal.rs"]
mod seal;
#[cfg(unix)]
#[path = "e2e/startup.rs"]
mod startup;
#[path = "e2e/tiers.rs"]
mod tiers;
#[path = "e2e/tokens.rs"]
mod tokens;
#[path = "e2e/typed_client.rs"]
mod typed_client;
#[path = "e2e/userpass.rs"]
mod userpass;
