use crate::clock::UnixTime;
use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::policy::parse_policy;

fn acl(texts: &[&str]) -> Acl {
    let policies: Vec<Policy> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| parse_policy(&format!("p{i}"), t).unwrap())
        .collect();
    Acl::compile(policies.iter(), false, None)
}

fn caps(acl: &Acl, path: &str) -> Vec<&'static str> {
    acl.decide(path, UnixTime::from_secs(0)).names()
}

#[test]
fn table_of_precedence_cases() {
    let a = acl(&[r#"
path "secret/*"                { capabilities = ["read"] }
path "secret/data/app/*"       { capabilities = ["read", "update"] }
path "secret/data/app/locked"  { capabilities = ["deny"] }
path "secret/+/shared"         { capabilities = ["list"] }
path "secret/data/+/config"    { capabilities = ["create"] }
path "sys/*"                   { capabilities = ["deny"] }
path "sys/capabilities-self"   { capabilities = ["update"] }
path "+/exact"                 { capabilities = ["patch"] }
"#]);
    let table: &[(&str, &[&str])] = &[
        ("secret/foo", &["read"]),
        ("secret/data/app/x", &["read", "update"]),
        ("secret/data/app/locked", &["deny"]),
        ("secret/data/app/locked/child", &["read", "update"]),
        // "secret/data/+/config" (first wildcard at 12) beats "secret/*" (at 7)
        ("secret/data/team/config", &["create"]),
        // ... but "secret/data/app/*" (wildcard at 16) beats "secret/data/+/config" (at 12)
        ("secret/data/app/config", &["read", "update"]),
        // "secret/+/shared" (wildcard at 7, no trailing *) beats "secret/*" (also 7, trailing *)
        ("secret/x/shared", &["list"]),
        ("sys/seal", &["deny"]),
        ("sys/capabilities-self", &["update"]),
        ("other/exact", &["patch"]),
        ("other/exact/more", &["deny"]),
        ("nothing", &["deny"]),
        ("", &["deny"]),
    ];
    for (path, want) in table {
        assert_eq!(caps(&a, path), *want, "path {path:?}");
    }
}

#[test]
fn same_path_merges_across_policies_and_deny_wins() {
    let a = acl(&[
        r#"path "kv/a" { capabilities = ["read"] }"#,
        r#"path "kv/a" { capabilities = ["update"] }"#,
    ]);
    assert_eq!(caps(&a, "kv/a"), vec!["read", "update"]);
    let d = acl(&[
        r#"path "kv/a" { capabilities = ["read", "sudo"] }"#,
        r#"path "kv/a" { capabilities = ["deny"] }"#,
    ]);
    assert_eq!(caps(&d, "kv/a"), vec!["deny"]);
}

#[test]
fn root_allows_everything() {
    let a = Acl::compile(std::iter::empty(), true, None);
    let d = a.decide("anything/at/all", UnixTime::from_secs(0));
    assert!(d.allows(Capabilities::SUDO));
    assert_eq!(d.names(), vec!["root"]);
}

#[test]
fn expired_rules_grant_nothing_and_fall_back() {
    let a = acl(&[r#"
path "tmp/*" { capabilities = ["read"] }
path "tmp/x" {
  capabilities = ["update"]
  expiration = "2001-09-09T01:46:40Z"
}
"#]);
    assert_eq!(
        a.decide("tmp/x", UnixTime::from_secs(999_999_999)).names(),
        vec!["update"]
    );
    assert_eq!(
        a.decide("tmp/x", UnixTime::from_secs(1_000_000_000))
            .names(),
        vec!["read"],
        "after expiry the next rule applies"
    );
}

#[test]
fn templates_render_per_entity() {
    let p = parse_policy("dev", r#"path "secret/data/teams/{{identity.entity.metadata.team}}/*" { capabilities = ["read"] }"#).unwrap();
    let alice = Entity {
        id: "1".into(),
        name: "alice".into(),
        metadata: BTreeMap::from([("team".into(), "pay".into())]),
    };
    let a = Acl::compile([&p], false, Some(&alice));
    assert_eq!(caps(&a, "secret/data/teams/pay/x"), vec!["read"]);
    assert_eq!(caps(&a, "secret/data/teams/search/x"), vec!["deny"]);
    let nobody = Acl::compile([&p], false, None);
    assert_eq!(caps(&nobody, "secret/data/teams/pay/x"), vec!["deny"]);
}

#[test]
fn parameter_constraints() {
    let a = acl(&[r#"
path "cfg" {
  capabilities = ["update"]
  allowed_parameters = { "env" = ["dev", "stage-*"], "note" = [] }
  denied_parameters = { "note" = ["*secret*"] }
  required_parameters = ["env"]
}
"#]);
    let d = a.decide("cfg", UnixTime::from_secs(0));
    let ok = |v: serde_json::Value| d.params.check(v.as_object().unwrap());
    assert!(ok(json!({"env": "dev"})).is_ok());
    assert!(ok(json!({"env": "stage-2", "note": "hello"})).is_ok());
    assert!(ok(json!({"env": "prod"})).is_err(), "value not allowed");
    assert!(
        ok(json!({"env": "dev", "other": 1})).is_err(),
        "key not allowed"
    );
    assert!(
        ok(json!({"env": "dev", "note": "my secret note"})).is_err(),
        "denied value"
    );
    assert!(ok(json!({"note": "x"})).is_err(), "required missing");
}

#[test]
fn grants_anything_under_a_mount() {
    let a = acl(&[r#"path "secret/data/app/*" { capabilities = ["read"] }"#]);
    assert!(a.grants_anything_under("secret/", UnixTime::from_secs(0)));
    assert!(!a.grants_anything_under("other/", UnixTime::from_secs(0)));
    let wide = acl(&[r#"path "*" { capabilities = ["read"] }"#]);
    assert!(wide.grants_anything_under("other/", UnixTime::from_secs(0)));
}

fn segment() -> impl Strategy<Value = String> {
    "[a-c]{1,2}"
}

fn path_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(prop_oneof![segment(), Just("+".to_owned())], 1..5),
        any::<bool>(),
    )
        .prop_map(|(segs, glob)| {
            let mut p = segs.join("/");
            if glob {
                p.push('*');
            }
            p
        })
}

fn cap_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("read"),
        Just("update"),
        Just("list"),
        Just("create"),
        Just("delete")
    ]
}

fn policy_text(rules: &[(String, &str)]) -> String {
    rules
        .iter()
        .map(|(p, c)| format!("path \"{p}\" {{ capabilities = [\"{c}\"] }}\n"))
        .collect()
}

proptest! {
    /// A deny on the exact request path denies, whatever allows exist anywhere.
    #[test]
    fn deny_on_the_path_always_wins(
        rules in proptest::collection::vec((pattern_strategy(), cap_strategy()), 0..12),
        path in path_strategy(),
    ) {
        let allow = policy_text(&rules);
        let deny = format!("path \"{path}\" {{ capabilities = [\"deny\"] }}\n");
        let a = acl(&[&allow, &deny]);
        prop_assert_eq!(caps(&a, &path), vec!["deny"]);
        let same_policy = acl(&[&(allow + &deny)]);
        prop_assert_eq!(caps(&same_policy, &path), vec!["deny"]);
    }

    /// Adding an allow rule never removes a capability: a rule on the same path
    /// merges, and a rule that does not match the path changes nothing.
    #[test]
    fn adding_an_allow_never_removes_a_capability(
        rules in proptest::collection::vec((pattern_strategy(), cap_strategy()), 1..12),
        extra_cap in cap_strategy(),
        pick in any::<proptest::sample::Index>(),
        path in path_strategy(),
    ) {
        let base = acl(&[&policy_text(&rules)]);
        let before = base.decide(&path, UnixTime::from_secs(0)).capabilities;
        // Same pattern as an existing rule: a union.
        let (p, _) = &rules[pick.index(rules.len())];
        let extended = acl(&[&policy_text(&rules), &policy_text(&[(p.clone(), extra_cap)])]);
        let after = extended.decide(&path, UnixTime::from_secs(0)).capabilities;
        prop_assert!(before.is_empty() || after.contains(before) || after.contains(Capabilities::DENY));
        // A pattern that cannot match the path: no change.
        let unrelated = acl(&[&policy_text(&rules), &policy_text(&[("zzz/*".to_owned(), extra_cap)])]);
        prop_assert_eq!(unrelated.decide(&path, UnixTime::from_secs(0)).capabilities, before);
    }

    /// A prefix rule never grants outside its prefix, and `+` never spans a `/`.
    #[test]
    fn globs_stay_inside_their_prefix_and_plus_stays_in_its_segment(
        pattern in pattern_strategy(),
        path in path_strategy(),
    ) {
        let a = acl(&[&policy_text(&[(pattern.clone(), "read")])]);
        let granted = !a.decide(&path, UnixTime::from_secs(0)).capabilities.is_empty();
        let body = pattern.trim_end_matches('*');
        let psegs: Vec<&str> = body.split('/').collect();
        let segs: Vec<&str> = path.split('/').collect();
        if granted {
            if pattern.ends_with('*') {
                prop_assert!(segs.len() >= psegs.len());
            } else {
                prop_assert_eq!(segs.len(), psegs.len(), "+ spanned a '/': {} vs {}", pattern, path);
            }
            for (i, p) in psegs.iter().enumerate() {
                let last = i == psegs.len() - 1;
                if *p == "+" { continue; }
                if last && pattern.ends_with('*') {
                    prop_assert!(segs[i].starts_with(p), "{} granted {}", pattern, path);
                } else {
                    prop_assert_eq!(segs[i], *p, "{} granted {}", pattern, path);
                }
            }
        }
        if !pattern.contains('+') && !pattern.ends_with('*') {
            prop_assert_eq!(granted, path == pattern);
        }
        if !pattern.contains('+') && pattern.ends_with('*') {
            prop_assert_eq!(granted, path.starts_with(body));
        }
    }

    /// Deciding never panics, whatever the path.
    #[test]
    fn decide_never_panics(path in "\\PC{0,40}", rules in proptest::collection::vec((pattern_strategy(), cap_strategy()), 0..6)) {
        let a = acl(&[&policy_text(&rules)]);
        let _ = a.decide(&path, UnixTime::from_secs(0));
    }
}
