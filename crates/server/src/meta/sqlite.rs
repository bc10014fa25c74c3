//! The embedded metadata backend: every repository trait of [`super`] over one SQLite file, through sqlx.
//!
//! The file holds AccessKeySecrets, so [`SqliteMeta::open`] creates it with mode 0600 before SQLite touches
//! it (SQLite gives its `-wal` and `-shm` side files the mode of the database file). An acknowledged write
//! survives power loss (WAL with `synchronous = FULL`). Several processes may use the file at once
//! (`vodup keys create` while the server runs): SQLite's locks serialise writers, who wait up to
//! [`BUSY_TIMEOUT`]. Every transaction that reads before it writes starts with `BEGIN IMMEDIATE`, taking the
//! write lock up front; a deferred transaction would fail with `SQLITE_BUSY` when its read lock could not
//! be upgraded, and the busy timeout does not help there. Queries are checked at run time (there is no
//! `DATABASE_URL` at build time); the schema and its conventions are in `migrations/sqlite`. This module
//! decides nothing about who may write, beyond the revocation checks of [`WriteGuard`].

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Decode, QueryBuilder, Row, Sqlite, SqlitePool, Type};
use vodup_proto::Secret;

use super::{
    AccessKeyRecord, CompletedObject, CredentialRepo, DeletedMedia, EventBuilder, EventCounts, EventRepo,
    Media, MediaKind, MediaRepo, MediaStatus, MediaUpdate, MetaError, MetaResult, NewMedia, NewUpload,
    OutboxEvent, ProgressReport, Revocations, Upload, UploadQuery, UploadRepo, UploadState, VideoQuery,
    WriteGuard,
};

/// How long a statement waits for another connection or process to release the write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per process. SQLite runs one writer at a time anyway; the rest serve concurrent reads.
const MAX_CONNECTIONS: u32 = 8;

/// The metadata store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMeta {
    /// Connections to the database file, each configured by [`SqliteMeta::open`].
    pool: SqlitePool,
}

impl SqliteMeta {
    /// Opens (creating it if absent, with mode 0600) the database at `path` and brings its schema up to
    /// date. The parent directory must exist.
    pub async fn open(path: &Path) -> MetaResult<Self> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            // Created above with the right mode; SQLite must not create it with the umask's.
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| failed(format!("opening metadata database {}", path.display()), e))?;
        sqlx::migrate!("src/meta/migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| failed(format!("migrating metadata database {}", path.display()), e))?;
        Ok(Self { pool })
    }

    /// Starts a transaction that holds the write lock from its first statement.
    async fn begin_write(&self, what: &str) -> MetaResult<sqlx::Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| failed(format!("starting to {what}"), e))
    }
}

/// Creates the database file with mode 0600, or narrows an existing one to 0600.
fn create_private_file(path: &Path) -> MetaResult<()> {
    let context = || format!("creating metadata database {} with mode 0600", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // Never truncate: an existing file is the live catalogue.
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed(context(), e))?;
    // `mode` applies only to a new file, and through the umask; this makes any file exactly 0600.
    file.set_permissions(Permissions::from_mode(0o600)).map_err(|e| failed(context(), e))
}

