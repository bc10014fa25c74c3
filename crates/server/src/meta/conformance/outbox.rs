//! Conformance of the event outbox and the sweeper's queries. The outbox row must commit with the
//! status change that causes it and never without it; the sweeper's queries are global (every bucket),
//! so [`run_all`](super::run_all) runs these last and they assert only about their own records.

use std::sync::Arc;
use std::time::Duration;

use super::{MetaStore, UploadState, active_key, at, expect_refused, guard, object_of, upload_for, video};
use crate::meta::model::NewEvent;
use crate::meta::{Media, MediaStatus};

fn event_for(media: &Media) -> Option<NewEvent> {
    Some(NewEvent {
        id: format!("E{}", media.new.id),
        media_id: media.new.id.clone(),
        event_type: "FileUploadComplete".into(),
        payload: format!("{{\"VideoId\":\"{}\"}}", media.new.id),
        callback_url: Some("http://receiver.example/cb".into()),
        created_at: at(50),
    })
}

/// An event is queued in the completion's transaction, comes due at its time, is claimed by one taker
/// until its claim ends, is rescheduled after a failure, and stops coming once delivered or given up; a
/// refused completion queues nothing.
pub async fn events_commit_with_their_status_change(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 31).await;
    let media = video(31, 1);
    meta.create_media(&media).await.expect("create a video");
    let ours = |events: Vec<crate::meta::OutboxEvent>| -> Vec<crate::meta::OutboxEvent> {
        // Media ids start with the scope (`media_id`), so this keeps the scope's own events.
        events.into_iter().filter(|e| e.media_id.starts_with(&media.id[..8])).collect()
    };
    let published = meta
        .put_object(&object_of(&media), Some(&guard(&media, &issuer)), Some(Arc::new(event_for)), at(50))
        .await
        .expect("complete the video");
    assert_eq!(published.media.map(|m| m.status), Some(MediaStatus::Normal));

    assert!(
        ours(meta.claim_due_events(at(49), at(49), 1000).await.expect("claim")).is_empty(),
        "not due before its time"
    );
    let due = ours(meta.claim_due_events(at(60), at(90), 1000).await.expect("claim"));
    assert_eq!(due.len(), 1, "one event for one completion: {due:?}");
    let event = &due[0];
    assert_eq!(
        (event.id.as_str(), event.attempts, event.created_at),
        (format!("E{}", media.id).as_str(), 0, at(50))
    );
    assert_eq!(event.callback_url.as_deref(), Some("http://receiver.example/cb"));
    assert_eq!(event.payload, format!("{{\"VideoId\":\"{}\"}}", media.id));
    // Claimed: no one gets it again until the claim ends (its claimer died, say), then anyone does.
    assert!(ours(meta.claim_due_events(at(89), at(95), 1000).await.expect("claim")).is_empty(), "claimed");
    let reclaimed = ours(meta.claim_due_events(at(90), at(99), 1000).await.expect("claim"));
    assert_eq!(reclaimed.iter().map(|e| &e.id).collect::<Vec<_>>(), vec![&event.id], "claim expired");
    // A claimer that stops hands back what it has not finished, due at once; only its own claim counts.
    let ids = [event.id.clone()];
    meta.release_events(&ids, at(95), at(91)).await.expect("hand back an earlier claim");
    assert!(ours(meta.claim_due_events(at(91), at(99), 1000).await.expect("claim")).is_empty(), "not ours");
    meta.release_events(&ids, at(99), at(91)).await.expect("hand back");
    let handed = ours(meta.claim_due_events(at(91), at(99), 1000).await.expect("claim"));
    assert_eq!(handed.iter().map(|e| &e.id).collect::<Vec<_>>(), vec![&event.id], "handed back: due at once");

    meta.event_failed(&event.id, 1, at(100), "HTTP 503").await.expect("reschedule");
    assert!(
        ours(meta.claim_due_events(at(99), at(99), 1000).await.expect("claim")).is_empty(),
        "rescheduled later"
    );
    let again = ours(meta.claim_due_events(at(100), at(100), 1000).await.expect("claim"));
    assert_eq!(again.iter().map(|e| e.attempts).collect::<Vec<_>>(), vec![1]);
    meta.event_delivered(&event.id, at(101)).await.expect("mark delivered");
    meta.release_events(&ids, at(100), at(101)).await.expect("hand back a delivered event");
    assert!(
        ours(meta.claim_due_events(at(1_000_000), at(1_000_000), 1000).await.expect("claim")).is_empty(),
        "delivered events stop"
    );
    assert!(meta.event_counts().await.expect("count events").delivered >= 1);

    // A second completion of the same media is refused (no longer Uploading): no second event.
    let refused = meta
        .put_object(&object_of(&media), Some(&guard(&media, &issuer)), Some(Arc::new(event_for)), at(200))
        .await;
    expect_refused(refused, "completing a Normal video again");
    assert!(ours(meta.claim_due_events(at(1_000_000), at(1_000_000), 1000).await.expect("claim")).is_empty());

    // A builder that has nowhere to send queues nothing.
    let quiet = video(31, 2);
    meta.create_media(&quiet).await.expect("create a video");
    meta.put_object(
        &object_of(&quiet),
        Some(&guard(&quiet, &issuer)),
        Some(Arc::new(|_: &Media| None)),
        at(300),
    )
    .await
    .expect("complete without an event");
    let given_up_before = meta.event_counts().await.expect("count events").given_up;
    let third = video(31, 3);
    meta.create_media(&third).await.expect("create a video");
    meta.put_object(&object_of(&third), Some(&guard(&third, &issuer)), Some(Arc::new(event_for)), at(400))
        .await
        .expect("complete");
    meta.event_given_up(&format!("E{}", third.id), at(401), "horizon").await.expect("give up");
    assert_eq!(meta.event_counts().await.expect("count events").given_up, given_up_before + 1);
    assert!(ours(meta.claim_due_events(at(1_000_000), at(1_000_000), 1000).await.expect("claim")).is_empty());
}

