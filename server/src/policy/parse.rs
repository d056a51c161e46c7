//! Parses Vault's HCL policy language with a real HCL parser (hcl-rs) into
//! [`Policy`] values. Everything is checked before anything is returned, so a
//! policy is either wholly valid or refused with the line and the reason.

use std::collections::BTreeMap;

use hcl::{Expression, ObjectKey};

use super::{Capabilities, PathRule};

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// lower-case name
    pub name: String,
    /// the source text, as given
    pub raw: String,
    /// its path rules, in source order
    pub rules: Vec<PathRule>,
}

impl Policy {
    /// Whether any rule uses `{{...}}` identity templates.
    pub fn is_templated(&self) -> bool {
        self.rules.iter().any(|r| r.pattern.contains("{{"))
    }
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse policy: {0}")]
pub struct PolicyParseError(pub String);

fn err(raw: &str, label: Option<&str>, msg: impl std::fmt::Display) -> PolicyParseError {
    match label.and_then(|l| line_of(raw, l)) {
        Some(line) => PolicyParseError(format!(
            "line {line}: path \"{}\": {msg}",
            label.unwrap_or("")
        )),
        None => PolicyParseError(msg.to_string()),
    }
}

fn line_of(raw: &str, label: &str) -> Option<usize> {
    let needle = format!("\"{label}\"");
    raw.lines()
        .position(|l| l.contains("path") && l.contains(&needle))
        .map(|i| i + 1)
}

/// Parses `raw` as the policy `name`.
pub fn parse_policy(name: &str, raw: &str) -> Result<Policy, PolicyParseError> {
    if raw.trim_start().starts_with('{') {
        let hcl = json_to_hcl(raw)?;
        let mut policy = parse_policy(name, &hcl)?;
        policy.raw = raw.to_owned();
        return Ok(policy);
    }
    let body = hcl::parse(raw).map_err(|e| PolicyParseError(one_line(&e.to_string())))?;
    if let Some(attr) = body.attributes().next() {
        return Err(PolicyParseError(format!(
            "unexpected top-level attribute \"{}\" (a policy holds only path blocks)",
            attr.key()
        )));
    }
    let mut rules = Vec::new();
    for block in body.blocks() {
        if block.identifier() != "path" {
            return Err(PolicyParseError(format!(
                "unexpected block \"{}\" (a policy holds only path blocks)",
                block.identifier()
            )));
        }
        let [label] = block.labels() else {
            return Err(PolicyParseError(
                "a path block takes exactly one label: path \"secret/*\" { ... }".into(),
            ));
        };
        let pattern = label.as_str().trim_start_matches('/').to_owned();
        let l = Some(pattern.as_str());
        validate_pattern(&pattern).map_err(|m| err(raw, l, m))?;
        let mut rule = PathRule::new(pattern.clone());
        let mut seen_caps = false;
        for attr in block.body().attributes() {
            match attr.key() {
                "capabilities" => {
                    seen_caps = true;
                    for cap in string_list(attr.expr())
                        .map_err(|m| err(raw, l, format!("capabilities: {m}")))?
                    {
                        let c = Capabilities::parse(&cap)
                            .ok_or_else(|| err(raw, l, format!("invalid capability \"{cap}\"")))?;
                        rule.capabilities = rule.capabilities.union(c);
                    }
                }
                "policy" => {
                    // The pre-0.6 shorthand: policy = "read" | "write" | "deny" | "sudo".
                    seen_caps = true;
                    let Expression::String(s) = attr.expr() else {
                        return Err(err(raw, l, "policy must be a string"));
                    };
                    rule.capabilities = rule.capabilities.union(
                        Capabilities::legacy(s)
                            .ok_or_else(|| err(raw, l, format!("unknown policy \"{s}\"")))?,
                    );
                }
                "allowed_parameters" => {
                    rule.allowed_parameters = param_map(attr.expr())
                        .map_err(|m| err(raw, l, format!("allowed_parameters: {m}")))?;
                }
                "denied_parameters" => {
                    rule.denied_parameters = param_map(attr.expr())
                        .map_err(|m| err(raw, l, format!("denied_parameters: {m}")))?;
                }
                "required_parameters" => {
                    rule.required_parameters = string_list(attr.expr())
                        .map_err(|m| err(raw, l, format!("required_parameters: {m}")))?;
                }
                "expiration" => {
                    let Expression::String(s) = attr.expr() else {
                        return Err(err(
                            raw,
                            l,
                            "expiration must be an RFC 3339 timestamp string",
                        ));
                    };
                    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
                        .or_else(|_| humantime::parse_rfc3339(s))
                        .map_err(|_| {
                            err(
                                raw,
                                l,
                                format!("expiration \"{s}\" is not an RFC 3339 timestamp"),
                            )
                        })?;
                    let secs = t
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_err(|_| err(raw, l, "expiration before 1970"))?
                        .as_secs();
                    rule.expiration = Some(i64::try_from(secs).unwrap_or(i64::MAX));
                }
                other => return Err(err(raw, l, format!("unsupported attribute \"{other}\""))),
            }
        }
        if let Some(b) = block.body().blocks().next() {
            return Err(err(
                raw,
                l,
                format!("unexpected block \"{}\" inside a path", b.identifier()),
            ));
        }
        if !seen_caps {
            return Err(err(raw, l, "missing capabilities"));
        }
        rules.push(rule);
    }
    Ok(Policy {
        name: name.to_lowercase(),
        raw: raw.to_owned(),
        rules,
    })
}

/// HCL's JSON form (`{"path": {"p": {"capabilities": [...]}}}`), as hvac sends a
/// dict, rewritten as HCL text so that one parser checks everything.
fn json_to_hcl(raw: &str) -> Result<String, PolicyParseError> {
    let doc: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| PolicyParseError(format!("invalid JSON policy at line {}", e.line())))?;
    let paths = doc
        .get("path")
        .and_then(|p| p.as_object())
        .ok_or_else(|| PolicyParseError("a JSON policy needs a \"path\" object".into()))?;
    if doc.as_object().is_some_and(|o| o.len() > 1) {
        return Err(PolicyParseError("a policy holds only path blocks".into()));
    }
    let mut out = String::new();
    for (pattern, body) in paths {
        let attrs = body
            .as_object()
            .ok_or_else(|| PolicyParseError(format!("path \"{pattern}\" must be an object")))?;
        out.push_str(&format!(
            "path {} {{\n",
            serde_json::Value::String(pattern.clone())
        ));
        for (k, v) in attrs {
            if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(PolicyParseError(format!("unsupported attribute \"{k}\"")));
            }
            out.push_str(&format!("  {k} = {v}\n"));
        }
        out.push_str("}\n");
    }
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn validate_pattern(p: &str) -> Result<(), String> {
    if p.len() > 1024 {
        return Err("path is too long".into());
    }
    if let Some(i) = p.find('*') {
        if i != p.len() - 1 {
            return Err("'*' may only appear at the end of a path".into());
        }
    }
    for seg in p.strip_suffix('*').unwrap_or(p).split('/') {
        if seg.contains('+') && seg != "+" {
            return Err("'+' must stand for a whole path segment (e.g. secret/+/config)".into());
        }
    }
    let mut rest = p;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("unterminated '{{' template")?;
        super::template::check(after[..end].trim())?;
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err("'}}' without '{{'".into());
    }
    Ok(())
}

