//! Rekey (`sys/rekey/*`): replaces the root key and its shares. An attempt
//! names the new share count and threshold; holders of the current shares
//! submit them with the attempt's nonce; the share that meets the threshold
//! makes a new root key, splits it, and in one storage transaction re-encrypts
//! the keyring under it, writes the new seal config (the new shares' digests)
//! and ends the attempt. From then on the old shares unseal nothing and are
//! refused everywhere (unseal, root generation, rekey).
//!
//! As with root generation, the attempt lives behind the barrier at
//! [`REKEY_PATH`] and holds digests of the shares counted, never a share; each
//! change is one conditional write, and the final one is also guarded by the
//! stored keyring, so of concurrent last shares exactly one rekeys.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{
    check_parameters, decode_key, shamir, share_digest, Seal, SealConfigV1, SealError,
    SEAL_CONFIG_PATH,
};
use crate::barrier::{Barrier, BarrierError, BarrierOp, Guard, CAS_ATTEMPTS};
use crate::crypto::{random_array, sha256_hex};
use crate::storage::WriteOp;

/// Where the attempt lives (barrier ciphertext).
pub const REKEY_PATH: &str = "core/rekey";

const WHAT: &str = "rekey";

#[derive(Serialize, Deserialize)]
struct StoredRekeyV1 {
    version: u32,
    nonce: String,
    /// the new share count
    secret_shares: u8,
    /// the new threshold
    secret_threshold: u8,
    /// the current threshold when the attempt started
    required: u8,
    /// SHA-256 (hex) of each current share counted
    given: Vec<String>,
}

/// What `GET sys/rekey/init` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RekeyStatus {
    /// whether an attempt is running
    pub started: bool,
    /// its nonce (empty when none)
    pub nonce: String,
    /// the new threshold
    pub t: u8,
    /// the new share count
    pub n: u8,
    /// current shares counted
    pub progress: u8,
    /// current shares needed
    pub required: u8,
}

/// What submitting a share did.
pub enum RekeyUpdate {
    /// Counted; more are needed.
    Progress(RekeyStatus),
    /// Rekeyed: these are the new shares, shown this once.
    Complete {
        /// the finished attempt
        status: RekeyStatus,
        /// the new key shares
        shares: Vec<Zeroizing<Vec<u8>>>,
    },
}

impl Seal {
    /// The running rekey, if any.
    pub async fn rekey_status(&self, barrier: &Barrier) -> Result<RekeyStatus, SealError> {
        let config = self.initialized_config_fresh(barrier).await?;
        Ok(match read(barrier).await?.0 {
            Some(a) => status_of(&a),
            None => RekeyStatus {
                started: false,
                nonce: String::new(),
                t: 0,
                n: 0,
                progress: 0,
                required: config.secret_threshold,
            },
        })
    }

    /// Starts a rekey to `secret_shares` shares with `secret_threshold`.
    pub async fn rekey_start(
        &self,
        barrier: &Barrier,
        secret_shares: u64,
        secret_threshold: u64,
    ) -> Result<RekeyStatus, SealError> {
        let config = self.initialized_config_fresh(barrier).await?;
        let (n, t) = check_parameters(secret_shares, secret_threshold)?;
        let attempt = StoredRekeyV1 {
            version: 1,
            nonce: uuid::Uuid::new_v4().to_string(),
            secret_shares: n,
            secret_threshold: t,
            required: config.secret_threshold,
            given: Vec::new(),
        };
        if !barrier
            .apply_if(&[Guard::absent(REKEY_PATH)], vec![put_op(&attempt)?])
            .await?
        {
            return Err(SealError::InProgress(WHAT));
        }
        Ok(status_of(&attempt))
    }

    /// Cancels the running rekey (a no-op when there is none, as in Vault);
    /// one that has counted shares needs a current share as `key`.
    pub async fn rekey_cancel(
        &self,
        barrier: &Barrier,
        key: Option<&str>,
    ) -> Result<(), SealError> {
        self.initialized_config_fresh(barrier).await?;
        super::cancel_attempt(self, barrier, REKEY_PATH, WHAT, key, |raw| {
            let a: StoredRekeyV1 =
                serde_json::from_slice(raw).map_err(|_| SealError::CorruptConfig)?;
            Ok(!a.given.is_empty())
        })
        .await
    }

