//! `coffer run --template IN:OUT`: render a file for the child before it starts.
//! `{{ NAME }}` (spaces optional) is replaced by the value of the variable `NAME` the
//! run sets (after `--prefix`); a name the run does not set is an error naming the
//! file, line and name. The output is written beside its final path and renamed into
//! place, readable by its owner only (0600). Nothing else in the text is touched.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::args::io_reason;
use super::run::Var;
use super::CliError;

/// `IN:OUT` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// Parse `IN:OUT` (the last `:` separates them, so `IN` may hold one).
pub fn parse_spec(s: &str) -> Result<TemplateSpec, String> {
    match s.rsplit_once(':') {
        Some((i, o)) if !i.is_empty() && !o.is_empty() => Ok(TemplateSpec {
            input: PathBuf::from(i),
            output: PathBuf::from(o),
        }),
        _ => Err("must be IN:OUT (template file, then the file to write)".into()),
    }
}

/// Replace each `{{ NAME }}` in `text` by its value; `file` is for messages.
pub fn render(
    text: &str,
    vars: &BTreeMap<String, Var>,
    file: &Path,
) -> Result<Zeroizing<String>, CliError> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let line = text[..text.len() - rest.len() + start]
            .matches('\n')
            .count()
            + 1;
        let Some(end) = after.find("}}") else {
            return Err(CliError::Failed(format!(
                "template {} line {line}: {{{{ without }}}}",
                file.display()
            )));
        };
        let name = after[..end].trim();
        let Some(var) = vars.get(name) else {
            let known: Vec<&str> = vars.keys().map(String::as_str).collect();
            return Err(CliError::Failed(format!(
                "template {} line {line}: {{{{ {name} }}}} is not a variable this run sets \
                 (it sets: {})",
                file.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        out.push_str(&var.value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Render `spec.input` into `spec.output` (0600, replaced in one rename).
pub fn write(spec: &TemplateSpec, vars: &BTreeMap<String, Var>) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&spec.input).map_err(|e| {
        CliError::Failed(format!(
            "cannot read the template {}: {}",
            spec.input.display(),
            io_reason(&e)
        ))
    })?;
    let rendered = render(&text, vars, &spec.input)?;
    let fail = |e: std::io::Error| {
        CliError::Failed(format!(
            "cannot write {}: {}",
            spec.output.display(),
            io_reason(&e)
        ))
    };
    let file_name = spec
        .output
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("{} is not a file name", spec.output.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".coffer-{}", std::process::id()));
    let tmp = spec.output.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = std::fs::remove_file(&tmp);
    let mut f = options.open(&tmp).map_err(fail)?;
    let written = f
        .write_all(rendered.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &spec.output));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, Var> {
        let mut v = BTreeMap::new();
        for (k, val) in [("PASSWORD", "hunter2"), ("USER", "app")] {
            v.insert(
                k.to_string(),
                Var {
                    value: Zeroizing::new(val.to_string()),
                    source: format!("secret/a field {k:?}"),
                },
            );
        }
        v
    }

    #[test]
    fn placeholders_are_replaced_and_unknown_names_refused() {
        let out = render("u={{USER}} p={{ PASSWORD }}\n{x}", &vars(), Path::new("t")).unwrap();
        assert_eq!(out.as_str(), "u=app p=hunter2\n{x}");
        let err = render("a\nb {{ NOPE }}", &vars(), Path::new("app.conf.tpl"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.conf.tpl line 2") && err.contains("NOPE"),
            "{err}"
        );
        assert!(
            err.contains("PASSWORD") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(render("{{ USER", &vars(), Path::new("t")).is_err());
    }

    #[test]
    fn specs_and_files() {
        assert_eq!(
            parse_spec("in.tpl:out.conf").unwrap(),
            TemplateSpec {
                input: "in.tpl".into(),
                output: "out.conf".into()
            }
        );
        assert!(parse_spec("nocolon").is_err() && parse_spec(":x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let spec = TemplateSpec {
            input: dir.path().join("in"),
            output: dir.path().join("out"),
        };
        std::fs::write(&spec.input, "pw={{PASSWORD}}").unwrap();
        std::fs::write(&spec.output, "old").unwrap();
        write(&spec, &vars()).unwrap();
        assert_eq!(std::fs::read_to_string(&spec.output).unwrap(), "pw=hunter2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&spec.output)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }
}
