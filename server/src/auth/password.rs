//! Password hashing with Argon2id, off the async runtime. Parameters are stored in
//! each PHC hash string, so they can be raised later without breaking old hashes.
//! An unknown user is verified against a dummy hash so it costs the same time.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// OWASP's recommendation for Argon2id (2024): 19 MiB, 2 iterations, 1 lane.
pub const DEFAULT_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

fn hasher(params: (u32, u32, u32)) -> Result<Argon2<'static>, String> {
    let p = Params::new(params.0, params.1, params.2, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hashes `password` (blocking; call through [`hash`]).
fn hash_blocking(password: &[u8], params: (u32, u32, u32)) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher(params)?
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|_| "password hashing failed".to_owned())
}

/// Hashes a password on a blocking thread.
pub async fn hash(password: Zeroizing<String>, params: (u32, u32, u32)) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes(), params))
        .await
        .map_err(|_| "password hashing failed".to_owned())?
}

/// Verifies on a blocking thread. `None` for `stored` verifies against a dummy
/// hash (and fails) so that unknown users cost the same as wrong passwords.
/// A wrong password is `Ok(false)`; only real failures are errors.
pub async fn verify(password: Zeroizing<String>, stored: Option<String>) -> Result<bool, String> {
    tokio::task::spawn_blocking(move || {
        let (phc, real) = match stored {
            Some(s) => (s, true),
            None => (dummy_hash().to_owned(), false),
        };
        let parsed =
            PasswordHash::new(&phc).map_err(|_| "a stored password hash is corrupt".to_owned())?;
        // Verification uses the parameters recorded in the hash itself.
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && real)
    })
    .await
    .map_err(|_| "password verification failed".to_owned())?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = crate::crypto::random_base62(32)
            .map(|s| s.to_string())
            .unwrap_or_default();
        hash_blocking(random.as_bytes(), DEFAULT_PARAMS).unwrap_or_default()
    })
}

/// Refuses passwords that are empty or absurdly long (hashing cost is linear).
pub fn check_policy(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("passwords must be at least 8 characters");
    }
    if password.len() > 1024 {
        return Err("passwords must be at most 1024 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Low cost in tests only; never a default.
    const TEST_PARAMS: (u32, u32, u32) = (64, 1, 1);

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash(Zeroizing::new("correct horse".into()), TEST_PARAMS)
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(
            verify(Zeroizing::new("correct horse".into()), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify(Zeroizing::new("wrong".into()), Some(h))
            .await
            .unwrap());
        assert!(!verify(Zeroizing::new("anything".into()), None)
            .await
            .unwrap());
    }

    #[test]
    fn default_parameters_meet_owasp() {
        assert!(DEFAULT_PARAMS.0 >= 19 * 1024 && DEFAULT_PARAMS.1 >= 2);
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
