//! The token parameters every auth method's role or user carries (Vault's
//! `tokenutil`): `token_policies`, `token_ttl`, `token_max_ttl`,
//! `token_explicit_max_ttl`, `token_period`, `token_num_uses`,
//! `token_bound_cidrs`, `token_no_default_policy` and `token_type`, with the
//! legacy names some methods still accept (`policies`, `ttl`, `max_ttl`,
//! `bound_cidrs`, ...).
//!
//! One type parses them from a request (the `logical::Fields` readers: lists
//! as arrays or comma-separated strings, durations as "1h" or seconds),
//! validates them (each refusal names its field), is stored inside the
//! method's record (every field has a serde default, so records written before
//! a field existed still read), answers a read with every field present in
//! Vault's types, and turns into the TTLs of the token a login makes.
//!
//! It does not decide who may log in, nor make the token: a method checks its
//! credential, then hands the core a `CreateParams` this module filled in.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::logical::{Fields, LogicalError};
use crate::mounts::MountConfig;
use crate::token::CreateParams;

/// The kind of token a login makes. Only service tokens exist in Coffer; Vault's
/// `default` means "the method's default", which is a service token here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenType {
    /// the method's default (a service token)
    #[default]
    Default,
    /// a service token
    Service,
}

impl TokenType {
    /// Vault's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Default => "default",
            TokenType::Service => "service",
        }
    }

    fn parse(field: &str, s: &str) -> Result<TokenType, LogicalError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "default" => Ok(TokenType::Default),
            "service" => Ok(TokenType::Service),
            // Vault's batch tokens are unstored and unrenewable; until Coffer has
            // them, a role asking for one is refused rather than silently given a
            // service token that outlives what the operator expected.
            "batch" | "default-batch" => Err(LogicalError::invalid(format!(
                "field '{field}': batch tokens are not supported yet; use \"service\" or \"default\""
            ))),
            other => Err(LogicalError::invalid(format!(
                "field '{field}': invalid value \"{other}\" (expected \"service\" or \"default\")"
            ))),
        }
    }
}

/// A legacy field name a method still accepts in place of its `token_*` name.
/// Written through the old name, a value is also shown under it on read (as
/// Vault does), until a write uses the new name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// `policies` for `token_policies`
    Policies,
    /// `ttl` for `token_ttl`
    Ttl,
    /// `max_ttl` for `token_max_ttl`
    MaxTtl,
    /// `period` for `token_period`
    Period,
    /// `num_uses` for `token_num_uses`
    NumUses,
    /// `bound_cidrs` for `token_bound_cidrs`
    BoundCidrs,
}

impl Legacy {
    /// The old name.
    pub fn old_name(self) -> &'static str {
        match self {
            Legacy::Policies => "policies",
            Legacy::Ttl => "ttl",
            Legacy::MaxTtl => "max_ttl",
            Legacy::Period => "period",
            Legacy::NumUses => "num_uses",
            Legacy::BoundCidrs => "bound_cidrs",
        }
    }

    /// The `token_*` name it stands for.
    pub fn new_name(self) -> &'static str {
        match self {
            Legacy::Policies => "token_policies",
            Legacy::Ttl => "token_ttl",
            Legacy::MaxTtl => "token_max_ttl",
            Legacy::Period => "token_period",
            Legacy::NumUses => "token_num_uses",
            Legacy::BoundCidrs => "token_bound_cidrs",
        }
    }
}

/// The legacy names userpass accepts (as Vault's userpass).
pub const USERPASS_LEGACY: &[Legacy] = &[
    Legacy::Policies,
    Legacy::Ttl,
    Legacy::MaxTtl,
    Legacy::BoundCidrs,
];

