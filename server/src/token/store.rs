//! Token persistence: entries under HMAC-ed ids, accessor and parent indexes, and
//! revocation of whole token trees.

use crate::clock::UnixTime;
use crate::lease::LeaseStore;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ttl::{plan_new_token, plan_period, plan_renewal, TtlLimits};
use crate::barrier::{Barrier, BarrierError, BarrierOp, Guard, View, CAS_ATTEMPTS};
use crate::crypto::{hmac_hex, random_base62};
use crate::logical::LogicalError;

/// Where the token HMAC key lives (behind the barrier).
pub const TOKEN_HMAC_KEY_PATH: &str = "core/token-hmac-key";
const PREFIX: &str = "sys/token/";
const ID: &str = "id/";
const ACCESSOR: &str = "accessor/";
const PARENT: &str = "parent/";
/// Storage owned by a token (cubbyholes): `owned/<token key>/<owner>/...`.
const OWNED: &str = "owned/";

/// A stored token. Versioned by its field set; never contains the token id.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenEntry {
    /// Layout version.
    pub version: u32,
    /// the accessor (a handle that can look up or revoke, never authenticate)
    pub accessor: String,
    /// attached policies, sorted
    pub policies: Vec<String>,
    /// the path that created it
    pub path: String,
    /// free-form metadata
    pub meta: BTreeMap<String, String>,
    /// shown in lookups and audit
    pub display_name: String,
    /// remaining uses; 0 = unlimited
    pub num_uses: u64,
    /// unix seconds
    pub creation_time: i64,
    /// TTL at creation (0 = none)
    pub creation_ttl: u64,
    /// hard cap from creation (0 = none)
    pub explicit_max_ttl: u64,
    /// unix seconds; `None` never expires
    pub expire_time: Option<i64>,
    /// may be renewed
    pub renewable: bool,
    /// HMAC id of the parent; `None` for orphans
    pub parent: Option<String>,
    /// entity of the login (empty for token-store tokens)
    pub entity_id: String,
    /// the identity the login authenticated as, for templated policies
    #[serde(default)]
    pub entity: Option<crate::policy::Entity>,
    /// periodic tokens: every renewal sets the TTL to this, with no system max
    #[serde(default)]
    pub period: u64,
    /// the token only works from these networks (empty: anywhere)
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
    /// (Coffer) the token only works over a TLS connection whose client
    /// certificate has this SHA-256 fingerprint (lower-case hex of the leaf's
    /// DER); set by `auth/cert`, inherited by children. Absent in older entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_cert_sha256: Option<String>,
}

/// Why a live token may not be used over a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// not from one of its `bound_cidrs`
    Address,
    /// not with the client certificate it is bound to
    Certificate,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

impl TokenEntry {
    /// Whether a request over `conn` may use this token: from its networks,
    /// and with its certificate when it is bound to one.
    pub fn check_connection(&self, conn: &crate::logical::ConnectionInfo) -> Result<(), Unusable> {
        if !self.usable_from(conn.remote_addr) {
            return Err(Unusable::Address);
        }
        if let Some(bound) = &self.bound_cert_sha256 {
            let presented = conn
                .client_certificates
                .first()
                .map(|leaf| crate::crypto::sha256_hex(leaf));
            let same =
                presented.is_some_and(|p| crate::crypto::ct_eq(p.as_bytes(), bound.as_bytes()));
            if !same {
                return Err(Unusable::Certificate);
            }
        }
        Ok(())
    }

    /// Whether a request from `addr` may use this token.
    pub fn usable_from(&self, addr: Option<std::net::IpAddr>) -> bool {
        self.bound_cidrs.is_empty()
            || addr.is_some_and(|ip| {
                self.bound_cidrs.iter().any(|c| {
                    c.parse::<ipnet::IpNet>()
                        .map(|net| net.contains(&ip))
                        .or_else(|_| c.parse::<std::net::IpAddr>().map(|a| a == ip))
                        .unwrap_or(false)
                })
            })
    }

    /// Whether the entry holds the `root` policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Seconds left (0 for tokens without expiry).
    pub fn ttl_remaining(&self, now: UnixTime) -> u64 {
        self.expire_time
            .map_or(0, |e| e.saturating_sub(now.secs()).max(0) as u64)
    }
}

/// What a caller asks for when creating a token.
#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    /// requested policies (empty: inherit the parent's)
    pub policies: Vec<String>,
    /// do not add `default`
    pub no_default_policy: bool,
    /// requested TTL
    pub ttl: Option<u64>,
    /// hard cap
    pub explicit_max_ttl: u64,
    /// use limit (0 = unlimited)
    pub num_uses: u64,
    /// renewable (default true)
    pub renewable: bool,
    /// create without a parent
    pub orphan: bool,
    /// display name (already prefixed)
    pub display_name: String,
    /// metadata
    pub meta: BTreeMap<String, String>,
    /// creating path
    pub path: String,
    /// the identity of the login (children inherit their parent's)
    pub entity: Option<crate::policy::Entity>,
    /// periodic token: TTL and renewal increment (0 = not periodic)
    pub period: u64,
    /// networks the token may be used from (empty: anywhere)
    pub bound_cidrs: Vec<String>,
    /// the client certificate (SHA-256 of the leaf's DER, hex) the token only
    /// works with; a parent's binding wins
    pub bound_cert_sha256: Option<String>,
}

