//! Root token generation from key shares (`sys/generate-root/*`): an attempt
//! is started with a one-time password (the server makes one when none is
//! given), key holders submit their shares with the attempt's nonce, and the
//! share that meets the threshold ends the attempt; the caller then mints a
//! root token and answers it XOR-ed with the OTP, base64-encoded.
//!
//! The attempt lives behind the barrier at [`GENERATE_ROOT_PATH`], so every
//! node sees the same one. It holds the nonce, the OTP and the SHA-256 of each
//! share counted so far, never a share: a share is proven genuine by its digest
//! in the seal config, so the threshold of distinct genuine shares is the
//! quorum, and there is nothing to combine. Every change is one conditional
//! write against what was read, so of concurrent submissions of the last share
//! exactly one ends the attempt.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{decode_key, share_digest, Seal, SealConfigV1, SealError};
use crate::barrier::{Barrier, BarrierError, BarrierOp, CAS_ATTEMPTS};
use crate::crypto::random_base62;

/// Where the attempt lives (barrier ciphertext).
pub const GENERATE_ROOT_PATH: &str = "core/generate-root";

/// The length of the OTP, which is the length of a generated token
/// (`hvs.` and 40 base62 characters): the token is XOR-ed with it byte by byte.
pub const OTP_LENGTH: usize = 44;

const WHAT: &str = "root generation";

#[derive(Serialize, Deserialize)]
struct StoredAttemptV1 {
    version: u32,
    nonce: String,
    otp: Zeroizing<String>,
    /// the threshold when the attempt started
    required: u8,
    /// SHA-256 (hex) of each share counted
    given: Vec<String>,
}

/// What `GET sys/generate-root/attempt` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptStatus {
    /// whether an attempt is running
    pub started: bool,
    /// its nonce (empty when none)
    pub nonce: String,
    /// shares counted
    pub progress: u8,
    /// shares needed
    pub required: u8,
}

/// What starting an attempt answers.
pub struct Started {
    /// the attempt
    pub status: AttemptStatus,
    /// the OTP the server made, shown this once (`None` when the caller gave one)
    pub generated_otp: Option<Zeroizing<String>>,
}

/// What submitting a share did.
pub enum Update {
    /// Counted; more are needed.
    Progress(AttemptStatus),
    /// The threshold is met and the attempt is over: mint the token and
    /// encode it with this OTP ([`encode_token`]).
    Complete {
        /// the finished attempt (progress = required)
        status: AttemptStatus,
        /// the attempt's OTP
        otp: Zeroizing<String>,
    },
}

impl Seal {
    /// The running attempt, if any.
    pub async fn generate_root_status(
        &self,
        barrier: &Barrier,
    ) -> Result<AttemptStatus, SealError> {
        let config = self.initialized_config(barrier).await?;
        Ok(match read(barrier).await?.0 {
            Some(a) => status_of(&a),
            None => AttemptStatus {
                started: false,
                nonce: String::new(),
                progress: 0,
                required: config.secret_threshold,
            },
        })
    }

