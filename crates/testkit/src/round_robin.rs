//! A loopback load balancer for tests of several `vodup serve` nodes: every HTTP/1.1 request goes to the
//! next node in turn, so the official clients, which talk to the one endpoint an UploadAddress names,
//! really alternate between nodes (the parts of one multipart upload land on different nodes), even on a
//! single keep-alive connection. A TCP-level balancer would pin each connection to one node, and a
//! client with one connection would never leave it.
//!
//! A node that refuses connections (killed) is passed over for the next one, as a load balancer's health
//! check would, so clients keep working through the nodes left; a request already sent to a node that
//! dies mid-request is answered 502, which clients retry. Bodies stream both ways unbuffered; requests
//! are passed on unchanged (Host included, so signatures still verify).
//!
//! [`RoundRobin`] runs in the test process; the `round_robin` binary runs it for the compat suite.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};

use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::proxy::{ReplyBody, accept_each, bad_gateway, connect};

/// A running balancer. It stops when dropped or on [`RoundRobin::stop`].
#[derive(Debug)]
pub struct RoundRobin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    /// The nodes, in turn order. Set after start when the nodes need the balancer's address first (it is
    /// their public endpoint).
    upstreams: SyncMutex<Vec<SocketAddr>>,
    /// The turn of the next request, over all connections.
    next: AtomicUsize,
    /// Requests each upstream was sent.
    served: SyncMutex<HashMap<SocketAddr, u64>>,
}

impl RoundRobin {
    /// Starts a balancer on `listen` (`127.0.0.1:0` for any port) in front of `upstreams` (plain HTTP; may
    /// be empty until [`RoundRobin::set_upstreams`], requests meanwhile get 502).
    pub async fn start(listen: SocketAddr, upstreams: Vec<SocketAddr>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstreams: SyncMutex::new(upstreams),
            next: AtomicUsize::new(0),
            served: SyncMutex::default(),
        });
        let task = tokio::spawn(accept_each(listener, {
            let shared = shared.clone();
            move |stream| serve(stream, shared.clone())
        }));
        Ok(Self { addr, shared, task })
    }

    /// Replaces the nodes requests go to (a node restarted on new ports, say).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.shared.upstreams.lock().expect("upstreams") = upstreams;
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:P`, without a trailing slash (the form a public endpoint takes).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests each current upstream was sent, in turn order.
    pub fn served(&self) -> Vec<u64> {
        let served = self.shared.served.lock().expect("served");
        let upstreams = self.shared.upstreams.lock().expect("upstreams");
        upstreams.iter().map(|addr| served.get(addr).copied().unwrap_or(0)).collect()
    }

    /// Stops listening and drops every open connection.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The upstream connections of one client connection, at most one per node, kept alive between requests.
type Kept = Mutex<HashMap<SocketAddr, SendRequest<Incoming>>>;

/// One client connection.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let upstream: Arc<Kept> = Arc::default();
    let service = service_fn(move |request| {
        let (shared, upstream) = (shared.clone(), upstream.clone());
        async move { Ok::<_, Infallible>(forward(request, &shared, &upstream).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

async fn forward(request: Request<Incoming>, shared: &Shared, upstream: &Kept) -> Response<ReplyBody> {
    let upstreams = shared.upstreams.lock().expect("upstreams").clone();
    let count = upstreams.len();
    let first = shared.next.fetch_add(1, Ordering::Relaxed);
    // HTTP/1 carries one request at a time per connection, so the lock is never contended.
    let mut kept = upstream.lock().await;
    let mut refused = Vec::new();
    for turn in 0..count {
        let target = upstreams[(first + turn) % count];
        let mut sender = kept.remove(&target);
        if let Some(open) = &mut sender
            && open.ready().await.is_err()
        {
            // The node closed it (restarted, killed, or `Connection: close`): connect afresh.
            sender = None;
        }
        let mut sender = match sender {
            Some(sender) => sender,
            None => match connect(target).await {
                Ok(sender) => sender,
                Err(e) => {
                    refused.push(format!("{target}: {e}"));
                    continue;
                }
            },
        };
        *shared.served.lock().expect("served").entry(target).or_default() += 1;
        let reply = sender.send_request(request);
        kept.insert(target, sender);
        drop(kept);
        return match reply.await {
            Ok(response) => response.map(Either::Left),
            Err(e) => bad_gateway(format!("upstream {target} failed: {e}\n")),
        };
    }
    bad_gateway(format!("no upstream accepts connections: [{}]\n", refused.join("; ")))
}
