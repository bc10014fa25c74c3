//! SQLite: what each key names, the parts of open uploads, and the commits that change them
//! ([`ObjectRepo`]). Every commit runs whole on the [`writer`] thread, in its own savepoint of a `BEGIN
//! IMMEDIATE` transaction: it checks its guards and then switches, or rolls back having changed nothing;
//! the blobs a commit stops referencing become garbage for the collector in the same transaction. The
//! helpers at the end are shared with the other repositories that release objects or parts (aborting an
//! upload, deleting media).

use rusqlite::{Connection, params};
use vodup_proto::crc64;
use vodup_proto::oss::part::{etags_match, md5_of_etag, multipart_etag};

use super::writer::{self, all, execute, first, rows};
use super::*;
use crate::meta::{
    Committed, CompleteCommit, CompleteOutcome, ImportCounts, LegacyImport, NewBlob, ObjectMeta, ObjectRepo,
    ObjectType, ObjectVersion, Piece, PutCommit, StoredPart,
};

#[async_trait::async_trait]
impl ObjectRepo for SqliteMeta {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        pieces: bool,
    ) -> MetaResult<Option<(ObjectVersion, Vec<Piece>)>> {
        let context = || format!("reading object {bucket}/{key}");
        // One read transaction: the version and its pieces come from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(|e| failed(context(), e))?;
        let row = sqlx::query("SELECT * FROM objects WHERE bucket = ? AND object_key = ?")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
        let Some(row) = row else { return Ok(None) };
        let version = version_from_row(&row)?;
        let mut list = Vec::new();
        if pieces {
            let rows =
                sqlx::query("SELECT blob_id, size FROM object_blobs WHERE version_id = ? ORDER BY seq")
                    .bind(&version.version_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| failed(context(), e))?;
            for row in &rows {
                list.push(Piece {
                    blob_id: column(row, "blob_id")?,
                    size: row.opt_u64("size")?.unwrap_or(0),
                });
            }
        }
        tx.commit().await.map_err(|e| failed(context(), e))?;
        Ok(Some((version, list)))
    }

    async fn put_object(
        &self,
        put: &PutCommit,
        guard: Option<&WriteGuard>,
        event: Option<EventBuilder>,
        at: SystemTime,
    ) -> MetaResult<Committed> {
        let (put, guard) = (put.clone(), guard.cloned());
        self.writer
            .write("commit a PutObject", move |conn| {
                put_object(conn, &put, guard.as_ref(), event.as_ref(), at)
            })
            .await
    }

    async fn delete_object(&self, bucket: &str, key: &str, at: SystemTime) -> MetaResult<bool> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.writer.write("delete an object", move |conn| delete_object(conn, &bucket, &key, at)).await
    }

    async fn put_part(
        &self,
        upload_id: &str,
        bucket: &str,
        key: &str,
        part_number: u32,
        blob: &NewBlob,
        at: SystemTime,
    ) -> MetaResult<()> {
        let (upload_id, bucket, key, blob) =
            (upload_id.to_owned(), bucket.to_owned(), key.to_owned(), blob.clone());
        self.writer
            .write("record a part", move |conn| {
                put_part(conn, &upload_id, &bucket, &key, part_number, &blob, at)
            })
            .await
    }

    async fn list_parts(&self, upload_id: &str, bucket: &str, key: &str) -> MetaResult<Vec<StoredPart>> {
        let context = || format!("listing upload {upload_id}");
        // One read transaction: the upload's state and its parts come from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(|e| failed(context(), e))?;
        let open: Option<i64> = sqlx::query_scalar(OPEN_UPLOAD)
            .bind(upload_id)
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
        if open.is_none() {
            return Err(not_open(upload_id, key));
        }
        let rows = sqlx::query(PARTS_OF)
            .bind(upload_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
        tx.commit().await.map_err(|e| failed(context(), e))?;
        rows.iter().map(|row| part_from_row(row, upload_id)).collect()
    }

    async fn complete_upload(
        &self,
        complete: &CompleteCommit,
        guard: Option<&WriteGuard>,
        event: Option<EventBuilder>,
        at: SystemTime,
    ) -> MetaResult<CompleteOutcome> {
        let (complete, guard) = (complete.clone(), guard.cloned());
        self.writer
            .write("complete an upload", move |conn| {
                complete_upload(conn, &complete, guard.as_ref(), event.as_ref(), at)
            })
            .await
    }

    async fn import_legacy(
        &self,
        bucket: &str,
        import: &LegacyImport,
        at: SystemTime,
    ) -> MetaResult<ImportCounts> {
        let (bucket, import) = (bucket.to_owned(), import.clone());
        self.writer
            .write("import the legacy store", move |conn| import_legacy(conn, &bucket, &import, at))
            .await
    }
}

