//! The Ed25519 key that signs chain checkpoints. Generated at the first unseal
//! and kept behind the barrier, so only an unsealed node can sign; the public
//! half is published at `sys/audit-checkpoint-key` for `coffer audit verify`.

use base64::Engine as _;
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
        let message = message(head);
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(message.as_bytes()).as_ref())
    }
}

/// What a checkpoint signature covers.
pub fn message(head: &Head) -> String {
    format!("coffer-audit-checkpoint:v1:{}:{}", head.seq, head.hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn signatures_verify_with_the_published_key() {
        let s = Signer::ephemeral();
        let head = Head {
            seq: 9,
            hash: "ab".repeat(32),
        };
        let sig = base64::engine::general_purpose::STANDARD
            .decode(s.sign(&head))
            .unwrap();
        let pk = base64::engine::general_purpose::STANDARD
            .decode(s.public_key())
            .unwrap();
        let key = UnparsedPublicKey::new(&ED25519, pk);
        assert!(key.verify(message(&head).as_bytes(), &sig).is_ok());
        let other = Head { seq: 10, ..head };
        assert!(key.verify(message(&other).as_bytes(), &sig).is_err());
    }
}
