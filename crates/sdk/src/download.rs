//! Getting a media item's source back, verified: the service says where the source is
//! ([`StoredSource`](crate::vod::StoredSource): GetMezzanineInfo, GetImageInfo or GetAttachedMediaInfo),
//! one GET streams it, and the CRC-64/ECMA of the bytes as they pass is checked against the
//! `x-oss-hash-crc64ecma` OSS sent with them, the length against `Content-Length` and the size the
//! service reported. Memory stays at one network chunk and a write buffer, whatever the size.
//!
//! [`Client::download_to_file`] writes to a temporary file beside the target and renames it over the
//! target only once the bytes are verified and on disk, so the target is either as it was or whole; every
//! failure, cancellation included, removes the temporary file. [`Client::download`] streams into any
//! writer, which sees every byte before the verdict (the caller decides what a failure means for them).
//!
//! An object with no CRC-64 header cannot be verified. Such a download is refused unless
//! [`DownloadOptions::require_crc64`] is off; a CRC-64 that is given is always checked.
//!
//! Not here: resuming a broken transfer with a Range request (a failed download starts again), and
//! transcoded streams (only the source).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use http::header::{CONTENT_LENGTH, ETAG};
use tokio::io::{AsyncWrite, AsyncWriteExt as _, BufWriter};
use tokio_util::sync::CancellationToken;
use vodup_proto::crc64::{self, Crc64};
use vodup_proto::oss::header::X_OSS_HASH_CRC64ECMA;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result, Retry, network_error};
use crate::vod::{MediaKind, StoredSource};

/// The operation name errors of the object GET carry.
const GET: &str = "download source";

/// Writes to the file are gathered into blocks this large: network chunks are a few KiB, and each write
/// to a tokio file is a hop to the blocking pool.
const WRITE_BUFFER: usize = 1 << 20;

/// How to download.
#[derive(Clone)]
pub struct DownloadOptions {
    /// Refuse an object whose GET carries no `x-oss-hash-crc64ecma` (default `true`): without it nothing
    /// proves the bytes are the ones uploaded. Off (`vodup download --no-verify`), such an object is
    /// downloaded with only its length checked. A CRC-64 that is given is checked either way.
    pub require_crc64: bool,
    /// Cancels the download; [`Client::download_to_file`] then leaves the target as it was.
    pub cancel: CancellationToken,
    /// Called as the download goes.
    pub progress: Option<Arc<dyn Fn(DownloadEvent) + Send + Sync>>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        Self { require_crc64: true, cancel: CancellationToken::new(), progress: None }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("require_crc64", &self.require_crc64)
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

/// What a download reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadEvent {
    /// The object answered; its length, when it gave one.
    Started {
        /// `Content-Length`.
        size: Option<u64>,
    },
    /// More bytes were received and written.
    Received {
        /// Bytes in this step.
        bytes: u64,
    },
}

/// A finished, verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The media type.
    pub kind: MediaKind,
    /// `VideoId`, `ImageId` or `MediaId`.
    pub media_id: String,
    /// The RequestId of the call that located the source (GetMezzanineInfo…).
    pub request_id: String,
    /// Bytes received.
    pub size: u64,
    /// The CRC-64/ECMA of the bytes received.
    pub crc64: u64,
    /// Whether the CRC-64 was checked against the one OSS reported (`false` only when it reported none
    /// and [`DownloadOptions::require_crc64`] was off).
    pub crc64_verified: bool,
    /// Where the bytes went, for [`Client::download_to_file`].
    pub path: Option<PathBuf>,
}

impl Client {
    /// Streams the source of `media_id` into `writer`, verifying it as it passes. The writer has seen
    /// every byte when a mismatch is found: use [`download_to_file`](Self::download_to_file) to keep a
    /// file untouched by a failed download.
    pub async fn download<W>(
        &self,
        kind: MediaKind,
        media_id: &str,
        writer: &mut W,
        options: &DownloadOptions,
    ) -> Result<Downloaded>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        let source = self.locate(kind, media_id).await?;
        let url = source.url.clone().unwrap_or_default();
        let response = self.get_object(&url, options).await?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let length: Option<u64> = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
        let expected_crc = header(X_OSS_HASH_CRC64ECMA).and_then(|v| crc64::parse_header(&v));
        let etag = header(ETAG.as_str());
        let context = |error: Error| error.with_request_id(source.request_id.clone());
        if let (Some(length), Some(size)) = (length, source.size)
            && length != size
        {
            return Err(context(Error::new(
                ErrorKind::Service,
                GET,
                format!(
                    "the service says {} {media_id} has {size} bytes, but its object has {length}",
                    kind.as_str()
                ),
            ))
            .with_hint("the source may have been replaced just now; re-run"));
        }
        if expected_crc.is_none() && options.require_crc64 {
            return Err(context(Error::new(
                ErrorKind::Service,
                GET,
                format!("the object of {} {media_id} came without x-oss-hash-crc64ecma", kind.as_str()),
            ))
            .with_hint(
                "nothing was written: without the CRC-64 the download cannot be verified; re-run with \
                 --no-verify to accept it with only its length checked",
            ));
        }
        if let Some(progress) = &options.progress {
            progress(DownloadEvent::Started { size: length });
        }