fn put_object(
    conn: &Connection,
    put: &PutCommit,
    guard: Option<&WriteGuard>,
    event: Option<&EventBuilder>,
    at: SystemTime,
) -> MetaResult<Committed> {
    if let Some(guard) = guard {
        check_guard(conn, guard)?;
    }
    if put.forbid_overwrite && current_version(conn, &put.bucket, &put.key)?.is_some() {
        return Err(MetaError::Conflict(format!("object {}/{} exists", put.bucket, put.key)));
    }
    insert_blob(conn, &put.blob.id, put.blob.digests.len, at)?;
    let digests = &put.blob.digests;
    let version = ObjectVersion {
        bucket: put.bucket.clone(),
        key: put.key.clone(),
        version_id: crate::storage::new_blob_id(),
        size: digests.len,
        etag: digests.etag(),
        crc64: digests.crc64,
        content_md5: Some(digests.md5),
        object_type: ObjectType::Normal,
        meta: put.meta.clone(),
        last_modified: at,
        upload_id: None,
    };
    let pieces = [Piece { blob_id: put.blob.id.clone(), size: digests.len }];
    replace_version(conn, &version, &pieces, at)?;
    let media = publish_key(conn, &version, event, at)?;
    Ok(Committed { etag: version.etag, crc64: version.crc64, content_md5: version.content_md5, media })
}

fn delete_object(conn: &Connection, bucket: &str, key: &str, at: SystemTime) -> MetaResult<bool> {
    let source: Option<String> = first(
        conn,
        "SELECT id FROM media WHERE bucket = ? AND object_key = ? AND deleted_at IS NULL AND status = ? LIMIT 1",
        params![bucket, key, MediaStatus::Normal.as_str()],
    )
    .map_err(|e| failed(format!("checking the media of {bucket}/{key}"), e))?;
    if let Some(media_id) = source {
        return Err(MetaError::Refused(format!(
            "the object is the source of media {media_id}; delete the media (DeleteVideo, DeleteImage or \
             DeleteAttachedMedia) to remove it"
        )));
    }
    release_version(conn, bucket, key, at)
}

fn put_part(
    conn: &Connection,
    upload_id: &str,
    bucket: &str,
    key: &str,
    part_number: u32,
    blob: &NewBlob,
    at: SystemTime,
) -> MetaResult<()> {
    require_open(conn, upload_id, bucket, key)?;
    insert_blob(conn, &blob.id, blob.digests.len, at)?;
    let context = || format!("recording part {part_number} of upload {upload_id}");
    let previous: Option<String> = first(
        conn,
        "SELECT blob_id FROM parts WHERE upload_id = ? AND part_number = ?",
        params![upload_id, i64::from(part_number)],
    )
    .map_err(|e| failed(context(), e))?;
    if let Some(previous) = previous {
        release_blobs(conn, std::slice::from_ref(&previous), at)?;
    }
    execute(
        conn,
        "INSERT INTO parts (upload_id, part_number, blob_id, size, md5, crc64, uploaded_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (upload_id, part_number) DO UPDATE SET \
         blob_id = excluded.blob_id, size = excluded.size, md5 = excluded.md5, crc64 = excluded.crc64, \
         uploaded_at = excluded.uploaded_at",
        params![
            upload_id,
            i64::from(part_number),
            blob.id,
            u64_to_db(blob.digests.len),
            &blob.digests.md5[..],
            u64_to_db(blob.digests.crc64),
            millis(at)
        ],
    )
    .map_err(|e| failed(context(), e))?;
    Ok(())
}

