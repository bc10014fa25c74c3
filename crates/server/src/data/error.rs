//! Every data-plane failure as exactly one OSS wire error: the `<Error>` XML of oss-api.md §7 with its
//! HTTP status, or for HEAD an empty body and the XML Base64-encoded in `x-oss-err`. Internal failures
//! are logged with the request id and answered as `InternalError` without detail.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vodup_proto::oss::OssErrorCode;
use vodup_proto::oss::error::OssError;
use vodup_proto::oss::header::{X_OSS_EC, X_OSS_ERR, X_OSS_REQUEST_ID};

use crate::meta::MetaError;
use crate::storage::StorageError;

/// A refusal or failure of an OSS request.
#[derive(Debug)]
pub struct OssApiError {
    /// The body (code, message and extra elements); request id and host are filled when rendered. Boxed:
    /// it is large and travels in every `Result` of the data plane.
    pub body: Box<OssError>,
    /// The code, for status and metrics.
    pub code: OssErrorCode,
}

impl OssApiError {
    /// An error with the code's default message.
    pub fn new(code: OssErrorCode) -> Self {
        Self { body: Box::new(OssError::new(code, "", "")), code }
    }

    /// An error with a specific message.
    pub fn with_message(code: OssErrorCode, message: impl Into<String>) -> Self {
        let mut error = Self::new(code);
        error.body.message = message.into();
        error
    }

    /// `InvalidArgument` naming the argument and its value.
    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> Self {
        let mut error = Self::with_message(OssErrorCode::InvalidArgument, message);
        error.body.argument_name = Some(name.to_owned());
        error.body.argument_value = Some(value.to_owned());
        error
    }

    /// `NoSuchUpload` naming the upload.
    pub fn no_such_upload(upload_id: &str) -> Self {
        let mut error = Self::new(OssErrorCode::NoSuchUpload);
        error.body.upload_id = Some(upload_id.to_owned());
        error
    }

    /// `NoSuchKey` naming the key.
    pub fn no_such_key(key: &str) -> Self {
        let mut error = Self::new(OssErrorCode::NoSuchKey);
        error.body.key = Some(key.to_owned());
        error
    }

    /// An internal failure: logged with detail, answered without.
    pub fn internal(request_id: &str, what: &dyn std::error::Error) -> Self {
        tracing::error!(request_id, error = %what, "internal error");
        Self::new(OssErrorCode::InternalError)
    }

    /// The service's disk is full: logged for the operator, answered with vodup's own 503 code, which
    /// clients should not retry (unlike `ServiceUnavailable`).
    pub fn storage_full(request_id: &str, what: &dyn std::error::Error) -> Self {
        tracing::error!(request_id, error = %what, "storage is full");
        Self::new(OssErrorCode::InsufficientStorage)
    }

    /// The storage backend cannot serve for now (an object store without quorum): logged, answered
    /// 503 `ServiceUnavailable`, which clients retry.
    pub fn unavailable(request_id: &str, what: &dyn std::error::Error) -> Self {
        tracing::warn!(request_id, error = %what, "storage unavailable");
        Self::new(OssErrorCode::ServiceUnavailable)
    }

    /// Maps a storage failure; `not_found` is what a missing thing means for this operation.
    pub fn from_storage(request_id: &str, error: &StorageError, not_found: impl FnOnce() -> Self) -> Self {
        match error {
            StorageError::NotFound(_) => not_found(),
            StorageError::TooLarge { .. } => Self::new(OssErrorCode::EntityTooLarge),
            StorageError::DigestMismatch => Self::new(OssErrorCode::InvalidDigest),
            StorageError::Incomplete { .. } => Self::new(OssErrorCode::IncompleteBody),
            StorageError::Body(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                Self::new(OssErrorCode::RequestTimeout)
            }
            StorageError::Body(_) => Self::new(OssErrorCode::IncompleteBody),
            StorageError::InvalidRange { .. } => Self::new(OssErrorCode::InvalidRange),
            StorageError::Full { .. } => Self::storage_full(request_id, error),
            StorageError::Unavailable { .. } => Self::unavailable(request_id, error),
            StorageError::Backend { .. } | StorageError::InUse { .. } => Self::internal(request_id, error),
        }
    }

    /// Maps a catalogue failure; a refused write (revoked key, deleted media) is `AccessDenied`.
    pub fn from_meta(request_id: &str, error: &MetaError, not_found: impl FnOnce() -> Self) -> Self {
        match error {
            MetaError::NotFound(_) => not_found(),
            MetaError::Refused(why) => Self::with_message(
                OssErrorCode::AccessDenied,
                format!("The upload is no longer allowed: {why}."),
            ),
            MetaError::Full(_) => Self::storage_full(request_id, error),
            MetaError::Conflict(_) | MetaError::Backend { .. } => Self::internal(request_id, error),
        }
    }

    /// The response for `method` (HEAD gets no body).
    pub fn into_response_for(mut self, method: &Method, request_id: &str, host: &str) -> Response {
        self.body.request_id = request_id.to_owned();
        self.body.host_id = host.to_owned();
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = if *method == Method::HEAD {
            let mut response = status.into_response();
            if let Ok(value) = HeaderValue::from_str(&self.body.to_header()) {
                response.headers_mut().insert(X_OSS_ERR, value);
            }
            response
        } else {
            let mut response = (status, self.body.to_xml()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            response
        };
        if let Some(ec) = self.body.ec.as_deref().and_then(|ec| HeaderValue::from_str(ec).ok()) {
            response.headers_mut().insert(X_OSS_EC, ec);
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert(X_OSS_REQUEST_ID, value);
        }
        response
    }
}
