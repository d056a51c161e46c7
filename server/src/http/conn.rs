//! Connection bounds for every listener, plain or TLS: how many connections it
//! holds (in all and per client address), how long a connection may take to
//! deliver a request's headers, and how long it may sit idle between requests.
//!
//! The [`Acceptor`] counts each accepted TCP stream against the caps (a stream
//! over a cap is closed at once, before any TLS handshake) and wraps the stream
//! ([`Guarded`]) and the connection's service ([`Tracked`]) around one shared
//! [`Activity`], so the stream's timer knows whether a request is in flight:
//! a connection is never cut while the server works on its request (the body's
//! own read timeout is applied where the body is read, in `request`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// One listener's connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accepting a connection, or from the first byte of a request, to the
    /// end of that request's headers (TLS handshake included).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no byte received is closed
    /// after this long.
    pub idle_timeout: Duration,
    /// Connections the listener holds at once.
    pub max_connections: usize,
    /// Connections the listener holds at once from one client IP address.
    pub max_connections_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 4096,
            max_connections_per_address: 256,
        }
    }
}

/// Open connections of one listener.
#[derive(Debug)]
pub struct Limiter {
    limits: ConnectionLimits,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counters stay consistent even if a holder panicked mid-update: every
    crate::sync::lock(m)
}

impl Limiter {
    /// A limiter with nothing open.
    pub fn new(limits: ConnectionLimits) -> Arc<Limiter> {
        Arc::new(Limiter {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// A place for one more connection from `ip`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut counts = lock(&self.counts);
        let from_ip = counts.per_address.get(&ip).copied().unwrap_or(0);
        if counts.total >= self.limits.max_connections
            || from_ip >= self.limits.max_connections_per_address
        {
            return None;
        }
        counts.total += 1;
        counts.per_address.insert(ip, from_ip + 1);
        Some(Slot {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open now (for tests).
    pub fn open(&self) -> usize {
        lock(&self.counts).total
    }
}

/// One admitted connection; its place is given back when dropped.
#[derive(Debug)]
struct Slot {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.limiter.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.ip);
            }
        }
    }
}

/// What a connection is doing, shared by its stream and its service.
#[derive(Debug)]
struct Activity {
    limits: ConnectionLimits,
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    in_flight: usize,
    /// when the connection was accepted or its last request finished
    since: Instant,
    /// first byte received since then (a request's head is arriving)
    first_byte: Option<Instant>,
    served_one: bool,
    /// the connection's task, parked while a request was in flight: woken when
    /// the last one finishes so its stream arms the idle deadline (HTTP/1 does
    /// not read again on its own until the client sends)
    parked: Option<Waker>,
}

impl Activity {
    fn new(limits: ConnectionLimits) -> Activity {
        Activity {
            limits,
            state: Mutex::new(ActivityState {
                in_flight: 0,
                since: Instant::now(),
                first_byte: None,
                served_one: false,
                parked: None,
            }),
        }
    }

    /// When the connection must be closed if nothing changes; `None` while a
    /// request is in flight (then `waker` is woken when it finishes).
    fn deadline(&self, waker: &Waker) -> Option<Instant> {
        let mut s = lock(&self.state);
        if s.in_flight > 0 {
            if !s.parked.as_ref().is_some_and(|w| w.will_wake(waker)) {
                s.parked = Some(waker.clone());
            }
            return None;
        }
        Some(match s.first_byte {
            Some(first) => first + self.limits.header_read_timeout,
            None if s.served_one => s.since + self.limits.idle_timeout,
            None => s.since + self.limits.header_read_timeout,
        })
    }

    fn received(&self) {
        let mut s = lock(&self.state);
        if s.in_flight == 0 && s.first_byte.is_none() {
            s.first_byte = Some(Instant::now());
        }
    }

    fn start(&self) {
        let mut s = lock(&self.state);
        s.in_flight += 1;
        s.first_byte = None;
    }

