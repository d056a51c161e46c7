//! Password hashing with Argon2id, off the async runtime, through one bounded
//! pool. Parameters are stored in each PHC hash string, so they can be raised
//! later without breaking old hashes. An unknown user is verified against a
//! dummy hash so it costs the same time, and goes through the same pool.
//!
//! The pool holds at most `concurrency` hashes at once (default: the number of
//! cores); a request that cannot get a place within `queue_timeout` is refused
//! with [`PasswordError::Busy`] (503 with `Retry-After`). Each place owns one
//! Argon2 memory buffer (19 MiB at the default parameters) that is reused, never
//! freed, so the memory hashing takes is `concurrency` buffers however many
//! logins arrive, and does not grow with the allocator's per-thread arenas.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::logical::LogicalError;

/// OWASP's recommendation for Argon2id (2024): 19 MiB, 2 iterations, 1 lane.
pub const DEFAULT_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

/// What a client refused by a full pool is told to wait, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Buffers larger than this (a stored hash with a huge `m`) are not kept.
const MAX_POOLED_BLOCKS: usize = 64 * 1024;

/// Why hashing or verifying did not give an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Every place in the pool stayed taken for the whole queue timeout.
    #[error("password hashing is at capacity")]
    Busy,
    /// Hashing failed, or a stored hash is corrupt.
    #[error("{0}")]
    Failed(&'static str),
}

impl From<PasswordError> for LogicalError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => LogicalError::Busy(RETRY_AFTER_SECS),
            PasswordError::Failed(_) => LogicalError::Corrupt,
        }
    }
}

/// The pool's size and patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// hashes computed at once
    pub concurrency: usize,
    /// how long a request waits for a place before [`PasswordError::Busy`]
    pub queue_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_timeout: Duration::from_secs(1),
        }
    }
}

/// Places (permits) and the memory buffers that go with them.
#[derive(Debug, Clone)]
struct Pool {
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    queue_timeout: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A buffer list stays valid whatever a panicking holder was doing.
    crate::sync::lock(m)
}

impl Pool {
    fn new(settings: PoolSettings) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            queue_timeout: settings.queue_timeout,
        }
    }

    /// Runs `work` on a blocking thread with a place and a memory buffer. The
    /// place is held by the blocking task itself, so a caller that goes away
    /// cannot let more hashes run than there are places.
    async fn run<T, F>(&self, work: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> Result<T, PasswordError> + Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => return Err(PasswordError::Busy),
            };
        let buffers = self.buffers.clone();
        let mut memory = lock(&buffers).pop().unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let out = work(&mut memory);
            if memory.len() <= MAX_POOLED_BLOCKS {
                lock(&buffers).push(memory);
            }
            drop(permit);
            out
        })
        .await
        .map_err(|_| PasswordError::Failed("password hashing failed"))?
    }
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Sets the process's pool from the configuration; call once at start, before
/// any hashing (later calls, and calls after first use, change nothing).
pub fn configure(settings: PoolSettings) {
    let _ = POOL.set(Pool::new(settings));
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| Pool::new(PoolSettings::default()))
}

fn hasher(params: (u32, u32, u32)) -> Result<Argon2<'static>, PasswordError> {
    let p = Params::new(params.0, params.1, params.2, None)
        .map_err(|_| PasswordError::Failed("invalid password hashing parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// The first `count` blocks of the pooled buffer (grown if needed).
fn blocks(memory: &mut Vec<Block>, count: usize) -> &mut [Block] {
    if memory.len() < count {
        memory.resize(count, Block::default());
    }
    &mut memory[..count]
}

const FAILED: PasswordError = PasswordError::Failed("password hashing failed");
const CORRUPT: PasswordError = PasswordError::Failed("a stored password hash is corrupt");

/// Hashes `password` into a PHC string with `memory` as Argon2's working memory.
fn hash_blocking(
    password: &[u8],
    params: (u32, u32, u32),
    memory: &mut Vec<Block>,
) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = hasher(params)?;
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|_| FAILED)?;
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    let count = argon.params().block_count();
    argon
        .hash_password_into_with_memory(password, salt_bytes, &mut out[..], blocks(memory, count))
        .map_err(|_| FAILED)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|_| FAILED)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out[..]).map_err(|_| FAILED)?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string, with the parameters recorded in it.
