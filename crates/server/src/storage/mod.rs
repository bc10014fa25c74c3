//! Blob storage behind one small trait: the bytes of objects and of multipart parts, and nothing else
//! (who may write what, and which media an object belongs to, live in `meta`).
//!
//! The design serves both backends the service will have. An object is the ordered list of the blobs it
//! was uploaded as (one for PutObject, one per part for multipart), published in one atomic step, so
//! CompleteMultipartUpload costs the same whatever the object size and never re-reads a byte. That also
//! fits an S3-compatible backend later, whose native multipart needs 5 MiB parts where OSS allows 100 KiB:
//! it can keep each OSS part as its own S3 object and the list as another.
//!
//! Bytes are hashed once, as they pass: every write returns the MD5, CRC-64 and length it computed
//! ([`Digests`]), and the caller's expectations (`Content-MD5`, size limits) are checked *before* anything
//! becomes visible. An object is either absent or whole.

pub mod conformance;
pub mod digests;
pub mod local;

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;

pub use digests::Digests;
pub use local::{LocalStore, Recovery};

/// A stream of body bytes. Errors are I/O errors of the source (a client that went away).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// What a write must satisfy before it is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteLimits {
    /// The most bytes accepted; one more byte fails the write with [`StorageError::TooLarge`].
    pub max_size: u64,
    /// The MD5 the body must have (from `Content-MD5`); a mismatch fails with
    /// [`StorageError::DigestMismatch`] and nothing is kept.
    pub expected_md5: Option<[u8; 16]>,
    /// The length the body must have (from `Content-Length`); a shorter body fails with
    /// [`StorageError::Incomplete`], a longer one with [`StorageError::TooLarge`] naming this length.
    pub expected_len: Option<u64>,
}

/// A stored part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// 1..=10000.
    pub part_number: u32,
    /// MD5, CRC-64 and length of the part's bytes.
    pub digests: Digests,
    /// When the part was stored.
    pub last_modified: SystemTime,
}

/// `Normal` for PutObject, `Multipart` for CompleteMultipartUpload (the `x-oss-object-type` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// Written by one PutObject.
    Normal,
    /// Assembled by CompleteMultipartUpload.
    Multipart,
}

impl ObjectType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Multipart => "Multipart",
        }
    }
}

/// Attributes stored with an object and returned by HEAD/GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `Content-Type` given at PutObject or InitiateMultipartUpload.
    pub content_type: Option<String>,
    /// `x-oss-meta-*` headers, names lower-case without the prefix, in name order.
    pub user_meta: Vec<(String, String)>,
}

/// A published object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object key.
    pub key: String,
    /// Total size in bytes.
    pub size: u64,
    /// The quoted ETag: MD5 of the body for `Normal`, `"<md5 of part md5s>-<n>"` for `Multipart`.
    pub etag: String,
    /// CRC-64/XZ of the whole object (parts combined, never re-read).
    pub crc64: u64,
    /// The MD5 of the whole body, known only for `Normal` objects (`Content-MD5` on HEAD).
    pub content_md5: Option<[u8; 16]>,
    /// Normal or Multipart.
    pub object_type: ObjectType,
    /// When it was published.
    pub last_modified: SystemTime,
    /// Content type and user metadata.
    pub meta: ObjectMeta,
    /// The multipart upload the object was assembled from (`Multipart` objects only): how a retried
    /// CompleteMultipartUpload, or recovery after a crash, recognises an upload that was already published.
    pub upload_id: Option<String>,
}

