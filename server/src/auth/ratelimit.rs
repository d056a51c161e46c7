//! A fixed-window rate limit per client address for login endpoints. In memory
//! and per node: it slows guessing from one address; the per-user lockout (in
//! storage) is what stops guessing across addresses and nodes.

use crate::clock::UnixTime;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Attempts per (endpoint, address) per window.
#[derive(Debug)]
pub struct RateLimiter {
    window_secs: i64,
    seen: Mutex<HashMap<(String, IpAddr), (i64, u32)>>,
}

impl RateLimiter {
    /// Windows of `window_secs`.
    pub fn new(window_secs: i64) -> RateLimiter {
        RateLimiter {
            window_secs,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt at `scope` from `addr`; `Err(retry_after_secs)` when
    /// more than `per_window` were made in the current window.
    pub fn check(
        &self,
        scope: &str,
        addr: Option<IpAddr>,
        per_window: u32,
        now: UnixTime,
    ) -> Result<(), u64> {
        // 0: no limit (`AuthMethod::login_rate_per_minute`'s default).
        if per_window == 0 {
            return Ok(());
        }
        let now = now.secs();
        let Some(addr) = addr else { return Ok(()) };
        let mut seen = crate::sync::lock(&self.seen);
        if seen.len() > 100_000 {
            seen.retain(|_, (start, _)| now - *start < self.window_secs);
        }
        let entry = seen.entry((scope.to_owned(), addr)).or_insert((now, 0));
        if now - entry.0 >= self.window_secs {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > per_window {
            Err((entry.0 + self.window_secs - now).max(1) as u64)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let r = RateLimiter::new(60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.check("m", Some(a), 2, UnixTime::from_secs(0)).is_ok());
        assert!(r.check("m", Some(a), 2, UnixTime::from_secs(1)).is_ok());
        assert_eq!(r.check("m", Some(a), 2, UnixTime::from_secs(2)), Err(58));
        for _ in 0..5 {
            assert!(
                r.check("n", Some(a), 0, UnixTime::from_secs(2)).is_ok(),
                "0 is no limit"
            );
        }
        assert!(
            r.check("m", Some(b), 2, UnixTime::from_secs(2)).is_ok(),
            "another address is not affected"
        );
        assert!(
            r.check("other", Some(a), 2, UnixTime::from_secs(2)).is_ok(),
            "another endpoint is not affected"
        );
        assert!(
            r.check("m", Some(a), 2, UnixTime::from_secs(60)).is_ok(),
            "a new window"
        );
    }
}
