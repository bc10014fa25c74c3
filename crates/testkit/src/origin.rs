//! A loopback HTTP/1.1 origin that serves the files of one folder, for "upload from a URL" tests.
//!
//! Real origins differ in exactly the ways a URL source has to cope with: some honour `Range`, some
//! ignore it; some announce a length, some stream chunked with none; some send validators that let a
//! resumed download notice the file changed. [`OriginOptions`] switches each of those on or off, and the
//! counters say how the client behaved (how many GETs, how many with `Range`, how many bytes went out).
//!
//! Bodies are streamed from the file, so multi-gigabyte fixtures cost no memory. It serves GET and HEAD
//! only; it does not do multi-range, conditional requests or compression.

use std::convert::Infallible;
use std::io::SeekFrom;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::io::ReaderStream;
use vodup_proto::encoding::{percent_decode, percent_encode_path};
use vodup_proto::timestamp::http_date;

/// Bytes per body chunk read from the file.
const CHUNK: usize = 64 * 1024;

/// What the origin tells its clients; each switch models a kind of real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginOptions {
    /// Honour `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` with 206 and `Content-Range`, and announce
    /// `Accept-Ranges: bytes`. When off, `Range` is ignored: the whole file comes back with 200 and no
    /// `Accept-Ranges`.
    pub ranges: bool,
    /// Send `Content-Length`. When off, GET bodies are chunked and no length is announced, on HEAD
    /// either (which then carries neither `Content-Length` nor `Transfer-Encoding`), as an origin
    /// generating content on the fly would.
    pub content_length: bool,
    /// Send `ETag` (from size and modification time) and `Last-Modified`.
    pub validators: bool,
}

impl Default for OriginOptions {
    fn default() -> Self {
        Self { ranges: true, content_length: true, validators: true }
    }
}

/// A running origin. It stops when dropped or on [`OriginServer::stop`].
#[derive(Debug)]
pub struct OriginServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// What every connection task sees.
#[derive(Debug)]
struct Shared {
    /// The folder served; nothing outside it is reachable.
    root: PathBuf,
    options: OriginOptions,
    /// GET requests, whatever their answer.
    requests: AtomicU64,
    /// Of those, the ones carrying a `Range` header, honoured or not.
    range_requests: AtomicU64,
    /// Body bytes handed to connections.
    bytes_sent: AtomicU64,
}

type OriginBody = BoxBody<Bytes, std::io::Error>;

