//! The catalogue and the service's own records, behind repository traits split by concern
//! (pict-rs `*Repo`): [`CredentialRepo`] (AccessKeys and the server secret), [`MediaRepo`] (videos,
//! images, attached media and their lifecycle), [`UploadRepo`] (multipart uploads), [`ObjectRepo`] (what
//! each key names, the parts of open uploads, and every commit), [`BlobRepo`] (what the collector may
//! remove), [`EventRepo`] (the outbox of upload-complete events) and [`LeaseRepo`] (work one node does at a
//! time).
//!
//! The catalogue is the only source of truth for objects: blob storage holds immutable bytes under ids
//! and never decides what a key means.
//!
//! One backend struct implements all of them ([`MetaStore`]): [`SqliteMeta`], the embedded default, and
//! `PostgresMeta` (cargo feature `postgres`), shared by any number of nodes; both pass the same
//! [`conformance`] suite. [`location`] parses the `--meta` URL that chooses between them. Times are stored as Unix milliseconds.
//! A commit and its status change happen in one transaction, together with the revocation checks of
//! vod-api.md §12.2 (issuing key active, media present and `Uploading`), so no object can become a
//! `Normal` media after its key was revoked or its media deleted.

pub mod conformance;
pub mod location;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rows;
pub mod sqlite;

use std::time::SystemTime;

pub use location::{MetaLocation, PostgresUrl};
pub use model::*;
#[cfg(feature = "postgres")]
pub use postgres::PostgresMeta;
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

/// Multipart uploads: their lifecycle apart from completion (which is an object commit, [`ObjectRepo`]).
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
    /// Closes an open upload as aborted and hands its parts' blobs to the collector, in one
    /// transaction. [`MetaError::NotFound`] if unknown or already closed (completed or aborted): exactly
    /// one of a racing Complete and Abort wins.
    async fn abort_upload(&self, upload_id: &str, at: SystemTime) -> MetaResult<()>;
    /// Open uploads of any bucket initiated before `before`, oldest first, at most `limit` (the sweeper).
    async fn stale_uploads(&self, before: SystemTime, limit: u32) -> MetaResult<Vec<Upload>>;
    /// Moves media still `Uploading` that were created before `before` to `UploadFail` (no event, as in
    /// the real service); returns their ids.
    async fn fail_stale_media(&self, before: SystemTime, at: SystemTime) -> MetaResult<Vec<String>>;
}

/// Objects: what each key names, the parts of open uploads, and the commits that change them. Every
/// commit is one transaction that checks all its guards and then switches, or changes nothing; a
/// refused or losing writer's blob stays unreferenced, for the collector.
///
/// A commit that writes the key a live media item names (`Uploading`, or `Normal` being overwritten)
/// moves that media to `Normal` with the object's size, ETag and CRC-64 and queues `event` for it in
/// the same transaction, so the catalogue's figures always describe the object the key names and a
/// committed change always has its event. Other keys (m3u8 segments) change no media.
#[async_trait::async_trait]
pub trait ObjectRepo: Send + Sync {
    /// The version `bucket`/`key` names, with its pieces in order when `pieces` (one consistent read).
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        pieces: bool,
    ) -> MetaResult<Option<(ObjectVersion, Vec<Piece>)>>;

    /// PutObject: checks `guard` ([`MetaError::Refused`]) and `forbid_overwrite`
    /// ([`MetaError::Conflict`]), then makes the key name a new version made of the one blob; the version
    /// it replaces goes to the collector.
    async fn put_object(
        &self,
        put: &PutCommit,
        guard: Option<&WriteGuard>,
        event: Option<EventBuilder>,
        at: SystemTime,
    ) -> MetaResult<Committed>;

    /// DeleteObject: the key names nothing afterwards and its blobs go to the collector; `false` if it
    /// named nothing. [`MetaError::Refused`] if the object is the source of a live `Normal` media item
    /// (that goes through DeleteVideo and its kin, so the catalogue never says `Normal` without bytes).
    async fn delete_object(&self, bucket: &str, key: &str, at: SystemTime) -> MetaResult<bool>;

    /// UploadPart: records `blob` as part `part_number` of the open upload for `bucket`/`key`, replacing
    /// an earlier part of that number (whose blob goes to the collector). [`MetaError::NotFound`] if the
    /// upload is not open or is for another key.
    async fn put_part(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
        part_number: u32,
        blob: &NewBlob,
        at: SystemTime,
    ) -> MetaResult<()>;

    /// The parts of the open upload for `bucket`/`key`, ascending. [`MetaError::NotFound`] if it is not
    /// open or is for another key.
    async fn list_parts(&self, upload_id: &str, bucket: &str, key: &str) -> MetaResult<Vec<StoredPart>>;

    /// CompleteMultipartUpload: in one transaction, checks the upload is open and for this key (a closed
    /// one answers [`CompleteOutcome::Repeated`] when it was completed with the same parts, else
    /// [`MetaError::NotFound`]), checks `guard`, checks each listed part against the stored one (ETag,
    /// minimum size), then makes the key name the listed parts' blobs in order (no byte is copied),
    /// closes the upload and hands the unlisted parts and the replaced version to the collector.
    async fn complete_upload(
        &self,
        complete: &CompleteCommit,
        guard: Option<&WriteGuard>,
        event: Option<EventBuilder>,
        at: SystemTime,
    ) -> MetaResult<CompleteOutcome>;

    /// Records what the layout before the catalogue owned objects held (`crate::upgrade`); repeatable.
    async fn import_legacy(
        &self,
        bucket: &str,
        import: &LegacyImport,
        at: SystemTime,
    ) -> MetaResult<ImportCounts>;
}

