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
mod tests;
