//! Network sources, streamed to OSS without a temporary file. A probe (HEAD, or a one-byte ranged GET
//! where HEAD is refused) learns the size, whether the origin honours `Range`, and its validators.
//! With ranges and a size, parts are fetched by ranged GETs in parallel, each checked against the
//! probe's `ETag` so a file replaced mid-upload is caught; otherwise one GET is read in order.
//!
//! Every request (the probe, each range, the opening of the ordered GET) is retried under the client's
//! [`RetryPolicy`] when the origin is unreachable, throttles or fails; an answer that shows the file is
//! not there, or not for us, is said precisely and not retried.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::TryStreamExt as _;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE};
use reqwest::{Response, Url};
use tokio_util::io::StreamReader;

use super::{Opened, RandomAccess, Reader, SourceIdentity, redact_url};
use crate::error::{Error, ErrorKind, Result, Retry, network_error};
use crate::plain_http;
use crate::retry::{self, RetryPolicy};

const OPERATION: &str = "read source URL";

/// A URL read by ranged GETs.
#[derive(Debug)]
pub struct UrlReader {
    http: reqwest::Client,
    retry: RetryPolicy,
    url: Url,
    etag: Option<String>,
}

struct Probe {
    size: Option<u64>,
    ranges: bool,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn header(response: &Response, name: http::HeaderName) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned)
}

/// What an answer other than the file says, precisely: the origin answered, so "check that the URL is
/// reachable" would mislead.
pub(crate) fn status_error(url: &Url, status: StatusCode) -> Error {
    let shown = redact_url(url);
    let (kind, retry, message, hint) = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => (
            ErrorKind::NotFound,
            Retry::Permanent,
            format!("the file is missing at {shown}: the server answered HTTP {status}"),
            "check the path and name in the URL",
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
            ErrorKind::PermissionDenied,
            Retry::Permanent,
            format!("{shown} refused access (HTTP {status})"),
            "the URL needs credentials or a valid signature; a presigned URL may have expired: get a fresh one",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            ErrorKind::RateLimited,
            Retry::Temporary,
            format!("{shown} asks to slow down (HTTP {status})"),
            "the server of the URL throttles; re-run later, or lower --parallel",
        ),
        s if s.is_server_error() && s != StatusCode::NOT_IMPLEMENTED => (
            ErrorKind::Network,
            Retry::Temporary,
            format!("the server of {shown} failed (HTTP {status})"),
            "the server of the URL has a fault; re-run later",
        ),
        _ => (
            ErrorKind::InvalidInput,
            Retry::Permanent,
            format!("{shown} answered HTTP {status}, not the file"),
            "check that the URL names a file the server serves as is",
        ),
    };
    Error::new(kind, OPERATION, message).with_retry(retry).with_hint(hint)
}

/// The error of a request to `url` that got no answer.
async fn unanswered(http: &reqwest::Client, url: &Url, error: &reqwest::Error) -> Error {
    plain_http::send_failed(http, OPERATION, error, ErrorKind::InvalidInput).await.or_hint(format!(
        "check that {} is up and reachable from this machine",
        url.host_str().unwrap_or("the server")
    ))
}

async fn probe(http: &reqwest::Client, retry: RetryPolicy, url: &Url) -> Result<Probe> {
    retry::run(retry, OPERATION, || probe_once(http, url)).await
}

async fn probe_once(http: &reqwest::Client, url: &Url) -> Result<Probe> {
    let head = match http.head(url.clone()).send().await {
        Ok(head) => head,
        Err(e) => return Err(unanswered(http, url, &e).await),
    };
    if head.status().is_success() {
        let size = header(&head, CONTENT_LENGTH).and_then(|v| v.parse().ok());
        let ranges = header(&head, ACCEPT_RANGES).is_some_and(|v| v.eq_ignore_ascii_case("bytes"));
        return Ok(Probe {
            size,
            ranges,
            etag: header(&head, ETAG),
            last_modified: header(&head, LAST_MODIFIED),
        });
    }
    if head.status() != StatusCode::METHOD_NOT_ALLOWED && head.status() != StatusCode::NOT_IMPLEMENTED {
        return Err(status_error(url, head.status()));
    }
    // Some origins (signed object URLs) refuse HEAD: ask for the first byte instead.
    let get = match http.get(url.clone()).header(RANGE, "bytes=0-0").send().await {
        Ok(get) => get,
        Err(e) => return Err(unanswered(http, url, &e).await),
    };
    match get.status() {
        StatusCode::PARTIAL_CONTENT => {
            let size = header(&get, CONTENT_RANGE).and_then(|v| v.rsplit('/').next()?.parse().ok());
            Ok(Probe {
                size,
                ranges: size.is_some(),
                etag: header(&get, ETAG),
                last_modified: header(&get, LAST_MODIFIED),
            })
        }
        StatusCode::OK => Ok(Probe {
            size: get.content_length(),
            ranges: false,
            etag: header(&get, ETAG),
            last_modified: header(&get, LAST_MODIFIED),
        }),
        status => Err(status_error(url, status)),
    }
}

