//! How long a certificate lives: the requested `ttl` (or the role's, or the
//! mount's default), capped by the role's `max_ttl` (or the mount's maximum)
//! and by the issuer's own expiry, each cap with Vault's warning. Validity
//! starts `not_before_duration` seconds before issue (clock skew).

use crate::engine::MountContext;

/// Vault's system default and maximum lease TTL (768h), for a mount tuned to 0.
const SYSTEM_TTL: u64 = 768 * 3600;

/// The mount's default and maximum TTL.
pub(super) fn mount_ttls(ctx: &MountContext<'_>) -> (u64, u64) {
    let or_system = |v: u64| if v == 0 { SYSTEM_TTL } else { v };
    let max = or_system(ctx.mount.config.max_lease_ttl);
    (or_system(ctx.mount.config.default_lease_ttl).min(max), max)
}

/// A certificate's validity, with the warnings of the caps applied.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Lifetime {
    pub not_before: i64,
    pub not_after: i64,
    pub warnings: Vec<String>,
}

/// Vault's duration text (`72h0m0s`, `1m30s`, `45s`).
pub(super) fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// The validity for a request at `now`: `requested` (or `default`), at most
/// `max`, ending no later than `ca_not_after` when there is an issuer.
pub(super) fn lifetime(
    now: i64,
    requested: Option<u64>,
    default: u64,
    max: u64,
    ca_not_after: Option<i64>,
    not_before_duration: u64,
) -> Lifetime {
    let mut warnings = Vec::new();
    let mut ttl = requested.filter(|t| *t > 0).unwrap_or(default);
    if ttl > max {
        warnings.push(format!(
            "TTL {:?} is longer than permitted maxTTL {:?}, so maxTTL is being used",
            go_duration(ttl),
            go_duration(max)
        ));
        ttl = max;
    }
    let mut not_after = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    if let Some(ca) = ca_not_after.filter(|ca| not_after > *ca) {
        warnings.push(format!(
            "the requested lifetime would end after the issuer's certificate ({}); the certificate ends with it",
            crate::clock::rfc3339_secs(ca)
        ));
        not_after = ca;
    }
    let skew = i64::try_from(not_before_duration).unwrap_or(0);
    Lifetime {
        not_before: now.saturating_sub(skew),
        not_after,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn the_requested_ttl_is_used_within_the_limits() {
        let l = lifetime(NOW, Some(3600), 7200, 86400, Some(NOW + 10 * 86400), 30);
        assert_eq!((l.not_before, l.not_after), (NOW - 30, NOW + 3600));
        assert!(l.warnings.is_empty());
        // No ttl asked: the default.
        let l = lifetime(NOW, None, 7200, 86400, None, 0);
        assert_eq!(l.not_after, NOW + 7200);
    }

    #[test]
    fn the_ttl_is_capped_by_max_ttl_with_vaults_warning() {
        let l = lifetime(NOW, Some(100 * 3600), 3600, 72 * 3600, None, 30);
        assert_eq!(l.not_after, NOW + 72 * 3600);
        assert_eq!(
            l.warnings,
            ["TTL \"100h0m0s\" is longer than permitted maxTTL \"72h0m0s\", so maxTTL is being used"]
        );
    }

    #[test]
    fn the_ttl_is_capped_by_the_issuers_expiry() {
        let l = lifetime(NOW, Some(10 * 3600), 3600, 86400, Some(NOW + 2 * 3600), 30);
        assert_eq!(l.not_after, NOW + 2 * 3600);
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("issuer"), "{:?}", l.warnings);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(259200), "72h0m0s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(45), "45s");
        assert_eq!(go_duration(3661), "1h1m1s");
    }
}
