//! PutObject, GetObject/HeadObject (with Range) and DeleteObject (oss-api.md §3.1, §3.8-3.10).
//!
//! PutObject streams the body into a new blob, hashed once while written and kept only when whole and
//! matching `Content-MD5`; then one catalogue transaction checks every guard (the key, the media, the
//! credential, revoked meanwhile or not) and makes the key name the blob, or changes nothing. The blob of
//! a refused or losing writer stays unreferenced until the collector takes it: no request ever removes
//! what a key names except by committing. GET and HEAD read what the catalogue says the key names.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vodup_proto::mac::{base64_decode_strict, base64_encode};
use vodup_proto::oss::OssErrorCode;
use vodup_proto::oss::header::{
    X_OSS_HASH_CRC64ECMA, X_OSS_META_PREFIX, X_OSS_OBJECT_TYPE, X_OSS_STORAGE_CLASS,
};
use vodup_proto::oss::part::MAX_PUT_OBJECT_SIZE;

use super::Ctx;
use super::auth::Principal;
use super::error::OssApiError;
use crate::fault::{self, FaultPoint};
use crate::meta::{Committed, Media, MediaStatus, NewBlob, ObjectMeta, ObjectVersion, PutCommit};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::storage::{WriteLimits, pieces};

/// `Content-MD5` as 16 bytes, if sent; a value that is not Base64 of 16 bytes is `InvalidDigest`.
pub fn content_md5(ctx: &Ctx) -> Result<Option<[u8; 16]>, OssApiError> {
    let Some(value) = ctx.header("content-md5") else { return Ok(None) };
    base64_decode_strict(value.trim())
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            OssApiError::with_message(
                OssErrorCode::InvalidDigest,
                "The Content-MD5 you specified is not valid.",
            )
        })
}

/// The write limits of a PUT body: its size cap, `Content-MD5` and `Content-Length`.
pub fn write_limits(ctx: &Ctx, max_size: u64) -> Result<WriteLimits, OssApiError> {
    let expected_len = match ctx.header(header::CONTENT_LENGTH) {
        Some(len) => Some(len.trim().parse::<u64>().map_err(|_| {
            OssApiError::invalid_argument("Content-Length is not a number.", "Content-Length", len)
        })?),
        None if ctx.headers.contains_key(header::TRANSFER_ENCODING) => None,
        None => return Err(OssApiError::new(OssErrorCode::MissingContentLength)),
    };
    if expected_len.is_some_and(|len| len > max_size) {
        return Err(OssApiError::new(OssErrorCode::EntityTooLarge));
    }
    Ok(WriteLimits { max_size, expected_md5: content_md5(ctx)?, expected_len })
}

/// Before a write that publishes (PutObject, Initiate, Complete), the revocation checks that must hold at
/// once (vod-api.md §12.2), read fresh from the catalogue rather than from the data plane's caches: the
/// signing key (or the key that issued an upload credential) is active, and an upload credential's media
/// still exists and is `Uploading`. The catalogue checks again, atomically, when the object is recorded.
pub async fn precheck(state: &AppState, ctx: &Ctx) -> Result<(), OssApiError> {
    let key_id = match &ctx.principal {
        Principal::Key { id } => id.as_str(),
        Principal::Sts(claims) => {
            let media = state
                .meta
                .get_media(&claims.media_id)
                .await
                .map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
            let writable = |m: &Media| {
                m.status == MediaStatus::Uploading || (claims.overwrite && m.status == MediaStatus::Normal)
            };
            if !media.is_some_and(|m| writable(&m)) {
                return Err(OssApiError::with_message(
                    OssErrorCode::AccessDenied,
                    "AccessDenied: the media of this credential is deleted or no longer uploading.",
                ));
            }
            claims.issuing_key_id.as_str()
        }
        Principal::Presign => return Ok(()),
    };
    let key = state
        .keys
        .fresh(state.meta.as_ref(), key_id)
        .await
        .map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    if key.is_none_or(|k| k.revoked_at.is_some()) {
        return Err(OssApiError::new(OssErrorCode::InvalidAccessKeyId));
    }
    Ok(())
}

