//! The OSS data plane: what `oss-<region>.aliyuncs.com` serves for uploads, with path-style and
//! virtual-host-style addressing.
//!
//! Every request goes through the same steps, in the order of vod-api.md §12.1: address (bucket and
//! decoded key) → classify ([`endpoint`]) → authenticate ([`auth`]) → object name → bucket → permission
//! → upload id bound to the key → the handler ([`object`], [`multipart`]). Responses carry
//! `x-oss-request-id`, `Date` and `Server: AliyunOSS`; errors are OSS XML ([`error`]).
//!
//! Whatever a request's body still holds when its answer is ready (all of it, when the request is refused
//! before the handler reads it) is read and discarded first, up to [`DRAIN_LIMIT`], so that every client
//! can read a refusal ([`body::drain`]).

pub mod auth;
pub mod body;
pub mod endpoint;
pub mod error;
pub mod multipart;
pub mod object;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use axum::routing::get;
use vodup_proto::encoding::{form_decode, percent_decode};
use vodup_proto::oss::{OssErrorCode, OssRequest};

use self::auth::Principal;
use self::body::Drained;
use self::endpoint::Endpoint;
use self::error::OssApiError;
use crate::envelope::{Outcome, Plane, RequestId};
use crate::meta::WriteGuard;
use crate::state::AppState;

/// How much of a body the data plane reads and discards so that the client can read the answer given before
/// its end (a refusal, mostly). A client that writes its whole body before it reads the answer (Node.js:
/// ali-oss, the Node.js VOD upload SDK) sees a broken pipe instead of the 403 and its code when the
/// server closes with unread bytes, and then cannot tell an expired credential (`SecurityTokenExpired`,
/// which it refreshes) from a network failure. 64 MiB covers every part and single-request upload the
/// official clients send by default (ali-oss 1 MiB parts, oss2 and voduploadsdk 10 MiB, alibabacloud-oss-v2
/// 6 MiB, ours 8 MiB) and the 20 MiB of the compat suite, with room for larger part sizes. A body that
/// announces more is not read at all: reading part of it does not spare the client its broken pipe. The cost
/// is bandwidth the client spends too, never memory (chunks are discarded as they arrive, each with the
/// body idle timeout); refused bodies cost no more than accepted ones.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// The data-plane router: `/healthz`, `/readyz`, and every other path is an OSS request.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(crate::health::liveness))
        .route("/readyz", get(crate::health::readiness))
        .fallback(oss)
        .with_state(state.clone());
    crate::envelope::wrap(router, state, Plane::Oss)
}

/// What a handler knows about its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The request id.
    pub request_id: String,
    /// The bucket (always this service's by the time a handler runs).
    pub bucket: String,
    /// The decoded key (empty for bucket-level requests).
    pub key: String,
    /// Decoded query.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Who is calling.
    pub principal: Principal,
}

impl Ctx {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A header value as text.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The revocation checks a write must pass in its commit (vod-api.md §12.2): the signing key, or the
    /// key that minted the upload credential, and that credential's media.
    pub fn guard(&self) -> Option<WriteGuard> {
        match &self.principal {
            Principal::Sts(claims) => Some(WriteGuard {
                issuing_key_id: claims.issuing_key_id.clone(),
                media_id: Some(claims.media_id.clone()),
                overwrite: claims.overwrite,
            }),
            Principal::Key { id } => {
                Some(WriteGuard { issuing_key_id: id.clone(), media_id: None, overwrite: false })
            }
            // Presigned URLs only read.
            Principal::Presign => None,
        }
    }
}

/// Streams a request body into a new blob, hashing it on the way and holding it to `limits`, and counts it:
/// in flight while it is written (`vodup_blob_writes_in_flight`), then its bytes as received. The one way
/// the handlers store a body.
pub async fn store_body(
    state: &AppState,
    body: Body,
    limits: &crate::storage::WriteLimits,
) -> Result<crate::storage::StoredBlob, crate::storage::StorageError> {
    let stream = body::stream(body, state.settings.body_idle_timeout);
    let _writing = state.metrics.blob_write_started();
    let blob = state.storage.write(stream, limits).await?;
    crate::metrics::Metrics::add(&state.metrics.bytes_received, blob.digests.len);
    Ok(blob)
}

/// Runs a commit on its own task and waits for it: once the request's bytes are stored, the commit runs to
/// its end (and is answered the same way to a retry) whether or not the client is still connected, since
/// a client's disconnect drops the handler's future and would otherwise stop it between two steps.
pub async fn run_to_end<T: Send + 'static>(
    commit: impl std::future::Future<Output = Result<T, crate::meta::MetaError>> + Send + 'static,
) -> Result<T, crate::meta::MetaError> {
    tokio::spawn(commit).await.map_err(|e| crate::meta::MetaError::Backend {
        context: "running a commit".into(),
        source: Box::new(e),
    })?
}

