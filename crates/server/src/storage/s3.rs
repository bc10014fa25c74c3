//! Blobs in any S3-compatible bucket (Garage, SeaweedFS, Ceph, MinIO, AWS, OSS), through `object_store`.
//!
//! Each blob is one S3 object, `PREFIX/blobs/ab/<id>` (`ab` its id's first two digits, as on disk, so a
//! listing by key is a listing by id). Bytes stream through the node: a body that fits in one chunk goes
//! in one PUT, a longer one in a multipart upload of chunks, at most [`CHUNKS_IN_FLIGHT`] being sent
//! while the next one fills, so a write holds a few chunks of memory whatever its size and nothing is
//! staged on the node's disk. The digests and the limits are checked as the bytes pass
//! ([`CheckedBody`]); a body that fails them is never completed (its multipart upload is aborted, a small
//! one never PUT), so no object ever holds a refused body.
//!
//! A PUT or a CompleteMultipartUpload that S3 acknowledged is durable by S3's own promise, and an S3
//! object appears whole or not at all, which is what `BlobStore::write` requires. A node that dies
//! mid-write leaves an incomplete multipart upload, which no listing shows (so nothing references it);
//! the bucket's lifecycle rule `AbortIncompleteMultipartUpload` reclaims its parts (see the README).

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig,
    WriteMultipart,
};
use vodup_proto::Secret;

use super::checked::CheckedBody;
use super::{
    BlobStore, ByteStream, ListedBlob, StorageError, StoredBlob, WriteLimits, is_blob_id, new_blob_id,
};

/// Bytes per PUT, and per part of a multipart upload: S3's smallest part size, so a write holds little.
pub const CHUNK: usize = 5 << 20;

/// Chunks of one write being sent at once while the next one fills.
pub const CHUNKS_IN_FLIGHT: usize = 2;

/// Where the bucket is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside it (no leading or trailing `/`), or empty.
    pub prefix: String,
    /// The endpoint URL (`http://127.0.0.1:3900`); None for AWS itself.
    pub endpoint: Option<String>,
    /// The region (`garage`, `us-east-1`, …).
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), which most self-hosted stores need.
    pub path_style: bool,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key: only for signing, never shown.
    pub secret_access_key: Secret,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The blob store on an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    settings: Arc<S3Settings>,
}

