//! Authentication of VOD RPC calls, in the check order of vod-api.md §12.1: credential present →
//! AccessKeyId known → not an STS id → key active → timestamp window → signature → nonce.
//!
//! Both schemes are verified from the request as received: v1 over every query and form parameter,
//! ACS3 over the headers it names and the hash of the body actually read. Keys are read fresh from the
//! catalogue on every call, so revoking a key takes effect at once on this plane.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use vodup_proto::SignatureError;
use vodup_proto::timestamp::parse_iso8601;
use vodup_proto::vod::signature_acs3::{self, Acs3Authorization, X_ACS_DATE, X_ACS_SIGNATURE_NONCE};
use vodup_proto::vod::{VodError, VodErrorCode, signature_v1};

use super::error::ApiError;
use super::request::Params;
use crate::state::AppState;
use crate::sts::is_sts_id;

/// How far a request's timestamp may be from the server's clock.
pub const TIMESTAMP_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The parts of a request that authentication reads.
#[derive(Debug)]
pub struct Signed<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// URL path.
    pub path: &'a str,
    /// Decoded query parameters alone (ACS3 signs only these).
    pub query: &'a [(String, String)],
    /// Query and form parameters together (v1 signs all of them).
    pub params: &'a Params,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// The body as read.
    pub body: &'a [u8],
}

/// Authenticates a call; returns the AccessKeyId of the long-lived key that signed it.
pub async fn authenticate(
    state: &AppState,
    request: &Signed<'_>,
    request_id: &str,
) -> Result<String, ApiError> {
    let authorization = request.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let acs3 = match authorization {
        Some(value) if value.starts_with(signature_acs3::ALGORITHM) => {
            Some(Acs3Authorization::parse(value).map_err(|e| {
                ApiError::new(
                    VodErrorCode::IncompleteSignature,
                    format!("The Authorization header is malformed: {e}"),
                )
            })?)
        }
        _ => None,
    };
    let access_key_id = match &acs3 {
        Some(auth) => auth.access_key_id.clone(),
        None => match request.params.get("AccessKeyId") {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => return Err(ApiError::missing("AccessKeyId")),
        },
    };
    if is_sts_id(&access_key_id) {
        return Err(ApiError::new(
            VodErrorCode::AccessDenied,
            "Upload credentials (STS) cannot call the VOD API; sign with a long-lived AccessKey.",
        ));
    }
    let key = state
        .keys
        .fresh(state.meta.as_ref(), &access_key_id)
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?
        .ok_or_else(|| {
            ApiError::new(VodErrorCode::InvalidAccessKeyIdNotFound, "Specified access key is not found.")
        })?;
    if key.revoked_at.is_some() {
        return Err(ApiError::new(
            VodErrorCode::InvalidAccessKeyIdInactive,
            "Specified access key is disabled.",
        ));
    }

    let (timestamp_name, timestamp) = match &acs3 {
        Some(_) => (X_ACS_DATE, request.headers.get(X_ACS_DATE).and_then(|v| v.to_str().ok())),
        None => ("Timestamp", request.params.get("Timestamp")),
    };
    let timestamp = timestamp.ok_or_else(|| ApiError::missing(timestamp_name))?;
    check_timestamp(timestamp_name, timestamp, state.now())?;

    let verified = match &acs3 {
        Some(auth) => signature_acs3::verify(
            request.method,
            request.path,
            request.query,
            request.headers,
            request.body,
            auth,
            &key.secret,
        ),
        None => signature_v1::verify(request.method, request.params.pairs(), &key.secret),
    };
    verified.map_err(|e| match e {
        SignatureError::Mismatch { string_to_sign } => ApiError::new(
            VodErrorCode::SignatureDoesNotMatch,
            VodError::signature_mismatch_message(&string_to_sign),
        ),
        SignatureError::Missing(what) => ApiError::missing(what),
        SignatureError::Malformed { .. } => ApiError::new(VodErrorCode::IncompleteSignature, e.to_string()),
    })?;

    let nonce = match &acs3 {
        Some(_) => request.headers.get(X_ACS_SIGNATURE_NONCE).and_then(|v| v.to_str().ok()),
        None => request.params.get("SignatureNonce"),
    };
    let nonce = nonce.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::missing("SignatureNonce"))?;
    // The catalogue remembers nonces, so a replay is refused after a restart too. A nonce lives for the
    // window on both sides of now: a request signed up to the window ahead stays replayable that long.
    let now = state.now();
    let digest = crate::credentials::nonce_digest(&access_key_id, nonce);
    let fresh = state
        .meta
        .record_nonce(&digest, now, now + TIMESTAMP_WINDOW * 2)
        .await
        .map_err(|e| ApiError::from_meta(request_id, &e))?;
    if !fresh {
        return Err(ApiError::new(
            VodErrorCode::SignatureNonceUsed,
            "Specified signature nonce was used already.",
        ));
    }
    Ok(access_key_id)
}

fn check_timestamp(name: &str, text: &str, now: SystemTime) -> Result<(), ApiError> {
    let at =
        parse_iso8601(text).ok_or_else(|| ApiError::invalid(name, "expected YYYY-MM-DDThh:mm:ssZ (UTC)"))?;
    let skew = at.duration_since(now).or_else(|_| now.duration_since(at)).unwrap_or_default();
    if skew > TIMESTAMP_WINDOW {
        return Err(ApiError::new(
            VodErrorCode::InvalidTimeStampExpired,
            format!(
                "Specified time stamp or date value is expired: {text} is more than 15 minutes from the server's clock; sync the clock."
            ),
        ));
    }
    Ok(())
}
