//! SQLite: media records, their listing and their upload progress ([`MediaRepo`]).

use rusqlite::{Connection, params};

use super::writer::{self, execute};
use super::{objects, *};

#[async_trait::async_trait]
impl MediaRepo for SqliteMeta {
    async fn create_media(&self, media: &NewMedia) -> MetaResult<()> {
        let media = media.clone();
        self.writer.write("create a media item", move |conn| create_media(conn, &media)).await
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
        let media_ids = media_ids.to_vec();
        self.writer.write("delete media", move |conn| delete_media(conn, &media_ids, at)).await
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

fn create_media(conn: &Connection, media: &NewMedia) -> MetaResult<()> {
    execute(
        conn,
        "INSERT INTO media (id, kind, title, description, file_name, file_ext, declared_size, cover_url, \
         cate_id, cate_ids, tags, template_group_id, workflow_id, storage_location, app_id, user_data, \
         reference_id, image_type, business_type, bucket, object_key, object_prefix, issuing_key_id, \
         created_at, status, modified_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            media.id,
            media.kind.as_str(),
            media.title,
            media.description,
            media.file_name,
            media.file_ext,
            media.declared_size.map(u64_to_db),
            media.cover_url,
            media.cate_id,
            media.cate_ids,
            media.tags,
            media.template_group_id,
            media.workflow_id,
            media.storage_location,
            media.app_id,
            media.user_data,
            media.reference_id,
            media.image_type,
            media.business_type,
            media.bucket,
            media.object_key,
            media.object_prefix,
            media.issuing_key_id,
            millis(media.created_at),
            MediaStatus::Uploading.as_str(),
            millis(media.created_at)
        ],
    )
    .map_err(|e| {
        if !writer::unique_violated(&e) {
            failed(format!("creating media {}", media.id), e)
        } else if writer::primary_key_violated(&e) {
            MetaError::Conflict(format!("media {} already exists", media.id))
        } else {
            // The other unique index of media: the live ReferenceId.
            MetaError::Conflict(format!(
                "ReferenceId {} is already used by another media item",
                media.reference_id
            ))
        }
    })?;
    Ok(())
}

fn delete_media(conn: &Connection, media_ids: &[String], at: SystemTime) -> MetaResult<DeletedMedia> {
    let mut result = DeletedMedia::default();
    for media_id in media_ids {
        let context = || format!("deleting media {media_id}");
        // `deleted_at IS NULL` also makes a repeated id in `media_ids` count once.
        let found = writer::rows(
            conn,
            "UPDATE media SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL \
             RETURNING bucket, object_key, object_prefix",
            params![millis(at), media_id],
            context,
            |row| Ok((row.text("bucket")?, row.text("object_key")?, row.opt_text("object_prefix")?)),
        )?;
        let Some((bucket, object_key, prefix)) = found.into_iter().next() else { continue };
        result.deleted.push(media_id.clone());
        // The media's object, and for a playlist every segment under its prefix, go with it.
        objects::release_version(conn, &bucket, &object_key, at)?;
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            let keys: Vec<String> = writer::all(
                conn,
                "SELECT object_key FROM objects WHERE bucket = ?1 AND object_key >= ?2 \
                 AND substr(object_key, 1, length(?2)) = ?2",
                params![bucket, prefix],
            )
            .map_err(|e| failed(context(), e))?;
            for key in keys {
                objects::release_version(conn, &bucket, &key, at)?;
            }
        }
        let aborted: Vec<String> = writer::all(
            conn,
            "UPDATE uploads SET state = 'aborted', closed_at = ? WHERE media_id = ? AND state = 'open' \
             RETURNING upload_id",
            params![millis(at), media_id],
        )
        .map_err(|e| failed(format!("aborting the uploads of deleted media {media_id}"), e))?;
        for upload_id in aborted {
            objects::release_parts(conn, &upload_id, at)?;
        }
    }
    Ok(result)
}
