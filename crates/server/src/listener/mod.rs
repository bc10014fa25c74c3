//! The HTTP/1.1 listener both planes run on, in place of `axum::serve`, which has no connection cap and
//! no timeouts (issue 11, items 3 and 8): a client sending its head a byte at a time, or hundreds of idle
//! keep-alive sockets, held descriptors until the process had none left for real uploads.
//!
//! What it adds, per listener:
//!
//! * A cap on open connections, taken *before* `accept` (mini-redis `Listener`): at the cap the listener
//!   stops accepting and new connections wait in the kernel's backlog, costing no descriptor. By default
//!   it is derived from the process's descriptor limit ([`default_caps`]).
//! * A cap per client address ([`clients`]): over it, a connection is closed as soon as it is accepted.
//! * A header-read timeout (a new connection's first head, and every head once its first byte arrived)
//!   and an idle timeout (between requests, or a response nobody reads), enforced by a per-connection
//!   [`watch::watchdog`]. hyper's own `header_read_timeout` cannot do both: it starts whenever hyper
//!   waits for a head, including on an idle keep-alive connection, so it would cut idle connections at
//!   the header timeout.
//! * A refusal of requests whose head has both `Content-Length` and `Transfer-Encoding` ([`framing`]),
//!   answered by the plane's own error format (the `refuse` hook).
//!
//! hyper's defaults bound a head: 100 headers, a 64 KiB request target, and a read buffer of about
//! 408 KiB (8 KiB + 100 × 4 KiB) for the whole head; beyond those it closes the connection.
//! Shutdown keeps `axum::serve`'s behaviour: stop accepting, let each connection finish the request it
//! is serving (idle ones close at once), and after the grace period drop whatever is left.

mod clients;
mod framing;
mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch as signal};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use self::clients::ClientSlot;
pub use self::clients::Clients;
pub use self::watch::Refusal;
use self::watch::{Expired, Shared, Watched};
use crate::metrics::ConnectionMetrics;

/// Descriptors kept back from the connection caps for everything else: the catalogue, part and blob
/// files, outgoing event deliveries, the runtime.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// The limits of one listener, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client address at most.
    pub max_per_client: usize,
    /// A head must arrive whole within this.
    pub header_read_timeout: Duration,
    /// A connection with nothing to do is closed after this.
    pub idle_timeout: Duration,
    /// How long connections get to finish after the stop signal.
    pub grace: Duration,
}

/// Default caps from the descriptor limit: each listener may use a quarter of what is left after
/// [`RESERVED_DESCRIPTORS`] (the other half is for the files a data-plane request opens), at least 8
/// and at most 4096; a client address a quarter of that.
pub fn default_caps(descriptor_limit: u64) -> (usize, usize) {
    let total = (descriptor_limit.saturating_sub(RESERVED_DESCRIPTORS) / 4).clamp(8, 4096);
    let total = usize::try_from(total).unwrap_or(4096);
    (total, (total / 4).max(2))
}

/// Raises the soft limit on open descriptors to the hard limit (at most 2^20), as Go's runtime and most
/// servers do: the soft default (often 1024) exists for old `select()` programs, and the connection caps
/// are derived from it. Returns the soft limit now in force; a refusal leaves it as it was.
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.unwrap_or(u64::MAX).min(1 << 20);
    if limit.current.is_some_and(|current| current < wanted) {
        let raised = rustix::process::Rlimit { current: Some(wanted), maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-descriptor limit");
        }
    }
    descriptor_limit()
}

/// The soft limit on open descriptors (`RLIMIT_NOFILE`).
pub fn descriptor_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Answers a request the listener refuses, in the plane's own error format.
pub type Refuse = Arc<dyn Fn(&Request<Incoming>, Refusal) -> Response + Send + Sync>;

/// One plane to serve.
#[derive(Clone)]
pub struct Plane {
    /// `vod` or `oss`, for logs.
    pub name: &'static str,
    /// The plane's router.
    pub router: Router,
    /// Its answer to refused requests.
    pub refuse: Refuse,
    /// Its connection counters.
    pub metrics: Arc<ConnectionMetrics>,
}

