//! What every request of both planes goes through, written once: a request id, a tracing span that
//! carries it (so every log line of the request, a panic's included, names it), a panic turned into a
//! 500 in the plane's own error format, one access-log line and the request counters.
//!
//! Handlers read the id from the request's [`RequestId`] extension and report what they did by putting
//! an [`Outcome`] into the response's extensions; routes that report none (`/healthz`, `/metrics`) are
//! neither logged nor counted. Panics are caught by tower-http's `CatchPanicLayer` inside this layer; the
//! process's panic hook (`vodup serve` installs [`install_panic_hook`]) writes the one log line.

use std::panic::PanicHookInfo;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;
use vodup_proto::oss::OssErrorCode;
use vodup_proto::vod::VodErrorCode;

use crate::request_id::new_request_id;
use crate::state::AppState;

/// Which API a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The VOD RPC API.
    Vod,
    /// The OSS API.
    Oss,
}

impl Plane {
    /// The label in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vod => "vod",
            Self::Oss => "oss",
        }
    }

    /// The response header that carries the request id.
    pub fn request_id_header(self) -> &'static str {
        match self {
            Self::Vod => "x-acs-request-id",
            Self::Oss => vodup_proto::oss::header::X_OSS_REQUEST_ID,
        }
    }
}

/// The request id, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What a handler did: the action and `OK` or the error code, in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The action (`CreateUploadVideo`, `UploadPart`, `Unknown`).
    pub action: &'static str,
    /// `OK` or the error code sent.
    pub code: &'static str,
}

impl Outcome {
    /// Attaches the outcome to `response`.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// A response tower-http's `CatchPanicLayer` made from a panic; the envelope replaces it.
#[derive(Debug, Clone, Copy)]
struct Panicked;

/// The layers every request of `plane` goes through, outermost first: the envelope, then the panic
/// catcher.
pub fn wrap(router: axum::Router, state: AppState, plane: Plane) -> axum::Router {
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_payload: Box<dyn std::any::Any + Send>| {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(Panicked);
            response
        }))
        .layer(axum::middleware::from_fn_with_state((state, plane), envelope))
}

async fn envelope(
    State((state, plane)): State<(AppState, Plane)>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = new_request_id();
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let method = request.method().clone();
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    let started = Instant::now();
    let span = tracing::info_span!("request", plane = plane.name(), request_id);
    let mut response = next.run(request).instrument(span.clone()).await;
    if response.extensions().get::<Panicked>().is_some() {
        response = internal_error(plane, &method, &request_id, &host);
    }
    if let Some(outcome) = response.extensions().get::<Outcome>().copied() {
        state.metrics.count_request(plane.name(), outcome.action, outcome.code);
        let _entered = span.enter();
        tracing::info!(
            action = outcome.action,
            code = outcome.code,
            status = response.status().as_u16(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "{}",
            if outcome.code == "OK" { "answered" } else { "refused" }
        );
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(plane.request_id_header(), value);
    }
    if plane == Plane::Oss {
        headers.insert(header::SERVER, HeaderValue::from_static("AliyunOSS"));
        if !headers.contains_key(header::DATE) {
            // OSS clients read Date on errors (alibabacloud-oss-v2 fails without it); hyper adds one
            // too, but this keeps it independent of the server's settings.
            if let Ok(value) = HeaderValue::from_str(&vodup_proto::timestamp::http_date(state.now())) {
                headers.insert(header::DATE, value);
            }
        }
    }
    response
}

/// The plane's own `InternalError`, for a request whose handler panicked.
fn internal_error(plane: Plane, method: &Method, request_id: &str, host: &str) -> Response {
    let response = match plane {
        Plane::Oss => crate::data::error::OssApiError::new(OssErrorCode::InternalError)
            .into_response_for(method, request_id, host),
        Plane::Vod => crate::control::error::ApiError::new(
            VodErrorCode::InternalError,
            "The request processing has failed due to some unknown error.",
        )
        .into_response_for(request_id, host),
    };
    let code = match plane {
        Plane::Oss => OssErrorCode::InternalError.as_str(),
        Plane::Vod => VodErrorCode::InternalError.as_str(),
    };
    Outcome { action: "Unknown", code }.attach(response)
}

/// Replaces the default panic hook (a multi-line message, and a backtrace per panic under
/// `RUST_BACKTRACE`) with one `ERROR` log line naming where and why; inside a request, the span adds
/// the request id. For the `vodup serve` process; tests keep the default hook.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info: &PanicHookInfo<'_>| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(location, message, "panicked (a request that panics is answered InternalError)");
    }));
}
