//! Time as a parameter: every TTL, expiry and timestamp in the server comes from a
//! [`Clock`], so tests can move time without sleeping. A reading is a [`UnixTime`]:
//! whoever needs seconds or nanoseconds says so (`secs()`, `nanos()`), so the two
//! scales cannot be mixed up by passing one where the other is meant.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A point in time: nanoseconds since the unix epoch (negative before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime {
    nanos: i128,
}

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: UnixTime = UnixTime { nanos: 0 };

    /// From whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> UnixTime {
        UnixTime {
            nanos: secs as i128 * NANOS_PER_SEC,
        }
    }
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i128) -> UnixTime {
        UnixTime { nanos }
    }
    /// Whole seconds since the epoch (rounded down).
    pub fn secs(self) -> i64 {
        i64::try_from(self.nanos.div_euclid(NANOS_PER_SEC)).unwrap_or(i64::MAX)
    }
    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i128 {
        self.nanos
    }
    /// This time moved forward by `by` (saturating).
    pub fn plus(self, by: Duration) -> UnixTime {
        UnixTime {
            nanos: self.nanos.saturating_add(by.as_nanos() as i128),
        }
    }
    /// RFC 3339 with nanoseconds and a `Z`, as Vault writes timestamps.
    pub fn rfc3339(self) -> String {
        rfc3339(self.nanos)
    }
}

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the server reads the wall clock.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> UnixTime {
        UnixTime::from_nanos(match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        })
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
    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.secs.load(Ordering::SeqCst))
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
        assert_eq!(c.now().secs(), 1_000);
        c.advance(Duration::from_secs(61));
        assert_eq!(c.now().secs(), 1_061);
        assert_eq!(c.now().nanos(), 1_061_000_000_000);
    }

    #[test]
    fn seconds_round_down_before_and_after_the_epoch() {
        assert_eq!(UnixTime::from_nanos(1_999_999_999).secs(), 1);
        assert_eq!(UnixTime::from_nanos(-1).secs(), -1);
        assert_eq!(
            UnixTime::from_secs(5)
                .plus(Duration::from_millis(1500))
                .nanos(),
            6_500_000_000
        );
        assert!(UnixTime::from_secs(1) > UnixTime::from_nanos(999_999_999));
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