#[async_trait::async_trait]
impl CredentialRepo for SqliteMeta {
    async fn create_key(&self, key: &AccessKeyRecord) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO access_keys (id, secret, description, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(key.secret.expose())
        .bind(&key.description)
        .bind(millis(key.created_at))
        .bind(key.revoked_at.map(millis))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                MetaError::Conflict(format!("AccessKey {} already exists", key.id))
            } else {
                failed(format!("creating AccessKey {}", key.id), e)
            }
        })?;
        Ok(())
    }

    async fn get_key(&self, access_key_id: &str) -> MetaResult<Option<AccessKeyRecord>> {
        let context = || format!("reading AccessKey {access_key_id}");
        sqlx::query("SELECT * FROM access_keys WHERE id = ?")
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(context(), e))?
            .map(|row| key_from_row(&row))
            .transpose()
    }

    async fn list_keys(&self) -> MetaResult<Vec<AccessKeyRecord>> {
        sqlx::query("SELECT * FROM access_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("listing AccessKeys", e))?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn revoke_key(&self, access_key_id: &str, at: SystemTime) -> MetaResult<bool> {
        let done = sqlx::query("UPDATE access_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(millis(at))
            .bind(access_key_id)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(format!("revoking AccessKey {access_key_id}"), e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_nonce(
        &self,
        digest: &[u8; 16],
        now: SystemTime,
        expires_at: SystemTime,
    ) -> MetaResult<bool> {
        let mut tx = self.begin_write("record a request nonce").await?;
        // A few dead rows go with every insert: the table stays at about the live rows, with no sweep.
        sqlx::query(
            "DELETE FROM nonces WHERE digest IN \
             (SELECT digest FROM nonces WHERE expires_at <= ? ORDER BY expires_at LIMIT 8)",
        )
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| failed("reclaiming dead nonces", e))?;
        let recorded = sqlx::query(
            "INSERT INTO nonces (digest, expires_at) VALUES (?, ?) \
             ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?",
        )
        .bind(&digest[..])
        .bind(millis(expires_at))
        .bind(millis(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| failed("recording a request nonce", e))?;
        tx.commit().await.map_err(|e| failed("committing a request nonce", e))?;
        Ok(recorded.rows_affected() > 0)
    }

    async fn health_check(&self) -> MetaResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| failed("answering a health check", e))?;
        Ok(())
    }

    async fn get_or_create_setting(&self, name: &str, initial: &str) -> MetaResult<String> {
        let context = || format!("reading or creating setting {name}");
        // The insert is atomic on its own: whichever process inserts first wins, and both then read that value.
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(initial)
            .execute(&self.pool)
            .await
            .map_err(|e| failed(context(), e))?;
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| failed(context(), e))
    }

    async fn revocations(&self, deleted_since: SystemTime) -> MetaResult<Revocations> {
        let revoked_keys =
            sqlx::query_scalar("SELECT id FROM access_keys WHERE revoked_at IS NOT NULL ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| failed("listing revoked AccessKeys", e))?;
        let deleted_media = sqlx::query_scalar("SELECT id FROM media WHERE deleted_at >= ? ORDER BY id")
            .bind(millis(deleted_since))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("listing deleted media", e))?;
        Ok(Revocations { revoked_keys, deleted_media })
    }
}

