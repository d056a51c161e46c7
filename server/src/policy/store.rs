//! The policy store: policies behind the barrier at `core/policy/<name>`, parsed
//! once and held in memory, and a cache of compiled ACLs per set of policy names
//! (plus the entity, for templated policies), emptied whenever a policy changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::acl::Acl;
use super::parse::{parse_policy, Policy};
use super::template::Entity;
use crate::barrier::Barrier;
use crate::logical::LogicalError;

const PREFIX: &str = "core/policy/";
/// Compiled ACLs kept before the cache is emptied (bounded memory).
const ACL_CACHE_MAX: usize = 10_000;

/// Attached to every token unless `no_default_policy`: a token may look up, renew
/// and revoke itself, look up and renew the leases it created, ask what it may
/// do, use its own cubbyhole (which no other token can reach, whatever its
/// policies say), and reach the break-glass paths whose handlers check who it is.
pub const DEFAULT_POLICY: &str = r#"# Every token gets this policy unless it was created with no_default_policy.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
path "sys/capabilities-self" {
  capabilities = ["update"]
}
# Leases: only those this token created, unless it also has sudo on
# sys/leases/lookup/<id> (the handler checks that).
path "sys/leases/lookup" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "cubbyhole/" {
  capabilities = ["list"]
}
# Break-glass: the handlers decide who may act on a grant (its requester, or
# holders of update on sys/breakglass/approve, with a fresh TOTP code where
# they approve or deny); asking needs sys/breakglass/request (developer tier).
path "sys/breakglass/" {
  capabilities = ["list"]
}
path "sys/breakglass/bg-*" {
  capabilities = ["read", "update"]
}
"#;

/// The three tiers, written at init (and in dev mode) and editable afterwards.
pub const TIER_POLICIES: [(&str, &str); 3] = [
    ("read-only", include_str!("../../../policies/read-only.hcl")),
    ("developer", include_str!("../../../policies/developer.hcl")),
    (
        "emergency-admin",
        include_str!("../../../policies/emergency-admin.hcl"),
    ),
];

#[derive(Serialize, Deserialize)]
struct StoredPolicyV1 {
    name: String,
    policy: String,
}

/// Policies of an unsealed node.
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    policies: RwLock<HashMap<String, Arc<Policy>>>,
    acls: Mutex<HashMap<AclKey, Arc<Acl>>>,
}

/// What a compiled ACL depends on, kept as structured values: any joined text
/// would let one list of names spell another (`["a\nb"]` vs `["a", "b"]`).
#[derive(PartialEq, Eq, Hash)]
struct AclKey {
    names: Vec<String>,
    /// only for sets with templated policies, whose rules depend on it
    entity: Option<Entity>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyStore { .. }")
    }
}

/// Refuses names that cannot be stored or addressed, and names not in their
/// canonical (lower-case) form: Vault folds policy names, and the core has
/// already folded the one in the request path before authorising it
/// (`core/canonical.rs`). Rewriting it here would write another policy than
/// the one the ACL decided on.
pub fn validate_name(name: &str) -> Result<String, LogicalError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '@')
        })
    {
        return Err(LogicalError::invalid(
            "policy names are 1-128 characters of letters, digits, '-', '_', '.' and '@' (folded to lower case)",
        ));
    }
    Ok(name.to_owned())
}

