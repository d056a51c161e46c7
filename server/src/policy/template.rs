//! Identity templates in policy paths: `{{identity.entity.id}}`,
//! `{{identity.entity.name}}` and `{{identity.entity.metadata.<key>}}`. A rule
//! whose template cannot be filled (no entity, no such metadata, or a value that
//! would change the path's shape) is left out rather than widened.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who a token's login authenticated as (a user, role or certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct Entity {
    /// stable id
    pub id: String,
    /// name (the username for userpass)
    pub name: String,
    /// metadata (e.g. `team`)
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Validates the inside of a `{{ }}`.
pub fn check(expr: &str) -> Result<(), String> {
    match expr {
        "identity.entity.id" | "identity.entity.name" => Ok(()),
        e if e
            .strip_prefix("identity.entity.metadata.")
            .is_some_and(|k| !k.is_empty()) =>
        {
            Ok(())
        }
        other => Err(format!("unsupported template \"{{{{{other}}}}}\"")),
    }
}

fn value<'a>(expr: &str, entity: &'a Entity) -> Option<&'a str> {
    match expr {
        "identity.entity.id" => Some(entity.id.as_str()),
        "identity.entity.name" => Some(entity.name.as_str()),
        e => e
            .strip_prefix("identity.entity.metadata.")
            .and_then(|k| entity.metadata.get(k))
            .map(String::as_str),
    }
}

/// Fills every template in `pattern`, or `None` when any cannot be filled safely.
pub fn render(pattern: &str, entity: Option<&Entity>) -> Option<String> {
    if !pattern.contains("{{") {
        return Some(pattern.to_owned());
    }
    let entity = entity?;
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let v = value(after[..end].trim(), entity)?;
        // A value must stay one literal path segment (or part of one).
        if v.is_empty() || v.contains(['/', '*', '+', '{', '}']) || v == "." || v == ".." {
            return None;
        }
        out.push_str(v);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Entity {
        Entity {
            id: "e-1".into(),
            name: "alice".into(),
            metadata: BTreeMap::from([
                ("team".into(), "payments".into()),
                ("bad".into(), "a/*".into()),
            ]),
        }
    }

    #[test]
    fn fills_name_id_and_metadata() {
        let e = alice();
        assert_eq!(
            render(
                "secret/data/teams/{{identity.entity.metadata.team}}/*",
                Some(&e)
            )
            .unwrap(),
            "secret/data/teams/payments/*"
        );
        assert_eq!(
            render(
                "u/{{identity.entity.name}}/{{ identity.entity.id }}",
                Some(&e)
            )
            .unwrap(),
            "u/alice/e-1"
        );
        assert_eq!(render("plain/*", None).unwrap(), "plain/*");
    }

    #[test]
    fn unfillable_or_unsafe_templates_drop_the_rule() {
        let e = alice();
        assert_eq!(
            render("t/{{identity.entity.metadata.missing}}", Some(&e)),
            None
        );
        assert_eq!(render("t/{{identity.entity.metadata.bad}}", Some(&e)), None);
        assert_eq!(render("t/{{identity.entity.name}}", None), None);
    }
}
