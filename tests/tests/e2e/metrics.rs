//! `sys/metrics?format=prometheus`: valid text exposition, counters that move,
//! and access only with a token unless the listener opens it.

use coffer_tests::{Backend, Options, TestServer};
use serde_json::json;

/// A strict reader of the Prometheus text format: every sample line is
/// `name{label="value",...} number`, and every sample's family was declared.
fn parse(text: &str) -> Vec<(String, String, f64)> {
    let mut declared = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            declared.insert(parts.next().unwrap().to_owned());
            assert!(
                matches!(parts.next(), Some("counter" | "gauge" | "histogram")),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                assert!(l.ends_with('}'), "{line}");
                for pair in l.trim_end_matches('}').split(",") {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label: {line}"));
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                }
                (n, l.trim_end_matches('}'))
            }
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            declared.contains(name) || declared.contains(family),
            "undeclared: {line}"
        );
        samples.push((name.to_owned(), labels.to_owned(), value));
    }
    samples
}

fn value(samples: &[(String, String, f64)], name: &str, label_part: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && l.contains(label_part))
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let scrape = |token: Option<String>| {
        let mut r = s
            .http
            .get(format!("{}/v1/sys/metrics?format=prometheus", s.addr));
        if let Some(t) = token {
            r = r.header("X-Vault-Token", t);
        }
        r.send()
    };
    assert_eq!(
        scrape(None).await.unwrap().status().as_u16(),
        403,
        "a token is needed by default"
    );
    let before = parse(
        &scrape(Some(root.clone()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    for _ in 0..3 {
        s.call(
            "POST",
            "secret/data/m",
            Some(&root),
            Some(json!({"data": {"a": "b"}})),
        )
        .await;
    }
    s.call("GET", "secret/data/nope", Some(&root), None).await;
    s.call(
        "POST",
        "sys/auth/userpass",
        Some(&root),
        Some(json!({"type": "userpass"})),
    )
    .await;
    s.call(
        "POST",
        "auth/userpass/login/ghost",
        None,
        Some(json!({"password": "whatever-it-is"})),
    )
    .await;
    // A user locked out after two wrong passwords.
    let r = Some(root.as_str());
    s.call(
        "POST",
        "auth/userpass/config",
        r,
        Some(json!({"lockout_threshold": 2})),
    )
    .await;
    let (st, body) = s
        .call(
            "POST",
            "auth/userpass/users/lockme",
            r,
            Some(json!({"password": "a long enough password 1"})),
        )
        .await;
    assert_eq!(st, 204, "{body}");
    for _ in 0..2 {
        s.call(
            "POST",
            "auth/userpass/login/lockme",
            None,
            Some(json!({"password": "not the password at all"})),
        )
        .await;
    }
    // Two more tokens, one of them revoked.
    let mut created = Vec::new();
    for _ in 0..2 {
        let (st, body) = s.call("POST", "auth/token/create", r, None).await;
        assert_eq!(st, 200, "{body}");
        created.push(body["auth"]["client_token"].as_str().unwrap().to_owned());
    }
    let (st, _) = s
        .call(
            "POST",
            "auth/token/revoke",
            r,
            Some(json!({"token": created[0]})),
        )
        .await;
    assert_eq!(st, 204);
    let resp = scrape(Some(root.clone())).await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let after_text = resp.text().await.unwrap();
    let after = parse(&after_text);
    let writes = |s: &[(String, String, f64)]| {
        value(
            s,
            "coffer_requests_total",
            "mount=\"secret/\",operation=\"update\",status=\"200\"",
        )
    };
    assert_eq!(writes(&after) - writes(&before), 3.0);
    assert_eq!(
        value(
            &after,
            "coffer_requests_total",
            "mount=\"secret/\",operation=\"read\",status=\"404\""
        ),
        1.0
    );
    assert!(
        value(
            &after,
            "coffer_request_duration_seconds_count",
            "mount=\"secret/\",operation=\"update\""
        ) >= 3.0
    );
    assert_eq!(
        value(&after, "coffer_login_failures_total", "method=\"userpass\""),
        3.0
    );
    assert_eq!(
        value(&after, "coffer_lockouts_total", "") - value(&before, "coffer_lockouts_total", ""),
        1.0
    );
    assert_eq!(
        value(&after, "coffer_tokens", "") - value(&before, "coffer_tokens", ""),
        1.0
    );
    assert_eq!(
        value(&after, "coffer_token_revocations_total", "")
            - value(&before, "coffer_token_revocations_total", ""),
        1.0
    );
    // Every family the issue names is declared, whether or not it has samples yet.
    for family in [
        "coffer_requests_total",
        "coffer_request_duration_seconds",
        "coffer_audit_write_duration_seconds",
        "coffer_logins_total",
        "coffer_login_failures_total",
        "coffer_lockouts_total",
        "coffer_sealed",
        "coffer_tokens",
        "coffer_leases",
        "coffer_irrevocable_leases",
        "coffer_lease_revocations_total",
        "coffer_token_revocations_total",
        "coffer_audit_write_failures_total",
        "coffer_breakglass_requests_total",
        "coffer_breakglass_active_grants",
        "coffer_webhook_delivery_failures_total",
    ] {
        assert!(
            after_text.contains(&format!("\n# TYPE {family} ")),
            "{family} missing"
        );
    }
    assert_eq!(value(&after, "coffer_sealed", ""), 0.0);
    assert_eq!(
        s.call("GET", "sys/metrics", Some(&root), None).await.0,
        400,
        "only the prometheus format"
    );
}

#[tokio::test]
async fn a_listener_can_open_metrics_to_scrapers() {
    let options = Options {
        listener_extra: "unauthenticated_metrics_access = true\n".into(),
        ..Default::default()
    };
    let Some(s) = TestServer::start_with(Backend::Sqlite, options).await else {
        return;
    };
    let resp = s
        .http
        .get(format!("{}/v1/sys/metrics?format=prometheus", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert_eq!(
        value(&parse(&text), "coffer_sealed", ""),
        1.0,
        "sealed before init: {text}"
    );
}

/// Anyone may send made-up paths without a token; they must not create a
/// series each (a request to `auth/<random>/x` used to name its own mount).
#[tokio::test]
async fn made_up_paths_do_not_grow_the_series() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let (_, root) = s.ready().await;
    let series = || async {
        let text = s
            .call("GET", "sys/metrics?format=prometheus", Some(&root), None)
            .await
            .1;
        let samples = parse(text.as_str().unwrap());
        samples
            .iter()
            .filter(|(n, _, _)| n == "coffer_requests_total")
            .map(|(_, l, _)| l.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    // One of each kind first, so every label the made-up paths can reach exists.
    for path in ["auth/warmup/x", "warmup/x", "sys/warmup"] {
        s.call("POST", path, None, Some(json!({}))).await;
        s.call("GET", path, None, None).await;
    }
    series().await;
    let before = series().await;
    for i in 0..100 {
        for path in [
            format!("auth/made-up-{i}/login/x"),
            format!("made-up-{i}/data/x"),
            format!("sys/made-up-{i}"),
        ] {
            s.call("POST", &path, None, Some(json!({}))).await;
            s.call("GET", &path, None, None).await;
        }
    }
    let after = series().await;
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.len() <= 2, "300 made-up paths made series: {new:?}");
    assert!(
        !after.iter().any(|l| l.contains("made-up")),
        "a made-up name is a label: {after:?}"
    );
}