/// The token parameters of one role or user. Durations are seconds; 0 means
/// "not set: the next layer decides" (see [`TokenParams::apply`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenParams {
    /// policies of the tokens made
    #[serde(default)]
    pub token_policies: Vec<String>,
    /// TTL of a new token (0: the method's, mount's or system default)
    #[serde(default)]
    pub token_ttl: u64,
    /// how long renewals may extend it (0: the method's, mount's or system max)
    #[serde(default)]
    pub token_max_ttl: u64,
    /// hard cap from creation, periodic tokens included (0: none)
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    /// periodic tokens: every renewal gives this much again (0: not periodic)
    #[serde(default)]
    pub token_period: u64,
    /// uses before the token dies (0: unlimited)
    #[serde(default)]
    pub token_num_uses: u64,
    /// networks the login and its token are allowed from (empty: anywhere)
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
    /// do not add the `default` policy
    #[serde(default)]
    pub token_no_default_policy: bool,
    /// the kind of token
    #[serde(default)]
    pub token_type: TokenType,
    /// legacy names the values were last written through (shown on read too)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy_names: Vec<String>,
}

/// The layers above a role's own TTLs, each 0 when unset: the method's own
/// defaults (e.g. userpass `config`), then the mount's tuning. The system's
/// limits are the token store's, applied when it makes the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TtlLayers {
    /// the method's default TTL
    pub method_ttl: u64,
    /// the method's max TTL
    pub method_max_ttl: u64,
    /// the mount's `default_lease_ttl`
    pub mount_default_ttl: u64,
    /// the mount's `max_lease_ttl`
    pub mount_max_ttl: u64,
}

impl TtlLayers {
    /// The method's defaults over a mount's tuning.
    pub fn new(method_ttl: u64, method_max_ttl: u64, mount: &MountConfig) -> TtlLayers {
        TtlLayers {
            method_ttl,
            method_max_ttl,
            mount_default_ttl: mount.default_lease_ttl,
            mount_max_ttl: mount.max_lease_ttl,
        }
    }
}

/// The smallest of the set (non-zero) values; 0 when none is set.
fn min_set(values: &[u64]) -> u64 {
    values.iter().copied().filter(|v| *v > 0).min().unwrap_or(0)
}

/// The first set (non-zero) value; 0 when none is set.
fn first_set(values: &[u64]) -> u64 {
    values.iter().copied().find(|v| *v > 0).unwrap_or(0)
}

