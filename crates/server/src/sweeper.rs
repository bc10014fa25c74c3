//! The sweeper: a background task that, on a schedule, aborts multipart uploads older than the
//! configured age (default 7 days) and removes their parts, then marks media that never completed
//! within that age `UploadFail` (no event, as in the real service). It stops with the server.
//!
//! Safe while uploads continue: aborting is one catalogue transaction, so a CompleteMultipartUpload racing
//! with the sweep either commits first (then the abort finds nothing open) or finds the upload closed and
//! gets `NoSuchUpload`. The parts' blobs go to the collector (`crate::collector`).
//!
//! With several nodes on one catalogue, one node sweeps at a time, under the `sweeper` lease
//! ([`crate::lease`]); if it dies, another takes over once the lease expires.

use std::time::SystemTime;

use tokio::sync::watch;

use crate::lease::Lease;
use crate::state::AppState;

/// Uploads handled per round.
const BATCH: u32 = 100;

/// The lease this node sweeps under.
pub fn lease(state: &AppState) -> Lease {
    Lease::every("sweeper", state.settings.sweep.interval)
}

/// Runs until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = state.settings.sweep.interval;
    let lease = lease(&state);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let state = &state;
        lease.run(state, &stop, |stop| async move { sweep(state, &stop).await }).await;
    }
}

/// One sweep: abandoned uploads, then media that never completed.
pub async fn sweep(state: &AppState, stop: &watch::Receiver<bool>) {
    let now = state.now();
    let Some(before) = now.checked_sub(state.settings.sweep.max_age) else { return };
    let mut aborted = 0;
    loop {
        let stale = match state.meta.stale_uploads(before, BATCH).await {
            Ok(stale) => stale,
            Err(e) => {
                tracing::warn!(error = %e, "sweeper: could not list stale uploads");
                return;
            }
        };
        let full = stale.len() as u32 == BATCH;
        for upload in &stale {
            if *stop.borrow() {
                return;
            }
            if abort(state, &upload.new.upload_id, now).await {
                aborted += 1;
            }
        }
        if !full {
            break;
        }
    }
    match state.meta.fail_stale_media(before, now).await {
        Ok(failed) if !failed.is_empty() || aborted > 0 => {
            tracing::info!(aborted_uploads = aborted, failed_media = failed.len(), media = ?failed, "sweeper");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "sweeper: could not mark stale media UploadFail"),
    }
}

async fn abort(state: &AppState, upload_id: &str, at: SystemTime) -> bool {
    match state.meta.abort_upload(upload_id, at).await {
        Ok(()) => {}
        // Completed or aborted meanwhile.
        Err(e) if e.is_not_found() => return false,
        Err(e) => {
            tracing::warn!(upload_id, error = %e, "sweeper: could not close an upload");
            return false;
        }
    }
    true
}
