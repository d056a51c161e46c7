//! The request pipeline: seal gate -> authenticate the token -> authorise ->
//! route to a system path, the token store or a mounted engine. It owns the
//! unsealed state (token store, mount tables) and drops it on seal. It knows
//! nothing of HTTP: requests arrive as [`crate::logical::Request`].

mod audit;
mod authorize;
mod breakglass;
mod canonical;
mod error;
mod lease;
mod login;
mod route;
mod routes;
mod sys;

use crate::clock::UnixTime;
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

pub use error::{CoreError, TokenRefusal};

use crate::barrier::Barrier;
use crate::clock::Clock;
use crate::crypto::SecretString;
use crate::engine::{MountContext, Registry};
use crate::logical::{LogicalError, Request, Response};
use crate::mounts::{MountTable, AUTH_PATH, MOUNTS_PATH};
use crate::policy::PolicyStore;
use crate::seal::Seal;
use crate::storage::Storage;
use crate::token::{paths::Caller, TokenStore, TtlLimits};
use route::{MountedEngine, Resolved, Target};

/// Settings the core needs.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// token TTL defaults and caps
    pub ttl: TtlLimits,
    /// shown in status answers
    pub cluster_name: String,
    /// audit write timeout and checkpoint interval
    pub audit: crate::audit::AuditSettings,
    /// the mount types this server knows
    pub registry: Arc<Registry>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            ttl: TtlLimits::default(),
            cluster_name: "coffer-cluster".into(),
            audit: crate::audit::AuditSettings::default(),
            registry: Arc::new(crate::engines::builtin()),
        }
    }
}

/// State that exists only while unsealed.
struct Unsealed {
    barrier: Arc<Barrier>,
    tokens: TokenStore,
    leases: crate::lease::LeaseStore,
    /// lease-count quotas (this node's copy; written through sys/quotas)
    quotas: std::sync::RwLock<Vec<crate::lease::quota::Quota>>,
    policies: PolicyStore,
    mounts: tokio::sync::RwLock<MountTable>,
    auth: tokio::sync::RwLock<MountTable>,
    audit: crate::audit::AuditBroker,
}

/// One node's core.
pub struct Core {
    barrier: Arc<Barrier>,
    seal: Seal,
    clock: Arc<dyn Clock>,
    config: CoreConfig,
    state: RwLock<Option<Arc<Unsealed>>>,
    /// Serialises init, unseal and seal so they never interleave.
    transition: tokio::sync::Mutex<()>,
    /// Login attempts per mount and client address.
    login_limiter: crate::auth::ratelimit::RateLimiter,
    /// Counters and histograms for `sys/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// Break-glass counters and the webhook client.
    breakglass: breakglass::Runtime,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What `sys/init` returns once.
pub struct InitResult {
    /// key shares
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// the initial root token
    pub root_token: Zeroizing<String>,
}

impl Core {
    /// A sealed core over `storage`.
    pub fn new(storage: Storage, clock: Arc<dyn Clock>, config: CoreConfig) -> Core {
        Core {
            barrier: Arc::new(Barrier::new(storage)),
            seal: Seal::new(),
            clock,
            config,
            state: RwLock::new(None),
            transition: tokio::sync::Mutex::new(()),
            login_limiter: crate::auth::ratelimit::RateLimiter::new(60),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            breakglass: breakglass::Runtime::default(),
        }
    }

    /// The clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Every path a server with `registry` serves, for tests and tooling:
    /// `None` for the fixed `sys/` and `auth/token/` paths, the engine's kind
    /// for paths below one of its mounts.
    pub fn served_paths(
        registry: &Registry,
    ) -> Vec<(Option<&'static str>, &'static crate::engine::PathSpec)> {
        let mut out: Vec<_> = routes::fixed_routes().map(|spec| (None, spec)).collect();
        for engine in registry.all() {
            out.extend(
                engine
                    .paths()
                    .iter()
                    .map(|spec| (Some(engine.kind()), spec)),
            );
        }
        out
    }