#[async_trait::async_trait]
impl MediaRepo for SqliteMeta {
    async fn create_media(&self, media: &NewMedia) -> MetaResult<()> {
        sqlx::query(
            "INSERT INTO media (id, kind, title, description, file_name, file_ext, declared_size, cover_url, \
             cate_id, cate_ids, tags, template_group_id, workflow_id, storage_location, app_id, user_data, \
             reference_id, image_type, business_type, bucket, object_key, object_prefix, issuing_key_id, \
             created_at, status, modified_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&media.id)
        .bind(media.kind.as_str())
        .bind(&media.title)
        .bind(&media.description)
        .bind(&media.file_name)
        .bind(&media.file_ext)
        .bind(media.declared_size.map(u64_to_db))
        .bind(&media.cover_url)
        .bind(media.cate_id)
        .bind(&media.cate_ids)
        .bind(&media.tags)
        .bind(&media.template_group_id)
        .bind(&media.workflow_id)
        .bind(&media.storage_location)
        .bind(&media.app_id)
        .bind(&media.user_data)
        .bind(&media.reference_id)
        .bind(&media.image_type)
        .bind(&media.business_type)
        .bind(&media.bucket)
        .bind(&media.object_key)
        .bind(&media.object_prefix)
        .bind(&media.issuing_key_id)
        .bind(millis(media.created_at))
        .bind(MediaStatus::Uploading.as_str())
        .bind(millis(media.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if !is_unique_violation(&e) {
                failed(format!("creating media {}", media.id), e)
            } else if names_column(&e, "reference_id") {
                MetaError::Conflict(format!(
                    "ReferenceId {} is already used by another media item",
                    media.reference_id
                ))
            } else {
                MetaError::Conflict(format!("media {} already exists", media.id))
            }
        })?;
        Ok(())
    }

    async fn get_media(&self, media_id: &str) -> MetaResult<Option<Media>> {
        sqlx::query("SELECT * FROM media WHERE id = ? AND deleted_at IS NULL")
            .bind(media_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(format!("reading media {media_id}"), e))?
            .map(|row| media_from_row(&row))
            .transpose()
    }

    async fn get_media_by_reference(&self, reference_id: &str) -> MetaResult<Option<Media>> {
        // Empty means "no ReferenceId", which many media share; it names none of them.
        if reference_id.is_empty() {
            return Ok(None);
        }
        sqlx::query("SELECT * FROM media WHERE reference_id = ? AND deleted_at IS NULL")
            .bind(reference_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| failed(format!("reading media with ReferenceId {reference_id}"), e))?
            .map(|row| media_from_row(&row))
            .transpose()
    }

    async fn update_media(&self, media_id: &str, update: &MediaUpdate, at: SystemTime) -> MetaResult<()> {
        // A NULL bind keeps the column: `None` means "leave unchanged".
        let done = sqlx::query(
            "UPDATE media SET title = COALESCE(?, title), description = COALESCE(?, description), \
             tags = COALESCE(?, tags), cover_url = COALESCE(?, cover_url), cate_id = COALESCE(?, cate_id), \
             reference_id = COALESCE(?, reference_id), user_data = COALESCE(?, user_data), modified_at = ? \
             WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(&update.title)
        .bind(&update.description)
        .bind(&update.tags)
        .bind(&update.cover_url)
        .bind(update.cate_id)
        .bind(&update.reference_id)
        .bind(&update.user_data)
        .bind(millis(at))
        .bind(media_id)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                let reference = update.reference_id.as_deref().unwrap_or_default();
                MetaError::Conflict(format!("ReferenceId {reference} is already used by another media item"))
            } else {
                failed(format!("updating media {media_id}"), e)
            }
        })?;
        if done.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("media {media_id}")));
        }
        Ok(())
    }

    async fn delete_media(&self, media_ids: &[String], at: SystemTime) -> MetaResult<DeletedMedia> {
        let mut tx = self.begin_write("delete media").await?;
        let mut result = DeletedMedia::default();
        for media_id in media_ids {
            let context = || format!("deleting media {media_id}");
            // `deleted_at IS NULL` also makes a repeated id in `media_ids` count once.
            let row = sqlx::query(
                "UPDATE media SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL \
                 RETURNING object_key, object_prefix",
            )
            .bind(millis(at))
            .bind(media_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| failed(context(), e))?;
            let Some(row) = row else { continue };
            result.deleted.push(media_id.clone());
            result.object_keys.push(column(&row, "object_key")?);
            result.object_keys.extend(column::<Option<String>>(&row, "object_prefix")?);
            let aborted: Vec<String> = sqlx::query_scalar(
                "UPDATE uploads SET state = 'aborted', closed_at = ? WHERE media_id = ? AND state = 'open' \
                 RETURNING upload_id",
            )
            .bind(millis(at))
            .bind(media_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| failed(format!("aborting the uploads of deleted media {media_id}"), e))?;
            result.aborted_uploads.extend(aborted);
        }
        tx.commit().await.map_err(|e| failed("committing a media deletion", e))?;
        Ok(result)
    }

    async fn list_videos(&self, query: &VideoQuery) -> MetaResult<(u64, Vec<Media>)> {
        // One read transaction, so the total and the page come from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(|e| failed("starting to list videos", e))?;

        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM media");
        push_video_filter(&mut count, query);
        let total: i64 =
            count.build_query_scalar().fetch_one(&mut *tx).await.map_err(|e| failed("counting videos", e))?;

        let mut page = QueryBuilder::<Sqlite>::new("SELECT * FROM media");
        push_video_filter(&mut page, query);
        // The id tie-break keeps pages stable when several videos share a creation instant.
        page.push(if query.ascending {
            " ORDER BY created_at ASC, id ASC"
        } else {
            " ORDER BY created_at DESC, id DESC"
        });
        page.push(" LIMIT ").push_bind(saturating_i64(query.limit));
        page.push(" OFFSET ").push_bind(saturating_i64(query.offset));
        let rows = page.build().fetch_all(&mut *tx).await.map_err(|e| failed("listing videos", e))?;

        let videos = rows.iter().map(media_from_row).collect::<MetaResult<Vec<_>>>()?;
        Ok((total.cast_unsigned(), videos))
    }

    async fn record_progress(&self, media_id: &str, report: &ProgressReport) -> MetaResult<bool> {
        let done = sqlx::query(
            "UPDATE media SET progress_client_ip = ?, progress_source = ?, progress_device_model = ?, \
             progress_file_size = ?, progress_done_bytes = ?, progress_done_parts = ?, progress_part_size = ?, \
             progress_reported_at = ? \
             WHERE id = ? AND kind = 'video' AND status = 'Uploading' AND deleted_at IS NULL",
        )
        .bind(&report.client_ip)
        .bind(&report.source)
        .bind(&report.device_model)
        .bind(report.file_size.map(u64_to_db))
        .bind(report.done_bytes.map(u64_to_db))
        .bind(report.done_parts.map(u64_to_db))
        .bind(report.part_size.map(u64_to_db))
        .bind(millis(report.reported_at))
        .bind(media_id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("recording upload progress of media {media_id}"), e))?;
        Ok(done.rows_affected() > 0)
    }
}

