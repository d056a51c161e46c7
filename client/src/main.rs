//! The `coffer` binary: turns the process arguments and environment into a call to
//! [`cli::main_entry`] on a single-threaded Tokio runtime and exits with its code.

#![forbid(unsafe_code)]

mod cli;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(a) => argv.push(a),
            Err(_) => {
                let _ = writeln!(std::io::stderr(), "Error: arguments must be valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    ExitCode::from(runtime.block_on(cli::main_entry(argv, &env)))
}
