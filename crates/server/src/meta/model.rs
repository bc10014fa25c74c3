//! The records of the catalogue, as plain data shared by every metadata backend.

use std::time::SystemTime;

use vodup_proto::Secret;

use crate::storage::Digests;
pub use crate::storage::pieces::Piece;

/// A long-lived AccessKey created with `vodup keys create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    /// `LTAI…`-style id.
    pub id: String,
    /// The secret; it is stored only in the metadata store (a 0600 file for SQLite).
    pub secret: Secret,
    /// Free text given at creation.
    pub description: String,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
}

/// What revocation the data plane must enforce without a database lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Revoked long-lived key ids.
    pub revoked_keys: Vec<String>,
    /// Media deleted since the asked-for instant.
    pub deleted_media: Vec<String>,
}

/// The three media types of VOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// CreateUploadVideo (audio too).
    Video,
    /// CreateUploadImage.
    Image,
    /// CreateUploadAttachedMedia.
    Attached,
}

impl MediaKind {
    /// Stable text form for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
            Self::Attached => "attached",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "video" => Some(Self::Video),
            "image" => Some(Self::Image),
            "attached" => Some(Self::Attached),
            _ => None,
        }
    }
}

/// Media status, spelled as VOD spells it (vod-api.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaStatus {
    /// Created, waiting for its object.
    Uploading,
    /// Object received (a transient step here: no transcoding).
    UploadSucc,
    /// The upload was abandoned.
    UploadFail,
    /// Complete and usable.
    Normal,
}

impl MediaStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "Uploading",
            Self::UploadSucc => "UploadSucc",
            Self::UploadFail => "UploadFail",
            Self::Normal => "Normal",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Uploading" => Some(Self::Uploading),
            "UploadSucc" => Some(Self::UploadSucc),
            "UploadFail" => Some(Self::UploadFail),
            "Normal" => Some(Self::Normal),
            _ => None,
        }
    }
}

/// The fields given when a media item is created. Empty strings mean "not given".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMedia {
    /// 32 lowercase hex characters (VideoId / ImageId / MediaId).
    pub id: String,
    /// Video, image or attached.
    pub kind: MediaKind,
    /// Title (≤128 bytes).
    pub title: String,
    /// Description (≤1024 bytes).
    pub description: String,
    /// The FileName / OriginalFileName parameter as sent.
    pub file_name: String,
    /// The extension the object key got (`mp4`, `png`, `srt`…).
    pub file_ext: String,
    /// FileSize as declared by the caller.
    pub declared_size: Option<u64>,
    /// CoverURL.
    pub cover_url: String,
    /// CateId (videos, images) or the first of CateIds (attached).
    pub cate_id: Option<i64>,
    /// All CateIds of attached media, comma-separated.
    pub cate_ids: String,
    /// Tags, comma-separated.
    pub tags: String,
    /// TemplateGroupId.
    pub template_group_id: String,
    /// WorkflowId.
    pub workflow_id: String,
    /// StorageLocation (the bucket host).
    pub storage_location: String,
    /// AppId (`app-1000000` by default).
    pub app_id: String,
    /// UserData JSON text.
    pub user_data: String,
    /// ReferenceId (videos), unique when non-empty.
    pub reference_id: String,
    /// ImageType (`default`/`cover`) for images.
    pub image_type: String,
    /// BusinessType (`watermark`/`subtitle`/`material`) for attached media.
    pub business_type: String,
    /// The bucket the object goes to.
    pub bucket: String,
    /// The object key assigned.
    pub object_key: String,
    /// For a `.m3u8` video, the prefix its segments go under.
    pub object_prefix: Option<String>,
    /// The long-lived AccessKeyId that created it (its revocation revokes the upload).
    pub issuing_key_id: String,
    /// Creation time.
    pub created_at: SystemTime,
}

/// The latest ReportUploadProgress of a video: advisory only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressReport {
    /// Peer address of the report.
    pub client_ip: String,
    /// `Source` (e.g. `PythonSDK`).
    pub source: String,
    /// `DeviceModel`.
    pub device_model: String,
    /// `FileSize` as reported.
    pub file_size: Option<u64>,
    /// `UploadPoint.doneBytes`.
    pub done_bytes: Option<u64>,
    /// `DonePartsCount`.
    pub done_parts: Option<u64>,
    /// `PartSize`.
    pub part_size: Option<u64>,
    /// When it arrived.
    pub reported_at: SystemTime,
}

