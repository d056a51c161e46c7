//! Never lose root: a new root token from key shares with the real
//! `bao operator generate-root` (OTP, `-decode`), a rekey with
//! `bao operator rekey` (old shares refused, new ones unseal), both audited
//! without a secret in clear, and the last share raced: exactly one winner.

use std::sync::Arc;

use coffer_tests::bao::Bao;
use coffer_tests::{Backend, TestServer};
use serde_json::{json, Value};

const CONTENDERS: usize = 24;

/// An initialised (3 shares, threshold 2), unsealed server with a file audit
/// device; returns the shares and the initial root token.
async fn server(backend: Backend) -> Option<(TestServer, Vec<String>, String)> {
    let s = TestServer::start(backend).await?;
    let (keys, root) = s.init(3, 2).await;
    s.unseal(&keys[..2]).await;
    let (status, body) = s
        .call(
            "PUT",
            "sys/audit/file",
            Some(&root),
            Some(json!({"type": "file", "options": {"file_path": s.dir().join("audit.log").display().to_string()}})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    Some((s, keys, root))
}

fn audit_log(s: &TestServer) -> String {
    std::fs::read_to_string(s.dir().join("audit.log")).unwrap()
}

/// The audit entries (request and response) of `path`.
fn entries_for(s: &TestServer, path: &str) -> Vec<Value> {
    audit_log(s)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["request"]["path"] == path)
        .collect()
}

async fn token_policies(s: &TestServer, token: &str) -> (u16, Value) {
    let (status, body) = s
        .call("GET", "auth/token/lookup-self", Some(token), None)
        .await;
    (status, body["data"]["policies"].clone())
}

#[tokio::test]
async fn bao_generate_root_with_a_server_made_otp_decodes_to_a_root_token() {
    let (s, keys, root) = server(Backend::Sqlite).await.unwrap();
    let Some(bao) = Bao::new(&s.addr) else {
        return;
    };
    // No token anywhere: the root token is lost, the shares are what is left.
    let status = bao
        .run(
            None,
            &["operator", "generate-root", "-status", "-format=json"],
        )
        .json();
    assert_eq!(status["started"], false, "{status}");
    assert_eq!(status["required"], 2, "{status}");
    assert_eq!(status["otp_length"], 44, "{status}");

    let started = bao
        .run(
            None,
            &["operator", "generate-root", "-init", "-format=json"],
        )
        .json();
    let otp = started["otp"].as_str().unwrap().to_owned();
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    assert_eq!(otp.len(), 44, "{started}");
    let again = bao.run(None, &["operator", "generate-root", "-init"]);
    assert_eq!(again.code, 2, "one attempt at a time: {again:?}");

    let nonce_flag = format!("-nonce={nonce}");
    let first = bao
        .run_with_stdin(
            None,
            &[
                "operator",
                "generate-root",
                &nonce_flag,
                "-format=json",
                "-",
            ],
            Some(&keys[2]),
        )
        .json();
    assert_eq!(
        (first["progress"].as_u64(), first["complete"].as_bool()),
        (Some(1), Some(false)),
        "{first}"
    );
    let last = bao
        .run_with_stdin(
            None,
            &[
                "operator",
                "generate-root",
                &nonce_flag,
                "-format=json",
                "-",
            ],
            Some(&keys[0]),
        )
        .json();
    assert_eq!(last["complete"], true, "{last}");
    let encoded = last["encoded_token"].as_str().unwrap().to_owned();

    let decoded = bao.run(
        None,
        &[
            "operator",
            "generate-root",
            &format!("-decode={encoded}"),
            &format!("-otp={otp}"),
        ],
    );
    assert_eq!(decoded.code, 0, "{decoded:?}");
    let new_root = decoded.stdout.trim().to_owned();
    assert!(new_root.starts_with("hvs."), "{decoded:?}");
    assert_ne!(new_root, root);
    assert_eq!(token_policies(&s, &new_root).await, (200, json!(["root"])));
    let policies = bao.run(Some(&new_root), &["policy", "list"]);
    assert_eq!(policies.code, 0, "{policies:?}");

    // Audited like a login: a request and a response entry for each step,
    // and no share, OTP, nonce or token in clear.
    let updates = entries_for(&s, "sys/generate-root-token/update");
    assert_eq!(updates.len(), 4, "{updates:?}");
    let log = audit_log(&s);
    for secret in [&keys[0], &keys[2], &otp, &encoded, &new_root, &nonce] {
        assert!(!log.contains(secret.as_str()), "in the audit log: {secret}");
    }
    assert!(log.contains("hmac-sha256:"));
}

#[tokio::test]
async fn bao_generate_root_with_a_chosen_otp_and_cancel() {
    let (s, keys, _) = server(Backend::Sqlite).await.unwrap();
    let Some(bao) = Bao::new(&s.addr) else {
        return;
    };
    let generated = bao.run(None, &["operator", "generate-root", "-generate-otp"]);
    assert_eq!(generated.code, 0, "{generated:?}");
    let otp = generated.stdout.trim().to_owned();
    assert_eq!(otp.len(), 44, "{generated:?}");
    let otp_flag = format!("-otp={otp}");

    // Cancel drops an attempt and its progress.
    let started = bao
        .run(
            None,
            &[
                "operator",
                "generate-root",
                "-init",
                &otp_flag,
                "-format=json",
            ],
        )
        .json();
    assert_eq!(started["otp"], "", "a chosen OTP is not echoed: {started}");
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    assert_eq!(
        (status, body["progress"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    // Anyone may call these paths: once a share is counted, cancelling needs
    // a share too, so nobody can throw a quorum's work away (CVE-2026-5807).
    let refused = bao.run(None, &["operator", "generate-root", "-cancel"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("needs one of the current key shares"),
        "{refused:?}"
    );
    let (status, body) = s
        .call(
            "DELETE",
            "sys/generate-root-token/attempt",
            None,
            Some(json!({"key": keys[2]})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s.call("GET", "sys/generate-root/attempt", None, None).await;
    assert_eq!((status, &body["started"]), (200, &json!(false)), "{body}");

    // Vault's own paths answer bare documents; a stale nonce is refused.
    let (_, started) = s
        .call(
            "PUT",
            "sys/generate-root/attempt",
            None,
            Some(json!({"otp": otp})),
        )
        .await;
    let nonce2 = started["nonce"].as_str().unwrap().to_owned();
    let (status, body) = s
        .call(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("nonce"),
        "{body}"
    );
    for key in &keys[1..] {
        let (status, body) = s
            .call(
                "PUT",
                "sys/generate-root/update",
                None,
                Some(json!({"key": key, "nonce": nonce2})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if body["complete"] == true {
            let encoded = body["encoded_token"].as_str().unwrap();
            let decoded = bao.run(
                None,
                &[
                    "operator",
                    "generate-root",
                    &format!("-decode={encoded}"),
                    &otp_flag,
                ],
            );
            let token = decoded.stdout.trim();
            assert_eq!(token_policies(&s, token).await, (200, json!(["root"])));
            return;
        }
    }
    panic!("the attempt never completed");
}

#[tokio::test]
async fn bao_rekey_issues_new_shares_and_the_old_ones_stop_working() {
    let (mut s, keys, root) = server(Backend::Sqlite).await.unwrap();
    let Some(bao) = Bao::new(&s.addr) else {
        return;
    };
    let (status, _) = s
        .call(
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
    assert_eq!(status, 204);
    let put = bao.run(
        Some(&root),
        &["kv", "put", "secret/app", "db=kept-through-rekey"],
    );
    assert_eq!(put.code, 0, "{put:?}");

    let started = bao
        .run(
            None,
            &[
                "operator",
                "rekey",
                "-init",
                "-key-shares=5",
                "-key-threshold=3",
                "-format=json",
            ],
        )
        .json();
    assert_eq!(
        (
            started["n"].as_u64(),
            started["t"].as_u64(),
            started["required"].as_u64()
        ),
        (Some(5), Some(3), Some(2)),
        "{started}"
    );
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let nonce_flag = format!("-nonce={nonce}");
    let first = bao.run_with_stdin(
        None,
        &["operator", "rekey", &nonce_flag, "-format=json", "-"],
        Some(&keys[1]),
    );
    assert_eq!(first.code, 0, "{first:?}");
    let done = bao
        .run_with_stdin(
            None,
            &["operator", "rekey", &nonce_flag, "-format=json", "-"],
            Some(&keys[2]),
        )
        .json();
    assert_eq!(done["complete"], true, "{done}");
    let new_keys: Vec<String> = done["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_keys.len(), 5, "{done}");

    // Old shares are refused at once, even for a new root generation.
    let (_, attempt) = s
        .call("PUT", "sys/generate-root/attempt", None, Some(json!({})))
        .await;
    let (status, body) = s
        .call(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"key": keys[0], "nonce": attempt["nonce"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .call("DELETE", "sys/generate-root/attempt", None, None)
        .await;
    assert_eq!(status, 204);

    // After a restart (sealed), the old shares unseal nothing; three new ones do.
    s.restart();
    let bao = Bao::new(&s.addr).unwrap();
    for old in &keys {
        let out = bao.run(None, &["operator", "unseal", old]);
        assert_eq!(out.code, 2, "an old share was taken: {out:?}");
        assert!(
            out.stderr.contains("not one of this server's key shares"),
            "{out:?}"
        );
    }
    for k in &new_keys[1..4] {
        let out = bao.run(None, &["operator", "unseal", k]);
        assert_eq!(out.code, 0, "{out:?}");
    }
    let (_, health) = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (&health["sealed"], &health["t"], &health["n"]),
        (&json!(false), &json!(3), &json!(5))
    );
    let read = bao.run(Some(&root), &["kv", "get", "-field=db", "secret/app"]);
    assert_eq!(read.stdout.trim(), "kept-through-rekey", "{read:?}");

    // Audited without a share in clear (the new ones included).
    let log = audit_log(&s);
    assert_eq!(entries_for(&s, "sys/rekey/update").len(), 4);
    for secret in keys.iter().chain(&new_keys) {
        assert!(!log.contains(secret.as_str()), "in the audit log: {secret}");
    }
}

#[tokio::test]
async fn what_coffer_does_not_offer_is_a_clear_400() {
    let (s, _, _) = server(Backend::Sqlite).await.unwrap();
    for (method, path, body, says) in [
        (
            "PUT",
            "sys/rekey/init",
            json!({"secret_shares": 3, "secret_threshold": 2, "require_verification": true}),
            "verification",
        ),
        (
            "PUT",
            "sys/rekey/init",
            json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["x"]}),
            "pgp_keys",
        ),
        (
            "GET",
            "sys/rekey/verify",
            json!({}),
            "verification is not supported",
        ),
        (
            "PUT",
            "sys/rekey-recovery-key/init",
            json!({"secret_shares": 3, "secret_threshold": 2}),
            "auto-unseal",
        ),
        (
            "GET",
            "sys/rekey-recovery-key/init",
            json!({}),
            "auto-unseal",
        ),
        (
            "PUT",
            "sys/generate-root/attempt",
            json!({"pgp_key": "abc"}),
            "pgp_key",
        ),
        (
            "PUT",
            "sys/generate-root/attempt",
            json!({"otp": "short"}),
            "44",
        ),
    ] {
        let body = (method != "GET").then_some(body);
        let (status, answer) = s.call(method, path, None, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        let message = answer["errors"][0].as_str().unwrap_or_default();
        assert!(message.contains(says), "{method} {path}: {answer}");
    }
    // Nothing was started by any of them.
    let (_, status) = s.call("GET", "sys/rekey/init", None, None).await;
    assert_eq!(status["started"], false, "{status}");
}

/// 24 submissions of the last share, released together: one root token.
async fn the_last_share_makes_one_root_token(backend: Backend) {
    let Some((s, keys, root)) = server(backend).await else {
        return;
    };
    let s = Arc::new(s);
    let tokens_before = token_count(&s, &root).await;
    let (_, started) = s
        .call("PUT", "sys/generate-root/attempt", None, Some(json!({})))
        .await;
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    assert_eq!(status, 200);
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let (s, start, key, nonce) = (s.clone(), start.clone(), keys[1].clone(), nonce.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.call(
                "PUT",
                "sys/generate-root/update",
                None,
                Some(json!({"key": key, "nonce": nonce})),
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let winners = answers
        .iter()
        .filter(|(st, b)| *st == 200 && b["encoded_token"].as_str().is_some_and(|e| !e.is_empty()))
        .count();
    assert_eq!(winners, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(st, b)| *st == 200
            || *st == 400
                && b["errors"][0]
                    .as_str()
                    .is_some_and(|m| m.contains("no root generation in progress"))),
        "{answers:?}"
    );
    assert_eq!(token_count(&s, &root).await, tokens_before + 1);
}

/// The same for a rekey: one set of new shares, and those shares unseal.
async fn the_last_share_rekeys_once(backend: Backend) {
    let Some((s, keys, root)) = server(backend).await else {
        return;
    };
    let s = Arc::new(s);
    let (_, started) = s
        .call(
            "PUT",
            "sys/rekey/init",
            None,
            Some(json!({"secret_shares": 2, "secret_threshold": 2})),
        )
        .await;
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let (status, _) = s
        .call(
            "PUT",
            "sys/rekey/update",
            None,
            Some(json!({"key": keys[0], "nonce": nonce})),
        )
        .await;
    assert_eq!(status, 200);
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let mut tasks = Vec::new();
    for _ in 0..CONTENDERS {
        let (s, start, key, nonce) = (s.clone(), start.clone(), keys[2].clone(), nonce.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.call(
                "PUT",
                "sys/rekey/update",
                None,
                Some(json!({"key": key, "nonce": nonce})),
            )
            .await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let complete: Vec<&Value> = answers
        .iter()
        .filter(|(st, b)| *st == 200 && b["complete"] == true)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(complete.len(), 1, "{answers:?}");
    let new_keys: Vec<String> = complete[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    // The winner's shares are the ones in force.
    let (status, _) = s.call("PUT", "sys/seal", Some(&root), None).await;
    assert_eq!(status, 204);
    s.unseal(&new_keys).await;
}

async fn token_count(s: &TestServer, root: &str) -> u64 {
    let (status, text) = s
        .call("GET", "sys/metrics?format=prometheus", Some(root), None)
        .await;
    assert_eq!(status, 200, "{text}");
    let text = text.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("coffer_tokens "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no coffer_tokens in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_share_makes_one_root_token_sqlite() {
    the_last_share_makes_one_root_token(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_share_makes_one_root_token_postgres() {
    the_last_share_makes_one_root_token(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_share_rekeys_once_sqlite() {
    the_last_share_rekeys_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_share_rekeys_once_postgres() {
    the_last_share_rekeys_once(Backend::Postgres).await;
}
