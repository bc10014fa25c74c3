//! SQLite: multipart uploads and the commits that publish media, with their write guards
//! ([`UploadRepo`]).

use super::media::media_from_row;
use super::*;

#[async_trait::async_trait]
impl UploadRepo for SqliteMeta {
    async fn create_upload(&self, upload: &NewUpload, guard: Option<&WriteGuard>) -> MetaResult<()> {
        let mut tx = self.begin_write("initiate an upload").await?;
        if let Some(guard) = guard {
            check_guard(&mut tx, guard).await?;
        }
        sqlx::query(
            "INSERT INTO uploads (upload_id, bucket, object_key, media_id, content_type, initiated_at, state) \
             VALUES (?, ?, ?, ?, ?, ?, 'open')",
        )
        .bind(&upload.upload_id)
        .bind(&upload.bucket)
        .bind(&upload.key)
        .bind(&upload.media_id)
        .bind(&upload.content_type)
        .bind(millis(upload.initiated_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                MetaError::Conflict(format!("upload {} already exists", upload.upload_id))
            } else if e.as_database_error().is_some_and(sqlx::error::DatabaseError::is_foreign_key_violation) {
                let media_id = upload.media_id.as_deref().unwrap_or_default();
                MetaError::NotFound(format!("media {media_id} of upload {}", upload.upload_id))
            } else {
                failed(format!("recording upload {}", upload.upload_id), e)
            }
        })?;
        tx.commit().await.map_err(|e| failed(format!("committing upload {}", upload.upload_id), e))
    }

    async fn get_upload(&self, upload_id: &str) -> MetaResult<Option<Upload>> {
        sqlx::query("SELECT * FROM uploads WHERE upload_id = ?")
            .bind(upload_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(format!("reading upload {upload_id}"), e))?
            .map(|row| upload_from_row(&row))
            .transpose()
    }

    async fn list_open_uploads(&self, query: &UploadQuery) -> MetaResult<Vec<Upload>> {
        // Prefix by `substr` rather than LIKE: LIKE folds ASCII case and treats `%` and `_` as wildcards,
        // and OSS prefixes are literal bytes. `object_key >= prefix` lets the index start at the prefix.
        // An upload id marker only counts together with its key marker (OSS ListMultipartUploads).
        let rows = sqlx::query(
            "SELECT * FROM uploads WHERE bucket = ? AND state = 'open' \
             AND object_key >= ? AND substr(object_key, 1, length(?)) = ? \
             AND (object_key > ? OR (? <> '' AND object_key = ? AND upload_id > ?)) \
             ORDER BY object_key, upload_id LIMIT ?",
        )
        .bind(&query.bucket)
        .bind(&query.prefix)
        .bind(&query.prefix)
        .bind(&query.prefix)
        .bind(&query.key_marker)
        .bind(&query.upload_id_marker)
        .bind(&query.key_marker)
        .bind(&query.upload_id_marker)
        // One more than asked, so the caller can tell the listing is truncated.
        .bind(i64::from(query.max) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed(format!("listing open uploads of bucket {}", query.bucket), e))?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn abort_upload(&self, upload_id: &str, at: SystemTime) -> MetaResult<()> {
        let done = sqlx::query(
            "UPDATE uploads SET state = 'aborted', closed_at = ? WHERE upload_id = ? AND state = 'open'",
        )
        .bind(millis(at))
        .bind(upload_id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("aborting upload {upload_id}"), e))?;
        if done.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("open upload {upload_id}")));
        }
        Ok(())
    }

    async fn stale_uploads(&self, before: SystemTime, limit: u32) -> MetaResult<Vec<Upload>> {
        sqlx::query(
            "SELECT * FROM uploads WHERE state = 'open' AND initiated_at < ? ORDER BY initiated_at, upload_id LIMIT ?",
        )
        .bind(millis(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("listing stale uploads", e))?
        .iter()
        .map(upload_from_row)
        .collect()
    }

    async fn fail_stale_media(&self, before: SystemTime, at: SystemTime) -> MetaResult<Vec<String>> {
        sqlx::query_scalar(
            "UPDATE media SET status = ?, modified_at = ? \
             WHERE status = ? AND created_at < ? AND deleted_at IS NULL RETURNING id",
        )
        .bind(MediaStatus::UploadFail.as_str())
        .bind(millis(at))
        .bind(MediaStatus::Uploading.as_str())
        .bind(millis(before))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("failing stale media", e))
    }

    async fn complete_object(
        &self,
        upload_id: Option<&str>,
        object: &CompletedObject,
        guard: Option<&WriteGuard>,
        event: Option<&EventBuilder<'_>>,
        at: SystemTime,
    ) -> MetaResult<Option<Media>> {
        let mut tx = self.begin_write("complete an object").await?;
        // The upload comes first so a retried CompleteMultipartUpload reports NotFound (NoSuchUpload), as
        // OSS does, rather than Refused because its media is already Normal. Any error drops `tx`, which
        // rolls every step back.
        if let Some(upload_id) = upload_id {
            let closed = sqlx::query(
                "UPDATE uploads SET state = 'completed', closed_at = ? \
                 WHERE upload_id = ? AND state = 'open' AND bucket = ? AND object_key = ?",
            )
            .bind(millis(at))
            .bind(upload_id)
            .bind(&object.bucket)
            .bind(&object.key)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(format!("completing upload {upload_id}"), e))?;
            if closed.rows_affected() == 0 {
                return Err(MetaError::NotFound(format!(
                    "open upload {upload_id} for {}/{}",
                    object.bucket, object.key
                )));
            }
        }
        let mut published = None;
        if let Some(guard) = guard {
            let (bucket, object_key) = check_guard(&mut tx, guard).await?;
            // Other keys of the media (m3u8 segments under its prefix) are stored without changing it.
            if bucket == object.bucket && object_key == object.key {
                published = publish_media(&mut tx, &guard.media_id, object, event, at).await?;
            }
        }
        tx.commit().await.map_err(|e| {
            failed(format!("committing the completion of {}/{}", object.bucket, object.key), e)
        })?;
        Ok(published)
    }

    async fn uploading_media(&self, limit: u32) -> MetaResult<Vec<Media>> {
        sqlx::query(
            "SELECT * FROM media WHERE status = ? AND deleted_at IS NULL ORDER BY created_at, id LIMIT ?",
        )
        .bind(MediaStatus::Uploading.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("listing media still uploading", e))?
        .iter()
        .map(media_from_row)
        .collect()
    }

    async fn recover_object(
        &self,
        upload_id: Option<&str>,
        media_id: &str,
        object: &CompletedObject,
        event: Option<&EventBuilder<'_>>,
        at: SystemTime,
    ) -> MetaResult<Option<Media>> {
        let mut tx = self.begin_write("recover a completion").await?;
        if let Some(upload_id) = upload_id {
            sqlx::query(
                "UPDATE uploads SET state = 'completed', closed_at = ? WHERE upload_id = ? AND state = 'open'",
            )
            .bind(millis(at))
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(format!("completing upload {upload_id}"), e))?;
        }
        let uploading: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM media WHERE id = ? AND status = ? AND deleted_at IS NULL AND bucket = ? AND object_key = ?",
        )
        .bind(media_id)
        .bind(MediaStatus::Uploading.as_str())
        .bind(&object.bucket)
        .bind(&object.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| failed(format!("checking media {media_id}"), e))?;
        let published = match uploading {
            Some(_) => publish_media(&mut tx, media_id, object, event, at).await?,
            None => None,
        };
        tx.commit().await.map_err(|e| failed(format!("committing the recovery of media {media_id}"), e))?;
        Ok(published)
    }
}