    /// The mount types this server knows.
    pub fn registry(&self) -> &Registry {
        &self.config.registry
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>, CoreError> {
        crate::sync::read(&self.state)
            .clone()
            .ok_or(CoreError::Sealed)
    }

    /// Whether the node is sealed.
    pub fn is_sealed(&self) -> bool {
        self.unsealed().is_err()
    }

    /// Initialises: root key, keyring, shares, root token. Leaves the node sealed,
    /// as Vault does.
    pub async fn init(&self, shares: u64, threshold: u64) -> Result<InitResult, CoreError> {
        let _guard = self.transition.lock().await;
        let now = self.now();
        let out = self
            .seal
            .init(&self.barrier, shares, threshold, now)
            .await?;
        let result = async {
            let tokens = TokenStore::open(self.barrier.clone(), self.config.ttl).await?;
            let root_token = tokens.create_root(None, now).await?;
            PolicyStore::open(self.barrier.clone())
                .await?
                .install_builtin()
                .await?;
            let mut mounts = MountTable::default();
            self.add_builtin_mounts(&mut mounts, now)?;
            mounts.save(&self.barrier, MOUNTS_PATH).await?;
            let mut auth = MountTable::default();
            auth.insert(
                crate::mounts::new_entry(
                    "token/".into(),
                    "token",
                    "token based credentials".into(),
                    Default::default(),
                    Default::default(),
                    now,
                )?,
                false,
            )?;
            auth.save(&self.barrier, AUTH_PATH).await?;
            Ok::<_, CoreError>(root_token)
        }
        .await;
        self.barrier.seal();
        Ok(InitResult {
            keys: out.shares,
            root_token: result?,
        })
    }

    /// Adds one key share; when the threshold is met, loads the unsealed state.
    pub async fn unseal(&self, key: &str) -> Result<(), CoreError> {
        let _guard = self.transition.lock().await;
        if self.seal.submit(&self.barrier, key).await? && self.unsealed().is_err() {
            self.load_unsealed().await?;
        }
        Ok(())
    }

    async fn load_unsealed(&self) -> Result<(), CoreError> {
        let loaded = async {
            let tokens = TokenStore::open(self.barrier.clone(), self.config.ttl).await?;
            let policies = PolicyStore::open(self.barrier.clone()).await?;
            let mut mounts = MountTable::load(&self.barrier, MOUNTS_PATH).await?;
            // A built-in mount an older version did not have is added once.
            if self.add_builtin_mounts(&mut mounts, self.now())? {
                mounts.save(&self.barrier, MOUNTS_PATH).await?;
            }
            let auth = MountTable::load(&self.barrier, AUTH_PATH).await?;
            let audit = crate::audit::AuditBroker::open(
                self.barrier.clone(),
                self.clock.clone(),
                self.metrics.clone(),
                self.config.audit.clone(),
            )
            .await?;
            Ok::<_, CoreError>(Unsealed {
                audit,
                barrier: self.barrier.clone(),
                leases: tokens.leases().clone(),
                quotas: std::sync::RwLock::new(crate::lease::quota::load_all(&self.barrier).await?),
                tokens,
                policies,
                mounts: tokio::sync::RwLock::new(mounts),
                auth: tokio::sync::RwLock::new(auth),
            })
        }
        .await;
        match loaded {
            Ok(state) => {
                *crate::sync::write(&self.state) = Some(Arc::new(state));
                Ok(())
            }
            Err(e) => {
                self.barrier.seal();
                Err(e)
            }
        }
    }

    /// Adds the mounts every server has (Vault's `cubbyhole/`) where missing;
    /// whether any was added.
    fn add_builtin_mounts(
        &self,
        mounts: &mut MountTable,
        now: UnixTime,
    ) -> Result<bool, CoreError> {
        let mut added = false;
        for engine in self.registry().all_secrets() {
            let Some((path, description)) = engine.builtin_mount() else {
                continue;
            };
            if mounts.entries.contains_key(path) {
                continue;
            }
            let entry = crate::mounts::new_entry(
                path.into(),
                engine.kind(),
                description.into(),
                Default::default(),
                Default::default(),
                now,
            )?;
            mounts.insert(entry, false)?;
            added = true;
        }
        Ok(added)
    }

    /// Forgets the shares given so far.
    pub fn unseal_reset(&self) {
        self.seal.reset();
    }

    /// Seals: drops every key and the unsealed state. Audit devices write a
    /// last signed checkpoint first, while the key is still there.
    pub async fn seal(&self) {
        let _guard = self.transition.lock().await;
        let state = crate::sync::write(&self.state).take();
        if let Some(state) = state {
            state.audit.shutdown().await;
        }
        self.barrier.seal();
        self.seal.reset();
    }

    /// Dev mode: initialise with one share, unseal, set the root token id and mount
    /// KV v2 at `secret/`. Returns the unseal key and root token.
    pub async fn dev_setup(
        &self,
        root_token_id: Option<&SecretString>,
    ) -> Result<(Zeroizing<String>, Zeroizing<String>), CoreError> {
        let init = self.init(1, 1).await?;
        let key = init.keys.first().ok_or(CoreError::Sealed)?;
        let key_b64 = Zeroizing::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.as_slice(),
        ));
        self.unseal(&key_b64).await?;
        let state = self.unsealed()?;
        let now = self.now();
        let root = match root_token_id {
            Some(id) => {
                if let Some(found) = state.tokens.lookup(&init.root_token, now).await? {
                    state.tokens.revoke_tree(&found.key).await?;
                }
                state.tokens.create_root(Some(id.expose()), now).await?
            }
            None => init.root_token,
        };
        let mut options = std::collections::BTreeMap::new();
        options.insert("version".to_owned(), "2".to_owned());
        let entry = crate::mounts::new_entry(
            "secret/".into(),
            "kv",
            "key/value secret storage".into(),
            options,
            Default::default(),
            now,
        )?;
        let mut mounts = state.mounts.write().await;
        mounts.insert(entry, true)?;
        mounts.save(&self.barrier, MOUNTS_PATH).await?;
        Ok((key_b64, root))
    }