fn complete_upload(
    conn: &Connection,
    complete: &CompleteCommit,
    guard: Option<&WriteGuard>,
    event: Option<&EventBuilder>,
    at: SystemTime,
) -> MetaResult<CompleteOutcome> {
    let upload_id = complete.upload_id.as_str();
    let context = || format!("completing upload {upload_id}");
    // The upload comes first, so that a repeated Complete gets its first answer (or NoSuchUpload, as
    // OSS answers for a closed upload) rather than Refused because its media is already Normal.
    let found = rows(
        conn,
        "SELECT state, result_etag, result_crc64, content_type FROM uploads \
         WHERE upload_id = ? AND bucket = ? AND object_key = ?",
        params![upload_id, complete.bucket, complete.key],
        context,
        |row| {
            Ok((
                row.text("state")?,
                row.opt_text("result_etag")?,
                row.opt_u64("result_crc64")?,
                row.text("content_type")?,
            ))
        },
    )?;
    let not_found = || MetaError::NotFound(format!("open upload {upload_id} for {}", complete.key));
    let Some((state, etag, crc64, content_type)) = found.into_iter().next() else { return Err(not_found()) };
    if state != UploadState::Open.as_str() {
        let (Some(etag), Some(crc64)) = (etag, crc64) else { return Err(not_found()) };
        let same = match &complete.listed {
            None => true,
            Some(listed) => {
                let md5s: Option<Vec<[u8; 16]>> = listed.iter().map(|(_, e)| md5_of_etag(e)).collect();
                md5s.is_some_and(|md5s| etags_match(&multipart_etag(md5s.iter()), &etag))
            }
        };
        return if same {
            Ok(CompleteOutcome::Repeated(Committed { etag, crc64, content_md5: None, media: None }))
        } else {
            Err(not_found())
        };
    }
    if let Some(guard) = guard {
        check_guard(conn, guard)?;
    }
    let stored = parts_of(conn, upload_id)?;
    let chosen: Vec<&StoredPart> = match &complete.listed {
        None => stored.iter().collect(),
        Some(listed) => {
            let mut chosen = Vec::with_capacity(listed.len());
            for (number, etag) in listed {
                let found = stored
                    .iter()
                    .find(|p| p.part_number == *number)
                    .filter(|p| etags_match(&p.digests.etag(), etag));
                let Some(found) = found else {
                    return Ok(CompleteOutcome::InvalidPart { part_number: *number, etag: etag.clone() });
                };
                chosen.push(found);
            }
            chosen
        }
    };
    let Some((_, but_last)) = chosen.split_last() else { return Ok(CompleteOutcome::NoParts) };
    if let Some(small) = but_last.iter().find(|p| p.digests.len < complete.min_part_size) {
        return Ok(CompleteOutcome::PartTooSmall { part_number: small.part_number });
    }
    let version = ObjectVersion {
        bucket: complete.bucket.clone(),
        key: complete.key.clone(),
        version_id: crate::storage::new_blob_id(),
        size: chosen.iter().map(|p| p.digests.len).sum(),
        etag: multipart_etag(chosen.iter().map(|p| &p.digests.md5)),
        crc64: chosen.iter().fold(0, |crc, p| crc64::combine(crc, p.digests.crc64, p.digests.len)),
        content_md5: None,
        object_type: ObjectType::Multipart,
        meta: ObjectMeta {
            content_type: Some(content_type).filter(|t| !t.is_empty()),
            user_meta: Vec::new(),
        },
        last_modified: at,
        upload_id: Some(upload_id.to_owned()),
    };
    let pieces: Vec<Piece> =
        chosen.iter().map(|p| Piece { blob_id: p.blob_id.clone(), size: p.digests.len }).collect();
    let unlisted: Vec<String> = stored
        .iter()
        .filter(|p| !chosen.iter().any(|c| c.part_number == p.part_number))
        .map(|p| p.blob_id.clone())
        .collect();
    release_blobs(conn, &unlisted, at)?;
    execute(conn, "DELETE FROM parts WHERE upload_id = ?", [upload_id]).map_err(|e| failed(context(), e))?;
    replace_version(conn, &version, &pieces, at)?;
    execute(
        conn,
        "UPDATE uploads SET state = 'completed', closed_at = ?, result_etag = ?, result_crc64 = ? WHERE upload_id = ?",
        params![millis(at), version.etag, u64_to_db(version.crc64), upload_id],
    )
    .map_err(|e| failed(context(), e))?;
    let media = publish_key(conn, &version, event, at)?;
    Ok(CompleteOutcome::Completed(Committed {
        etag: version.etag,
        crc64: version.crc64,
        content_md5: None,
        media,
    }))
}

