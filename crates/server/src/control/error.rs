//! Every control-plane failure as exactly one VOD wire error: the JSON body of vod-api.md §3, served as
//! `application/json;charset=utf-8` with the code's HTTP status. Internal failures are logged with the
//! request id and answered as `InternalError` without detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vodup_proto::vod::{VodError, VodErrorCode};

use crate::meta::MetaError;
use crate::storage::StorageError;

/// A refusal or failure of a VOD call.
#[derive(Debug)]
pub struct ApiError {
    /// The wire code.
    pub code: VodErrorCode,
    /// The message sent to the client.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit message.
    pub fn new(code: VodErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `MissingParameter` naming the parameter.
    pub fn missing(name: &str) -> Self {
        Self::new(
            VodErrorCode::MissingParameter,
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    /// `InvalidParameter` naming the parameter and what is wrong.
    pub fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            VodErrorCode::InvalidParameter,
            format!("The specified parameter \"{name}\" is not valid: {why}"),
        )
    }

    /// An internal failure: logged here with its detail, answered without it.
    pub fn internal(request_id: &str, what: &dyn std::error::Error) -> Self {
        tracing::error!(request_id, error = %what, "internal error");
        Self::new(VodErrorCode::InternalError, "The request processing has failed due to some unknown error.")
    }

    /// Maps a metadata error: not-found and conflicts have their own codes at the call site, so here
    /// anything else is internal.
    pub fn from_meta(request_id: &str, error: &MetaError) -> Self {
        match error {
            MetaError::NotFound(what) => {
                Self::new(VodErrorCode::InvalidVideoNotFound, format!("{what} does not exist."))
            }
            MetaError::Conflict(what) => Self::invalid("ReferenceId", what),
            MetaError::Refused(what) => Self::new(VodErrorCode::ForbiddenIllegalStatus, what.clone()),
            MetaError::Full(_) => Self::storage_full(request_id, error),
            MetaError::Backend { .. } => Self::internal(request_id, error),
        }
    }

    /// Maps a storage error: a full store is said so, an unavailable one is a retryable 503; anything
    /// else is internal on this plane.
    pub fn from_storage(request_id: &str, error: &StorageError) -> Self {
        if error.is_full() {
            return Self::storage_full(request_id, error);
        }
        if error.is_unavailable() {
            tracing::warn!(request_id, error = %error, "storage unavailable");
            return Self::new(
                VodErrorCode::ServiceUnavailable,
                "The service's storage cannot be reached for now; nothing was changed. Retry later.",
            );
        }
        Self::internal(request_id, error)
    }

    /// The service's disk is full: logged for the operator, answered with a code clients do not retry.
    pub fn storage_full(request_id: &str, what: &dyn std::error::Error) -> Self {
        tracing::error!(request_id, error = %what, "storage is full");
        Self::new(
            VodErrorCode::InsufficientStorage,
            "The service's storage is full; nothing was changed. Ask the service's operator to free or add \
             storage, then retry.",
        )
    }

    /// The response, with the request id and host in the body.
    pub fn into_response_for(self, request_id: &str, host: &str) -> Response {
        let body = VodError::new(self.code, self.message, request_id, host).to_json();
        let status =
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-acs-request-id", value);
        }
        response
    }
}
