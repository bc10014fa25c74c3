//! The VOD RPC control plane: what `vod.<region>.aliyuncs.com` serves, for the upload side of the API.
//!
//! One route takes every call (`POST /` or `GET /`); the action comes from `Action` or `x-acs-action`.
//! Order of work: size limit → parse → the anonymous allow-list (ReportUploadProgress) → authentication
//! ([`auth`]) → the action's handler. Every outcome is logged with its request id and counted.

pub mod auth;
pub mod error;
pub mod media;
pub mod progress;
pub mod request;
pub mod upload;
pub mod validate;

use std::net::SocketAddr;

use crate::buffered_body::BufferError;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use vodup_proto::encoding::form_decode;
use vodup_proto::vod::{API_VERSION, Action, VodErrorCode};

use self::auth::Signed;
use self::error::ApiError;
use self::request::{Call, Params};
use crate::envelope::{Outcome, Plane, RequestId};
use crate::state::AppState;

/// Query plus body larger than this is refused with 413 (vod-api.md §12.1).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// A whole control-plane request (they are small) must finish within this.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The control-plane router. Unlike the data plane it has a deadline per request: its bodies are at
/// most 64 KiB, so a slow one is a stuck or hostile client.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(crate::health::liveness))
        .route("/readyz", get(crate::health::readiness))
        .route("/metrics", get(metrics))
        .route("/", any(rpc))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state.clone());
    crate::envelope::wrap(router, state, Plane::Vod)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    match state.meta.event_counts().await {
        Ok(counts) => text.push_str(&crate::metrics::render_events(&counts)),
        Err(e) => tracing::warn!(error = %e, "could not count events for /metrics"),
    }
    match state.meta.blob_counts().await {
        Ok(counts) => text.push_str(&crate::metrics::render_blobs(&counts)),
        Err(e) => tracing::warn!(error = %e, "could not count blobs for /metrics"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn rpc(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    crate::fault::hit(crate::fault::FaultPoint::HandlerPanics);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("vod").to_owned();
    let (action, result) = handle(&state, &request_id, peer, &method, &uri, &headers, body).await;
    let action = action.map_or("Unknown", Action::as_str);
    match result {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                map.insert("RequestId".into(), Value::String(request_id.clone()));
            }
            let mut response = (StatusCode::OK, value.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
            Outcome { action, code: "OK" }.attach(response)
        }
        Err(error) => {
            Outcome { action, code: error.code.as_str() }.attach(error.into_response_for(&request_id, &host))
        }
    }
}

async fn handle(
    state: &AppState,
    request_id: &str,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> (Option<Action>, Result<Value, ApiError>) {
    let raw_query = uri.query().unwrap_or("");
    let too_large = || {
        ApiError::new(
            VodErrorCode::RequestEntityTooLarge,
            format!("The request is larger than {MAX_REQUEST_BYTES} bytes (query and body together)."),
        )
    };
    if raw_query.len() > MAX_REQUEST_BYTES {
        return (None, Err(too_large()));
    }
    let limit = MAX_REQUEST_BYTES - raw_query.len();
    let buffered =
        match crate::buffered_body::read(body, limit, state.settings.body_idle_timeout, &state.body_budget)
            .await
        {
            Ok(buffered) => buffered,
            Err(BufferError::TooLarge { .. }) => return (None, Err(too_large())),
            Err(e @ BufferError::Busy) => {
                return (None, Err(ApiError::new(VodErrorCode::ServiceUnavailable, e.to_string())));
            }
            Err(e) => {
                return (
                    None,
                    Err(ApiError::new(
                        VodErrorCode::InvalidParameter,
                        format!("The request body could not be read: {e}."),
                    )),
                );
            }
        };
    let body = &buffered.bytes;
    let query = form_decode(raw_query);
    let mut pairs = query.clone();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => pairs.extend(form_decode(text)),
            Err(_) => return (None, Err(ApiError::invalid("body", "a form body must be UTF-8"))),
        }
    }
    let params = Params::new(pairs);

    let action_name =
        params.opt("Action").or_else(|| headers.get("x-acs-action").and_then(|v| v.to_str().ok()));
    let Some(action_name) = action_name else { return (None, Err(ApiError::missing("Action"))) };
    let Ok(action) = action_name.parse::<Action>() else {
        return (
            None,
            Err(ApiError::new(
                VodErrorCode::InvalidActionNotFound,
                format!("Specified api {action_name:?} is not found, please check your url and method."),
            )),
        );
    };

    // The one anonymous action: answered before any credential check (vod-api.md §5.13).
    if action == Action::ReportUploadProgress {
        return (Some(action), progress::report_upload_progress(state, &params, peer.ip(), body.len()));
    }

    let version =
        params.opt("Version").or_else(|| headers.get("x-acs-version").and_then(|v| v.to_str().ok()));
    let signed =
        Signed { method: method.as_str(), path: uri.path(), query: &query, params: &params, headers, body };
    let key_id = match auth::authenticate(state, &signed, request_id).await {
        Ok(key_id) => key_id,
        Err(error) => return (Some(action), Err(error)),
    };
    if version != Some(API_VERSION) {
        return (
            Some(action),
            Err(ApiError::new(
                VodErrorCode::InvalidVersion,
                format!("Specified parameter Version is not valid; this service speaks {API_VERSION}."),
            )),
        );
    }
    let call =
        Call { request_id: request_id.to_owned(), action, params, key_id, now: state.now(), peer: peer.ip() };
    (Some(action), dispatch(state, &call).await)
}

async fn dispatch(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    match call.action {
        Action::CreateUploadVideo => upload::create_upload_video(state, call).await,
        Action::RefreshUploadVideo => upload::refresh_upload_video(state, call).await,
        Action::CreateUploadImage => upload::create_upload_image(state, call).await,
        Action::CreateUploadAttachedMedia => upload::create_upload_attached_media(state, call).await,
        Action::GetVideoInfo => media::get_video_info(state, call).await,
        Action::GetVideoInfos => media::get_video_infos(state, call).await,
        Action::GetVideoList => media::get_video_list(state, call).await,
        Action::UpdateVideoInfo => media::update_video_info(state, call).await,
        Action::DeleteVideo => media::delete_video(state, call).await,
        Action::GetMezzanineInfo => media::get_mezzanine_info(state, call).await,
        Action::GetImageInfo => media::get_image_info(state, call).await,
        Action::DeleteImage => media::delete_image(state, call).await,
        Action::GetAttachedMediaInfo => media::get_attached_media_info(state, call).await,
        Action::DeleteAttachedMedia => media::delete_attached_media(state, call).await,
        Action::GetUploadDetails => media::get_upload_details(state, call).await,
        Action::ReportUploadProgress => Ok(json!({})),
        Action::UploadMediaByURL
        | Action::GetURLUploadInfos
        | Action::SearchMedia
        | Action::GetPlayInfo
        | Action::RegisterMedia => Err(ApiError::new(
            VodErrorCode::InvalidActionNotFound,
            format!(
                "{} is not offered by this self-hosted service (it pulls, transcodes or searches media, which vodup does not).",
                call.action
            ),
        )),
    }
}
