//! Signed checkpoints: an entry of `type` `checkpoint` attests the head before it
//! (`checkpoint.seq`, `checkpoint.hash`) with an Ed25519 signature over
//! [`checkpoint_message`]. The server holds the key pair and calls [`sign`] and
//! [`checkpoint_entry`]; a verifier holds the public [`CheckpointKey`].

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde_json::{json, Map, Value};

use super::chain::Head;
use super::verify::BreakKind;

/// Raw Ed25519 public key length.
const PUBLIC_KEY_LEN: usize = 32;

/// The bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: u64, hash: &str) -> String {
    format!("coffer-audit-checkpoint:v1:{seq}:{hash}")
}

/// Standard base64 of the signature over `head`.
pub fn sign(key: &Ed25519KeyPair, head: &Head) -> String {
    let message = checkpoint_message(head.seq, &head.hash);
    BASE64.encode(key.sign(message.as_bytes()).as_ref())
}

/// The checkpoint entry attesting `head`, before [`super::chain::link`] adds its
/// `seq`, `prev_hash` and `hash`.
pub fn checkpoint_entry(time: String, head: &Head, signature: String) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("type".into(), json!("checkpoint"));
    entry.insert("time".into(), json!(time));
    entry.insert(
        "checkpoint".into(),
        json!({"seq": head.seq, "hash": head.hash, "signature": signature}),
    );
    entry
}

/// A raw Ed25519 public key that checkpoint signatures are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointKey([u8; PUBLIC_KEY_LEN]);

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", BASE64.encode(self.0))
    }
}

impl CheckpointKey {
    /// The key as served by `GET /v1/sys/audit-checkpoint-key`: 32 bytes, standard base64.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "the public key is not valid standard base64".to_string())?;
        Self::from_bytes(&bytes)
    }

    /// A raw 32-byte key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        <[u8; PUBLIC_KEY_LEN]>::try_from(bytes)
            .map(CheckpointKey)
            .map_err(|_| {
                format!(
                    "the public key must be {PUBLIC_KEY_LEN} bytes (an Ed25519 key), not {}",
                    bytes.len()
                )
            })
    }

    /// Whether `signature` (standard base64) signs the checkpoint of `seq` and `hash`.
    pub fn verifies(&self, seq: u64, hash: &str, signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(checkpoint_message(seq, hash).as_bytes(), &signature)
            .is_ok()
    }
}

/// The `checkpoint` member of a `type: checkpoint` entry as read. Members that are
/// absent or of the wrong type are `None` and make the checkpoint fail, not the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// the attested `seq`
    pub seq: Option<u64>,
    /// the attested hash
    pub hash: Option<String>,
    /// the signature, standard base64
    pub signature: Option<String>,
}

impl Claim {
    /// The claim of an entry, if it is a checkpoint.
    pub(crate) fn of_entry(obj: &Map<String, Value>) -> Option<Claim> {
        if obj.get("type").and_then(Value::as_str) != Some("checkpoint") {
            return None;
        }
        let cp = obj.get("checkpoint");
        let field = |name: &str| cp.and_then(|c| c.get(name));
        Some(Claim {
            seq: field("seq").and_then(Value::as_u64),
            hash: field("hash").and_then(Value::as_str).map(str::to_string),
            signature: field("signature")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// A checkpoint attests the entry just before it (`entry_seq - 1`,
    /// `entry_prev_hash`), and with a key its signature must verify over exactly that.
    pub fn check(
        &self,
        entry_seq: u64,
        entry_prev_hash: &str,
        key: Option<&CheckpointKey>,
    ) -> Result<(), BreakKind> {
        let (Some(seq), Some(hash)) = (self.seq, self.hash.as_deref()) else {
            return Err(BreakKind::CheckpointMismatch);
        };
        if Some(seq) != entry_seq.checked_sub(1) || hash != entry_prev_hash {
            return Err(BreakKind::CheckpointMismatch);
        }
        if let Some(key) = key {
            let signature = self
                .signature
                .as_deref()
                .ok_or(BreakKind::CheckpointSignatureInvalid)?;
            if !key.verifies(seq, hash, signature) {
                return Err(BreakKind::CheckpointSignatureInvalid);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    fn key_pair() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    #[test]
    fn signatures_verify_with_the_public_key_only_for_their_head() {
        let pair = key_pair();
        let public = CheckpointKey::from_bytes(pair.public_key().as_ref()).unwrap();
        let head = Head {
            seq: 9,
            hash: "ab".repeat(32),
        };
        let sig = sign(&pair, &head);
        assert!(public.verifies(9, &head.hash, &sig));
        assert!(!public.verifies(10, &head.hash, &sig));
        assert!(!public.verifies(9, &"cd".repeat(32), &sig));
        assert!(!public.verifies(9, &head.hash, "not base64!"));
        let other = CheckpointKey::from_bytes(key_pair().public_key().as_ref()).unwrap();
        assert!(!other.verifies(9, &head.hash, &sig));
    }

    #[test]
    fn public_key_parsing() {
        let pair = key_pair();
        let b64 = BASE64.encode(pair.public_key().as_ref());
        assert_eq!(
            CheckpointKey::from_base64(&b64).unwrap(),
            CheckpointKey::from_bytes(pair.public_key().as_ref()).unwrap()
        );
        assert!(CheckpointKey::from_base64("%%%").is_err());
        let short = CheckpointKey::from_base64(&BASE64.encode([1u8; 16])).unwrap_err();
        assert!(short.contains("32 bytes"), "{short}");
    }

    #[test]
    fn the_entry_names_the_head_it_attests() {
        let head = Head {
            seq: 4,
            hash: "ef".repeat(32),
        };
        let entry = checkpoint_entry("t".into(), &head, "sig".into());
        let claim = Claim::of_entry(&entry).unwrap();
        assert_eq!(claim.seq, Some(4));
        assert_eq!(claim.hash.as_deref(), Some(head.hash.as_str()));
        assert_eq!(claim.check(5, &head.hash, None), Ok(()));
        assert_eq!(
            claim.check(6, &head.hash, None),
            Err(BreakKind::CheckpointMismatch)
        );
    }
}
