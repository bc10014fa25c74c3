//! Multipart uploads (oss-api.md §3.2-3.7): Initiate, UploadPart, Complete, Abort, ListParts and
//! ListMultipartUploads.
//!
//! UploadPart touches no database: the upload id proves which key it belongs to, the credential is
//! self-describing, and the part (with its MD5 and CRC-64) lives in storage. Complete checks the listed
//! parts against what storage holds, publishes the object as the ordered list of those parts (cost
//! independent of its size), and moves the media's status in the same step.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vodup_proto::crc64;
use vodup_proto::mac::md5;
use vodup_proto::oss::OssErrorCode;
use vodup_proto::oss::header::X_OSS_HASH_CRC64ECMA;
use vodup_proto::oss::part::{MAX_PART_SIZE, MIN_PART_SIZE, etags_match, md5_of_etag, multipart_etag};
use vodup_proto::oss::xml::{
    CommonPrefix, CompleteMultipartUpload, CompleteMultipartUploadResult, InitiateMultipartUploadResult,
    ListMultipartUploadsResult, ListPartsResult, ListedPart, ListedUpload, encode_key, from_xml, to_xml,
};
use vodup_proto::timestamp::oss_xml_time;

use super::Ctx;
use super::error::OssApiError;
use super::object::{content_md5, digest_headers, precheck, record, write_limits};
use crate::buffered_body::{self, BufferError};
use crate::meta::{NewUpload, UploadQuery, UploadState};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::storage::{ObjectInfo, ObjectMeta, PartInfo};

/// A Complete body for 10000 parts is well under this.
const MAX_COMPLETE_BODY: usize = 2 * 1024 * 1024;

