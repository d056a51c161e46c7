//! The seal: the root key exists only as Shamir key shares held by operators.
//! `init` creates the root key and the barrier's keyring and hands out the shares;
//! `unseal` collects shares until the threshold and opens the barrier; `seal`
//! drops every key. The seal config (share count, threshold and a digest of each
//! share, none of them secret) is the one plaintext record in storage.

pub mod generate_root;
pub mod rekey;
pub mod shamir;

use crate::clock::UnixTime;
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierError};
use crate::crypto::{ct_eq, random_array, sha256_hex};

/// Where the (plaintext, non-secret) seal config lives.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";

/// Errors from init/unseal.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// init on an initialised server.
    #[error("Coffer is already initialized")]
    AlreadyInitialized,
    /// unseal on an uninitialised server.
    #[error("Coffer is not initialized")]
    NotInitialized,
    /// bad share count / threshold.
    #[error("{0}")]
    InvalidParameters(String),
    /// The key was not hex or base64 of the right length.
    #[error("'key' must be a valid hex or base64 string of a key share")]
    MalformedKey,
    /// A well-formed key that is not one of this server's shares.
    #[error("the unseal key is not one of this server's key shares")]
    WrongKey,
    /// `reset` while unsealed.
    #[error("Coffer is unsealed")]
    AlreadyUnsealed,
    /// Barrier failure.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// No randomness.
    #[error(transparent)]
    Rng(#[from] crate::crypto::RngError),
    /// Stored seal config is unreadable.
    #[error("the stored seal configuration is corrupt")]
    CorruptConfig,
    /// A root generation or rekey is already running.
    #[error("{0} already in progress")]
    InProgress(&'static str),
    /// No root generation or rekey is running.
    #[error("no {0} in progress")]
    NotInProgress(&'static str),
    /// The nonce given is not the current attempt's.
    #[error("incorrect or missing nonce: submit the nonce of the current {0} attempt")]
    WrongNonce(&'static str),
    /// The share was already counted in this attempt.
    #[error("this key share has already been provided in this {0} attempt")]
    DuplicateKey(&'static str),
    /// Cancelling an attempt that has counted shares needs a share too.
    #[error("this {0} attempt has counted key shares: cancelling it needs one of the current key shares in 'key'")]
    CancelNeedsShare(&'static str),
    /// A request Coffer understands but does not serve (PGP, verification...).
    #[error("{0}")]
    Unsupported(String),
}

/// Stored form of the seal configuration. Versioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealConfigV1 {
    /// always "shamir" for now
    pub seal_type: String,
    /// n
    pub secret_shares: u8,
    /// t
    pub secret_threshold: u8,
    /// SHA-256 of each share, so a wrong share is refused on its own instead of
    /// silently poisoning the unseal attempt. Shares carry 256 bits of entropy, so
    /// the digest reveals nothing usable.
    pub share_digests: Vec<String>,
    /// identifies the cluster (shown once unsealed)
    #[serde(default)]
    pub cluster_id: String,
}

/// Where an unseal attempt stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStatus {
    /// whether a seal config exists
    pub initialized: bool,
    /// whether the barrier is sealed
    pub sealed: bool,
    /// threshold
    pub t: u8,
    /// shares
    pub n: u8,
    /// shares provided so far
    pub progress: u8,
    /// identifies the current unseal attempt
    pub nonce: String,
    /// the cluster's id
    pub cluster_id: String,
}

/// What `init` hands out once.
pub struct InitOutput {
    /// The key shares (each `len(root key) + 1` bytes).
    pub shares: Vec<Zeroizing<Vec<u8>>>,
}

#[derive(Default)]
struct Progress {
    nonce: String,
    shares: Vec<Zeroizing<Vec<u8>>>,
}

/// The seal of one node.
pub struct Seal {
    progress: Mutex<Progress>,
    cached_config: Mutex<Option<SealConfigV1>>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal { .. }")
    }
}

impl Default for Seal {
    fn default() -> Self {
        Seal::new()
    }
}

impl Seal {
    /// A seal with no unseal attempt in progress.
    pub fn new() -> Seal {
        Seal {
            progress: Mutex::new(Progress::default()),
            cached_config: Mutex::new(None),
        }
    }

    /// Reads the seal config, if initialised.
    pub async fn config(&self, barrier: &Barrier) -> Result<Option<SealConfigV1>, SealError> {
        // The config changes at init and rekey only, so once seen it is kept in
        // memory for status answers; shares are checked with `fresh_config`.
        if let Some(cached) = crate::sync::lock(&self.cached_config).clone() {
            return Ok(Some(cached));
        }
        let read = match barrier
            .storage()
            .get(SEAL_CONFIG_PATH)
            .await
            .map_err(BarrierError::from)?
        {
            None => Ok(None),
            Some(raw) => serde_json::from_slice::<SealConfigV1>(&raw)
                .map(Some)
                .map_err(|_| SealError::CorruptConfig),
        }?;
        if let Some(c) = &read {
            *crate::sync::lock(&self.cached_config) = Some(c.clone());
        }
        Ok(read)
    }

    /// Reads the seal config from storage, never from memory: a rekey on
    /// another node replaces it, and shares must be checked against what is
    /// stored now. Refreshes the copy [`Seal::config`] answers from.
    pub async fn fresh_config(&self, barrier: &Barrier) -> Result<Option<SealConfigV1>, SealError> {
        let read = match barrier
            .storage()
            .get(SEAL_CONFIG_PATH)
            .await
            .map_err(BarrierError::from)?
        {
            None => None,
            Some(raw) => Some(
                serde_json::from_slice::<SealConfigV1>(&raw)
                    .map_err(|_| SealError::CorruptConfig)?,
            ),
        };
        crate::sync::lock(&self.cached_config).clone_from(&read);
        Ok(read)
    }

    /// Creates the root key, the keyring and the shares; leaves the barrier unsealed.
    pub async fn init(
        &self,
        barrier: &Barrier,
        secret_shares: u64,
        secret_threshold: u64,
        now: UnixTime,
    ) -> Result<InitOutput, SealError> {
        if self.config(barrier).await?.is_some() || barrier.is_initialized().await? {
            return Err(SealError::AlreadyInitialized);
        }
        let (n, t) = check_parameters(secret_shares, secret_threshold)?;
        let root_key = random_array::<32>()?;
        let shares = shamir::split(root_key.as_ref(), n, t)
            .map_err(|e| SealError::InvalidParameters(e.to_string()))?;
        let config = SealConfigV1 {
            seal_type: "shamir".into(),
            secret_shares: n,
            secret_threshold: t,
            share_digests: shares.iter().map(|s| sha256_hex(s)).collect(),
            cluster_id: uuid::Uuid::new_v4().to_string(),
        };
        barrier.initialize(&root_key, now).await?;
        let raw = serde_json::to_vec(&config).map_err(|_| SealError::CorruptConfig)?;
        barrier
            .storage()
            .put(SEAL_CONFIG_PATH, raw)
            .await
            .map_err(BarrierError::from)?;
        Ok(InitOutput { shares })
    }

    /// The seal status as `sys/seal-status` shows it.
    pub async fn status(&self, barrier: &Barrier) -> Result<SealStatus, SealError> {
        let config = self.config(barrier).await?;
        let (progress, nonce) = self.progress_snapshot();
        Ok(match config {
            None => SealStatus {
                initialized: false,
                sealed: true,
                t: 0,
                n: 0,
                progress: 0,
                nonce: String::new(),
                cluster_id: String::new(),
            },
            Some(c) => SealStatus {
                initialized: true,
                sealed: barrier.is_sealed(),
                t: c.secret_threshold,
                n: c.secret_shares,
                progress,
                nonce,
                cluster_id: c.cluster_id,
            },
        })
    }

    fn progress_snapshot(&self) -> (u8, String) {
        let p = crate::sync::lock(&self.progress);
        (p.shares.len() as u8, p.nonce.clone())
    }

    /// Forgets the shares given so far.
    pub fn reset(&self) {
        *crate::sync::lock(&self.progress) = Progress::default();
    }

    /// Adds one share; opens the barrier when the threshold is reached. Returns
    /// `true` once unsealed. A malformed, wrong or repeated key leaves progress as it was.
    pub async fn submit(&self, barrier: &Barrier, key: &str) -> Result<bool, SealError> {
        if !barrier.is_sealed() {
            return Ok(true);
        }
        let config = self
            .fresh_config(barrier)
            .await?
            .ok_or(SealError::NotInitialized)?;
        let share = decode_key(key)?;
        share_digest(&config, &share)?;
        let ready: Option<Vec<Zeroizing<Vec<u8>>>> = {
            let mut p = crate::sync::lock(&self.progress);
            if p.shares.iter().any(|s| ct_eq(s, &share)) {
                // As Vault: a share given twice is ignored, progress stays.
                return Ok(false);
            }
            if p.shares.is_empty() {
                p.nonce = uuid::Uuid::new_v4().to_string();
            }
            p.shares.push(share);
            if p.shares.len() >= usize::from(config.secret_threshold) {
                let taken = std::mem::take(&mut p.shares);
                p.nonce.clear();
                Some(taken)
            } else {
                None
            }
        };
        let Some(shares) = ready else {
            return Ok(false);
        };
        let parts: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        let root = shamir::combine(&parts).map_err(|_| SealError::WrongKey)?;
        let root: Zeroizing<[u8; 32]> = Zeroizing::new(
            root.as_slice()
                .try_into()
                .map_err(|_| SealError::WrongKey)?,
        );
        barrier.unseal(&root).await.map_err(|e| match e {
            BarrierError::InvalidRootKey => SealError::WrongKey,
            other => SealError::Barrier(other),
        })?;
        Ok(true)
    }
}

/// Vault's rules for a share count and threshold (at init and rekey).
pub(crate) fn check_parameters(
    secret_shares: u64,
    secret_threshold: u64,
) -> Result<(u8, u8), SealError> {
    if secret_shares == 0 || secret_shares > 255 {
        return Err(SealError::InvalidParameters(
            "secret_shares must be between 1 and 255".into(),
        ));
    }
    if secret_threshold == 0 || secret_threshold > secret_shares {
        return Err(SealError::InvalidParameters(
            "secret_threshold must be between 1 and secret_shares".into(),
        ));
    }
    if secret_shares > 1 && secret_threshold == 1 {
        return Err(SealError::InvalidParameters(
            "secret_threshold must be greater than 1 when there is more than one share".into(),
        ));
    }
    Ok((secret_shares as u8, secret_threshold as u8))
}

/// Cancels the attempt stored at `path` (none is fine). An attempt that has
/// counted shares is only cancelled with one of the current shares: anyone
/// may call these paths, and must not be able to throw away a quorum's work
/// (Vault's CVE-2026-5807: an unauthenticated caller cancelling and re-starting
/// root generations and rekeys to keep operators from finishing them).
pub(crate) async fn cancel_attempt(
    seal: &Seal,
    barrier: &Barrier,
    path: &str,
    what: &'static str,
    key: Option<&str>,
    counted: impl Fn(&[u8]) -> Result<bool, SealError>,
) -> Result<(), SealError> {
    for _ in 0..crate::barrier::CAS_ATTEMPTS {
        let (raw, guard) = barrier.get_versioned(path).await?;
        let Some(raw) = raw else {
            return Ok(());
        };
        if counted(&raw)? {
            let config = seal
                .fresh_config(barrier)
                .await?
                .ok_or(SealError::NotInitialized)?;
            let share = decode_key(key.ok_or(SealError::CancelNeedsShare(what))?)?;
            share_digest(&config, &share)?;
        }
        let delete = crate::barrier::BarrierOp::Delete {
            key: path.to_owned(),
        };
        if barrier.apply_if(&[guard], vec![delete]).await? {
            return Ok(());
        }
    }
    Err(BarrierError::Contended.into())
}

/// Counts the share with `digest` into an attempt (generate-root, rekey) named
/// by `nonce`: the nonce must be the attempt's, shares of a replaced seal config
/// stop counting, and a share counts once.
pub(crate) fn count_share(
    config: &SealConfigV1,
    digest: String,
    nonce: &str,
    attempt_nonce: &str,
    given: &mut Vec<String>,
    what: &'static str,
) -> Result<(), SealError> {
    if nonce.is_empty() || !ct_eq(nonce.as_bytes(), attempt_nonce.as_bytes()) {
        return Err(SealError::WrongNonce(what));
    }
    given.retain(|d| config.share_digests.contains(d));
    if given.contains(&digest) {
        return Err(SealError::DuplicateKey(what));
    }
    given.push(digest);
    Ok(())
}

/// The digest of `share` if it is one of `config`'s shares, else
/// [`SealError::WrongKey`]. What authorises unseal, root generation and rekey.
pub(crate) fn share_digest(config: &SealConfigV1, share: &[u8]) -> Result<String, SealError> {
    let digest = sha256_hex(share);
    if config
        .share_digests
        .iter()
        .any(|d| ct_eq(d.as_bytes(), digest.as_bytes()))
    {
        Ok(digest)
    } else {
        Err(SealError::WrongKey)
    }
}

/// Accepts a share as hex or standard base64, as the Vault CLI sends either.
pub(crate) fn decode_key(key: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let key = key.trim();
    let bytes = if key.len() % 2 == 0 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(key).ok()
    } else {
        base64::engine::general_purpose::STANDARD.decode(key).ok()
    };
    match bytes {
        Some(b) if b.len() == 33 => Ok(Zeroizing::new(b)),
        _ => Err(SealError::MalformedKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MigrationMode, Storage};

    async fn barrier() -> Barrier {
        Barrier::new(
            Storage::connect("sqlite::memory:", MigrationMode::Apply)
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn init_then_unseal_with_threshold_shares() {
        let b = barrier().await;
        let seal = Seal::new();
        let out = seal.init(&b, 5, 3, UnixTime::from_secs(10)).await.unwrap();
        assert_eq!(out.shares.len(), 5);
        b.seal();
        let hexes: Vec<String> = out
            .shares
            .iter()
            .map(|s| hex::encode(s.as_slice()))
            .collect();
        assert!(!seal.submit(&b, &hexes[4]).await.unwrap());
        // Wrong, malformed and repeated keys do not advance.
        let mut wrong = out.shares[0].to_vec();
        wrong[0] ^= 1;
        assert!(matches!(
            seal.submit(&b, &hex::encode(&wrong)).await,
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            seal.submit(&b, "zz").await,
            Err(SealError::MalformedKey)
        ));
        assert!(
            !seal.submit(&b, &hexes[4]).await.unwrap(),
            "a repeated share is ignored"
        );
        assert_eq!(seal.status(&b).await.unwrap().progress, 1);
        let b64 = base64::engine::general_purpose::STANDARD.encode(out.shares[1].as_slice());
        assert!(!seal.submit(&b, &b64).await.unwrap());
        assert!(seal.submit(&b, &hexes[2]).await.unwrap());
        assert!(!b.is_sealed());
        let status = seal.status(&b).await.unwrap();
        assert_eq!(
            (status.t, status.n, status.progress, status.sealed),
            (3, 5, 0, false)
        );
    }

    #[tokio::test]
    async fn reset_clears_progress_and_init_twice_fails() {
        let b = barrier().await;
        let seal = Seal::new();
        let out = seal.init(&b, 3, 2, UnixTime::from_secs(10)).await.unwrap();
        b.seal();
        seal.submit(&b, &hex::encode(out.shares[0].as_slice()))
            .await
            .unwrap();
        seal.reset();
        assert_eq!(seal.status(&b).await.unwrap().progress, 0);
        assert!(matches!(
            seal.init(&b, 1, 1, UnixTime::from_secs(10)).await,
            Err(SealError::AlreadyInitialized)
        ));
    }

    #[tokio::test]
    async fn bad_parameters_are_refused_before_anything_is_written() {
        let b = barrier().await;
        let seal = Seal::new();
        assert!(matches!(
            seal.init(&b, 3, 4, UnixTime::from_secs(1)).await,
            Err(SealError::InvalidParameters(_))
        ));
        assert!(matches!(
            seal.init(&b, 0, 0, UnixTime::from_secs(1)).await,
            Err(SealError::InvalidParameters(_))
        ));
        assert!(matches!(
            seal.init(&b, 300, 2, UnixTime::from_secs(1)).await,
            Err(SealError::InvalidParameters(_))
        ));
        assert!(!seal.status(&b).await.unwrap().initialized);
        seal.init(&b, 1, 1, UnixTime::from_secs(1)).await.unwrap();
    }
}
