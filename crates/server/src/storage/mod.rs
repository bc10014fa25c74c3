//! Blob storage behind one small trait: the bytes of objects and of multipart parts, and nothing else
//! (who may write what, and which media an object belongs to, live in `meta`).
//!
//! The store holds immutable blobs under ids it chooses; it never decides what a key names. An object
//! is, in the catalogue, the ordered list of the blobs it was uploaded as (one for PutObject, one per
//! part for multipart), so CompleteMultipartUpload copies no byte and costs the same whatever the
//! object's size. That fits an S3-compatible backend too (each OSS part is its own S3 object: no 5 MiB
//! rule), and it makes every commit a catalogue transaction (`crate::meta`): a writer that loses or is
//! refused leaves only an unreferenced blob, which the collector (`crate::collector`) reclaims.
//!
//! Bytes are hashed once, as they pass: every write returns the MD5, CRC-64 and length it computed
//! ([`Digests`]), and the caller's expectations (`Content-MD5`, size limits) are checked before the
//! write succeeds.

pub mod checked;
pub mod conformance;
pub mod digests;
pub mod hashing;
pub mod local;
pub mod location;
pub mod pieces;
pub mod s3;

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;

pub use digests::Digests;
pub use local::LocalStore;
pub use location::StorageLocation;
pub use s3::{S3Settings, S3Store};

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

/// A blob the store has written: its id (chosen by the store, never by a client) and what the bytes hash
/// to. Nothing refers to it until the catalogue commits a version or part that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob's id: 32 lower-case hex digits.
    pub id: String,
    /// MD5, CRC-64 and length of its bytes.
    pub digests: Digests,
}

/// A blob found by [`BlobStore::list`], for the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBlob {
    /// The blob's id.
    pub id: String,
    /// When its bytes were last written (whole): the collector's grace period counts from here.
    pub written_at: SystemTime,
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
    /// Another process holds the store's lock: two writers on one folder would remove each other's
    /// half-written blobs.
    #[error("the store at {root} is in use by another process")]
    InUse {
        /// The store's folder.
        root: String,
    },
    /// The backend cannot serve for now (an object store that does not answer, or answers 5xx, like a
    /// Garage cluster without quorum): nothing was stored, and the same request may succeed later, so
    /// clients are told to retry (503 `ServiceUnavailable`).
    #[error("storage is unavailable while {context}: {source}")]
    Unavailable {
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

    /// The backend cannot serve for now; the same request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
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

/// The blob store: immutable byte sequences under ids the store chooses. It knows nothing of keys,
/// uploads or versions: which blobs make up what a key names is the catalogue's business, and a blob
/// no committed version or open part references is removed by the collector, never by a writer.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Streams `body` into a new blob, hashing it once as it passes, and keeps it only if it is whole and
    /// satisfies `limits`; a failed write leaves nothing that [`Self::list`] shows (a crash may leave
    /// bytes the store removes on its own). When this returns, the blob is durable.
    async fn write(&self, body: ByteStream, limits: &WriteLimits) -> Result<StoredBlob, StorageError>;

    /// The bytes `range` (end exclusive, non-empty, inside the blob's length as the catalogue records it)
    /// of a blob, streamed with bounded memory. [`StorageError::NotFound`] if there is no such blob.
    async fn read(&self, id: &str, range: Range<u64>) -> Result<ByteStream, StorageError>;

    /// Removes a blob; removing a missing one succeeds.
    async fn delete(&self, id: &str) -> Result<(), StorageError>;

    /// Up to `limit` blobs with ids greater than `after`, ascending by id: the collector's walk over
    /// everything stored, to find blobs that a crash or a losing writer left unreferenced.
    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<ListedBlob>, StorageError>;

    /// Checks the backend is usable (writable folder, reachable store); run at startup and by `/readyz`.
    async fn health_check(&self) -> Result<(), StorageError>;

    /// Bytes the backend can still take, where it knows (a local file system); `None` for stores
    /// without a meaningful figure (object stores).
    async fn available_bytes(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }
}

/// Whether `id` has the form of a blob id (32 lower-case hex digits): a backend checks this before an
/// id reaches a path or an object name.
pub fn is_blob_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random blob id.
pub fn new_blob_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