fn import_legacy(
    conn: &Connection,
    bucket: &str,
    import: &LegacyImport,
    at: SystemTime,
) -> MetaResult<ImportCounts> {
    let mut counts = ImportCounts::default();
    for (version, pieces) in &import.objects {
        if current_version(conn, bucket, &version.key)?.is_some() {
            counts.skipped += 1;
            continue;
        }
        for piece in pieces {
            insert_blob(conn, &piece.blob_id, piece.size, at)?;
        }
        let version = ObjectVersion { bucket: bucket.to_owned(), ..version.clone() };
        replace_version(conn, &version, pieces, at)?;
        counts.objects += 1;
    }
    for (upload_id, parts) in &import.parts {
        let open: Option<i64> =
            first(conn, "SELECT 1 FROM uploads WHERE upload_id = ? AND state = 'open'", [upload_id])
                .map_err(|e| failed(format!("importing upload {upload_id}"), e))?;
        let known = parts_of(conn, upload_id)?;
        for part in parts {
            if open.is_none() || known.iter().any(|k| k.part_number == part.part_number) {
                counts.skipped += 1;
                continue;
            }
            insert_blob(conn, &part.blob_id, part.digests.len, at)?;
            execute(
                conn,
                "INSERT INTO parts (upload_id, part_number, blob_id, size, md5, crc64, uploaded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![
                    upload_id,
                    i64::from(part.part_number),
                    part.blob_id,
                    u64_to_db(part.digests.len),
                    &part.digests.md5[..],
                    u64_to_db(part.digests.crc64),
                    millis(part.uploaded_at)
                ],
            )
            .map_err(|e| failed(format!("importing part {} of upload {upload_id}", part.part_number), e))?;
            counts.parts += 1;
        }
    }
    Ok(counts)
}

/// Whether an upload is open for a bucket and key (`?` upload id, bucket, key): a row, or none.
const OPEN_UPLOAD: &str =
    "SELECT 1 FROM uploads WHERE upload_id = ? AND bucket = ? AND object_key = ? AND state = 'open'";

/// An upload's parts in order (`?` upload id).
const PARTS_OF: &str = "SELECT * FROM parts WHERE upload_id = ? ORDER BY part_number";

fn not_open(upload_id: &str, key: &str) -> MetaError {
    MetaError::NotFound(format!("open upload {upload_id} for {key}"))
}

/// Fails with NotFound unless `upload_id` is open and for `bucket`/`key`.
fn require_open(conn: &Connection, upload_id: &str, bucket: &str, key: &str) -> MetaResult<()> {
    let open: Option<i64> = first(conn, OPEN_UPLOAD, params![upload_id, bucket, key])
        .map_err(|e| failed(format!("checking upload {upload_id}"), e))?;
    open.map(|_| ()).ok_or_else(|| not_open(upload_id, key))
}

