//! The compiled form of a set of policies and the decision for one request.
//!
//! Exact paths sit in a hash map, prefix (`*`) paths in a byte trie walked once
//! along the request path, and `+` paths in a short list checked segment by
//! segment. Among matching rules the most specific wins, by Vault's ordering:
//! a later first wildcard, no trailing `*`, fewer `+`, longer, then
//! lexicographically larger. Rules with the same path merge; `deny` erases.

use crate::clock::UnixTime;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::template::{render, Entity};
use super::{Capabilities, PathRule, Policy};

/// What the ACL says about one path.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// effective capabilities (root: all)
    pub capabilities: Capabilities,
    /// whether the token holds `root`
    pub root: bool,
    /// merged parameter constraints of the winning rule
    pub params: Arc<ParamCheck>,
}

impl Decision {
    /// Whether `needed` is granted.
    pub fn allows(&self, needed: Capabilities) -> bool {
        self.root || self.capabilities.contains(needed)
    }

    /// Capability names as `sys/capabilities*` answer them.
    pub fn names(&self) -> Vec<&'static str> {
        if self.root {
            vec!["root"]
        } else {
            self.capabilities.names()
        }
    }
}

/// Merged parameter constraints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamCheck {
    allowed: BTreeMap<String, Vec<Value>>,
    denied: BTreeMap<String, Vec<Value>>,
    required: Vec<String>,
}

impl ParamCheck {
    fn merge(&mut self, rule: &PathRule) {
        merge_values(&mut self.allowed, &rule.allowed_parameters);
        merge_values(&mut self.denied, &rule.denied_parameters);
        for r in &rule.required_parameters {
            if !self.required.contains(r) {
                self.required.push(r.clone());
            }
        }
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty() && self.denied.is_empty() && self.required.is_empty()
    }

    /// Checks request parameters; `Err` names the offending parameter.
    pub fn check(&self, params: &Map<String, Value>) -> Result<(), String> {
        let any_denied = self.denied.get("*").is_some_and(Vec::is_empty);
        for (k, v) in params {
            if any_denied {
                return Err(format!("parameter \"{k}\" is denied"));
            }
            if let Some(values) = self.denied.get(k).or_else(|| self.denied.get("*")) {
                if values.is_empty() || values.iter().any(|p| value_matches(p, v)) {
                    return Err(format!("parameter \"{k}\" (or its value) is denied"));
                }
            }
            if !self.allowed.is_empty() {
                match self.allowed.get(k).or_else(|| self.allowed.get("*")) {
                    None => return Err(format!("parameter \"{k}\" is not allowed")),
                    Some(values)
                        if !values.is_empty() && !values.iter().any(|p| value_matches(p, v)) =>
                    {
                        return Err(format!("value of parameter \"{k}\" is not allowed"));
                    }
                    Some(_) => {}
                }
            }
        }
        for r in &self.required {
            if !params.contains_key(r) {
                return Err(format!("parameter \"{r}\" is required"));
            }
        }
        Ok(())
    }
}

fn merge_values(into: &mut BTreeMap<String, Vec<Value>>, from: &BTreeMap<String, Vec<Value>>) {
    for (k, vs) in from {
        match into.get_mut(k) {
            None => {
                into.insert(k.clone(), vs.clone());
            }
            // An empty list means "any value", which absorbs any list.
            Some(existing) if existing.is_empty() => {}
            Some(existing) if vs.is_empty() => existing.clear(),
            Some(existing) => existing.extend(vs.iter().cloned()),
        }
    }
}

/// `*` at the start or end of a string pattern globs; anything else is equality.
fn value_matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::String(p), Value::String(v)) => glob(p, v),
        (Value::String(p), other) if !other.is_object() && !other.is_array() => {
            glob(p, &other.to_string())
        }
        (p, v) => p == v,
    }
}

