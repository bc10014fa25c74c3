//! ReportUploadProgress: the anonymous telemetry voduploadsdk POSTs after every part (vod-api.md §5.13).
//!
//! It is answered at once, whether or not the video exists (no existence oracle for anonymous callers),
//! and never changes any state but the advisory "latest progress" of a video still `Uploading`. Storing
//! happens in the background so that a slow database can never slow the reply: voduploadsdk fails the
//! whole upload if this call takes over a second. Anyone can call it, so everything it holds is bounded:
//! the rate tables ([`crate::rate_limit`]), and the background writes ([`MAX_PENDING_WRITES`] at once;
//! a report beyond them is dropped, as progress is advisory).

use std::net::IpAddr;

use serde_json::{Value, json};
use vodup_proto::vod::VodErrorCode;

use super::error::ApiError;
use super::request::Params;
use crate::meta::ProgressReport;
use crate::state::AppState;

/// The largest body accepted for a report.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;
/// Each stored string is cut to this many bytes.
const MAX_FIELD_BYTES: usize = 256;
/// Progress writes waiting for or holding the database at once.
pub const MAX_PENDING_WRITES: usize = 32;

/// The permits for background progress writes.
pub fn pending_writes() -> std::sync::Arc<tokio::sync::Semaphore> {
    std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_WRITES))
}

fn truncated(value: Option<&str>) -> String {
    let value = value.unwrap_or("");
    let mut end = value.len().min(MAX_FIELD_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Handles one report. Returns the JSON to send (the caller adds `RequestId`), or a refusal for
/// oversize and rate-limited reports, which are still answered at once.
pub fn report_upload_progress(
    state: &AppState,
    params: &Params,
    peer: IpAddr,
    body_len: usize,
) -> Result<Value, ApiError> {
    if body_len > MAX_REPORT_BYTES {
        return Err(ApiError::new(
            VodErrorCode::RequestEntityTooLarge,
            format!("A progress report is at most {MAX_REPORT_BYTES} bytes."),
        ));
    }
    let media_id = params.opt("VideoId");
    let video = media_id.and_then(crate::rate_limit::video_key);
    if state.progress_limiter.check(peer, video).is_err() {
        return Err(ApiError::new(
            VodErrorCode::Throttling,
            "Too many progress reports; this one was dropped.",
        ));
    }
    // A VideoId that is not 32 hex digits names no video: answered alike, stored nowhere.
    let (Some(media_id), Some(_)) = (media_id, video) else { return Ok(json!({})) };
    let media_id = media_id.to_ascii_lowercase();
    let number = |name: &str| params.opt(name).and_then(|v| v.trim().parse::<u64>().ok());
    let done_bytes = params
        .opt("UploadPoint")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p.get("doneBytes").and_then(Value::as_u64));
    let report = ProgressReport {
        client_ip: peer.to_string(),
        source: truncated(params.opt("Source")),
        device_model: truncated(params.opt("DeviceModel")),
        file_size: number("FileSize"),
        done_bytes,
        done_parts: number("DonePartsCount"),
        part_size: number("PartSize"),
        reported_at: state.now(),
    };
    let Ok(permit) = state.progress_writes.clone().try_acquire_owned() else {
        tracing::debug!(media_id, "progress writes are backed up; report dropped");
        return Ok(json!({}));
    };
    let state = state.clone();
    tokio::spawn(async move {
        let _permit = permit;
        if let Err(e) = state.meta.record_progress(&media_id, &report).await {
            tracing::warn!(media_id, error = %e, "could not store a progress report");
        }
    });
    Ok(json!({}))
}