impl std::fmt::Debug for Plane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plane").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Serves `plane` on `listener` until `stop` turns true, then drains connections for `limits.grace`.
pub async fn serve(listener: TcpListener, plane: Plane, limits: Limits, mut stop: signal::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let clients = Clients::new(limits.max_per_client);
    let mut connections = JoinSet::new();
    let mut last_full_warning: Option<tokio::time::Instant> = None;
    loop {
        while connections.try_join_next().is_some() {}
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                plane.metrics.cap_reached.fetch_add(1, Ordering::Relaxed);
                if last_full_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    last_full_warning = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        plane = plane.name,
                        max_connections = limits.max_connections,
                        "connection cap reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = stopped(&mut stop) => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(plane.name, &e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(slot) = clients.enter(peer.ip()) else {
            plane.metrics.refused_per_client.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(plane = plane.name, %peer, "client has its share of connections open; closed");
            continue;
        };
        plane.metrics.accepted.fetch_add(1, Ordering::Relaxed);
        plane.metrics.open.fetch_add(1, Ordering::Relaxed);
        let held = Held { _permit: permit, _slot: slot, metrics: plane.metrics.clone() };
        connections.spawn(connection(stream, peer, plane.clone(), limits, stop.clone(), held));
    }
    drop(listener);
    let drained =
        tokio::time::timeout(limits.grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            plane = plane.name,
            "requests still in flight after {} s; stopping anyway",
            limits.grace.as_secs()
        );
        connections.shutdown().await;
    }
}

/// Completes once the stop signal is given (or its sender is gone).
async fn stopped(stop: &mut signal::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors of `accept` that concern one connection are skipped; others (out of descriptors, say) get a
/// pause, as `axum::serve` does, so the loop does not spin.
async fn accept_failed(plane: &str, error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(plane, %error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What an open connection holds; dropping it frees its places and updates the gauge.
struct Held {
    _permit: OwnedSemaphorePermit,
    _slot: ClientSlot,
    metrics: Arc<ConnectionMetrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.open.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    plane: Plane,
    limits: Limits,
    mut stop: signal::Receiver<bool>,
    held: Held,
) {
    let shared = Arc::new(Shared::new());
    let io = TokioIo::new(Watched::new(stream, shared.clone()));
    let service = {
        let (shared, plane) = (shared.clone(), plane.clone());
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let (refusal, in_flight) = shared.next_request();
            let plane = plane.clone();
            async move {
                let _in_flight = in_flight;
                if let Some(refusal) = refusal {
                    plane.metrics.ambiguous_framing.fetch_add(1, Ordering::Relaxed);
                    let mut response = (plane.refuse)(&request, refusal);
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Ok::<_, Infallible>(response);
                }
                request.extensions_mut().insert(ConnectInfo(peer));
                plane.router.oneshot(request).await
            }
        })
    };
    // No hyper timer: the watchdog below owns both timeouts (see the module comment). Half-close: a client
    // that closes its side once its request is sent (a kill, a timeout) does not cancel the request being
    // served; without it hyper drops the handler at the EOF, and a whole CompleteMultipartUpload could
    // stop between its checks and its commit. The answer's write then fails, and the connection ends.
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .half_close(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let watchdog = watch::watchdog(&shared, limits.header_read_timeout, limits.idle_timeout);
    tokio::pin!(watchdog);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(plane = plane.name, %peer, %error, "connection ended with an error");
                }
                return;
            }
            expired = &mut watchdog => {
                let counter = match expired {
                    Expired::HeaderRead => &held.metrics.header_timeouts,
                    Expired::Idle => &held.metrics.idle_timeouts,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(plane = plane.name, %peer, ?expired, "connection timed out; closed");
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_follow_the_descriptor_limit() {
        assert_eq!(default_caps(256), (48, 12));
        assert_eq!(default_caps(1024), (240, 60));
        assert_eq!(default_caps(16), (8, 2));
        assert_eq!(default_caps(u64::MAX), (4096, 1024));
    }
}
