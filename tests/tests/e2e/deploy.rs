//! The files under `deploy/` are run, not just read: every one parses with the
//! parser its consumer uses (the server's own config loader for TOML, including
//! the TOML inside the Kubernetes ConfigMap), the systemd units pass
//! `systemd-analyze verify`, and the example production config starts a real
//! server on the local PostgreSQL. (`scripts/check-deploy`, run by the test
//! command, validates the Kubernetes manifests against the API schemas.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every YAML document of `path`, through PyYAML (`None` when python3 has no
/// `yaml` module: then the schema check in `scripts/check-deploy` still runs).
fn yaml_documents(path: &Path) -> Option<Vec<Value>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(serde_json::from_slice(&out.stdout).unwrap()),
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'yaml'") => {
            eprintln!(
                "skipping the YAML parse of {}: python3 has no yaml module",
                path.display()
            );
            None
        }
        Ok(out) => panic!(
            "{} does not parse as YAML:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            eprintln!(
                "skipping the YAML parse of {}: no python3 ({e})",
                path.display()
            );
            None
        }
    }
}

/// `[Section]` and `Key=Value` lines of a systemd unit (comments and blanks dropped).
fn unit_directives(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not Key=Value: {line}", path.display(), n + 1));
        assert!(
            !section.is_empty(),
            "{}: a directive before any section",
            path.display()
        );
        out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
    }
    out
}

fn check_unit(path: &Path) {
    let d = unit_directives(path);
    let get = |key: &str| -> Vec<&str> {
        d.iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    let name = path.display();
    assert_eq!(get("User"), ["coffer"], "{name}: runs as the coffer user");
    assert_eq!(get("UMask"), ["0077"], "{name}");
    assert_eq!(get("StateDirectory"), ["coffer"], "{name}");
    assert!(
        get("LimitMEMLOCK").is_empty(),
        "{name}: the server does not mlock, so LimitMEMLOCK would promise nothing"
    );
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1, "{name}");
    assert!(exec[0].starts_with("/usr/local/bin/cofferd "), "{name}");
    if path.file_name().unwrap() == "cofferd.service" {
        assert_eq!(get("LimitNOFILE"), ["65536"], "{name}");
        assert!(!exec[0].contains("migrate"), "{name}");
        // The schema runs as its own unit, with the DDL role's environment.
        let requires: Vec<_> = d
            .iter()
            .filter(|(s, k, _)| s == "Unit" && (k == "Requires" || k == "After"))
            .collect();
        assert_eq!(
            requires
                .iter()
                .filter(|(_, _, v)| v.contains("cofferd-migrate.service"))
                .count(),
            2,
            "{name}: Requires= and After= cofferd-migrate.service"
        );
    } else {
        assert!(exec[0].contains(" migrate "), "{name}");
        assert_eq!(get("Type"), ["oneshot"], "{name}");
    }
}

fn check_dockerfile(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for from in instructions.iter().filter(|l| l.starts_with("FROM ")) {
        let image = from.split_whitespace().nth(1).unwrap();
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "a pinned base image: {from}"
        );
    }
    let user = instructions
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER instruction");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "root" && uid != "0",
        "the container runs as non-root: {user}"
    );
    assert!(
        text.contains("--dev-listen-address 0.0.0.0:8200"),
        "dev mode from outside is documented"
    );
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignore.lines().map(str::trim).collect();
    assert!(
        ignored.contains(&"target") && ignored.contains(&".git"),
        "{ignore}"
    );
}

fn check_kubernetes(path: &Path, docs: &[Value]) {
    let mut workloads = 0;
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind == "ConfigMap" {
            for (key, value) in doc["data"].as_object().unwrap() {
                if key.ends_with(".toml") {
                    coffer_server::config::parse_file(value.as_str().unwrap())
                        .unwrap_or_else(|e| panic!("{} {key}: {e}", path.display()));
                }
            }
        }
        if kind != "StatefulSet" && kind != "Deployment" {
            continue;
        }
        workloads += 1;
        let spec = &doc["spec"];
        assert_eq!(spec["replicas"], 1, "one node per database");
        if kind == "Deployment" {
            assert_eq!(spec["strategy"]["type"], "Recreate", "never two at once");
        }
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "cofferd")
            .expect("a cofferd container");
        let image = container["image"].as_str().unwrap();
        assert!(
            (image.contains(':') && !image.ends_with(":latest")) || image.contains("@sha256:"),
            "a pinned image: {image}"
        );
        let ready = container["readinessProbe"]["httpGet"]["path"]
            .as_str()
            .unwrap();
        for param in ["sealedcode=2", "uninitcode=2"] {
            assert!(
                ready.contains(param),
                "a sealed or new pod stays reachable to be unsealed: {ready}"
            );
        }
        let audit = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/var/log/coffer")
            .expect("a volume for audit files");
        assert_ne!(audit["readOnly"], true, "audit volume is writable");
    }
    assert!(workloads > 0, "{}: no workload", path.display());
}

/// The GitHub Actions example: a workflow whose only credential is the job's
/// OIDC token (no `secrets.` anywhere), on main, in the `prod` environment.
fn check_workflow(path: &Path, docs: &[Value]) {
    let [wf] = docs else {
        panic!("{}: one document expected", path.display());
    };
    assert_eq!(wf["permissions"]["id-token"], "write", "{}", path.display());
    // YAML 1.1 reads the key `on` as true.
    let on = if wf["on"].is_null() {
        &wf["true"]
    } else {
        &wf["on"]
    };
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]), "{wf}");
    let job = &wf["jobs"]["deploy"];
    assert_eq!(job["environment"], "prod", "{wf}");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains("secrets."),
        "{}: no stored secret",
        path.display()
    );
    let runs: Vec<&str> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("deploy/github-actions/coffer-deploy.sh")),
        "{runs:?}"
    );
}