    /// Process shutdown: audit devices checkpoint and save their chain heads.
    pub async fn shutdown(&self) {
        if let Ok(state) = self.unsealed() {
            state.audit.shutdown().await;
        }
    }

    /// SIGHUP: audit devices reopen their files (after logrotate moved them).
    pub fn reopen_audit_files(&self) {
        if let Ok(state) = self.unsealed() {
            state.audit.reopen();
        }
    }

    /// Audit device health by path (empty when sealed or none enabled).
    pub fn audit_health(&self) -> Vec<(String, bool)> {
        self.unsealed()
            .map(|s| s.audit.health())
            .unwrap_or_default()
    }

    /// Whether `path` (as sent, without `/v1/`) is served without a token: the
    /// status, init and unseal paths, and the login and enrolment paths of the
    /// auth mounts. The HTTP layer asks before it reads a body, so that a client
    /// without a token can only make it read a body on these paths.
    pub async fn is_token_less(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        // The fixed paths declared token-less, and sys/metrics (public only on
        // some listeners, and only read without a body, so counting it here
        // costs nothing).
        if path == "sys/metrics" || routes::is_unauthenticated_fixed(path) {
            return true;
        }
        let Ok(state) = self.unsealed() else {
            return false;
        };
        // Every login step is a write.
        route::resolve(
            Some(&state),
            self.registry(),
            path,
            crate::logical::Operation::Update,
        )
        .await
        .is_ok_and(|resolved| login::is_login(&resolved))
    }