fn glob(p: &str, v: &str) -> bool {
    match (p.strip_prefix('*'), p.strip_suffix('*')) {
        _ if p == "*" => true,
        (Some(rest), _) if rest.ends_with('*') => v.contains(&rest[..rest.len() - 1]),
        (Some(suffix), _) => v.ends_with(suffix),
        (None, Some(prefix)) => v.starts_with(prefix),
        (None, None) => p == v,
    }
}

#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, u32)>,
    group: Option<u32>,
}

/// A group of rules that share one (rendered) pattern.
#[derive(Debug)]
struct Group {
    pattern: String,
    rules: Vec<PathRule>,
    /// Vault's specificity key, precomputed
    rank: Rank,
    /// the merge of all rules, when none of them expires (the common case)
    fixed: Option<(Capabilities, Arc<ParamCheck>)>,
}

/// (first wildcard position, no trailing `*`, fewer `+`, length): larger wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank(usize, bool, std::cmp::Reverse<usize>, usize);

impl Group {
    fn new(pattern: String, rules: Vec<PathRule>) -> Group {
        let rank = rank_of(&pattern);
        let fixed = rules
            .iter()
            .all(|r| r.expiration.is_none())
            .then(|| merge(rules.iter()));
        Group {
            pattern,
            rules,
            rank,
            fixed,
        }
    }

    fn live(&self, now: UnixTime) -> Option<(Capabilities, Arc<ParamCheck>)> {
        if let Some(fixed) = &self.fixed {
            return Some(fixed.clone());
        }
        let mut live = self
            .rules
            .iter()
            .filter(|r| r.expiration.is_none_or(|e| now.secs() < e))
            .peekable();
        live.peek()?;
        Some(merge(live))
    }
}

fn merge<'a>(rules: impl Iterator<Item = &'a PathRule>) -> (Capabilities, Arc<ParamCheck>) {
    let mut caps = Capabilities::NONE;
    let mut params = ParamCheck::default();
    for r in rules {
        caps = caps.union(r.capabilities);
        params.merge(r);
    }
    (caps, Arc::new(params))
}

/// A compiled set of policies.
#[derive(Debug, Default)]
pub struct Acl {
    root: bool,
    groups: Vec<Group>,
    exact: HashMap<String, u32>,
    trie: Vec<TrieNode>,
    wildcards: Vec<(Vec<String>, bool, u32)>,
    empty_params: Arc<ParamCheck>,
}