impl OriginServer {
    /// Starts serving `root` on `127.0.0.1:0`.
    pub async fn start(root: PathBuf, options: OriginOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let shared = Arc::new(Shared {
            root,
            options,
            requests: AtomicU64::new(0),
            range_requests: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:P/<rel_path>`, with `rel_path` percent-encoded segment by segment.
    pub fn url(&self, rel_path: &str) -> String {
        format!("http://{}/{}", self.addr, percent_encode_path(rel_path.trim_start_matches('/')))
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// GET requests so far, whatever their answer (HEAD is not counted).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// GET requests that carried a `Range` header, whether or not the origin honoured it.
    pub fn range_requests(&self) -> u64 {
        self.shared.range_requests.load(Ordering::Relaxed)
    }

    /// File bytes handed to connections so far (a client that hangs up early may not have read them all).
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::Relaxed)
    }

    /// Stops listening and drops every open connection; returns once the port is closed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for OriginServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections; the connection tasks live in a `JoinSet` owned here, so aborting this task
/// closes them all.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, &request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections so a long test does not accumulate them.
        while connections.try_join_next().is_some() {}
    }
}

async fn respond(shared: &Arc<Shared>, request: &Request<Incoming>) -> Response<OriginBody> {
    let head = request.method() == Method::HEAD;
    if !head && request.method() != Method::GET {
        let mut response = small(StatusCode::METHOD_NOT_ALLOWED, "GET and HEAD only\n");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let range_header = request.headers().get(header::RANGE).and_then(|v| v.to_str().ok());
    if !head {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        if range_header.is_some() {
            shared.range_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
    // The query is ignored: segment URLs in playlists often carry `?token=` that a plain folder
    // cannot know about.
    let path = match resolve(&shared.root, request.uri().path()) {
        Ok(path) => path,
        Err(status) => return small(status, "refused\n"),
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => meta,
        _ => return small(StatusCode::NOT_FOUND, "no such file\n"),
    };
    let size = meta.len();
    let options = shared.options;
    let answer = match range_header {
        Some(text) if options.ranges => parse_range(text, size),
        _ => RangeAnswer::Whole,
    };
    let mut response = Response::new(empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    if options.ranges {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if options.validators {
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let nanos = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{size:x}-{nanos:x}\"")).unwrap());
        headers.insert(header::LAST_MODIFIED, HeaderValue::from_str(&http_date(modified)).unwrap());
    }
    let (start, len) = match answer {
        RangeAnswer::Whole => (0, size),
        RangeAnswer::Part { first, last } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {first}-{last}/{size}");
            response.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).unwrap());
            (first, last - first + 1)
        }
        RangeAnswer::Unsatisfiable => {
            let mut refused = small(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            let value = format!("bytes */{size}");
            refused.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).unwrap());
            return refused;
        }
    };
    let headers = response.headers_mut();
    // Without a header, hyper sends the stream chunked because its length is unknown. A HEAD reply then
    // has neither Content-Length nor Transfer-Encoding (hyper never writes the latter on HEAD), which is
    // how such an origin answers HEAD too.
    if options.content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if !head {
        match file_body(&path, start, len, shared.clone()).await {
            Ok(body) => *response.body_mut() = body,
            Err(_) => return small(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n"),
        }
    }
    response
}

/// The file under `root` that a URL path names. `..` anywhere is refused (403) rather than resolved,
/// so a traversal attempt is visible in the test rather than quietly served.
fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, StatusCode> {
    let decoded = percent_decode(url_path).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            ".." => return Err(StatusCode::FORBIDDEN),
            "" | "." => {}
            _ if segment.contains('\0') => return Err(StatusCode::BAD_REQUEST),
            _ => path.push(segment),
        }
    }
    Ok(path)
}

/// How a `Range` header applies to a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAnswer {
    /// No usable range: send everything with 200 (RFC 9110 §14.2 lets a server ignore a range it does
    /// not understand, and multi-range is one of those here).
    Whole,
    /// Send bytes `first..=last` with 206.
    Part { first: u64, last: u64 },
    /// 416: the range starts at or past the end.
    Unsatisfiable,
}

fn parse_range(header: &str, size: u64) -> RangeAnswer {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeAnswer::Whole };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAnswer::Whole };
    if first.is_empty() {
        // `bytes=-n`: the last n bytes.
        let Ok(n) = last.parse::<u64>() else { return RangeAnswer::Whole };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Part { first: size.saturating_sub(n), last: size - 1 };
    }
    let Ok(first) = first.parse::<u64>() else { return RangeAnswer::Whole };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last,
            _ => return RangeAnswer::Whole,
        }
    };
    if first >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part { first, last: last.min(size - 1) }
}

/// `len` bytes of the file from `start`, read in [`CHUNK`]s as the connection asks for them.
async fn file_body(path: &Path, start: u64, len: u64, shared: Arc<Shared>) -> std::io::Result<OriginBody> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(start)).await?;
    let stream = ReaderStream::with_capacity(file.take(len), CHUNK).map_ok(move |chunk| {
        shared.bytes_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Frame::data(chunk)
    });
    Ok(BoxBody::new(StreamBody::new(stream)))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4") => "video/mp4",
        Some("png") => "image/png",
        Some("srt") => "application/x-subrip",
        _ => "application/octet-stream",
    }
}

fn small(status: StatusCode, text: &'static str) -> Response<OriginBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).map_err(never).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn empty() -> OriginBody {
    Empty::new().map_err(never).boxed()
}

fn never(never: Infallible) -> std::io::Error {
    match never {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let part = |first, last| RangeAnswer::Part { first, last };
        assert_eq!(parse_range("bytes=0-9", 100), part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), part(90, 99));
        assert_eq!(parse_range("bytes=90-1000", 100), part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeAnswer::Unsatisfiable);
        assert_eq!(parse_range("bytes=9-3", 100), RangeAnswer::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAnswer::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAnswer::Whole);
        assert_eq!(parse_range("bytes=x-1", 100), RangeAnswer::Whole);
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv");
        assert_eq!(resolve(root, "/a/b.ts"), Ok(PathBuf::from("/srv/a/b.ts")));
        assert_eq!(resolve(root, "/a%20b/./c"), Ok(PathBuf::from("/srv/a b/c")));
        assert_eq!(resolve(root, "/../etc/passwd"), Err(StatusCode::FORBIDDEN));
        assert_eq!(resolve(root, "/a/%2e%2e/%2E%2E/x"), Err(StatusCode::FORBIDDEN));
        assert_eq!(resolve(root, "/a/..%2Fx"), Err(StatusCode::FORBIDDEN));
        assert_eq!(resolve(root, "/%FF"), Err(StatusCode::BAD_REQUEST));
    }
}