fn verify_blocking(
    password: &[u8],
    phc: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| CORRUPT)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| CORRUPT)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| CORRUPT)?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|_| CORRUPT)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(CORRUPT);
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|_| CORRUPT)?;
    let count = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    argon
        .hash_password_into_with_memory(password, salt_bytes, &mut out[..], blocks(memory, count))
        .map_err(|_| CORRUPT)?;
    Ok(out.ct_eq(expected.as_bytes()).into())
}

/// Hashes a password on a blocking thread, through the pool.
pub async fn hash(
    password: Zeroizing<String>,
    params: (u32, u32, u32),
) -> Result<String, PasswordError> {
    pool()
        .run(move |memory| hash_blocking(password.as_bytes(), params, memory))
        .await
}

/// Verifies on a blocking thread, through the pool. `None` for `stored`
/// verifies against a dummy hash (and fails) so that unknown users cost the
/// same as wrong passwords. A wrong password is `Ok(false)`; only real failures
/// (and a full pool) are errors.
pub async fn verify(
    password: Zeroizing<String>,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    verify_in(pool(), password, stored).await
}

async fn verify_in(
    pool: &Pool,
    password: Zeroizing<String>,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    pool.run(move |memory| {
        let (phc, real) = match &stored {
            Some(s) => (s.as_str(), true),
            None => (dummy_hash(memory)?, false),
        };
        let ok = verify_blocking(password.as_bytes(), phc, memory)?;
        Ok(ok && real)
    })
    .await
}

fn dummy_hash(memory: &mut Vec<Block>) -> Result<&'static str, PasswordError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(d) = DUMMY.get() {
        return Ok(d);
    }
    let random = crate::crypto::random_base62(32).map_err(|_| FAILED)?;
    let hashed = hash_blocking(random.as_bytes(), DEFAULT_PARAMS, memory)?;
    Ok(DUMMY.get_or_init(|| hashed))
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
    fn hashes_are_standard_phc_strings() {
        // What the argon2 crate's own verifier accepts, both ways.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Vec::new();
        let ours = hash_blocking(b"correct horse", TEST_PARAMS, &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = hasher(TEST_PARAMS)
            .unwrap()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking(b"battery staple", &theirs, &mut memory).unwrap());
        assert!(!verify_blocking(b"battery stapler", &theirs, &mut memory).unwrap());
        assert_eq!(
            verify_blocking(b"x", "$argon2id$garbage", &mut memory),
            Err(CORRUPT)
        );
    }

    #[tokio::test]
    async fn a_full_pool_refuses_after_its_queue_timeout_and_keeps_its_buffers() {
        let pool = Pool::new(PoolSettings {
            concurrency: 1,
            queue_timeout: Duration::from_millis(1),
        });
        let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = go_tx.send(());
                    let _ = held_rx.recv();
                    Ok(())
                })
                .await
            })
        };
        go_rx.await.unwrap();
        let refused = verify_in(&pool, Zeroizing::new("pw".into()), None).await;
        assert_eq!(refused, Err(PasswordError::Busy));
        assert!(matches!(
            LogicalError::from(PasswordError::Busy),
            LogicalError::Busy(RETRY_AFTER_SECS)
        ));
        held_tx.send(()).unwrap();
        holder.await.unwrap().unwrap();
        // The place is free again; unknown users are verified (and fail) as ever.
        assert_eq!(
            verify_in(&pool, Zeroizing::new("pw".into()), None).await,
            Ok(false)
        );
        // One place, one buffer, whatever ran.
        assert_eq!(lock(&pool.buffers).len(), 1);
        assert_eq!(lock(&pool.buffers)[0].len(), DEFAULT_PARAMS.0 as usize);
    }

    #[test]
    fn default_parameters_meet_owasp() {
        assert!(DEFAULT_PARAMS.0 >= 19 * 1024 && DEFAULT_PARAMS.1 >= 2);
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
