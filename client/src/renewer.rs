//! The background renewer a service starts once: [`Client::keep_alive`] returns a
//! [`Renewer`] whose task renews the client's token (`renew-self`) and every lease
//! registered with [`Renewer::add_lease`] at about two thirds of their TTL, logs in
//! again with the client's remembered [`crate::Login`] when the token cannot be renewed
//! (refused, revoked, or capped by its max TTL), and reports what happened as
//! [`RenewEvent`]s. Dropping the [`Renewer`] stops the task.
//!
//! Events carry lease ids and error messages, never a token or a secret. Time is
//! tokio's (`tokio::time`), so tests can run it on paused time.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{ClientError, ErrorKind};
use crate::lease::LeaseRenewal;
use crate::{Client, Ttl};

/// How the renewer schedules its work.
#[derive(Debug, Clone)]
pub struct RenewerOptions {
    /// Part of a TTL after which to renew (default 2/3).
    pub fraction: f64,
    /// Never wait less than this between two attempts on one target (default 500 ms).
    pub min_wait: Duration,
    /// Wait after a failure that may pass (network, sealed, 5xx), at most a third of
    /// the time left (default 5 s).
    pub retry_wait: Duration,
    /// Events kept for the reader; later ones are dropped while it is full (default 64).
    pub events_capacity: usize,
}

impl Default for RenewerOptions {
    fn default() -> Self {
        RenewerOptions {
            fraction: 2.0 / 3.0,
            min_wait: Duration::from_millis(500),
            retry_wait: Duration::from_secs(5),
            events_capacity: 64,
        }
    }
}

/// What a renewal was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewTarget {
    /// The client's token.
    Token,
    /// A lease, by id.
    Lease(String),
}

impl fmt::Display for RenewTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenewTarget::Token => f.write_str("the token"),
            RenewTarget::Lease(id) => write!(f, "lease {id}"),
        }
    }
}

/// What the renewer did. No event holds a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewEvent {
    /// The token was renewed and now lives `ttl`.
    TokenRenewed {
        /// Time left.
        ttl: Duration,
    },
    /// A new token was obtained by logging in again.
    Reauthenticated {
        /// Its TTL.
        ttl: Duration,
    },
    /// A lease was renewed.
    LeaseRenewed {
        /// Its id.
        lease_id: String,
        /// Time left.
        ttl: Duration,
    },
    /// A lease reached its max TTL: it ends in `ttl` and is no longer renewed.
    LeaseExpiring {
        /// Its id.
        lease_id: String,
        /// Time left.
        ttl: Duration,
    },
    /// A lease the server no longer renews (revoked, unknown); it is dropped.
    LeaseLost {
        /// Its id.
        lease_id: String,
        /// The server's answer.
        error: String,
    },
    /// An attempt failed; the renewer tries again later unless the error says it
    /// cannot (e.g. [`ErrorKind::NoLogin`]).
    Failed {
        /// What was being renewed.
        what: RenewTarget,
        /// What failed.
        kind: ErrorKind,
        /// The error message (no secrets).
        error: String,
    },
}

enum Command {
    AddLease(String, Duration),
    RemoveLease(String),
}

/// Handle on the background task; dropping it stops the task.
pub struct Renewer {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<RenewEvent>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Renewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewer")
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Renewer {
    /// Renew this lease (e.g. a PKI certificate's) from now on; `ttl` is its current
    /// lease duration, and each renewal asks for that much again.
    pub fn add_lease(&self, lease_id: impl Into<String>, ttl: Duration) {
        let _ = self.commands.send(Command::AddLease(lease_id.into(), ttl));
    }

    /// Stop renewing a lease.
    pub fn remove_lease(&self, lease_id: impl Into<String>) {
        let _ = self.commands.send(Command::RemoveLease(lease_id.into()));
    }

    /// The next event; `None` once the task has stopped.
    pub async fn next_event(&mut self) -> Option<RenewEvent> {
        self.events.recv().await
    }

    /// An event if one is waiting.
    pub fn try_next_event(&mut self) -> Option<RenewEvent> {
        self.events.try_recv().ok()
    }
}

impl Client {
    /// Start renewing this client's token (and leases added later) in the background,
    /// with [`RenewerOptions::default`]. Needs a Tokio runtime.
    ///
    /// The renewer works on the token this client shares with its clones: a new token
    /// from re-authentication is seen by all of them. A clone given a token of its own
    /// afterwards ([`Client::set_token`], [`Client::with_token`]) is not followed.
    pub fn keep_alive(&self) -> Result<Renewer, ClientError> {
        self.keep_alive_with(RenewerOptions::default())
    }

