//! The mount types a server knows: a secrets engine or auth method is found
//! here by its type name, and nowhere else.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{AuthMethod, Engine, SecretsEngine};

/// Secrets engines and auth methods by type name (and alias).
#[derive(Default, Clone)]
pub struct Registry {
    secrets: BTreeMap<&'static str, Arc<dyn SecretsEngine>>,
    auth: BTreeMap<&'static str, Arc<dyn AuthMethod>>,
    /// type names claimed twice (the later claim is ignored); `engines.rs`'s
    /// test keeps this empty
    conflicts: Vec<&'static str>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("auth", &self.auth.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// Adds a secrets engine under its kind and aliases.
    pub fn with_secrets(mut self, engine: impl SecretsEngine) -> Registry {
        let engine: Arc<dyn SecretsEngine> = Arc::new(engine);
        for name in std::iter::once(engine.kind()).chain(engine.aliases().iter().copied()) {
            if self.secrets.contains_key(name) {
                self.conflicts.push(name);
            } else {
                self.secrets.insert(name, engine.clone());
            }
        }
        self
    }

    /// Adds an auth method under its kind.
    pub fn with_auth(mut self, method: impl AuthMethod) -> Registry {
        let kind = method.kind();
        if self.auth.contains_key(kind) {
            self.conflicts.push(kind);
        } else {
            self.auth.insert(kind, Arc::new(method));
        }
        self
    }

    /// Type names registered twice.
    pub fn conflicts(&self) -> &[&'static str] {
        &self.conflicts
    }

    /// The secrets engine for a type name or alias.
    pub fn secrets(&self, kind: &str) -> Option<&Arc<dyn SecretsEngine>> {
        self.secrets.get(kind)
    }

    /// The auth method for a type name.
    pub fn auth(&self, kind: &str) -> Option<&Arc<dyn AuthMethod>> {
        self.auth.get(kind)
    }

    /// Every secrets engine once (aliases skipped).
    pub fn all_secrets(&self) -> impl Iterator<Item = &Arc<dyn SecretsEngine>> {
        self.secrets
            .iter()
            .filter(|(name, e)| **name == e.kind())
            .map(|(_, e)| e)
    }

    /// Every auth method.
    pub fn all_auth(&self) -> impl Iterator<Item = &Arc<dyn AuthMethod>> {
        self.auth.values()
    }

    /// Every engine and method once, as plain engines.
    pub fn all(&self) -> impl Iterator<Item = &dyn Engine> {
        self.all_secrets()
            .map(|e| e.as_ref() as &dyn Engine)
            .chain(self.all_auth().map(|m| m.as_ref() as &dyn Engine))
    }
}
