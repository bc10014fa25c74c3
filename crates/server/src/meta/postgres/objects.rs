//! PostgreSQL: what each key names, the parts of open uploads, and the commits that change them
//! ([`ObjectRepo`]). Every commit is one transaction that takes its locks in the module's order (the key,
//! the guard's rows, the upload), checks its guards and then switches, or rolls back having changed
//! nothing; the blobs a commit stops referencing become garbage for the collector in the same transaction.
//! The helpers at the end are shared with the repositories that release objects or parts (aborting an
//! upload, deleting media).

use vodup_proto::crc64;
use vodup_proto::oss::part::{etags_match, md5_of_etag, multipart_etag};

use super::*;
use crate::meta::{
    Committed, CompleteCommit, CompleteOutcome, ImportCounts, LegacyImport, NewBlob, ObjectMeta, ObjectRepo,
    ObjectType, ObjectVersion, Piece, PutCommit, StoredPart,
};

#[async_trait::async_trait]
impl ObjectRepo for PostgresMeta {
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        pieces: bool,
    ) -> MetaResult<Option<(ObjectVersion, Vec<Piece>)>> {
        let context = || format!("reading object {bucket}/{key}");
        // One snapshot: the version and its pieces agree even while a commit replaces them.
        let mut tx = self.begin_read("read an object").await?;
        let row = sqlx::query("SELECT * FROM objects WHERE bucket = $1 AND object_key = $2")
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
                sqlx::query("SELECT blob_id, size FROM object_blobs WHERE version_id = $1 ORDER BY seq")
                    .bind(&version.version_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| failed(context(), e))?;
            for row in &rows {
                list.push(Piece { blob_id: row.text("blob_id")?, size: row.opt_u64("size")?.unwrap_or(0) });
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
        in_transaction!(self, "commit a PutObject", |tx| {
            lock_key(tx, &put.bucket, &put.key).await?;
            if let Some(guard) = guard {
                check_guard(tx, guard).await?;
            }
            if put.forbid_overwrite && current_version(tx, &put.bucket, &put.key).await?.is_some() {
                return Err(MetaError::Conflict(format!("object {}/{} exists", put.bucket, put.key)));
            }
            insert_blob(tx, &put.blob.id, put.blob.digests.len, at).await?;
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
            replace_version(tx, &version, &pieces, at).await?;
            let media = publish_key(tx, &version, event.as_ref(), at).await?;
            Ok(Committed {
                etag: version.etag,
                crc64: version.crc64,
                content_md5: version.content_md5,
                media,
            })
        })
    }

    async fn delete_object(&self, bucket: &str, key: &str, at: SystemTime) -> MetaResult<bool> {
        in_transaction!(self, "delete an object", |tx| {
            // With the key's lock held no commit can turn its media Normal in between.
            lock_key(tx, bucket, key).await?;
            let source: Option<String> = sqlx::query_scalar(
                "SELECT id FROM media WHERE bucket = $1 AND object_key = $2 AND deleted_at IS NULL \
                 AND status = $3 LIMIT 1",
            )
            .bind(bucket)
            .bind(key)
            .bind(MediaStatus::Normal.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| failed(format!("checking the media of {bucket}/{key}"), e))?;
            if let Some(media_id) = source {
                return Err(MetaError::Refused(format!(
                    "the object is the source of media {media_id}; delete the media (DeleteVideo, DeleteImage \
                     or DeleteAttachedMedia) to remove it"
                )));
            }
            release_version(tx, bucket, key, at).await
        })
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
        let context = || format!("recording part {part_number} of upload {upload_id}");
        in_transaction!(self, "record a part", |tx| {
            lock_part(tx, upload_id, part_number).await?;
            // FOR SHARE: parts of one upload are recorded side by side, while a Complete or an Abort
            // (FOR UPDATE) waits for them, or they for it and then find the upload closed.
            require_open(tx, upload_id, bucket, key, "FOR SHARE").await?;
            insert_blob(tx, &blob.id, blob.digests.len, at).await?;
            let previous: Option<String> =
                sqlx::query_scalar("SELECT blob_id FROM parts WHERE upload_id = $1 AND part_number = $2")
                    .bind(upload_id)
                    .bind(i64::from(part_number))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| failed(context(), e))?;
            if let Some(previous) = previous {
                release_blobs(tx, std::slice::from_ref(&previous), at).await?;
            }
            sqlx::query(
                "INSERT INTO parts (upload_id, part_number, blob_id, size, md5, crc64, uploaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (upload_id, part_number) DO UPDATE SET \
                 blob_id = excluded.blob_id, size = excluded.size, md5 = excluded.md5, crc64 = excluded.crc64, \
                 uploaded_at = excluded.uploaded_at",
            )
            .bind(upload_id)
            .bind(i64::from(part_number))
            .bind(&blob.id)
            .bind(u64_to_db(blob.digests.len))
            .bind(&blob.digests.md5[..])
            .bind(u64_to_db(blob.digests.crc64))
            .bind(millis(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
            Ok(())
        })
    }

    async fn list_parts(&self, upload_id: &str, bucket: &str, key: &str) -> MetaResult<Vec<StoredPart>> {
        let context = || format!("listing upload {upload_id}");
        let mut tx = self.begin_read("list the parts of an upload").await?;
        require_open(&mut tx, upload_id, bucket, key, "").await?;
        let parts = parts_of(&mut tx, upload_id).await?;
        tx.commit().await.map_err(|e| failed(context(), e))?;
        Ok(parts)
    }

    async fn complete_upload(
        &self,
        complete: &CompleteCommit,
        guard: Option<&WriteGuard>,
        event: Option<EventBuilder>,
        at: SystemTime,
    ) -> MetaResult<CompleteOutcome> {
        let upload_id = complete.upload_id.as_str();
        let context = || format!("completing upload {upload_id}");
        in_transaction!(self, "complete an upload", |tx| {
            lock_key(tx, &complete.bucket, &complete.key).await?;
            // The guard's rows are locked before the upload's (the module's order) but judged after it, so
            // that a repeated Complete gets its first answer (or NoSuchUpload, as OSS answers for a closed
            // upload) rather than Refused because its media is already Normal.
            let verdict = match guard {
                Some(guard) => Some(check_guard(tx, guard).await),
                None => None,
            };
            let row = sqlx::query(
                "SELECT state, result_etag, result_crc64, content_type FROM uploads \
                 WHERE upload_id = $1 AND bucket = $2 AND object_key = $3 FOR UPDATE",
            )
            .bind(upload_id)
            .bind(&complete.bucket)
            .bind(&complete.key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
            let not_found = || MetaError::NotFound(format!("open upload {upload_id} for {}", complete.key));
            let Some(row) = row else { return Err(not_found()) };
            let state: String = column(&row, "state")?;
            if state != UploadState::Open.as_str() {
                let etag: Option<String> = column(&row, "result_etag")?;
                let crc64 = row.opt_u64("result_crc64")?;
                let (Some(etag), Some(crc64)) = (etag, crc64) else { return Err(not_found()) };
                let same = match &complete.listed {
                    None => true,
                    Some(listed) => {
                        let md5s: Option<Vec<[u8; 16]>> =
                            listed.iter().map(|(_, e)| md5_of_etag(e)).collect();
                        md5s.is_some_and(|md5s| etags_match(&multipart_etag(md5s.iter()), &etag))
                    }
                };
                return if same {
                    Ok(CompleteOutcome::Repeated(Committed { etag, crc64, content_md5: None, media: None }))
                } else {
                    Err(not_found())
                };
            }
            if let Some(verdict) = verdict {
                verdict?;
            }
            let stored = parts_of(tx, upload_id).await?;
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
                            return Ok(CompleteOutcome::InvalidPart {
                                part_number: *number,
                                etag: etag.clone(),
                            });
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
            let content_type: String = column(&row, "content_type")?;
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
            release_blobs(tx, &unlisted, at).await?;
            sqlx::query("DELETE FROM parts WHERE upload_id = $1")
                .bind(upload_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(context(), e))?;
            replace_version(tx, &version, &pieces, at).await?;
            sqlx::query(
                "UPDATE uploads SET state = 'completed', closed_at = $1, result_etag = $2, result_crc64 = $3 \
                 WHERE upload_id = $4",
            )
            .bind(millis(at))
            .bind(&version.etag)
            .bind(u64_to_db(version.crc64))
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
            let media = publish_key(tx, &version, event.as_ref(), at).await?;
            Ok(CompleteOutcome::Completed(Committed {
                etag: version.etag,
                crc64: version.crc64,
                content_md5: None,
                media,
            }))
        })
    }

    async fn import_legacy(
        &self,
        bucket: &str,
        import: &LegacyImport,
        at: SystemTime,
    ) -> MetaResult<ImportCounts> {
        in_transaction!(self, "import the legacy store", |tx| {
            let mut counts = ImportCounts::default();
            for (version, pieces) in &import.objects {
                lock_key(tx, bucket, &version.key).await?;
                if current_version(tx, bucket, &version.key).await?.is_some() {
                    counts.skipped += 1;
                    continue;
                }
                for piece in pieces {
                    insert_blob(tx, &piece.blob_id, piece.size, at).await?;
                }
                let version = ObjectVersion { bucket: bucket.to_owned(), ..version.clone() };
                replace_version(tx, &version, pieces, at).await?;
                counts.objects += 1;
            }
            for (upload_id, parts) in &import.parts {
                let open: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM uploads WHERE upload_id = $1 AND state = 'open' FOR SHARE",
                )
                .bind(upload_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| failed(format!("importing upload {upload_id}"), e))?;
                let known = parts_of(tx, upload_id).await?;
                for part in parts {
                    if open.is_none() || known.iter().any(|k| k.part_number == part.part_number) {
                        counts.skipped += 1;
                        continue;
                    }
                    insert_blob(tx, &part.blob_id, part.digests.len, at).await?;
                    sqlx::query(
                        "INSERT INTO parts (upload_id, part_number, blob_id, size, md5, crc64, uploaded_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(upload_id)
                    .bind(i64::from(part.part_number))
                    .bind(&part.blob_id)
                    .bind(u64_to_db(part.digests.len))
                    .bind(&part.digests.md5[..])
                    .bind(u64_to_db(part.digests.crc64))
                    .bind(millis(part.uploaded_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        failed(format!("importing part {} of upload {upload_id}", part.part_number), e)
                    })?;
                    counts.parts += 1;
                }
            }
            Ok(counts)
        })
    }
}

/// Fails with NotFound unless `upload_id` is open and for `bucket`/`key`; `lock` is the row lock to take
/// (`FOR SHARE`, or nothing in a read-only snapshot).
async fn require_open(
    conn: &mut PgConnection,
    upload_id: &str,
    bucket: &str,
    key: &str,
    lock: &str,
) -> MetaResult<()> {
    let sql = format!(
        "SELECT 1 FROM uploads WHERE upload_id = $1 AND bucket = $2 AND object_key = $3 AND state = 'open' {lock}"
    );
    let open: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(upload_id)
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| failed(format!("checking upload {upload_id}"), e))?;
    open.map(|_| ()).ok_or_else(|| MetaError::NotFound(format!("open upload {upload_id} for {key}")))
}

async fn parts_of(conn: &mut PgConnection, upload_id: &str) -> MetaResult<Vec<StoredPart>> {
    let rows = sqlx::query("SELECT * FROM parts WHERE upload_id = $1 ORDER BY part_number")
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| failed(format!("reading the parts of upload {upload_id}"), e))?;
    rows.iter().map(|row| part_from_row(row, upload_id)).collect()
}