    /// Whether `token` names a live token usable over `connection` (its
    /// address and client certificate). Spends no use and records nothing: the
    /// request itself is still authenticated (and audited) by [`Core::handle`].
    /// `false` when sealed or on a storage error.
    pub async fn token_usable(
        &self,
        token: &SecretString,
        connection: &crate::logical::ConnectionInfo,
    ) -> bool {
        let Ok(state) = self.unsealed() else {
            return false;
        };
        matches!(
            state.tokens.lookup(token.expose(), self.now()).await,
            Ok(Some(found)) if found.entry.check_connection(connection).is_ok()
        )
    }

    /// Counts one API request under the label [`Core::handle_labelled`] gave it.
    pub fn record_request(&self, label: &str, operation: &str, status: u16, seconds: f64) {
        self.metrics.request(label, operation, status, seconds);
    }

    /// The Prometheus exposition of this node's metrics.
    pub async fn metrics_text(&self) -> String {
        use crate::metrics::Gauge;
        let sealed = if self.is_sealed() { 1.0 } else { 0.0 };
        let state = self.unsealed().ok();
        let (tokens, revocations) = match &state {
            Some(s) => (
                s.tokens.count().await.unwrap_or(0) as f64,
                s.tokens.revocations() as f64,
            ),
            None => (0.0, 0.0),
        };
        let (leases, irrevocable, lease_revocations) = match &state {
            Some(s) => (
                s.leases.count().await.unwrap_or(0) as f64,
                s.leases.irrevocable_count().await.unwrap_or(0) as f64,
                s.leases.revocations() as f64,
            ),
            None => (0.0, 0.0, 0.0),
        };
        let active_grants = match &state {
            Some(s) => self.active_grants(s).await,
            None => 0,
        };
        let devices = self.audit_health();
        let mut gauges = vec![
            Gauge::single(
                "coffer_sealed",
                "gauge",
                "1 when this node is sealed, 0 when unsealed",
                sealed,
            ),
            Gauge {
                name: "coffer_audit_device_healthy",
                help: "1 when the audit device accepts writes in time, 0 when failing or stuck",
                kind: "gauge",
                samples: devices
                    .into_iter()
                    .map(|(d, ok)| (vec![("device", d)], if ok { 1.0 } else { 0.0 }))
                    .collect(),
            },
            Gauge::single(
                "coffer_tokens",
                "gauge",
                "Tokens in storage (unexpired or awaiting tidy)",
                tokens,
            ),
            Gauge::single(
                "coffer_token_revocations_total",
                "counter",
                "Tokens revoked (explicitly, by tree, by use count or by expiry)",
                revocations,
            ),
            Gauge::single(
                "coffer_leases",
                "gauge",
                "Leases in storage (live, due, or irrevocable)",
                leases,
            ),
            Gauge::single(
                "coffer_irrevocable_leases",
                "gauge",
                "Leases whose revocation failed for good",
                irrevocable,
            ),
            Gauge::single(
                "coffer_lease_revocations_total",
                "counter",
                "Leases this node revoked through their engines",
                lease_revocations,
            ),
            Gauge::single(
                "coffer_breakglass_requests_total",
                "counter",
                "Emergency access requests made through this node",
                self.breakglass.requests() as f64,
            ),
            Gauge::single(
                "coffer_breakglass_active_grants",
                "gauge",
                "Emergency access grants in force",
                active_grants as f64,
            ),
            Gauge::single(
                "coffer_webhook_delivery_failures_total",
                "counter",
                "Break-glass webhook delivery attempts from this node that failed (each is retried until given up)",
                self.breakglass.delivery_failures() as f64,
            ),
        ];
        gauges.extend(self.registry().all().flat_map(|e| e.gauges()));
        self.metrics.render(&gauges)
    }

