//! How the catalogue's records are laid out in rows, shared by the SQLite and PostgreSQL backends: the
//! number and time conventions of the schemas (`migrations/*/0001_init.sql`) and the decoding of each
//! record from a row. Both schemas name and type their columns alike, so a record decodes the same way from
//! either; what differs (placeholders, locking, error codes) stays in each backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vodup_proto::Secret;

use super::{
    AccessKeyRecord, Media, MediaKind, MediaStatus, MetaError, MetaResult, NewMedia, NewUpload, ObjectMeta,
    ObjectType, ObjectVersion, OutboxEvent, ProgressReport, StoredPart, Upload, UploadState,
};
use crate::storage::Digests;

/// The columns of a result row, read by name, saying which one failed. Implemented for each backend's row.
pub(super) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, name: &str) -> MetaResult<String>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, name: &str) -> MetaResult<Option<String>>;
    /// An integer column (SQLite `INTEGER`, PostgreSQL `BIGINT`).
    fn int(&self, name: &str) -> MetaResult<i64>;
    /// A nullable integer column.
    fn opt_int(&self, name: &str) -> MetaResult<Option<i64>>;
    /// A `BLOB` / `BYTEA` column.
    fn bytes(&self, name: &str) -> MetaResult<Vec<u8>>;
    /// A nullable `BLOB` / `BYTEA` column.
    fn opt_bytes(&self, name: &str) -> MetaResult<Option<Vec<u8>>>;

    /// A u64 stored bit for bit in a signed integer column ([`u64_to_db`]).
    fn opt_u64(&self, name: &str) -> MetaResult<Option<u64>> {
        Ok(self.opt_int(name)?.map(i64::cast_unsigned))
    }
}

/// Implements [`Columns`] for a backend's row type through `sqlx::Row::try_get`.
macro_rules! impl_columns {
    ($row:ty) => {
        impl $crate::meta::rows::Columns for $row {
            fn text(&self, name: &str) -> $crate::meta::MetaResult<String> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
            fn opt_text(&self, name: &str) -> $crate::meta::MetaResult<Option<String>> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
            fn int(&self, name: &str) -> $crate::meta::MetaResult<i64> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
            fn opt_int(&self, name: &str) -> $crate::meta::MetaResult<Option<i64>> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
            fn bytes(&self, name: &str) -> $crate::meta::MetaResult<Vec<u8>> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
            fn opt_bytes(&self, name: &str) -> $crate::meta::MetaResult<Option<Vec<u8>>> {
                $crate::meta::rows::decoded(sqlx::Row::try_get(self, name), name)
            }
        }
    };
}
pub(super) use impl_columns;

/// The result of reading column `name`, with the column named in the error.
pub(super) fn decoded<T>(result: Result<T, sqlx::Error>, name: &str) -> MetaResult<T> {
    result.map_err(|e| MetaError::Backend {
        context: format!("reading column {name} of the metadata database"),
        source: Box::new(e),
    })
}

/// A stored value this version cannot read (written by a newer version, or edited by hand).
pub(super) fn corrupt(record: &str, column: &str, value: &str) -> MetaError {
    MetaError::Backend {
        context: format!("reading {record}"),
        source: format!("column {column} holds unknown value {value:?}").into(),
    }
}

/// Both databases' integers are signed 64-bit, so a u64 is stored bit for bit: values of 2^63 and above
/// (half of all CRC-64s) read back negative in raw SQL but round-trip exactly here. They are never
/// compared in SQL.
pub(super) fn u64_to_db(value: u64) -> i64 {
    value.cast_signed()
}

/// Pages and offsets beyond what a signed 64-bit integer can count mean "all of them".
pub(super) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Unix milliseconds, negative before 1970; sub-millisecond precision is dropped.
pub(super) fn millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Inverse of [`millis`].
pub(super) fn time(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { UNIX_EPOCH + magnitude } else { UNIX_EPOCH - magnitude }
}

/// A row of `access_keys`.
pub(super) fn key_from_row(row: &impl Columns) -> MetaResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        id: row.text("id")?,
        secret: Secret::new(row.text("secret")?),
        description: row.text("description")?,
        created_at: time(row.int("created_at")?),
        revoked_at: row.opt_int("revoked_at")?.map(time),
    })
}

