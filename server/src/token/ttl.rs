//! TTL arithmetic for tokens: pure functions of the request, the parent, the
//! limits and "now", so they are tested without a clock. Expiry times are unix
//! seconds, as they are stored in token entries.
//!
//! Durations arrive as `u64` seconds straight from requests, so every step
//! saturates: a huge TTL, increment, period or explicit max becomes "as long as
//! the other caps allow", never a wrapped negative that expires the token.

use crate::clock::UnixTime;

/// System-wide TTL limits (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlLimits {
    /// TTL when a request names none
    pub default_ttl: u64,
    /// no token lives longer than this from its creation
    pub max_ttl: u64,
}

impl Default for TtlLimits {
    fn default() -> Self {
        // Shorter than Vault's 768h default on purpose: a forgotten token should die soon.
        TtlLimits {
            default_ttl: 24 * 3600,
            max_ttl: 768 * 3600,
        }
    }
}

/// The outcome of TTL planning for a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPlan {
    /// effective TTL in seconds (0 = never expires)
    pub ttl: u64,
    /// unix seconds of expiry, if any
    pub expire_time: Option<i64>,
}

/// TTL of a new token. Root tokens asked for without a TTL never expire (as in
/// Vault); every other token gets `default_ttl`, capped by `explicit_max_ttl`, the
/// system max and the parent's remaining life.
pub fn plan_new_token(
    requested_ttl: Option<u64>,
    explicit_max_ttl: u64,
    is_root_policy: bool,
    parent_expire_time: Option<i64>,
    limits: TtlLimits,
    now: UnixTime,
) -> TtlPlan {
    let now = now.secs();
    let mut ttl = match requested_ttl {
        Some(t) if t > 0 => t,
        _ if is_root_policy && explicit_max_ttl == 0 => {
            return match parent_expire_time {
                None => TtlPlan {
                    ttl: 0,
                    expire_time: None,
                },
                Some(parent) => capped(until(parent, now), now),
            };
        }
        _ => limits.default_ttl,
    };
    if explicit_max_ttl > 0 {
        ttl = ttl.min(explicit_max_ttl);
    }
    ttl = ttl.min(limits.max_ttl);
    if let Some(parent) = parent_expire_time {
        ttl = ttl.min(until(parent, now));
    }
    capped(ttl, now)
}

fn capped(ttl: u64, now: i64) -> TtlPlan {
    TtlPlan {
        ttl,
        expire_time: Some(after(now, ttl)),
    }
}

/// `at + secs`, saturating at the end of time instead of wrapping.
fn after(at: i64, secs: u64) -> i64 {
    i64::try_from(secs).map_or(i64::MAX, |s| at.saturating_add(s))
}

/// Seconds from `now` until `at` (0 when it is past).
fn until(at: i64, now: i64) -> u64 {
    u64::try_from(at.saturating_sub(now)).unwrap_or(0)
}

/// The period a periodic token is created with: no longer than the system max,
/// so one renewal can never reach further than a fresh token could.
pub fn plan_period(period: u64, limits: TtlLimits) -> u64 {
    period.min(limits.max_ttl)
}