/// A media item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The creation fields.
    pub new: NewMedia,
    /// Current status.
    pub status: MediaStatus,
    /// Stored object size, once complete.
    pub size: Option<u64>,
    /// Stored object ETag (quoted), once complete.
    pub etag: Option<String>,
    /// Stored object CRC-64, once complete.
    pub crc64: Option<u64>,
    /// Last change of any field.
    pub modified_at: SystemTime,
    /// When the object was completed.
    pub completed_at: Option<SystemTime>,
    /// Latest progress report (videos).
    pub progress: Option<ProgressReport>,
}

/// UpdateVideoInfo: only `Some` fields change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaUpdate {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New tags.
    pub tags: Option<String>,
    /// New cover URL.
    pub cover_url: Option<String>,
    /// New category.
    pub cate_id: Option<i64>,
    /// New ReferenceId.
    pub reference_id: Option<String>,
    /// New UserData.
    pub user_data: Option<String>,
}

/// Result of [`super::MediaRepo::delete_media`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedMedia {
    /// Ids that existed and are now deleted; their objects (and m3u8 segments) and open uploads went
    /// with them, their blobs to the collector.
    pub deleted: Vec<String>,
}

/// GetVideoList filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoQuery {
    /// CateId filter.
    pub cate_id: Option<i64>,
    /// Status filter (any of).
    pub statuses: Vec<MediaStatus>,
    /// CreationTime ≥ this.
    pub start: Option<SystemTime>,
    /// CreationTime < this.
    pub end: Option<SystemTime>,
    /// StorageLocation filter.
    pub storage_location: Option<String>,
    /// ReferenceIds filter (any of).
    pub reference_ids: Vec<String>,
    /// Oldest first when true.
    pub ascending: bool,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
}

/// An initiated multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// Upload id (`[0-9A-F]`, 32 chars).
    pub upload_id: String,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The media the key belongs to, if any (AK uploads to arbitrary keys have none).
    pub media_id: Option<String>,
    /// Content type for the final object.
    pub content_type: String,
    /// When it was initiated.
    pub initiated_at: SystemTime,
}

/// Upload state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Parts may be added.
    Open,
    /// Completed into an object.
    Completed,
    /// Aborted.
    Aborted,
}

impl UploadState {
    /// Stable text form for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "completed" => Some(Self::Completed),
            "aborted" => Some(Self::Aborted),
            _ => None,
        }
    }
}

/// A multipart upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The creation fields.
    pub new: NewUpload,
    /// State.
    pub state: UploadState,
}

/// ListMultipartUploads filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadQuery {
    /// Bucket.
    pub bucket: String,
    /// Key prefix.
    pub prefix: String,
    /// Keys after this one (or equal with upload id after `upload_id_marker`).
    pub key_marker: String,
    /// See `key_marker`.
    pub upload_id_marker: String,
    /// Page size; the repo returns up to `max + 1` rows.
    pub max: u32,
}

/// What the revocation rules require of a write that touches the catalogue (vod-api.md §12.2), checked
/// inside the write's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteGuard {
    /// The long-lived key that signed the request, or that minted the upload credential; it must be
    /// stored and not revoked (an unknown key is refused too: nothing proves it was ever valid).
    pub issuing_key_id: String,
    /// For an upload credential, the media it was minted for: it must exist, not be deleted, and be
    /// `Uploading` (or `Normal`, for a credential that RefreshUploadVideo minted to overwrite a source).
    pub media_id: Option<String>,
    /// Whether the credential may overwrite the source of a `Normal` video.
    pub overwrite: bool,
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
    /// The header value, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Multipart => "Multipart",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Normal" => Some(Self::Normal),
            "Multipart" => Some(Self::Multipart),
            _ => None,
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

/// What a key names: its current version, as the catalogue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The version's own id (32 hex), new at every commit.
    pub version_id: String,
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
    /// Content type and user metadata.
    pub meta: ObjectMeta,
    /// When it was committed.
    pub last_modified: SystemTime,
    /// The multipart upload it was completed from (`Multipart` objects only).
    pub upload_id: Option<String>,
}