/// A token the caller presented, found and valid.
#[derive(Debug, Clone)]
pub struct FoundToken {
    /// HMAC of the id (its storage name)
    pub key: String,
    /// the entry
    pub entry: TokenEntry,
}

/// The token store of an unsealed node.
pub struct TokenStore {
    view: View,
    hmac_key: Zeroizing<Vec<u8>>,
    limits: TtlLimits,
    /// tokens removed by this node since unseal (a metric)
    revoked: std::sync::atomic::AtomicU64,
    /// the leases tokens create, revoked with them
    leases: LeaseStore,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenStore { .. }")
    }
}

impl TokenStore {
    /// Opens the store with the HMAC key read from behind the barrier (creating it
    /// on first use).
    pub async fn open(
        barrier: Arc<Barrier>,
        limits: TtlLimits,
    ) -> Result<TokenStore, LogicalError> {
        let hmac_key = match barrier.get(TOKEN_HMAC_KEY_PATH).await? {
            Some(k) => k,
            None => {
                let fresh = crate::crypto::random_array::<32>()
                    .map_err(crate::barrier::BarrierError::from)?;
                barrier.put(TOKEN_HMAC_KEY_PATH, fresh.as_ref()).await?;
                Zeroizing::new(fresh.to_vec())
            }
        };
        Ok(TokenStore {
            leases: LeaseStore::new(barrier.clone()),
            view: View::new(barrier, PREFIX),
            hmac_key,
            limits,
            revoked: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The lease store whose leases die with their tokens.
    pub fn leases(&self) -> &LeaseStore {
        &self.leases
    }

    /// Tokens in storage (live, or expired and waiting for tidy).
    pub async fn count(&self) -> Result<u64, LogicalError> {
        Ok(self.view.count(ID).await?)
    }

    /// Tokens this node has revoked since unseal.
    pub fn revocations(&self) -> u64 {
        self.revoked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The TTL limits in force.
    pub fn limits(&self) -> TtlLimits {
        self.limits
    }

    fn id_key(&self, token: &str) -> String {
        hmac_hex(&self.hmac_key, token.as_bytes())
    }

    fn accessor_key(&self, accessor: &str) -> String {
        hmac_hex(&self.hmac_key, format!("accessor:{accessor}").as_bytes())
    }

    /// The HMAC of a token as audit and metrics may show it.
    pub fn hmac_of(&self, value: &str) -> String {
        self.id_key(value)
    }

    /// Creates a token. `parent` is the creator unless the token is an orphan.
    pub async fn create(
        &self,
        params: CreateParams,
        parent: Option<&FoundToken>,
        now: UnixTime,
    ) -> Result<(Zeroizing<String>, TokenEntry), LogicalError> {
        let (token, entry, ops) = self.prepare(params, parent, now)?;
        self.view.apply(ops).await?;
        Ok((token, entry))
    }

    /// As [`TokenStore::create`], in one transaction with `extra` writes and
    /// only if every guarded key is as it was read: `Ok(None)` and nothing
    /// written otherwise. For tokens handed out once (a break-glass fetch).
    pub async fn create_if(
        &self,
        params: CreateParams,
        now: UnixTime,
        guards: &[crate::barrier::Guard],
        extra: impl FnOnce(&str, &TokenEntry) -> Result<Vec<BarrierOp>, LogicalError>,
    ) -> Result<Option<(Zeroizing<String>, TokenEntry)>, LogicalError> {
        let (token, entry, mut ops) = self.prepare(params, None, now)?;
        ops.extend(extra(&self.id_key(&token), &entry)?);
        if self.view.apply_if(guards, ops).await? {
            Ok(Some((token, entry)))
        } else {
            Ok(None)
        }
    }

    /// A new token, its entry and the writes that store it.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        params: CreateParams,
        parent: Option<&FoundToken>,
        now: UnixTime,
    ) -> Result<(Zeroizing<String>, TokenEntry, Vec<BarrierOp>), LogicalError> {
        let mut policies = if params.policies.is_empty() {
            parent.map(|p| p.entry.policies.clone()).unwrap_or_default()
        } else {
            params.policies.clone()
        };
        policies.retain(|p| !p.is_empty());
        if !params.no_default_policy && !policies.iter().any(|p| p == "root" || p == "default") {
            policies.push("default".into());
        }
        if params.no_default_policy {
            policies.retain(|p| p != "default");
        }
        policies.sort();
        policies.dedup();
        let is_root = policies.iter().any(|p| p == "root");
        let entity = params
            .entity
            .clone()
            .or_else(|| parent.and_then(|p| p.entry.entity.clone()));
        let parent_link = if params.orphan { None } else { parent };
        let period = plan_period(params.period, self.limits);
        let plan = plan_new_token(
            if period > 0 { Some(period) } else { params.ttl },
            params.explicit_max_ttl,
            is_root,
            parent_link.and_then(|p| p.entry.expire_time),
            self.limits,
            now,
        );
        if plan.expire_time.is_some_and(|e| e <= now.secs()) {
            return Err(LogicalError::invalid(
                "the parent token expires too soon to create a child",
            ));
        }
        let token = Zeroizing::new(format!(
            "hvs.{}",
            random_base62(40)
                .map_err(crate::barrier::BarrierError::from)?
                .as_str()
        ));
        let accessor = random_base62(24)
            .map_err(crate::barrier::BarrierError::from)?
            .to_string();
        let entry = TokenEntry {
            version: 1,
            accessor: accessor.clone(),
            policies,
            path: params.path,
            meta: params.meta,
            display_name: params.display_name,
            num_uses: params.num_uses,
            creation_time: now.secs(),
            creation_ttl: plan.ttl,
            explicit_max_ttl: params.explicit_max_ttl,
            expire_time: plan.expire_time,
            renewable: (params.renewable || period > 0) && plan.expire_time.is_some(),
            parent: parent_link.map(|p| p.key.clone()),
            entity_id: entity.as_ref().map(|e| e.id.clone()).unwrap_or_default(),
            entity,
            period,
            // A token bound to networks cannot mint one that works from anywhere
            // (orphans included: the creator's binding is what is at stake).
            bound_cidrs: match parent {
                Some(p) if !p.entry.bound_cidrs.is_empty() => p.entry.bound_cidrs.clone(),
                _ => params.bound_cidrs,
            },
            // Likewise a certificate-bound token: its children need the same key.
            bound_cert_sha256: parent
                .and_then(|p| p.entry.bound_cert_sha256.clone())
                .or(params.bound_cert_sha256),
        };
        let key = self.id_key(&token);
        let mut ops = vec![
            self.entry_op(&key, &entry)?,
            self.view.put_op(
                &format!("{ACCESSOR}{}", self.accessor_key(&accessor)),
                key.clone().into_bytes(),
                entry.expire_time,
            ),
        ];
        if let Some(p) = parent_link {
            ops.push(self.view.put_op(
                &format!("{PARENT}{}/{key}", p.key),
                Vec::new(),
                entry.expire_time,
            ));
        }
        Ok((token, entry, ops))
    }

    fn entry_op(&self, key: &str, entry: &TokenEntry) -> Result<BarrierOp, LogicalError> {
        let raw = serde_json::to_vec(entry).map_err(|_| LogicalError::Corrupt)?;
        Ok(self
            .view
            .put_op(&format!("{ID}{key}"), raw, entry.expire_time))
    }

    async fn load(&self, key: &str, now: UnixTime) -> Result<Option<FoundToken>, LogicalError> {
        let Some(raw) = self.view.get(&format!("{ID}{key}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        if entry.expire_time.is_some_and(|e| e <= now.secs()) {
            return Ok(None);
        }
        Ok(Some(FoundToken {
            key: key.to_owned(),
            entry,
        }))
    }

    /// Finds a valid (unexpired) token by its id.
    pub async fn lookup(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Option<FoundToken>, LogicalError> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        self.load(&self.id_key(token), now).await
    }

    /// Whether `token` names a token that has expired and is not tidied away
    /// yet (for the message of a refused request, never for a decision).
    pub async fn has_expired(&self, token: &str, now: UnixTime) -> Result<bool, LogicalError> {
        if token.is_empty() || token.len() > 512 {
            return Ok(false);
        }
        let Some(raw) = self
            .view
            .get(&format!("{ID}{}", self.id_key(token)))
            .await?
        else {
            return Ok(false);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        Ok(entry.expire_time.is_some_and(|e| e <= now.secs()))
    }

    /// Finds a valid token by accessor.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
        now: UnixTime,
    ) -> Result<Option<FoundToken>, LogicalError> {
        if accessor.is_empty() || accessor.len() > 512 {
            return Ok(None);
        }
        let Some(key) = self
            .view
            .get(&format!("{ACCESSOR}{}", self.accessor_key(accessor)))
            .await?
        else {
            return Ok(None);
        };
        let key = String::from_utf8(key.to_vec()).map_err(|_| LogicalError::Corrupt)?;
        self.load(&key, now).await
    }

    /// Counts one use of a limited-use token and returns the entry as it is after
    /// this use. On the last use the token row is removed at once, so no concurrent
    /// request can use it again; the caller then revokes its children with
    /// [`TokenStore::revoke_tree`] after the request (the second value is `true`).
    pub async fn spend_use(&self, found: &FoundToken) -> Result<(FoundToken, bool), LogicalError> {
        if found.entry.num_uses == 0 {
            return Ok((found.clone(), false));
        }
        // The count is decided by a conditional write on the stored row, never by
        // the copy this request looked up: of N concurrent uses of a token with
        // n uses left, on any number of nodes, exactly n get through.
        for _ in 0..CAS_ATTEMPTS {
            let Some((entry, guard)) = self.load_versioned(&found.key).await? else {
                return Err(LogicalError::PermissionDenied);
            };
            let mut next = FoundToken {
                key: found.key.clone(),
                entry,
            };
            let (ops, last) = match next.entry.num_uses {
                0 => return Ok((next, false)),
                1 => {
                    next.entry.num_uses = 0;
                    (self.removal_ops(&found.key).await?, true)
                }
                n => {
                    next.entry.num_uses = n - 1;
                    (vec![self.entry_op(&found.key, &next.entry)?], false)
                }
            };
            if self.view.apply_if(&[guard], ops).await? {
                return Ok((next, last));
            }
        }
        Err(BarrierError::Contended.into())
    }

    /// The stored entry (expired or not) with a guard for a conditional write.
    async fn load_versioned(&self, key: &str) -> Result<Option<(TokenEntry, Guard)>, LogicalError> {
        let (raw, guard) = self.view.get_versioned(&format!("{ID}{key}")).await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|_| LogicalError::Corrupt)?;
        Ok(Some((entry, guard)))
    }

    /// Extends a token's life. Returns the new entry and whether the max TTL capped it.
    pub async fn renew(
        &self,
        found: &FoundToken,
        increment: Option<u64>,
        now: UnixTime,
    ) -> Result<(TokenEntry, bool), LogicalError> {
        // Re-read under a guard: a concurrent use or renewal must not be undone
        // by writing back the copy this request looked up.
        for _ in 0..CAS_ATTEMPTS {
            let Some((mut entry, guard)) = self.load_versioned(&found.key).await? else {
                return Err(LogicalError::PermissionDenied);
            };
            if entry.expire_time.is_some_and(|e| e <= now.secs()) {
                return Err(LogicalError::PermissionDenied);
            }
            if !entry.renewable || entry.expire_time.is_none() {
                return Err(LogicalError::invalid("lease is not renewable"));
            }
            let (expire, capped) = plan_renewal(
                increment,
                entry.period,
                entry.creation_ttl,
                entry.creation_time,
                entry.explicit_max_ttl,
                self.limits,
                now,
            );
            // A child never outlives its parent: its parent's expiry only moves
            // forward, so capping here keeps the whole tree inside the root's life.
            let (expire, capped) = match &entry.parent {
                Some(parent) => match self.load(parent, now).await? {
                    Some(p) => match p.entry.expire_time {
                        Some(limit) if expire > limit => (limit, true),
                        _ => (expire, capped),
                    },
                    None => {
                        return Err(LogicalError::invalid(
                            "the parent token has expired or was revoked",
                        ))
                    }
                },
                None => (expire, capped),
            };
            if expire <= now.secs() {
                return Err(LogicalError::invalid(
                    "the token cannot be renewed any further",
                ));
            }
            entry.expire_time = Some(expire);
            let mut ops = vec![
                self.entry_op(&found.key, &entry)?,
                self.view.put_op(
                    &format!("{ACCESSOR}{}", self.accessor_key(&entry.accessor)),
                    found.key.clone().into_bytes(),
                    entry.expire_time,
                ),
            ];
            if let Some(parent) = &entry.parent {
                ops.push(self.view.put_op(
                    &format!("{PARENT}{parent}/{}", found.key),
                    Vec::new(),
                    entry.expire_time,
                ));
            }
            if self.view.apply_if(&[guard], ops).await? {
                return Ok((entry, capped));
            }
        }
        Err(BarrierError::Contended.into())
    }

    async fn children(&self, key: &str) -> Result<Vec<String>, LogicalError> {
        let prefix = format!("{PARENT}{key}/");
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.view.list(&prefix, after.as_deref(), 500).await?;
            let Some(last) = page.last().cloned() else {
                return Ok(out);
            };
            out.extend(
                page.iter()
                    .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)),
            );
            after = Some(last);
        }
    }

