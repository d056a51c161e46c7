//! Policies: Vault's HCL policy language, the ACL that a set of policies compiles
//! into, and the policy store. This is a security-critical module: a wrong answer
//! here grants access. It decides; it does not route requests or touch engines.
//!
//! Semantics follow Vault: the rule with the most specific matching path wins;
//! rules with the same path (from any of the token's policies) merge, and `deny`
//! on that path beats every other capability; `root` may do everything. Unlike
//! Vault, parameter constraints on a KV v2 write look inside its `data` object.

mod acl;
mod capabilities;
mod parse;
mod store;
pub mod template;

pub use acl::{Acl, Decision, ParamCheck};
pub use capabilities::Capabilities;
pub use parse::{parse_policy, Policy, PolicyParseError};
pub use store::{PolicyStore, DEFAULT_POLICY, TIER_POLICIES};
pub use template::Entity;

use std::collections::BTreeMap;

/// One `path "..." { ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// the path pattern (may end in `*`, may hold `+` segments and templates)
    pub pattern: String,
    /// granted capabilities
    pub capabilities: Capabilities,
    /// parameter name -> allowed values (empty list: any value; `*`: any name)
    pub allowed_parameters: BTreeMap<String, Vec<serde_json::Value>>,
    /// parameter name -> denied values (empty list: any value)
    pub denied_parameters: BTreeMap<String, Vec<serde_json::Value>>,
    /// parameters that must be present
    pub required_parameters: Vec<String>,
    /// unix seconds after which this rule grants nothing
    pub expiration: Option<i64>,
}

impl PathRule {
    /// A rule granting nothing yet.
    pub fn new(pattern: String) -> PathRule {
        PathRule {
            pattern,
            capabilities: Capabilities::NONE,
            allowed_parameters: BTreeMap::new(),
            denied_parameters: BTreeMap::new(),
            required_parameters: Vec::new(),
            expiration: None,
        }
    }
}
