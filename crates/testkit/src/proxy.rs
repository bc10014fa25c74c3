//! A loopback HTTP/1.1 reverse proxy that forwards everything unchanged except, on request, one byte of
//! an OSS UploadPart body, so tests can prove that a part damaged in flight is caught (Content-MD5,
//! CRC-64) and re-sent rather than stored; or the `x-oss-hash-crc64ecma` header of GET answers, as OSS
//! serves an object stored before it computed CRC-64s, so tests can prove a download that cannot be
//! verified is refused.
//!
//! Each client connection gets its own upstream connection, and requests go through in the order they
//! arrived: method, target, headers (Host included) and body are passed on as they are, and bodies stream
//! both ways without being buffered, so 64 MiB parts cost no memory. The only changes the proxy ever makes
//! are the one flipped byte (the body keeps its length and its `Content-Length`) and the removed header.
//!
//! It does not speak HTTP/2, TLS or `CONNECT`; the server under test is plain HTTP/1.1 on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use vodup_proto::encoding::form_decode;

/// Which UploadPart bodies the proxy damages. A part is an OSS `PUT` whose query carries both
/// `uploadId` and `partNumber=N`; every other request passes untouched in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Forward everything as it is.
    PassThrough,
    /// Damage the first upload of part N seen (since this mode was set), then pass everything through:
    /// a client that retries the part should succeed.
    OncePart(u32),
    /// Damage every upload of part N: a client can never get it stored.
    EveryPart(u32),
    /// Damage no request, but remove `x-oss-hash-crc64ecma` from the answer to every GET.
    NoCrc64OnGet,
}

/// A running proxy. It stops when dropped or on [`CorruptingProxy::stop`].
#[derive(Debug)]
pub struct CorruptingProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    /// Where every request goes.
    target: SocketAddr,
    mode: Mutex<ModeState>,
    /// Requests whose body had a byte flipped.
    corrupted: Arc<AtomicU64>,
}

#[derive(Debug)]
struct ModeState {
    mode: Corruption,
    /// Whether [`Corruption::OncePart`] has had its one request.
    spent: bool,
}

/// The body sent upstream: the client's own, or the client's with one byte flipped.
type UpstreamBody = Either<Incoming, FlipBody>;

/// The body sent back: upstream's, or the proxy's own 502 when upstream cannot be reached.
pub(crate) type ReplyBody = Either<Incoming, Full<Bytes>>;