/// A blob a write has stored and its commit will reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlob {
    /// The id the blob store chose.
    pub id: String,
    /// What its bytes hash to.
    pub digests: Digests,
}

/// A part of an open upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// 1..=10000.
    pub part_number: u32,
    /// Its blob.
    pub blob_id: String,
    /// MD5, CRC-64 and length of its bytes.
    pub digests: Digests,
    /// When it was recorded.
    pub uploaded_at: SystemTime,
}

/// PutObject's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutCommit {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The body, already stored.
    pub blob: NewBlob,
    /// Content type and user metadata.
    pub meta: ObjectMeta,
    /// `x-oss-forbid-overwrite: true`: refuse ([`super::MetaError::Conflict`]) if the key names an object.
    pub forbid_overwrite: bool,
}

/// CompleteMultipartUpload's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteCommit {
    /// The upload.
    pub upload_id: String,
    /// Bucket the request names.
    pub bucket: String,
    /// Key the request names (it must be the upload's).
    pub key: String,
    /// The parts listed, ascending by number, with the ETag the client expects of each; `None` completes
    /// with every stored part (`x-oss-complete-all: yes`).
    pub listed: Option<Vec<(u32, String)>>,
    /// Every part but the last must have at least this many bytes.
    pub min_part_size: u64,
}

/// What a commit answers a client: the object's ETag and CRC-64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The quoted ETag.
    pub etag: String,
    /// CRC-64 of the whole object.
    pub crc64: u64,
    /// MD5 of the body (PutObject).
    pub content_md5: Option<[u8; 16]>,
    /// The media this write completed, if any.
    pub media: Option<Media>,
}

/// The verdict of CompleteMultipartUpload's commit. Anything but `Completed` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    /// The key now names the assembled object.
    Completed(Committed),
    /// The upload was completed before with the same parts: the same answer again, nothing changed.
    Repeated(Committed),
    /// A listed part is missing or has another ETag.
    InvalidPart {
        /// The part number.
        part_number: u32,
        /// The ETag the request listed.
        etag: String,
    },
    /// A part other than the last is smaller than the minimum.
    PartTooSmall {
        /// The part number.
        part_number: u32,
    },
    /// The upload has no parts to complete with.
    NoParts,
}

/// How many blobs the catalogue knows in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCounts {
    /// Referenced by an object version or an open upload's part.
    pub live: u64,
    /// Referenced by nothing, waiting for the grace period.
    pub garbage: u64,
    /// Removed, or being removed, from storage (tombstones kept for a while).
    pub collected: u64,
}

/// What the migration from the layout before the catalogue owned objects brings in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyImport {
    /// Objects and their pieces; a key the catalogue already names is skipped.
    pub objects: Vec<(ObjectVersion, Vec<Piece>)>,
    /// Staged parts per upload; only uploads the catalogue holds open take them.
    pub parts: Vec<(String, Vec<StoredPart>)>,
}

/// What [`LegacyImport`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Objects recorded.
    pub objects: u64,
    /// Parts recorded.
    pub parts: u64,
    /// Objects or parts already recorded or no longer wanted (upload closed).
    pub skipped: u64,
}

/// An event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event id (`X-VOD-Event-Id`).
    pub id: String,
    /// The media it is about.
    pub media_id: String,
    /// The EventType.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// The per-upload callback URL; `None` means the global one.
    pub callback_url: Option<String>,
    /// When the status change that caused it was committed.
    pub created_at: SystemTime,
    /// Failed deliveries so far.
    pub attempts: u32,
}

/// How many events are in each outbox state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Waiting for (another) delivery attempt.
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up after the horizon.
    pub given_up: u64,
}

/// An event to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// 32 hex characters; also sent as `X-VOD-Event-Id`.
    pub id: String,
    /// The media.
    pub media_id: String,
    /// `FileUploadComplete`, `ImageUploadComplete` or `AttachedMediaUploadComplete`.
    pub event_type: String,
    /// The JSON body.
    pub payload: String,
    /// The per-upload callback URL, or `None` for the global one.
    pub callback_url: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
}
