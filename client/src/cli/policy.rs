//! `coffer policy write|read|list|delete|fmt`: ACL policies at `sys/policies/acl`, and
//! `fmt`, which checks a policy file offline (HCL with only `path "…" { … }` blocks) and
//! rewrites it in the canonical layout (two-space indents, `key = value`, single blank
//! lines), keeping its comments.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::args::io_reason;
use super::output;
use super::{success, CliError, Ctx, Session};

/// `coffer policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Upload a policy from FILE (or - for stdin).
    Write(WriteArgs),
    /// Show a policy.
    Read(NameArg),
    /// List the policy names.
    List,
    /// Delete a policy.
    Delete(NameArg),
    /// Check a policy file and rewrite it in the canonical layout.
    Fmt(FmtArgs),
}

/// Arguments of `policy write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The policy name.
    pub name: String,
    /// The policy file (HCL or JSON), or - to read stdin.
    pub file: String,
}

/// A policy name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// The policy name.
    pub name: String,
}

/// Arguments of `policy fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The policy file to rewrite in place.
    pub file: PathBuf,
}

/// Dispatch a policy subcommand that talks to the server.
pub async fn run(ctx: &Ctx<'_>, session: &mut Session, cmd: PolicyCmd) -> Result<u8, CliError> {
    match cmd {
        PolicyCmd::Write(a) => {
            let name = policy_name(&a.name)?;
            let text = if a.file == "-" {
                let mut buf = String::new();
                std::io::stdin().read_to_string(&mut buf).map_err(|e| {
                    CliError::Failed(format!("cannot read the policy from stdin: {e}"))
                })?;
                buf
            } else {
                std::fs::read_to_string(&a.file)
                    .map_err(|e| CliError::Failed(format!("{}: {}", io_reason(&e), a.file)))?
            };
            ctx.client
                .write(
                    &format!("sys/policies/acl/{name}"),
                    &json!({ "policy": text }),
                )
                .await?;
            success(ctx, session, &format!("Success! Uploaded policy: {name}"))
        }
        PolicyCmd::Read(a) => {
            let name = policy_name(&a.name)?;
            let answer = ctx.client.read(&format!("sys/policies/acl/{name}")).await?;
            let Some(answer) = answer else {
                return Err(CliError::NotFound(format!("No policy named: {name}")));
            };
            let rules = answer
                .data_field("policy")
                .or_else(|| answer.data_field("rules"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if ctx.format.is_structured() {
                session.out.push_str(&output::structured(
                    ctx.format,
                    &json!({ "name": name, "policy": rules }),
                ));
            } else {
                session.out.push_str(&rules);
                if !rules.ends_with('\n') {
                    session.out.push('\n');
                }
            }
            Ok(0)
        }
        PolicyCmd::List => {
            let answer = ctx.client.list("sys/policies/acl").await?;
            let keys: Vec<String> = answer
                .as_ref()
                .and_then(|s| s.data_field("keys"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if ctx.format.is_structured() {
                session
                    .out
                    .push_str(&output::structured(ctx.format, &Value::from(keys)));
            } else {
                for k in keys {
                    session.out.push_str(&k);
                    session.out.push('\n');
                }
            }
            Ok(0)
        }
        PolicyCmd::Delete(a) => {
            let name = policy_name(&a.name)?;
            ctx.client
                .delete(&format!("sys/policies/acl/{name}"))
                .await?;
            success(ctx, session, &format!("Success! Deleted policy: {name}"))
        }
        PolicyCmd::Fmt(a) => fmt(session, a),
    }
}

fn policy_name(name: &str) -> Result<String, CliError> {
    let n = name.trim().to_ascii_lowercase();
    if n.is_empty() || n.contains('/') {
        return Err(CliError::Usage(format!(
            "invalid policy name {name:?}: give a name without slashes"
        )));
    }
    Ok(n)
}

/// `coffer policy fmt FILE`: offline.
pub fn fmt(session: &mut Session, a: FmtArgs) -> Result<u8, CliError> {
    let shown = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| CliError::Failed(format!("{}: {shown}", io_reason(&e))))?;
    let formatted = format_policy(&text)
        .map_err(|e| CliError::Failed(format!("{shown} is not a valid policy: {e}")))?;
    std::fs::write(&a.file, formatted)
        .map_err(|e| CliError::Failed(format!("cannot write {shown}: {}", io_reason(&e))))?;
    session
        .out
        .push_str(&format!("Success! Formatted policy: {shown}\n"));
    Ok(0)
}

/// Check that `text` is an HCL policy (only `path "<pattern>" { … }` blocks) and lay it
/// out canonically. Comments and the order of everything are kept.
pub fn format_policy(text: &str) -> Result<String, String> {
    let body = hcl::parse(text).map_err(|e| one_line(&e.to_string()))?;
    if let Some(attr) = body.attributes().next() {
        return Err(format!(
            "unexpected top-level attribute \"{}\" (a policy holds only path blocks)",
            attr.key()
        ));
    }
    for block in body.blocks() {
        if block.identifier() != "path" {
            return Err(format!(
                "unexpected block \"{}\" (a policy holds only path blocks)",
                block.identifier()
            ));
        }
        if block.labels().len() != 1 {
            return Err("a path block takes exactly one label: path \"secret/*\" { ... }".into());
        }
    }
    let mut out = String::new();
    let mut depth: usize = 0;
    let mut blank = false;
    let mut in_comment = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        let (opens, closes_first, closes) = if in_comment {
            (0, 0, 0)
        } else {
            brace_counts(line)
        };
        if line.starts_with("/*") && !line.contains("*/") {
            in_comment = true;
        } else if in_comment && line.contains("*/") {
            in_comment = false;
        }
        let indent = depth.saturating_sub(closes_first);
        out.push_str(&"  ".repeat(indent));
        out.push_str(&space_equals(&collapse_spaces(line)));
        out.push('\n');
        depth = (depth + opens).saturating_sub(closes);
    }
    Ok(out)
}

/// `{`/`[` opened and `}`/`]` closed on a line outside strings and comments, and how many
/// closers come before anything else (they dedent the line itself).
fn brace_counts(line: &str) -> (usize, usize, usize) {
    let (mut opens, mut closes, mut leading) = (0, 0, 0);
    let mut in_string = false;
    let mut escaped = false;
    let mut seen_other = false;
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                seen_other = true;
            }
            '#' => break,
            '/' if chars.get(i + 1) == Some(&'/') => break,
            '{' | '[' => {
                opens += 1;
                seen_other = true;
            }
            '}' | ']' => {
                closes += 1;
                if !seen_other {
                    leading += 1;
                }
            }
            c if c.is_whitespace() || c == ',' => {}
            _ => seen_other = true,
        }
    }
    (opens, leading, closes)
}