    /// Ops that remove one token row with its accessor and its link to its parent.
    async fn removal_ops(&self, key: &str) -> Result<Vec<BarrierOp>, LogicalError> {
        let mut ops = vec![self.view.delete_op(&format!("{ID}{key}"))];
        if let Some(raw) = self.view.get(&format!("{ID}{key}")).await? {
            // Counted when the removal is planned; a failed batch overcounts by
            // one, which a metric can live with.
            self.revoked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(entry) = serde_json::from_slice::<TokenEntry>(&raw) {
                ops.push(
                    self.view
                        .delete_op(&format!("{ACCESSOR}{}", self.accessor_key(&entry.accessor))),
                );
                if let Some(parent) = entry.parent {
                    ops.push(self.view.delete_op(&format!("{PARENT}{parent}/{key}")));
                }
            }
        }
        Ok(ops)
    }

    /// Revokes a token and every descendant. Children go first, so that a failure
    /// halfway leaves the parent (and the ability to retry) in place.
    pub async fn revoke_tree(&self, key: &str) -> Result<(), LogicalError> {
        let mut order = vec![key.to_owned()];
        let mut i = 0;
        while i < order.len() {
            let kids = self.children(&order[i]).await?;
            order.extend(kids);
            i += 1;
        }
        for k in order.iter().rev() {
            self.remove_owned(k).await?;
            let ops = self.removal_ops(k).await?;
            self.view.apply(ops).await?;
        }
        Ok(())
    }

