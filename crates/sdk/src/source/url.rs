//! Network sources, streamed to OSS without a temporary file. A probe (HEAD, or a one-byte ranged GET
//! where HEAD is refused) learns the size, whether the origin honours `Range`, and its validators.
//! With ranges and a size, parts are fetched by ranged GETs in parallel, each checked against the
//! probe's `ETag` so a file replaced mid-upload is caught; otherwise one GET is read in order.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::TryStreamExt as _;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE};
use reqwest::{Response, Url};
use tokio_util::io::StreamReader;

use super::{Opened, RandomAccess, Reader, SourceIdentity, redact_url};
use crate::error::{Error, ErrorKind, Result, network_error};

/// A URL read by ranged GETs.
#[derive(Debug)]
pub struct UrlReader {
    http: reqwest::Client,
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

fn status_error(url: &Url, status: StatusCode) -> Error {
    let kind = match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => ErrorKind::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::PermissionDenied,
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => ErrorKind::Network,
        _ => ErrorKind::InvalidInput,
    };
    Error::new(kind, "read source URL", format!("{} answered HTTP {status}", redact_url(url)))
        .with_hint("check that the URL is reachable from this machine")
}

async fn probe(http: &reqwest::Client, url: &Url) -> Result<Probe> {
    let head = http.head(url.clone()).send().await.map_err(|e| network_error("read source URL", &e))?;
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
    let get = http
        .get(url.clone())
        .header(RANGE, "bytes=0-0")
        .send()
        .await
        .map_err(|e| network_error("read source URL", &e))?;
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

pub(crate) async fn open(http: &reqwest::Client, url: Url) -> Result<Opened> {
    let probe = probe(http, &url).await?;
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
            url: url.clone(),
            etag: probe.etag.clone(),
        })),
        _ => Reader::Sequential(Box::new(sequential(http, &url).await?)),
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

/// One GET, read in order.
async fn sequential(
    http: &reqwest::Client,
    url: &Url,
) -> Result<impl tokio::io::AsyncRead + Send + Unpin + use<>> {
    let response = http.get(url.clone()).send().await.map_err(|e| network_error("read source URL", &e))?;
    if !response.status().is_success() {
        return Err(status_error(url, response.status()));
    }
    Ok(StreamReader::new(response.bytes_stream().map_err(std::io::Error::other)))
}

impl RandomAccess for UrlReader {
    fn read_at(&self, offset: u64, len: usize, mut buf: BytesMut) -> BoxFuture<'_, Result<BytesMut>> {
        Box::pin(async move {
            let end = offset + len as u64 - 1;
            let response = self
                .http
                .get(self.url.clone())
                .header(RANGE, format!("bytes={offset}-{end}"))
                .send()
                .await
                .map_err(|e| network_error("read source URL", &e))?;
            if response.status() != StatusCode::PARTIAL_CONTENT {
                return Err(status_error(&self.url, response.status()));
            }
            if let (Some(expected), Some(got)) = (&self.etag, header(&response, ETAG))
                && *expected != got
            {
                return Err(Error::new(
                    ErrorKind::SourceChanged,
                    "read source URL",
                    format!(
                        "{} changed while uploading (ETag {expected} became {got})",
                        redact_url(&self.url)
                    ),
                )
                .with_hint("re-run once the source is stable"));
            }
            buf.clear();
            buf.reserve(len);
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.try_next().await.map_err(|e| network_error("read source URL", &e))? {
                if buf.len() + chunk.len() > len {
                    return Err(Error::new(
                        ErrorKind::Network,
                        "read source URL",
                        "the origin sent more than asked",
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            if buf.len() != len {
                return Err(Error::new(
                    ErrorKind::Network,
                    "read source URL",
                    format!("range {offset}-{end} ended after {} of {len} bytes", buf.len()),
                ));
            }
            Ok(buf)
        })
    }
}