fn xml_response(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

fn encoding_type(ctx: &Ctx) -> Option<&str> {
    ctx.param("encoding-type").filter(|t| *t == "url")
}

/// InitiateMultipartUpload.
pub async fn initiate(state: &AppState, ctx: &Ctx) -> Result<Response, OssApiError> {
    precheck(state, ctx).await?;
    let upload_id = state.sts.new_upload_id(&ctx.bucket, &ctx.key);
    let media_id = ctx.guard().map(|g| g.media_id);
    let upload = NewUpload {
        upload_id: upload_id.clone(),
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        media_id,
        content_type: ctx.header(header::CONTENT_TYPE).unwrap_or("").to_owned(),
        initiated_at: state.now(),
    };
    state.storage.create_upload(&upload_id).await.map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    if let Err(e) = state.meta.create_upload(&upload, ctx.guard().as_ref()).await {
        let _ = state.storage.abort_upload(&upload_id).await;
        return Err(OssApiError::from_meta(&ctx.request_id, &e, || {
            OssApiError::new(OssErrorCode::AccessDenied)
        }));
    }
    Metrics::add(&state.metrics.uploads_initiated, 1);
    let encoding = encoding_type(ctx);
    Ok(xml_response(to_xml(&InitiateMultipartUploadResult {
        bucket: ctx.bucket.clone(),
        key: encode_key(&ctx.key, encoding),
        upload_id,
        encoding_type: encoding.map(str::to_owned),
    })))
}

/// UploadPart.
pub async fn upload_part(
    state: &AppState,
    ctx: &Ctx,
    upload_id: &str,
    part_number: u32,
    body: Body,
) -> Result<Response, OssApiError> {
    let limits = write_limits(ctx, MAX_PART_SIZE)?;
    let stream = super::body::stream(body, state.settings.body_idle_timeout);
    let part = state.storage.put_part(upload_id, part_number, stream, &limits).await.map_err(|e| {
        OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    Metrics::add(&state.metrics.bytes_received, part.digests.len);
    Metrics::add(&state.metrics.parts_uploaded, 1);
    Ok((StatusCode::OK, digest_headers(&part.digests.etag(), part.digests.crc64, Some(&part.digests.md5)))
        .into_response())
}

/// Checks the Complete list against the stored parts: ascending numbers, each present with its ETag,
/// every part but the last at least 100 KiB.
fn check_parts<'a>(
    listed: &CompleteMultipartUpload,
    stored: &'a [PartInfo],
) -> Result<Vec<&'a PartInfo>, OssApiError> {
    if listed.parts.is_empty() {
        return Err(OssApiError::with_message(
            OssErrorCode::MalformedXML,
            "The Complete request lists no parts.",
        ));
    }
    let mut chosen = Vec::with_capacity(listed.parts.len());
    let mut previous = 0;
    for part in &listed.parts {
        if part.part_number <= previous {
            return Err(OssApiError::new(OssErrorCode::InvalidPartOrder));
        }
        previous = part.part_number;
        let found = stored
            .iter()
            .find(|p| p.part_number == part.part_number)
            .filter(|p| etags_match(&p.digests.etag(), &part.etag));
        let Some(found) = found else {
            let mut error = OssApiError::new(OssErrorCode::InvalidPart);
            error.body.part_number = Some(part.part_number.to_string());
            error.body.etag = Some(part.etag.clone());
            return Err(error);
        };
        chosen.push(found);
    }
    if let Some(small) = chosen[..chosen.len() - 1].iter().find(|p| p.digests.len < MIN_PART_SIZE) {
        let mut error = OssApiError::new(OssErrorCode::EntityTooSmall);
        error.body.part_number = Some(small.part_number.to_string());
        return Err(error);
    }
    Ok(chosen)
}

/// CompleteMultipartUpload.
pub async fn complete(
    state: &AppState,
    ctx: &Ctx,
    upload_id: &str,
    body: Body,
) -> Result<Response, OssApiError> {
    let buffered =
        buffered_body::read(body, MAX_COMPLETE_BODY, state.settings.body_idle_timeout, &state.body_budget)
            .await
            .map_err(|e| match e {
                BufferError::TooLarge { .. } => OssApiError::with_message(
                    OssErrorCode::EntityTooLarge,
                    format!("The Complete request body is larger than {MAX_COMPLETE_BODY} bytes."),
                ),
                BufferError::Busy => {
                    OssApiError::with_message(OssErrorCode::ServiceUnavailable, e.to_string())
                }
                BufferError::TimedOut(_) => {
                    OssApiError::with_message(OssErrorCode::RequestTimeout, e.to_string())
                }
                BufferError::Broken(_) => OssApiError::new(OssErrorCode::IncompleteBody),
            })?;
    let bytes: &[u8] = &buffered.bytes;
    if let Some(expected) = content_md5(ctx)?
        && md5(bytes) != expected
    {
        return Err(OssApiError::new(OssErrorCode::InvalidDigest));
    }
    let upload =
        state.meta.get_upload(upload_id).await.map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    let upload =
        upload.filter(|u| u.new.key == ctx.key).ok_or_else(|| OssApiError::no_such_upload(upload_id))?;
    let complete_all = ctx.header("x-oss-complete-all").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let parse = || -> Result<CompleteMultipartUpload, OssApiError> {
        let text = std::str::from_utf8(bytes).map_err(|_| OssApiError::new(OssErrorCode::MalformedXML))?;
        from_xml(text).map_err(|_| OssApiError::new(OssErrorCode::MalformedXML))
    };
    if upload.state != UploadState::Open {
        let listed = if complete_all && bytes.is_empty() { None } else { Some(parse()?) };
        return match completed_before(state, ctx, upload_id, upload.state, listed.as_ref()).await? {
            Some(info) => Ok(complete_response(state, ctx, &info)),
            None => Err(OssApiError::no_such_upload(upload_id)),
        };
    }
    precheck(state, ctx).await?;
    let stored = state.storage.list_parts(upload_id).await.map_err(|e| {
        OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    let listed: CompleteMultipartUpload = if complete_all && bytes.is_empty() {
        CompleteMultipartUpload {
            parts: stored
                .iter()
                .map(|p| vodup_proto::oss::xml::CompletePart {
                    part_number: p.part_number,
                    etag: p.digests.etag(),
                })
                .collect(),
        }
    } else {
        parse()?
    };
    let chosen = check_parts(&listed, &stored)?;
    let numbers: Vec<u32> = chosen.iter().map(|p| p.part_number).collect();
    let meta = ObjectMeta {
        content_type: Some(upload.new.content_type.clone()).filter(|t| !t.is_empty()),
        user_meta: Vec::new(),
    };
    let info = state.storage.complete_upload(upload_id, &ctx.key, &numbers, meta).await.map_err(|e| {
        OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    let expected_crc = chosen.iter().fold(0, |crc, p| crc64::combine(crc, p.digests.crc64, p.digests.len));
    if info.crc64 != expected_crc {
        // A part was re-uploaded between the check and the publish: the object holds the newer bytes,
        // whose CRC the client will see in the response header and can compare with its own.
        tracing::warn!(request_id = ctx.request_id, upload_id, "a part changed while the upload completed");
    }
    record(state, ctx, Some(upload_id), &info).await?;
    Ok(complete_response(state, ctx, &info))
}

/// A Complete retried after it succeeded (its answer lost to a dropped connection, or to a crash of the
/// server after the object was published) gets the first answer again, when the upload was completed
/// into the object now at the key and the retry lists the same parts (same multipart ETag). Anything else
/// is `NoSuchUpload`, as OSS answers for a closed upload. The caller already proved, by its signature,
/// that it may write this key; no revocation check applies, as nothing is written.
async fn completed_before(
    state: &AppState,
    ctx: &Ctx,
    upload_id: &str,
    upload_state: UploadState,
    listed: Option<&CompleteMultipartUpload>,
) -> Result<Option<ObjectInfo>, OssApiError> {
    if upload_state != UploadState::Completed {
        return Ok(None);
    }
    let info = match state.storage.head_object(&ctx.key).await {
        Ok(info) => info,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(OssApiError::internal(&ctx.request_id, &e)),
    };
    if info.upload_id.as_deref() != Some(upload_id) {
        return Ok(None);
    }
    if let Some(listed) = listed {
        let md5s: Option<Vec<[u8; 16]>> = listed.parts.iter().map(|p| md5_of_etag(&p.etag)).collect();
        if !md5s.is_some_and(|md5s| etags_match(&multipart_etag(md5s.iter()), &info.etag)) {
            return Ok(None);
        }
    }
    tracing::info!(
        request_id = ctx.request_id,
        upload_id,
        "answering a retried Complete of a completed upload"
    );
    Ok(Some(info))
}

/// The answer to a successful CompleteMultipartUpload.
fn complete_response(state: &AppState, ctx: &Ctx, info: &ObjectInfo) -> Response {
    let encoding = encoding_type(ctx);
    let body = to_xml(&CompleteMultipartUploadResult {
        encoding_type: encoding.map(str::to_owned),
        location: state.site.object_url(&ctx.key),
        bucket: ctx.bucket.clone(),
        key: encode_key(&ctx.key, encoding),
        etag: info.etag.clone(),
    });
    let mut response = xml_response(body);
    if let Ok(value) = HeaderValue::from_str(&info.etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(X_OSS_HASH_CRC64ECMA, HeaderValue::from(info.crc64));
    response
}

/// AbortMultipartUpload: 204; later calls on the id get `NoSuchUpload`.
pub async fn abort(state: &AppState, ctx: &Ctx, upload_id: &str) -> Result<Response, OssApiError> {
    state.meta.abort_upload(upload_id, state.now()).await.map_err(|e| {
        OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    match state.storage.abort_upload(upload_id).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(OssApiError::internal(&ctx.request_id, &e)),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn number_param(ctx: &Ctx, name: &str, default: u32, max: u32) -> Result<u32, OssApiError> {
    match ctx.param(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(|| {
            OssApiError::invalid_argument(format!("{name} must be an integer up to {max}."), name, v)
        }),
    }
}

/// ListParts, paged by `part-number-marker` (empty means 0) and `max-parts` (≤ 1000).
pub async fn list_parts(state: &AppState, ctx: &Ctx, upload_id: &str) -> Result<Response, OssApiError> {
    let marker = number_param(ctx, "part-number-marker", 0, 10_000)?;
    let max = number_param(ctx, "max-parts", 1000, 1000)?.max(1);
    let stored = state.storage.list_parts(upload_id).await.map_err(|e| {
        OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    let after: Vec<&PartInfo> = stored.iter().filter(|p| p.part_number > marker).collect();
    let page = &after[..after.len().min(max as usize)];
    let encoding = encoding_type(ctx);
    let result = ListPartsResult {
        encoding_type: encoding.map(str::to_owned),
        bucket: ctx.bucket.clone(),
        key: encode_key(&ctx.key, encoding),
        upload_id: upload_id.to_owned(),
        part_number_marker: marker,
        next_part_number_marker: page.last().map_or(marker, |p| p.part_number),
        max_parts: max,
        is_truncated: after.len() > page.len(),
        parts: page
            .iter()
            .map(|p| ListedPart {
                part_number: p.part_number,
                last_modified: oss_xml_time(p.last_modified),
                etag: p.digests.etag(),
                hash_crc64ecma: Some(p.digests.crc64),
                size: p.digests.len,
            })
            .collect(),
    };
    Ok(xml_response(to_xml(&result)))
}

/// ListMultipartUploads (long-lived keys only).
pub async fn list_uploads(state: &AppState, ctx: &Ctx) -> Result<Response, OssApiError> {
    let max = number_param(ctx, "max-uploads", 1000, 1000)?.max(1);
    let prefix = ctx.param("prefix").unwrap_or("").to_owned();
    let delimiter = ctx.param("delimiter").unwrap_or("").to_owned();
    let query = UploadQuery {
        bucket: ctx.bucket.clone(),
        prefix: prefix.clone(),
        key_marker: ctx.param("key-marker").unwrap_or("").to_owned(),
        upload_id_marker: ctx.param("upload-id-marker").unwrap_or("").to_owned(),
        max,
    };
    let rows =
        state.meta.list_open_uploads(&query).await.map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    let truncated = rows.len() > max as usize;
    let rows = &rows[..rows.len().min(max as usize)];
    let encoding = encoding_type(ctx);
    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for row in rows {
        let rest = &row.new.key[prefix.len().min(row.new.key.len())..];
        if !delimiter.is_empty()
            && let Some(i) = rest.find(&delimiter)
        {
            let common = format!("{prefix}{}", &rest[..i + delimiter.len()]);
            if prefixes.last() != Some(&common) {
                prefixes.push(common);
            }
            continue;
        }
        uploads.push(ListedUpload {
            key: encode_key(&row.new.key, encoding),
            upload_id: row.new.upload_id.clone(),
            storage_class: "Standard".into(),
            initiated: oss_xml_time(row.new.initiated_at),
        });
    }
    let last = rows.last();
    let result = ListMultipartUploadsResult {
        encoding_type: encoding.map(str::to_owned),
        bucket: ctx.bucket.clone(),
        key_marker: encode_key(&query.key_marker, encoding),
        upload_id_marker: query.upload_id_marker.clone(),
        next_key_marker: if truncated {
            last.map(|r| encode_key(&r.new.key, encoding)).unwrap_or_default()
        } else {
            String::new()
        },
        next_upload_id_marker: if truncated {
            last.map(|r| r.new.upload_id.clone()).unwrap_or_default()
        } else {
            String::new()
        },
        delimiter: delimiter.clone(),
        prefix: encode_key(&prefix, encoding),
        max_uploads: max,
        is_truncated: truncated,
        uploads,
        common_prefixes: prefixes
            .into_iter()
            .map(|p| CommonPrefix { prefix: encode_key(&p, encoding) })
            .collect(),
    };
    Ok(xml_response(to_xml(&result)))
}
