//! PostgreSQL: multipart uploads apart from completion ([`UploadRepo`]); completion is an object commit
//! (`objects`).

use super::objects::{check_guard, release_parts};
use super::*;

#[async_trait::async_trait]
impl UploadRepo for PostgresMeta {
    async fn create_upload(&self, upload: &NewUpload, guard: Option<&WriteGuard>) -> MetaResult<()> {
        in_transaction!(self, "initiate an upload", |tx| {
            if let Some(guard) = guard {
                check_guard(tx, guard).await?;
            }
            sqlx::query(
                "INSERT INTO uploads (upload_id, bucket, object_key, media_id, content_type, initiated_at, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open')",
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
                } else if is_foreign_key_violation(&e) {
                    let media_id = upload.media_id.as_deref().unwrap_or_default();
                    MetaError::NotFound(format!("media {media_id} of upload {}", upload.upload_id))
                } else {
                    failed(format!("recording upload {}", upload.upload_id), e)
                }
            })?;
            Ok(())
        })
    }

    async fn get_upload(&self, upload_id: &str) -> MetaResult<Option<Upload>> {
        sqlx::query("SELECT * FROM uploads WHERE upload_id = $1")
            .bind(upload_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(format!("reading upload {upload_id}"), e))?
            .map(|row| upload_from_row(&row))
            .transpose()
    }

    async fn list_open_uploads(&self, query: &UploadQuery) -> MetaResult<Vec<Upload>> {
        // Prefix by `left` rather than LIKE: LIKE treats `%` and `_` as wildcards, and OSS prefixes are
        // literal. The columns are COLLATE "C", so `>=`, `>` and ORDER BY compare bytes, the order OSS lists
        // keys in. An upload id marker only counts together with its key marker (ListMultipartUploads).
        let rows = sqlx::query(
            "SELECT * FROM uploads WHERE bucket = $1 AND state = 'open' \
             AND object_key >= $2 AND left(object_key, length($2)) = $2 \
             AND (object_key > $3 OR ($4 <> '' AND object_key = $3 AND upload_id > $4)) \
             ORDER BY object_key, upload_id LIMIT $5",
        )
        .bind(&query.bucket)
        .bind(&query.prefix)
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
        in_transaction!(self, "abort an upload", |tx| {
            // The row lock orders this against a Complete of the same upload: the second finds it closed.
            let done = sqlx::query(
                "UPDATE uploads SET state = 'aborted', closed_at = $1 WHERE upload_id = $2 AND state = 'open'",
            )
            .bind(millis(at))
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(format!("aborting upload {upload_id}"), e))?;
            if done.rows_affected() == 0 {
                return Err(MetaError::NotFound(format!("open upload {upload_id}")));
            }
            release_parts(tx, upload_id, at).await?;
            Ok(())
        })
    }

    async fn stale_uploads(&self, before: SystemTime, limit: u32) -> MetaResult<Vec<Upload>> {
        sqlx::query(
            "SELECT * FROM uploads WHERE state = 'open' AND initiated_at < $1 \
             ORDER BY initiated_at, upload_id LIMIT $2",
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
        // The sweeper's claim: rows a commit holds (it is publishing or guarding that media right now) are
        // passed over rather than waited for; if that commit fails, the next sweep takes them.
        sqlx::query_scalar(
            "UPDATE media SET status = $1, modified_at = $2 WHERE id IN \
             (SELECT id FROM media WHERE status = $3 AND created_at < $4 AND deleted_at IS NULL \
              ORDER BY id FOR UPDATE SKIP LOCKED) \
             RETURNING id",
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