        let mut crc = Crc64::new();
        let mut body = response.bytes_stream();
        loop {
            let chunk = tokio::select! {
                biased;
                () = options.cancel.cancelled() => {
                    return Err(Error::new(ErrorKind::Cancelled, GET, "cancelled"));
                }
                chunk = body.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk.map_err(|e| {
                network_error(GET, &e)
                    .with_retry(Retry::Permanent)
                    .with_hint("the transfer broke off; re-run to download again")
            })?;
            crc.update(&chunk);
            writer.write_all(&chunk).await.map_err(|e| write_error(&e))?;
            if let Some(progress) = &options.progress {
                progress(DownloadEvent::Received { bytes: chunk.len() as u64 });
            }
        }
        writer.flush().await.map_err(|e| write_error(&e))?;

        let received = crc.len();
        let damaged = |message: String| {
            context(Error::new(ErrorKind::ChecksumMismatch, GET, message))
                .with_hint("re-run; if it fails again the stored copy is damaged: upload the source again")
        };
        if let Some(expected) = length.or(source.size)
            && received != expected
        {
            return Err(damaged(format!("received {received} bytes of {expected}")));
        }
        if let Some(expected) = expected_crc
            && crc.value() != expected
        {
            let etag = etag.map(|e| format!(" (ETag {e})")).unwrap_or_default();
            return Err(damaged(format!(
                "the bytes received have CRC-64 {} but OSS reports {expected} for the object{etag}: they \
                 were damaged in storage or on the way",
                crc.value()
            )));
        }
        Ok(Downloaded {
            kind,
            media_id: media_id.to_owned(),
            request_id: source.request_id,
            size: received,
            crc64: crc.value(),
            crc64_verified: expected_crc.is_some(),
            path: None,
        })
    }

    /// Downloads the source of `media_id` to `path`: into a temporary file in the same folder, fsynced,
    /// then renamed over `path` once verified. On any failure `path` is as it was (absent, or the old
    /// file) and the temporary file is gone.
    pub async fn download_to_file(
        &self,
        kind: MediaKind,
        media_id: &str,
        path: &Path,
        options: &DownloadOptions,
    ) -> Result<Downloaded> {
        let io = |doing: &'static str, e: &std::io::Error| {
            Error::new(ErrorKind::Io, doing, e.to_string()).with_path(path)
        };
        if path.is_dir() {
            return Err(Error::invalid_input(format!("{} is a folder", path.display()))
                .with_hint("give the file to write, e.g. -o folder/video.mp4"));
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(Error::invalid_input(format!("there is no folder {}", folder.display()))
                .with_path(path)
                .with_hint("create the folder first, or write somewhere else"));
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Created before any request, so an unwritable folder fails at once; removed when dropped.
        let temp = temporary_file(folder, &name).map_err(|e| {
            io("create download file", &e).with_hint("check that the folder exists and is writable")
        })?;
        let file = temp.as_file().try_clone().map_err(|e| io("create download file", &e))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
        let mut downloaded = self.download(kind, media_id, &mut writer, options).await?;
        writer.into_inner().sync_all().await.map_err(|e| io("write download file", &e))?;
        temp.persist(path).map_err(|e| io("rename download file", &e.error))?;
        // The rename is durable once the folder is: a crash now leaves the new file, not a missing one.
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
        downloaded.path = Some(path.to_owned());
        Ok(downloaded)
    }

