//! Multipart uploads (oss-api.md §3.2-3.7): Initiate, UploadPart, Complete, Abort, ListParts and
//! ListMultipartUploads.
//!
//! Each part is its own blob, recorded in the catalogue as part of its open upload (replacing an earlier
//! part of that number) once its bytes are stored. Complete is one catalogue transaction: it checks the
//! upload is still open, the guards, and each listed part's ETag against the part it will publish, then
//! makes the key name those blobs in order (no byte is copied, cost independent of the object's size) and
//! moves the media's status in the same step. Abort is one transaction too, so exactly one of a racing
//! Complete and Abort wins, and the loser's answer says so.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vodup_proto::mac::md5;
use vodup_proto::oss::OssErrorCode;
use vodup_proto::oss::header::X_OSS_HASH_CRC64ECMA;
use vodup_proto::oss::part::{MAX_PART_SIZE, MIN_PART_SIZE};
use vodup_proto::oss::xml::{
    CommonPrefix, CompleteMultipartUpload, CompleteMultipartUploadResult, InitiateMultipartUploadResult,
    ListMultipartUploadsResult, ListPartsResult, ListedPart, ListedUpload, encode_key, from_xml, to_xml,
};
use vodup_proto::timestamp::oss_xml_time;

use super::Ctx;
use super::error::OssApiError;
use super::object::{committed, content_md5, digest_headers, event_builder, precheck, write_limits};
use crate::buffered_body::{self, BufferError};
use crate::fault::{self, FaultPoint};
use crate::meta::{Committed, CompleteCommit, CompleteOutcome, NewBlob, NewUpload, StoredPart, UploadQuery};
use crate::metrics::Metrics;
use crate::state::AppState;

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
    let media_id = ctx.guard().and_then(|g| g.media_id);
    let upload = NewUpload {
        upload_id: upload_id.clone(),
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        media_id,
        content_type: ctx.header(header::CONTENT_TYPE).unwrap_or("").to_owned(),
        initiated_at: state.now(),
    };
    state.meta.create_upload(&upload, ctx.guard().as_ref()).await.map_err(|e| {
        OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::new(OssErrorCode::AccessDenied))
    })?;
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
    // Checked again when the part is recorded; this spares the body of a part for a closed upload.
    let upload =
        state.meta.get_upload(upload_id).await.map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
    let open = |u: &crate::meta::Upload| {
        u.state == crate::meta::UploadState::Open && u.new.bucket == ctx.bucket && u.new.key == ctx.key
    };
    if !upload.as_ref().is_some_and(open) {
        return Err(OssApiError::no_such_upload(upload_id));
    }
    let blob = super::store_body(state, body, &limits).await.map_err(|e| {
        OssApiError::from_storage(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    fault::hit(FaultPoint::BlobStored);
    let digests = blob.digests;
    let (task_state, id, bucket, key) =
        (state.clone(), upload_id.to_owned(), ctx.bucket.clone(), ctx.key.clone());
    let blob = NewBlob { id: blob.id, digests };
    super::run_to_end(async move {
        task_state.meta.put_part(&id, &bucket, &key, part_number, &blob, task_state.now()).await
    })
    .await
    .map_err(|e| OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id)))?;
    fault::hit(FaultPoint::StatusCommitted);
    Metrics::add(&state.metrics.parts_uploaded, 1);
    Ok((StatusCode::OK, digest_headers(&digests.etag(), digests.crc64, Some(&digests.md5))).into_response())
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
    let complete_all = ctx.header("x-oss-complete-all").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let listed = if complete_all && bytes.is_empty() {
        None
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| OssApiError::new(OssErrorCode::MalformedXML))?;
        let parsed: CompleteMultipartUpload =
            from_xml(text).map_err(|_| OssApiError::new(OssErrorCode::MalformedXML))?;
        if parsed.parts.is_empty() {
            return Err(OssApiError::with_message(
                OssErrorCode::MalformedXML,
                "The Complete request lists no parts.",
            ));
        }
        let mut previous = 0;
        for part in &parsed.parts {
            if part.part_number <= previous {
                return Err(OssApiError::new(OssErrorCode::InvalidPartOrder));
            }
            previous = part.part_number;
        }
        Some(parsed.parts.into_iter().map(|p| (p.part_number, p.etag)).collect())
    };
    // The request is whole: its checks and its commit run on their own task, to their end even if the
    // client goes away meanwhile (a dropped handler would stop between two catalogue reads and never
    // commit), and a retry of the same Complete gets the same answer.
    let (task_state, task_ctx, id) = (state.clone(), ctx.clone(), upload_id.to_owned());
    let outcome = tokio::spawn(async move { checked_complete(&task_state, &task_ctx, &id, listed).await })
        .await
        .map_err(|e| OssApiError::internal(&ctx.request_id, &e))??;
    match outcome {
        CompleteOutcome::Completed(done) => {
            committed(state, ctx, &done);
            Ok(complete_response(state, ctx, &done))
        }
        CompleteOutcome::Repeated(done) => {
            tracing::info!(
                request_id = ctx.request_id,
                upload_id,
                "answering a repeated Complete of a completed upload"
            );
            Ok(complete_response(state, ctx, &done))
        }
        CompleteOutcome::InvalidPart { part_number, etag } => {
            let mut error = OssApiError::new(OssErrorCode::InvalidPart);
            error.body.part_number = Some(part_number.to_string());
            error.body.etag = Some(etag);
            Err(error)
        }
        CompleteOutcome::PartTooSmall { part_number } => {
            let mut error = OssApiError::new(OssErrorCode::EntityTooSmall);
            error.body.part_number = Some(part_number.to_string());
            Err(error)
        }
        CompleteOutcome::NoParts => Err(OssApiError::with_message(
            OssErrorCode::InvalidPart,
            "The upload has no parts to complete with.",
        )),
    }
}

