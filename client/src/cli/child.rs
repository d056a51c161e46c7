//! The child process of `coffer run`: started with the secrets added to this process's
//! environment and the same stdin/stdout/stderr; SIGTERM, SIGINT and SIGHUP that
//! reach `coffer` are sent on to it; its exit code becomes ours (128+N when signal N
//! ended it, as shells report it). A command that cannot be started exits 127 (not
//! found) or 126 (not executable), as in a shell.

use std::io::ErrorKind;
use std::process::ExitStatus;

use zeroize::Zeroizing;

use super::args::io_reason;
use super::CliError;

/// Run `command` with `env` added; returns its exit code.
pub async fn run(
    command: &[String],
    env: Vec<(String, Zeroizing<String>)>,
) -> Result<u8, CliError> {
    let Some((program, args)) = command.split_first() else {
        return Err(CliError::Usage("missing command".into()));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for (name, value) in &env {
        cmd.env(name, value.as_str());
    }
    drop(env);
    // Listen before the child exists, so no signal falls between start and listening.
    #[cfg(unix)]
    let mut signals = unix::Signals::new()?;
    let mut child = cmd.spawn().map_err(|e| {
        let code = match e.kind() {
            ErrorKind::NotFound => 127,
            ErrorKind::PermissionDenied => 126,
            _ => 126,
        };
        CliError::WithCode(code, format!("cannot start {program}: {}", io_reason(&e)))
    })?;
    // Nothing of ours (not even a copy of the values) stays in the Command.
    drop(cmd);
    #[cfg(unix)]
    let status = {
        let pid = child.id();
        loop {
            tokio::select! {
                status = child.wait() => break status,
                sig = signals.next() => {
                    if let Some(pid) = pid {
                        unix::forward(pid, sig);
                    }
                }
            }
        }
    };
    #[cfg(not(unix))]
    let status = child.wait().await;
    let status =
        status.map_err(|e| CliError::Failed(format!("waiting for {program} failed: {e}")))?;
    Ok(exit_code(status))
}

/// The child's code, or 128+N for signal N (what a shell reports).
fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return u8::try_from(128 + sig).unwrap_or(255);
        }
    }
    1
}

#[cfg(unix)]
mod unix {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

    use crate::cli::CliError;

    /// The three signals `coffer run` passes on.
    pub struct Signals {
        term: Stream,
        int: Stream,
        hup: Stream,
    }

    impl Signals {
        pub fn new() -> Result<Signals, CliError> {
            let listen = |kind: SignalKind| {
                signal(kind)
                    .map_err(|e| CliError::Failed(format!("cannot listen for signals: {e}")))
            };
            Ok(Signals {
                term: listen(SignalKind::terminate())?,
                int: listen(SignalKind::interrupt())?,
                hup: listen(SignalKind::hangup())?,
            })
        }

        /// The next signal that arrived.
        pub async fn next(&mut self) -> Signal {
            tokio::select! {
                _ = self.term.recv() => Signal::SIGTERM,
                _ = self.int.recv() => Signal::SIGINT,
                _ = self.hup.recv() => Signal::SIGHUP,
            }
        }
    }

    /// Send `sig` to the child; a child that is already gone is not an error.
    pub fn forward(pid: u32, sig: Signal) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn codes_pass_through_and_signals_become_128_plus_n() {
        assert_eq!(run(&sh("exit 0"), vec![]).await.unwrap(), 0);
        assert_eq!(run(&sh("exit 42"), vec![]).await.unwrap(), 42);
        assert_eq!(run(&sh("kill -KILL $$"), vec![]).await.unwrap(), 137);
        let env = vec![(
            "COFFER_RUN_T".to_string(),
            Zeroizing::new("v 1".to_string()),
        )];
        assert_eq!(
            run(&sh("test \"$COFFER_RUN_T\" = 'v 1'"), env)
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn a_missing_command_exits_127() {
        let err = run(&["/nonexistent/app".to_string()], vec![])
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 127);
        assert!(err.to_string().contains("/nonexistent/app"), "{err}");
    }
}