impl CorruptingProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `target` (a plain-HTTP server).
    pub async fn start(target: SocketAddr, mode: Corruption) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            target,
            mode: Mutex::new(ModeState { mode, spent: false }),
            corrupted: Arc::new(AtomicU64::new(0)),
        });
        let task = tokio::spawn(accept_each(listener, {
            let shared = shared.clone();
            move |stream| serve(stream, shared.clone())
        }));
        Self { addr, shared, task }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:P`, without a trailing slash (the form a public OSS endpoint takes).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what is damaged from the next request on. Setting [`Corruption::OncePart`] again re-arms it.
    pub fn set_mode(&self, mode: Corruption) {
        *self.shared.mode.lock().expect("proxy mode") = ModeState { mode, spent: false };
    }

    /// How many requests had a byte of their body flipped.
    pub fn corrupted(&self) -> u64 {
        self.shared.corrupted.load(Ordering::Relaxed)
    }

    /// Stops listening and drops every open connection; returns once the port is closed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for CorruptingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    /// Whether this request's body is to be damaged; claims the single shot of `OncePart`.
    fn should_corrupt<B>(&self, request: &Request<B>) -> bool {
        if request.method() != Method::PUT {
            return false;
        }
        let query = form_decode(request.uri().query().unwrap_or(""));
        let part = query.iter().find(|(k, _)| k == "partNumber").and_then(|(_, v)| v.parse::<u32>().ok());
        let Some(part) = part else { return false };
        if !query.iter().any(|(k, _)| k == "uploadId") {
            return false;
        }
        let mut state = self.mode.lock().expect("proxy mode");
        match state.mode {
            Corruption::PassThrough | Corruption::NoCrc64OnGet => false,
            Corruption::EveryPart(n) => n == part,
            Corruption::OncePart(n) if n == part && !state.spent => {
                state.spent = true;
                true
            }
            Corruption::OncePart(_) => false,
        }
    }
}

/// Accepts connections and serves each on its own task (both proxies of the testkit); aborting the task
/// running this drops the `JoinSet` and with it every connection.
pub(crate) async fn accept_each<F, Fut>(listener: TcpListener, mut serve: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        connections.spawn(serve(stream));
        while connections.try_join_next().is_some() {}
    }
}

/// One client connection, and lazily the upstream connection that mirrors it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let upstream: Arc<tokio::sync::Mutex<Option<SendRequest<UpstreamBody>>>> = Arc::default();
    let service = service_fn(move |request| {
        let (shared, upstream) = (shared.clone(), upstream.clone());
        async move { Ok::<_, Infallible>(forward(request, &shared, &upstream).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

async fn forward(
    request: Request<Incoming>,
    shared: &Shared,
    upstream: &tokio::sync::Mutex<Option<SendRequest<UpstreamBody>>>,
) -> Response<ReplyBody> {
    let corrupt = shared.should_corrupt(&request);
    let strip_crc64 = request.method() == Method::GET
        && shared.mode.lock().expect("proxy mode").mode == Corruption::NoCrc64OnGet;
    let (parts, body) = request.into_parts();
    let body = if corrupt {
        let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        Either::Right(FlipBody::new(body, length, shared.corrupted.clone()))
    } else {
        Either::Left(body)
    };
    let request = Request::from_parts(parts, body);

    // HTTP/1 carries one request at a time, so the lock is never contended; it only hands the upstream
    // connection from one request of this client connection to the next.
    let mut slot = upstream.lock().await;
    let mut kept = slot.take();
    if let Some(sender) = &mut kept
        && sender.ready().await.is_err()
    {
        // Upstream closed it (say after `Connection: close`); the next request gets a fresh one.
        kept = None;
    }
    let mut sender = match kept {
        Some(sender) => sender,
        None => match connect(shared.target).await {
            Ok(sender) => sender,
            Err(e) => return bad_gateway(format!("cannot reach {}: {e}\n", shared.target)),
        },
    };
    let reply = sender.send_request(request);
    *slot = Some(sender);
    drop(slot);
    match reply.await {
        Ok(mut response) => {
            if strip_crc64 {
                response.headers_mut().remove("x-oss-hash-crc64ecma");
            }
            response.map(Either::Left)
        }
        Err(e) => bad_gateway(format!("upstream {} failed: {e}\n", shared.target)),
    }
}

/// An HTTP/1.1 connection to `target`, ready for a request (both proxies of the testkit use it).
pub(crate) async fn connect<B>(
    target: SocketAddr,
) -> Result<SendRequest<B>, Box<dyn std::error::Error + Send + Sync>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    sender.ready().await?;
    Ok(sender)
}

/// The proxy's own answer when upstream cannot be reached or fails mid-request.
pub(crate) fn bad_gateway(text: String) -> Response<ReplyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

/// A request body with one byte XOR 0xFF: the middle byte when `Content-Length` is known (so the damage
/// lands inside the part whatever the chunking), else the middle of the first non-empty chunk.
#[derive(Debug)]
struct FlipBody {
    inner: Incoming,
    /// Body offset of the byte to flip; `None` until the first non-empty chunk when the length is unknown.
    target: Option<u64>,
    /// Bytes passed on so far.
    offset: u64,
    done: bool,
    corrupted: Arc<AtomicU64>,
}

impl FlipBody {
    fn new(inner: Incoming, length: Option<u64>, corrupted: Arc<AtomicU64>) -> Self {
        Self { inner, target: length.map(|len| len / 2), offset: 0, done: false, corrupted }
    }

    fn flip(&mut self, data: Bytes) -> Bytes {
        let len = data.len() as u64;
        if self.done || len == 0 {
            self.offset += len;
            return data;
        }
        let target = *self.target.get_or_insert(self.offset + len / 2);
        let result = if (self.offset..self.offset + len).contains(&target) {
            let mut damaged = BytesMut::from(&data[..]);
            damaged[(target - self.offset) as usize] ^= 0xFF;
            self.done = true;
            self.corrupted.fetch_add(1, Ordering::Relaxed);
            damaged.freeze()
        } else {
            data
        };
        self.offset += len;
        result
    }
}

impl Body for FlipBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => Frame::data(self.flip(data)),
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