    /// As [`Client::keep_alive`] with other options.
    pub fn keep_alive_with(&self, options: RenewerOptions) -> Result<Renewer, ClientError> {
        spawn(self.clone(), options)
    }
}

/// A token's TTL as the server states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenTtl {
    ttl: u64,
    renewable: bool,
}

/// What the renewer needs from the server, so its logic can be tested without one.
pub(crate) trait Api: Clone + Send + Sync + 'static {
    fn lookup_self(&self) -> impl Future<Output = Result<TokenTtl, ClientError>> + Send;
    fn renew_self(&self) -> impl Future<Output = Result<TokenTtl, ClientError>> + Send;
    fn relogin(&self) -> impl Future<Output = Result<TokenTtl, ClientError>> + Send;
    fn renew_lease(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> impl Future<Output = Result<LeaseRenewal, ClientError>> + Send;
}

fn secs(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Api for Client {
    async fn lookup_self(&self) -> Result<TokenTtl, ClientError> {
        let s = self.token_lookup_self().await?;
        let field = |k: &str| s.data_field(k).cloned();
        Ok(TokenTtl {
            ttl: field("ttl").and_then(|v| v.as_u64()).unwrap_or(0),
            renewable: field("renewable")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }

    async fn renew_self(&self) -> Result<TokenTtl, ClientError> {
        let s = self.token_renew_self(None).await?;
        let auth = s
            .auth
            .as_ref()
            .ok_or_else(|| ClientError::Decode("the renewal answer has no auth block".into()))?;
        Ok(TokenTtl {
            ttl: secs(auth.lease_duration),
            renewable: auth.renewable,
        })
    }

    async fn relogin(&self) -> Result<TokenTtl, ClientError> {
        let auth = Client::relogin(self).await?;
        Ok(TokenTtl {
            ttl: secs(auth.lease_duration),
            renewable: auth.renewable,
        })
    }

    async fn renew_lease(
        &self,
        lease_id: &str,
        increment: u64,
    ) -> Result<LeaseRenewal, ClientError> {
        self.lease_renew(lease_id, Some(Ttl::Seconds(increment)))
            .await
    }
}

fn spawn<A: Api>(api: A, options: RenewerOptions) -> Result<Renewer, ClientError> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| ClientError::Config("the renewer needs a Tokio runtime".into()))?;
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (event_tx, events) = mpsc::channel(options.events_capacity.max(1));
    let worker = Worker {
        api,
        options,
        events: event_tx,
        token: TokenPlan::Lookup,
        token_due: Instant::now(),
        full_ttl: 0,
        max_ttl_reported: false,
        leases: HashMap::new(),
    };
    let task = handle.spawn(worker.run(command_rx));
    Ok(Renewer {
        commands,
        events,
        task,
    })
}

/// What to do for the token when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenPlan {
    /// Learn its TTL (at start).
    Lookup,
    /// `renew-self`.
    Renew,
    /// Log in again.
    Relogin,
    /// Nothing (a token that never expires, or nothing can be done).
    Idle,
}

struct LeaseState {
    due: Instant,
    ttl: Duration,
}

struct Worker<A> {
    api: A,
    options: RenewerOptions,
    events: mpsc::Sender<RenewEvent>,
    token: TokenPlan,
    token_due: Instant,
    /// The TTL the token had after the last login or uncapped renewal: a renewal that
    /// gives less has reached the max TTL.
    full_ttl: u64,
    max_ttl_reported: bool,
    leases: HashMap<String, LeaseState>,
}

/// When to act on something that lives `ttl` from `now`: after `fraction` of it, but
/// not sooner than `min_wait`.
fn due_after(now: Instant, ttl: Duration, fraction: f64, min_wait: Duration) -> Instant {
    let wait = ttl.mul_f64(fraction.clamp(0.05, 0.95));
    now + wait.max(min_wait)
}

/// Whether re-authentication is the answer to a failed renewal (the server refused
/// the token), rather than waiting and trying again.
fn needs_relogin(e: &ClientError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::InvalidRequest | ErrorKind::NotFound
    )
}