    fn finish(&self) {
        let parked = {
            let mut s = lock(&self.state);
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight > 0 {
                return;
            }
            s.since = Instant::now();
            s.first_byte = None;
            s.served_one = true;
            s.parked.take()
        };
        if let Some(w) = parked {
            w.wake();
        }
    }
}

/// Counts admitted connections and wraps them; see the module docs.
#[derive(Debug, Clone)]
pub struct Acceptor {
    limiter: Arc<Limiter>,
}

impl Acceptor {
    /// An acceptor counting against `limiter`.
    pub fn new(limiter: Arc<Limiter>) -> Acceptor {
        Acceptor { limiter }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for Acceptor {
    type Stream = Guarded<TcpStream>;
    type Service = Tracked<S>;
    type Future = std::future::Ready<io::Result<(Guarded<TcpStream>, Tracked<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let slot = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.limiter.admit(peer.ip()));
        let Some(slot) = slot else {
            // Debug only: a flood of refusals must not become a flood of log lines.
            tracing::debug!("connection refused: listener connection cap reached");
            return std::future::ready(Err(io::Error::other("connection cap reached")));
        };
        let activity = Arc::new(Activity::new(self.limiter.limits));
        std::future::ready(Ok((
            Guarded {
                inner: stream,
                activity: activity.clone(),
                timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
                armed: None,
                _slot: slot,
            },
            Tracked {
                inner: service,
                activity,
            },
        )))
    }
}

/// An accepted stream that holds its place under the caps and is closed (an
/// I/O error to the HTTP machinery) when its deadline passes.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    _slot: Slot,
}

impl<S> Guarded<S> {
    /// Called when the stream would block: `Ready(Err)` once the deadline has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(deadline) = self.activity.deadline(cx.waker()) else {
            return Poll::Pending;
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection closed: header or idle timeout",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.activity.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            // A client that does not read its answers is as stuck as one that
            // does not send: the same deadline applies.
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.poll_deadline(cx).map(Err),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection's service: marks each request in flight until its response
/// is ready, so the connection's deadline waits for the server.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.activity.start();
        let guard = InFlight(self.activity.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            drop(guard);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_address: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_connections_per_address: per_address,
            ..ConnectionLimits::default()
        }
    }

    #[test]
    fn caps_count_open_connections_and_give_places_back() {
        let l = Limiter::new(limits(3, 2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert!(l.admit(a).is_none(), "third from one address");
        let _b1 = l.admit(b).unwrap();
        assert!(l.admit(b).is_none(), "fourth in all");
        drop(a1);
        assert_eq!(l.open(), 2);
        assert!(l.admit(b).is_some());
    }

    #[test]
    fn deadlines_follow_what_the_connection_does() {
        use std::sync::atomic::Ordering::SeqCst;
        let limits = ConnectionLimits::default();
        let act = Activity::new(limits);
        let (woken, waker) = counting_waker();
        let deadline = || act.deadline(&waker);
        let idle_from_accept = deadline().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        act.received();
        let head_by = deadline().unwrap();
        assert!(head_by > idle_from_accept, "counted from the first byte");
        std::thread::sleep(Duration::from_millis(5));
        act.received();
        assert_eq!(deadline(), Some(head_by), "later bytes do not extend it");
        act.start();
        assert_eq!(deadline(), None, "never cut while in flight");
        act.received();
        let finished = Instant::now();
        assert_eq!(woken.load(SeqCst), 0);
        act.finish();
        assert_eq!(woken.load(SeqCst), 1, "woken to arm its idle deadline");
        let idle_by = deadline().unwrap();
        assert!(
            idle_by >= finished + limits.idle_timeout,
            "idle after a request"
        );
        act.received();
        assert!(
            deadline().unwrap() < idle_by,
            "the next head has the header timeout"
        );
    }

    fn counting_waker() -> (Arc<std::sync::atomic::AtomicUsize>, Waker) {
        struct Count(Arc<std::sync::atomic::AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (n.clone(), Waker::from(Arc::new(Count(n))))
    }
}