/// Runs of spaces outside strings and comments become one space.
fn collapse_spaces(line: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            out.extend(&chars[i..]);
            break;
        }
        if c == '"' {
            in_string = true;
        }
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `key   =  value` → `key = value` (only the first `=` outside a string).
fn space_equals(line: &str) -> String {
    if line.starts_with('#') || line.starts_with("//") || line.starts_with('"') {
        return line.to_string();
    }
    match line.find('=') {
        Some(i) if !line[..i].contains('"') && !line[..i].trim().is_empty() => {
            format!("{} = {}", line[..i].trim_end(), line[i + 1..].trim_start())
        }
        _ => line.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_reindents_and_keeps_comments() {
        let messy = "# team policy\n\n\n   path \"secret/data/{{identity.entity.name}}/*\"   {\n\
                     capabilities=[\"read\",\n        \"list\"]\n    # why: reports\n\
                     }\npath \"sys/health\" {\n        capabilities   =   [\"read\"]\n  }\n";
        let want = "# team policy\n\npath \"secret/data/{{identity.entity.name}}/*\" {\n  \
                    capabilities = [\"read\",\n    \"list\"]\n  # why: reports\n}\n\
                    path \"sys/health\" {\n  capabilities = [\"read\"]\n}\n";
        let got = format_policy(messy).unwrap();
        assert_eq!(got, want);
        // Formatting is stable.
        assert_eq!(format_policy(&got).unwrap(), got);
    }

    #[test]
    fn fmt_refuses_what_is_not_a_policy() {
        assert!(format_policy("path \"a\" {").is_err());
        assert!(format_policy("name = \"x\"\n")
            .unwrap_err()
            .contains("top-level attribute"));
        assert!(format_policy("resource \"a\" {}\n")
            .unwrap_err()
            .contains("only path blocks"));
        assert!(format_policy("path {}\n").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(policy_name(" Dev ").unwrap(), "dev");
        assert!(policy_name("a/b").is_err());
        assert!(policy_name("").is_err());
    }
}