impl<A: Api> Worker<A> {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let next = self.next_due();
            let sleep_until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::AddLease(id, ttl)) => {
                        let due = due_after(Instant::now(), ttl, self.options.fraction, self.options.min_wait);
                        self.leases.insert(id, LeaseState { due, ttl });
                    }
                    Some(Command::RemoveLease(id)) => {
                        self.leases.remove(&id);
                    }
                },
                () = tokio::time::sleep_until(sleep_until) => {
                    if next.is_some() {
                        self.work().await;
                    }
                }
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        let token = (self.token != TokenPlan::Idle).then_some(self.token_due);
        token
            .into_iter()
            .chain(self.leases.values().map(|l| l.due))
            .min()
    }

    fn emit(&self, event: RenewEvent) {
        let _ = self.events.try_send(event);
    }

    fn fail(&self, what: RenewTarget, e: &ClientError) {
        self.emit(RenewEvent::Failed {
            what,
            kind: e.kind(),
            error: e.to_string(),
        });
    }

    async fn work(&mut self) {
        let now = Instant::now();
        if self.token != TokenPlan::Idle && self.token_due <= now {
            self.token_step().await;
        }
        let due: Vec<String> = self
            .leases
            .iter()
            .filter(|(_, l)| l.due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.lease_step(id).await;
        }
    }

    fn retry_after(&self) -> Duration {
        self.options.retry_wait.max(self.options.min_wait)
    }

    /// Schedule the token's next step after a login or a renewal that gave `t`.
    fn schedule_token(&mut self, t: TokenTtl, after_login: bool) {
        let ttl = Duration::from_secs(t.ttl);
        if t.ttl == 0 {
            // Never expires (e.g. a root token): nothing to do.
            self.token = TokenPlan::Idle;
            return;
        }
        // One second of slack: a TTL counted down between two reads is not a cap.
        let capped = !after_login && t.ttl.saturating_add(1) < self.full_ttl;
        if after_login || !capped {
            self.full_ttl = self.full_ttl.max(t.ttl);
            if after_login {
                self.full_ttl = t.ttl;
                self.max_ttl_reported = false;
            }
        }
        self.token = if t.renewable && !capped {
            TokenPlan::Renew
        } else {
            TokenPlan::Relogin
        };
        self.token_due = due_after(
            Instant::now(),
            ttl,
            self.options.fraction,
            self.options.min_wait,
        );
    }

    async fn token_step(&mut self) {
        match self.token {
            TokenPlan::Idle => {}
            TokenPlan::Lookup => match self.api.lookup_self().await {
                Ok(t) => {
                    self.full_ttl = t.ttl;
                    self.schedule_token(t, false);
                }
                Err(e) if needs_relogin(&e) => self.relogin(Some(e)).await,
                Err(e) => {
                    self.fail(RenewTarget::Token, &e);
                    self.token_due = Instant::now() + self.retry_after();
                }
            },
            TokenPlan::Renew => match self.api.renew_self().await {
                Ok(t) => {
                    self.emit(RenewEvent::TokenRenewed {
                        ttl: Duration::from_secs(t.ttl),
                    });
                    self.schedule_token(t, false);
                }
                Err(e) if needs_relogin(&e) => self.relogin(Some(e)).await,
                Err(e) => {
                    self.fail(RenewTarget::Token, &e);
                    self.token_due = Instant::now() + self.retry_after();
                }
            },
            TokenPlan::Relogin => self.relogin(None).await,
        }
    }

    async fn relogin(&mut self, cause: Option<ClientError>) {
        match self.api.relogin().await {
            Ok(t) => {
                self.emit(RenewEvent::Reauthenticated {
                    ttl: Duration::from_secs(t.ttl),
                });
                self.schedule_token(t, true);
            }
            Err(e) if e.kind() == ErrorKind::NoLogin => {
                if let Some(cause) = cause {
                    // The token was refused and cannot be replaced: say so, stop.
                    self.fail(RenewTarget::Token, &cause);
                    self.fail(RenewTarget::Token, &e);
                    self.token = TokenPlan::Idle;
                } else {
                    // Capped by its max TTL: keep renewing what is left, say it once.
                    if !self.max_ttl_reported {
                        self.fail(RenewTarget::Token, &e);
                        self.max_ttl_reported = true;
                    }
                    self.token = TokenPlan::Renew;
                    self.token_due = Instant::now() + self.retry_after();
                }
            }
            Err(e) => {
                self.fail(RenewTarget::Token, &e);
                self.token = TokenPlan::Relogin;
                self.token_due = Instant::now() + self.retry_after();
            }
        }
    }

    async fn lease_step(&mut self, id: String) {
        let Some(ttl) = self.leases.get(&id).map(|l| l.ttl) else {
            return;
        };
        match self.api.renew_lease(&id, ttl.as_secs().max(1)).await {
            Ok(r) => {
                let left = Duration::from_secs(secs(r.lease_duration));
                if !r.renewable || left < ttl {
                    self.leases.remove(&id);
                    self.emit(RenewEvent::LeaseExpiring {
                        lease_id: id,
                        ttl: left,
                    });
                } else {
                    let due = due_after(
                        Instant::now(),
                        left,
                        self.options.fraction,
                        self.options.min_wait,
                    );
                    if let Some(l) = self.leases.get_mut(&id) {
                        l.due = due;
                    }
                    self.emit(RenewEvent::LeaseRenewed {
                        lease_id: id,
                        ttl: left,
                    });
                }
            }
            Err(e) if needs_relogin(&e) => {
                self.leases.remove(&id);
                self.emit(RenewEvent::LeaseLost {
                    lease_id: id,
                    error: e.to_string(),
                });
            }
            Err(e) => {
                self.fail(RenewTarget::Lease(id.clone()), &e);
                let retry = Instant::now() + self.retry_after();
                if let Some(l) = self.leases.get_mut(&id) {
                    l.due = retry;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A server in memory: a token with a TTL, renewals capped at a max TTL, a switch
    /// that revokes the token, and a log of calls with their (paused) times.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        ttl: u64,
        /// Seconds (from start) after which renewals are capped.
        max_at: Option<u64>,
        revoked: bool,
        can_login: bool,
        start: Option<Instant>,
        expires: Option<Instant>,
        calls: Vec<(&'static str, u64)>,
        lease_refused: bool,
    }

    fn denied() -> ClientError {
        ClientError::Api {
            status: 403,
            errors: vec!["permission denied".into()],
        }
    }

    impl Fake {
        fn new(ttl: u64, can_login: bool) -> Fake {
            let f = Fake::default();
            {
                let mut s = f.0.lock().unwrap();
                s.ttl = ttl;
                s.can_login = can_login;
                s.start = Some(Instant::now());
                s.expires = Some(Instant::now() + Duration::from_secs(ttl));
            }
            f
        }
        fn log(&self, what: &'static str) {
            let mut s = self.0.lock().unwrap();
            let at = s.start.unwrap().elapsed().as_secs();
            s.calls.push((what, at));
        }
        fn calls(&self) -> Vec<(&'static str, u64)> {
            self.0.lock().unwrap().calls.clone()
        }
        fn valid(&self) -> bool {
            let s = self.0.lock().unwrap();
            !s.revoked && s.expires.unwrap() > Instant::now()
        }
    }

    impl Api for Fake {
        async fn lookup_self(&self) -> Result<TokenTtl, ClientError> {
            self.log("lookup");
            if !self.valid() {
                return Err(denied());
            }
            let s = self.0.lock().unwrap();
            Ok(TokenTtl {
                ttl: (s.expires.unwrap() - Instant::now()).as_secs(),
                renewable: true,
            })
        }
        async fn renew_self(&self) -> Result<TokenTtl, ClientError> {
            self.log("renew");
            if !self.valid() {
                return Err(denied());
            }
            let mut s = self.0.lock().unwrap();
            let now = Instant::now();
            let mut until = now + Duration::from_secs(s.ttl);
            if let Some(max) = s.max_at {
                until = until.min(s.start.unwrap() + Duration::from_secs(max));
            }
            s.expires = Some(until);
            Ok(TokenTtl {
                ttl: (until - now).as_secs(),
                renewable: true,
            })
        }
        async fn relogin(&self) -> Result<TokenTtl, ClientError> {
            self.log("login");
            let mut s = self.0.lock().unwrap();
            if !s.can_login {
                return Err(ClientError::NoLogin("given a token".into()));
            }
            s.revoked = false;
            s.start = Some(Instant::now());
            s.expires = Some(Instant::now() + Duration::from_secs(s.ttl));
            Ok(TokenTtl {
                ttl: s.ttl,
                renewable: true,
            })
        }
        async fn renew_lease(&self, id: &str, inc: u64) -> Result<LeaseRenewal, ClientError> {
            self.log("lease");
            if self.0.lock().unwrap().lease_refused {
                return Err(ClientError::Api {
                    status: 400,
                    errors: vec!["lease not found".into()],
                });
            }
            Ok(LeaseRenewal {
                lease_id: id.into(),
                lease_duration: i64::try_from(inc).unwrap(),
                renewable: true,
            })
        }
    }

    async fn collect(r: &mut Renewer) -> Vec<RenewEvent> {
        let mut all = Vec::new();
        while let Some(e) = r.try_next_event() {
            all.push(e);
        }
        all
    }

    #[test]
    fn due_times_are_two_thirds_with_a_floor() {
        let now = Instant::now();
        let d = due_after(
            now,
            Duration::from_secs(30),
            2.0 / 3.0,
            Duration::from_millis(500),
        );
        assert_eq!(d - now, Duration::from_secs(20));
        let d = due_after(
            now,
            Duration::from_secs(0),
            2.0 / 3.0,
            Duration::from_millis(500),
        );
        assert_eq!(d - now, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_renewed_at_two_thirds_and_stays_valid() {
        let fake = Fake::new(30, false);
        let mut r = spawn(fake.clone(), RenewerOptions::default()).unwrap();
        tokio::time::sleep(Duration::from_secs(95)).await;
        assert!(fake.valid(), "token expired: {:?}", fake.calls());
        let renews: Vec<u64> = fake
            .calls()
            .iter()
            .filter(|(w, _)| *w == "renew")
            .map(|(_, at)| *at)
            .collect();
        // lookup at 0 (ttl 30), renewals at 20, 40, 60, 80.
        assert_eq!(renews, [20, 40, 60, 80], "{:?}", fake.calls());
        let events = collect(&mut r).await;
        assert!(events
            .iter()
            .all(|e| matches!(e, RenewEvent::TokenRenewed { ttl } if ttl.as_secs() == 30)));
        assert_eq!(events.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_token_leads_to_a_new_login() {
        let fake = Fake::new(30, true);
        let mut r = spawn(fake.clone(), RenewerOptions::default()).unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        fake.0.lock().unwrap().revoked = true;
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(fake.valid());
        let events = collect(&mut r).await;
        assert_eq!(
            events,
            [RenewEvent::Reauthenticated {
                ttl: Duration::from_secs(30)
            }]
        );
        let calls: Vec<&str> = fake.calls().iter().map(|c| c.0).collect();
        assert_eq!(calls, ["lookup", "renew", "login"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_max_ttl_leads_to_a_new_login_before_expiry() {
        let fake = Fake::new(30, true);
        fake.0.lock().unwrap().max_at = Some(50);
        let mut r = spawn(fake.clone(), RenewerOptions::default()).unwrap();
        tokio::time::sleep(Duration::from_secs(49)).await;
        // Renewed at 20 (ttl 30) and at 40 (capped: 10 left), then a login at 2/3 of
        // those 10 s, before the token ends at 50.
        assert!(fake.valid());
        let calls = fake.calls();
        assert!(calls.contains(&("renew", 40)), "{calls:?}");
        assert!(
            calls
                .iter()
                .any(|&(w, at)| w == "login" && at > 40 && at < 50),
            "{calls:?}"
        );
        let events = collect(&mut r).await;
        assert!(events.contains(&RenewEvent::Reauthenticated {
            ttl: Duration::from_secs(30)
        }));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_login_a_refused_token_is_reported_and_left() {
        let fake = Fake::new(30, false);
        let mut r = spawn(fake.clone(), RenewerOptions::default()).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        fake.0.lock().unwrap().revoked = true;
        tokio::time::sleep(Duration::from_secs(100)).await;
        let events = collect(&mut r).await;
        assert!(
            events.iter().any(|e| matches!(
                e,
                RenewEvent::Failed {
                    kind: ErrorKind::PermissionDenied,
                    what: RenewTarget::Token,
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(events.iter().any(|e| matches!(
            e,
            RenewEvent::Failed {
                kind: ErrorKind::NoLogin,
                ..
            }
        )));
        // Stopped trying: lookup, one renew, one login attempt.
        assert_eq!(fake.calls().len(), 3, "{:?}", fake.calls());
    }

    #[tokio::test(start_paused = true)]
    async fn leases_are_renewed_and_dropped_when_refused_and_the_task_stops_on_drop() {
        let fake = Fake::new(0, false);
        fake.0.lock().unwrap().expires = Some(Instant::now() + Duration::from_secs(10_000));
        let mut r = spawn(fake.clone(), RenewerOptions::default()).unwrap();
        r.add_lease("pki/issue/web/1", Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(90)).await;
        let events = collect(&mut r).await;
        assert!(events.contains(&RenewEvent::LeaseRenewed {
            lease_id: "pki/issue/web/1".into(),
            ttl: Duration::from_secs(60)
        }));
        fake.0.lock().unwrap().lease_refused = true;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let events = collect(&mut r).await;
        assert!(
            matches!(&events[..], [RenewEvent::LeaseLost { lease_id, .. }] if lease_id == "pki/issue/web/1"),
            "{events:?}"
        );
        let before = fake.calls().len();
        r.add_lease("x", Duration::from_secs(3));
        drop(r);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            fake.calls().len(),
            before,
            "the task stopped with its handle"
        );
    }
}