    /// Revokes expired tokens found through the expiry index (bounded batch).
    pub async fn tidy(&self) -> Result<usize, CoreError> {
        let Ok(state) = self.unsealed() else {
            return Ok(0);
        };
        let now = self.now();
        let revoked = state.tokens.tidy(now, 500).await?;
        // Expired login state: pending MFA requests, lockout counters and
        // enrolment tokens. Each carries its expiry in the index, so this is a
        // bounded range delete.
        let mut prefixes = vec![login::PENDING_PREFIX.to_owned()];
        let registry = self.registry();
        for (table, auth) in [(&state.mounts, false), (&state.auth, true)] {
            for m in table.read().await.entries.values() {
                let engine = match auth {
                    true => registry
                        .auth(&m.kind)
                        .map(|e| e.as_ref() as &dyn crate::engine::Engine),
                    false => registry
                        .secrets(&m.kind)
                        .map(|e| e.as_ref() as &dyn crate::engine::Engine),
                };
                let base = m.storage_prefix();
                prefixes.extend(
                    engine
                        .into_iter()
                        .flat_map(|e| e.expiring_prefixes())
                        .map(|p| format!("{base}{p}")),
                );
            }
        }
        let mut removed = 0;
        for prefix in prefixes {
            removed += state.barrier.delete_expired(&prefix, now, 500).await?;
        }
        if removed > 0 {
            tracing::debug!(removed, "removed expired login state");
        }
        Ok(revoked)
    }

    /// Handles one request. Everything past the unauthenticated paths is
    /// audited: the request entry is durable before anything changes, the
    /// response entry before the client hears the answer.
    pub async fn handle(&self, req: Request) -> Result<Response, CoreError> {
        self.handle_labelled(req).await.1
    }

    /// [`Core::handle`], also answering the label the request counts under in
    /// metrics (its mount, `sys/`, `auth/token/` or `unmounted`).
    pub async fn handle_labelled(&self, mut req: Request) -> (String, Result<Response, CoreError>) {
        let state = self.unsealed().ok();
        // First of all: the path is resolved once, and from here on only its
        // canonical form exists.
        let resolved =
            match route::resolve(state.as_deref(), self.registry(), &req.path, req.operation).await
            {
                Ok(r) => r,
                Err(e) => return ("unmounted".into(), Err(e)),
            };
        req.path.clone_from(&resolved.path);
        let label = resolved.metric_label();
        (label, self.handle_resolved(req, resolved).await)
    }

