//! Command-line input handling that is not clap's job: Go-style `-flag` rewriting,
//! `key=value` / `key=@file` / `key=-` data arguments, `mount/path` splitting and
//! boolean environment values.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::CliError;

/// Rewrite Go-style single-dash long flags (`-format=json`, `-key-shares=1`) to
/// `--format=json` so clap understands them, like the `vault` CLI accepts both.
///
/// The program name, `-`, `--`, short flags (`-h`), negative numbers and everything after
/// a literal `--` are left alone; text after `=` is never touched.
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if is_go_style_flag(&arg) {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// `-word` or `-word=...` where `word` starts with a letter and is longer than one character.
fn is_go_style_flag(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else {
        return false;
    };
    if rest.starts_with('-') {
        return false;
    }
    let name = rest.split_once('=').map_or(rest, |(name, _)| name);
    name.chars().count() > 1
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Split a KV path into (mount, path). With `-mount`, `path` is inside that mount;
/// without it, the first segment is the mount (`secret/app/db` → `secret`, `app/db`),
/// as `vault kv get secret/foo` does.
pub fn split_mount(path: &str, mount: Option<&str>) -> Result<(String, String), CliError> {
    let path = path.trim().trim_matches('/');
    let (mount, rest) = match mount {
        Some(m) => (m.trim().trim_matches('/'), path),
        None => path.split_once('/').unwrap_or((path, "")),
    };
    if mount.is_empty() {
        return Err(CliError::Usage(
            "missing mount: give a path like secret/foo or use -mount".into(),
        ));
    }
    Ok((mount.to_string(), rest.trim_matches('/').to_string()))
}

/// Same as [`split_mount`] but the secret path must not be empty.
pub fn split_secret_path(path: &str, mount: Option<&str>) -> Result<(String, String), CliError> {
    let explicit = mount.is_some();
    let (mount, rest) = split_mount(path, mount)?;
    if rest.is_empty() {
        return Err(CliError::Usage(if explicit {
            "missing secret path".to_string()
        } else {
            format!(
                "missing secret path: give MOUNT/PATH (e.g. secret/{mount}) or -mount=MOUNT {mount}"
            )
        }));
    }
    Ok((mount, rest))
}

/// `k=v` → (`k`, `v`); the value may itself contain `=`. The argument is not echoed in the
/// error because it may hold a secret.
pub fn parse_pair(arg: &str, what: &str) -> Result<(String, String), CliError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::Usage(format!("{what} must be key=value"))),
    }
}

/// Build the data object for `kv put`/`kv patch` from its arguments:
/// `k=v` (string), `k=@file` (file contents), `k=-` (all of stdin),
/// and a lone `-` or `@file.json` holding a JSON object to merge.
/// Stdin may be used once. Later keys replace earlier ones.
pub fn parse_data_args(
    args: &[String],
    stdin: &mut dyn Read,
) -> Result<Map<String, Value>, CliError> {
    let mut data = Map::new();
    let mut stdin_used = false;
    let mut take_stdin = |data_for: &str| -> Result<String, CliError> {
        if stdin_used {
            return Err(CliError::Usage("stdin (-) can only be used once".into()));
        }
        stdin_used = true;
        let mut buf = String::new();
        stdin
            .read_to_string(&mut buf)
            .map_err(|e| CliError::Failed(format!("cannot read {data_for} from stdin: {e}")))?;
        Ok(buf)
    };
    for (i, arg) in args.iter().enumerate() {
        let position = i + 1;
        if arg == "-" || (arg.starts_with('@') && !arg.contains('=')) {
            let text = if arg == "-" {
                take_stdin("JSON data")?
            } else {
                read_file(&arg[1..])?
            };
            let parsed: Value = serde_json::from_str(&text).map_err(|e| {
                CliError::Usage(format!("argument #{position}: not valid JSON ({e})"))
            })?;
            let Value::Object(obj) = parsed else {
                return Err(CliError::Usage(format!(
                    "argument #{position}: JSON data must be an object"
                )));
            };
            data.extend(obj);
            continue;
        }
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k, v),
            _ => {
                return Err(CliError::Usage(format!(
                    "argument #{position} must be key=value, key=@file, key=- or -"
                )))
            }
        };
        let value = if value == "-" {
            take_stdin(&format!("value of {key:?}"))?
        } else if let Some(file) = value.strip_prefix('@') {
            read_file(file)?
        } else {
            value.to_string()
        };
        data.insert(key.to_string(), Value::String(value));
    }
    Ok(data)
}

fn read_file(path: &str) -> Result<String, CliError> {
    if path.is_empty() {
        return Err(CliError::Usage("missing file name after @".into()));
    }
    std::fs::read_to_string(Path::new(path))
        .map_err(|e| CliError::Failed(format!("{}: {path}", io_reason(&e))))
}

