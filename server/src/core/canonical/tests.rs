//! The canonical form against hand-picked and generated spellings.

use crate::clock::UnixTime;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::mounts::{new_entry, MountConfig, MountTable};
use crate::policy::{parse_policy, Acl};

fn auth() -> MountTable {
    let mut t = MountTable::default();
    for (path, kind) in [("userpass/", "userpass"), ("team/people/", "userpass")] {
        let e = new_entry(
            path.into(),
            kind,
            String::new(),
            BTreeMap::new(),
            MountConfig::default(),
            UnixTime::from_secs(0),
        )
        .unwrap();
        t.insert(e, false).unwrap();
    }
    let token = new_entry(
        "token/".into(),
        "token",
        String::new(),
        BTreeMap::new(),
        MountConfig::default(),
        UnixTime::from_secs(0),
    )
    .unwrap();
    t.insert(token, false).unwrap();
    t
}

fn canon(raw: &str) -> Result<String, CoreError> {
    let (auth, registry) = (auth(), crate::engines::builtin());
    canonical_path(raw, |body| {
        super::super::route::fold_below_auth(body, &auth, &registry)
    })
}

#[test]
fn canonical_paths_pass_unchanged() {
    for p in [
        "",
        "sys/health",
        "secret/data/App/Config",
        "secret/metadata/",
        "secret/data/a b",
        "auth/token/lookup-self",
        "auth/userpass/users/",
        "auth/userpass/users/alice",
        "auth/userpass/users/alice/password",
        "auth/userpass/config",
        "sys/policies/acl/",
        "sys/policies/acl/admin",
        "sys/mounts/secret",
        "sys/mounts/team/a/tune",
        "sys/locked-users/userpass_x/unlock/alice",
    ] {
        assert_eq!(canon(p).unwrap(), p, "{p:?}");
    }
}

#[test]
fn names_fold_where_vault_folds_case() {
    for (raw, want) in [
        ("auth/userpass/users/ADMIN", "auth/userpass/users/admin"),
        (
            "auth/userpass/users/Admin/password",
            "auth/userpass/users/admin/password",
        ),
        ("auth/userpass/login/ADMIN", "auth/userpass/login/admin"),
        (
            "auth/userpass/totp/enroll/Bob",
            "auth/userpass/totp/enroll/bob",
        ),
        (
            "auth/userpass/totp/confirm/Bob",
            "auth/userpass/totp/confirm/bob",
        ),
        ("auth/team/people/users/Eve", "auth/team/people/users/eve"),
        ("auth/userpass/users/admin/", "auth/userpass/users/admin"),
        ("sys/policies/acl/ADMIN", "sys/policies/acl/admin"),
        ("sys/policies/acl/admin/", "sys/policies/acl/admin"),
        ("sys/policy/Admin", "sys/policy/admin"),
        (
            "sys/locked-users/userpass_AbC/unlock/ADMIN",
            "sys/locked-users/userpass_AbC/unlock/admin",
        ),
        ("sys/mounts/secret/", "sys/mounts/secret"),
        ("sys/auth/userpass/", "sys/auth/userpass"),
        ("sys/audit/file/", "sys/audit/file"),
        ("sys/mounts/secret/tune/", "sys/mounts/secret/tune"),
    ] {
        assert_eq!(canon(raw).unwrap(), want, "{raw:?}");
    }
}

#[test]
fn case_is_kept_where_vault_keeps_it() {
    for p in [
        "secret/data/ADMIN",
        "sys/mounts/Secret",
        "auth/token/lookup/ABC",
        "auth/userpass/USERS/admin",
        "auth/Userpass/users/ADMIN",
    ] {
        assert_eq!(canon(p).unwrap(), p, "{p:?}");
    }
    // Without the auth table (sealed) nothing under auth/ is folded.
    assert_eq!(
        canonical_path("auth/userpass/users/ADMIN", |_| None).unwrap(),
        "auth/userpass/users/ADMIN"
    );
}

#[test]
fn ambiguous_spellings_are_refused() {
    for p in [
        "/",
        "//",
        "/sys/health",
        "sys//health",
        "sys/mounts//secret",
        "sys/mounts/secret//",
        "sys/auth//userpass",
        "sys/audit//file",
        "secret/data/a/./b",
        "secret/data/a/../b",
        "sys/mounts/x/../secret",
        ".",
        "..",
        "auth/userpass/users/ admin",
        "auth/userpass/users/admin ",
        "auth/userpass/users/\u{a0}admin",
        "sys/policies/acl/ admin",
        "secret/data/a\0b",
        "secret/data/a\nb",
        "secret/data/a\tb",
        "secret/data/a\rb",
        "secret/data/a\u{7f}b",
        "secret/data/a\u{85}b",
        "auth/userpass/users/admin\n",
    ] {
        let err = canon(p).expect_err(p);
        assert!(matches!(err, CoreError::NonCanonicalPath(_)), "{p:?}");
        assert!(err.to_string().contains("path"), "{err}");
    }
}

