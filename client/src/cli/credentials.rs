//! Where passwords and one-time codes come from. A password is never taken from the
//! command line (it would land in shell history and the process list): it comes from
//! `-password-stdin` (one line), `$COFFER_PASSWORD`, or a prompt without echo on the
//! terminal. A code comes from its flag, `$COFFER_TOTP_CODE` (login only), or a prompt.
//! Without a terminal and without another source, the command stops with one usage line
//! (exit 2) instead of hanging or reading a half-typed value. Every value read is added to
//! the session's secrets so it is redacted from error messages.

use std::io::{BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

use super::{CliError, Env, Session};

/// Environment variable holding the password for non-interactive use.
pub const PASSWORD_ENV: &str = "COFFER_PASSWORD";
/// Environment variable holding the TOTP (or recovery) code for `coffer login`.
pub const CODE_ENV: &str = "COFFER_TOTP_CODE";
/// Environment variable holding the new password chosen during enrolment.
pub const NEW_PASSWORD_ENV: &str = "COFFER_NEW_PASSWORD";
/// Prompt for the password.
pub const PASSWORD_PROMPT: &str = "Password (will be hidden): ";
/// Prompts for the new password chosen during enrolment.
pub const NEW_PASSWORD_PROMPT: &str =
    "New password, replacing the one you were given (will be hidden): ";
/// Prompt to repeat it.
pub const REPEAT_PROMPT: &str = "Repeat the new password: ";
/// Prompt for the login's second factor.
pub const CODE_PROMPT: &str = "TOTP code (or recovery code): ";

/// The message for `password=...` arguments and a `-password` flag.
pub const NO_PASSWORD_ARGS: &str = "passwords are not accepted as command-line arguments \
(they end up in shell history and the process list); use the prompt, -password-stdin or COFFER_PASSWORD";

/// True when stdin is a terminal we can prompt on.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// The password: `-password-stdin`, then `$COFFER_PASSWORD`, then a hidden prompt.
pub fn password(
    session: &mut Session,
    env: Env<'_>,
    from_stdin: bool,
) -> Result<Zeroizing<String>, CliError> {
    let value = secret_from(
        from_stdin,
        env(PASSWORD_ENV),
        || hidden_prompt(PASSWORD_PROMPT, "password"),
        "no terminal to ask for the password; use -password-stdin or COFFER_PASSWORD",
    )?;
    keep(session, value, "empty password")
}

/// The new password of an enrolment: the next line of stdin with `-password-stdin`
/// (the line after the current password), then `$COFFER_NEW_PASSWORD`, then a hidden
/// prompt asked twice.
pub fn new_password(
    session: &mut Session,
    env: Env<'_>,
    from_stdin: bool,
) -> Result<Zeroizing<String>, CliError> {
    let value = secret_from(
        from_stdin,
        env(NEW_PASSWORD_ENV),
        || {
            let first = hidden_prompt(NEW_PASSWORD_PROMPT, "new password")?;
            let again = hidden_prompt(REPEAT_PROMPT, "new password")?;
            if first != again {
                return Err(CliError::Usage("the new passwords do not match".into()));
            }
            Ok(first)
        },
        "no terminal to ask for the new password; use -password-stdin (second line) or COFFER_NEW_PASSWORD",
    )?;
    keep(session, value, "empty new password")
}

/// A secret from the next line of stdin, else the environment, else a prompt
/// when there is a terminal; `no_terminal` is the error otherwise.
fn secret_from(
    from_stdin: bool,
    from_env: Option<String>,
    ask: impl FnOnce() -> Result<Zeroizing<String>, CliError>,
    no_terminal: &str,
) -> Result<Zeroizing<String>, CliError> {
    if from_stdin {
        read_password_line(&mut std::io::stdin().lock())
    } else if let Some(p) = from_env {
        Ok(Zeroizing::new(p))
    } else if interactive() {
        ask()
    } else {
        Err(CliError::Usage(no_terminal.into()))
    }
}

/// Refuses an empty secret; otherwise remembers it so the session can keep it
/// out of everything it prints.
fn keep(
    session: &mut Session,
    value: Zeroizing<String>,
    empty: &str,
) -> Result<Zeroizing<String>, CliError> {
    if value.is_empty() {
        return Err(CliError::Usage(empty.into()));
    }
    session.secrets.push(value.clone());
    Ok(value)
}

/// One line of `input` without its line ending. Other whitespace is part of the password.
pub fn read_password_line(input: &mut dyn BufRead) -> Result<Zeroizing<String>, CliError> {
    let mut line = Zeroizing::new(String::new());
    input
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the password from stdin: {e}")))?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    Ok(Zeroizing::new(line[..end].to_string()))
}

/// A code as typed, without spaces (`123 456` → `123456`); recovery codes keep their dashes.
pub fn normalize_code(code: &str) -> Zeroizing<String> {
    Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect())
}

