//! Ctrl-C during `vodup upload`: a single upload and a batch both stop the same way, between requests,
//! keeping their checkpoints, so the next run resumes. `vodup download` stops the same way, leaving its
//! target file as it was.

use tokio_util::sync::CancellationToken;

/// Cancels `cancel` on Ctrl-C: uploads stop between requests and keep their checkpoints.
pub fn cancel_on_ctrl_c(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    })
}