/// The version id `bucket`/`key` names, if any.
async fn current_version(conn: &mut PgConnection, bucket: &str, key: &str) -> MetaResult<Option<String>> {
    sqlx::query_scalar("SELECT version_id FROM objects WHERE bucket = $1 AND object_key = $2")
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| failed(format!("reading object {bucket}/{key}"), e))
}

/// Records a blob a commit is about to reference. A blob the collector has claimed (it was old and
/// unreferenced when the collector looked) cannot come back: the commit fails instead.
async fn insert_blob(conn: &mut PgConnection, id: &str, size: u64, at: SystemTime) -> MetaResult<()> {
    sqlx::query("INSERT INTO blobs (id, size, state, created_at) VALUES ($1, $2, 'live', $3)")
        .bind(id)
        .bind(u64_to_db(size))
        .bind(millis(at))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
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

/// Makes `version` (made of `pieces`) what its key names, releasing the version it replaces. The caller
/// holds the key's lock.
async fn replace_version(
    conn: &mut PgConnection,
    version: &ObjectVersion,
    pieces: &[Piece],
    at: SystemTime,
) -> MetaResult<()> {
    let (bucket, key) = (&version.bucket, &version.key);
    release_version(conn, bucket, key, at).await?;
    let context = || format!("recording object {bucket}/{key}");
    let user_meta = user_meta_json(version)?;
    sqlx::query(
        "INSERT INTO objects (bucket, object_key, version_id, size, etag, crc64, content_md5, object_type, \
         content_type, user_meta, last_modified, upload_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(bucket)
    .bind(key)
    .bind(&version.version_id)
    .bind(u64_to_db(version.size))
    .bind(&version.etag)
    .bind(u64_to_db(version.crc64))
    .bind(version.content_md5.map(|md5| md5.to_vec()))
    .bind(version.object_type.as_str())
    .bind(&version.meta.content_type)
    .bind(user_meta)
    .bind(millis(version.last_modified))
    .bind(&version.upload_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| failed(context(), e))?;
    // One statement for all pieces: a Complete of 10,000 parts is one round trip, not 10,000.
    let seqs: Vec<i64> = (0..).take(pieces.len()).collect();
    let blob_ids: Vec<&str> = pieces.iter().map(|p| p.blob_id.as_str()).collect();
    let sizes: Vec<i64> = pieces.iter().map(|p| u64_to_db(p.size)).collect();
    sqlx::query(
        "INSERT INTO object_blobs (version_id, seq, blob_id, size) \
         SELECT $1, seq, blob_id, size FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BIGINT[]) AS p (seq, blob_id, size)",
    )
    .bind(&version.version_id)
    .bind(&seqs)
    .bind(&blob_ids)
    .bind(&sizes)
    .execute(&mut *conn)
    .await
    .map_err(|e| failed(context(), e))?;
    Ok(())
}

/// Removes what `bucket`/`key` names, its blobs becoming garbage; `false` if it named nothing.
pub(super) async fn release_version(
    conn: &mut PgConnection,
    bucket: &str,
    key: &str,
    at: SystemTime,
) -> MetaResult<bool> {
    let context = || format!("releasing object {bucket}/{key}");
    let version_id: Option<String> =
        sqlx::query_scalar("DELETE FROM objects WHERE bucket = $1 AND object_key = $2 RETURNING version_id")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed(context(), e))?;
    let Some(version_id) = version_id else { return Ok(false) };
    let blobs: Vec<String> =
        sqlx::query_scalar("DELETE FROM object_blobs WHERE version_id = $1 RETURNING blob_id")
            .bind(&version_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| failed(context(), e))?;
    release_blobs(conn, &blobs, at).await?;
    Ok(true)
}

/// Closes an upload's parts: their rows go and their blobs become garbage.
pub(super) async fn release_parts(
    conn: &mut PgConnection,
    upload_id: &str,
    at: SystemTime,
) -> MetaResult<()> {
    let blobs: Vec<String> = sqlx::query_scalar("DELETE FROM parts WHERE upload_id = $1 RETURNING blob_id")
        .bind(upload_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| failed(format!("releasing the parts of upload {upload_id}"), e))?;
    release_blobs(conn, &blobs, at).await
}

async fn release_blobs(conn: &mut PgConnection, ids: &[String], at: SystemTime) -> MetaResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE blobs SET state = 'garbage', released_at = $1 WHERE id = ANY($2) AND state = 'live'")
        .bind(millis(at))
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(|e| failed(format!("releasing {} blobs", ids.len()), e))?;
    Ok(())
}