/// The sweeper's queries: open uploads initiated before a time (any bucket), and `Uploading` media
/// created before a time, moved to `UploadFail` once.
pub async fn stale_uploads_and_media_are_found_by_age(meta: &dyn MetaStore) {
    let old = super::NewMedia { created_at: at(10_000_000), ..video(32, 1) };
    let new = super::NewMedia { created_at: at(30_000_000), ..video(32, 2) };
    for media in [&old, &new] {
        meta.create_media(media).await.expect("create a video");
    }
    let old_upload = super::NewUpload { initiated_at: at(10_000_000), ..upload_for(&old, 32, 1) };
    let new_upload = super::NewUpload { initiated_at: at(30_000_000), ..upload_for(&new, 32, 2) };
    for upload in [&old_upload, &new_upload] {
        meta.create_upload(upload, None).await.expect("create an upload");
    }
    let stale = meta.stale_uploads(at(20_000_000), 10_000).await.expect("stale uploads");
    let ids: Vec<&str> = stale.iter().map(|u| u.new.upload_id.as_str()).collect();
    assert!(
        ids.contains(&old_upload.upload_id.as_str()) && !ids.contains(&new_upload.upload_id.as_str()),
        "{ids:?}"
    );
    assert!(stale.iter().all(|u| u.state == UploadState::Open && u.new.initiated_at < at(20_000_000)));

    let failed = meta.fail_stale_media(at(20_000_000), at(40_000_000)).await.expect("fail stale media");
    assert!(failed.contains(&old.id) && !failed.contains(&new.id), "{failed:?}");
    let status = |id: String| async move { meta.get_media(&id).await.expect("get").map(|m| m.status) };
    assert_eq!(status(old.id.clone()).await, Some(MediaStatus::UploadFail));
    assert_eq!(status(new.id.clone()).await, Some(MediaStatus::Uploading));
    let again = meta.fail_stale_media(at(20_000_000), at(40_000_001)).await.expect("fail stale media");
    assert!(!again.contains(&old.id), "only once");
}

