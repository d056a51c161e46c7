//! TTL arithmetic for tokens: pure functions of the request, the parent, the
//! limits and "now", so they are tested without a clock.

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
    now: i64,
) -> TtlPlan {
    let mut ttl = match requested_ttl {
        Some(t) if t > 0 => t,
        _ if is_root_policy && explicit_max_ttl == 0 => {
            return match parent_expire_time {
                None => TtlPlan {
                    ttl: 0,
                    expire_time: None,
                },
                Some(parent) => capped(parent.saturating_sub(now).max(0) as u64, now),
            };
        }
        _ => limits.default_ttl,
    };
    if explicit_max_ttl > 0 {
        ttl = ttl.min(explicit_max_ttl);
    }
    ttl = ttl.min(limits.max_ttl);
    if let Some(parent) = parent_expire_time {
        ttl = ttl.min(parent.saturating_sub(now).max(0) as u64);
    }
    capped(ttl, now)
}

fn capped(ttl: u64, now: i64) -> TtlPlan {
    TtlPlan {
        ttl,
        expire_time: Some(now.saturating_add(ttl as i64)),
    }
}

/// New expiry on renewal: `now + increment` (or the original TTL), never past the
/// explicit max or the system max counted from creation. Returns the expiry and
/// whether it was capped.
pub fn plan_renewal(
    increment: Option<u64>,
    creation_ttl: u64,
    creation_time: i64,
    explicit_max_ttl: u64,
    limits: TtlLimits,
    now: i64,
) -> (i64, bool) {
    let wanted = match increment {
        Some(i) if i > 0 => i,
        _ if creation_ttl > 0 => creation_ttl,
        _ => limits.default_ttl,
    };
    let mut expire = now.saturating_add(wanted as i64);
    let mut limit = creation_time.saturating_add(limits.max_ttl as i64);
    if explicit_max_ttl > 0 {
        limit = limit.min(creation_time.saturating_add(explicit_max_ttl as i64));
    }
    let capped = expire > limit;
    if capped {
        expire = limit;
    }
    (expire, capped)
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
        let now = 1_000;
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
            plan_new_token(Some(7200), 0, false, Some(now + 100), LIMITS, now).ttl,
            100
        );
    }

    #[test]
    fn root_without_ttl_never_expires_unless_parent_does() {
        assert_eq!(
            plan_new_token(None, 0, true, None, LIMITS, 5),
            TtlPlan {
                ttl: 0,
                expire_time: None
            }
        );
        assert_eq!(
            plan_new_token(None, 0, true, Some(65), LIMITS, 5).expire_time,
            Some(65)
        );
        assert_eq!(plan_new_token(None, 30, true, None, LIMITS, 5).ttl, 30);
    }

    #[test]
    fn renewal_is_capped_by_max_ttls_as_time_passes() {
        let clock = ManualClock::new(10_000);
        let created = clock.now();
        // explicit max 2h, ttl 1h
        let (exp, capped) = plan_renewal(None, 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 3600, false));
        clock.advance(Duration::from_secs(3000));
        let (exp, capped) = plan_renewal(Some(3600), 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 6600, false));
        clock.advance(Duration::from_secs(3000));
        let (exp, capped) = plan_renewal(Some(3600), 3600, created, 7200, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 7200, true));
        // system max applies without an explicit max
        clock.advance(Duration::from_secs(9 * 3600));
        let (exp, capped) = plan_renewal(Some(7200), 3600, created, 0, LIMITS, clock.now());
        assert_eq!((exp, capped), (created + 10 * 3600, true));
    }
}