impl S3Store {
    /// A store on the bucket `settings` names. Nothing is sent yet: [`BlobStore::health_check`] proves
    /// the bucket exists and the keys may write to it.
    pub fn new(settings: S3Settings) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.expose())
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            )
            // A client's upload waits for this write: a few quick retries, then the client's own retry.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| {
            StorageError::backend(format!("configuring bucket {}", settings.bucket), io::Error::other(e))
        })?;
        Ok(Self { store: Arc::new(store), settings: Arc::new(settings) })
    }

    fn key(&self, tail: &str) -> Path {
        if self.settings.prefix.is_empty() {
            Path::from(tail)
        } else {
            Path::from(format!("{}/{tail}", self.settings.prefix))
        }
    }

    fn blob_key(&self, id: &str) -> Path {
        self.key(&format!("blobs/{}/{id}", &id[..2]))
    }

    /// A failed request as a [`StorageError`]: one the store may soon answer again (no connection, a
    /// timeout, a 5xx such as Garage's "Could not reach quorum") is [`StorageError::Unavailable`], which
    /// clients are told to retry; anything else is a backend failure.
    fn fail(&self, doing: String, error: object_store::Error) -> StorageError {
        let context = format!("{doing} in bucket {}", self.settings.bucket);
        match Problem::of(&error) {
            Problem::Unreachable | Problem::Unavailable => {
                StorageError::Unavailable { context, source: io::Error::other(error) }
            }
            Problem::NoSuchBucket | Problem::Denied | Problem::Other => {
                StorageError::backend(context, io::Error::other(error))
            }
        }
    }

    /// Proves the bucket exists and the keys may write and delete in it (a PUT and a DELETE of a small
    /// probe object), and says what is wrong when they cannot, for startup to name the setting to fix.
    pub async fn probe(&self) -> Result<(), ProbeFailure> {
        let probe = self.key(&format!("health/{}", new_blob_id()));
        let failed = |doing: &str, error: object_store::Error| ProbeFailure {
            problem: Problem::of(&error),
            service_code: service_code(&error),
            error: self.fail(doing.to_owned(), error),
        };
        self.store
            .put(&probe, PutPayload::from_static(b"ok"))
            .await
            .map_err(|e| failed("writing a probe object", e))?;
        self.store.delete(&probe).await.map_err(|e| failed("deleting a probe object", e))
    }

    /// Streams `body` into the object `key`, checking it as it passes; the object exists only if the
    /// body was whole and within its limits.
    async fn put_checked(
        &self,
        key: &Path,
        mut body: ByteStream,
        limits: &WriteLimits,
        id: &str,
    ) -> Result<super::Digests, StorageError> {
        let mut checked = CheckedBody::new(limits);
        let mut first: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        // Small bodies wait in memory for one PUT; the chunk that makes them too big starts a multipart
        // upload, which every later chunk streams into.
        while buffered <= CHUNK {
            let Some(chunk) = body.next().await else {
                let digests = checked.finish().await?;
                let payload: PutPayload = first.into_iter().collect();
                self.store.put(key, payload).await.map_err(|e| self.fail(format!("writing blob {id}"), e))?;
                return Ok(digests);
            };
            let chunk = chunk.map_err(StorageError::Body)?;
            checked.accept(chunk.clone()).await?;
            buffered += chunk.len();
            first.push(chunk);
        }
        let upload =
            self.store.put_multipart(key).await.map_err(|e| self.fail(format!("starting blob {id}"), e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
        for chunk in first {
            writer.put(chunk);
        }
        let streamed = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(StorageError::Body)?;
                checked.accept(chunk.clone()).await?;
                writer
                    .wait_for_capacity(CHUNKS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.fail(format!("writing blob {id}"), e))?;
                writer.put(chunk);
            }
            Ok::<(), StorageError>(())
        }
        .await;
        let finished = match streamed {
            Ok(()) => checked.finish().await,
            Err(error) => Err(error),
        };
        match finished {
            Ok(digests) => {
                writer.finish().await.map_err(|e| self.fail(format!("completing blob {id}"), e))?;
                Ok(digests)
            }
            Err(error) => {
                // Aborted so that no part of a refused body lingers; a failed abort leaves parts only
                // the lifecycle rule sees, never an object.
                if let Err(e) = writer.abort().await {
                    tracing::warn!(blob = id, error = %e, "aborting the multipart upload of a refused blob failed");
                }
                Err(error)
            }
        }
    }
}

/// Why [`S3Store::probe`] failed.
#[derive(Debug)]
pub struct ProbeFailure {
    /// What kind of failure it is.
    pub problem: Problem,
    /// The S3 error code the store answered (`InvalidAccessKeyId`, `NoSuchBucket`…), if any.
    pub service_code: Option<String>,
    /// The failure itself, with the store's answer.
    pub error: StorageError,
}

/// What an S3 failure means for whoever configured the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No HTTP answer: connection refused, unknown host, timeout. The endpoint is wrong or down.
    Unreachable,
    /// The store answered 5xx: it is there but cannot serve now (Garage without quorum, say).
    Unavailable,
    /// 404 to a PUT: the bucket does not exist.
    NoSuchBucket,
    /// 401 or 403: the access key is unknown, the secret wrong, or the key may not write the bucket.
    Denied,
    /// Anything else (a 400 for a wrong region, say).
    Other,
}