impl TokenParams {
    /// Applies the fields present in `f` (absent ones keep their value: pass
    /// `TokenParams::default()` on create, the stored value on update), then
    /// validates the result. `legacy` lists the old names this method accepts.
    pub fn update(&mut self, f: &Fields<'_>, legacy: &[Legacy]) -> Result<(), LogicalError> {
        let mut next = self.clone();
        for name in [
            "token_policies",
            "token_ttl",
            "token_max_ttl",
            "token_period",
            "token_num_uses",
            "token_bound_cidrs",
        ] {
            let old = legacy.iter().find(|l| l.new_name() == name);
            let new_given = present(f, name);
            let old_given = old.is_some_and(|l| present(f, l.old_name()));
            let from = if new_given {
                name
            } else if old_given {
                old.map_or(name, |l| l.old_name())
            } else {
                continue;
            };
            next.set(name, from, f)?;
            if let Some(l) = old {
                // As Vault: the old name stays visible while writes use it.
                next.legacy_names.retain(|n| n != l.old_name());
                if old_given {
                    next.legacy_names.push(l.old_name().to_owned());
                }
            }
        }
        if let Some(v) = f.duration("token_explicit_max_ttl")? {
            next.token_explicit_max_ttl = v;
        }
        if let Some(v) = f.bool("token_no_default_policy")? {
            next.token_no_default_policy = v;
        }
        if let Some(v) = f.string("token_type")? {
            next.token_type = TokenType::parse("token_type", &v)?;
        }
        // OpenBao's binding of a token to the login's exact address; Coffer binds
        // through token_bound_cidrs instead, so asking for it is refused.
        if f.bool("token_strictly_bind_ip")? == Some(true) {
            return Err(LogicalError::invalid(
                "field 'token_strictly_bind_ip' is not supported; bind tokens with token_bound_cidrs",
            ));
        }
        next.legacy_names.sort();
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Sets field `name` from the request field `from` (its legacy name or itself).
    fn set(&mut self, name: &str, from: &str, f: &Fields<'_>) -> Result<(), LogicalError> {
        match name {
            "token_policies" => self.token_policies = parse_policies(from, f)?,
            "token_ttl" => self.token_ttl = f.duration(from)?.unwrap_or(0),
            "token_max_ttl" => self.token_max_ttl = f.duration(from)?.unwrap_or(0),
            "token_period" => self.token_period = f.duration(from)?.unwrap_or(0),
            "token_num_uses" => self.token_num_uses = parse_num_uses(from, f)?,
            "token_bound_cidrs" => self.token_bound_cidrs = parse_cidrs(from, f)?,
            _ => {}
        }
        Ok(())
    }

    /// Sets only the policies (a method's `.../policies` path).
    pub fn update_policies(
        &mut self,
        f: &Fields<'_>,
        legacy: &[Legacy],
    ) -> Result<(), LogicalError> {
        let only: Vec<Legacy> = legacy
            .iter()
            .copied()
            .filter(|l| *l == Legacy::Policies)
            .collect();
        let mut subset = Map::new();
        for key in ["token_policies", "policies"] {
            if let Some(v) = f.0.get(key) {
                subset.insert(key.to_owned(), v.clone());
            }
        }
        self.update(&Fields(&subset), &only)
    }

    /// The checks across fields (each single field was checked as it was read).
    pub fn validate(&self) -> Result<(), LogicalError> {
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(LogicalError::invalid(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        Ok(())
    }

    /// Adds every field to a read answer, in Vault's types (durations as
    /// seconds), with the legacy names the values were written through.
    pub fn fill_read(&self, data: &mut Map<String, Value>) {
        let fields = [
            ("token_policies", json!(self.token_policies)),
            ("token_ttl", json!(self.token_ttl)),
            ("token_max_ttl", json!(self.token_max_ttl)),
            ("token_explicit_max_ttl", json!(self.token_explicit_max_ttl)),
            ("token_period", json!(self.token_period)),
            ("token_num_uses", json!(self.token_num_uses)),
            ("token_bound_cidrs", json!(self.token_bound_cidrs)),
            (
                "token_no_default_policy",
                json!(self.token_no_default_policy),
            ),
            ("token_type", json!(self.token_type.as_str())),
            ("token_strictly_bind_ip", json!(false)),
        ];
        for (name, value) in fields {
            data.insert(name.to_owned(), value);
        }
        for name in &self.legacy_names {
            let shown = match name.as_str() {
                "policies" => json!(self.token_policies),
                "ttl" => json!(self.token_ttl),
                "max_ttl" => json!(self.token_max_ttl),
                "period" => json!(self.token_period),
                "num_uses" => json!(self.token_num_uses),
                "bound_cidrs" => json!(self.token_bound_cidrs),
                _ => continue,
            };
            data.insert(name.clone(), shown);
        }
    }

    /// Whether a login from `addr` is allowed by `token_bound_cidrs`.
    pub fn allows(&self, addr: Option<IpAddr>) -> bool {
        self.token_bound_cidrs.is_empty()
            || addr.is_some_and(|ip| {
                self.token_bound_cidrs
                    .iter()
                    .filter_map(|c| parse_cidr(c).ok())
                    .any(|net| net.contains(&ip))
            })
    }

    /// Fills in what these parameters decide about a login's token: policies,
    /// use limit, networks, period, and the TTLs, as Vault computes them:
    ///
    /// - TTL: the role's `token_ttl`, else the method's default, else the
    ///   mount's default (else the token store uses the system default);
    /// - cap: the smallest of the role's `token_max_ttl` (else the method's
    ///   max), the mount's `max_lease_ttl` and `token_explicit_max_ttl`; the
    ///   TTL never exceeds it, and it becomes the token's explicit max so that
    ///   no renewal passes it either (the token store has no other per-token
    ///   cap). The token store then applies the system max on top;
    /// - periodic (`token_period` > 0): the period, capped by the mount's max,
    ///   is the TTL and every renewal's increment; only the explicit max caps
    ///   a periodic token, as in Vault.
    pub fn apply(&self, params: &mut CreateParams, layers: TtlLayers) {
        params.policies = self.token_policies.clone();
        params.no_default_policy = self.token_no_default_policy;
        params.num_uses = self.token_num_uses;
        params.bound_cidrs = self.token_bound_cidrs.clone();
        params.renewable = true;
        let (ttl, cap, period) = self.plan(layers);
        params.ttl = (ttl > 0).then_some(ttl);
        params.explicit_max_ttl = cap;
        params.period = period;
    }

    /// `(ttl, cap, period)` of a login's token, before the system limits.
    pub fn plan(&self, layers: TtlLayers) -> (u64, u64, u64) {
        if self.token_period > 0 {
            let period = min_set(&[self.token_period, layers.mount_max_ttl]);
            let cap = self.token_explicit_max_ttl;
            return (min_set(&[period, cap]), cap, period);
        }
        let max = first_set(&[self.token_max_ttl, layers.method_max_ttl]);
        let cap = min_set(&[max, layers.mount_max_ttl, self.token_explicit_max_ttl]);
        let ttl = first_set(&[self.token_ttl, layers.method_ttl, layers.mount_default_ttl]);
        let ttl = if cap > 0 && ttl > cap { cap } else { ttl };
        (ttl, cap, 0)
    }
}

fn present(f: &Fields<'_>, key: &str) -> bool {
    !matches!(f.0.get(key), None | Some(Value::Null))
}

fn parse_policies(field: &str, f: &Fields<'_>) -> Result<Vec<String>, LogicalError> {
    let mut out: Vec<String> = Vec::new();
    for p in f.string_list(field)?.unwrap_or_default() {
        if p.is_empty() {
            continue;
        }
        if p.len() > 128 || p.chars().any(|c| c.is_control() || c == '/') {
            return Err(LogicalError::invalid(format!(
                "field '{field}': invalid policy name \"{}\"",
                p.escape_debug()
            )));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn parse_num_uses(field: &str, f: &Fields<'_>) -> Result<u64, LogicalError> {
    // Vault's wording for the common mistake, a negative count.
    if f.i64(field).ok().flatten().is_some_and(|n| n < 0) {
        return Err(LogicalError::invalid(format!(
            "'{field}' cannot be negative"
        )));
    }
    Ok(f.u64(field)?.unwrap_or(0))
}

fn parse_cidrs(field: &str, f: &Fields<'_>) -> Result<Vec<String>, LogicalError> {
    let list = f.string_list(field)?.unwrap_or_default();
    for c in &list {
        parse_cidr(c).map_err(|_| {
            LogicalError::invalid(format!(
                "field '{field}': invalid CIDR \"{}\"",
                c.escape_debug()
            ))
        })?;
    }
    Ok(list.into_iter().filter(|c| !c.is_empty()).collect())
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address.
pub fn parse_cidr(s: &str) -> Result<ipnet::IpNet, LogicalError> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| LogicalError::invalid(format!("invalid CIDR \"{}\"", s.escape_debug())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Value) -> Result<TokenParams, String> {
        let m = body.as_object().cloned().unwrap();
        let mut t = TokenParams::default();
        t.update(&Fields(&m), USERPASS_LEGACY)
            .map(|()| t)
            .map_err(|e| e.to_string())
    }

    /// Every bad form is refused with a message naming the field.
    fn refused(body: Value, field: &str) {
        match parsed(body.clone()) {
            Ok(t) => panic!("{body} was accepted: {t:?}"),
            Err(msg) => assert!(msg.contains(field), "{body}: '{msg}' does not name {field}"),
        }
    }

    #[test]
    fn defaults_are_vaults() {
        let t = parsed(json!({})).unwrap();
        assert_eq!(t, TokenParams::default());
        let mut data = Map::new();
        t.fill_read(&mut data);
        assert_eq!(
            Value::Object(data),
            json!({
                "token_policies": [], "token_ttl": 0, "token_max_ttl": 0,
                "token_explicit_max_ttl": 0, "token_period": 0, "token_num_uses": 0,
                "token_bound_cidrs": [], "token_no_default_policy": false,
                "token_type": "default", "token_strictly_bind_ip": false,
            })
        );
    }

    #[test]
    fn token_policies() {
        assert_eq!(
            parsed(json!({"token_policies": ["a", " b ", "a"]}))
                .unwrap()
                .token_policies,
            ["a", "b"]
        );
        assert_eq!(
            parsed(json!({"token_policies": "a, b,,c"}))
                .unwrap()
                .token_policies,
            ["a", "b", "c"]
        );
        assert!(parsed(json!({"token_policies": ""}))
            .unwrap()
            .token_policies
            .is_empty());
        refused(json!({"token_policies": [1]}), "token_policies");
        refused(json!({"token_policies": {"a": 1}}), "token_policies");
        refused(json!({"token_policies": ["a/b"]}), "token_policies");
        refused(
            json!({"token_policies": ["x".repeat(200)]}),
            "token_policies",
        );
    }

    #[test]
    fn legacy_policies() {
        let t = parsed(json!({"policies": "a,b"})).unwrap();
        assert_eq!(t.token_policies, ["a", "b"]);
        assert_eq!(t.legacy_names, ["policies"]);
        // The new name wins when both are given.
        let t = parsed(json!({"policies": "a", "token_policies": "b"})).unwrap();
        assert_eq!(t.token_policies, ["b"]);
        refused(json!({"policies": [true]}), "policies");
    }

    #[test]
    fn token_ttl() {
        for (form, secs) in [
            (json!("1h"), 3600),
            (json!("90m"), 5400),
            (json!("45s"), 45),
            (json!("120"), 120),
            (json!(300), 300),
            (json!(""), 0),
        ] {
            assert_eq!(
                parsed(json!({ "token_ttl": form })).unwrap().token_ttl,
                secs,
                "{form}"
            );
        }
        for bad in [
            json!("abc"),
            json!("-5s"),
            json!(-1),
            json!(true),
            json!([1]),
        ] {
            refused(json!({ "token_ttl": bad }), "token_ttl");
        }
    }

    #[test]
    fn legacy_ttl_and_max_ttl() {
        let t = parsed(json!({"ttl": "2h", "max_ttl": "3h"})).unwrap();
        assert_eq!((t.token_ttl, t.token_max_ttl), (7200, 10800));
        refused(json!({"ttl": "soon"}), "ttl");
        refused(json!({"max_ttl": -3}), "max_ttl");
    }

    #[test]
    fn token_max_ttl() {
        assert_eq!(
            parsed(json!({"token_max_ttl": "8h"}))
                .unwrap()
                .token_max_ttl,
            28_800
        );
        assert_eq!(
            parsed(json!({"token_max_ttl": 60})).unwrap().token_max_ttl,
            60
        );
        refused(json!({"token_max_ttl": "8 hours"}), "token_max_ttl");
        refused(json!({"token_max_ttl": {}}), "token_max_ttl");
        // Across fields: the TTL cannot be above the max.
        refused(
            json!({"token_ttl": "3h", "token_max_ttl": "1h"}),
            "token_max_ttl",
        );
    }

    #[test]
    fn token_explicit_max_ttl() {
        assert_eq!(
            parsed(json!({"token_explicit_max_ttl": "24h"}))
                .unwrap()
                .token_explicit_max_ttl,
            86_400
        );
        assert_eq!(
            parsed(json!({"token_explicit_max_ttl": "10"}))
                .unwrap()
                .token_explicit_max_ttl,
            10
        );
        refused(
            json!({"token_explicit_max_ttl": "1y"}),
            "token_explicit_max_ttl",
        );
        refused(
            json!({"token_explicit_max_ttl": -1}),
            "token_explicit_max_ttl",
        );
    }

    #[test]
    fn token_period() {
        assert_eq!(
            parsed(json!({"token_period": "5m"})).unwrap().token_period,
            300
        );
        assert_eq!(
            parsed(json!({"token_period": 86400})).unwrap().token_period,
            86400
        );
        refused(json!({"token_period": "-5"}), "token_period");
        refused(json!({"token_period": [1]}), "token_period");
    }

    #[test]
    fn token_num_uses() {
        assert_eq!(
            parsed(json!({"token_num_uses": 3})).unwrap().token_num_uses,
            3
        );
        assert_eq!(
            parsed(json!({"token_num_uses": "7"}))
                .unwrap()
                .token_num_uses,
            7
        );
        refused(json!({"token_num_uses": -1}), "token_num_uses");
        refused(json!({"token_num_uses": "-1"}), "token_num_uses");
        refused(json!({"token_num_uses": "many"}), "token_num_uses");
        refused(json!({"token_num_uses": 1.5}), "token_num_uses");
    }

    #[test]
    fn token_bound_cidrs() {
        let t =
            parsed(json!({"token_bound_cidrs": ["10.0.0.0/8", "::1/128", "192.0.2.7"]})).unwrap();
        assert_eq!(t.token_bound_cidrs, ["10.0.0.0/8", "::1/128", "192.0.2.7"]);
        assert!(t.allows(Some("10.1.2.3".parse().unwrap())));
        assert!(t.allows(Some("192.0.2.7".parse().unwrap())));
        assert!(!t.allows(Some("192.0.2.8".parse().unwrap())));
        assert!(!t.allows(None));
        assert_eq!(
            parsed(json!({"token_bound_cidrs": "10.0.0.0/8, 127.0.0.1"}))
                .unwrap()
                .token_bound_cidrs,
            ["10.0.0.0/8", "127.0.0.1"]
        );
        refused(json!({"token_bound_cidrs": ["foo"]}), "token_bound_cidrs");
        refused(
            json!({"token_bound_cidrs": "10.0.0.0/33"}),
            "token_bound_cidrs",
        );
        refused(json!({"token_bound_cidrs": 5}), "token_bound_cidrs");
        // The legacy name.
        let t = parsed(json!({"bound_cidrs": "127.0.0.0/8"})).unwrap();
        assert_eq!(t.token_bound_cidrs, ["127.0.0.0/8"]);
        refused(json!({"bound_cidrs": "nowhere"}), "bound_cidrs");
    }

    #[test]
    fn token_no_default_policy() {
        for (form, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!("1"), true),
            (json!(false), false),
            (json!("false"), false),
            (json!(0), false),
        ] {
            assert_eq!(
                parsed(json!({ "token_no_default_policy": form }))
                    .unwrap()
                    .token_no_default_policy,
                want,
                "{form}"
            );
        }
        refused(
            json!({"token_no_default_policy": "maybe"}),
            "token_no_default_policy",
        );
        refused(
            json!({"token_no_default_policy": [true]}),
            "token_no_default_policy",
        );
    }

    #[test]
    fn token_type() {
        for (form, want) in [
            ("service", TokenType::Service),
            ("default", TokenType::Default),
            ("Service", TokenType::Service),
            ("", TokenType::Default),
        ] {
            assert_eq!(
                parsed(json!({ "token_type": form })).unwrap().token_type,
                want,
                "{form}"
            );
        }
        match parsed(json!({"token_type": "batch"})) {
            Err(msg) => assert!(
                msg.contains("token_type") && msg.contains("batch tokens are not supported"),
                "{msg}"
            ),
            Ok(t) => panic!("batch accepted: {t:?}"),
        }
        refused(json!({"token_type": "weird"}), "token_type");
        refused(json!({"token_type": ["service"]}), "token_type");
    }

    #[test]
    fn token_strictly_bind_ip_is_refused_when_asked_for() {
        assert!(parsed(json!({"token_strictly_bind_ip": false})).is_ok());
        refused(
            json!({"token_strictly_bind_ip": true}),
            "token_strictly_bind_ip",
        );
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let m = json!({"token_ttl": "1h"}).as_object().cloned().unwrap();
        let mut t = TokenParams::default();
        t.update(&Fields(&m), USERPASS_LEGACY).unwrap();
        let bad = json!({"token_ttl": "2h", "token_num_uses": -1})
            .as_object()
            .cloned()
            .unwrap();
        assert!(t.update(&Fields(&bad), USERPASS_LEGACY).is_err());
        assert_eq!(t.token_ttl, 3600);
    }

    #[test]
    fn legacy_names_show_on_read_until_the_new_name_is_used() {
        let mut t = TokenParams::default();
        let m = json!({"policies": "a", "ttl": "1h"})
            .as_object()
            .cloned()
            .unwrap();
        t.update(&Fields(&m), USERPASS_LEGACY).unwrap();
        let mut data = Map::new();
        t.fill_read(&mut data);
        assert_eq!(data["policies"], json!(["a"]));
        assert_eq!(data["ttl"], json!(3600));
        assert!(!data.contains_key("max_ttl"));
        let m = json!({"token_policies": "b"}).as_object().cloned().unwrap();
        t.update(&Fields(&m), USERPASS_LEGACY).unwrap();
        let mut data = Map::new();
        t.fill_read(&mut data);
        assert!(!data.contains_key("policies"), "{data:?}");
        assert_eq!(data["token_policies"], json!(["b"]));
        assert_eq!(data["ttl"], json!(3600), "untouched by a policies write");
    }

    #[test]
    fn a_record_without_the_new_fields_reads() {
        // The layout userpass stored before this module existed.
        let old = json!({"token_policies": ["dev"], "token_ttl": 60, "token_max_ttl": 120, "token_bound_cidrs": []});
        let t: TokenParams = serde_json::from_value(old).unwrap();
        assert_eq!(t.token_policies, ["dev"]);
        assert_eq!((t.token_ttl, t.token_max_ttl), (60, 120));
        assert_eq!(t.token_type, TokenType::Default);
        assert_eq!(t.token_num_uses, 0);
    }

    const LAYERS: TtlLayers = TtlLayers {
        method_ttl: 3600,
        method_max_ttl: 8 * 3600,
        mount_default_ttl: 0,
        mount_max_ttl: 0,
    };

    #[test]
    fn ttl_falls_back_through_the_layers() {
        let t = TokenParams::default();
        assert_eq!(t.plan(LAYERS), (3600, 8 * 3600, 0));
        let none = TtlLayers::default();
        assert_eq!(t.plan(none), (0, 0, 0), "the token store decides");
        let mount_only = TtlLayers {
            mount_default_ttl: 600,
            mount_max_ttl: 1200,
            ..TtlLayers::default()
        };
        assert_eq!(t.plan(mount_only), (600, 1200, 0));
        let own = TokenParams {
            token_ttl: 120,
            token_max_ttl: 240,
            ..TokenParams::default()
        };
        assert_eq!(own.plan(LAYERS), (120, 240, 0));
    }

    #[test]
    fn ttl_is_capped_by_the_mount_and_the_explicit_max() {
        let long = TokenParams {
            token_ttl: 48 * 3600,
            token_max_ttl: 72 * 3600,
            ..TokenParams::default()
        };
        let tuned = TtlLayers {
            mount_max_ttl: 2 * 3600,
            ..LAYERS
        };
        assert_eq!(long.plan(tuned), (2 * 3600, 2 * 3600, 0));
        let explicit = TokenParams {
            token_explicit_max_ttl: 900,
            ..long.clone()
        };
        assert_eq!(explicit.plan(LAYERS), (900, 900, 0));
    }

    #[test]
    fn a_periodic_token_ignores_max_ttl_but_not_the_explicit_max() {
        let periodic = TokenParams {
            token_period: 1800,
            token_max_ttl: 60,
            ..TokenParams::default()
        };
        assert_eq!(periodic.plan(LAYERS), (1800, 0, 1800));
        let tuned = TtlLayers {
            mount_max_ttl: 600,
            ..LAYERS
        };
        assert_eq!(
            periodic.plan(tuned),
            (600, 0, 600),
            "period capped by the mount"
        );
        let explicit = TokenParams {
            token_explicit_max_ttl: 300,
            ..periodic
        };
        assert_eq!(explicit.plan(LAYERS), (300, 300, 1800));
    }

    #[test]
    fn apply_fills_the_create_params() {
        let t = parsed(json!({
            "token_policies": "dev,ops", "token_ttl": "10m", "token_num_uses": 4,
            "token_bound_cidrs": "10.0.0.0/8", "token_no_default_policy": true,
        }))
        .unwrap();
        let mut p = CreateParams::default();
        t.apply(&mut p, LAYERS);
        assert_eq!(p.policies, ["dev", "ops"]);
        assert_eq!(p.ttl, Some(600));
        assert_eq!(p.explicit_max_ttl, 8 * 3600);
        assert_eq!(p.num_uses, 4);
        assert_eq!(p.bound_cidrs, ["10.0.0.0/8"]);
        assert!(p.no_default_policy && p.renewable);
        assert_eq!(p.period, 0);
    }
}
