//! Progress as structured events: the default bar, the CLI's JSON lines and callers' own callbacks all
//! read the same [`Event`]s. A [`Progress`] is a trait or any `Fn(&Event)`.

use std::sync::Arc;

use serde::Serialize;

use crate::retry::{self, RetryNotice};
use crate::vod::MediaKind;

/// Something that happened during an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// CreateUpload* answered: the media exists (status `Uploading`). Sent before anything else touches
    /// it, so a caller that must never lose track of a media item can record its id first.
    Created {
        /// The media type.
        kind: MediaKind,
        /// `VideoId`, `ImageId` or `MediaId`.
        media_id: String,
    },
    /// The media exists and bytes are about to flow.
    Started {
        /// The media type.
        kind: MediaKind,
        /// `VideoId`, `ImageId` or `MediaId`.
        media_id: String,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// The source's size, when known.
        size: Option<u64>,
        /// Whether this is a multipart upload.
        multipart: bool,
        /// The (first) part size.
        part_size: u64,
        /// Parts in all, when the size is known.
        parts: Option<u32>,
        /// Parts in flight at most.
        parallel: usize,
        /// Parts found done by a previous run.
        resumed_parts: u32,
        /// Their bytes.
        resumed_bytes: u64,
    },
    /// Bytes went onto the wire (also counted again when a part is resent).
    BytesSent {
        /// How many.
        bytes: u64,
    },
    /// A part was acknowledged and its CRC-64 matched.
    PartSent {
        /// The part number.
        part_number: u32,
        /// Its size.
        size: u64,
        /// Its CRC-64, decimal as OSS writes it.
        crc64: String,
    },
    /// A playlist segment was uploaded.
    SegmentSent {
        /// Its object name under the playlist's prefix.
        name: String,
        /// Its size.
        size: u64,
    },
    /// Temporary credentials were replaced before they expired or after they did.
    CredentialsRefreshed {
        /// When the new ones expire (`YYYY-MM-DDThh:mm:ssZ`), when known.
        expires_at: Option<String>,
    },
    /// A request failed and will be sent again (a VOD call, an OSS request or a read of a URL source).
    Retried {
        /// The operation.
        operation: String,
        /// The part, for part uploads.
        part_number: Option<u32>,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The error's kind (`network`, `service`, `rate_limited`, `checksum_mismatch`…).
        kind: String,
        /// Why, in full (the error as displayed, addresses included).
        reason: String,
        /// Why, in a few words without addresses (`connection refused`, `ServiceUnavailable`).
        cause: String,
        /// The wait before the next attempt.
        delay_ms: u64,
        /// How much longer the request is retried at most before the upload fails.
        budget_left_ms: u64,
        /// Bytes of the failed attempt that went out for nothing.
        wasted_bytes: u64,
    },
    /// Something worth telling that is not an error (a changed source, a raised part size).
    Notice {
        /// The message.
        message: String,
    },
    /// The upload is complete and verified.
    Completed {
        /// The media id.
        media_id: String,
        /// Bytes uploaded in all (for an M3U8, the playlist and its segments), as in the result.
        size: u64,
        /// The media object's CRC-64 (an M3U8's playlist), decimal.
        crc64: String,
    },
    /// The upload failed; the checkpoint, if any, is kept.
    Failed {
        /// The error's kind.
        kind: String,
        /// The error, as displayed.
        error: String,
    },
}

impl Event {
    /// The [`Event::Retried`] of a retry.
    pub(crate) fn retried(notice: &RetryNotice) -> Self {
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self::Retried {
            operation: notice.operation.to_owned(),
            part_number: notice.part_number,
            attempt: notice.attempt,
            kind: notice.error.kind().as_str().to_owned(),
            reason: notice.error.to_string(),
            cause: notice.error.cause().to_owned(),
            delay_ms: millis(notice.delay),
            budget_left_ms: millis(notice.budget_left),
            wasted_bytes: notice.wasted_bytes,
        }
    }
}

/// Receives [`Event`]s. Called from the upload's tasks: keep it quick.
pub trait Progress: Send + Sync {
    /// One event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> Progress for F {
    fn on_event(&self, event: &Event) {
        self(event);
    }
}

/// An optional [`Progress`], cheap to clone into tasks.
#[derive(Clone, Default)]
pub(crate) struct Reporter(Option<Arc<dyn Progress>>);

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Reporter(set)" } else { "Reporter(none)" })
    }
}

impl Reporter {
    pub(crate) fn new(progress: Option<Arc<dyn Progress>>) -> Self {
        Self(progress)
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(progress) = &self.0 {
            progress.on_event(&event);
        }
    }

    pub(crate) fn notice(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!("{message}");
        self.emit(Event::Notice { message });
    }

    /// Runs `future` (an upload) with every retry inside it reported as an [`Event::Retried`], also
    /// those of calls that know nothing of this upload (VOD calls, URL sources).
    pub(crate) async fn reporting_retries<F: std::future::Future>(&self, future: F) -> F::Output {
        let reporter = self.clone();
        retry::listen(Arc::new(move |notice: &RetryNotice| reporter.emit(Event::retried(notice))), future)
            .await
    }

    /// A callback counting bytes onto the wire, or none when nobody listens.
    pub(crate) fn bytes_callback(&self) -> Option<crate::oss::body::SentCallback> {
        let progress = self.0.clone()?;
        Some(Arc::new(move |bytes| progress.on_event(&Event::BytesSent { bytes })))
    }
}