/// Builds the upload-complete event of a media item a commit at `at` completed.
pub fn event_builder(
    state: &AppState,
    key: &str,
    at: std::time::SystemTime,
) -> impl Fn(&Media) -> Option<crate::meta::NewEvent> + Send + Sync + use<> {
    let file_url = state.site.object_url(key);
    let events = state.settings.events.clone();
    move |media: &Media| crate::events::upload_complete(media, &file_url, &events, at)
}

/// After an object's commit: its counter, and the log line of the media item it completed.
pub fn committed(state: &AppState, ctx: &Ctx, committed: &Committed) {
    fault::hit(FaultPoint::StatusCommitted);
    if let Some(media) = &committed.media {
        tracing::info!(
            request_id = ctx.request_id,
            media_id = media.new.id,
            status = media.status.as_str(),
            "media complete"
        );
    }
    Metrics::add(&state.metrics.objects_completed, 1);
}

/// `x-oss-meta-*` headers, names lower-case without the prefix.
pub fn user_meta(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut meta: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let short = name.as_str().strip_prefix(X_OSS_META_PREFIX)?;
            Some((short.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    meta.sort();
    meta
}

/// The digest headers of a stored body: ETag, CRC-64, Content-MD5.
pub fn digest_headers(etag: &str, crc64: u64, md5: Option<&[u8; 16]>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(X_OSS_HASH_CRC64ECMA, HeaderValue::from(crc64));
    if let Some(md5) = md5
        && let Ok(value) = HeaderValue::from_str(&base64_encode(md5))
    {
        headers.insert("content-md5", value);
    }
    headers
}

/// PutObject.
pub async fn put_object(state: &AppState, ctx: &Ctx, body: Body) -> Result<Response, OssApiError> {
    let limits = write_limits(ctx, MAX_PUT_OBJECT_SIZE)?;
    precheck(state, ctx).await?;
    let forbid_overwrite =
        ctx.header("x-oss-forbid-overwrite").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if forbid_overwrite {
        // Checked again in the commit; this spares the body of a write that would be refused.
        let exists = state
            .meta
            .get_object(&ctx.bucket, &ctx.key, false)
            .await
            .map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
        if exists.is_some() {
            return Err(OssApiError::new(OssErrorCode::FileAlreadyExists));
        }
    }
    let meta = ObjectMeta {
        content_type: ctx.header(header::CONTENT_TYPE).map(str::to_owned),
        user_meta: user_meta(&ctx.headers),
    };
    let blob = super::store_body(state, body, &limits)
        .await
        .map_err(|e| OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_key(&ctx.key)))?;
    fault::hit(FaultPoint::BlobStored);
    let put = PutCommit {
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        blob: NewBlob { id: blob.id, digests: blob.digests },
        meta,
        forbid_overwrite,
    };
    let guard = ctx.guard();
    let task_state = state.clone();
    // The bytes are here: the commit runs to its end even if the client goes away meanwhile.
    let result = super::run_to_end(async move {
        let at = task_state.now();
        let build = event_builder(&task_state, &put.key, at);
        task_state.meta.put_object(&put, guard.as_ref(), Some(std::sync::Arc::new(build)), at).await
    })
    .await;
    let done = result.map_err(|e| {
        if e.is_conflict() {
            return OssApiError::new(OssErrorCode::FileAlreadyExists);
        }
        OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::new(OssErrorCode::AccessDenied))
    })?;
    committed(state, ctx, &done);
    Ok((StatusCode::OK, digest_headers(&done.etag, done.crc64, done.content_md5.as_ref())).into_response())
}

