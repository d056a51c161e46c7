//! Time as a parameter: every TTL, expiry and timestamp in the server comes from a
//! [`Clock`], so tests can move time without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" in unix seconds (and nanoseconds, for timestamps).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Seconds since the epoch.
    fn now(&self) -> i64 {
        self.now_nanos().div_euclid(1_000_000_000) as i64
    }
    /// Nanoseconds since the epoch.
    fn now_nanos(&self) -> i128;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the server reads the wall clock.
    #[allow(clippy::disallowed_methods)]
    fn now_nanos(&self) -> i128 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }
    }
}

/// A clock that only moves when told to (tests, and `coffer` tooling).
#[derive(Debug)]
pub struct ManualClock {
    secs: AtomicI64,
}

impl ManualClock {
    /// Starts at `secs` since the epoch.
    pub fn new(secs: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            secs: AtomicI64::new(secs),
        })
    }
    /// Moves forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.secs.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> i128 {
        i128::from(self.secs.load(Ordering::SeqCst)) * 1_000_000_000
    }
}

/// Formats unix nanoseconds as RFC 3339 with nanoseconds and a `Z`, as Vault does.
pub fn rfc3339(nanos: i128) -> String {
    let nanos = nanos.max(0);
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Formats unix seconds as RFC 3339.
pub fn rfc3339_secs(secs: i64) -> String {
    rfc3339(i128::from(secs) * 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(Duration::from_secs(61));
        assert_eq!(c.now(), 1_061);
    }

    #[test]
    fn formats_like_vault() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_500_000_000_123_456_789),
            "2017-07-14T02:40:00.123456789Z"
        );
    }
}
