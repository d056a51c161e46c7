//! The Ed25519 key that signs chain checkpoints. Generated at the first unseal
//! and kept behind the barrier, so only an unsealed node can sign; the public
//! half is published at `sys/audit-checkpoint-key` for `coffer audit verify`.
//! What is signed is `coffer_proto::audit::checkpoint`'s.

use base64::Engine as _;
use coffer_proto::audit::checkpoint;
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::chain::Head;
use super::AuditError;
use crate::barrier::Barrier;

const KEY_PATH: &str = "core/audit-checkpoint-key";

/// Signs checkpoints.
pub struct Signer {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl Signer {
    /// Loads the key, making it on first use.
    pub async fn load_or_create(barrier: &Barrier) -> Result<Signer, AuditError> {
        let pkcs8 = match barrier.get(KEY_PATH).await? {
            Some(bytes) => bytes,
            None => {
                let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                    .map_err(|_| AuditError::Crypto)?;
                let bytes = Zeroizing::new(doc.as_ref().to_vec());
                barrier.put(KEY_PATH, &bytes).await?;
                bytes
            }
        };
        Ok(Signer {
            key: Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| AuditError::Crypto)?,
        })
    }

    /// A throwaway key (tests).
    #[cfg(test)]
    pub fn ephemeral() -> Signer {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Signer {
            key: Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap(),
        }
    }

    /// The public key, standard base64 of the raw 32 bytes.
    pub fn public_key(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.public_key().as_ref())
    }

    /// Standard base64 of the signature over `head`.
    pub fn sign(&self, head: &Head) -> String {
        checkpoint::sign(&self.key, head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_proto::audit::CheckpointKey;

    #[test]
    fn signatures_verify_with_the_published_key() {
        let s = Signer::ephemeral();
        let head = Head {
            seq: 9,
            hash: "ab".repeat(32),
        };
        let sig = s.sign(&head);
        let key = CheckpointKey::from_base64(&s.public_key()).unwrap();
        assert!(key.verifies(9, &head.hash, &sig));
        assert!(!key.verifies(10, &head.hash, &sig));
    }
}