/// Complete's checks and commit. The revocation checks read before the commit refuse an open upload
/// whose credential no longer holds; an upload an identical Complete closed meanwhile (its media is
/// `Normal` now) goes on to the commit, which answers with that Complete's result.
async fn checked_complete(
    state: &AppState,
    ctx: &Ctx,
    upload_id: &str,
    listed: Option<Vec<(u32, String)>>,
) -> Result<CompleteOutcome, OssApiError> {
    let is_open = async || {
        let upload =
            state.meta.get_upload(upload_id).await.map_err(|e| OssApiError::internal(&ctx.request_id, &e))?;
        Ok::<_, OssApiError>(upload.is_some_and(|u| u.state == crate::meta::UploadState::Open))
    };
    if is_open().await?
        && let Err(refused) = precheck(state, ctx).await
        && is_open().await?
    {
        return Err(refused);
    }
    let commit = CompleteCommit {
        upload_id: upload_id.to_owned(),
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        listed,
        min_part_size: MIN_PART_SIZE,
    };
    let at = state.now();
    let build = event_builder(state, &commit.key, at);
    state
        .meta
        .complete_upload(&commit, ctx.guard().as_ref(), Some(std::sync::Arc::new(build)), at)
        .await
        .map_err(|e| OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id)))
}

/// The answer to a successful CompleteMultipartUpload.
fn complete_response(state: &AppState, ctx: &Ctx, done: &Committed) -> Response {
    let encoding = encoding_type(ctx);
    let body = to_xml(&CompleteMultipartUploadResult {
        encoding_type: encoding.map(str::to_owned),
        location: state.site.object_url(&ctx.key),
        bucket: ctx.bucket.clone(),
        key: encode_key(&ctx.key, encoding),
        etag: done.etag.clone(),
    });
    let mut response = xml_response(body);
    if let Ok(value) = HeaderValue::from_str(&done.etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(X_OSS_HASH_CRC64ECMA, HeaderValue::from(done.crc64));
    response
}

/// AbortMultipartUpload: 204; later calls on the id get `NoSuchUpload`. One catalogue transaction: the
/// upload closes and its parts' blobs go to the collector.
pub async fn abort(state: &AppState, ctx: &Ctx, upload_id: &str) -> Result<Response, OssApiError> {
    let (task_state, id) = (state.clone(), upload_id.to_owned());
    super::run_to_end(async move { task_state.meta.abort_upload(&id, task_state.now()).await })
        .await
        .map_err(|e| {
            OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
        })?;
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
    let stored = state.meta.list_parts(upload_id, &ctx.bucket, &ctx.key).await.map_err(|e| {
        OssApiError::from_meta(&ctx.request_id, &e, || OssApiError::no_such_upload(upload_id))
    })?;
    let after: Vec<&StoredPart> = stored.iter().filter(|p| p.part_number > marker).collect();
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
                last_modified: oss_xml_time(p.uploaded_at),
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