pub(crate) async fn open(http: &reqwest::Client, retry: RetryPolicy, url: Url) -> Result<Opened> {
    let probe = probe(http, retry, &url).await?;
    let mut name = url.clone();
    name.set_query(None);
    name.set_fragment(None);
    let identity = (probe.etag.is_some() || probe.last_modified.is_some()).then(|| SourceIdentity {
        location: url.to_string(),
        size: probe.size,
        mtime_ns: None,
        etag: probe.etag.clone(),
        last_modified: probe.last_modified.clone(),
    });
    let reader = match probe.size {
        Some(_) if probe.ranges => Reader::Random(Arc::new(UrlReader {
            http: http.clone(),
            retry,
            url: url.clone(),
            etag: probe.etag.clone(),
        })),
        _ => Reader::Sequential(Box::new(sequential(http, retry, &url).await?)),
    };
    Ok(Opened {
        name: Some(name.to_string()),
        size: probe.size,
        identity,
        reader,
        display: redact_url(&url),
        path: None,
    })
}

/// One GET, read in order. Opening it is retried; a failure once bytes flow is not (they cannot be
/// asked for again from where they stopped).
async fn sequential(
    http: &reqwest::Client,
    retry: RetryPolicy,
    url: &Url,
) -> Result<impl tokio::io::AsyncRead + Send + Unpin + use<>> {
    let response = retry::run(retry, OPERATION, || async {
        let response = match http.get(url.clone()).send().await {
            Ok(response) => response,
            Err(e) => return Err(unanswered(http, url, &e).await),
        };
        if !response.status().is_success() {
            return Err(status_error(url, response.status()));
        }
        Ok(response)
    })
    .await?;
    Ok(StreamReader::new(response.bytes_stream().map_err(std::io::Error::other)))
}

impl UrlReader {
    /// One ranged GET of `len` bytes from `offset` into `buf`.
    async fn read_range(&self, offset: u64, len: usize, mut buf: BytesMut) -> Result<BytesMut> {
        let end = offset + len as u64 - 1;
        let response =
            match self.http.get(self.url.clone()).header(RANGE, format!("bytes={offset}-{end}")).send().await
            {
                Ok(response) => response,
                Err(e) => return Err(unanswered(&self.http, &self.url, &e).await),
            };
        if response.status() != StatusCode::PARTIAL_CONTENT {
            return Err(status_error(&self.url, response.status()));
        }
        if let (Some(expected), Some(got)) = (&self.etag, header(&response, ETAG))
            && *expected != got
        {
            return Err(Error::new(
                ErrorKind::SourceChanged,
                OPERATION,
                format!("{} changed while uploading (ETag {expected} became {got})", redact_url(&self.url)),
            )
            .with_hint("re-run once the source is stable"));
        }
        buf.clear();
        buf.reserve(len);
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.try_next().await.map_err(|e| network_error(OPERATION, &e))? {
            if buf.len() + chunk.len() > len {
                return Err(Error::new(ErrorKind::Network, OPERATION, "the origin sent more than asked"));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() != len {
            return Err(Error::new(
                ErrorKind::Network,
                OPERATION,
                format!("range {offset}-{end} ended after {} of {len} bytes", buf.len()),
            ));
        }
        Ok(buf)
    }
}

impl RandomAccess for UrlReader {
    fn read_at(&self, offset: u64, len: usize, buf: BytesMut) -> BoxFuture<'_, Result<BytesMut>> {
        Box::pin(async move {
            // The buffer goes into each attempt and is lost with a failed one; a retry starts a new one.
            let mut buf = Some(buf);
            retry::run(self.retry, OPERATION, || self.read_range(offset, len, buf.take().unwrap_or_default()))
                .await
        })
    }
}