    /// Starts an attempt. `otp` must be [`OTP_LENGTH`] printable ASCII
    /// characters; without one the server makes one and returns it once.
    pub async fn generate_root_start(
        &self,
        barrier: &Barrier,
        otp: Option<&str>,
    ) -> Result<Started, SealError> {
        let config = self.initialized_config(barrier).await?;
        let (otp, generated) = match otp {
            Some(given) => {
                if given.len() != OTP_LENGTH || !given.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SealError::InvalidParameters(format!(
                        "the OTP must be {OTP_LENGTH} printable ASCII characters (`bao operator generate-root -generate-otp` makes one), or left out for the server to make one"
                    )));
                }
                (Zeroizing::new(given.to_owned()), false)
            }
            None => (random_base62(OTP_LENGTH)?, true),
        };
        let attempt = StoredAttemptV1 {
            version: 1,
            nonce: uuid::Uuid::new_v4().to_string(),
            otp,
            required: config.secret_threshold,
            given: Vec::new(),
        };
        let put = put_op(&attempt)?;
        // Only one attempt at a time, on every node: create-only.
        if !barrier
            .apply_if(
                &[crate::barrier::Guard::absent(GENERATE_ROOT_PATH)],
                vec![put],
            )
            .await?
        {
            return Err(SealError::InProgress(WHAT));
        }
        Ok(Started {
            status: status_of(&attempt),
            generated_otp: generated.then(|| attempt.otp.clone()),
        })
    }

    /// Cancels the running attempt (a no-op when there is none, as in
    /// Vault); one that has counted shares needs a current share as `key`.
    pub async fn generate_root_cancel(
        &self,
        barrier: &Barrier,
        key: Option<&str>,
    ) -> Result<(), SealError> {
        self.initialized_config(barrier).await?;
        super::cancel_attempt(self, barrier, GENERATE_ROOT_PATH, WHAT, key, |raw| {
            let a: StoredAttemptV1 =
                serde_json::from_slice(raw).map_err(|_| SealError::CorruptConfig)?;
            Ok(!a.given.is_empty())
        })
        .await
    }

    /// Counts one share of the attempt named by `nonce`.
    pub async fn generate_root_update(
        &self,
        barrier: &Barrier,
        key: &str,
        nonce: &str,
    ) -> Result<Update, SealError> {
        let share = decode_key(key)?;
        for _ in 0..CAS_ATTEMPTS {
            // Read fresh on every round: a rekey elsewhere changes the shares.
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
            let done = attempt.given.len() >= usize::from(attempt.required);
            let op = if done {
                BarrierOp::Delete {
                    key: GENERATE_ROOT_PATH.to_owned(),
                }
            } else {
                put_op(&attempt)?
            };
            if barrier.apply_if(&[guard], vec![op]).await? {
                let status = status_of(&attempt);
                return Ok(if done {
                    Update::Complete {
                        status,
                        otp: attempt.otp.clone(),
                    }
                } else {
                    Update::Progress(status)
                });
            }
        }
        Err(BarrierError::Contended.into())
    }

    async fn initialized_config(&self, barrier: &Barrier) -> Result<SealConfigV1, SealError> {
        self.config(barrier).await?.ok_or(SealError::NotInitialized)
    }

    pub(super) async fn initialized_config_fresh(
        &self,
        barrier: &Barrier,
    ) -> Result<SealConfigV1, SealError> {
        self.fresh_config(barrier)
            .await?
            .ok_or(SealError::NotInitialized)
    }
}

/// The token XOR-ed with the OTP, in unpadded standard base64: what
/// `bao operator generate-root -decode=<this> -otp=<otp>` turns back into the token.
pub fn encode_token(token: &str, otp: &str) -> Result<String, SealError> {
    use base64::Engine as _;
    if token.len() != otp.len() {
        return Err(SealError::Unsupported(
            "the token and the OTP differ in length".into(),
        ));
    }
    let xored: Zeroizing<Vec<u8>> =
        Zeroizing::new(token.bytes().zip(otp.bytes()).map(|(t, o)| t ^ o).collect());
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(xored.as_slice()))
}

fn status_of(a: &StoredAttemptV1) -> AttemptStatus {
    AttemptStatus {
        started: true,
        nonce: a.nonce.clone(),
        progress: u8::try_from(a.given.len()).unwrap_or(u8::MAX),
        required: a.required,
    }
}

async fn read(
    barrier: &Barrier,
) -> Result<(Option<StoredAttemptV1>, crate::barrier::Guard), SealError> {
    let (raw, guard) = barrier.get_versioned(GENERATE_ROOT_PATH).await?;
    let attempt = match raw {
        None => None,
        Some(raw) => Some(serde_json::from_slice(&raw).map_err(|_| SealError::CorruptConfig)?),
    };
    Ok((attempt, guard))
}