/// An I/O error's text without Rust's ` (os error N)` suffix: `No such file or directory`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Boolean environment values such as `COFFER_SKIP_VERIFY` (`1/true/yes/on`, `0/false/no/off`).
pub fn parse_env_bool(name: &str, value: &str) -> Result<bool, CliError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" | "on" => Ok(true),
        "" | "0" | "f" | "false" | "n" | "no" | "off" => Ok(false),
        _ => Err(CliError::Usage(format!("{name} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn go_style_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "coffer",
                "kv",
                "get",
                "-format=json",
                "-version=2",
                "secret/x"
            ]),
            [
                "coffer",
                "kv",
                "get",
                "--format=json",
                "--version=2",
                "secret/x"
            ]
        );
        assert_eq!(
            norm(&[
                "coffer",
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold",
                "1"
            ]),
            [
                "coffer",
                "operator",
                "init",
                "--key-shares=1",
                "--key-threshold",
                "1"
            ]
        );
    }

    #[test]
    fn dash_double_dash_short_and_numbers_untouched() {
        assert_eq!(
            norm(&["coffer", "-h", "-", "--format", "json", "-5", "-x"]),
            ["coffer", "-h", "-", "--format", "json", "-5", "-x"]
        );
    }

    #[test]
    fn everything_after_double_dash_untouched() {
        assert_eq!(
            norm(&["coffer", "kv", "put", "--", "-weird=key", "-mount=x"]),
            ["coffer", "kv", "put", "--", "-weird=key", "-mount=x"]
        );
    }

    #[test]
    fn value_after_equals_untouched() {
        assert_eq!(
            norm(&["coffer", "-custom-metadata=-a=-b -c", "-field=--x"]),
            ["coffer", "--custom-metadata=-a=-b -c", "--field=--x"]
        );
        // The program name is never rewritten.
        assert_eq!(norm(&["-coffer"]), ["-coffer"]);
    }

    #[test]
    fn mount_splitting() {
        assert_eq!(
            split_mount("secret/app/db", None).unwrap(),
            ("secret".to_string(), "app/db".to_string())
        );
        assert_eq!(
            split_mount("/secret/", None).unwrap(),
            ("secret".to_string(), String::new())
        );
        assert_eq!(
            split_mount("app/db", Some("kv/")).unwrap(),
            ("kv".to_string(), "app/db".to_string())
        );
        assert!(split_mount("", None).is_err());
        assert!(split_secret_path("secret", None).is_err());
        assert_eq!(split_secret_path("secret/a", None).unwrap().1, "a");
    }

    #[test]
    fn pairs_and_files_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cert.pem");
        std::fs::File::create(&file)
            .unwrap()
            .write_all(b"line1\nline2\n")
            .unwrap();
        let args = vec![
            "user=admin".to_string(),
            "url=a=b".to_string(),
            format!("cert=@{}", file.display()),
            "pw=-".to_string(),
        ];
        let mut stdin: &[u8] = b"s3cret\n";
        let data = parse_data_args(&args, &mut stdin).unwrap();
        assert_eq!(data["user"], "admin");
        assert_eq!(data["url"], "a=b");
        assert_eq!(data["cert"], "line1\nline2\n");
        assert_eq!(data["pw"], "s3cret\n");
        let keys: Vec<&String> = data.keys().collect();
        assert_eq!(keys, ["user", "url", "cert", "pw"]);
    }

    #[test]
    fn json_object_from_stdin_or_file() {
        let mut stdin: &[u8] = br#"{"a": 1, "b": {"c": true}}"#;
        let data = parse_data_args(&["-".to_string(), "a=2".to_string()], &mut stdin).unwrap();
        assert_eq!(data["a"], "2");
        assert_eq!(data["b"]["c"], true);
        let mut stdin: &[u8] = b"[1]";
        assert!(parse_data_args(&["-".to_string()], &mut stdin).is_err());
    }

    #[test]
    fn bad_data_args() {
        let mut stdin: &[u8] = b"x";
        let err = parse_data_args(&["hunter2".to_string()], &mut stdin).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(parse_data_args(&["=v".to_string()], &mut stdin).is_err());
        assert!(parse_data_args(&["a=-".to_string(), "b=-".to_string()], &mut stdin).is_err());
        assert!(parse_data_args(&["a=@/nonexistent/file".to_string()], &mut stdin).is_err());
    }

    #[test]
    fn pair_parsing() {
        assert_eq!(
            parse_pair("env=prod=1", "metadata").unwrap(),
            ("env".to_string(), "prod=1".to_string())
        );
        assert!(parse_pair("novalue", "metadata").is_err());
    }

    #[test]
    fn env_bools() {
        assert!(parse_env_bool("X", "TRUE").unwrap());
        assert!(!parse_env_bool("X", "0").unwrap());
        assert!(parse_env_bool("X", "maybe").is_err());
    }
}