impl Acl {
    /// Compiles `policies` for a token whose login was `entity`.
    pub fn compile<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        root: bool,
        entity: Option<&Entity>,
    ) -> Acl {
        let mut by_pattern: BTreeMap<String, Vec<PathRule>> = BTreeMap::new();
        for policy in policies {
            for rule in &policy.rules {
                if let Some(pattern) = render(&rule.pattern, entity) {
                    let mut r = rule.clone();
                    r.pattern = pattern.clone();
                    by_pattern.entry(pattern).or_default().push(r);
                }
            }
        }
        let mut acl = Acl {
            root,
            trie: vec![TrieNode::default()],
            ..Acl::default()
        };
        for (pattern, rules) in by_pattern {
            let id = acl.groups.len() as u32;
            let has_plus = pattern.split('/').any(|s| s == "+");
            let is_prefix = pattern.ends_with('*');
            if has_plus {
                let body = pattern.trim_end_matches('*');
                acl.wildcards
                    .push((body.split('/').map(str::to_owned).collect(), is_prefix, id));
            } else if is_prefix {
                acl.insert_prefix(pattern.trim_end_matches('*').as_bytes(), id);
            } else {
                acl.exact.insert(pattern.clone(), id);
            }
            acl.groups.push(Group::new(pattern, rules));
        }
        acl
    }

    fn insert_prefix(&mut self, key: &[u8], id: u32) {
        let mut node = 0usize;
        for &b in key {
            let found = self.trie[node]
                .children
                .iter()
                .find(|(c, _)| *c == b)
                .map(|(_, n)| *n as usize);
            node = match found {
                Some(n) => n,
                None => {
                    self.trie.push(TrieNode::default());
                    let n = self.trie.len() - 1;
                    self.trie[node].children.push((b, n as u32));
                    n
                }
            };
        }
        self.trie[node].group = Some(id);
    }

    /// The decision for `path` at time `now`.
    pub fn decide(&self, path: &str, now: UnixTime) -> Decision {
        let (capabilities, params) = self
            .winning_group(path, now)
            .unwrap_or_else(|| (Capabilities::NONE, self.empty_params.clone()));
        Decision {
            capabilities,
            root: self.root,
            params,
        }
    }

    fn winning_group(&self, path: &str, now: UnixTime) -> Option<(Capabilities, Arc<ParamCheck>)> {
        if let Some(live) = self
            .exact
            .get(path)
            .and_then(|g| self.groups[*g as usize].live(now))
        {
            return Some(live);
        }
        // Prefix rules along the path, deepest (most specific) first.
        let mut on_path: Vec<u32> = Vec::new();
        let mut node = 0usize;
        for &b in path.as_bytes() {
            if let Some(g) = self.trie[node].group {
                on_path.push(g);
            }
            match self.trie[node].children.iter().find(|(c, _)| *c == b) {
                Some((_, next)) => node = *next as usize,
                None => {
                    node = usize::MAX;
                    break;
                }
            }
        }
        if let Some(g) = self.trie.get(node).and_then(|n| n.group) {
            on_path.push(g);
        }
        let mut best: Option<(&Group, (Capabilities, Arc<ParamCheck>))> =
            on_path.iter().rev().find_map(|g| {
                let group = &self.groups[*g as usize];
                group.live(now).map(|live| (group, live))
            });
        if !self.wildcards.is_empty() {
            let segments: Vec<&str> = path.split('/').collect();
            for (pattern, is_prefix, g) in &self.wildcards {
                let group = &self.groups[*g as usize];
                if best
                    .as_ref()
                    .is_some_and(|(b, _)| priority(group, b) != Ordering::Greater)
                {
                    continue;
                }
                if !segments_match(pattern, *is_prefix, &segments) {
                    continue;
                }
                if let Some(live) = group.live(now) {
                    best = Some((group, live));
                }
            }
        }
        best.map(|(_, live)| live)
    }

    /// Whether any rule grants something at or below `prefix` (used to decide
    /// whether a token may learn that a mount exists).
    pub fn grants_anything_under(&self, prefix: &str, now: UnixTime) -> bool {
        self.root
            || self.groups.iter().any(|g| {
                let literal = g.pattern.split(['*', '+']).next().unwrap_or("");
                (g.pattern.starts_with(prefix) || prefix.starts_with(literal))
                    && g.live(now).is_some_and(|(c, _)| !c.is_empty())
            })
    }
}

fn segments_match(pattern: &[String], is_prefix: bool, path: &[&str]) -> bool {
    if path.len() < pattern.len() || (!is_prefix && path.len() != pattern.len()) {
        return false;
    }
    let last = pattern.len().saturating_sub(1);
    pattern.iter().zip(path).enumerate().all(|(i, (p, seg))| {
        p == "+" || (is_prefix && i == last && seg.starts_with(p.as_str())) || p == seg
    })
}

fn rank_of(p: &str) -> Rank {
    let mut first_wild = p.find('*').unwrap_or(usize::MAX);
    let mut pos = 0usize;
    let mut plus = 0usize;
    for seg in p.split('/') {
        if seg == "+" || seg == "+*" {
            first_wild = first_wild.min(pos);
            plus += 1;
        }
        pos += seg.len() + 1;
    }
    Rank(
        first_wild,
        !p.ends_with('*'),
        std::cmp::Reverse(plus),
        p.len(),
    )
}

/// Vault's ordering of two matching patterns: `Greater` = `a` wins. In order: a
/// later first wildcard, no trailing `*`, fewer `+`, longer, lexicographically larger.
fn priority(a: &Group, b: &Group) -> Ordering {
    a.rank.cmp(&b.rank).then_with(|| a.pattern.cmp(&b.pattern))
}

#[cfg(test)]
mod tests;