    /// Counts one current share of the rekey named by `nonce`; the last one
    /// rekeys.
    pub async fn rekey_update(
        &self,
        barrier: &Barrier,
        key: &str,
        nonce: &str,
    ) -> Result<RekeyUpdate, SealError> {
        let share = decode_key(key)?;
        for _ in 0..CAS_ATTEMPTS {
            let config = self.initialized_config_fresh(barrier).await?;
            let digest = share_digest(&config, &share)?;
            let (attempt, guard) = read(barrier).await?;
            let mut attempt = attempt.ok_or(SealError::NotInProgress(WHAT))?;
            super::count_share(
                &config,
                digest,
                nonce,
                &attempt.nonce,
                &mut attempt.given,
                WHAT,
            )?;
            if attempt.given.len() < usize::from(attempt.required) {
                if barrier.apply_if(&[guard], vec![put_op(&attempt)?]).await? {
                    return Ok(RekeyUpdate::Progress(status_of(&attempt)));
                }
                continue;
            }
            let root_key = random_array::<32>()?;
            let shares = shamir::split(
                root_key.as_ref(),
                attempt.secret_shares,
                attempt.secret_threshold,
            )
            .map_err(|e| SealError::InvalidParameters(e.to_string()))?;
            let next = SealConfigV1 {
                seal_type: config.seal_type.clone(),
                secret_shares: attempt.secret_shares,
                secret_threshold: attempt.secret_threshold,
                share_digests: shares.iter().map(|s| sha256_hex(s)).collect(),
                cluster_id: config.cluster_id.clone(),
            };
            let raw = serde_json::to_vec(&next).map_err(|_| SealError::CorruptConfig)?;
            let done = barrier
                .rekey(
                    &root_key,
                    &[guard],
                    vec![BarrierOp::Delete {
                        key: REKEY_PATH.to_owned(),
                    }],
                    vec![WriteOp::Put {
                        key: SEAL_CONFIG_PATH.to_owned(),
                        value: raw,
                        expires_at: None,
                    }],
                )
                .await?;
            if done {
                *crate::sync::lock(&self.cached_config) = Some(next);
                return Ok(RekeyUpdate::Complete {
                    status: status_of(&attempt),
                    shares,
                });
            }
        }
        Err(BarrierError::Contended.into())
    }
}

fn status_of(a: &StoredRekeyV1) -> RekeyStatus {
    RekeyStatus {
        started: true,
        nonce: a.nonce.clone(),
        t: a.secret_threshold,
        n: a.secret_shares,
        progress: u8::try_from(a.given.len()).unwrap_or(u8::MAX),
        required: a.required,
    }
}

async fn read(barrier: &Barrier) -> Result<(Option<StoredRekeyV1>, Guard), SealError> {
    let (raw, guard) = barrier.get_versioned(REKEY_PATH).await?;
    let attempt = match raw {
        None => None,
        Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| SealError::CorruptConfig)?),
    };
    Ok((attempt, guard))
}

fn put_op(a: &StoredRekeyV1) -> Result<BarrierOp, SealError> {
    Ok(BarrierOp::Put {
        key: REKEY_PATH.to_owned(),
        value: Zeroizing::new(serde_json::to_vec(a).map_err(|_| SealError::CorruptConfig)?),
        expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MigrationMode, Storage};

    #[tokio::test]
    async fn a_rekey_replaces_the_shares_and_keeps_the_data() {
        let b = Barrier::new(
            Storage::connect("sqlite::memory:", MigrationMode::Apply)
                .await
                .unwrap(),
        );
        let seal = Seal::new();
        let out = seal
            .init(&b, 3, 2, crate::clock::UnixTime::from_secs(1))
            .await
            .unwrap();
        let old: Vec<String> = out
            .shares
            .iter()
            .map(|s| hex::encode(s.as_slice()))
            .collect();
        b.put("logical/x", b"kept").await.unwrap();
        b.rotate(crate::clock::UnixTime::from_secs(2))
            .await
            .unwrap();

        assert!(matches!(
            seal.rekey_start(&b, 2, 3).await,
            Err(SealError::InvalidParameters(_))
        ));
        let started = seal.rekey_start(&b, 5, 3).await.unwrap();
        assert_eq!((started.n, started.t, started.required), (5, 3, 2));
        assert!(matches!(
            seal.rekey_update(&b, &old[0], "nope").await,
            Err(SealError::WrongNonce(_))
        ));
        assert!(matches!(
            seal.rekey_update(&b, &old[0], &started.nonce)
                .await
                .unwrap(),
            RekeyUpdate::Progress(RekeyStatus { progress: 1, .. })
        ));
        let RekeyUpdate::Complete { shares, .. } = seal
            .rekey_update(&b, &old[2], &started.nonce)
            .await
            .unwrap()
        else {
            panic!("not complete");
        };
        assert_eq!(shares.len(), 5);
        assert!(!seal.rekey_status(&b).await.unwrap().started);
        let config = seal.fresh_config(&b).await.unwrap().unwrap();
        assert_eq!((config.secret_shares, config.secret_threshold), (5, 3));

        // Old shares are refused; three new ones open the same data, both terms.
        b.seal();
        assert!(matches!(
            seal.submit(&b, &old[0]).await,
            Err(SealError::WrongKey)
        ));
        for (i, s) in shares.iter().take(3).enumerate() {
            let open = seal.submit(&b, &hex::encode(s.as_slice())).await.unwrap();
            assert_eq!(open, i == 2);
        }
        assert_eq!(
            b.get("logical/x").await.unwrap().unwrap().as_slice(),
            b"kept"
        );
        assert_eq!(b.key_status().unwrap().term, 2);
    }
}