fn string_of(e: &Expression) -> Result<String, String> {
    match e {
        Expression::String(s) => Ok(s.clone()),
        Expression::Number(n) => Ok(n.to_string()),
        Expression::Bool(b) => Ok(b.to_string()),
        Expression::Variable(v) => Ok(v.to_string()),
        _ => Err("expected a string".into()),
    }
}

fn string_list(e: &Expression) -> Result<Vec<String>, String> {
    match e {
        Expression::Array(items) => items.iter().map(string_of).collect(),
        _ => Err("expected a list of strings".into()),
    }
}

fn param_map(e: &Expression) -> Result<BTreeMap<String, Vec<serde_json::Value>>, String> {
    let Expression::Object(obj) = e else {
        return Err("expected a map of parameter names to lists of values".into());
    };
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let key = match k {
            ObjectKey::Identifier(i) => i.to_string(),
            ObjectKey::Expression(Expression::String(s)) => s.clone(),
            _ => return Err("parameter names must be strings".into()),
        };
        let Expression::Array(items) = v else {
            return Err(format!("values of \"{key}\" must be a list"));
        };
        let values = items
            .iter()
            .map(|i| match i {
                Expression::String(s) => Ok(serde_json::Value::String(s.clone())),
                Expression::Bool(b) => Ok(serde_json::Value::Bool(*b)),
                Expression::Number(n) => {
                    serde_json::to_value(n).map_err(|_| "bad number".to_owned())
                }
                Expression::Null => Ok(serde_json::Value::Null),
                _ => Err(format!(
                    "values of \"{key}\" must be strings, numbers or booleans"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(key, values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_vault_syntax() {
        let p = parse_policy(
            "Team",
            r#"
# comment
path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}
path "secret/+/shared" {
  capabilities = ["read"]
  allowed_parameters = { "env" = ["dev", "stage-*"], "*" = [] }
  denied_parameters = { "admin" = [] }
  required_parameters = ["env"]
}
path "sys/seal" { capabilities = ["deny"] }
path "old/path" { policy = "write" }
path "tmp/*" {
  capabilities = ["read"]
  expiration = "2030-01-01T00:00:00Z"
}
"#,
        )
        .unwrap();
        assert_eq!(p.name, "team");
        assert_eq!(p.rules.len(), 5);
        assert!(p.rules[0].capabilities.contains(Capabilities::PATCH));
        assert_eq!(p.rules[1].required_parameters, vec!["env"]);
        assert_eq!(p.rules[1].allowed_parameters["env"].len(), 2);
        assert!(p.rules[2].capabilities.contains(Capabilities::DENY));
        assert!(p.rules[3].capabilities.contains(Capabilities::UPDATE));
        assert_eq!(p.rules[4].expiration, Some(1_893_456_000));
    }

    #[test]
    fn json_policies_parse_like_hcl() {
        let p = parse_policy(
            "j",
            r#"{"path": {"secret/data/json/*": {"capabilities": ["read", "list"], "allowed_parameters": {"env": ["dev"]}}}}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 1);
        assert!(p.rules[0].capabilities.contains(Capabilities::LIST));
        assert_eq!(p.rules[0].allowed_parameters["env"].len(), 1);
        assert!(p.raw.starts_with('{'));
        assert!(parse_policy("j", r#"{"path": {"a": {"capabilities": ["reed"]}}}"#).is_err());
        assert!(parse_policy(
            "j",
            r#"{"path": {"a": {"capabilities": ["read"], "x y": 1}}}"#
        )
        .is_err());
    }

    #[test]
    fn errors_name_the_line_and_reason() {
        let e = parse_policy("x", "path \"a/*\" {\n  capabilities = [\"read\"]\n}\npath \"b\" {\n  capabilities = [\"reed\"]\n}\n").unwrap_err();
        assert!(e.0.contains("line 4") && e.0.contains("reed"), "{e}");
        let e = parse_policy("x", "path \"a\" { capabilities = [\"read\"] ").unwrap_err();
        assert!(e.0.contains("line") || e.0.contains("expected"), "{e}");
        assert!(parse_policy("x", "path \"a*b\" { capabilities = [\"read\"] }").is_err());
        assert!(parse_policy("x", "path \"a/b+/c\" { capabilities = [\"read\"] }").is_err());
        assert!(parse_policy("x", "path \"a\" { }").is_err());
        assert!(parse_policy("x", "path \"a\" { capabilities = [\"read\"]\n wat = 1 }").is_err());
        assert!(parse_policy("x", "name = \"x\"").is_err());
        assert!(parse_policy(
            "x",
            "path \"{{identity.entity.nope}}/*\" { capabilities = [\"read\"] }"
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_policy("p", &s);
        }

        #[test]
        fn parser_never_panics_on_policy_like_input(
            path in "[a-z/+*{}.]{0,20}",
            caps in proptest::collection::vec("[a-z]{0,8}", 0..4),
        ) {
            let text = format!("path \"{path}\" {{ capabilities = {caps:?} }}");
            let _ = parse_policy("p", &text);
        }
    }
}
