//! The renewer's scheduling against a server in memory, on paused tokio time.

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