/// Parses `Range: bytes=a-b | a- | -n` against `size`. `Ok(None)` means "the whole object": OSS ignores
/// a syntactically invalid range; a start beyond the object is `InvalidRange`.
fn parse_range(value: &str, size: u64) -> Result<Option<Range<u64>>, OssApiError> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else { return Ok(None) };
    let (start, end) = (start.trim(), end.trim());
    let parse = |t: &str| t.parse::<u64>().ok();
    let range = match (start.is_empty(), end.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => {
            let Some(n) = parse(end) else { return Ok(None) };
            if n == 0 {
                return Ok(None);
            }
            size.saturating_sub(n)..size
        }
        (false, _) => {
            let Some(s) = parse(start) else { return Ok(None) };
            let e = if end.is_empty() {
                size.saturating_sub(1)
            } else if let Some(e) = parse(end) {
                e.min(size.saturating_sub(1))
            } else {
                return Ok(None);
            };
            if !end.is_empty() && parse(end).is_some_and(|e| e < s) {
                return Ok(None);
            }
            if s >= size {
                return Err(OssApiError::new(OssErrorCode::InvalidRange));
            }
            s..e + 1
        }
    };
    Ok((range.start < range.end).then_some(range))
}

fn object_headers(object: &ObjectVersion) -> HeaderMap {
    let mut headers = digest_headers(&object.etag, object.crc64, object.content_md5.as_ref());
    let content_type = object.meta.content_type.as_deref().unwrap_or("application/octet-stream");
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&vodup_proto::timestamp::http_date(object.last_modified)) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers.insert(X_OSS_OBJECT_TYPE, HeaderValue::from_static(object.object_type.as_str()));
    headers.insert(X_OSS_STORAGE_CLASS, HeaderValue::from_static("Standard"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    for (name, value) in &object.meta.user_meta {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("{X_OSS_META_PREFIX}{name}").as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// GetObject and HeadObject: what the catalogue says the key names, read from its blobs.
pub async fn get_object(state: &AppState, ctx: &Ctx, head_only: bool) -> Result<Response, OssApiError> {
    let found = state
        .meta
        .get_object(&ctx.bucket, &ctx.key, !head_only)
        .await
        .map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    let (object, list) = found.ok_or_else(|| OssApiError::no_such_key(&ctx.key))?;
    let mut headers = object_headers(&object);
    if head_only {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size));
        return Ok((StatusCode::OK, headers).into_response());
    }
    let range = match ctx.header(header::RANGE) {
        Some(value) => parse_range(value, object.size)?,
        None => None,
    };
    let span = range.clone().unwrap_or(0..object.size);
    let stream = pieces::read(state.storage.clone(), list, span)
        .await
        .map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    let status = match &range {
        Some(range) => {
            headers.remove(X_OSS_HASH_CRC64ECMA);
            headers.remove("content-md5");
            let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, object.size);
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
            StatusCode::PARTIAL_CONTENT
        }
        None => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size));
            StatusCode::OK
        }
    };
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

/// DeleteObject: idempotent, 204. A commit like any other: the key stops naming its version, whose
/// blobs the collector reclaims.
pub async fn delete_object(state: &AppState, ctx: &Ctx) -> Result<Response, OssApiError> {
    let (task_state, bucket, key) = (state.clone(), ctx.bucket.clone(), ctx.key.clone());
    super::run_to_end(async move { task_state.meta.delete_object(&bucket, &key, task_state.now()).await })
        .await
        .map_err(|e| match e {
            crate::meta::MetaError::Refused(why) => {
                OssApiError::with_message(OssErrorCode::AccessDenied, format!("AccessDenied: {why}."))
            }
            e => OssApiError::internal(&ctx.request_id, &e),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=50-5000", 100).unwrap(), Some(50..100));
        assert_eq!(parse_range("bytes=9-3", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100).unwrap(), None);
        assert!(parse_range("bytes=100-", 100).is_err());
    }
}