async fn oss(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    crate::fault::hit(crate::fault::FaultPoint::HandlerPanics);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let expects_continue =
        headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (body, returned) = body::lend(body);
    let (name, result) = handle(&state, &request_id, &method, &uri, headers, body).await;
    let stalled = matches!(&result, Err(e) if e.code == OssErrorCode::RequestTimeout);
    let keep_connection = match returned.take() {
        // The client stopped sending, or was told to wait for `100 Continue` and never was: its body is
        // not coming, so there is nothing to read.
        Some(left) if stalled || (expects_continue && !left.read) => left.body.is_end_stream(),
        Some(left) => {
            let drained = body::drain(left.body, state.settings.body_idle_timeout, DRAIN_LIMIT).await;
            if drained != (Drained::Whole { discarded: 0 }) {
                tracing::debug!(request_id, ?drained, "unread request body");
            }
            matches!(drained, Drained::Whole { .. })
        }
        None => true,
    };
    let mut response =
        match result {
            Ok(response) => Outcome { action: name, code: "OK" }.attach(response),
            Err(error) => Outcome { action: name, code: error.code.as_str() }
                .attach(error.into_response_for(&method, &request_id, &host)),
        };
    if !keep_connection {
        // hyper closes the connection anyway when the body was not read to its end; say so.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Bucket and decoded key from Host and path: virtual-host style when the Host starts with our bucket
/// name followed by a dot, path style otherwise.
fn address(bucket: &str, headers: &HeaderMap, path: &str) -> Result<(String, Option<String>), OssApiError> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let raw = path.strip_prefix('/').unwrap_or(path);
    let (bucket, raw_key) =
        if host.len() > bucket.len() && host.starts_with(bucket) && host.as_bytes()[bucket.len()] == b'.' {
            (bucket.to_owned(), raw)
        } else {
            match raw.split_once('/') {
                Some((bucket, rest)) => (bucket.to_owned(), rest),
                None => (raw.to_owned(), ""),
            }
        };
    let key = percent_decode(raw_key).map_err(|_| {
        OssApiError::with_message(OssErrorCode::InvalidObjectName, "The object name is not valid UTF-8.")
    })?;
    let bucket = percent_decode(&bucket).map_err(|_| {
        OssApiError::with_message(OssErrorCode::InvalidBucketName, "The bucket name is not valid UTF-8.")
    })?;
    Ok((bucket, (!key.is_empty()).then_some(key)))
}

async fn handle(
    state: &AppState,
    request_id: &str,
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Body,
) -> (&'static str, Result<Response, OssApiError>) {
    let (bucket, key) = match address(&state.site.bucket, &headers, uri.path()) {
        Ok(addressed) => addressed,
        Err(e) => return ("Unknown", Err(e)),
    };
    let query = form_decode(uri.query().unwrap_or(""));
    let endpoint = match Endpoint::classify(method.as_str(), key.is_some(), &query) {
        Ok(endpoint) => endpoint,
        Err(e) => return ("Unknown", Err(e)),
    };
    let name = endpoint.name();
    let result = async {
        let request = OssRequest {
            method: method.as_str(),
            bucket: Some(&bucket),
            key: key.as_deref(),
            query: &query,
            headers: &headers,
        };
        let principal = auth::authenticate(state, &request, request_id).await?;
        if let Some(key) = &key {
            auth::check_object_name(key)?;
        }
        if bucket != state.site.bucket {
            let mut error = OssApiError::new(OssErrorCode::NoSuchBucket);
            error.body.bucket_name = Some(bucket.clone());
            return Err(error);
        }
        auth::authorize(state, &principal, &endpoint, &bucket, key.as_deref())?;
        if let Some(upload_id) = endpoint.upload_id()
            && !state.sts.upload_id_matches(upload_id, &bucket, key.as_deref().unwrap_or(""))
        {
            return Err(OssApiError::no_such_upload(upload_id));
        }
        let ctx = Ctx {
            request_id: request_id.to_owned(),
            bucket,
            key: key.unwrap_or_default(),
            query,
            headers,
            principal,
        };
        dispatch(state, &ctx, &endpoint, body).await
    }
    .await;
    (name, result)
}

async fn dispatch(
    state: &AppState,
    ctx: &Ctx,
    endpoint: &Endpoint,
    body: Body,
) -> Result<Response, OssApiError> {
    match endpoint {
        Endpoint::PutObject => object::put_object(state, ctx, body).await,
        Endpoint::GetObject => object::get_object(state, ctx, false).await,
        Endpoint::HeadObject => object::get_object(state, ctx, true).await,
        Endpoint::DeleteObject => object::delete_object(state, ctx).await,
        Endpoint::InitiateMultipartUpload => multipart::initiate(state, ctx).await,
        Endpoint::UploadPart { part_number, upload_id } => {
            multipart::upload_part(state, ctx, upload_id, *part_number, body).await
        }
        Endpoint::CompleteMultipartUpload { upload_id } => {
            multipart::complete(state, ctx, upload_id, body).await
        }
        Endpoint::AbortMultipartUpload { upload_id } => multipart::abort(state, ctx, upload_id).await,
        Endpoint::ListParts { upload_id } => multipart::list_parts(state, ctx, upload_id).await,
        Endpoint::ListMultipartUploads => multipart::list_uploads(state, ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn host(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn path_style_and_virtual_host_style() {
        let (b, k) = address("outin-b", &host("127.0.0.1:9000"), "/outin-b/sv%2Fa%20b.mp4").unwrap();
        assert_eq!((b.as_str(), k.as_deref()), ("outin-b", Some("sv/a b.mp4")));
        let (b, k) = address("outin-b", &host("outin-b.oss.example.com"), "/sv/a+b.mp4").unwrap();
        assert_eq!((b.as_str(), k.as_deref()), ("outin-b", Some("sv/a+b.mp4")));
        let (b, k) = address("outin-b", &host("127.0.0.1:9000"), "/outin-b/").unwrap();
        assert_eq!((b.as_str(), k), ("outin-b", None));
        let (b, k) = address("outin-b", &host("127.0.0.1:9000"), "/other/x").unwrap();
        assert_eq!((b.as_str(), k.as_deref()), ("other", Some("x")));
        assert!(address("outin-b", &host("h"), "/outin-b/%FF").is_err());
    }
}