    async fn handle_resolved(
        &self,
        req: Request,
        resolved: Resolved,
    ) -> Result<Response, CoreError> {
        let path = resolved.path.as_str();
        routes::check_fixed(path, req.operation)?;
        if let Some(resp) = Box::pin(sys::unauthenticated(self, &req, path)).await? {
            return Ok(resp);
        }
        let state = self.unsealed()?;
        let now = self.now();
        if login::is_login(&resolved) {
            let record = audit::record(&state, &req, path, None).await;
            audit::request(&state, &record, None).await?;
            let result = Box::pin(login::handle(self, &state, &req, &resolved, now)).await;
            tracing::debug!(path = %path, succeeded = result.is_ok(), "login step");
            return audit::outcome(&state, &record, result).await;
        }
        if let Some(mounted) = resolved.mounted().filter(|m| m.is_public()) {
            // As Vault: served whatever token comes with it (none is looked
            // up), audited like any other request.
            let record = audit::record(&state, &req, path, None).await;
            audit::request(&state, &record, None).await?;
            let result = Box::pin(self.dispatch_public(&req, mounted, now)).await;
            return audit::outcome(&state, &record, result).await;
        }
        let found = match &req.client_token {
            Some(token) => state.tokens.lookup(token.expose(), now).await?,
            None => None,
        };
        let unusable = found
            .as_ref()
            .and_then(|f| f.entry.check_connection(&req.connection).err());
        let usable = found.is_some() && unusable.is_none();
        let (Some(token), Some(found), true) = (req.client_token.clone(), found.clone(), usable)
        else {
            let refusal = Box::pin(self.token_refusal(&state, &req, unusable, now)).await?;
            tracing::debug!(reason = ?refusal, "request denied: no usable token");
            let record = audit::record(&state, &req, path, None).await;
            return audit::denied(&state, &record, CoreError::TokenRefused(refusal)).await;
        };
        let mut record = audit::record(&state, &req, path, Some((&token, &found))).await;
        if found.entry.meta.contains_key("breakglass_id") {
            if breakglass::closed_to_grants(path, req.operation) {
                let refused = LogicalError::Forbidden(format!(
                    "permission denied: a break-glass token may not use {path}"
                ));
                return audit::denied(&state, &record, refused.into()).await;
            }
            if let Err(e) = Box::pin(breakglass::check_grant_token(&state, &found, now)).await {
                return audit::denied(&state, &record, e).await;
            }
        }
        let acl = state
            .policies
            .acl(&found.entry.policies, found.entry.entity.as_ref());
        let authorized = match authorize::authorize(&state, &acl, &req, &resolved, now).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(policies = ?found.entry.policies, "request denied by policy");
                return audit::denied(&state, &record, e).await;
            }
        };
        tracing::debug!(
            operation = authorized.operation.as_str(),
            privileged = authorized.privileged,
            policies = ?found.entry.policies,
            "request authorised"
        );
        // As Vault: the entry names the operation after the existence check.
        record.request.operation = authorized.operation.as_str();
        let recovery = audit::recovery(path, authorized.operation, authorized.privileged);
        let bypassed = audit::request_unless_recovery(&state, &record, recovery).await?;
        // Boxed, as are the other rarely taken branches below: the request's
        // future is moved several times when it is spawned, so it stays small.
        let (found, last_use) = match Box::pin(state.tokens.spend_use(&found)).await {
            Ok(spent) => spent,
            // Another request took the last use first: this one is denied, and
            // its audit trail says so.
            Err(e) => {
                return audit::outcome_unless_recovery(
                    &state,
                    &record,
                    Err(e.into()),
                    recovery,
                    bypassed,
                )
                .await
            }
        };
        let mut req = req;
        req.operation = authorized.operation;
        let caller = Caller {
            token: token.expose(),
            found: &found,
            privileged: authorized.privileged,
        };
        let result = self.dispatch(&state, &req, &resolved, &caller, now).await;
        if path == "sys/breakglass/request" {
            // The grant's id exists only now: its first entry carries it too.
            record.breakglass_id = result.as_ref().ok().and_then(response_grant_id);
        }
        if last_use {
            // The row is already gone; now take its children with it, as Vault does.
            Box::pin(state.tokens.revoke_tree(&found.key)).await?;
        }
        audit::outcome_unless_recovery(&state, &record, result, recovery, bypassed).await
    }

    /// Why a request has no usable token (only on the denial path: telling an
    /// expired token from an unknown one takes a second read).
    async fn token_refusal(
        &self,
        state: &Unsealed,
        req: &Request,
        unusable: Option<crate::token::Unusable>,
        now: UnixTime,
    ) -> Result<TokenRefusal, CoreError> {
        use crate::token::Unusable;
        Ok(match &req.client_token {
            None => TokenRefusal::Missing,
            Some(_) if unusable == Some(Unusable::Address) => TokenRefusal::WrongAddress,
            Some(_) if unusable == Some(Unusable::Certificate) => TokenRefusal::WrongCertificate,
            Some(t) if state.tokens.has_expired(t.expose(), now).await? => TokenRefusal::Expired,
            Some(_) => TokenRefusal::Unknown,
        })
    }

    async fn dispatch(
        &self,
        state: &Unsealed,
        req: &Request,
        resolved: &Resolved,
        caller: &Caller<'_>,
        now: UnixTime,
    ) -> Result<Response, CoreError> {
        let path = resolved.path.as_str();
        let mounted = match &resolved.target {
            Target::TokenStore => {
                let rest = path.strip_prefix("auth/token/").unwrap_or_default();
                let resp = Box::pin(crate::token::paths::handle(
                    &state.tokens,
                    caller,
                    req,
                    rest,
                    now,
                ))
                .await
                .map_err(|e| not_found_as_no_handler(e, path))?;
                return Ok(with_mount_type(resp, "token"));
            }
            Target::System => {
                return Box::pin(sys::authenticated(
                    self,
                    state,
                    req,
                    path,
                    caller.found,
                    now,
                ))
                .await;
            }
            Target::Unmounted => {
                return Err(CoreError::Unmounted {
                    path: path.to_owned(),
                })
            }
            Target::Mounted(m) => m,
        };
        routes::check_mounted(mounted, req.operation, path)?;
        let engine = mounted.engine.engine();
        let token_view = match &mounted.engine {
            MountedEngine::Secrets(e) if e.uses_token_storage() => Some(
                state
                    .tokens
                    .owned_view(&caller.found.key, &mounted.entry.uuid),
            ),
            _ => None,
        };
        let ctx = MountContext {
            mount: &mounted.entry,
            view: &mounted.view,
            rest: &mounted.rest,
            now,
            caller: Some(caller),
            connection: &req.connection,
            token_view,
        };
        // A request under a lease-count quota holds a slot while its engine
        // runs; the slot stays with the lease it makes, or is given back.
        let quotas: Vec<crate::lease::quota::Quota> = crate::sync::read(&state.quotas)
            .iter()
            .filter(|q| q.covers(path))
            .cloned()
            .collect();
        let reserved = if quotas.is_empty() {
            Vec::new()
        } else {
            crate::lease::quota::reserve(&state.barrier, &quotas, path).await?
        };
        let answer = engine.handle(&ctx, req).await;
        let mut resp = match answer {
            Ok(resp) if resp.lease.is_some() || reserved.is_empty() => resp,
            other => {
                crate::lease::quota::release(&state.barrier, &reserved).await?;
                other?
            }
        };
        if let Some(lease) = &mut resp.lease {
            // As Vault's: the id names the path that issued it.
            let origin = lease::Origin {
                mount: &mounted.entry,
                request_path: path,
                token_key: &caller.found.key,
                quotas: reserved,
            };
            lease::register(self, state, origin, lease, now).await?;
        }
        Ok(with_mount_type(resp, &mounted.entry.kind))
    }
}

