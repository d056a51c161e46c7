//! The barrier: every value that crosses it into storage is encrypted with
//! AES-256-GCM under the keyring's active key, with the storage key as associated
//! data, so a ciphertext copied to another key (or edited) fails to decrypt.
//!
//! The keyring itself is stored at [`KEYRING_PATH`], encrypted under the root key
//! that the seal reconstructs from key shares. Sealing drops (and so zeroizes) the
//! keyring. The barrier does not know about secrets engines, tokens or policy.
//!
//! Ciphertext layout: `version (1) ‖ term (4, big-endian) ‖ nonce (12) ‖ sealed`.

mod keyring;
mod view;

use crate::clock::UnixTime;
use std::sync::{Arc, RwLock};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

pub use keyring::{KeyStatus, Keyring};
pub use view::View;

use crate::crypto::{random_array, RngError};
use crate::storage::{Expect, ListPage, Storage, StorageError, WriteOp};

/// Where the keyring lives (encrypted under the root key).
pub const KEYRING_PATH: &str = "core/keyring";
/// Layout version of a barrier ciphertext.
const CIPHERTEXT_VERSION: u8 = 1;
/// The pseudo-term of values encrypted directly under the root key.
const ROOT_KEY_TERM: u32 = 0;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// Errors from the barrier.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The keyring is not loaded.
    #[error("the barrier is sealed")]
    Sealed,
    /// The root key did not decrypt the keyring.
    #[error("the unseal key is not valid for this server")]
    InvalidRootKey,
    /// A stored value did not authenticate under its key and path.
    #[error("a stored value failed to decrypt (tampered, moved or corrupt)")]
    Decrypt,
    /// A ciphertext names a key term that the keyring does not hold.
    #[error("a stored value was encrypted with an unknown key term")]
    UnknownTerm,
    /// The keyring already exists (init twice).
    #[error("the barrier is already initialized")]
    AlreadyInitialized,
    /// Encoding of the keyring failed.
    #[error("the keyring is corrupt")]
    CorruptKeyring,
    /// No randomness.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The storage below failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A conditional change lost to other writers [`CAS_ATTEMPTS`] times in a row.
    #[error("too many concurrent changes to one entry; try again")]
    Contended,
}

/// A write through the barrier; puts are encrypted before they reach storage.
#[derive(Debug, Clone)]
pub enum BarrierOp {
    /// Encrypt and store.
    Put {
        /// storage key (also the associated data)
        key: String,
        /// plaintext
        value: Zeroizing<Vec<u8>>,
        /// see [`WriteOp::Put`]
        expires_at: Option<i64>,
    },
    /// Remove.
    Delete {
        /// storage key
        key: String,
    },
}

/// What a [`Barrier::get_versioned`] read saw at one key, to be handed back to
/// [`Barrier::apply_if`]: the batch applies only if the key still holds exactly
/// that (or is still absent). Holds ciphertext only.
#[derive(Clone)]
pub struct Guard {
    key: String,
    seen: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("key", &self.key)
            .field("present", &self.seen.is_some())
            .finish()
    }
}

impl Guard {
    /// A guard that the key does not exist (for create-only writes).
    pub fn absent(key: impl Into<String>) -> Guard {
        Guard {
            key: key.into(),
            seen: None,
        }
    }

    fn expectation(&self) -> Expect {
        match &self.seen {
            Some(v) => Expect::Unchanged {
                key: self.key.clone(),
                value: v.as_ref().clone(),
            },
            None => Expect::Absent {
                key: self.key.clone(),
            },
        }
    }
}

/// How often a compare-and-swap loop re-reads before giving up; each round lets
/// at least one contender through, so this bounds work, not correctness.
pub const CAS_ATTEMPTS: usize = 64;

/// Ciphertext entries kept in memory before the read cache is emptied.
const READ_CACHE_MAX: usize = 50_000;

