//! Go-style flags. `bao server -config=x -dev` takes long flags after one dash;
//! operators' scripts and unit files are written that way, so `cofferd` takes
//! them too. Known long names after a single dash are rewritten to clap's
//! `--name` before parsing; short flags (`-c`) and values are left alone.

use std::ffi::OsString;

/// Every long flag of `cofferd` and its subcommands.
const LONG_FLAGS: &[&str] = &[
    "config",
    "dev",
    "dev-listen-address",
    "dev-root-token-id",
    "log-level",
    "log-format",
    "help",
    "version",
];

/// `args` (program name first) with `-name` and `-name=value` for a known long
/// flag written as `--name`/`--name=value`. Nothing after `--` is touched.
pub fn go_style_to_clap(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut verbatim = false;
    for (i, arg) in args.into_iter().enumerate() {
        let rewritten = match arg.to_str() {
            _ if i == 0 || verbatim => None,
            Some("--") => {
                verbatim = true;
                None
            }
            Some(s) if s.starts_with('-') && !s.starts_with("--") => {
                let name = s[1..].split('=').next().unwrap_or_default();
                LONG_FLAGS
                    .contains(&name)
                    .then(|| OsString::from(format!("-{s}")))
            }
            _ => None,
        };
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        go_style_to_clap(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            run(&[
                "cofferd",
                "-config=/etc/c.toml",
                "-dev",
                "-log-level",
                "debug"
            ]),
            [
                "cofferd",
                "--config=/etc/c.toml",
                "--dev",
                "--log-level",
                "debug"
            ]
        );
        assert_eq!(
            run(&["cofferd", "migrate", "-config", "x"]),
            ["cofferd", "migrate", "--config", "x"]
        );
    }

    #[test]
    fn short_flags_values_and_unknown_names_are_left_alone() {
        assert_eq!(
            run(&["-dev", "-c", "x", "--dev", "-devx", "--", "-dev"]),
            ["-dev", "-c", "x", "--dev", "-devx", "--", "-dev"]
        );
    }
}