/// Why a storage operation failed. Callers branch on the predicates, never on backend details.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object, upload or part does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The body exceeded [`WriteLimits::max_size`].
    #[error("body larger than {max_size} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        max_size: u64,
    },
    /// The body's MD5 differs from [`WriteLimits::expected_md5`].
    #[error("body MD5 does not match Content-MD5")]
    DigestMismatch,
    /// The body ended before [`WriteLimits::expected_len`] bytes.
    #[error("body ended after {received} of {expected} bytes")]
    Incomplete {
        /// Bytes received.
        received: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The client's body stream failed (disconnect, read timeout).
    #[error("reading the request body failed: {0}")]
    Body(#[source] io::Error),
    /// The requested range does not fit the object.
    #[error("range {start}..{end} outside an object of {size} bytes")]
    InvalidRange {
        /// Start of the requested range.
        start: u64,
        /// End (exclusive) of the requested range.
        end: u64,
        /// Object size.
        size: u64,
    },
    /// The backend has no room left (a full disk, a quota): nothing was stored. Distinct from
    /// [`StorageError::Backend`] because clients are told to stop retrying and operators to add space.
    #[error("storage is full while {context}: {source}")]
    Full {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The backend itself failed (disk, network to the object store).
    #[error("storage backend failed while {context}: {source}")]
    Backend {
        /// What the backend was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// The object, upload or part does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The storage has no room left.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full { .. })
    }

    /// A backend failure; a full disk or an exceeded quota becomes [`StorageError::Full`].
    pub(crate) fn backend(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        if is_out_of_space(&source) {
            Self::Full { context, source }
        } else {
            Self::Backend { context, source }
        }
    }
}

/// ENOSPC or EDQUOT, however deep the error wraps it.
pub(crate) fn is_out_of_space(error: &io::Error) -> bool {
    use std::error::Error as _;
    if matches!(error.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) {
        return true;
    }
    error.get_ref().and_then(|inner| inner.downcast_ref::<io::Error>()).is_some_and(is_out_of_space)
        || error.source().and_then(|s| s.downcast_ref::<io::Error>()).is_some_and(is_out_of_space)
}

/// The blob store. Keys are opaque UTF-8 strings already validated by the caller (no `..` segment, no
/// leading `/`); a backend must still never derive a filesystem path from a key.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Streams `body` into the object `key`, replacing any object there only once the body is whole and
    /// satisfies `limits`. Returns what was published.
    async fn put_object(
        &self,
        key: &str,
        body: ByteStream,
        limits: &WriteLimits,
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, StorageError>;

    /// Opens a multipart upload's staging area. `upload_id` is chosen by the caller (unique, 1 to 64 of
    /// `[0-9A-F]`); a backend may refuse an id that is already open or was completed. Elsewhere an id
    /// that is not open, or not of that form, is [`StorageError::NotFound`].
    async fn create_upload(&self, upload_id: &str) -> Result<(), StorageError>;

    /// Streams one part. Re-uploading a part number replaces the earlier part atomically.
    /// [`StorageError::NotFound`] if the upload is not open (never created, completed or aborted).
    async fn put_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        limits: &WriteLimits,
    ) -> Result<PartInfo, StorageError>;

    /// The stored parts of an open upload, ascending by part number.
    async fn list_parts(&self, upload_id: &str) -> Result<Vec<PartInfo>, StorageError>;

    /// Publishes the object `key` as the given parts, in this order, atomically; parts of the upload not
    /// listed are discarded and the upload is closed. The caller has already checked the parts against
    /// [`Self::list_parts`] (ETags, order, sizes). Cost is independent of the object's size.
    async fn complete_upload(
        &self,
        upload_id: &str,
        key: &str,
        part_numbers: &[u32],
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, StorageError>;

    /// Closes an upload and removes its parts. [`StorageError::NotFound`] if it is not open.
    async fn abort_upload(&self, upload_id: &str) -> Result<(), StorageError>;

    /// The object's attributes.
    async fn head_object(&self, key: &str) -> Result<ObjectInfo, StorageError>;

    /// The object's attributes and its bytes, or the bytes of `range` (end exclusive) of it. The stream
    /// reads across the object's parts with bounded memory, and a read in progress is not affected by a
    /// concurrent overwrite or delete of the object.
    ///
    /// `None` is the whole object (empty for an empty object). `Some(r)` needs `r.start < r.end <= size`,
    /// else [`StorageError::InvalidRange`]; so an empty object has no valid range. Turning a `Range`
    /// header into this (suffix ranges, clamping an end past the size) is the caller's job.
    async fn get_object(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError>;

    /// Removes the object; removing a missing object succeeds (OSS DeleteObject is idempotent).
    async fn delete_object(&self, key: &str) -> Result<(), StorageError>;

    /// The ids of every open upload, ascending: what startup reconciliation compares with the catalogue.
    async fn open_uploads(&self) -> Result<Vec<String>, StorageError>;

    /// Checks the backend is usable (writable folder, reachable store); run at startup and by `/readyz`.
    async fn health_check(&self) -> Result<(), StorageError>;

    /// Bytes the backend can still take, where it knows (a local file system); `None` for stores
    /// without a meaningful figure (object stores).
    async fn available_bytes(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}