impl Problem {
    /// Classifies an `object_store` error. Its HTTP status survives only as the error variant (404, 401,
    /// 403) or in the message of a generic one, and a failure to connect only as an `HttpError` in the
    /// source chain, so those are where this looks.
    fn of(error: &object_store::Error) -> Self {
        use std::error::Error as _;
        match error {
            object_store::Error::NotFound { .. } => return Self::NoSuchBucket,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                return Self::Denied;
            }
            _ => {}
        }
        let mut source = error.source();
        while let Some(inner) = source {
            if let Some(http) = inner.downcast_ref::<object_store::client::HttpError>() {
                use object_store::client::HttpErrorKind as Kind;
                if matches!(http.kind(), Kind::Connect | Kind::Timeout | Kind::Request | Kind::Interrupted) {
                    return Self::Unreachable;
                }
            }
            source = inner.source();
        }
        // object_store words a status it has no variant for as "…status code: 503 Service Unavailable…".
        let text = error.to_string();
        if text.contains("status code: 5") || text.contains("<Code>ServiceUnavailable</Code>") {
            Self::Unavailable
        } else {
            Self::Other
        }
    }
}

/// The `<Code>` of the S3 error body the store answered, when the message carries it.
fn service_code(error: &object_store::Error) -> Option<String> {
    let text = error.to_string();
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        .then(|| code.to_owned())
}

fn to_system_time(meta: &object_store::ObjectMeta) -> SystemTime {
    let seconds = u64::try_from(meta.last_modified.timestamp()).unwrap_or(0);
    UNIX_EPOCH + Duration::new(seconds, meta.last_modified.timestamp_subsec_nanos())
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn write(&self, body: ByteStream, limits: &WriteLimits) -> Result<StoredBlob, StorageError> {
        let id = new_blob_id();
        let digests = self.put_checked(&self.blob_key(&id), body, limits, &id).await?;
        Ok(StoredBlob { id, digests })
    }

    async fn read(&self, id: &str, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if !is_blob_id(id) {
            return Err(StorageError::NotFound(format!("blob {id:?}")));
        }
        let options = GetOptions { range: Some(GetRange::Bounded(range.clone())), ..GetOptions::default() };
        match self.store.get_opts(&self.blob_key(id), options).await {
            Ok(result) => {
                let bucket = self.settings.bucket.clone();
                let id = id.to_owned();
                Ok(Box::pin(result.into_stream().map_err(move |e| {
                    io::Error::other(format!("reading blob {id} from bucket {bucket}: {e}"))
                })))
            }
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound(format!("blob {id}"))),
            Err(e) => Err(self.fail(format!("reading blob {id} ({range:?})"), e)),
        }
    }

    async fn delete(&self, id: &str) -> Result<(), StorageError> {
        if !is_blob_id(id) {
            return Ok(());
        }
        match self.store.delete(&self.blob_key(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(format!("deleting blob {id}"), e)),
        }
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<ListedBlob>, StorageError> {
        let prefix = self.key("blobs");
        // S3 lists keys in byte order, and a blob's key orders as its id: the page after `after` is
        // the listing after its key.
        let mut listing = match after.filter(|a| is_blob_id(a)) {
            Some(after) => self.store.list_with_offset(Some(&prefix), &self.blob_key(after)),
            None => self.store.list(Some(&prefix)),
        };
        let mut blobs = Vec::new();
        while blobs.len() < limit {
            let Some(meta) = listing.next().await else { break };
            let meta = meta.map_err(|e| self.fail("listing blobs".to_owned(), e))?;
            let Some(id) = meta.location.filename().filter(|name| is_blob_id(name)) else { continue };
            if after.is_some_and(|after| id <= after) {
                continue;
            }
            blobs.push(ListedBlob { id: id.to_owned(), written_at: to_system_time(&meta) });
        }
        Ok(blobs)
    }

    async fn health_check(&self) -> Result<(), StorageError> {
        self.probe().await.map_err(|failure| failure.error)
    }
}