impl PolicyStore {
    /// Loads every stored policy.
    pub async fn open(barrier: Arc<Barrier>) -> Result<PolicyStore, LogicalError> {
        let mut policies = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = barrier.list(PREFIX, after.as_deref(), 500).await?;
            let Some(last) = page.keys.last().cloned() else {
                break;
            };
            for key in &page.keys {
                let Some(raw) = barrier.get(key).await? else {
                    continue;
                };
                let stored: StoredPolicyV1 =
                    serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
                let policy = parse_policy(&stored.name, &stored.policy)
                    .map_err(|_| LogicalError::Corrupt)?;
                policies.insert(policy.name.clone(), Arc::new(policy));
            }
            after = Some(last);
        }
        Ok(PolicyStore {
            barrier,
            policies: RwLock::new(policies),
            acls: Mutex::new(HashMap::new()),
        })
    }

    /// Writes `default` and the tier policies where they do not exist yet.
    pub async fn install_builtin(&self) -> Result<(), LogicalError> {
        let mut wanted = vec![("default", DEFAULT_POLICY)];
        wanted.extend(TIER_POLICIES);
        for (name, text) in wanted {
            if self.get(name).is_none() {
                self.put(name, text).await?;
            }
        }
        Ok(())
    }

    /// A policy by name (`root` is not stored; it is implicit).
    pub fn get(&self, name: &str) -> Option<Arc<Policy>> {
        crate::sync::read(&self.policies)
            .get(&name.to_lowercase())
            .cloned()
    }

    /// Every policy name, sorted, including `root`.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = crate::sync::read(&self.policies).keys().cloned().collect();
        names.push("root".into());
        names.sort();
        names
    }

    /// Validates, stores and activates a policy.
    pub async fn put(&self, name: &str, text: &str) -> Result<(), LogicalError> {
        let name = validate_name(name)?;
        if name == "root" {
            return Err(LogicalError::invalid("cannot update \"root\" policy"));
        }
        let policy = parse_policy(&name, text).map_err(|e| LogicalError::invalid(e.to_string()))?;
        let stored = StoredPolicyV1 {
            name: name.clone(),
            policy: text.to_owned(),
        };
        let raw = serde_json::to_vec(&stored).map_err(|_| LogicalError::Corrupt)?;
        self.barrier.put(&format!("{PREFIX}{name}"), &raw).await?;
        crate::sync::write(&self.policies).insert(name, Arc::new(policy));
        self.invalidate();
        Ok(())
    }

    /// Deletes a policy (not `root` or `default`).
    pub async fn delete(&self, name: &str) -> Result<(), LogicalError> {
        let name = validate_name(name)?;
        if name == "root" {
            return Err(LogicalError::invalid("cannot delete \"root\" policy"));
        }
        if name == "default" {
            return Err(LogicalError::invalid("cannot delete default policy"));
        }
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        crate::sync::write(&self.policies).remove(&name);
        self.invalidate();
        Ok(())
    }

    /// Empties the compiled-ACL cache (a policy changed here or on another node).
    pub fn invalidate(&self) {
        crate::sync::lock(&self.acls).clear();
    }

    /// The compiled ACL for a token's policies (unknown names grant nothing).
    pub fn acl(&self, names: &[String], entity: Option<&Entity>) -> Arc<Acl> {
        let root = names.iter().any(|n| n == "root");
        let policies: Vec<Arc<Policy>> = names.iter().filter_map(|n| self.get(n)).collect();
        let templated = policies.iter().any(|p| p.is_templated());
        let key = AclKey {
            names: names.to_vec(),
            entity: entity.filter(|_| templated).cloned(),
        };
        if let Some(hit) = crate::sync::lock(&self.acls).get(&key).cloned() {
            return hit;
        }
        let acl = Arc::new(Acl::compile(
            policies.iter().map(|p| p.as_ref()),
            root,
            entity,
        ));
        {
            let mut cache = crate::sync::lock(&self.acls);
            if cache.len() >= ACL_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, acl.clone());
        }
        acl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_and_tier_policies_parse() {
        parse_policy("default", DEFAULT_POLICY).unwrap();
        for (name, text) in TIER_POLICIES {
            let p = parse_policy(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.rules.is_empty(), "{name}");
        }
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(validate_name("team-a").unwrap(), "team-a");
        // Folding is the core's job, before the decision; here it is refused.
        assert!(validate_name("Team-A").is_err());
        assert!(validate_name(" team-a").is_err());
        assert!(validate_name("team-a\n").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("").is_err());
    }

    #[tokio::test]
    async fn acl_cache_keys_cannot_collide() {
        use crate::storage::{MigrationMode, Storage};
        let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(storage));
        barrier
            .initialize(
                &crate::crypto::random_array::<32>().unwrap(),
                crate::clock::UnixTime::from_secs(0),
            )
            .await
            .unwrap();
        let store = PolicyStore::open(barrier).await.unwrap();
        store
            .put("a", r#"path "secret/a" { capabilities = ["read"] }"#)
            .await
            .unwrap();
        store
            .put("b", r#"path "secret/b" { capabilities = ["read"] }"#)
            .await
            .unwrap();
        let both = store.acl(&["a".into(), "b".into()], None);
        assert!(both.grants_anything_under("secret/b", crate::clock::UnixTime::from_secs(0)));
        // A token may carry a policy name that no stored policy has; its set must
        // not be taken for a different set that joins to the same text.
        let odd = store.acl(&["a\nb".into()], None);
        assert!(
            !odd.grants_anything_under("secret/", crate::clock::UnixTime::from_secs(0)),
            "'a\\nb' got the ACL of [a, b]"
        );
        let entity = Entity {
            id: "e".into(),
            name: "n".into(),
            metadata: Default::default(),
        };
        store
            .put(
                "t",
                r#"path "secret/{{identity.entity.name}}" { capabilities = ["read"] }"#,
            )
            .await
            .unwrap();
        let with = store.acl(&["t".into()], Some(&entity));
        assert!(with.grants_anything_under("secret/n", crate::clock::UnixTime::from_secs(0)));
        let spelled = format!("t\u{1}{}", serde_json::to_string(&entity).unwrap());
        let odd = store.acl(&[spelled], None);
        assert!(!odd.grants_anything_under("secret/", crate::clock::UnixTime::from_secs(0)));
    }
}
