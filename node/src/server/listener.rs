//! One HTTP listener: accepting connections within a total and a per-IP cap, the TLS handshake within a deadline, HTTP/1.1 with a header-read (and idle) timeout, and a graceful stop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use consentnet_identity::util::lock;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener allows each connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// For a request's headers to arrive, and for an idle connection to stay open.
    pub header_timeout: Duration,
    /// Open connections from one IP address.
    pub per_ip: usize,
    /// Open connections in all.
    pub total: usize,
}

/// Open connections per client IP, with the total.
#[derive(Debug, Default)]
struct Open {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// A connection counted in [`Open`] until dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A slot for a connection from `ip`, or `None` when a cap is reached.
fn take_slot(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: ConnectionLimits) -> Option<Slot> {
    let mut state = lock(open);
    let from_ip = state.per_ip.get(&ip).copied().unwrap_or(0);
    if state.total >= limits.total || from_ip >= limits.per_ip {
        return None;
    }
    state.total += 1;
    *state.per_ip.entry(ip).or_default() += 1;
    Some(Slot {
        open: open.clone(),
        ip,
    })
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `stopped` turns
/// true; then stops accepting, lets requests in flight finish, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = until_stopped(stopped.clone()) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = take_slot(&open, super::limits::client_key(peer.ip()), limits) else {
            // Dropped at once: a client cannot hold more than its share.
            continue;
        };
        let connection = Connection {
            router: router.clone(),
            peer,
            limits,
            stopped: stopped.clone(),
        };
        let tls = tls.clone();
        connections.spawn(async move {
            let _slot = slot;
            connection.run(stream, tls).await;
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn until_stopped(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// One accepted connection.
struct Connection {
    router: Router,
    peer: SocketAddr,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        match tls {
            None => self.http(stream).await,
            Some(acceptor) => {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => self.http(stream).await,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, peer = %self.peer, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    /// HTTP/1.1 on `io` until the client is done, a timeout passes, or the node stops.
    async fn http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let peer = self.peer;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(64 * 1024);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = until_stopped(self.stopped.clone()) => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_ip_gets_at_most_its_share_and_a_closed_connection_frees_its_slot() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            per_ip: 2,
            total: 3,
        };
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = take_slot(&open, a, limits);
        let second = take_slot(&open, a, limits);
        assert!(first.is_some() && second.is_some());
        assert!(take_slot(&open, a, limits).is_none(), "per-IP cap");
        let third = take_slot(&open, b, limits);
        assert!(third.is_some());
        assert!(take_slot(&open, b, limits).is_none(), "total cap");
        drop(first);
        assert!(take_slot(&open, a, limits).is_some(), "the slot came back");
        drop((second, third));
    }
}