    /// Where the source is, and whether it is complete.
    async fn locate(&self, kind: MediaKind, media_id: &str) -> Result<StoredSource> {
        let id_field = kind.id_field();
        let source = self.vod().stored_source(kind, media_id).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                e.with_hint(format!(
                    "no {} with {id_field} {media_id} at {}: check the id (vodup upload prints it) and that \
                     the endpoint or region is where it was uploaded",
                    kind.as_str(),
                    self.vod().endpoint()
                ))
            } else {
                e
            }
        })?;
        if !source.is_uploaded() {
            let status = if source.status.is_empty() { "unknown" } else { source.status.as_str() };
            let hint = match status {
                "Uploading" => {
                    "wait until its upload finishes (re-running the same vodup upload command resumes it), \
                     then re-run"
                }
                "UploadFail" => "its upload failed; upload the file again",
                _ => "only a source in status Normal can be downloaded",
            };
            return Err(Error::new(
                ErrorKind::Service,
                source_operation(kind),
                format!("the source of {} {media_id} is {status}, not Normal", kind.as_str()),
            )
            .with_request_id(source.request_id)
            .with_hint(hint));
        }
        if source.url.is_none() {
            return Err(Error::new(
                ErrorKind::Service,
                source_operation(kind),
                format!("the answer for {} {media_id} gives no URL of its source", kind.as_str()),
            )
            .with_request_id(source.request_id)
            .with_hint("the endpoint does not speak the VOD API as expected; check --endpoint/--region"));
        }
        Ok(source)
    }

    /// The GET of the source's URL, retried while nothing of the body was read and the failure is
    /// temporary (the connection, a 5xx).
    async fn get_object(&self, url: &str, options: &DownloadOptions) -> Result<reqwest::Response> {
        let mut backoff = crate::retry::Backoff::new(self.inner.retry);
        loop {
            let error = match self.http().get(url).send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => status_error(&response),
                Err(e) => network_error(GET, &e).with_hint("check the network, then re-run"),
            };
            if !error.is_retryable() {
                return Err(error);
            }
            let Some(delay) = backoff.next_delay() else { return Err(backoff.give_up(error)) };
            tokio::select! {
                () = options.cancel.cancelled() => return Err(Error::new(ErrorKind::Cancelled, GET, "cancelled")),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

fn source_operation(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "GetMezzanineInfo",
        MediaKind::Image => "GetImageInfo",
        MediaKind::Attached => "GetAttachedMediaInfo",
    }
}

/// A refusal of the object URL. Its body (OSS XML) is not read: the status says enough to act on, and
/// the URL it came from carries a signature that has no place in a message.
fn status_error(response: &reqwest::Response) -> Error {
    let status = response.status();
    let request_id =
        response.headers().get("x-oss-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (kind, hint) = match status.as_u16() {
        404 => (ErrorKind::NotFound, "the service lists the source but its object is missing"),
        401 | 403 => (ErrorKind::PermissionDenied, "the object URL was refused; re-run for a fresh one"),
        429 => (ErrorKind::RateLimited, "re-run later"),
        _ => (ErrorKind::Service, "re-run later"),
    };
    let retry =
        if status.is_server_error() || status.as_u16() == 429 { Retry::Temporary } else { Retry::Permanent };
    Error::new(kind, GET, format!("the object URL answered HTTP {status}"))
        .with_retry(retry)
        .with_request_id(request_id)
        .with_hint(hint)
}

fn write_error(error: &std::io::Error) -> Error {
    Error::new(ErrorKind::Io, "write download", error.to_string())
}

/// A new file in `folder`, hidden and named after the target so a leftover is recognisable, created with
/// the mode a plain new file gets (0666 less the umask; tempfile's own default is 0600).
fn temporary_file(folder: &Path, name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".vodup-part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_sits_beside_the_target_and_goes_away_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temporary_file(dir.path(), "movie.mp4").unwrap();
        let path = temp.path().to_owned();
        assert_eq!(path.parent(), Some(dir.path()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".movie.mp4.") && name.ends_with(".vodup-part"), "{name}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // The mode a plain new file gets under this umask, not tempfile's owner-only 0600.
            let plain = dir.path().join("plain");
            std::fs::File::create(&plain).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&plain));
        }
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn refusals_of_the_object_url_map_to_kinds_and_retries() {
        let answer = |status: u16| {
            let response = http::Response::builder().status(status).body(Vec::<u8>::new()).unwrap();
            status_error(&reqwest::Response::from(response))
        };
        assert_eq!(answer(404).kind(), ErrorKind::NotFound);
        assert_eq!(answer(403).kind(), ErrorKind::PermissionDenied);
        assert!(!answer(403).is_retryable());
        assert!(answer(503).is_retryable());
        assert!(answer(429).is_retryable());
        assert!(!answer(400).is_retryable());
    }
}
