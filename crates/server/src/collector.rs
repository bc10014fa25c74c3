//! The collector: removes from blob storage the blobs that nothing references any more, after a grace
//! period. It is the only thing that deletes blobs; writers never do, so a writer that loses a race or
//! is refused cannot destroy anything.
//!
//! Blobs become unreferenced two ways. A commit that replaces or deletes a version, aborts an upload, or
//! leaves parts out of a Complete marks their blobs `garbage` in the same transaction; the collector
//! claims them (marks them `collected`) once their grace period is over, then deletes them from storage.
//! A blob that no commit ever referenced (its writer was refused, lost, or crashed between storing the
//! bytes and committing) is found by walking storage: once it is older than the grace period, the
//! collector records a `collected` tombstone for it first, so that a commit naming it now fails instead of
//! referencing bytes about to go, and then deletes it.
//!
//! A crash between any two steps is safe: a claimed blob still in storage is found again by the walk and
//! deleted then; nothing live is ever claimed. Tombstones are forgotten a day after the grace period.
//!
//! With several nodes on one catalogue and one bucket, one node collects at a time, under the
//! `collector` lease ([`crate::lease`]), so the walk over storage is not repeated by every node; the claims
//! themselves are safe to race (each blob is claimed once), which is what makes a lease lost mid-round
//! harmless.

use std::time::Duration;

use tokio::sync::watch;

use crate::fault::{self, FaultPoint};
use crate::lease::Lease;
use crate::state::AppState;

/// Blobs claimed, or listed from storage, per step.
const BATCH: u32 = 500;
/// How long tombstones outlive the grace period.
const TOMBSTONE_KEEP: Duration = Duration::from_secs(86_400);

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Blobs removed that a commit had released.
    pub garbage: u64,
    /// Blobs removed that no commit ever referenced.
    pub orphans: u64,
    /// Deletions that failed (retried next round).
    pub failed: u64,
}

/// The lease this node collects under.
pub fn lease(state: &AppState) -> Lease {
    Lease::every("collector", state.settings.sweep.collect_interval)
}

/// Runs rounds until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = state.settings.sweep.collect_interval;
    let lease = lease(&state);
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let state = &state;
        let Some(round) = lease.run(state, &stop, |stop| async move { collect(state, &stop).await }).await
        else {
            continue;
        };
        match round {
            Ok(done) if done != Collected::default() => {
                tracing::info!(
                    garbage = done.garbage,
                    orphans = done.orphans,
                    failed = done.failed,
                    "collector"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "collector round failed; retried next round"),
        }
    }
}

/// Why a round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The catalogue failed.
    #[error("collector: {0}")]
    Meta(#[from] crate::meta::MetaError),
    /// Listing storage failed.
    #[error("collector: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

/// One round: released blobs past their grace, then a walk over storage for orphans, then old tombstones.
pub async fn collect(state: &AppState, stop: &watch::Receiver<bool>) -> Result<Collected, CollectError> {
    let grace = state.settings.sweep.blob_grace;
    let mut done = Collected::default();
    let now = state.now();
    let Some(cutoff) = now.checked_sub(grace) else { return Ok(done) };
    loop {
        let claimed = state.meta.claim_garbage(cutoff, BATCH, state.now()).await?;
        fault::hit_if(!claimed.is_empty(), FaultPoint::GarbageClaimed);
        let full = claimed.len() == BATCH as usize;
        done.garbage += delete(state, &claimed, &mut done.failed).await;
        if !full || *stop.borrow() {
            break;
        }
    }
    let mut after: Option<String> = None;
    loop {
        if *stop.borrow() {
            return Ok(done);
        }
        let page = state.storage.list(after.as_deref(), BATCH as usize).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let old: Vec<String> = page.iter().filter(|b| b.written_at < cutoff).map(|b| b.id.clone()).collect();
        if !old.is_empty() {
            let claimed = state.meta.claim_orphans(&old, state.now()).await?;
            fault::hit_if(!claimed.is_empty(), FaultPoint::GarbageClaimed);
            done.orphans += delete(state, &claimed, &mut done.failed).await;
        }
        if page.len() < BATCH as usize {
            break;
        }
    }
    if let Some(before) = cutoff.checked_sub(TOMBSTONE_KEEP) {
        state.meta.forget_collected(before).await?;
    }
    Ok(done)
}

/// Deletes claimed blobs from storage; returns how many went.
async fn delete(state: &AppState, ids: &[String], failed: &mut u64) -> u64 {
    let mut deleted = 0;
    for id in ids {
        match state.storage.delete(id).await {
            Ok(()) => {
                deleted += 1;
                crate::metrics::Metrics::add(&state.metrics.blobs_collected, 1);
                fault::hit(FaultPoint::BlobDeleted);
            }
            Err(e) => {
                *failed += 1;
                tracing::warn!(blob = id, error = %e, "collector: could not delete a blob; retried next round");
            }
        }
    }
    deleted
}