/// A read cache of stored (still encrypted) values, so hot tokens and secrets
/// skip the database round trip. Writes through this barrier invalidate their
/// keys; another node's writes will arrive through [`Barrier::invalidate`].
#[derive(Debug, Default)]
struct ReadCache {
    /// bumped by every write, so a read that raced a write is not cached
    generation: u64,
    entries: std::collections::HashMap<String, Option<Arc<Vec<u8>>>>,
}

/// The encrypting layer over [`Storage`].
#[derive(Debug)]
pub struct Barrier {
    storage: Storage,
    keyring: RwLock<Option<Arc<Keyring>>>,
    cache: std::sync::Mutex<ReadCache>,
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Storage) -> Barrier {
        Barrier {
            storage,
            keyring: RwLock::new(None),
            cache: std::sync::Mutex::new(ReadCache::default()),
        }
    }

    /// The storage below (for the seal config, which is not secret).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Whether a keyring exists in storage.
    pub async fn is_initialized(&self) -> Result<bool, BarrierError> {
        Ok(self.storage.get(KEYRING_PATH).await?.is_some())
    }

    /// Creates the first keyring (term 1) under `root_key` and leaves the barrier unsealed.
    pub async fn initialize(&self, root_key: &[u8; 32], now: UnixTime) -> Result<(), BarrierError> {
        if self.is_initialized().await? {
            return Err(BarrierError::AlreadyInitialized);
        }
        let keyring = Keyring::new(root_key, now)?;
        self.persist_keyring(&keyring).await?;
        self.install(keyring);
        Ok(())
    }

    /// Loads the keyring with `root_key`; a wrong key is [`BarrierError::InvalidRootKey`].
    pub async fn unseal(&self, root_key: &[u8; 32]) -> Result<(), BarrierError> {
        let blob = self
            .storage
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::InvalidRootKey)?;
        let plain = open(root_key, ROOT_KEY_TERM, KEYRING_PATH, &blob)
            .map_err(|_| BarrierError::InvalidRootKey)?;
        let keyring = Keyring::decode(root_key, &plain)?;
        self.install(keyring);
        Ok(())
    }

    /// Drops the keyring; its keys are zeroized once no request holds them.
    pub fn seal(&self) {
        *crate::sync::write(&self.keyring) = None;
        self.invalidate(None);
    }

    /// Whether the keyring is loaded.
    pub fn is_sealed(&self) -> bool {
        crate::sync::read(&self.keyring).is_none()
    }

    fn install(&self, keyring: Keyring) {
        *crate::sync::write(&self.keyring) = Some(Arc::new(keyring));
    }

    fn current(&self) -> Result<Arc<Keyring>, BarrierError> {
        crate::sync::read(&self.keyring)
            .clone()
            .ok_or(BarrierError::Sealed)
    }

    async fn persist_keyring(&self, keyring: &Keyring) -> Result<(), BarrierError> {
        let plain = keyring.encode()?;
        let blob = seal_value(keyring.root_key(), ROOT_KEY_TERM, KEYRING_PATH, &plain)?;
        self.storage.put(KEYRING_PATH, blob).await?;
        Ok(())
    }

    /// Adds a new key term and makes it active; old terms still decrypt.
    /// Rotates the stored keyring (so a rotation by another node is kept) and
    /// writes it only if it is still the one read: a node that has not seen a
    /// rekey made elsewhere cannot open the stored keyring any more and gets
    /// [`BarrierError::InvalidRootKey`] instead of overwriting it under the
    /// old root key (which would bring the old shares back).
    pub async fn rotate(&self, now: UnixTime) -> Result<KeyStatus, BarrierError> {
        let current = self.current()?;
        for _ in 0..CAS_ATTEMPTS {
            let stored = self
                .storage
                .get(KEYRING_PATH)
                .await?
                .ok_or(BarrierError::CorruptKeyring)?;
            let ring = open(current.root_key(), ROOT_KEY_TERM, KEYRING_PATH, &stored)
                .map_err(|_| BarrierError::InvalidRootKey)?;
            let rotated = Keyring::decode(current.root_key(), &ring)?.rotated(now)?;
            let blob = seal_value(
                rotated.root_key(),
                ROOT_KEY_TERM,
                KEYRING_PATH,
                &rotated.encode()?,
            )?;
            let expect = [Expect::Unchanged {
                key: KEYRING_PATH.to_owned(),
                value: stored,
            }];
            let write = [WriteOp::Put {
                key: KEYRING_PATH.to_owned(),
                value: blob,
                expires_at: None,
            }];
            if self.storage.apply_if(&expect, &write).await? {
                let status = rotated.status();
                self.install(rotated);
                return Ok(status);
            }
        }
        Err(BarrierError::Contended)
    }

    /// Puts the keyring under `new_root_key` (a rekey), in one storage
    /// transaction with `ops` and the unencrypted `plain` writes (the seal
    /// config), only if every guard holds and the stored keyring is still the
    /// one read here. The keyring re-encrypted is the stored one, opened with
    /// the current root key, so a rotation made by another node is kept;
    /// a keyring this node cannot open (rekeyed elsewhere) is
    /// [`BarrierError::InvalidRootKey`]. Installed on success; `Ok(false)` and
    /// nothing written otherwise.
    pub async fn rekey(
        &self,
        new_root_key: &[u8; 32],
        guards: &[Guard],
        ops: Vec<BarrierOp>,
        plain: Vec<WriteOp>,
    ) -> Result<bool, BarrierError> {
        let current = self.current()?;
        let stored = self
            .storage
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::CorruptKeyring)?;
        let ring = open(current.root_key(), ROOT_KEY_TERM, KEYRING_PATH, &stored)
            .map_err(|_| BarrierError::InvalidRootKey)?;
        let rekeyed = Keyring::decode(new_root_key, &ring)?;
        let blob = seal_value(
            new_root_key,
            ROOT_KEY_TERM,
            KEYRING_PATH,
            &rekeyed.encode()?,
        )?;
        let mut writes = encrypt_ops(&current, ops)?;
        writes.extend(plain);
        writes.push(WriteOp::Put {
            key: KEYRING_PATH.to_owned(),
            value: blob,
            expires_at: None,
        });
        let mut expect: Vec<Expect> = guards.iter().map(Guard::expectation).collect();
        expect.push(Expect::Unchanged {
            key: KEYRING_PATH.to_owned(),
            value: stored,
        });
        let result = self.storage.apply_if(&expect, &writes).await;
        let mut keys: Vec<&str> = writes.iter().map(op_key).collect();
        keys.extend(guards.iter().map(|g| g.key.as_str()));
        self.invalidate(Some(&keys));
        if result? {
            self.install(rekeyed);
            return Ok(true);
        }
        Ok(false)
    }

    /// The active term and when it was installed.
    pub fn key_status(&self) -> Result<KeyStatus, BarrierError> {
        Ok(self.current()?.status())
    }

    /// Drops cached entries for `keys` (or everything, when `None`); for writes
    /// made by other nodes.
    pub fn invalidate(&self, keys: Option<&[&str]>) {
        {
            let mut c = crate::sync::lock(&self.cache);
            c.generation = c.generation.wrapping_add(1);
            match keys {
                None => c.entries.clear(),
                Some(keys) => {
                    for k in keys {
                        c.entries.remove(*k);
                    }
                }
            }
        }
    }

    async fn read_blob(&self, key: &str) -> Result<Option<Arc<Vec<u8>>>, BarrierError> {
        let generation = {
            let c = crate::sync::lock(&self.cache);
            if let Some(hit) = c.entries.get(key) {
                return Ok(hit.clone());
            }
            c.generation
        };
        let blob = self.storage.get(key).await?.map(Arc::new);
        {
            let mut c = crate::sync::lock(&self.cache);
            if c.generation == generation {
                if c.entries.len() >= READ_CACHE_MAX {
                    c.entries.clear();
                }
                c.entries.insert(key.to_owned(), blob.clone());
            }
        }
        Ok(blob)
    }

    /// Reads and decrypts `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError> {
        let keyring = self.current()?;
        match self.read_blob(key).await? {
            None => Ok(None),
            Some(blob) => {
                let term = read_term(&blob)?;
                let data_key = keyring.key(term).ok_or(BarrierError::UnknownTerm)?;
                Ok(Some(open(data_key, term, key, &blob)?))
            }
        }
    }

    /// Reads and decrypts `key` straight from storage (never from the read cache,
    /// which may lag another node's write), with a guard for [`Barrier::apply_if`].
    pub async fn get_versioned(
        &self,
        key: &str,
    ) -> Result<(Option<Zeroizing<Vec<u8>>>, Guard), BarrierError> {
        let keyring = self.current()?;
        let blob = self.storage.get(key).await?.map(Arc::new);
        let plain = match &blob {
            None => None,
            Some(blob) => {
                let term = read_term(blob)?;
                let data_key = keyring.key(term).ok_or(BarrierError::UnknownTerm)?;
                Some(open(data_key, term, key, blob)?)
            }
        };
        Ok((
            plain,
            Guard {
                key: key.to_owned(),
                seen: blob,
            },
        ))
    }

    /// Applies `ops` atomically only if every guarded key is as it was read;
    /// `Ok(false)` and nothing written otherwise. See [`Storage::apply_if`].
    pub async fn apply_if(
        &self,
        guards: &[Guard],
        ops: Vec<BarrierOp>,
    ) -> Result<bool, BarrierError> {
        let keyring = self.current()?;
        let writes = encrypt_ops(&keyring, ops)?;
        let expect: Vec<Expect> = guards.iter().map(Guard::expectation).collect();
        let result = self.storage.apply_if(&expect, &writes).await;
        let mut keys: Vec<&str> = writes.iter().map(op_key).collect();
        keys.extend(guards.iter().map(|g| g.key.as_str()));
        self.invalidate(Some(&keys));
        Ok(result?)
    }

    /// Removes `key` and returns what it held, if this call is the one that
    /// removed it: of many concurrent takers (on any node) exactly one gets the
    /// value. For single-use values.
    pub async fn take(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, BarrierError> {
        for _ in 0..CAS_ATTEMPTS {
            let (value, guard) = self.get_versioned(key).await?;
            let Some(value) = value else {
                return Ok(None);
            };
            let delete = BarrierOp::Delete {
                key: key.to_owned(),
            };
            if self.apply_if(&[guard], vec![delete]).await? {
                return Ok(Some(value));
            }
        }
        Err(BarrierError::Contended)
    }

    /// Encrypts and writes `value` at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        self.apply(vec![BarrierOp::Put {
            key: key.to_owned(),
            value: Zeroizing::new(value.to_vec()),
            expires_at: None,
        }])
        .await
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        self.apply(vec![BarrierOp::Delete {
            key: key.to_owned(),
        }])
        .await
    }

    /// Encrypts every put and applies all ops in one storage transaction.
    pub async fn apply(&self, ops: Vec<BarrierOp>) -> Result<(), BarrierError> {
        let keyring = self.current()?;
        let writes = encrypt_ops(&keyring, ops)?;
        let result = self.storage.apply(&writes).await;
        // Invalidate whether or not the commit succeeded: its outcome may be unknown.
        let keys: Vec<&str> = writes.iter().map(op_key).collect();
        self.invalidate(Some(&keys));
        result?;
        Ok(())
    }

    /// Lists keys (names are not encrypted; values are). Requires unsealed.
    pub async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, BarrierError> {
        self.current()?;
        Ok(self.storage.list(prefix, after, limit).await?)
    }

    /// How many keys lie under `prefix`. Requires unsealed.
    pub async fn count(&self, prefix: &str) -> Result<u64, BarrierError> {
        self.current()?;
        Ok(self.storage.count(prefix).await?)
    }

    /// Keys under `prefix` whose expiry is due. Requires unsealed.
    pub async fn expired(
        &self,
        prefix: &str,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<String>, BarrierError> {
        self.current()?;
        Ok(self.storage.expired(prefix, now.secs(), limit).await?)
    }

    /// Claims up to `limit` due entries under `prefix` until `until` (see
    /// `Storage::claim_expired`). Requires unsealed.
    pub async fn claim_expired(
        &self,
        prefix: &str,
        now: UnixTime,
        until: UnixTime,
        limit: u32,
    ) -> Result<Vec<String>, BarrierError> {
        self.current()?;
        Ok(self
            .storage
            .claim_expired(prefix, now.secs(), until.secs(), limit)
            .await?)
    }

    /// Deletes up to `limit` entries under `prefix` whose expiry is due (decided
    /// in storage, so a concurrent refresh survives). Requires unsealed.
    pub async fn delete_expired(
        &self,
        prefix: &str,
        now: UnixTime,
        limit: u32,
    ) -> Result<usize, BarrierError> {
        self.current()?;
        let deleted = self
            .storage
            .delete_expired(prefix, now.secs(), limit)
            .await?;
        let keys: Vec<&str> = deleted.iter().map(String::as_str).collect();
        self.invalidate(Some(&keys));
        Ok(deleted.len())
    }

    /// Deletes everything under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, BarrierError> {
        self.current()?;
        let result = self.storage.delete_prefix(prefix).await;
        self.invalidate(None);
        Ok(result?)
    }
}