/// After `version` became what its key names: the live media item that names the key (`Uploading`, or
/// `Normal` being overwritten) takes the object's figures and turns `Normal`, with its event. One
/// statement finds and changes it, so a media deleted meanwhile is not touched.
async fn publish_key(
    conn: &mut PgConnection,
    version: &ObjectVersion,
    event: Option<&EventBuilder>,
    at: SystemTime,
) -> MetaResult<Option<Media>> {
    let live = "deleted_at IS NULL AND status IN ($7, $8)";
    let sql = format!(
        "UPDATE media SET status = $1, size = $2, etag = $3, crc64 = $4, completed_at = $5, modified_at = $5 \
         WHERE id = (SELECT id FROM media WHERE bucket = $6 AND object_key = $9 AND {live} LIMIT 1) AND {live} \
         RETURNING *"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(MediaStatus::Normal.as_str())
        .bind(u64_to_db(version.size))
        .bind(&version.etag)
        .bind(u64_to_db(version.crc64))
        .bind(millis(at))
        .bind(&version.bucket)
        .bind(MediaStatus::Uploading.as_str())
        .bind(MediaStatus::Normal.as_str())
        .bind(&version.key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| failed(format!("publishing the media of {}/{}", version.bucket, version.key), e))?;
    let Some(row) = row else { return Ok(None) };
    let media = media_from_row(&row)?;
    if let Some(new) = event.and_then(|build| build(&media)) {
        insert_event(conn, &new).await?;
    }
    Ok(Some(media))
}

async fn insert_event(conn: &mut PgConnection, event: &crate::meta::NewEvent) -> MetaResult<()> {
    sqlx::query(
        "INSERT INTO events (id, media_id, event_type, payload, callback_url, created_at, next_attempt_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 'pending')",
    )
    .bind(&event.id)
    .bind(&event.media_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .bind(&event.callback_url)
    .bind(millis(event.created_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| failed(format!("queueing event {} of media {}", event.event_type, event.media_id), e))?;
    Ok(())
}

/// Checks the revocation rules of vod-api.md §12.2 inside the caller's transaction: the issuing key is
/// known and not revoked, and an upload credential's media exists, is not deleted and is `Uploading` (or
/// `Normal`, for an overwrite credential). Both rows stay locked `FOR SHARE` until the transaction ends, so
/// a revocation or a deletion (an `UPDATE` of the row) is ordered after this commit, or this check after
/// it (rule 2 of the module).
pub(super) async fn check_guard(conn: &mut PgConnection, guard: &WriteGuard) -> MetaResult<()> {
    let key_id = &guard.issuing_key_id;
    let revoked_at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM access_keys WHERE id = $1 FOR SHARE")
            .bind(key_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed(format!("checking AccessKey {key_id}"), e))?;
    match revoked_at {
        None => return Err(MetaError::Refused(format!("AccessKey {key_id} is unknown"))),
        Some(Some(_)) => return Err(MetaError::Refused(format!("AccessKey {key_id} was revoked"))),
        Some(None) => {}
    }
    let Some(media_id) = &guard.media_id else { return Ok(()) };
    // A row being deleted is waited for and then re-read: once deleted it no longer matches, and the
    // commit is refused.
    let status: String =
        sqlx::query_scalar("SELECT status FROM media WHERE id = $1 AND deleted_at IS NULL FOR SHARE")
            .bind(media_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed(format!("checking media {media_id}"), e))?
            .ok_or_else(|| MetaError::Refused(format!("media {media_id} does not exist or was deleted")))?;
    let allowed = status == MediaStatus::Uploading.as_str()
        || (guard.overwrite && status == MediaStatus::Normal.as_str());
    if !allowed {
        return Err(MetaError::Refused(format!("media {media_id} is {status}, no longer Uploading")));
    }
    Ok(())
}