fn parts_of(conn: &Connection, upload_id: &str) -> MetaResult<Vec<StoredPart>> {
    rows(
        conn,
        PARTS_OF,
        [upload_id],
        || format!("reading the parts of upload {upload_id}"),
        |row| part_from_row(row, upload_id),
    )
}

/// The version id `bucket`/`key` names, if any.
fn current_version(conn: &Connection, bucket: &str, key: &str) -> MetaResult<Option<String>> {
    first(conn, "SELECT version_id FROM objects WHERE bucket = ? AND object_key = ?", params![bucket, key])
        .map_err(|e| failed(format!("reading object {bucket}/{key}"), e))
}

/// Records a blob a commit is about to reference. A blob the collector has claimed (it was old and
/// unreferenced when the collector looked) cannot come back: the commit fails instead.
fn insert_blob(conn: &Connection, id: &str, size: u64, at: SystemTime) -> MetaResult<()> {
    execute(
        conn,
        "INSERT INTO blobs (id, size, state, created_at) VALUES (?, ?, 'live', ?)",
        params![id, u64_to_db(size), millis(at)],
    )
    .map_err(|e| {
        if writer::unique_violated(&e) {
            failed(
                format!("recording blob {id}"),
                "the collector already claimed this blob (its commit came after the grace period); retry the request",
            )
        } else {
            failed(format!("recording blob {id}"), e)
        }
    })?;
    Ok(())
}

/// Makes `version` (made of `pieces`) what its key names, releasing the version it replaces.
fn replace_version(
    conn: &Connection,
    version: &ObjectVersion,
    pieces: &[Piece],
    at: SystemTime,
) -> MetaResult<()> {
    let (bucket, key) = (&version.bucket, &version.key);
    release_version(conn, bucket, key, at)?;
    let context = || format!("recording object {bucket}/{key}");
    let user_meta = user_meta_json(version)?;
    execute(
        conn,
        "INSERT INTO objects (bucket, object_key, version_id, size, etag, crc64, content_md5, object_type, \
         content_type, user_meta, last_modified, upload_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            bucket,
            key,
            version.version_id,
            u64_to_db(version.size),
            version.etag,
            u64_to_db(version.crc64),
            version.content_md5.map(|md5| md5.to_vec()),
            version.object_type.as_str(),
            version.meta.content_type,
            user_meta,
            millis(version.last_modified),
            version.upload_id
        ],
    )
    .map_err(|e| failed(context(), e))?;
    for (seq, piece) in pieces.iter().enumerate() {
        execute(
            conn,
            "INSERT INTO object_blobs (version_id, seq, blob_id, size) VALUES (?, ?, ?, ?)",
            params![
                version.version_id,
                i64::try_from(seq).unwrap_or(i64::MAX),
                piece.blob_id,
                u64_to_db(piece.size)
            ],
        )
        .map_err(|e| failed(context(), e))?;
    }
    Ok(())
}

/// Removes what `bucket`/`key` names, its blobs becoming garbage; `false` if it named nothing.
pub(super) fn release_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    at: SystemTime,
) -> MetaResult<bool> {
    let Some(version_id) = current_version(conn, bucket, key)? else { return Ok(false) };
    let context = || format!("releasing object {bucket}/{key}");
    let blobs: Vec<String> =
        all(conn, "DELETE FROM object_blobs WHERE version_id = ? RETURNING blob_id", [&version_id])
            .map_err(|e| failed(context(), e))?;
    release_blobs(conn, &blobs, at)?;
    execute(conn, "DELETE FROM objects WHERE version_id = ?", [&version_id])
        .map_err(|e| failed(context(), e))?;
    Ok(true)
}

/// Closes an upload's parts: their rows go and their blobs become garbage.
pub(super) fn release_parts(conn: &Connection, upload_id: &str, at: SystemTime) -> MetaResult<()> {
    let blobs: Vec<String> =
        all(conn, "DELETE FROM parts WHERE upload_id = ? RETURNING blob_id", [upload_id])
            .map_err(|e| failed(format!("releasing the parts of upload {upload_id}"), e))?;
    release_blobs(conn, &blobs, at)
}

