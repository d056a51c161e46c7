//! The compiled form of a set of policies and the decision for one request.
//!
//! Exact paths sit in a hash map, prefix (`*`) paths in a byte trie walked once
//! along the request path, and `+` paths in a short list checked segment by
//! segment. Among matching rules the most specific wins, by Vault's ordering:
//! a later first wildcard, no trailing `*`, fewer `+`, longer, then
//! lexicographically larger. Rules with the same path merge; `deny` erases.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

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
    pub params: ParamCheck,
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
}

impl Group {
    fn live(&self, now: i64) -> Option<(Capabilities, ParamCheck)> {
        let mut caps = Capabilities::NONE;
        let mut params = ParamCheck::default();
        let mut any = false;
        for r in self
            .rules
            .iter()
            .filter(|r| r.expiration.is_none_or(|e| now < e))
        {
            any = true;
            caps = caps.union(r.capabilities);
            params.merge(r);
        }
        any.then_some((caps, params))
    }
}

/// A compiled set of policies.
#[derive(Debug, Default)]
pub struct Acl {
    root: bool,
    groups: Vec<Group>,
    exact: HashMap<String, u32>,
    trie: Vec<TrieNode>,
    wildcards: Vec<(Vec<String>, bool, u32)>,
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
            acl.groups.push(Group { pattern, rules });
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
    pub fn decide(&self, path: &str, now: i64) -> Decision {
        let winner = self.winning_group(path, now);
        let (capabilities, params) = winner.unwrap_or_default();
        Decision {
            capabilities,
            root: self.root,
            params,
        }
    }

    fn winning_group(&self, path: &str, now: i64) -> Option<(Capabilities, ParamCheck)> {
        if let Some(live) = self
            .exact
            .get(path)
            .and_then(|g| self.groups[*g as usize].live(now))
        {
            return Some(live);
        }
        let mut best: Option<(&str, (Capabilities, ParamCheck))> = None;
        // Longest live prefix rule: walk the trie along the path.
        let mut node = 0usize;
        let bytes = path.as_bytes();
        let mut i = 0;
        loop {
            if let Some(g) = self.trie[node].group {
                let group = &self.groups[g as usize];
                if let Some(live) = group.live(now) {
                    best = Some((group.pattern.as_str(), live));
                }
            }
            let Some(&b) = bytes.get(i) else { break };
            match self.trie[node].children.iter().find(|(c, _)| *c == b) {
                Some((_, next)) => node = *next as usize,
                None => break,
            }
            i += 1;
        }
        for (segments, is_prefix, g) in &self.wildcards {
            if !segments_match(segments, *is_prefix, path) {
                continue;
            }
            let group = &self.groups[*g as usize];
            if best
                .as_ref()
                .is_some_and(|(p, _)| priority(&group.pattern, p) != Ordering::Greater)
            {
                continue;
            }
            if let Some(live) = group.live(now) {
                best = Some((group.pattern.as_str(), live));
            }
        }
        best.map(|(_, live)| live)
    }

    /// Whether any rule grants something at or below `prefix` (used to decide
    /// whether a token may learn that a mount exists).
    pub fn grants_anything_under(&self, prefix: &str, now: i64) -> bool {
        self.root
            || self.groups.iter().any(|g| {
                let literal = g.pattern.split(['*', '+']).next().unwrap_or("");
                (g.pattern.starts_with(prefix) || prefix.starts_with(literal))
                    && g.live(now).is_some_and(|(c, _)| !c.is_empty())
            })
    }
}

fn segments_match(pattern: &[String], is_prefix: bool, path: &str) -> bool {
    let mut path_segs = path.split('/');
    let last = pattern.len().saturating_sub(1);
    for (i, p) in pattern.iter().enumerate() {
        let Some(seg) = path_segs.next() else {
            return false;
        };
        if is_prefix && i == last {
            return p == "+" || seg.starts_with(p.as_str());
        }
        if p != "+" && p != seg {
            return false;
        }
    }
    is_prefix || path_segs.next().is_none()
}

/// Vault's ordering of two matching patterns: `Greater` = `a` wins.
fn priority(a: &str, b: &str) -> Ordering {
    let first_wild = |p: &str| {
        p.split('/')
            .scan(0usize, |pos, seg| {
                let here = *pos;
                *pos += seg.len() + 1;
                Some(if seg == "+" { Some(here) } else { None })
            })
            .flatten()
            .next()
            .into_iter()
            .chain(p.find('*'))
            .min()
            .unwrap_or(usize::MAX)
    };
    let plus = |p: &str| p.split('/').filter(|s| *s == "+").count();
    first_wild(a)
        .cmp(&first_wild(b))
        .then_with(|| b.ends_with('*').cmp(&a.ends_with('*')))
        .then_with(|| plus(b).cmp(&plus(a)))
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests;
