//! Where an upload's bytes come from. A [`Source`] is what the caller names (a path, a URL, a stream);
//! opening it probes what can be known up front (size, name, identity for resuming) and yields a
//! [`Reader`]: random access by offset (files, URLs that honour `Range`), so parts are read in parallel
//! and never twice, or one sequential stream (stdin, any `AsyncRead`, URLs without ranges), read part
//! by part into reused buffers. Nothing is ever copied to a temporary file.

pub mod file;
pub mod m3u8;
pub mod stream;
pub mod url;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::future::BoxFuture;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// A byte stream of unknown length.
pub type ByteStream = Box<dyn AsyncRead + Send + Unpin>;

/// What to upload.
pub enum Source {
    /// A local file.
    File(PathBuf),
    /// An `http(s)` URL, streamed to OSS.
    Url(Url),
    /// Any byte stream (standard input, a pipe, a socket) with the file name to report.
    Stream {
        /// The bytes.
        reader: ByteStream,
        /// The name it goes by (`FileName`), with an extension; required for videos.
        name: Option<String>,
    },
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::Url(url) => write!(f, "Url({})", redact_url(url)),
            Self::Stream { name, .. } => write!(f, "Stream({name:?})"),
        }
    }
}

impl Source {
    /// Reads a command-line argument: `-` is standard input, `http://`/`https://` a URL, anything else a
    /// path.
    pub fn parse(argument: &str) -> Result<Self> {
        if argument == "-" {
            return Ok(Self::Stream { reader: Box::new(tokio::io::stdin()), name: None });
        }
        let lower = argument.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = Url::parse(argument).map_err(|e| {
                Error::invalid_input(format!("{argument:?} is not a valid URL: {e}"))
                    .with_hint("quote the URL")
            })?;
            return Ok(Self::Url(url));
        }
        if lower.contains("://") {
            return Err(Error::invalid_input(format!("{argument:?}: only http and https URLs can be read"))
                .with_hint("download it first, or give an http(s) URL"));
        }
        Ok(Self::File(PathBuf::from(argument)))
    }

    /// A stream source.
    pub fn stream(reader: impl AsyncRead + Send + Unpin + 'static, name: impl Into<String>) -> Self {
        Self::Stream { reader: Box::new(reader), name: Some(name.into()) }
    }
}

/// A URL without its query (which often carries a signature), for messages and logs.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    let _ = shown.set_password(None);
    shown.to_string()
}

/// What identifies a source's content across runs: a resumed upload continues only if it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// The absolute path or the URL.
    pub location: String,
    /// The size.
    pub size: Option<u64>,
    /// A file's modification time, nanoseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
    /// A URL's `ETag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// A URL's `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// Reads byte ranges of a source by offset; safe to call from several tasks at once.
pub trait RandomAccess: Send + Sync + fmt::Debug {
    /// Fills `buf` with exactly `len` bytes from `offset` and gives it back. `buf` may hold stale bytes
    /// from an earlier part: none of them may survive into the answer.
    fn read_at(&self, offset: u64, len: usize, buf: BytesMut) -> BoxFuture<'_, Result<BytesMut>>;
}

/// How the bytes of an opened source are read.
pub enum Reader {
    /// By offset, in parallel.
    Random(Arc<dyn RandomAccess>),
    /// In order, once.
    Sequential(ByteStream),
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random(r) => write!(f, "Random({r:?})"),
            Self::Sequential(_) => f.write_str("Sequential"),
        }
    }
}

/// An opened source.
#[derive(Debug)]
pub struct Opened {
    /// The name to send as FileName: the path, or the URL without its query.
    pub name: Option<String>,
    /// The size, when known.
    pub size: Option<u64>,
    /// What identifies the content, when it can be re-read on a later run.
    pub identity: Option<SourceIdentity>,
    /// How to read it.
    pub reader: Reader,
    /// Where it is, for messages (`video.mp4`, `https://host/path`, `standard input`).
    pub display: String,
    /// The local path, for error context.
    pub path: Option<PathBuf>,
}

/// Opens `source`: checks that it exists and is readable and learns its size, name and identity. A URL
/// is read with `retry` (for its probe and every range).
pub async fn open(http: &reqwest::Client, retry: RetryPolicy, source: Source) -> Result<Opened> {
    match source {
        Source::File(path) => file::open(path).await,
        Source::Url(url) => url::open(http, retry, url).await,
        Source::Stream { reader, name } => Ok(stream::open(reader, name)),
    }
}