#[test]
fn every_file_under_deploy_parses_with_the_parser_that_reads_it() {
    let files = files_under(&repo().join("deploy"));
    assert!(files.len() >= 5, "{files:?}");
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {
                coffer_server::config::ServerConfig::load(path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            Some("yaml" | "yml")
                if path.parent().is_some_and(|d| d.ends_with("github-actions")) =>
            {
                if let Some(docs) = yaml_documents(path) {
                    check_workflow(path, &docs);
                }
            }
            Some("yaml" | "yml") => {
                if let Some(docs) = yaml_documents(path) {
                    check_kubernetes(path, &docs);
                }
            }
            Some("sh") => {
                let out = Command::new("bash").arg("-n").arg(path).output().unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some("service") => check_unit(path),
            Some("conf") if name.ends_with(".sysusers.conf") => {
                let text = std::fs::read_to_string(path).unwrap();
                let users: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                    .collect();
                assert_eq!(users.len(), 1, "{text}");
                assert!(users[0].starts_with("u coffer "), "{text}");
            }
            _ if name == "Dockerfile" => check_dockerfile(path),
            _ => panic!(
                "{}: a file under deploy/ that no test reads; teach this test its format",
                path.display()
            ),
        }
    }
}

/// `systemd-analyze verify` on the units as shipped, with the one path that
/// cannot exist here (the installed binary) pointed at the built one. Any
/// output counts as failure: verify warns about unknown keys and bad values but
/// still exits 0.
#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipping systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cofferd = coffer_tests::binary("cofferd");
    let mut units = Vec::new();
    for path in files_under(&repo().join("deploy")) {
        if path.extension().and_then(|e| e.to_str()) == Some("service") {
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("/usr/local/bin/cofferd", cofferd.to_str().unwrap());
            let copy = dir.path().join(path.file_name().unwrap());
            std::fs::write(&copy, text).unwrap();
            units.push(copy);
        }
    }
    assert_eq!(units.len(), 2, "{units:?}");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

fn run_to_exit(mut cmd: Command) -> (Option<i32>, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(what: &str, text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {l:?}"))
        })
        .collect()
}

/// The example production config, as shipped but for its listen address, TLS
/// files and audit directory, against a fresh database on the local PostgreSQL:
/// the server refuses an unmigrated schema, `cofferd migrate` applies it, and
/// the server then starts, answers over TLS, initialises and unseals.
#[tokio::test]
async fn the_example_production_config_starts_against_postgresql() {
    let Some(db) = coffer_tests::PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let example = std::fs::read_to_string(repo().join("deploy/coffer.example.toml")).unwrap();
    let mut config = example.clone();
    for (from, to) in [
        (
            "address = \"0.0.0.0:8200\"",
            "address = \"127.0.0.1:0\"".to_owned(),
        ),
        ("\"/etc/coffer/tls/cert.pem\"", format!("{cert_path:?}")),
        ("\"/etc/coffer/tls/key.pem\"", format!("{key_path:?}")),
        ("\"/var/log/coffer\"", format!("{:?}", dir.path())),
    ] {
        assert!(config.contains(from), "the example no longer has {from}");
        config = config.replace(from, &to);
    }
    let path = dir.path().join("coffer.toml");
    std::fs::write(&path, config).unwrap();
    let cofferd = |args: &[&str]| {
        let mut cmd = Command::new(coffer_tests::binary("cofferd"));
        cmd.args(args)
            .arg("--config")
            .arg(&path)
            .env("COFFER_STORAGE_URL", db.url())
            .env_remove("COFFER_LOG_FORMAT")
            .env_remove("COFFER_LOG_LEVEL");
        cmd
    };

    // migrate_on_start = false: a fresh database is refused with the next step.
    let (code, out, err) = run_to_exit(cofferd(&[]));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "", "log_format = \"json\": nothing on stdout");
    let last = json_lines("stderr", &err).pop().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("cofferd migrate"),
        "{err}"
    );

    let (code, out, err) = run_to_exit(cofferd(&["migrate"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "");
    assert!(
        json_lines("stderr", &err)
            .iter()
            .any(|e| e["message"] == "Storage schema is up to date."),
        "{err}"
    );

    let err_path = dir.path().join("server.err");
    let mut server = cofferd(&[])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        if let Some(url) = err
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["message"] == "listening")
            .and_then(|e| e["url"].as_str().map(str::to_owned))
        {
            break url;
        }
        if let Some(status) = server.try_wait().unwrap() {
            panic!("cofferd exited with {status}:\n{err}");
        }
        assert!(Instant::now() < deadline, "cofferd did not start:\n{err}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let init: Value = http
        .put(format!("{url}/v1/sys/init"))
        .json(&serde_json::json!({"secret_shares": 1, "secret_threshold": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = init["keys"][0].as_str().unwrap();
    let unseal: Value = http
        .put(format!("{url}/v1/sys/unseal"))
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unseal["sealed"], false, "{unseal}");
    let health = http
        .get(format!("{url}/v1/sys/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());
    json_lines("stderr", &std::fs::read_to_string(&err_path).unwrap());
}