/// Moves a media item to `Normal` with its object's attributes and queues its event, inside `tx`.
async fn publish_media(
    conn: &mut SqliteConnection,
    media_id: &str,
    object: &CompletedObject,
    event: Option<&EventBuilder<'_>>,
    at: SystemTime,
) -> MetaResult<Option<Media>> {
    let row = sqlx::query(
        "UPDATE media SET status = ?, size = ?, etag = ?, crc64 = ?, completed_at = ?, modified_at = ? \
         WHERE id = ? RETURNING *",
    )
    .bind(MediaStatus::Normal.as_str())
    .bind(u64_to_db(object.size))
    .bind(&object.etag)
    .bind(u64_to_db(object.crc64))
    .bind(millis(at))
    .bind(millis(at))
    .bind(media_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| failed(format!("publishing media {media_id}"), e))?;
    let media = media_from_row(&row)?;
    if let Some(new) = event.and_then(|build| build(&media)) {
        insert_event(&mut *conn, &new).await?;
    }
    Ok(Some(media))
}

async fn insert_event(conn: &mut SqliteConnection, event: &crate::meta::NewEvent) -> MetaResult<()> {
    sqlx::query(
        "INSERT INTO events (id, media_id, event_type, payload, callback_url, created_at, next_attempt_at, state) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
    )
    .bind(&event.id)
    .bind(&event.media_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .bind(&event.callback_url)
    .bind(millis(event.created_at))
    .bind(millis(event.created_at))
    .execute(&mut *conn)
    .await
    .map_err(|e| failed(format!("queueing event {} of media {}", event.event_type, event.media_id), e))?;
    Ok(())
}

/// Checks the revocation rules of vod-api.md §12.2 inside the caller's transaction: the issuing key is
/// known and not revoked, and the media exists, is not deleted and is still `Uploading`. Returns the
/// media's bucket and object key.
async fn check_guard(conn: &mut SqliteConnection, guard: &WriteGuard) -> MetaResult<(String, String)> {
    let key_id = &guard.issuing_key_id;
    let revoked_at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM access_keys WHERE id = ?")
            .bind(key_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| failed(format!("checking AccessKey {key_id}"), e))?;
    match revoked_at {
        None => return Err(MetaError::Refused(format!("AccessKey {key_id} is unknown"))),
        Some(Some(_)) => return Err(MetaError::Refused(format!("AccessKey {key_id} was revoked"))),
        Some(None) => {}
    }
    let media_id = &guard.media_id;
    let row = sqlx::query("SELECT status, bucket, object_key FROM media WHERE id = ? AND deleted_at IS NULL")
        .bind(media_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| failed(format!("checking media {media_id}"), e))?
        .ok_or_else(|| MetaError::Refused(format!("media {media_id} does not exist or was deleted")))?;
    let status: String = column(&row, "status")?;
    if status != MediaStatus::Uploading.as_str() {
        return Err(MetaError::Refused(format!("media {media_id} is {status}, no longer Uploading")));
    }
    Ok((column(&row, "bucket")?, column(&row, "object_key")?))
}

fn upload_from_row(row: &SqliteRow) -> MetaResult<Upload> {
    let upload_id: String = column(row, "upload_id")?;
    let state: String = column(row, "state")?;
    let state =
        UploadState::parse(&state).ok_or_else(|| corrupt(&format!("upload {upload_id}"), "state", &state))?;
    Ok(Upload {
        new: NewUpload {
            bucket: column(row, "bucket")?,
            key: column(row, "object_key")?,
            media_id: column(row, "media_id")?,
            content_type: column(row, "content_type")?,
            initiated_at: time(column(row, "initiated_at")?),
            upload_id,
        },
        state,
    })
}
