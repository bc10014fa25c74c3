//! Background work that one node does at a time when several `vodup serve` processes share one catalogue:
//! the sweeper and the collector each run under a named lease ([`crate::meta::LeaseRepo`]).
//!
//! The node that holds a lease keeps it from round to round (each round renews it, and the lease outlasts
//! the pause between rounds), so the work happens once per interval whatever the number of nodes, not
//! once per node. While a round runs, a renewer extends the lease; if it cannot (the lease was lost: the
//! catalogue was unreachable for longer than the lease, and another node took over), the round is told to
//! stop. A node that dies stops renewing, and another takes the lease over once it expires. A node that
//! stops cleanly releases its leases, so another need not wait.
//!
//! The outbox needs no named lease: events are claimed one by one (`EventRepo::claim_due_events`), so
//! every node delivers.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Work under a lease: its name in the catalogue and how long one holding lasts without renewal.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// The lease's name (`sweeper`, `collector`).
    pub name: &'static str,
    /// How long a holding lasts: longer than the pause between rounds, so the holder keeps it.
    pub ttl: Duration,
}

/// At most how much longer than two pauses between rounds a lease lasts (less for short pauses, so a
/// test's sub-second rounds fail over in seconds).
const MARGIN: Duration = Duration::from_secs(30);

impl Lease {
    /// The lease of work that runs every `interval`: it lasts two intervals and a margin, so its holder
    /// keeps it from round to round, and a dead holder's lease is taken over within that time.
    pub fn every(name: &'static str, interval: Duration) -> Self {
        Self { name, ttl: interval.saturating_mul(2).saturating_add(MARGIN.min(interval)) }
    }

    /// Takes or renews the lease for this node; `false` if another node holds it or the catalogue failed.
    pub async fn hold(&self, state: &AppState) -> bool {
        let now = state.now();
        match state.meta.acquire_lease(self.name, &state.node, now, now + self.ttl).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(lease = self.name, error = %e, "could not take the lease; the round is skipped");
                false
            }
        }
    }

    /// Runs `work` if this node holds the lease, renewing it meanwhile; `None` if another node holds it.
    /// `work` gets a stop signal that turns true when `stop` does or when the lease is lost.
    pub async fn run<F, T>(
        &self,
        state: &AppState,
        stop: &watch::Receiver<bool>,
        work: impl FnOnce(watch::Receiver<bool>) -> F,
    ) -> Option<T>
    where
        F: Future<Output = T>,
    {
        if !self.hold(state).await {
            return None;
        }
        let (lost_tx, lost_rx) = watch::channel(*stop.borrow());
        let renewer = {
            let lease = *self;
            let state = state.clone();
            let mut stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(lease.ttl / 3) => {}
                        _ = stop.wait_for(|stop| *stop) => break,
                    }
                    if !lease.hold(&state).await {
                        tracing::warn!(lease = lease.name, "lease lost during a round; stopping it");
                        break;
                    }
                }
                let _ = lost_tx.send(true);
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            done = work(lost_rx) => Some(done),
            // The renewer never ends: once it has signalled, it waits for the work to see the signal.
            () = renewer => None,
        }
    }

    /// Gives the lease up if this node holds it.
    pub async fn release(&self, state: &AppState) {
        if let Err(e) = state.meta.release_lease(self.name, &state.node).await {
            tracing::warn!(lease = self.name, error = %e, "could not release the lease; it expires by itself");
        }
    }
}

/// A name for this process among the nodes that share the catalogue: host name, process id and a random
/// suffix (a restarted process is a new holder).
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let host = if host.is_empty() { "node" } else { host };
    format!("{host}-{}-{:08x}", std::process::id(), rand::random::<u32>())
}