fn release_blobs(conn: &Connection, ids: &[String], at: SystemTime) -> MetaResult<()> {
    for id in ids {
        execute(
            conn,
            "UPDATE blobs SET state = 'garbage', released_at = ? WHERE id = ? AND state = 'live'",
            params![millis(at), id],
        )
        .map_err(|e| failed(format!("releasing blob {id}"), e))?;
    }
    Ok(())
}

/// After `version` became what its key names: the live media item that names the key (`Uploading`, or
/// `Normal` being overwritten) takes the object's figures and turns `Normal`, with its event.
fn publish_key(
    conn: &Connection,
    version: &ObjectVersion,
    event: Option<&EventBuilder>,
    at: SystemTime,
) -> MetaResult<Option<Media>> {
    let published = rows(
        conn,
        "UPDATE media SET status = ?1, size = ?2, etag = ?3, crc64 = ?4, completed_at = ?5, modified_at = ?5 \
         WHERE id = (SELECT id FROM media WHERE bucket = ?6 AND object_key = ?7 AND deleted_at IS NULL \
         AND status IN (?8, ?1) LIMIT 1) RETURNING *",
        params![
            MediaStatus::Normal.as_str(),
            u64_to_db(version.size),
            version.etag,
            u64_to_db(version.crc64),
            millis(at),
            version.bucket,
            version.key,
            MediaStatus::Uploading.as_str()
        ],
        || format!("publishing the media of {}/{}", version.bucket, version.key),
        |row| media_from_row(row),
    )?;
    let Some(media) = published.into_iter().next() else { return Ok(None) };
    if let Some(new) = event.and_then(|build| build(&media)) {
        insert_event(conn, &new)?;
    }
    Ok(Some(media))
}

fn insert_event(conn: &Connection, event: &crate::meta::NewEvent) -> MetaResult<()> {
    execute(
        conn,
        "INSERT INTO events (id, media_id, event_type, payload, callback_url, created_at, next_attempt_at, state) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
        params![
            event.id,
            event.media_id,
            event.event_type,
            event.payload,
            event.callback_url,
            millis(event.created_at),
            millis(event.created_at)
        ],
    )
    .map_err(|e| failed(format!("queueing event {} of media {}", event.event_type, event.media_id), e))?;
    Ok(())
}

/// Checks the revocation rules of vod-api.md §12.2 inside the caller's transaction: the issuing key is
/// known and not revoked, and an upload credential's media exists, is not deleted and is `Uploading` (or
/// `Normal`, for an overwrite credential).
pub(super) fn check_guard(conn: &Connection, guard: &WriteGuard) -> MetaResult<()> {
    let key_id = &guard.issuing_key_id;
    // One statement for both rows. Known key: `known`; its revocation: `revoked`; the media's status,
    // when there is a media id: `status`.
    let (known, revoked, status): (bool, bool, Option<String>) = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM access_keys WHERE id = ?1), \
             EXISTS (SELECT 1 FROM access_keys WHERE id = ?1 AND revoked_at IS NOT NULL), \
             (SELECT status FROM media WHERE id = ?2 AND deleted_at IS NULL)",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![key_id, guard.media_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        })
        .map_err(|e| failed(format!("checking AccessKey {key_id}"), e))?;
    if !known {
        return Err(MetaError::Refused(format!("AccessKey {key_id} is unknown")));
    }
    if revoked {
        return Err(MetaError::Refused(format!("AccessKey {key_id} was revoked")));
    }
    let Some(media_id) = &guard.media_id else { return Ok(()) };
    let status = status
        .ok_or_else(|| MetaError::Refused(format!("media {media_id} does not exist or was deleted")))?;
    let allowed = status == MediaStatus::Uploading.as_str()
        || (guard.overwrite && status == MediaStatus::Normal.as_str());
    if !allowed {
        return Err(MetaError::Refused(format!("media {media_id} is {status}, no longer Uploading")));
    }
    Ok(())
}