/// A row of `media`.
pub(super) fn media_from_row(row: &impl Columns) -> MetaResult<Media> {
    let id = row.text("id")?;
    let kind = row.text("kind")?;
    let kind = MediaKind::parse(&kind).ok_or_else(|| corrupt(&format!("media {id}"), "kind", &kind))?;
    let status = row.text("status")?;
    let status =
        MediaStatus::parse(&status).ok_or_else(|| corrupt(&format!("media {id}"), "status", &status))?;
    let progress = match row.opt_int("progress_reported_at")? {
        None => None,
        Some(reported_at) => Some(ProgressReport {
            client_ip: row.opt_text("progress_client_ip")?.unwrap_or_default(),
            source: row.opt_text("progress_source")?.unwrap_or_default(),
            device_model: row.opt_text("progress_device_model")?.unwrap_or_default(),
            file_size: row.opt_u64("progress_file_size")?,
            done_bytes: row.opt_u64("progress_done_bytes")?,
            done_parts: row.opt_u64("progress_done_parts")?,
            part_size: row.opt_u64("progress_part_size")?,
            reported_at: time(reported_at),
        }),
    };
    Ok(Media {
        new: NewMedia {
            kind,
            title: row.text("title")?,
            description: row.text("description")?,
            file_name: row.text("file_name")?,
            file_ext: row.text("file_ext")?,
            declared_size: row.opt_u64("declared_size")?,
            cover_url: row.text("cover_url")?,
            cate_id: row.opt_int("cate_id")?,
            cate_ids: row.text("cate_ids")?,
            tags: row.text("tags")?,
            template_group_id: row.text("template_group_id")?,
            workflow_id: row.text("workflow_id")?,
            storage_location: row.text("storage_location")?,
            app_id: row.text("app_id")?,
            user_data: row.text("user_data")?,
            reference_id: row.text("reference_id")?,
            image_type: row.text("image_type")?,
            business_type: row.text("business_type")?,
            bucket: row.text("bucket")?,
            object_key: row.text("object_key")?,
            object_prefix: row.opt_text("object_prefix")?,
            issuing_key_id: row.text("issuing_key_id")?,
            created_at: time(row.int("created_at")?),
            id,
        },
        status,
        size: row.opt_u64("size")?,
        etag: row.opt_text("etag")?,
        crc64: row.opt_u64("crc64")?,
        modified_at: time(row.int("modified_at")?),
        completed_at: row.opt_int("completed_at")?.map(time),
        progress,
    })
}

/// A row of `uploads`.
pub(super) fn upload_from_row(row: &impl Columns) -> MetaResult<Upload> {
    let upload_id = row.text("upload_id")?;
    let state = row.text("state")?;
    let state =
        UploadState::parse(&state).ok_or_else(|| corrupt(&format!("upload {upload_id}"), "state", &state))?;
    Ok(Upload {
        new: NewUpload {
            bucket: row.text("bucket")?,
            key: row.text("object_key")?,
            media_id: row.opt_text("media_id")?,
            content_type: row.text("content_type")?,
            initiated_at: time(row.int("initiated_at")?),
            upload_id,
        },
        state,
    })
}

/// A row of `parts`.
pub(super) fn part_from_row(row: &impl Columns, upload_id: &str) -> MetaResult<StoredPart> {
    let record = || format!("a part of upload {upload_id}");
    let md5 = row.bytes("md5")?;
    let md5 =
        <[u8; 16]>::try_from(md5.as_slice()).map_err(|_| corrupt(&record(), "md5", &hex::encode(&md5)))?;
    let number = row.int("part_number")?;
    Ok(StoredPart {
        part_number: u32::try_from(number)
            .map_err(|_| corrupt(&record(), "part_number", &number.to_string()))?,
        blob_id: row.text("blob_id")?,
        digests: Digests {
            md5,
            crc64: row.opt_u64("crc64")?.unwrap_or(0),
            len: row.opt_u64("size")?.unwrap_or(0),
        },
        uploaded_at: time(row.int("uploaded_at")?),
    })
}

/// A row of `objects`.
pub(super) fn version_from_row(row: &impl Columns) -> MetaResult<ObjectVersion> {
    let key = row.text("object_key")?;
    let record = || format!("object {key}");
    let object_type = row.text("object_type")?;
    let object_type =
        ObjectType::parse(&object_type).ok_or_else(|| corrupt(&record(), "object_type", &object_type))?;
    let user_meta = row.text("user_meta")?;
    let user_meta =
        serde_json::from_str(&user_meta).map_err(|_| corrupt(&record(), "user_meta", &user_meta))?;
    let content_md5 = match row.opt_bytes("content_md5")? {
        None => None,
        Some(md5) => Some(
            <[u8; 16]>::try_from(md5.as_slice())
                .map_err(|_| corrupt(&record(), "content_md5", &hex::encode(&md5)))?,
        ),
    };
    Ok(ObjectVersion {
        bucket: row.text("bucket")?,
        version_id: row.text("version_id")?,
        size: row.opt_u64("size")?.unwrap_or(0),
        etag: row.text("etag")?,
        crc64: row.opt_u64("crc64")?.unwrap_or(0),
        content_md5,
        object_type,
        meta: ObjectMeta { content_type: row.opt_text("content_type")?, user_meta },
        last_modified: time(row.int("last_modified")?),
        upload_id: row.opt_text("upload_id")?,
        key,
    })
}

/// A row of `events`, as the delivery task reads it.
pub(super) fn event_from_row(row: &impl Columns) -> MetaResult<OutboxEvent> {
    Ok(OutboxEvent {
        id: row.text("id")?,
        media_id: row.text("media_id")?,
        event_type: row.text("event_type")?,
        payload: row.text("payload")?,
        callback_url: row.opt_text("callback_url")?,
        created_at: time(row.int("created_at")?),
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
    })
}

/// Serialises user metadata for the `user_meta` column: a JSON array of `[name, value]` pairs.
pub(super) fn user_meta_json(version: &ObjectVersion) -> MetaResult<String> {
    serde_json::to_string(&version.meta.user_meta).map_err(|e| MetaError::Backend {
        context: format!("recording object {}/{}", version.bucket, version.key),
        source: Box::new(e),
    })
}
