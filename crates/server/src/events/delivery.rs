//! Delivers the outbox: a background task that POSTs each due event to its callback URL, marks it
//! delivered on a 2xx answer, and otherwise tries again with exponential backoff and jitter until the
//! horizon (default 24 hours; Alibaba gives up after 3 tries), then gives it up. Events live in the
//! catalogue, so a restart resumes delivery where it stopped; an event whose delivery was in flight
//! when the process died is sent again (receivers deduplicate on `X-VOD-Event-Id`).
//!
//! Every node delivers: each claims a few due events at a time (`EventRepo::claim_due_events`) under a
//! claim (`[events] claim_secs`, default 60 s, long enough for a batch's deliveries), so no two nodes send
//! one event at once, and the events of a node that dies come due again when its claim ends.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;
use rand::RngExt as _;
use tokio::sync::watch;
use vodup_proto::timestamp::unix_seconds;

use super::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};
use crate::meta::model::OutboxEvent;
use crate::state::AppState;

/// Events claimed per round.
const BATCH: u32 = 16;
/// Deliveries of a batch in flight at once.
const PARALLEL: usize = 8;
/// How long a delivery may take. A batch's deliveries take at most `BATCH / PARALLEL` of these, well
/// within the default claim.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vodup-events/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the event delivery client; events stay in the outbox");
            return;
        }
    };
    let poll = state.settings.events.poll_interval;
    loop {
        let now = state.now();
        let due = match state.meta.claim_due_events(now, now + state.settings.events.claim, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the event outbox");
                Vec::new()
            }
        };
        let full = due.len() as u32 == BATCH;
        // Events claimed but not sent because the server stops come due again when their claim ends.
        let (state, client) = (&state, &client);
        let mut deliveries = futures_util::stream::iter(due)
            .map(|event| async move { deliver(state, client, &event).await })
            .buffer_unordered(PARALLEL);
        loop {
            tokio::select! {
                next = deliveries.next() => if next.is_none() { break },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
        drop(deliveries);
        let pause = if full { Duration::ZERO } else { poll };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// The wait before attempt `attempts + 1`: uniform in [ceiling/2, ceiling], ceiling doubling from 1 s up
/// to the configured maximum.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_secs(1).saturating_mul(1 << attempts.saturating_sub(1).min(20)).min(max);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(2);
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

async fn deliver(state: &AppState, client: &reqwest::Client, event: &OutboxEvent) {
    let settings = &state.settings.events;
    let now = state.now();
    let Some(url) = event.callback_url.clone().or_else(|| settings.callback_url.clone()) else {
        give_up(state, event, now, "no callback URL is configured").await;
        return;
    };
    let mut request = client
        .post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, &event.id)
        .body(event.payload.clone());
    if let Some(key) = &settings.auth_key {
        let timestamp = unix_seconds(now);
        request = request
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&url, timestamp, key));
    }
    let failure = match request.send().await {
        Ok(response) if response.status().is_success() => {
            crate::fault::hit(crate::fault::FaultPoint::EventPosted);
            match state.meta.event_delivered(&event.id, state.now()).await {
                Ok(()) => {
                    tracing::info!(
                        event_id = event.id,
                        media_id = event.media_id,
                        event_type = event.event_type,
                        "event delivered"
                    );
                }
                Err(e) => {
                    tracing::warn!(event_id = event.id, error = %e, "delivered, but could not record it; it will be sent again");
                }
            }
            return;
        }
        Ok(response) => format!("HTTP {}", response.status()),
        Err(e) => e.to_string(),
    };
    let attempts = event.attempts + 1;
    if now >= event.created_at + settings.horizon {
        give_up(state, event, now, &failure).await;
        return;
    }
    let next = now + backoff(attempts, settings.max_backoff);
    tracing::info!(event_id = event.id, attempts, error = failure, "event delivery failed; will retry");
    if let Err(e) = state.meta.event_failed(&event.id, attempts, next, &failure).await {
        tracing::warn!(event_id = event.id, error = %e, "could not reschedule an event");
    }
}

async fn give_up(state: &AppState, event: &OutboxEvent, now: SystemTime, reason: &str) {
    tracing::warn!(event_id = event.id, media_id = event.media_id, reason, "event given up");
    if let Err(e) = state.meta.event_given_up(&event.id, now, reason).await {
        tracing::warn!(event_id = event.id, error = %e, "could not record a given-up event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(1, Duration::from_secs(300));
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let fifth = backoff(5, Duration::from_secs(300));
            assert!(fifth >= Duration::from_secs(8) && fifth <= Duration::from_secs(16));
            assert!(backoff(40, Duration::from_secs(300)) <= Duration::from_secs(300));
        }
    }
}
