//! The one-time migration of a data folder written before the catalogue owned objects: the local store's
//! manifests and staged parts become catalogue rows (objects, their blobs, the parts of open uploads) and
//! their files move into the current blob layout. It runs at startup, before anything is served.
//!
//! Order makes it repeatable after a crash at any step: the catalogue import comes first (one
//! transaction; rows already there are skipped), then the files move (a file already moved is
//! recognised by its id, derived from its old path), and the old folders are removed last. Staged parts
//! of uploads the catalogue no longer holds open are not imported; their files are left to the collector.

use std::time::SystemTime;

use crate::meta::{
    ImportCounts, LegacyImport, MetaStore, ObjectMeta, ObjectType, ObjectVersion, Piece, StoredPart,
};
use crate::storage::local::legacy;
use crate::storage::{LocalStore, new_blob_id};

/// Why the migration stopped; the service does not start on a half-read folder.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Reading or moving the old files failed.
    #[error("migrating the store at {root} from the layout before catalogue commits: {source}")]
    Files {
        /// The store's root.
        root: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The catalogue failed.
    #[error("recording the store's objects in the catalogue: {0}")]
    Meta(#[from] crate::meta::MetaError),
}

/// Migrates `store` if it still holds the old layout; returns what was imported, `None` if there was
/// nothing to do.
pub async fn run(
    meta: &dyn MetaStore,
    store: &LocalStore,
    bucket: &str,
    at: SystemTime,
) -> Result<Option<ImportCounts>, UpgradeError> {
    let root = store.root().to_owned();
    let files = |source| UpgradeError::Files { root: root.display().to_string(), source };
    if !legacy::present(&root) {
        return Ok(None);
    }
    tracing::warn!(root = %root.display(), "migrating the store from the layout before catalogue commits");
    let scan_root = root.clone();
    let layout = tokio::task::spawn_blocking(move || legacy::scan(&scan_root))
        .await
        .map_err(|e| files(std::io::Error::other(e)))?
        .map_err(files)?;
    let import = LegacyImport {
        objects: layout.objects.iter().map(|o| version_of(bucket, o)).collect(),
        parts: layout
            .uploads
            .iter()
            .map(|u| {
                let parts = u
                    .parts
                    .iter()
                    .map(|p| StoredPart {
                        part_number: p.part_number,
                        blob_id: p.blob.id.clone(),
                        digests: p.digests,
                        uploaded_at: p.uploaded_at,
                    })
                    .collect();
                (u.upload_id.clone(), parts)
            })
            .collect(),
    };
    let counts = meta.import_legacy(bucket, &import, at).await?;
    let move_root = root.clone();
    let moved = tokio::task::spawn_blocking(move || {
        let moved = legacy::move_blobs(&move_root, &layout)?;
        legacy::remove(&move_root)?;
        Ok::<_, std::io::Error>(moved)
    })
    .await
    .map_err(|e| files(std::io::Error::other(e)))?
    .map_err(files)?;
    tracing::warn!(
        objects = counts.objects,
        parts = counts.parts,
        skipped = counts.skipped,
        moved_files = moved,
        "migrated the store: the catalogue now owns every object"
    );
    Ok(Some(counts))
}

fn version_of(bucket: &str, object: &legacy::Object) -> (ObjectVersion, Vec<Piece>) {
    let version = ObjectVersion {
        bucket: bucket.to_owned(),
        key: object.key.clone(),
        version_id: new_blob_id(),
        size: object.size,
        etag: object.etag.clone(),
        crc64: object.crc64,
        content_md5: object.content_md5,
        object_type: if object.multipart { ObjectType::Multipart } else { ObjectType::Normal },
        meta: ObjectMeta { content_type: object.content_type.clone(), user_meta: object.user_meta.clone() },
        last_modified: object.last_modified,
        upload_id: object.upload_id.clone(),
    };
    let pieces = object.blobs.iter().map(|b| Piece { blob_id: b.id.clone(), size: b.len }).collect();
    (version, pieces)
}
