//! The `coffer` CLI against the real server: tables by default, JSON for scripts,
//! one-line errors with a non-zero exit, and the token file written 0600.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use coffer_tests::{binary, Backend, TestServer};
use serde_json::Value;

struct Cli<'a> {
    server: &'a TestServer,
    token: Option<String>,
    token_file: std::path::PathBuf,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(binary("coffer"));
        cmd.args(args)
            .env("COFFER_ADDR", &self.server.addr)
            .env("COFFER_TOKEN_FILE", &self.token_file)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("COFFER_TOKEN");
        if let Some(t) = &self.token {
            cmd.env("COFFER_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "coffer {args:?} failed: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-format=json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

#[tokio::test]
async fn cli_initialises_unseals_and_manages_secrets_and_tokens() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cli = Cli {
        server: &s,
        token: None,
        token_file: dir.path().join("token"),
    };

    // Sealed and uninitialised: status exits 2.
    assert_eq!(cli.run(&["status"]).0, 2);
    let init = cli.json(&["operator", "init", "-key-shares=3", "-key-threshold=2"]);
    let keys: Vec<String> = init["keys_base64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let (code, _, err) = cli.run(&["operator", "unseal", "bm90LWEta2V5"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    cli.ok(&["operator", "unseal", &keys[0]]);
    let status = cli.ok(&["operator", "unseal", &keys[2]]);
    assert!(
        status.contains("Sealed") && status.contains("false"),
        "{status}"
    );
    assert_eq!(cli.run(&["status"]).0, 0);

    // Login with the root token writes the token file with mode 0600.
    cli.ok(&["login", &root]);
    let mode = std::fs::metadata(&cli.token_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    s.call(
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(serde_json::json!({"type": "kv-v2"})),
    )
    .await;

    // KV through the CLI: table by default, JSON on request.
    cli.ok(&[
        "kv",
        "put",
        "secret/app/db",
        "user=app",
        "pass=cli-secret-1",
    ]);
    cli.ok(&["kv", "patch", "secret/app/db", "pass=cli-secret-2"]);
    let table = cli.ok(&["kv", "get", "secret/app/db"]);
    assert!(
        table.contains("Data") && table.contains("pass") && table.contains("cli-secret-2"),
        "{table}"
    );
    let got = cli.json(&["kv", "get", "secret/app/db"]);
    assert_eq!(got["data"]["data"]["user"], "app");
    assert_eq!(got["data"]["metadata"]["version"], 2);
    assert_eq!(
        cli.ok(&["kv", "get", "-field=pass", "secret/app/db"])
            .trim(),
        "cli-secret-2"
    );
    let list = cli.ok(&["kv", "list", "secret/app"]);
    assert!(list.contains("db"), "{list}");
    cli.ok(&["kv", "delete", "secret/app/db"]);
    assert_eq!(cli.run(&["kv", "get", "secret/app/db"]).0, 2);
    cli.ok(&["kv", "undelete", "-versions=2", "secret/app/db"]);
    cli.ok(&["kv", "destroy", "-versions=1", "secret/app/db"]);
    let meta = cli.json(&["kv", "metadata", "get", "secret/app/db"]);
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
    cli.ok(&["kv", "metadata", "put", "-max-versions=3", "secret/app/db"]);
    cli.ok(&["kv", "metadata", "delete", "secret/app/db"]);
    let (code, _, err) = cli.run(&["kv", "get", "secret/app/db"]);
    assert_eq!(code, 2, "{err}");

    // Tokens.
    let created = cli.json(&["token", "create", "-policy=app", "-ttl=1h"]);
    let child = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let looked = cli.json(&["token", "lookup", &child]);
    assert_eq!(
        looked["data"]["policies"],
        serde_json::json!(["app", "default"])
    );
    let renewed = cli.json(&["token", "renew", "-increment=30m", &child]);
    assert_eq!(renewed["auth"]["lease_duration"], 1800);
    cli.ok(&["token", "revoke", &child]);
    assert_ne!(cli.run(&["token", "lookup", &child]).0, 0);

    // A token without rights: one clear line, non-zero, and the token never echoed.
    let limited = cli.json(&["token", "create", "-policy=none"])["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.token = Some(limited.clone());
    let (code, out, err) = cli.run(&["kv", "get", "secret/app/other"]);
    assert_eq!(
        code, 2,
        "the server said no: exit 2 as with vault: {out}{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("permission denied") && !err.contains(&limited),
        "{err}"
    );

    // Seal through the CLI.
    cli.token = Some(root.clone());
    cli.ok(&["operator", "seal"]);
    assert_eq!(cli.run(&["status"]).0, 2);
    assert!(
        !s.log().contains("cli-secret-2"),
        "secret in the server log"
    );
}
