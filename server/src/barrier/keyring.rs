//! The keyring: the root key plus every data-encryption key by term. New values
//! are written under the highest term; older terms stay for reading.

use crate::clock::UnixTime;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::BarrierError;
use crate::crypto::random_array;

/// The active term and its install time, for `sys/key-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    /// active term
    pub term: u32,
    /// unix seconds
    pub install_time: i64,
}

struct TermKey {
    key: Zeroizing<[u8; 32]>,
    installed_at: i64,
}

/// Root key and data keys; zeroized on drop; never printed.
pub struct Keyring {
    root_key: Zeroizing<[u8; 32]>,
    terms: BTreeMap<u32, TermKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("terms", &self.terms.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Stored form (inside the root-key encryption). Versioned.
#[derive(Serialize, Deserialize)]
struct StoredKeyringV1 {
    version: u32,
    keys: Vec<StoredTermKeyV1>,
}

#[derive(Serialize, Deserialize)]
struct StoredTermKeyV1 {
    term: u32,
    key_hex: Zeroizing<String>,
    installed_at: i64,
}

impl Keyring {
    pub(super) fn new(root_key: &[u8; 32], now: UnixTime) -> Result<Keyring, BarrierError> {
        let mut terms = BTreeMap::new();
        terms.insert(
            1,
            TermKey {
                key: random_array::<32>()?,
                installed_at: now.secs(),
            },
        );
        Ok(Keyring {
            root_key: Zeroizing::new(*root_key),
            terms,
        })
    }

    pub(super) fn root_key(&self) -> &[u8; 32] {
        &self.root_key
    }

    pub(super) fn active(&self) -> (u32, &[u8; 32]) {
        match self.terms.last_key_value() {
            Some((term, k)) => (*term, &k.key),
            // A keyring is never built empty; term 0 fails to decrypt anything.
            None => (0, &self.root_key),
        }
    }

    pub(super) fn key(&self, term: u32) -> Option<&[u8; 32]> {
        self.terms.get(&term).map(|k| &*k.key)
    }

    pub(super) fn status(&self) -> KeyStatus {
        let (term, _) = self.active();
        KeyStatus {
            term,
            install_time: self.terms.get(&term).map_or(0, |k| k.installed_at),
        }
    }

    pub(super) fn rotated(&self, now: UnixTime) -> Result<Keyring, BarrierError> {
        let mut terms = BTreeMap::new();
        for (term, k) in &self.terms {
            terms.insert(
                *term,
                TermKey {
                    key: k.key.clone(),
                    installed_at: k.installed_at,
                },
            );
        }
        let next = self.active().0 + 1;
        terms.insert(
            next,
            TermKey {
                key: random_array::<32>()?,
                installed_at: now.secs(),
            },
        );
        Ok(Keyring {
            root_key: self.root_key.clone(),
            terms,
        })
    }

    pub(super) fn encode(&self) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let stored = StoredKeyringV1 {
            version: 1,
            keys: self
                .terms
                .iter()
                .map(|(term, k)| StoredTermKeyV1 {
                    term: *term,
                    key_hex: Zeroizing::new(hex::encode(k.key.as_ref())),
                    installed_at: k.installed_at,
                })
                .collect(),
        };
        serde_json::to_vec(&stored)
            .map(Zeroizing::new)
            .map_err(|_| BarrierError::CorruptKeyring)
    }

    pub(super) fn decode(root_key: &[u8; 32], plain: &[u8]) -> Result<Keyring, BarrierError> {
        let stored: StoredKeyringV1 =
            serde_json::from_slice(plain).map_err(|_| BarrierError::CorruptKeyring)?;
        if stored.version != 1 || stored.keys.is_empty() {
            return Err(BarrierError::CorruptKeyring);
        }
        let mut terms = BTreeMap::new();
        for k in stored.keys {
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(k.key_hex.as_bytes(), key.as_mut())
                .map_err(|_| BarrierError::CorruptKeyring)?;
            terms.insert(
                k.term,
                TermKey {
                    key,
                    installed_at: k.installed_at,
                },
            );
        }
        Ok(Keyring {
            root_key: Zeroizing::new(*root_key),
            terms,
        })
    }
}
