//! Liveness and readiness, served on both planes.
//!
//! `/healthz` (liveness) answers as long as the process serves HTTP and does no storage work, so a full
//! disk never makes an orchestrator restart a process that is fine. `/readyz` (readiness) answers 200
//! only when the blob store accepts a write and has more than `ready_min_free` bytes free (where it
//! knows), and the catalogue answers a query, so a load balancer sends uploads elsewhere while this
//! node's disk is full. `/readyz` is unauthenticated and each probe writes a
//! file, so the probe runs at most once per [`PROBE_INTERVAL`] whatever the request rate: concurrent
//! requests wait for the one probe in flight and share its answer.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// How long one probe's answer is reused.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The last readiness probe and when it ran.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Probe)>>,
}

/// What one probe found: `"ok"`, `"full"` or `"failing"` for each half. Only these words go out
/// (the endpoint is anonymous); the detail goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The blob store.
    pub storage: &'static str,
    /// The catalogue.
    pub catalogue: &'static str,
}

impl Probe {
    /// Both halves are fine.
    pub fn is_ready(&self) -> bool {
        self.storage == "ok" && self.catalogue == "ok"
    }
}

impl Readiness {
    /// The current readiness, probing if the last answer is older than [`PROBE_INTERVAL`].
    pub async fn check(&self, state: &AppState) -> Probe {
        let mut last = self.last.lock().await;
        if let Some((at, probe)) = *last
            && at.elapsed() < PROBE_INTERVAL
        {
            return probe;
        }
        let storage = match state.storage.health_check().await {
            Ok(()) => match state.storage.available_bytes().await {
                Ok(Some(free)) if free < state.settings.ready_min_free => {
                    tracing::warn!(
                        free,
                        minimum = state.settings.ready_min_free,
                        "readiness: the store is nearly full"
                    );
                    "full"
                }
                Ok(_) => "ok",
                Err(e) => {
                    tracing::warn!(error = %e, "readiness: the store's free space is unknown");
                    "failing"
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the store does not accept writes");
                if e.is_full() { "full" } else { "failing" }
            }
        };
        let catalogue = match state.meta.health_check().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: the catalogue does not answer");
                if matches!(e, crate::meta::MetaError::Full(_)) { "full" } else { "failing" }
            }
        };
        let probe = Probe { storage, catalogue };
        *last = Some((Instant::now(), probe));
        probe
    }
}

/// `GET /healthz`: the process serves HTTP.
pub async fn liveness() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when this node can take uploads, 503 otherwise, with a small JSON body saying
/// which half is not ready.
pub async fn readiness(State(state): State<AppState>) -> Response {
    let probe = state.readiness.check(&state).await;
    let status = if probe.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"ready": probe.is_ready(), "storage": probe.storage, "catalogue": probe.catalogue});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