#[test]
fn canonical_form_is_a_fixed_point() {
    for p in [
        "auth/userpass/users/ADMIN/",
        "sys/policies/acl/X",
        "secret/metadata/a/",
        "sys/mounts/kv/",
    ] {
        let once = canon(p).unwrap();
        assert_eq!(canon(&once).unwrap(), once);
    }
}

/// Every path template whose handler used to normalise the name in it,
/// with the canonical name of the protected object.
const TEMPLATES: &[&str] = &[
    "auth/userpass/users/{}",
    "auth/userpass/users/{}/password",
    "auth/userpass/users/{}/policies",
    "auth/userpass/users/{}/totp",
    "auth/userpass/login/{}",
    "auth/userpass/totp/enroll/{}",
    "auth/userpass/totp/confirm/{}",
    "auth/team/people/users/{}",
    "sys/policies/acl/{}",
    "sys/policy/{}",
    "sys/locked-users/userpass_acc/unlock/{}",
    "sys/mounts/{}",
    "sys/mounts/{}/tune",
    "sys/auth/{}",
    "sys/auth/{}/tune",
    "sys/audit/{}",
    "sys/audit-hash/{}",
];

/// Denies each template on the canonical `admin`, allows the rest.
fn acl() -> Acl {
    let mut text = String::new();
    for t in TEMPLATES {
        let wide = t.replace("{}", "*");
        let wide = wide
            .split_once('*')
            .map(|(a, _)| format!("{a}*"))
            .unwrap_or(wide);
        text.push_str(&format!(
            "path \"{wide}\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }}\n"
        ));
        text.push_str(&format!(
            "path \"{}\" {{ capabilities = [\"deny\"] }}\n",
            t.replace("{}", "admin")
        ));
    }
    let policy = parse_policy("attacker", &text).unwrap();
    Acl::compile([&policy], false, None)
}

/// The ways a client may spell `admin` differently, as the handlers used to
/// accept them (case, padding, control characters, slashes, dot segments).
fn spelling() -> impl Strategy<Value = String> {
    let case = proptest::collection::vec(any::<bool>(), 5).prop_map(|upper| {
        "admin"
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect::<String>()
    });
    let pad = prop::sample::select(vec![
        "", "", "", " ", "\t", "\n", "\r", "\0", "\u{a0}", "\u{3000}", "\u{7f}",
    ]);
    let before = prop::sample::select(vec!["", "", "/", "./", "x/../", "//"]);
    let after = prop::sample::select(vec!["", "", "/", "//", "/.", "/..", "/./"]);
    (before, pad.clone(), case, pad, after)
        .prop_map(|(b, p1, c, p2, a)| format!("{b}{p1}{c}{p2}{a}"))
}

proptest! {
    /// The decision for any accepted spelling is the decision for the
    /// canonical name (the path is the same string); the canonical name is
    /// denied, so no spelling is ever allowed.
    #[test]
    fn no_spelling_is_decided_differently_from_the_canonical_name(
        name in spelling(),
        template in prop::sample::select(TEMPLATES.to_vec()),
    ) {
        let acl = acl();
        let canonical = canon(&template.replace("{}", "admin")).unwrap();
        let mount_path = template.starts_with("sys/mounts/")
            || template.starts_with("sys/auth/")
            || template.starts_with("sys/audit");
        let raw = template.replace("{}", &name);
        match canon(&raw) {
            Err(e) => prop_assert!(matches!(e, CoreError::NonCanonicalPath(_))),
            Ok(path) => {
                // What the handlers acted on before this module: trimmed,
                // and lower-cased where names fold.
                let old = name.trim_matches('/').trim();
                let same_object = if mount_path { old == "admin" } else { old.to_lowercase() == "admin" };
                if same_object {
                    prop_assert_eq!(&path, &canonical);
                }
                let d = acl.decide(&path, UnixTime::from_secs(0));
                if same_object {
                    prop_assert_eq!(d.clone(), acl.decide(&canonical, UnixTime::from_secs(0)));
                    prop_assert!(!d.allows(crate::policy::Capabilities::UPDATE), "{path} allowed");
                }
                // Whatever was accepted is already canonical: handlers see
                // nothing they would rewrite.
                prop_assert_eq!(canon(&path).unwrap(), path);
            }
        }
    }
}
