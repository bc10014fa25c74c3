//! The catalogue and the service's own records, behind repository traits split by concern
//! (pict-rs `*Repo`): [`CredentialRepo`] (AccessKeys and the server secret), [`MediaRepo`] (videos,
//! images, attached media and their lifecycle), [`UploadRepo`] (multipart uploads and completion) and
//! [`EventRepo`] (the outbox of upload-complete events).
//!
//! One backend struct implements all of them ([`MetaStore`]); SQLite is the embedded default, PostgreSQL
//! comes later and must pass the same [`conformance`] suite. Times are stored as Unix milliseconds.
//! Completion and its status change happen in one transaction, together with the revocation checks of
//! vod-api.md §12.2 (issuing key active, media present and `Uploading`), so no object can become a
//! `Normal` media after its key was revoked or its media deleted.

pub mod conformance;
pub mod model;
pub mod sqlite;

use std::time::SystemTime;

pub use model::*;
pub use sqlite::SqliteMeta;

/// Why a metadata operation failed. Callers branch on the predicates.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The record does not exist (or was deleted).
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule was broken (duplicate id, ReferenceId already used).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write is no longer allowed: the issuing key was revoked, the media was deleted or is no longer
    /// `Uploading`, or the upload is closed.
    #[error("refused: {0}")]
    Refused(String),
    /// The database's disk is full: nothing was written.
    #[error("metadata store is full while {0}")]
    Full(String),
    /// The database failed.
    #[error("metadata store failed while {context}: {source}")]
    Backend {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl MetaError {
    /// The record does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// A uniqueness rule was broken.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// The write is no longer allowed.
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Result alias for this module.
pub type MetaResult<T> = Result<T, MetaError>;

/// AccessKeys and the server's own secret.
#[async_trait::async_trait]
pub trait CredentialRepo: Send + Sync {
    /// Stores a new long-lived key. [`MetaError::Conflict`] if the id exists.
    async fn create_key(&self, key: &AccessKeyRecord) -> MetaResult<()>;
    /// The key, revoked or not; `None` if unknown.
    async fn get_key(&self, access_key_id: &str) -> MetaResult<Option<AccessKeyRecord>>;
    /// Every key, oldest first.
    async fn list_keys(&self) -> MetaResult<Vec<AccessKeyRecord>>;
    /// Marks the key revoked at `at`; `false` if unknown or already revoked.
    async fn revoke_key(&self, access_key_id: &str, at: SystemTime) -> MetaResult<bool>;
    /// The named setting, created with `initial` if absent (atomically: two nodes starting at once agree).
    async fn get_or_create_setting(&self, name: &str, initial: &str) -> MetaResult<String>;
    /// What the data plane's in-memory revocation set needs: every revoked key id, and every media id
    /// deleted at or after `deleted_since`.
    async fn revocations(&self, deleted_since: SystemTime) -> MetaResult<Revocations>;
    /// Succeeds when the database answers a query: the catalogue half of `/readyz`.
    async fn health_check(&self) -> MetaResult<()>;
    /// Records a request nonce (a fixed-size digest of key id and nonce) live until `expires_at`;
    /// `false` if it is already recorded and still live at `now` (a replay). Dead rows are reclaimed
    /// along the way, a few per call.
    async fn record_nonce(
        &self,
        digest: &[u8; 16],
        now: SystemTime,
        expires_at: SystemTime,
    ) -> MetaResult<bool>;
}

/// Videos, images and attached media.
#[async_trait::async_trait]
pub trait MediaRepo: Send + Sync {
    /// Stores a new media item in status `Uploading`. [`MetaError::Conflict`] if the id or a non-empty
    /// `reference_id` is already used.
    async fn create_media(&self, media: &NewMedia) -> MetaResult<()>;
    /// The media item, if present and not deleted.
    async fn get_media(&self, media_id: &str) -> MetaResult<Option<Media>>;
    /// The video with this ReferenceId, if present and not deleted. The empty ReferenceId ("not given")
    /// names nothing: `None`.
    async fn get_media_by_reference(&self, reference_id: &str) -> MetaResult<Option<Media>>;
    /// Changes the fields that are `Some`; `modification_time` = `at`. [`MetaError::NotFound`] if absent,
    /// [`MetaError::Conflict`] if a new ReferenceId is used by another item.
    async fn update_media(&self, media_id: &str, update: &MediaUpdate, at: SystemTime) -> MetaResult<()>;
    /// Deletes the items (soft: they vanish from every read but are remembered for revocation). Returns
    /// the ids that existed; their open uploads are returned too, so the caller can discard the parts.
    async fn delete_media(&self, media_ids: &[String], at: SystemTime) -> MetaResult<DeletedMedia>;
    /// Videos matching `query`, with the total count before paging.
    async fn list_videos(&self, query: &VideoQuery) -> MetaResult<(u64, Vec<Media>)>;
    /// Stores `report` as the latest progress of the media, only if it exists, is a video and is still
    /// `Uploading`. Returns whether it was stored. Never changes any other field.
    async fn record_progress(&self, media_id: &str, report: &ProgressReport) -> MetaResult<bool>;
}

/// Multipart uploads and object completion.
#[async_trait::async_trait]
pub trait UploadRepo: Send + Sync {
    /// Records an initiated multipart upload, after checking `guard` (see [`WriteGuard`]); a refused guard
    /// leaves no row. [`MetaError::Conflict`] if the upload id exists.
    async fn create_upload(&self, upload: &NewUpload, guard: Option<&WriteGuard>) -> MetaResult<()>;
    /// The upload, open or closed; `None` if unknown.
    async fn get_upload(&self, upload_id: &str) -> MetaResult<Option<Upload>>;
    /// Open uploads in `bucket` with keys starting with `prefix`, after the (key, upload id) markers,
    /// sorted by key then upload id, at most `max` (plus one, so the caller can tell truncation).
    async fn list_open_uploads(&self, query: &UploadQuery) -> MetaResult<Vec<Upload>>;
    /// Marks an open upload aborted. [`MetaError::NotFound`] if unknown or already closed.
    async fn abort_upload(&self, upload_id: &str, at: SystemTime) -> MetaResult<()>;
    /// Open uploads of any bucket initiated before `before`, oldest first, at most `limit` (the sweeper).
    async fn stale_uploads(&self, before: SystemTime, limit: u32) -> MetaResult<Vec<Upload>>;
    /// Moves media still `Uploading` that were created before `before` to `UploadFail` (no event, as in
    /// the real service); returns their ids.
    async fn fail_stale_media(&self, before: SystemTime, at: SystemTime) -> MetaResult<Vec<String>>;
    /// In one transaction: closes `upload_id` as completed if given (it must be open and for
    /// `object.bucket`/`object.key`, else [`MetaError::NotFound`]); checks `guard`
    /// ([`MetaError::Refused`]); and if `object` is the bucket and object key of the guard's media, moves
    /// that media to `Normal` with the object's size, ETag and CRC-64 and `completion_time` = `at`
    /// (videos pass through `UploadSucc`; with no transcoding they land on `Normal` in the same step).
    /// Returns the media after the change, if one changed. Any error changes nothing. The upload is
    /// checked before the guard so that a retried CompleteMultipartUpload gets NotFound (OSS
    /// `NoSuchUpload`), not Refused because its media is already `Normal`.
    ///
    /// When the media changed and `event` builds an event for it, the event goes into the outbox in the
    /// same transaction, so a committed status change always has its event and a rolled-back one never.
    async fn complete_object(
        &self,
        upload_id: Option<&str>,
        object: &CompletedObject,
        guard: Option<&WriteGuard>,
        event: Option<&EventBuilder<'_>>,
        at: SystemTime,
    ) -> MetaResult<Option<Media>>;

    /// Media still `Uploading` (not deleted), oldest first, at most `limit`: the candidates startup
    /// reconciliation checks against storage.
    async fn uploading_media(&self, limit: u32) -> MetaResult<Vec<Media>>;

    /// Records a completion that storage published but a crash kept from the catalogue: in one transaction,
    /// closes `upload_id` as completed if given and still open, and moves `media_id` to `Normal` with the
    /// object's attributes if it is still `Uploading` and not deleted, queueing `event` as
    /// [`Self::complete_object`] does. No credential is checked: storage accepted the write while its
    /// credential was valid. Returns the media if it changed.
    async fn recover_object(
        &self,
        upload_id: Option<&str>,
        media_id: &str,
        object: &CompletedObject,
        event: Option<&EventBuilder<'_>>,
        at: SystemTime,
    ) -> MetaResult<Option<Media>>;
}

/// Builds the outbox event of a media that just turned `Normal`, or `None` when it has nowhere to go.
pub type EventBuilder<'a> = dyn Fn(&Media) -> Option<NewEvent> + Send + Sync + 'a;

/// The outbox of upload-complete events.
#[async_trait::async_trait]
pub trait EventRepo: Send + Sync {
    /// Pending events whose next attempt is due at `now`, oldest first, at most `limit`.
    async fn due_events(&self, now: SystemTime, limit: u32) -> MetaResult<Vec<OutboxEvent>>;
    /// Marks an event delivered.
    async fn event_delivered(&self, id: &str, at: SystemTime) -> MetaResult<()>;
    /// Records a failed attempt and when to try again.
    async fn event_failed(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: SystemTime,
        error: &str,
    ) -> MetaResult<()>;
    /// Gives an event up.
    async fn event_given_up(&self, id: &str, at: SystemTime, error: &str) -> MetaResult<()>;
    /// Events per state.
    async fn event_counts(&self) -> MetaResult<EventCounts>;
}

/// Everything the service stores about itself and its media.
pub trait MetaStore: CredentialRepo + MediaRepo + UploadRepo + EventRepo + std::fmt::Debug {}

impl<T: CredentialRepo + MediaRepo + UploadRepo + EventRepo + std::fmt::Debug> MetaStore for T {}