fn put_op(a: &StoredAttemptV1) -> Result<BarrierOp, SealError> {
    Ok(BarrierOp::Put {
        key: GENERATE_ROOT_PATH.to_owned(),
        value: Zeroizing::new(serde_json::to_vec(a).map_err(|_| SealError::CorruptConfig)?),
        expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MigrationMode, Storage};
    use base64::Engine as _;

    async fn unsealed(n: u64, t: u64) -> (Barrier, Seal, Vec<String>) {
        let b = Barrier::new(
            Storage::connect("sqlite::memory:", MigrationMode::Apply)
                .await
                .unwrap(),
        );
        let seal = Seal::new();
        let out = seal
            .init(&b, n, t, crate::clock::UnixTime::from_secs(1))
            .await
            .unwrap();
        let keys = out
            .shares
            .iter()
            .map(|s| hex::encode(s.as_slice()))
            .collect();
        (b, seal, keys)
    }

    /// What `bao operator generate-root -decode` does: unpadded base64, XOR.
    fn decode(encoded: &str, otp: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .unwrap();
        String::from_utf8(bytes.iter().zip(otp.bytes()).map(|(e, o)| e ^ o).collect()).unwrap()
    }

    #[test]
    fn the_encoded_token_decodes_with_the_otp() {
        let token = format!("hvs.{}", "a".repeat(40));
        let otp = random_base62(OTP_LENGTH).unwrap();
        let encoded = encode_token(&token, &otp).unwrap();
        assert!(!encoded.contains('='));
        assert_eq!(decode(&encoded, &otp), token);
        assert!(encode_token("short", &otp).is_err());
    }

    #[tokio::test]
    async fn threshold_distinct_shares_with_the_nonce_complete_once() {
        let (b, seal, keys) = unsealed(5, 3).await;
        let idle = seal.generate_root_status(&b).await.unwrap();
        assert_eq!((idle.started, idle.required), (false, 3));
        let started = seal.generate_root_start(&b, None).await.unwrap();
        let otp = started.generated_otp.unwrap();
        assert_eq!(otp.len(), OTP_LENGTH);
        let nonce = started.status.nonce.clone();
        assert!(matches!(
            seal.generate_root_start(&b, None).await,
            Err(SealError::InProgress(_))
        ));
        assert!(matches!(
            seal.generate_root_update(&b, &keys[0], "other").await,
            Err(SealError::WrongNonce(_))
        ));
        let mut wrong = hex::decode(&keys[0]).unwrap();
        wrong[3] ^= 1;
        assert!(matches!(
            seal.generate_root_update(&b, &hex::encode(wrong), &nonce)
                .await,
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            seal.generate_root_update(&b, &keys[0], &nonce)
                .await
                .unwrap(),
            Update::Progress(AttemptStatus { progress: 1, .. })
        ));
        assert!(matches!(
            seal.generate_root_update(&b, &keys[0], &nonce).await,
            Err(SealError::DuplicateKey(_))
        ));
        assert!(matches!(
            seal.generate_root_update(&b, &keys[1], &nonce)
                .await
                .unwrap(),
            Update::Progress(AttemptStatus { progress: 2, .. })
        ));
        match seal
            .generate_root_update(&b, &keys[4], &nonce)
            .await
            .unwrap()
        {
            Update::Complete { status, otp: used } => {
                assert_eq!((status.progress, status.required), (3, 3));
                assert_eq!(used.as_str(), otp.as_str());
            }
            Update::Progress(p) => panic!("not complete: {p:?}"),
        }
        // The attempt is over: nothing is stored, more shares are refused.
        assert!(!seal.generate_root_status(&b).await.unwrap().started);
        assert!(b.get(GENERATE_ROOT_PATH).await.unwrap().is_none());
        assert!(matches!(
            seal.generate_root_update(&b, &keys[2], &nonce).await,
            Err(SealError::NotInProgress(_))
        ));
    }

    #[tokio::test]
    async fn an_attempt_with_shares_is_only_cancelled_with_a_share() {
        let (b, seal, keys) = unsealed(3, 2).await;
        let nonce = seal
            .generate_root_start(&b, None)
            .await
            .unwrap()
            .status
            .nonce;
        seal.generate_root_update(&b, &keys[0], &nonce)
            .await
            .unwrap();
        assert!(matches!(
            seal.generate_root_cancel(&b, None).await,
            Err(SealError::CancelNeedsShare(_))
        ));
        let mut wrong = hex::decode(&keys[1]).unwrap();
        wrong[0] ^= 1;
        assert!(matches!(
            seal.generate_root_cancel(&b, Some(&hex::encode(wrong)))
                .await,
            Err(SealError::WrongKey)
        ));
        assert_eq!(seal.generate_root_status(&b).await.unwrap().progress, 1);
        seal.generate_root_cancel(&b, Some(&keys[2])).await.unwrap();
        assert!(!seal.generate_root_status(&b).await.unwrap().started);
    }

    #[tokio::test]
    async fn a_given_otp_must_fit_the_token_and_cancel_clears() {
        let (b, seal, _) = unsealed(1, 1).await;
        for bad in ["short", &"é".repeat(22), &" ".repeat(OTP_LENGTH)] {
            assert!(matches!(
                seal.generate_root_start(&b, Some(bad)).await,
                Err(SealError::InvalidParameters(_))
            ));
        }
        let mine = "x".repeat(OTP_LENGTH);
        let started = seal.generate_root_start(&b, Some(&mine)).await.unwrap();
        assert!(started.generated_otp.is_none(), "a given OTP is not echoed");
        // Stored behind the barrier: the OTP is not in the raw storage bytes.
        let raw = b.storage().get(GENERATE_ROOT_PATH).await.unwrap().unwrap();
        assert!(!raw.windows(mine.len()).any(|w| w == mine.as_bytes()));
        seal.generate_root_cancel(&b, None).await.unwrap();
        assert!(!seal.generate_root_status(&b).await.unwrap().started);
        seal.generate_root_start(&b, None).await.unwrap();
    }
}