/// The collector's side of the catalogue: blobs nothing references any more, and tombstones that keep a
/// blob being collected from being committed.
#[async_trait::async_trait]
pub trait BlobRepo: Send + Sync {
    /// Marks up to `limit` blobs released before `released_before` (replaced, deleted, aborted,
    /// unlisted) as collected and returns their ids, for removal from storage.
    async fn claim_garbage(
        &self,
        released_before: SystemTime,
        limit: u32,
        at: SystemTime,
    ) -> MetaResult<Vec<String>>;
    /// Of `ids` (blobs found in storage, old enough), those nothing references: ids the catalogue has
    /// never seen are recorded as collected (so a commit naming one now fails rather than reference a blob
    /// about to go), and ids already collected are returned again.
    async fn claim_orphans(&self, ids: &[String], at: SystemTime) -> MetaResult<Vec<String>>;
    /// Forgets collected blobs marked before `before`; returns how many.
    async fn forget_collected(&self, before: SystemTime) -> MetaResult<u64>;
    /// Blobs per state, for metrics and tests.
    async fn blob_counts(&self) -> MetaResult<BlobCounts>;
}

/// Builds the outbox event of a media that just turned `Normal`, or `None` when it has nowhere to go.
/// Shared, not borrowed: a backend may build it on a thread of its own (SQLite's writer).
pub type EventBuilder = std::sync::Arc<dyn Fn(&Media) -> Option<NewEvent> + Send + Sync>;

/// The outbox of upload-complete events, shared by every node: a node claims the events it delivers.
#[async_trait::async_trait]
pub trait EventRepo: Send + Sync {
    /// Claims up to `limit` pending events due at `now`, oldest first: their next attempt moves to
    /// `lease_until`, so no other node (nor this one) takes them before then. The claimer then records the
    /// outcome ([`event_delivered`](Self::event_delivered), [`event_failed`](Self::event_failed),
    /// [`event_given_up`](Self::event_given_up)); a claimer that dies records nothing, and the events come
    /// due again when the lease ends (delivery is at least once). Two claims racing never return the same
    /// event before its lease ends.
    async fn claim_due_events(
        &self,
        now: SystemTime,
        lease_until: SystemTime,
        limit: u32,
    ) -> MetaResult<Vec<OutboxEvent>>;
    /// Hands back events a claimer holds until `claimed_until` and has not finished (a node stopping): they
    /// are due again at `now`, for any node. An event whose outcome was recorded meanwhile, or that a later
    /// claim holds, is left alone.
    async fn release_events(
        &self,
        ids: &[String],
        claimed_until: SystemTime,
        now: SystemTime,
    ) -> MetaResult<()>;
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

/// Named leases on work that one node does at a time (a sweep, a collector round), for any number of nodes
/// on one catalogue. A lease is held until it expires; its holder renews it while it works. A node that
/// dies stops renewing, and another takes the lease over once it has expired, so the work is neither done
/// twice at once nor lost.
#[async_trait::async_trait]
pub trait LeaseRepo: Send + Sync {
    /// Takes the lease `name` for `holder` until `until`, if it is free, expired at `now`, or already
    /// `holder`'s (a renewal); `false` if another holder has it. Two racing takers never both succeed.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> MetaResult<bool>;
    /// Gives the lease up if `holder` has it (a node stopping cleanly), so another node need not wait.
    async fn release_lease(&self, name: &str, holder: &str) -> MetaResult<()>;
}

/// Everything the service stores about itself and its media.
pub trait MetaStore:
    CredentialRepo + MediaRepo + UploadRepo + ObjectRepo + BlobRepo + EventRepo + LeaseRepo + std::fmt::Debug
{
}

impl<T> MetaStore for T where
    T: CredentialRepo
        + MediaRepo
        + UploadRepo
        + ObjectRepo
        + BlobRepo
        + EventRepo
        + LeaseRepo
        + std::fmt::Debug
{
}
