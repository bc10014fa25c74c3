//! Startup reconciliation: makes the catalogue and storage agree again after a crash, before anything is
//! served.
//!
//! Writes touch storage first and the catalogue second (a PutObject or Complete publishes the object,
//! then records it; Initiate opens the upload in storage, then in the catalogue; Abort and the sweeper
//! close it in the catalogue, then in storage). Storage repairs its own half-done steps when it opens
//! (`storage::local::journal`); what remains is a crash *between* the two halves:
//!
//! - an upload open in the catalogue whose object storage already published: the completion is recorded
//!   (upload closed, media `Normal`, its event queued), as the interrupted request would have done;
//! - an upload open in the catalogue that storage no longer has and never published: closed as aborted;
//! - an upload open in storage that the catalogue does not hold open: its parts are removed;
//! - a media item still `Uploading` whose object storage holds (a PutObject cut off before it was
//!   recorded): recorded as complete.
//!
//! Each repair is logged; the counts come back for tests and for the startup log.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::meta::{CompletedObject, MetaError, Upload};
use crate::state::AppState;
use crate::storage::{ObjectInfo, StorageError};

/// What reconciliation repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repairs {
    /// Uploads whose published object was recorded as their completion.
    pub completed_uploads: Vec<String>,
    /// Catalogue uploads storage no longer had, closed as aborted.
    pub aborted_in_catalogue: Vec<String>,
    /// Storage uploads the catalogue did not hold open, removed.
    pub aborted_in_storage: Vec<String>,
    /// Media whose PutObject was published but not recorded, now `Normal`.
    pub completed_media: Vec<String>,
}

impl Repairs {
    /// Whether nothing needed repair.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Why reconciliation stopped; the service does not start with the catalogue and storage in doubt.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The catalogue failed.
    #[error("reconciling the catalogue with storage: {0}")]
    Meta(#[from] MetaError),
    /// Storage failed.
    #[error("reconciling storage with the catalogue: {0}")]
    Storage(#[from] StorageError),
}

/// Runs every check once. Call before serving: it assumes no request is in flight.
pub async fn run(state: &AppState) -> Result<Repairs, ReconcileError> {
    let mut repairs = Repairs::default();
    let now = state.now();
    // Open uploads are bounded by the sweeper's age, so one list is fine.
    let open = state.meta.stale_uploads(now + Duration::from_secs(86_400), u32::MAX).await?;
    let mut open_ids = HashSet::with_capacity(open.len());
    for upload in &open {
        open_ids.insert(upload.new.upload_id.clone());
        reconcile_upload(state, upload, now, &mut repairs).await?;
    }
    for upload_id in state.storage.open_uploads().await? {
        if open_ids.contains(&upload_id) {
            continue;
        }
        match state.storage.abort_upload(&upload_id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(upload_id, "removed the parts of an upload the catalogue does not hold open");
        repairs.aborted_in_storage.push(upload_id);
    }
    for media in state.meta.uploading_media(u32::MAX).await? {
        let info = match state.storage.head_object(&media.new.object_key).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        // A multipart object of an upload the catalogue still holds open is that upload's business.
        if info.upload_id.as_ref().is_some_and(|id| open_ids.contains(id)) {
            continue;
        }
        let object = completed(&media.new.bucket, &info);
        if record(state, None, &media.new.id, &object, now).await? {
            tracing::warn!(media_id = media.new.id, key = info.key, "recorded a PutObject a crash cut off");
            repairs.completed_media.push(media.new.id.clone());
        }
    }
    if repairs.is_empty() {
        tracing::debug!("catalogue and storage agree");
    } else {
        tracing::warn!(?repairs, "reconciled the catalogue with storage after a crash");
    }
    Ok(repairs)
}

async fn reconcile_upload(
    state: &AppState,
    upload: &Upload,
    now: SystemTime,
    repairs: &mut Repairs,
) -> Result<(), ReconcileError> {
    let id = &upload.new.upload_id;
    match state.storage.list_parts(id).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let published = match state.storage.head_object(&upload.new.key).await {
        Ok(info) if info.upload_id.as_deref() == Some(id) => Some(info),
        Ok(_) => None,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    match published {
        Some(info) => {
            let object = completed(&upload.new.bucket, &info);
            let media = upload.new.media_id.as_deref();
            match media {
                Some(media_id) => {
                    record(state, Some(id), media_id, &object, now).await?;
                }
                None => {
                    // A long-lived key's upload has no media; closing it is the whole record.
                    state.meta.recover_object(Some(id), "", &object, None, now).await?;
                }
            }
            tracing::warn!(upload_id = id, key = upload.new.key, "recorded a completion a crash cut off");
            repairs.completed_uploads.push(id.clone());
        }
        None => {
            match state.meta.abort_upload(id, now).await {
                Ok(()) | Err(MetaError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::warn!(upload_id = id, "closed an upload storage no longer has");
            repairs.aborted_in_catalogue.push(id.clone());
        }
    }
    Ok(())
}

/// Records a completion with its event; whether the media changed.
async fn record(
    state: &AppState,
    upload_id: Option<&str>,
    media_id: &str,
    object: &CompletedObject,
    at: SystemTime,
) -> Result<bool, ReconcileError> {
    let file_url = state.site.object_url(&object.key);
    let build = |media: &crate::meta::Media| {
        crate::events::upload_complete(media, &file_url, &state.settings.events, at)
    };
    let media = state.meta.recover_object(upload_id, media_id, object, Some(&build), at).await?;
    Ok(media.is_some())
}

fn completed(bucket: &str, info: &ObjectInfo) -> CompletedObject {
    CompletedObject {
        bucket: bucket.to_owned(),
        key: info.key.clone(),
        size: info.size,
        etag: info.etag.clone(),
        crc64: info.crc64,
    }
}