    /// Storage that belongs to the token stored under `key`, for `owner` (a
    /// mount's uuid): only requests with that token reach it, and it is removed
    /// when the token is revoked, by whatever path.
    pub fn owned_view(&self, key: &str, owner: &str) -> View {
        self.view.sub(&format!("{OWNED}{key}/{owner}/"))
    }

    /// Removes a token's owned storage; before its row, so that a failure
    /// halfway leaves the token (and the retry) in place.
    async fn remove_owned(&self, key: &str) -> Result<(), LogicalError> {
        // Its leases come due now; the expiry worker revokes them through
        // their engines (with retries), so a slow engine never blocks this.
        self.leases
            .expire_token_leases(key, UnixTime::EPOCH)
            .await?;
        self.view
            .sub(&format!("{OWNED}{key}/"))
            .delete_all()
            .await?;
        Ok(())
    }

    /// Revokes only this token; its children become orphans.
    pub async fn revoke_orphan(&self, key: &str, now: UnixTime) -> Result<(), LogicalError> {
        for child in self.children(key).await? {
            if let Some(mut found) = self.load(&child, now).await? {
                found.entry.parent = None;
                let ops = vec![
                    self.entry_op(&child, &found.entry)?,
                    self.view.delete_op(&format!("{PARENT}{key}/{child}")),
                ];
                self.view.apply(ops).await?;
            } else {
                self.view
                    .apply(vec![self.view.delete_op(&format!("{PARENT}{key}/{child}"))])
                    .await?;
            }
        }
        self.remove_owned(key).await?;
        let ops = self.removal_ops(key).await?;
        self.view.apply(ops).await?;
        Ok(())
    }