/// Leases: one holder at a time; the holder renews; another takes an expired lease; a release frees it
/// at once, and releasing someone else's lease does nothing.
pub async fn leases_have_one_holder_until_they_expire(meta: &dyn MetaStore) {
    let name = "conformance-33";
    assert!(meta.acquire_lease(name, "node-a", at(100), at(200)).await.expect("take"), "a free lease");
    assert!(!meta.acquire_lease(name, "node-b", at(150), at(250)).await.expect("take"), "held by node-a");
    assert!(meta.acquire_lease(name, "node-a", at(190), at(300)).await.expect("renew"), "the holder renews");
    assert!(!meta.acquire_lease(name, "node-b", at(250), at(350)).await.expect("take"), "renewed until 300");
    assert!(meta.acquire_lease(name, "node-b", at(300), at(400)).await.expect("take"), "expired: taken over");
    assert!(!meta.acquire_lease(name, "node-a", at(310), at(410)).await.expect("take"), "node-a lost it");
    meta.release_lease(name, "node-a").await.expect("release another's lease");
    assert!(!meta.acquire_lease(name, "node-c", at(320), at(420)).await.expect("take"), "still node-b's");
    meta.release_lease(name, "node-b").await.expect("release");
    assert!(meta.acquire_lease(name, "node-c", at(321), at(421)).await.expect("take"), "released: free");
    assert!(
        meta.acquire_lease("conformance-33-other", "node-a", at(321), at(421)).await.expect("take"),
        "leases are independent by name"
    );
}

/// Claims racing on one outbox: eight claimers take small batches at once until none is left, in several
/// rounds; every event is claimed by exactly one of them. (On PostgreSQL the claimers run on separate
/// connections at the same time, as nodes do.)
pub async fn racing_claims_take_each_event_once(meta: &dyn MetaStore) {
    const ROUNDS: u32 = 5;
    const EVENTS: u32 = 24;
    let issuer = active_key(meta, 34).await;
    let scope = &super::media_id(34, 0)[..8];
    for round in 0..ROUNDS {
        let mut expected = Vec::new();
        for n in 1..=EVENTS {
            let media = video(34, round * EVENTS + n);
            meta.create_media(&media).await.expect("create a video");
            meta.put_object(
                &object_of(&media),
                Some(&guard(&media, &issuer)),
                Some(Arc::new(event_for)),
                at(50),
            )
            .await
            .expect("complete a video");
            expected.push(format!("E{}", media.id));
        }
        // Each round's events come due at a later instant, so earlier rounds' leftovers cannot mix in.
        let now = at(1_000 * u64::from(round + 1));
        let claimer = || async move {
            let mut mine = Vec::new();
            loop {
                let batch =
                    meta.claim_due_events(now, now + Duration::from_secs(3600), 3).await.expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().filter(|e| e.media_id.starts_with(scope)).map(|e| e.id));
                tokio::task::yield_now().await;
            }
        };
        let taken = futures_util::future::join_all((0..8).map(|_| claimer())).await;
        let mut all: Vec<String> = taken.concat();
        all.sort();
        expected.sort();
        assert_eq!(all, expected, "round {round}: every event claimed exactly once ({taken:?})");
        for id in &all {
            meta.event_delivered(id, now).await.expect("mark delivered");
        }
    }
}

/// Takers racing for one expired lease: exactly one wins, round after round.
pub async fn racing_takers_get_one_lease(meta: &dyn MetaStore) {
    for round in 0..20u64 {
        let name = format!("conformance-35-{}", round % 4);
        let now = at(1_000 * (round + 1));
        let taker = |n: u32| {
            let name = name.clone();
            async move {
                let holder = format!("node-{round}-{n}");
                meta.acquire_lease(&name, &holder, now, now + Duration::from_millis(500)).await.expect("take")
            }
        };
        let won = futures_util::future::join_all((0..8).map(taker)).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {won:?}");
    }
}