/// New expiry on renewal: `now + increment` (or the original TTL), never past the
/// explicit max or the system max counted from creation. A periodic token gets its
/// period from now instead, bounded only by its explicit max. Returns the expiry
/// and whether it was capped.
pub fn plan_renewal(
    increment: Option<u64>,
    period: u64,
    creation_ttl: u64,
    creation_time: i64,
    explicit_max_ttl: u64,
    limits: TtlLimits,
    now: UnixTime,
) -> (i64, bool) {
    let now = now.secs();
    let (wanted, mut limit) = if period > 0 {
        (plan_period(period, limits), i64::MAX)
    } else {
        let wanted = match increment {
            Some(i) if i > 0 => i,
            _ if creation_ttl > 0 => creation_ttl,
            _ => limits.default_ttl,
        };
        (wanted, after(creation_time, limits.max_ttl))
    };
    if explicit_max_ttl > 0 {
        limit = limit.min(after(creation_time, explicit_max_ttl));
    }
    let expire = after(now, wanted);
    if expire > limit {
        (limit, true)
    } else {
        (expire, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use std::time::Duration;

    const LIMITS: TtlLimits = TtlLimits {
        default_ttl: 3600,
        max_ttl: 10 * 3600,
    };

    #[test]
    fn default_explicit_and_system_caps() {
        let now = UnixTime::from_secs(1_000);
        assert_eq!(plan_new_token(None, 0, false, None, LIMITS, now).ttl, 3600);
        assert_eq!(
            plan_new_token(Some(60), 0, false, None, LIMITS, now).expire_time,
            Some(1_060)
        );
        assert_eq!(
            plan_new_token(Some(7200), 600, false, None, LIMITS, now).ttl,
            600
        );
        assert_eq!(
            plan_new_token(Some(99 * 3600), 0, false, None, LIMITS, now).ttl,
            10 * 3600
        );
        assert_eq!(
            plan_new_token(Some(7200), 0, false, Some(1_100), LIMITS, now).ttl,
            100
        );
    }

    #[test]
    fn root_without_ttl_never_expires_unless_parent_does() {
        assert_eq!(
            plan_new_token(None, 0, true, None, LIMITS, UnixTime::from_secs(5)),
            TtlPlan {
                ttl: 0,
                expire_time: None
            }
        );
        assert_eq!(
            plan_new_token(None, 0, true, Some(65), LIMITS, UnixTime::from_secs(5)).expire_time,
            Some(65)
        );
        assert_eq!(
            plan_new_token(None, 30, true, None, LIMITS, UnixTime::from_secs(5)).ttl,
            30
        );
    }

    #[test]
    fn renewal_is_capped_by_max_ttls_as_time_passes() {
        let clock = ManualClock::new(10_000);
        let created = clock.now().secs();
        // explicit max 2h, ttl 1h
        let (exp, capped) = plan_renewal(None, 0, 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 3600, false));
        clock.advance(Duration::from_secs(3000));
        let (exp, capped) = plan_renewal(Some(3600), 0, 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 6600, false));
        clock.advance(Duration::from_secs(3000));
        let (exp, capped) = plan_renewal(Some(3600), 0, 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 7200, true));
        // system max applies without an explicit max
        clock.advance(Duration::from_secs(9 * 3600));
        let (exp, capped) = plan_renewal(Some(7200), 0, 3600, created, 0, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 10 * 3600, true));
    }

    proptest::proptest! {
        /// Whatever a request asks for, a new token gets a TTL within the system
        /// max and an expiry that is `now + ttl`, in the future.
        #[test]
        fn new_tokens_are_alive_and_capped(
            ttl in proptest::option::of(proptest::num::u64::ANY),
            explicit in proptest::num::u64::ANY,
            root in proptest::bool::ANY,
            parent_left in proptest::option::of(1i64..i64::MAX / 4),
            now in 0i64..i64::MAX / 4,
        ) {
            let parent = parent_left.map(|l| now + l);
            let plan = plan_new_token(ttl, explicit, root, parent, LIMITS, UnixTime::from_secs(now));
            if let Some(e) = plan.expire_time {
                proptest::prop_assert!(plan.ttl <= LIMITS.max_ttl || parent.is_some());
                proptest::prop_assert_eq!(e, now + plan.ttl as i64);
                if let Some(p) = parent {
                    proptest::prop_assert!(e <= p);
                }
                proptest::prop_assert!(plan.ttl > 0 || explicit == 0 && ttl.is_none_or(|t| t == 0) && root);
            } else {
                proptest::prop_assert!(root && parent.is_none());
            }
        }

        /// Renewing a live token never moves its expiry into the past, and never
        /// past its caps.
        #[test]
        fn renewal_never_kills_and_never_exceeds_caps(
            increment in proptest::option::of(proptest::num::u64::ANY),
            period in proptest::num::u64::ANY,
            creation_ttl in proptest::num::u64::ANY,
            explicit in proptest::num::u64::ANY,
            created in 0i64..i64::MAX / 4,
            age in 0i64..(10 * 3600),
        ) {
            let now = created + age;
            let (exp, capped) =
                plan_renewal(increment, period, creation_ttl, created, explicit, LIMITS, UnixTime::from_secs(now));
            let mut limit = if period > 0 { i64::MAX } else { created + LIMITS.max_ttl as i64 };
            if explicit > 0 {
                limit = limit.min(after(created, explicit));
            }
            proptest::prop_assert!(exp <= limit);
            proptest::prop_assert!(exp <= now + LIMITS.max_ttl as i64);
            if limit > now {
                proptest::prop_assert!(exp > now, "a live token renewed into the past");
            }
            proptest::prop_assert_eq!(capped, exp == limit && exp < after(now, if period > 0 { period.min(LIMITS.max_ttl) } else { increment.filter(|i| *i > 0).unwrap_or(if creation_ttl > 0 { creation_ttl } else { LIMITS.default_ttl }) }));
        }
    }
}