    /// Revokes up to `limit` expired tokens (with their trees), found through the
    /// expiry index. Returns how many were due.
    pub async fn tidy(&self, now: UnixTime, limit: u32) -> Result<usize, LogicalError> {
        let due = self.view.expired(ID, now, limit).await?;
        for key in &due {
            if let Some(k) = key.strip_prefix(ID) {
                self.revoke_tree(k).await?;
            }
        }
        Ok(due.len())
    }

    /// Writes a root token with a chosen id (init, dev mode).
    pub async fn create_root(
        &self,
        id: Option<&str>,
        now: UnixTime,
    ) -> Result<Zeroizing<String>, LogicalError> {
        let params = CreateParams {
            policies: vec!["root".into()],
            renewable: false,
            orphan: true,
            display_name: "root".into(),
            path: "auth/token/root".into(),
            ..CreateParams::default()
        };
        let (generated, entry) = self.create(params, None, now).await?;
        match id {
            None => Ok(generated),
            Some(chosen) => {
                // Re-key the entry under the chosen id.
                let generated_key = self.id_key(&generated);
                self.revoke_tree(&generated_key).await?;
                let key = self.id_key(chosen);
                let ops = vec![
                    self.entry_op(&key, &entry)?,
                    self.view.put_op(
                        &format!("{ACCESSOR}{}", self.accessor_key(&entry.accessor)),
                        key.clone().into_bytes(),
                        None,
                    ),
                ];
                self.view.apply(ops).await?;
                Ok(Zeroizing::new(chosen.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_array;
    use crate::storage::{MigrationMode, Storage};

    async fn store() -> (TokenStore, Arc<Barrier>) {
        let storage = Storage::connect("sqlite::memory:", MigrationMode::Apply)
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(storage));
        barrier
            .initialize(&random_array::<32>().unwrap(), UnixTime::from_secs(0))
            .await
            .unwrap();
        let limits = TtlLimits {
            default_ttl: 100,
            max_ttl: 1000,
        };
        (
            TokenStore::open(barrier.clone(), limits).await.unwrap(),
            barrier,
        )
    }

    fn params(ttl: Option<u64>) -> CreateParams {
        CreateParams {
            policies: vec!["p".into()],
            ttl,
            renewable: true,
            ..CreateParams::default()
        }
    }

    #[tokio::test]
    async fn tokens_are_stored_only_as_hmacs() {
        let (s, barrier) = store().await;
        let (token, entry) = s
            .create(params(None), None, UnixTime::from_secs(10))
            .await
            .unwrap();
        assert_eq!(entry.policies, vec!["default", "p"]);
        assert_eq!(entry.expire_time, Some(110));
        let keys = barrier.storage().list("", None, 100).await.unwrap().keys;
        for k in &keys {
            assert!(!k.contains(token.as_str()), "token appears in key {k}");
            assert!(!k.contains(&entry.accessor), "accessor appears in key {k}");
            let raw = barrier.storage().get(k).await.unwrap().unwrap();
            assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()));
        }
        assert!(s
            .lookup(&token, UnixTime::from_secs(50))
            .await
            .unwrap()
            .is_some());
        assert!(s
            .lookup_accessor(&entry.accessor, UnixTime::from_secs(50))
            .await
            .unwrap()
            .is_some());
        assert!(
            s.lookup(&token, UnixTime::from_secs(110))
                .await
                .unwrap()
                .is_none(),
            "expired at expire_time"
        );
        assert!(s
            .lookup("hvs.nope", UnixTime::from_secs(50))
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn revoking_a_parent_revokes_the_tree_but_not_orphans() {
        let (s, _) = store().await;
        let (root, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let root_found = s
            .lookup(&root, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        let (child, _) = s
            .create(params(None), Some(&root_found), UnixTime::from_secs(1))
            .await
            .unwrap();
        let child_found = s
            .lookup(&child, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        let (grandchild, _) = s
            .create(params(None), Some(&child_found), UnixTime::from_secs(1))
            .await
            .unwrap();
        let mut orphan_params = params(None);
        orphan_params.orphan = true;
        let (orphan, orphan_entry) = s
            .create(orphan_params, Some(&root_found), UnixTime::from_secs(1))
            .await
            .unwrap();
        assert!(orphan_entry.parent.is_none());
        s.revoke_tree(&root_found.key).await.unwrap();
        for t in [&root, &child, &grandchild] {
            assert!(s.lookup(t, UnixTime::from_secs(2)).await.unwrap().is_none());
        }
        assert!(s
            .lookup(&orphan, UnixTime::from_secs(2))
            .await
            .unwrap()
            .is_some());
    }

    /// Storage a token owns is removed with it, by every kind of revocation,
    /// and only its own.
    #[tokio::test]
    async fn owned_storage_goes_with_its_token() {
        let (s, _) = store().await;
        let keep = |v: &View| {
            let v = v.clone();
            async move {
                v.apply(vec![v.put_op("x", b"v".to_vec(), None)])
                    .await
                    .unwrap();
            }
        };
        let count = |v: &View| {
            let v = v.clone();
            async move { v.list("", None, 10).await.unwrap().len() }
        };
        let (parent, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let pf = s
            .lookup(&parent, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (child, _) = s
            .create(params(None), Some(&pf), UnixTime::from_secs(0))
            .await
            .unwrap();
        let cf = s
            .lookup(&child, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (other, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let of = s
            .lookup(&other, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let views = [&pf, &cf, &of].map(|f| s.owned_view(&f.key, "mount-uuid"));
        for v in &views {
            keep(v).await;
            assert_eq!(count(v).await, 1);
        }
        // A tree revocation takes the child's too; the unrelated token keeps its own.
        s.revoke_tree(&pf.key).await.unwrap();
        assert_eq!((count(&views[0]).await, count(&views[1]).await), (0, 0));
        assert_eq!(count(&views[2]).await, 1);
        s.revoke_orphan(&of.key, UnixTime::from_secs(0))
            .await
            .unwrap();
        assert_eq!(count(&views[2]).await, 0);
    }

    #[tokio::test]
    async fn revoke_orphan_keeps_children() {
        let (s, _) = store().await;
        let (parent, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let pf = s
            .lookup(&parent, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (child, _) = s
            .create(params(None), Some(&pf), UnixTime::from_secs(0))
            .await
            .unwrap();
        s.revoke_orphan(&pf.key, UnixTime::from_secs(0))
            .await
            .unwrap();
        assert!(s
            .lookup(&parent, UnixTime::from_secs(0))
            .await
            .unwrap()
            .is_none());
        let c = s
            .lookup(&child, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        assert!(c.entry.parent.is_none());
    }

    #[tokio::test]
    async fn use_limits_and_tidy() {
        let (s, _) = store().await;
        let mut p = params(None);
        p.num_uses = 2;
        let (token, _) = s.create(p, None, UnixTime::from_secs(0)).await.unwrap();
        let f = s
            .lookup(&token, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (after, last) = s.spend_use(&f).await.unwrap();
        assert_eq!((after.entry.num_uses, last), (1, false));
        let f = s
            .lookup(&token, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.entry.num_uses, 1);
        let (_, last) = s.spend_use(&f).await.unwrap();
        assert!(last);
        assert!(
            s.lookup(&token, UnixTime::from_secs(0))
                .await
                .unwrap()
                .is_none(),
            "gone before the request runs"
        );

        let (short, _) = s
            .create(params(Some(5)), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let (long, _) = s
            .create(params(Some(500)), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        assert_eq!(s.tidy(UnixTime::from_secs(10), 100).await.unwrap(), 1);
        assert!(s
            .lookup(&long, UnixTime::from_secs(10))
            .await
            .unwrap()
            .is_some());
        assert!(
            s.lookup(&short, UnixTime::from_secs(0))
                .await
                .unwrap()
                .is_none(),
            "row is gone, not just expired"
        );
    }

    #[tokio::test]
    async fn renewal_respects_renewable_and_caps() {
        let (s, _) = store().await;
        let mut p = params(Some(50));
        p.explicit_max_ttl = 120;
        let (token, _) = s.create(p, None, UnixTime::from_secs(0)).await.unwrap();
        let f = s
            .lookup(&token, UnixTime::from_secs(40))
            .await
            .unwrap()
            .unwrap();
        let (e, capped) = s
            .renew(&f, Some(50), UnixTime::from_secs(40))
            .await
            .unwrap();
        assert_eq!((e.expire_time, capped), (Some(90), false));
        let f = s
            .lookup(&token, UnixTime::from_secs(80))
            .await
            .unwrap()
            .unwrap();
        let (e, capped) = s
            .renew(&f, Some(100), UnixTime::from_secs(80))
            .await
            .unwrap();
        assert_eq!((e.expire_time, capped), (Some(120), true));
        let mut np = params(None);
        np.renewable = false;
        let (t2, _) = s.create(np, None, UnixTime::from_secs(0)).await.unwrap();
        let f2 = s
            .lookup(&t2, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            s.renew(&f2, None, UnixTime::from_secs(0)).await,
            Err(LogicalError::InvalidRequest(_))
        ));
    }

    #[tokio::test]
    async fn bound_cidrs_limit_where_a_token_works() {
        let (s, _) = store().await;
        let mut p = params(None);
        p.bound_cidrs = vec!["10.0.0.0/8".into(), "192.168.1.7".into()];
        let (token, _) = s.create(p, None, UnixTime::from_secs(0)).await.unwrap();
        let e = s
            .lookup(&token, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap()
            .entry;
        assert!(e.usable_from(Some("10.1.2.3".parse().unwrap())));
        assert!(e.usable_from(Some("192.168.1.7".parse().unwrap())));
        assert!(!e.usable_from(Some("192.168.1.8".parse().unwrap())));
        assert!(!e.usable_from(None), "unknown address: refused");
        let (open, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        assert!(s
            .lookup(&open, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap()
            .entry
            .usable_from(None));
    }

    fn over(addr: Option<&str>, cert: Option<&[u8]>) -> crate::logical::ConnectionInfo {
        crate::logical::ConnectionInfo {
            remote_addr: addr.map(|a| a.parse().unwrap()),
            client_certificates: cert.map(|c| vec![c.to_vec()]).unwrap_or_default().into(),
        }
    }

    #[tokio::test]
    async fn a_certificate_bound_token_works_only_with_that_certificate() {
        let (s, _) = store().await;
        let mut p = params(None);
        p.bound_cert_sha256 = Some(crate::crypto::sha256_hex(b"leaf-der"));
        p.bound_cidrs = vec!["10.0.0.0/8".into()];
        let (token, _) = s.create(p, None, UnixTime::from_secs(0)).await.unwrap();
        let e = s
            .lookup(&token, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap()
            .entry;
        assert_eq!(
            e.check_connection(&over(Some("10.0.0.1"), Some(b"leaf-der"))),
            Ok(())
        );
        assert_eq!(
            e.check_connection(&over(Some("10.0.0.1"), None)),
            Err(Unusable::Certificate)
        );
        assert_eq!(
            e.check_connection(&over(Some("10.0.0.1"), Some(b"other-der"))),
            Err(Unusable::Certificate)
        );
        assert_eq!(
            e.check_connection(&over(Some("192.0.2.1"), Some(b"leaf-der"))),
            Err(Unusable::Address),
            "the address is checked too"
        );
        // Children (orphans too) carry the binding; it cannot be dropped.
        let pf = s
            .lookup(&token, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap();
        for orphan in [false, true] {
            let mut cp = params(None);
            cp.orphan = orphan;
            let (_, ce) = s
                .create(cp, Some(&pf), UnixTime::from_secs(1))
                .await
                .unwrap();
            assert_eq!(ce.bound_cert_sha256, e.bound_cert_sha256, "orphan {orphan}");
        }
        // An unbound token works without a certificate.
        let (open, _) = s
            .create(params(None), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let oe = s
            .lookup(&open, UnixTime::from_secs(1))
            .await
            .unwrap()
            .unwrap()
            .entry;
        assert_eq!(oe.check_connection(&over(None, None)), Ok(()));
    }

    #[test]
    fn entries_written_before_the_binding_existed_still_read_unbound() {
        let old = serde_json::json!({
            "version": 1, "accessor": "a", "policies": ["default"], "path": "auth/token/create",
            "meta": {}, "display_name": "token", "num_uses": 0, "creation_time": 0,
            "creation_ttl": 0, "explicit_max_ttl": 0, "expire_time": null, "renewable": false,
            "parent": null, "entity_id": ""
        });
        let e: TokenEntry = serde_json::from_value(old).unwrap();
        assert_eq!(e.bound_cert_sha256, None);
        assert_eq!(e.check_connection(&over(None, None)), Ok(()));
        // And an unbound entry is written without the field.
        assert!(!serde_json::to_string(&e).unwrap().contains("bound_cert"));
    }

    #[tokio::test]
    async fn children_inherit_bound_cidrs_even_as_orphans() {
        let (s, _) = store().await;
        let mut p = params(None);
        p.bound_cidrs = vec!["10.0.0.0/8".into()];
        let (parent, _) = s.create(p, None, UnixTime::from_secs(0)).await.unwrap();
        let pf = s
            .lookup(&parent, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (child, ce) = s
            .create(params(None), Some(&pf), UnixTime::from_secs(0))
            .await
            .unwrap();
        assert_eq!(ce.bound_cidrs, vec!["10.0.0.0/8".to_owned()]);
        let c = s
            .lookup(&child, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap()
            .entry;
        assert!(!c.usable_from(Some("192.168.1.1".parse().unwrap())));
        assert!(c.usable_from(Some("10.9.9.9".parse().unwrap())));
        let mut orphan = params(None);
        orphan.orphan = true;
        let (_, oe) = s
            .create(orphan, Some(&pf), UnixTime::from_secs(0))
            .await
            .unwrap();
        assert_eq!(oe.bound_cidrs, vec!["10.0.0.0/8".to_owned()]);
    }

    #[tokio::test]
    async fn a_child_never_outlives_its_parent() {
        let (s, _) = store().await;
        let (parent, _) = s
            .create(params(Some(100)), None, UnixTime::from_secs(0))
            .await
            .unwrap();
        let pf = s
            .lookup(&parent, UnixTime::from_secs(0))
            .await
            .unwrap()
            .unwrap();
        let (child, ce) = s
            .create(params(Some(500)), Some(&pf), UnixTime::from_secs(10))
            .await
            .unwrap();
        assert_eq!(ce.expire_time, Some(100), "capped at create");
        // Renewing the child asks for more than the parent has left.
        let cf = s
            .lookup(&child, UnixTime::from_secs(50))
            .await
            .unwrap()
            .unwrap();
        let (e, capped) = s
            .renew(&cf, Some(500), UnixTime::from_secs(50))
            .await
            .unwrap();
        assert_eq!(e.expire_time, Some(100), "capped at renewal");
        assert!(capped);
        // After the parent is renewed, the child may follow, but not beyond it.
        let pf = s
            .lookup(&parent, UnixTime::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        s.renew(&pf, Some(100), UnixTime::from_secs(60))
            .await
            .unwrap();
        let cf = s
            .lookup(&child, UnixTime::from_secs(70))
            .await
            .unwrap()
            .unwrap();
        let (e, _) = s
            .renew(&cf, Some(500), UnixTime::from_secs(70))
            .await
            .unwrap();
        assert_eq!(e.expire_time, Some(160));
        // A periodic child is held to its parent as well.
        let mut periodic = params(None);
        periodic.period = 900;
        let pf = s
            .lookup(&parent, UnixTime::from_secs(70))
            .await
            .unwrap()
            .unwrap();
        let (pc, pce) = s
            .create(periodic, Some(&pf), UnixTime::from_secs(70))
            .await
            .unwrap();
        assert_eq!(pce.expire_time, Some(160));
        let pcf = s
            .lookup(&pc, UnixTime::from_secs(80))
            .await
            .unwrap()
            .unwrap();
        let (e, capped) = s.renew(&pcf, None, UnixTime::from_secs(80)).await.unwrap();
        assert_eq!((e.expire_time, capped), (Some(160), true));
    }

    #[tokio::test]
    async fn chosen_root_token_id_works() {
        let (s, _) = store().await;
        let t = s
            .create_root(Some("dev-root"), UnixTime::from_secs(0))
            .await
            .unwrap();
        let f = s
            .lookup(&t, UnixTime::from_secs(1_000_000))
            .await
            .unwrap()
            .unwrap();
        assert!(f.entry.is_root());
        assert!(f.entry.expire_time.is_none());
        assert!(s
            .lookup_accessor(&f.entry.accessor, UnixTime::from_secs(5))
            .await
            .unwrap()
            .is_some());
    }
}
