//! The client certificate chain of a TLS connection, carried to each of its
//! requests: [`PeerChain`] wraps the TLS acceptor and, once the handshake is
//! done, reads the chain rustls kept and wraps the connection's service in
//! [`WithPeer`], which puts it ([`PeerCertificates`]) into every request's
//! extensions. The HTTP handler copies it into `ConnectionInfo`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;

/// A connection's client certificate chain, DER, leaf first (empty: none).
#[derive(Debug, Clone, Default)]
pub struct PeerCertificates(pub Arc<[Vec<u8>]>);

/// Wraps an acceptor whose streams are rustls server streams.
#[derive(Debug, Clone)]
pub struct PeerChain<A> {
    inner: A,
}

impl<A> PeerChain<A> {
    /// Around `inner` (a `RustlsAcceptor`).
    pub fn new(inner: A) -> PeerChain<A> {
        PeerChain { inner }
    }
}

type TlsStream<I> = tokio_rustls::server::TlsStream<I>;

impl<A, I, S, T> Accept<I, S> for PeerChain<A>
where
    A: Accept<I, S, Stream = TlsStream<T>>,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
    T: Send + 'static,
{
    type Stream = TlsStream<T>;
    type Service = WithPeer<A::Service>;
    type Future =
        Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send + 'static>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            let chain: Arc<[Vec<u8>]> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default();
            Ok((
                stream,
                WithPeer {
                    inner: service,
                    chain: PeerCertificates(chain),
                },
            ))
        })
    }
}

/// A connection's service that tags each request with the connection's chain.
#[derive(Debug, Clone)]
pub struct WithPeer<S> {
    inner: S,
    chain: PeerCertificates,
}

impl<S, B> tower::Service<axum::http::Request<B>> for WithPeer<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.chain.clone());
        self.inner.call(req)
    }
}
