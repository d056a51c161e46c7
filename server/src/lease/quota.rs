//! Lease-count quotas (`sys/quotas/lease-count/<name>`): at most `max_leases`
//! live leases under a path (a mount, or a role's path such as
//! `database/creds/deploy-app`; an empty path is global). A request under a
//! quota's path reserves a slot before its engine runs, by a conditional change
//! of the quota's counter, so concurrent requests on any node cannot overshoot;
//! the slot is given back when the request made no lease, and when the lease
//! ends. A slot lost to a crash between reserving and recording is recounted by
//! `sys/leases/tidy`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierError, BarrierOp, CAS_ATTEMPTS};
use crate::logical::LogicalError;

/// Quota definitions.
pub const QUOTA_PREFIX: &str = "sys/quotas/lease-count/";
/// Each quota's counter of reserved slots.
const COUNT_PREFIX: &str = "sys/quotas/lease-count-used/";

/// One quota.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Quota {
    /// its name
    pub name: String,
    /// the path prefix it limits ("" = everything)
    pub path: String,
    /// live leases allowed under the path
    pub max_leases: u64,
}

impl Quota {
    /// Whether a request on `path` counts against this quota.
    pub fn covers(&self, path: &str) -> bool {
        let base = self.path.trim_end_matches('/');
        base.is_empty()
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

fn count_key(name: &str) -> String {
    format!("{COUNT_PREFIX}{name}")
}

/// Slots in use for quota `name`.
pub async fn used(barrier: &Barrier, name: &str) -> Result<u64, LogicalError> {
    Ok(match barrier.get(&count_key(name)).await? {
        Some(raw) => serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?,
        None => 0,
    })
}

/// Adds `delta` to the counter of `name` if the result stays within `max`
/// (`None`: no bound, for giving slots back). Answers whether it changed.
async fn adjust(
    barrier: &Barrier,
    name: &str,
    delta: i64,
    max: Option<u64>,
) -> Result<bool, LogicalError> {
    let key = count_key(name);
    for _ in 0..CAS_ATTEMPTS * 4 {
        let (raw, guard) = barrier.get_versioned(&key).await?;
        let now: u64 = match &raw {
            Some(r) => serde_json::from_slice(r).map_err(|_| LogicalError::Corrupt)?,
            None => 0,
        };
        let next = now.saturating_add_signed(delta);
        if max.is_some_and(|m| next > m) {
            return Ok(false);
        }
        let op = BarrierOp::Put {
            key: key.clone(),
            value: Zeroizing::new(next.to_string().into_bytes()),
            expires_at: None,
        };
        if barrier
            .apply_if(std::slice::from_ref(&guard), vec![op])
            .await?
        {
            return Ok(true);
        }
    }
    Err(LogicalError::Barrier(BarrierError::Contended))
}

/// Reserves one slot in each quota of `quotas` that covers `path`; answers
/// their names, or the refusal of the first full one (nothing stays reserved).
pub async fn reserve(
    barrier: &Barrier,
    quotas: &[Quota],
    path: &str,
) -> Result<Vec<String>, LogicalError> {
    let mut taken = Vec::new();
    for q in quotas.iter().filter(|q| q.covers(path)) {
        if adjust(barrier, &q.name, 1, Some(q.max_leases)).await? {
            taken.push(q.name.clone());
        } else {
            release(barrier, &taken).await?;
            return Err(LogicalError::QuotaExceeded(format!(
                "lease count quota \"{}\" reached: at most {} leases under \"{}\"; revoke some or raise max_leases",
                q.name,
                q.max_leases,
                if q.path.is_empty() { "(everything)" } else { q.path.as_str() }
            )));
        }
    }
    Ok(taken)
}

/// Gives back one slot in each named quota.
pub async fn release(barrier: &Barrier, names: &[String]) -> Result<(), LogicalError> {
    for name in names {
        adjust(barrier, name, -1, None).await?;
    }
    Ok(())
}

/// Sets quota `name`'s counter to `count` (tidy's recount).
pub async fn set_used(barrier: &Barrier, name: &str, count: u64) -> Result<(), LogicalError> {
    barrier
        .apply(vec![BarrierOp::Put {
            key: count_key(name),
            value: Zeroizing::new(count.to_string().into_bytes()),
            expires_at: None,
        }])
        .await?;
    Ok(())
}

/// Every stored quota.
pub async fn load_all(barrier: &Barrier) -> Result<Vec<Quota>, LogicalError> {
    let mut out = Vec::new();
    for key in barrier.list(QUOTA_PREFIX, None, 1000).await?.keys {
        if let Some(raw) = barrier.get(&key).await? {
            out.push(serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?);
        }
    }
    Ok(out)
}

/// Writes (or, with `None`, deletes) quota `name`.
pub async fn store(
    barrier: &Barrier,
    name: &str,
    quota: Option<&Quota>,
) -> Result<(), LogicalError> {
    let key = format!("{QUOTA_PREFIX}{name}");
    let op = match quota {
        Some(q) => BarrierOp::Put {
            key,
            value: Zeroizing::new(serde_json::to_vec(q).map_err(|_| LogicalError::Corrupt)?),
            expires_at: None,
        },
        None => BarrierOp::Delete { key },
    };
    let mut ops = vec![op];
    if quota.is_none() {
        ops.push(BarrierOp::Delete {
            key: count_key(name),
        });
    }
    barrier.apply(ops).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Quota;

    fn q(path: &str) -> Quota {
        Quota {
            name: "q".into(),
            path: path.into(),
            max_leases: 1,
        }
    }

    #[test]
    fn a_quota_covers_its_path_and_below_only() {
        assert!(q("database/").covers("database/creds/app"));
        assert!(q("database").covers("database/creds/app"));
        assert!(!q("database").covers("databases/creds/app"));
        assert!(q("database/creds/app").covers("database/creds/app"));
        assert!(!q("database/creds/app").covers("database/creds/app2"));
        assert!(q("").covers("anything/at/all"));
        assert!(!q("database/").covers("databases/creds/app"));
    }
}
