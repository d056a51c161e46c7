//! The capability set of a rule, as bit flags.

use crate::logical::Operation;

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// nothing
    pub const NONE: Capabilities = Capabilities(0);
    /// create
    pub const CREATE: Capabilities = Capabilities(1);
    /// read
    pub const READ: Capabilities = Capabilities(1 << 1);
    /// update
    pub const UPDATE: Capabilities = Capabilities(1 << 2);
    /// patch
    pub const PATCH: Capabilities = Capabilities(1 << 3);
    /// delete
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    /// list
    pub const LIST: Capabilities = Capabilities(1 << 5);
    /// sudo (root-protected paths)
    pub const SUDO: Capabilities = Capabilities(1 << 6);
    /// deny (beats everything on the same path)
    pub const DENY: Capabilities = Capabilities(1 << 7);

    const NAMES: [(&'static str, Capabilities); 8] = [
        ("create", Capabilities::CREATE),
        ("read", Capabilities::READ),
        ("update", Capabilities::UPDATE),
        ("patch", Capabilities::PATCH),
        ("delete", Capabilities::DELETE),
        ("list", Capabilities::LIST),
        ("sudo", Capabilities::SUDO),
        ("deny", Capabilities::DENY),
    ];

    /// Parses one capability name.
    pub fn parse(name: &str) -> Option<Capabilities> {
        Capabilities::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    /// The pre-0.6 `policy = "..."` shorthand.
    pub fn legacy(name: &str) -> Option<Capabilities> {
        let rw = Capabilities::READ.union(Capabilities::LIST);
        let write = rw
            .union(Capabilities::CREATE)
            .union(Capabilities::UPDATE)
            .union(Capabilities::DELETE)
            .union(Capabilities::PATCH);
        match name {
            "deny" => Some(Capabilities::DENY),
            "read" => Some(rw),
            "write" => Some(write),
            "sudo" => Some(write.union(Capabilities::SUDO)),
            _ => None,
        }
    }

    /// Union, where `deny` erases everything else.
    pub fn union(self, other: Capabilities) -> Capabilities {
        let all = Capabilities(self.0 | other.0);
        if all.contains(Capabilities::DENY) {
            Capabilities::DENY
        } else {
            all
        }
    }

    /// Whether every flag of `other` is present.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Whether nothing is granted.
    pub fn is_empty(self) -> bool {
        self.0 == 0 || self.contains(Capabilities::DENY)
    }

    /// The capability an operation needs.
    pub fn for_operation(op: Operation) -> Capabilities {
        match op {
            Operation::Read => Capabilities::READ,
            Operation::List => Capabilities::LIST,
            Operation::Create => Capabilities::CREATE,
            Operation::Update => Capabilities::UPDATE,
            Operation::Patch => Capabilities::PATCH,
            Operation::Delete => Capabilities::DELETE,
        }
    }

    /// Names in Vault's order (`["deny"]` when empty).
    pub fn names(self) -> Vec<&'static str> {
        if self.is_empty() {
            return vec!["deny"];
        }
        let mut names: Vec<&'static str> = Capabilities::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| *n)
            .collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_erases_everything_in_a_union() {
        let all = Capabilities::READ.union(Capabilities::UPDATE);
        assert!(all.contains(Capabilities::READ));
        let denied = all.union(Capabilities::DENY);
        assert!(!denied.contains(Capabilities::READ));
        assert_eq!(denied.names(), vec!["deny"]);
        assert_eq!(Capabilities::NONE.names(), vec!["deny"]);
        assert!(!Capabilities::READ.contains(Capabilities::NONE));
    }
}
