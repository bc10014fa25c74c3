//! Delivers the outbox: a background task that POSTs each due event to its callback URL, marks it
//! delivered on a 2xx answer, and otherwise tries again with exponential backoff and jitter until the
//! horizon (default 24 hours; Alibaba gives up after 3 tries), then gives it up. Events live in the
//! catalogue, so a restart resumes delivery where it stopped; an event whose delivery was in flight
//! when the process died is sent again (receivers deduplicate on `X-VOD-Event-Id`).
//!
//! Every node delivers: each claims a few due events at a time (`EventRepo::claim_due_events`) under a
//! claim (`[events] claim_secs`, default 60 s, long enough for a batch's deliveries), so no two nodes send
//! one event at once, and the events of a node that dies come due again when its claim ends. A node that
//! stops cleanly hands back the events it claimed and has not sent, due again at once.

use std::collections::HashSet;
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
/// How long a stopping node tries to hand its unsent events back.
const HAND_BACK_TIMEOUT: Duration = Duration::from_secs(2);

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
        let claimed_until = now + state.settings.events.claim;
        let due = match state.meta.claim_due_events(now, claimed_until, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the event outbox");
                Vec::new()
            }
        };
        let full = due.len() as u32 == BATCH;
        let mut unfinished: HashSet<String> = due.iter().map(|event| event.id.clone()).collect();
        let (state, client) = (&state, &client);
        let mut deliveries = futures_util::stream::iter(due)
            .map(|event| async move {
                deliver(state, client, &event).await;
                event.id
            })
            .buffer_unordered(PARALLEL);
        let stopped = loop {
            tokio::select! {
                next = deliveries.next() => match next {
                    Some(id) => { unfinished.remove(&id); }
                    None => break false,
                },
                _ = stop.wait_for(|stop| *stop) => break true,
            }
        };
        drop(deliveries);
        if stopped {
            hand_back(state, unfinished, claimed_until).await;
            return;
        }
        let pause = if full { Duration::ZERO } else { poll };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Gives the events of a batch cut short by a stop back to the outbox, due at once, so that another node
/// (or this one, restarted) sends them without waiting for the claim to end. One whose POST was under way
/// may have arrived: it is sent again (delivery is at least once). If the catalogue cannot be reached,
/// they come due when the claim ends, as after a crash.
async fn hand_back(state: &AppState, unfinished: HashSet<String>, claimed_until: SystemTime) {
    if unfinished.is_empty() {
        return;
    }
    let ids: Vec<String> = unfinished.into_iter().collect();
    let release = state.meta.release_events(&ids, claimed_until, state.now());
    match tokio::time::timeout(HAND_BACK_TIMEOUT, release).await {
        Ok(Ok(())) => {
            tracing::info!(events = ids.len(), "stopping: claimed events handed back to the outbox");
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "stopping: could not hand back claimed events; due when the claim ends");
        }
        Err(_) => tracing::warn!("stopping: handing back claimed events timed out; due when the claim ends"),
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
