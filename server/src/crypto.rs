//! Small cryptographic building blocks used across layers: randomness, constant-time
//! comparison, keyed hashing of identifiers, and a secret-string type that never
//! prints. Encryption itself lives in `barrier`; key splitting in `seal::shamir`.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Defined in the wire crate, which the client shares; named here so server code
/// keeps using `crate::crypto::SecretString`.
pub use coffer_proto::SecretString;

/// Errors from the system random source (never expected in practice).
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RngError;

/// Fills a fresh buffer of `N` random bytes.
pub fn random_array<const N: usize>() -> Result<Zeroizing<[u8; N]>, RngError> {
    let mut buf = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(buf.as_mut())
        .map_err(|_| RngError)?;
    Ok(buf)
}

/// A random string of `len` characters from `[0-9A-Za-z]`, unbiased.
pub fn random_base62(len: usize) -> Result<Zeroizing<String>, RngError> {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let rng = SystemRandom::new();
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < len {
        rng.fill(buf.as_mut()).map_err(|_| RngError)?;
        // Rejection sampling: 248 = 4 * 62 keeps every symbol equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    Ok(out)
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256 of `data` under `key`, hex-encoded. Used to turn tokens and
/// accessors into storage keys that cannot be reversed.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    HmacKey::new(key).hex(data)
}

/// An HMAC-SHA256 key prepared once, for a key used on every request (an
/// audit device's salt): ring keeps the padded key states, so each HMAC
/// costs half the hashing of [`hmac_hex`].
pub struct HmacKey(ring::hmac::Key);

impl HmacKey {
    /// Prepares `key`.
    pub fn new(key: &[u8]) -> Self {
        HmacKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key))
    }

    /// HMAC-SHA256 of `data`, hex-encoded; equal to `hmac_hex(key, data)`.
    pub fn hex(&self, data: &[u8]) -> String {
        hex::encode(ring::hmac::sign(&self.0, data).as_ref())
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(redacted)")
    }
}

/// SHA-256, hex-encoded.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_hmac_key_gives_the_same_hmac_and_hides_itself() {
        // RFC 4231, test case 2.
        let key = HmacKey::new(b"Jefe");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(key.hex(b"what do ya want for nothing?"), expected);
        assert_eq!(hmac_hex(b"Jefe", b"what do ya want for nothing?"), expected);
        assert_ne!(key.hex(b"value"), hmac_hex(b"other salt", b"value"));
        assert_eq!(format!("{key:?}"), "HmacKey(redacted)");
    }

    #[test]
    fn base62_has_the_length_and_alphabet_asked_for() {
        let s = random_base62(40).unwrap();
        assert_eq!(s.len(), 40);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(*s, *random_base62(40).unwrap());
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
