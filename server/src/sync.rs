//! Locks whose poisoning never skips a step. A std lock is poisoned when a
//! thread panicked while holding it; every lock here guards state that a
//! panic cannot leave half-changed (a single assignment, a map insert), so the
//! state is used as it is — sealing still drops the keys, a rate limit still
//! counts, a policy change still reaches the cache — and the event is logged.
//! Code must not treat a poisoned lock as "nothing to do".

// The one place std locks are taken (clippy.toml bans them elsewhere).
#![allow(clippy::disallowed_methods)]

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

fn poisoned<G>(e: PoisonError<G>) -> G {
    tracing::error!("a lock was poisoned by a panic elsewhere; continuing with its state");
    e.into_inner()
}

/// Reads `lock`, poisoned or not.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(poisoned)
}

/// Writes `lock`, poisoned or not.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(poisoned)
}

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(poisoned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_still_written() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let l = std::sync::Arc::new(RwLock::new(1));
        let (m2, l2) = (m.clone(), l.clone());
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = l2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && l.is_poisoned());
        *lock(&m) = 2;
        *write(&l) = 2;
        assert_eq!((*lock(&m), *read(&l)), (2, 2));
    }
}
