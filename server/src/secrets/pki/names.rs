//! Which names a role lets into a certificate: the common name and DNS SANs
//! (`allowed_domains` with `allow_bare_domains`, `allow_subdomains`,
//! `allow_glob_domains`, `allow_localhost`, `allow_any_name`, wildcards,
//! hostname syntax), URI SANs (`allowed_uri_sans` globs), IP SANs
//! (`allow_ip_sans`). The rules are Vault's `validateNames`; the refusal names
//! the refused name. DNS names compare case-insensitively.
//!
//! Globs are Vault's (`go-glob`): `*` stands for any run of characters,
//! dots and slashes included, so `spiffe://prod/ns/*/sa/*` also admits
//! `spiffe://prod/ns/a/b/sa/c`, exactly as in Vault.

use std::net::IpAddr;

use super::roles::Role;
use crate::logical::LogicalError;

/// The names asked for in one certificate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Names {
    pub common_name: String,
    pub dns: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
}

/// Whether `s` matches `pattern`, where `*` matches any run of characters.
pub(super) fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if s.len() < first.len() + last.len() || !s.starts_with(first) || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Hostname syntax (Vault's `hostnameRegex`): dot-separated labels of
/// letters, digits and inner hyphens, an optional trailing dot.
pub(super) fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether the role admits `name` as a common name or DNS SAN (or an email
/// address's domain).
pub(super) fn name_allowed(role: &Role, name: &str) -> bool {
    if role.allow_any_name && (!role.enforce_hostnames || name.contains('@') || host_ok(role, name))
    {
        return true;
    }
    let name = name.to_ascii_lowercase();
    let (host, is_email) = match name.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.contains('@') => (domain, true),
        Some(_) => return false,
        None => (name.as_str(), false),
    };
    let (reduced, wildcard) = match host.strip_prefix("*.") {
        Some(r) if !is_email => (r, true),
        _ => (host, false),
    };
    if wildcard && !role.allow_wildcard_certificates {
        return false;
    }
    if role.enforce_hostnames && !is_hostname(reduced) {
        return false;
    }
    if role.allow_localhost && matches!(reduced, "localhost" | "localdomain") {
        return true;
    }
    role.allowed_domains.iter().any(|domain| {
        let domain = domain.to_ascii_lowercase();
        let domain = domain.as_str();
        (role.allow_bare_domains && host == domain)
            || (role.allow_subdomains
                && (reduced.ends_with(&format!(".{domain}")) || (wildcard && reduced == domain)))
            || (role.allow_glob_domains && domain.contains('*') && glob(domain, host))
    })
}

fn host_ok(role: &Role, name: &str) -> bool {
    let reduced = name.strip_prefix("*.").unwrap_or(name);
    is_hostname(reduced) && (role.allow_wildcard_certificates || !name.starts_with("*."))
}

/// Whether `uri` is a URI at all: a scheme, a colon, then printable ASCII.
pub(super) fn is_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_graphic())
}

