//! Shamir secret sharing over GF(2^8), the field and share layout Vault uses: a
//! share is the polynomial values for every secret byte followed by one byte of
//! x-coordinate. Arithmetic is branch-free so timing does not depend on the key.

use zeroize::Zeroizing;

use crate::crypto::{random_array, RngError};

/// Why a split or combine was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    /// Threshold and share count out of range.
    #[error("secret_threshold must be between 1 and secret_shares, and secret_shares at most 255")]
    InvalidParameters,
    /// Shares of different lengths, too short, or with repeated or zero x coordinates.
    #[error("the key shares are malformed or do not belong together")]
    MalformedShares,
    /// No randomness.
    #[error("the system random number generator failed")]
    Rng,
}

impl From<RngError> for ShamirError {
    fn from(_: RngError) -> Self {
        ShamirError::Rng
    }
}

/// Multiplication in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// Multiplicative inverse (a^254); the inverse of 0 is taken as 0.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u8;
    for _ in 0..8 {
        let factor = if exp & 1 == 1 { base } else { 1 };
        result = mul(result, factor);
        base = mul(base, base);
        exp >>= 1;
    }
    result
}

/// Splits `secret` into `shares` parts of which any `threshold` recover it.
/// With one share the share is the secret itself plus its x byte.
pub fn split(
    secret: &[u8],
    shares: u8,
    threshold: u8,
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if shares == 0 || threshold == 0 || threshold > shares || secret.is_empty() {
        return Err(ShamirError::InvalidParameters);
    }
    let mut out: Vec<Zeroizing<Vec<u8>>> = (0..shares)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len() + 1)))
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for &byte in secret {
        coefficients[0] = byte;
        for c in coefficients.iter_mut().skip(1) {
            *c = random_array::<1>()?[0];
        }
        for (i, share) in out.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            // Horner's rule from the highest coefficient down.
            let y = coefficients
                .iter()
                .rev()
                .fold(0u8, |acc, &c| mul(acc, x) ^ c);
            share.push(y);
        }
    }
    for (i, share) in out.iter_mut().enumerate() {
        share.push((i + 1) as u8);
    }
    Ok(out)
}

/// Recombines shares by Lagrange interpolation at x = 0. Any `threshold` distinct
/// shares give the secret; fewer give an unrelated value (this cannot be detected
/// here — callers verify the result by decrypting with it).
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let first = shares.first().ok_or(ShamirError::MalformedShares)?;
    let len = first.len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::MalformedShares);
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err(ShamirError::MalformedShares);
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (i, share) in shares.iter().enumerate() {
        // Lagrange basis polynomial for share i evaluated at 0: prod x_j / (x_j - x_i).
        let mut basis = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(xj, inv(xj ^ xs[i])));
            }
        }
        for (s, &y) in secret.iter_mut().zip(share.iter()) {
            *s ^= mul(y, basis);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn field_inverse_is_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "a = {a}");
        }
        assert_eq!(mul(0x57, 0x83), 0xc1); // FIPS-197 example
    }

    #[test]
    fn every_threshold_and_count_up_to_ten_recovers_the_secret() {
        let secret: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7)).collect();
        for n in 1..=10u8 {
            for t in 1..=n {
                let shares = split(&secret, n, t).unwrap();
                assert_eq!(shares.len(), usize::from(n));
                // Every window of t consecutive shares (wrapping) recovers it.
                for start in 0..usize::from(n) {
                    let subset: Vec<&[u8]> = (0..usize::from(t))
                        .map(|k| shares[(start + k) % usize::from(n)].as_slice())
                        .collect();
                    assert_eq!(*combine(&subset).unwrap(), secret, "n={n} t={t}");
                }
                if t > 1 {
                    let fewer: Vec<&[u8]> = shares[..usize::from(t) - 1]
                        .iter()
                        .map(|s| s.as_slice())
                        .collect();
                    assert_ne!(*combine(&fewer).unwrap(), secret, "n={n} t={t}");
                }
            }
        }
    }

    #[test]
    fn bad_parameters_and_shares_are_refused() {
        assert_eq!(
            split(b"k", 3, 4).unwrap_err(),
            ShamirError::InvalidParameters
        );
        assert_eq!(
            split(b"k", 0, 0).unwrap_err(),
            ShamirError::InvalidParameters
        );
        let shares = split(b"key", 3, 2).unwrap();
        assert_eq!(
            combine(&[shares[0].as_slice(), shares[0].as_slice()]).unwrap_err(),
            ShamirError::MalformedShares
        );
        assert_eq!(
            combine(&[shares[0].as_slice(), &shares[1][..2]]).unwrap_err(),
            ShamirError::MalformedShares
        );
    }

    proptest! {
        #[test]
        fn any_subset_of_threshold_size_recovers(
            secret in proptest::collection::vec(any::<u8>(), 1..40),
            n in 1u8..=10,
            t_seed in 0u8..10,
            pick_seed in any::<u64>(),
        ) {
            let t = 1 + t_seed % n;
            let shares = split(&secret, n, t).unwrap();
            let mut idx: Vec<usize> = (0..usize::from(n)).collect();
            // Deterministic shuffle from the seed.
            let mut s = pick_seed;
            for i in (1..idx.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                idx.swap(i, (s >> 33) as usize % (i + 1));
            }
            let subset: Vec<&[u8]> = idx[..usize::from(t)].iter().map(|&i| shares[i].as_slice()).collect();
            prop_assert_eq!(&*combine(&subset).unwrap(), &secret);
        }
    }
}