fn encrypt_ops(keyring: &Keyring, ops: Vec<BarrierOp>) -> Result<Vec<WriteOp>, BarrierError> {
    let (term, data_key) = keyring.active();
    ops.into_iter()
        .map(|op| match op {
            BarrierOp::Put {
                key,
                value,
                expires_at,
            } => {
                let value = seal_value(data_key, term, &key, &value)?;
                Ok(WriteOp::Put {
                    key,
                    value,
                    expires_at,
                })
            }
            BarrierOp::Delete { key } => Ok(WriteOp::Delete { key }),
        })
        .collect()
}

fn op_key(op: &WriteOp) -> &str {
    match op {
        WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
    }
}

fn cipher(key: &[u8; 32]) -> Result<LessSafeKey, BarrierError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| BarrierError::CorruptKeyring)
}

fn read_term(blob: &[u8]) -> Result<u32, BarrierError> {
    match blob {
        [CIPHERTEXT_VERSION, a, b, c, d, ..] if blob.len() >= HEADER_LEN => {
            Ok(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => Err(BarrierError::Decrypt),
    }
}

/// Encrypts `plain` for storage key `path` under `key`/`term` with a random nonce.
fn seal_value(
    key: &[u8; 32],
    term: u32,
    path: &str,
    plain: &[u8],
) -> Result<Vec<u8>, BarrierError> {
    let nonce_bytes = random_array::<NONCE_LEN>()?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + AES_256_GCM.tag_len());
    out.push(CIPHERTEXT_VERSION);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(nonce_bytes.as_ref());
    let mut body = plain.to_vec();
    cipher(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(*nonce_bytes),
            Aad::from(aad(term, path)),
            &mut body,
        )
        .map_err(|_| BarrierError::Decrypt)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a blob stored at `path`; the header's term is bound into the AAD too.
fn open(
    key: &[u8; 32],
    term: u32,
    path: &str,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
    if read_term(blob)? != term {
        return Err(BarrierError::Decrypt);
    }
    let (header, sealed) = blob.split_at(HEADER_LEN);
    let nonce: [u8; NONCE_LEN] = header[5..].try_into().map_err(|_| BarrierError::Decrypt)?;
    let mut body = Zeroizing::new(sealed.to_vec());
    let plain_len = cipher(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(term, path)),
            &mut body,
        )
        .map_err(|_| BarrierError::Decrypt)?
        .len();
    body.truncate(plain_len);
    Ok(body)
}

fn aad(term: u32, path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + path.len());
    aad.push(CIPHERTEXT_VERSION);
    aad.extend_from_slice(&term.to_be_bytes());
    aad.extend_from_slice(path.as_bytes());
    aad
}

#[cfg(test)]
mod tests;