impl Core {
    /// A secrets engine's token-less path ([`route::Mounted::is_public`]):
    /// the engine answers with no caller and no token storage.
    async fn dispatch_public(
        &self,
        req: &Request,
        mounted: &route::Mounted,
        now: UnixTime,
    ) -> Result<Response, CoreError> {
        routes::check_mounted(mounted, req.operation, &req.path)?;
        let ctx = MountContext {
            mount: &mounted.entry,
            view: &mounted.view,
            rest: &mounted.rest,
            now,
            caller: None,
            connection: &req.connection,
            token_view: None,
        };
        let mut resp = mounted.engine.engine().handle(&ctx, req).await?;
        // Nothing handed out without a token carries a lease.
        resp.lease = None;
        Ok(with_mount_type(resp, &mounted.entry.kind))
    }
}

fn response_grant_id(resp: &Response) -> Option<String> {
    match &resp.body {
        crate::logical::ResponseBody::Envelope { data: Some(d), .. } => {
            d.get("id").and_then(|v| v.as_str()).map(str::to_owned)
        }
        _ => None,
    }
}

fn with_mount_type(mut resp: Response, kind: &str) -> Response {
    resp.mount_type = Some(kind.to_owned());
    resp
}

/// An unknown sub-path of a known mount is "no handler" (404 with a message),
/// not an empty 404.
fn not_found_as_no_handler(e: LogicalError, path: &str) -> CoreError {
    match e {
        LogicalError::NotFound => CoreError::NoHandler(path.to_owned()),
        other => CoreError::Logical(other),
    }
}

#[cfg(test)]
mod tests;