/// Checks every name against the role; the error names the first refused one.
pub(super) fn check(role: &Role, names: &Names) -> Result<(), LogicalError> {
    let cn = &names.common_name;
    if !cn.is_empty() && cn.parse::<IpAddr>().is_err() && !name_allowed(role, cn) {
        return Err(LogicalError::invalid(format!(
            "common name {cn} not allowed by this role"
        )));
    }
    for name in names.dns.iter().chain(&names.emails) {
        if !name_allowed(role, name) {
            return Err(LogicalError::invalid(format!(
                "subject alternate name {name} not allowed by this role"
            )));
        }
    }
    if let Some(ip) = names.ips.first().filter(|_| !role.allow_ip_sans) {
        return Err(LogicalError::invalid(format!(
            "IP Subject Alternative Names are not allowed in this role, but was provided {ip}"
        )));
    }
    for uri in &names.uris {
        if !is_uri(uri) {
            return Err(LogicalError::invalid(format!("invalid URI SAN {uri:?}")));
        }
        if !role.allowed_uri_sans.iter().any(|p| glob(p, uri)) {
            return Err(LogicalError::invalid(format!(
                "URI Subject Alternative Name {uri} not allowed by this role"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::Fields;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    fn role(v: Value) -> Role {
        let m: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
        Role::from_fields(&Fields(&m)).unwrap()
    }

    #[test]
    fn subdomains_bare_domains_and_localhost() {
        let r = role(json!({"allowed_domains": "svc.internal", "allow_subdomains": true}));
        assert!(name_allowed(&r, "api.svc.internal"));
        assert!(name_allowed(&r, "a.b.svc.internal"));
        assert!(name_allowed(&r, "API.Svc.Internal"));
        assert!(name_allowed(&r, "*.svc.internal"));
        assert!(name_allowed(&r, "localhost"));
        assert!(!name_allowed(&r, "svc.internal"), "bare domain not allowed");
        assert!(!name_allowed(&r, "evilsvc.internal"));
        assert!(!name_allowed(&r, "svc.internal.evil.com"));
        assert!(!name_allowed(&r, "a_b.svc.internal"), "not a hostname");
        let bare = role(
            json!({"allowed_domains": "svc.internal", "allow_bare_domains": true, "allow_localhost": false}),
        );
        assert!(name_allowed(&bare, "svc.internal"));
        assert!(!name_allowed(&bare, "api.svc.internal"));
        assert!(!name_allowed(&bare, "localhost"));
        let nowild = role(
            json!({"allowed_domains": "svc.internal", "allow_subdomains": true, "allow_wildcard_certificates": false}),
        );
        assert!(!name_allowed(&nowild, "*.svc.internal"));
    }

    #[test]
    fn glob_domains_and_any_name() {
        let r = role(json!({"allowed_domains": "*.svc.internal", "allow_glob_domains": true}));
        assert!(name_allowed(&r, "api.svc.internal"));
        assert!(name_allowed(&r, "a.b.svc.internal"));
        assert!(!name_allowed(&r, "svc.internal"));
        assert!(!name_allowed(&r, "api.svc.internal.evil"));
        // A glob in allowed_domains is literal without allow_glob_domains.
        let literal = role(json!({"allowed_domains": "*.svc.internal", "allow_subdomains": true}));
        assert!(!name_allowed(&literal, "api.svc.internal"));
        let any = role(json!({"allow_any_name": true}));
        assert!(name_allowed(&any, "anything.example.com"));
        assert!(!name_allowed(&any, "not a hostname"));
        let loose = role(json!({"allow_any_name": true, "enforce_hostnames": false}));
        assert!(name_allowed(&loose, "not a hostname"));
    }

    #[test]
    fn the_refusal_names_the_refused_name() {
        let r = role(json!({
            "allowed_domains": "svc.internal", "allow_subdomains": true,
            "allowed_uri_sans": "spiffe://prod/ns/*/sa/*", "allow_ip_sans": false,
        }));
        let ok = Names {
            common_name: "api.svc.internal".into(),
            dns: vec!["b.svc.internal".into()],
            uris: vec!["spiffe://prod/ns/pay/sa/api".into()],
            ..Names::default()
        };
        assert!(check(&r, &ok).is_ok());
        let msg = |n: Names| check(&r, &n).unwrap_err().to_string();
        assert_eq!(
            msg(Names {
                common_name: "x.evil.com".into(),
                ..ok.clone()
            }),
            "common name x.evil.com not allowed by this role"
        );
        assert!(msg(Names {
            dns: vec!["y.evil.com".into()],
            ..ok.clone()
        })
        .contains("y.evil.com"));
        assert!(msg(Names {
            uris: vec!["spiffe://dev/ns/a/sa/b".into()],
            ..ok.clone()
        })
        .contains("spiffe://dev/ns/a/sa/b"));
        assert!(msg(Names {
            ips: vec!["10.0.0.1".parse().unwrap()],
            ..ok.clone()
        })
        .contains("10.0.0.1"));
        assert!(msg(Names {
            uris: vec!["no scheme".into()],
            ..ok
        })
        .contains("invalid URI"));
    }

    #[test]
    fn globs_follow_vault() {
        assert!(glob(
            "spiffe://prod/ns/*/sa/*",
            "spiffe://prod/ns/pay/sa/api"
        ));
        assert!(glob("spiffe://prod/ns/*/sa/*", "spiffe://prod/ns/a/b/sa/c"));
        assert!(!glob("spiffe://prod/ns/*/sa/*", "spiffe://prod/ns/pay/api"));
        assert!(!glob(
            "spiffe://prod/ns/*/sa/*",
            "spiffe://dev/ns/pay/sa/api"
        ));
        assert!(glob("a*a", "aa"));
        assert!(!glob("a*a", "a"));
        assert!(glob("*", ""));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }

    proptest! {
        /// Filling each `*` of a pattern with any text matches it; a pattern
        /// without `*` matches only itself.
        #[test]
        fn a_filled_in_glob_matches_its_pattern(
            pieces in proptest::collection::vec("[a-z:/.]{0,6}", 1..5),
            fills in proptest::collection::vec("[a-z:/.*]{0,6}", 4),
            other in "[a-z:/.]{0,12}",
        ) {
            let pattern = pieces.join("*");
            let mut filled = pieces[0].clone();
            for (i, p) in pieces.iter().enumerate().skip(1) {
                filled.push_str(&fills[i - 1]);
                filled.push_str(p);
            }
            prop_assert!(glob(&pattern, &filled), "{} vs {}", pattern, filled);
            if pieces.len() == 1 {
                prop_assert_eq!(glob(&pattern, &other), pattern == other);
            }
        }

        /// A match starts with the literal before the first `*` and ends with
        /// the one after the last.
        #[test]
        fn a_match_keeps_the_literal_ends(
            head in "[a-z/]{0,5}", tail in "[a-z/]{0,5}", s in "[a-z/]{0,14}",
        ) {
            let pattern = format!("{head}*{tail}");
            let expected = s.len() >= head.len() + tail.len() && s.starts_with(&head) && s.ends_with(&tail);
            prop_assert_eq!(glob(&pattern, &s), expected);
        }
    }
}
