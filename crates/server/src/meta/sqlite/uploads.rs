//! SQLite: multipart uploads apart from completion ([`UploadRepo`]); completion is an object commit
//! (`objects`).

use rusqlite::{Connection, params};

use super::objects::{check_guard, release_parts};
use super::writer;
use super::*;

#[async_trait::async_trait]
impl UploadRepo for SqliteMeta {
    async fn create_upload(&self, upload: &NewUpload, guard: Option<&WriteGuard>) -> MetaResult<()> {
        let (upload, guard) = (upload.clone(), guard.cloned());
        self.writer
            .write("initiate an upload", move |conn| create_upload(conn, &upload, guard.as_ref()))
            .await
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
        let upload_id = upload_id.to_owned();
        self.writer.write("abort an upload", move |conn| abort_upload(conn, &upload_id, at)).await
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
}

fn create_upload(conn: &Connection, upload: &NewUpload, guard: Option<&WriteGuard>) -> MetaResult<()> {
    if let Some(guard) = guard {
        check_guard(conn, guard)?;
    }
    writer::execute(
        conn,
        "INSERT INTO uploads (upload_id, bucket, object_key, media_id, content_type, initiated_at, state) \
         VALUES (?, ?, ?, ?, ?, ?, 'open')",
        params![
            upload.upload_id,
            upload.bucket,
            upload.key,
            upload.media_id,
            upload.content_type,
            millis(upload.initiated_at)
        ],
    )
    .map_err(|e| {
        if writer::unique_violated(&e) {
            MetaError::Conflict(format!("upload {} already exists", upload.upload_id))
        } else if writer::foreign_key_violated(&e) {
            let media_id = upload.media_id.as_deref().unwrap_or_default();
            MetaError::NotFound(format!("media {media_id} of upload {}", upload.upload_id))
        } else {
            failed(format!("recording upload {}", upload.upload_id), e)
        }
    })?;
    Ok(())
}

fn abort_upload(conn: &Connection, upload_id: &str, at: SystemTime) -> MetaResult<()> {
    let done = writer::execute(
        conn,
        "UPDATE uploads SET state = 'aborted', closed_at = ? WHERE upload_id = ? AND state = 'open'",
        params![millis(at), upload_id],
    )
    .map_err(|e| failed(format!("aborting upload {upload_id}"), e))?;
    if done == 0 {
        return Err(MetaError::NotFound(format!("open upload {upload_id}")));
    }
    release_parts(conn, upload_id, at)
}