/// A code given by flag or environment, remembered for redaction. `None` when absent.
pub fn given_code(
    session: &mut Session,
    value: Option<&str>,
) -> Result<Option<Zeroizing<String>>, CliError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let code = normalize_code(value);
    if code.is_empty() {
        return Err(CliError::Usage("empty code".into()));
    }
    session.secrets.push(code.clone());
    Ok(Some(code))
}

/// Ask for a code on the terminal (hidden or echoed); `missing` is the usage error when
/// there is no terminal.
pub fn prompt_code(
    session: &mut Session,
    prompt: &str,
    hidden: bool,
    missing: &str,
) -> Result<Zeroizing<String>, CliError> {
    if !interactive() {
        return Err(CliError::Usage(missing.to_string()));
    }
    let typed = if hidden {
        hidden_prompt(prompt, "code")?
    } else {
        visible_prompt(prompt, "code")?
    };
    given_code(session, Some(&typed))?.ok_or_else(|| CliError::Usage("empty code".into()))
}

fn hidden_prompt(prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| CliError::Failed(format!("cannot read the {what} from the terminal: {e}")))
}

fn visible_prompt(prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(prompt.as_bytes());
    let _ = stderr.flush();
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the {what} from the terminal: {e}")))?;
    Ok(Zeroizing::new(line.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_line_keeps_inner_and_leading_spaces() {
        let mut input: &[u8] = b" pass word \r\nsecond line\n";
        assert_eq!(
            read_password_line(&mut input).unwrap().as_str(),
            " pass word "
        );
        let mut input: &[u8] = b"no-newline";
        assert_eq!(
            read_password_line(&mut input).unwrap().as_str(),
            "no-newline"
        );
        let mut input: &[u8] = b"";
        assert_eq!(read_password_line(&mut input).unwrap().as_str(), "");
    }

    #[test]
    fn codes_lose_spaces_and_are_remembered() {
        assert_eq!(normalize_code(" 123 456\n").as_str(), "123456");
        assert_eq!(
            normalize_code("ABCD-EFGH-IJKL-MNOP").as_str(),
            "ABCD-EFGH-IJKL-MNOP"
        );
        let mut session = Session::default();
        let code = given_code(&mut session, Some("654 321")).unwrap().unwrap();
        assert_eq!(code.as_str(), "654321");
        assert_eq!(session.secrets.len(), 1);
        assert!(given_code(&mut session, None).unwrap().is_none());
        assert!(given_code(&mut session, Some("  ")).is_err());
    }

    #[test]
    fn env_password_is_used_as_is() {
        let env = |k: &str| (k == PASSWORD_ENV).then(|| " s3cret ".to_string());
        let mut session = Session::default();
        let pw = password(&mut session, &env, false).unwrap();
        assert_eq!(pw.as_str(), " s3cret ");
        assert_eq!(session.secrets[0].as_str(), " s3cret ");
    }
}