/// Appends the WHERE clause of GetVideoList: live videos matching every given filter.
fn push_video_filter(builder: &mut QueryBuilder<Sqlite>, query: &VideoQuery) {
    builder.push(" WHERE kind = 'video' AND deleted_at IS NULL");
    if let Some(cate_id) = query.cate_id {
        builder.push(" AND cate_id = ").push_bind(cate_id);
    }
    if !query.statuses.is_empty() {
        builder.push(" AND status IN (");
        let mut list = builder.separated(", ");
        for status in &query.statuses {
            list.push_bind(status.as_str());
        }
        builder.push(")");
    }
    if let Some(start) = query.start {
        builder.push(" AND created_at >= ").push_bind(millis(start));
    }
    if let Some(end) = query.end {
        builder.push(" AND created_at < ").push_bind(millis(end));
    }
    if let Some(location) = &query.storage_location {
        builder.push(" AND storage_location = ").push_bind(location.clone());
    }
    if !query.reference_ids.is_empty() {
        builder.push(" AND reference_id IN (");
        let mut list = builder.separated(", ");
        for reference_id in &query.reference_ids {
            list.push_bind(reference_id.clone());
        }
        builder.push(")");
    }
}

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

async fn insert_event(conn: &mut SqliteConnection, event: &super::NewEvent) -> MetaResult<()> {
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

#[async_trait::async_trait]
impl EventRepo for SqliteMeta {
    async fn due_events(&self, now: SystemTime, limit: u32) -> MetaResult<Vec<OutboxEvent>> {
        let rows = sqlx::query(
            "SELECT id, media_id, event_type, payload, callback_url, created_at, attempts FROM events \
             WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| failed("reading due events", e))?;
        rows.iter()
            .map(|row| {
                Ok(OutboxEvent {
                    id: row.get("id"),
                    media_id: row.get("media_id"),
                    event_type: row.get("event_type"),
                    payload: row.get("payload"),
                    callback_url: row.get("callback_url"),
                    created_at: time(row.get("created_at")),
                    attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn event_delivered(&self, id: &str, at: SystemTime) -> MetaResult<()> {
        self.close_event(id, "delivered", at, "").await
    }

    async fn event_failed(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: SystemTime,
        error: &str,
    ) -> MetaResult<()> {
        sqlx::query(
            "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(i64::from(attempts))
        .bind(millis(next_attempt_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("rescheduling event {id}"), e))?;
        Ok(())
    }

    async fn event_given_up(&self, id: &str, at: SystemTime, error: &str) -> MetaResult<()> {
        self.close_event(id, "given_up", at, error).await
    }

    async fn event_counts(&self) -> MetaResult<EventCounts> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM events GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| failed("counting events", e))?;
        let mut counts = EventCounts::default();
        for row in &rows {
            let n = u64::try_from(row.get::<i64, _>("n")).unwrap_or(0);
            match row.get::<String, _>("state").as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.given_up = n,
            }
        }
        Ok(counts)
    }
}

impl SqliteMeta {
    async fn close_event(&self, id: &str, state: &str, at: SystemTime, error: &str) -> MetaResult<()> {
        sqlx::query(
            "UPDATE events SET state = ?, closed_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(state)
        .bind(millis(at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| failed(format!("closing event {id} as {state}"), e))?;
        Ok(())
    }
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

fn key_from_row(row: &SqliteRow) -> MetaResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        id: column(row, "id")?,
        secret: Secret::new(column::<String>(row, "secret")?),
        description: column(row, "description")?,
        created_at: time(column(row, "created_at")?),
        revoked_at: column::<Option<i64>>(row, "revoked_at")?.map(time),
    })
}

fn media_from_row(row: &SqliteRow) -> MetaResult<Media> {
    let id: String = column(row, "id")?;
    let kind: String = column(row, "kind")?;
    let kind = MediaKind::parse(&kind).ok_or_else(|| corrupt(&format!("media {id}"), "kind", &kind))?;
    let status: String = column(row, "status")?;
    let status =
        MediaStatus::parse(&status).ok_or_else(|| corrupt(&format!("media {id}"), "status", &status))?;
    let progress = match column::<Option<i64>>(row, "progress_reported_at")? {
        None => None,
        Some(reported_at) => Some(ProgressReport {
            client_ip: column::<Option<String>>(row, "progress_client_ip")?.unwrap_or_default(),
            source: column::<Option<String>>(row, "progress_source")?.unwrap_or_default(),
            device_model: column::<Option<String>>(row, "progress_device_model")?.unwrap_or_default(),
            file_size: optional_u64(row, "progress_file_size")?,
            done_bytes: optional_u64(row, "progress_done_bytes")?,
            done_parts: optional_u64(row, "progress_done_parts")?,
            part_size: optional_u64(row, "progress_part_size")?,
            reported_at: time(reported_at),
        }),
    };
    Ok(Media {
        new: NewMedia {
            kind,
            title: column(row, "title")?,
            description: column(row, "description")?,
            file_name: column(row, "file_name")?,
            file_ext: column(row, "file_ext")?,
            declared_size: optional_u64(row, "declared_size")?,
            cover_url: column(row, "cover_url")?,
            cate_id: column(row, "cate_id")?,
            cate_ids: column(row, "cate_ids")?,
            tags: column(row, "tags")?,
            template_group_id: column(row, "template_group_id")?,
            workflow_id: column(row, "workflow_id")?,
            storage_location: column(row, "storage_location")?,
            app_id: column(row, "app_id")?,
            user_data: column(row, "user_data")?,
            reference_id: column(row, "reference_id")?,
            image_type: column(row, "image_type")?,
            business_type: column(row, "business_type")?,
            bucket: column(row, "bucket")?,
            object_key: column(row, "object_key")?,
            object_prefix: column(row, "object_prefix")?,
            issuing_key_id: column(row, "issuing_key_id")?,
            created_at: time(column(row, "created_at")?),
            id,
        },
        status,
        size: optional_u64(row, "size")?,
        etag: column(row, "etag")?,
        crc64: optional_u64(row, "crc64")?,
        modified_at: time(column(row, "modified_at")?),
        completed_at: column::<Option<i64>>(row, "completed_at")?.map(time),
        progress,
    })
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

/// Reads one column, saying which one failed.
fn column<'r, T>(row: &'r SqliteRow, name: &str) -> MetaResult<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(name).map_err(|e| failed(format!("reading column {name} of the metadata database"), e))
}

fn optional_u64(row: &SqliteRow, name: &str) -> MetaResult<Option<u64>> {
    Ok(column::<Option<i64>>(row, name)?.map(i64::cast_unsigned))
}

/// SQLite integers are signed 64-bit, so a u64 is stored bit for bit: values of 2^63 and above (half of
/// all CRC-64s) read back negative in raw SQL but round-trip exactly here. They are never compared in SQL.
fn u64_to_db(value: u64) -> i64 {
    value.cast_signed()
}

/// Pages and offsets beyond what SQLite can count mean "all of them".
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Unix milliseconds, negative before 1970; sub-millisecond precision is dropped.
fn millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Inverse of [`millis`].
fn time(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { UNIX_EPOCH + magnitude } else { UNIX_EPOCH - magnitude }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}

/// Whether a constraint error names `column`. SQLite reports unique failures as
/// "UNIQUE constraint failed: media.reference_id", which tells the id apart from the ReferenceId.
fn names_column(error: &sqlx::Error, column: &str) -> bool {
    error.as_database_error().is_some_and(|e| e.message().contains(column))
}

fn failed(
    context: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> MetaError {
    let source = source.into();
    if is_disk_full(source.as_ref()) {
        return MetaError::Full(context.into());
    }
    MetaError::Backend { context: context.into(), source }
}

/// SQLITE_FULL (13, also in extended codes' low byte), or an ENOSPC/EDQUOT from the driver's own I/O.
fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            db.code().and_then(|code| code.parse::<i64>().ok()).is_some_and(|code| code & 0xff == 13)
        }
        Some(sqlx::Error::Io(io)) => crate::storage::is_out_of_space(io),
        _ => false,
    }
}

/// A stored value this version cannot read (written by a newer version, or edited by hand).
fn corrupt(record: &str, column: &str, value: &str) -> MetaError {
    failed(format!("reading {record}"), format!("column {column} holds unknown value {value:?}"))
}
