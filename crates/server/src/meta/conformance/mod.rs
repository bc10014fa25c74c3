//! The behaviour every metadata backend must show, as `pub async fn`s over any [`MetaStore`]
//! (object_store `integration.rs`, Garage `db/test.rs`). A backend's tests call each function on a fresh
//! store, and [`run_all`] on one shared store; that second run proves the checks do not rely on an empty
//! store. So each function works in its own scope (media ids, key ids, buckets, storage locations and
//! ReferenceIds carry its scope number) and asserts only about its own records. Instants are whole
//! milliseconds, the precision backends keep. Panics name the step that failed.
#![cfg(any(test, feature = "testing"))]

mod objects;
mod outbox;

pub use objects::{
    claim_garbage_respects_cutoff_and_limit, claim_orphans_tombstones_unknown_blobs,
    commits_publish_the_media_key_only, complete_and_abort_exclude_each_other,
    complete_publishes_the_listed_parts, complete_refusals_change_nothing,
    delete_media_releases_objects_and_parts, delete_object_releases_or_refuses, import_legacy_is_idempotent,
    parts_are_recorded_replaced_and_released, put_and_get_object_round_trip, put_object_checks_the_guard,
    put_replaces_the_version_and_releases_the_old_blob,
};
pub use outbox::{
    events_commit_with_their_status_change, leases_have_one_holder_until_they_expire,
    racing_claims_take_each_event_once, racing_takers_get_one_lease,
    stale_uploads_and_media_are_found_by_age,
};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vodup_proto::Secret;

use super::{
    AccessKeyRecord, DeletedMedia, Media, MediaKind, MediaStatus, MediaUpdate, MetaError, MetaResult,
    MetaStore, NewBlob, NewMedia, NewUpload, ProgressReport, PutCommit, Upload, UploadQuery, UploadState,
    VideoQuery, WriteGuard,
};

/// Runs every check on one store, in sequence.
pub async fn run_all(meta: &dyn MetaStore) {
    keys_round_trip(meta).await;
    key_revocation(meta).await;
    settings_are_created_once(meta).await;
    nonces_are_single_use_while_live(meta).await;
    revocations_list_revoked_keys_and_recent_deletions(meta).await;
    media_round_trip(meta).await;
    media_ids_and_reference_ids_are_unique(meta).await;
    concurrent_writes_succeed_or_fail_alone(meta).await;
    media_by_reference(meta).await;
    update_media_changes_only_given_fields(meta).await;
    delete_media_hides_media_and_aborts_uploads(meta).await;
    list_videos_filters(meta).await;
    list_videos_orders_and_pages(meta).await;
    record_progress_only_for_uploading_videos(meta).await;
    uploads_round_trip(meta).await;
    list_open_uploads_orders_filters_and_pages(meta).await;
    create_upload_checks_the_guard(meta).await;
    // Global queries last: they may touch other scopes' records, which are done by now.
    events_commit_with_their_status_change(meta).await;
    stale_uploads_and_media_are_found_by_age(meta).await;
    leases_have_one_holder_until_they_expire(meta).await;
    racing_claims_take_each_event_once(meta).await;
    racing_takers_get_one_lease(meta).await;
    // Objects and blobs: the collector's claims are global too.
    put_and_get_object_round_trip(meta).await;
    put_replaces_the_version_and_releases_the_old_blob(meta).await;
    put_object_checks_the_guard(meta).await;
    parts_are_recorded_replaced_and_released(meta).await;
    complete_publishes_the_listed_parts(meta).await;
    complete_refusals_change_nothing(meta).await;
    complete_and_abort_exclude_each_other(meta).await;
    delete_object_releases_or_refuses(meta).await;
    delete_media_releases_objects_and_parts(meta).await;
    commits_publish_the_media_key_only(meta).await;
    claim_garbage_respects_cutoff_and_limit(meta).await;
    claim_orphans_tombstones_unknown_blobs(meta).await;
    import_legacy_is_idempotent(meta).await;
}

/// Keys are stored and read back whole (secret included), duplicates conflict, and the list is oldest first.
pub async fn keys_round_trip(meta: &dyn MetaStore) {
    let first = key(1, 1, 10);
    let second = AccessKeyRecord {
        description: "ops — 运维 \"quoted\"".into(),
        secret: Secret::new("s3cr3t/+=Ω"),
        ..key(1, 2, 20)
    };
    // The later key goes in first, so insertion order cannot pass for creation order.
    meta.create_key(&second).await.expect("create the second key");
    meta.create_key(&first).await.expect("create the first key");

    assert_eq!(meta.get_key(&first.id).await.expect("get a key"), Some(first.clone()));
    let stored = meta.get_key(&second.id).await.expect("get a key").expect("the key exists");
    assert_eq!(stored.secret.expose(), "s3cr3t/+=Ω");
    assert_eq!(stored, second);
    assert_eq!(meta.get_key(&key_id(1, 99)).await.expect("get an unknown key"), None);

    let again = AccessKeyRecord { secret: Secret::new("other"), ..first.clone() };
    expect_conflict(meta.create_key(&again).await, "creating a key twice");
    let stored = meta.get_key(&first.id).await.expect("get a key").expect("the key exists");
    assert_eq!(stored.secret, first.secret, "a conflicting create must not overwrite the secret");

    let listed: Vec<_> = meta
        .list_keys()
        .await
        .expect("list keys")
        .into_iter()
        .filter(|k| k.id.starts_with(&key_scope(1)))
        .collect();
    assert_eq!(listed, vec![first, second], "keys are listed oldest first");
}

/// Revoking marks the key once; a second revocation or an unknown key answers `false`.
pub async fn key_revocation(meta: &dyn MetaStore) {
    let record = key(2, 1, 10);
    meta.create_key(&record).await.expect("create a key");
    assert!(meta.revoke_key(&record.id, at(30)).await.expect("revoke a key"));
    let revoked = meta.get_key(&record.id).await.expect("get a key").expect("the key exists");
    assert_eq!(revoked, AccessKeyRecord { revoked_at: Some(at(30)), ..record.clone() });

    assert!(!meta.revoke_key(&record.id, at(40)).await.expect("revoke a key twice"));
    let still = meta.get_key(&record.id).await.expect("get a key").expect("the key exists");
    assert_eq!(still.revoked_at, Some(at(30)), "a second revocation must not move the instant");
    assert!(!meta.revoke_key(&key_id(2, 99), at(40)).await.expect("revoke an unknown key"));
}

/// A setting keeps its first value: a later call with another initial value reads the stored one.
pub async fn settings_are_created_once(meta: &dyn MetaStore) {
    let name = "conformance.3.server-secret";
    let first = meta.get_or_create_setting(name, "first ✓").await.expect("create a setting");
    assert_eq!(first, "first ✓");
    let second = meta.get_or_create_setting(name, "second").await.expect("read a setting");
    assert_eq!(second, "first ✓", "the stored value wins over a later initial value");
    let other = meta.get_or_create_setting("conformance.3.other", "").await.expect("create another setting");
    assert_eq!(other, "", "settings are independent; empty values are values");
}

/// A nonce is refused while its row lives, is accepted again once dead, and dead rows are reclaimed.
pub async fn nonces_are_single_use_while_live(meta: &dyn MetaStore) {
    let now = SystemTime::now();
    let live = now + Duration::from_secs(1800);
    let digest = *b"conformance.4.a\0";
    assert!(meta.record_nonce(&digest, now, live).await.expect("record a nonce"));
    assert!(!meta.record_nonce(&digest, now, live).await.expect("replay a nonce"), "a replay is refused");
    let other = *b"conformance.4.b\0";
    assert!(meta.record_nonce(&other, now, live).await.expect("record another"), "nonces are independent");
    // Once its row has died, the same digest is a new request again (its window has passed).
    let later = live + Duration::from_secs(1);
    assert!(meta.record_nonce(&digest, later, later + Duration::from_secs(1800)).await.expect("after death"));
    assert!(!meta.record_nonce(&digest, later, later).await.expect("and live again"));
}

/// Revocations list every revoked key and the media deleted at or after the instant asked for.
pub async fn revocations_list_revoked_keys_and_recent_deletions(meta: &dyn MetaStore) {
    let active = key(4, 1, 0);
    let revoked = key(4, 2, 0);
    meta.create_key(&active).await.expect("create a key");
    meta.create_key(&revoked).await.expect("create a key");
    meta.revoke_key(&revoked.id, at(5)).await.expect("revoke a key");
    let (early, late, live) = (video(4, 1), video(4, 2), video(4, 3));
    for media in [&early, &late, &live] {
        meta.create_media(media).await.expect("create a video");
    }
    meta.delete_media(std::slice::from_ref(&early.id), at(100)).await.expect("delete a video");
    meta.delete_media(std::slice::from_ref(&late.id), at(200)).await.expect("delete a video");

    let seen = meta.revocations(at(200)).await.expect("read revocations");
    assert!(seen.revoked_keys.contains(&revoked.id), "a revoked key is listed: {seen:?}");
    assert!(!seen.revoked_keys.contains(&active.id), "an active key is not listed: {seen:?}");
    assert!(seen.deleted_media.contains(&late.id), "media deleted at the instant is listed: {seen:?}");
    assert!(!seen.deleted_media.contains(&early.id), "media deleted before the instant is not: {seen:?}");
    assert!(!seen.deleted_media.contains(&live.id), "live media is not listed: {seen:?}");

    let later = meta.revocations(at(201)).await.expect("read revocations");
    assert!(!later.deleted_media.contains(&late.id), "deletions before the instant are left out: {later:?}");
    let all = meta.revocations(at(0)).await.expect("read revocations");
    assert!(all.deleted_media.contains(&early.id) && all.deleted_media.contains(&late.id), "{all:?}");
}

/// Every field of a media item round-trips: unicode, empty strings, `None` and `Some`, and u64 values of
/// 2^63 and above (sizes and CRC-64s).
pub async fn media_round_trip(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 5).await;
    let full = NewMedia {
        title: "测试视频 🎬 — ünïcödé 'quoted'".into(),
        description: "line one\nline two\t\"tab\"".into(),
        file_name: "/home/user/视频 1.m3u8".into(),
        file_ext: "m3u8".into(),
        declared_size: Some(u64::MAX),
        cover_url: "https://example.com/cover.png?a=1&b=2".into(),
        cate_id: Some(-1),
        cate_ids: "1000123,1000456".into(),
        tags: "a,b,标签".into(),
        template_group_id: "VOD_NO_TRANSCODE".into(),
        workflow_id: "wf-5".into(),
        app_id: "app-2000000".into(),
        user_data: r#"{"Extend":{"k":"v"},"MessageCallback":{"CallbackURL":"http://x"}}"#.into(),
        reference_id: "ref-5-full".into(),
        object_prefix: Some("sv/5/full/".into()),
        ..video(5, 1)
    };
    let image = NewMedia {
        kind: MediaKind::Image,
        title: String::new(),
        file_name: String::new(),
        file_ext: "png".into(),
        app_id: String::new(),
        image_type: "cover".into(),
        ..video(5, 2)
    };
    let attached = NewMedia {
        kind: MediaKind::Attached,
        file_ext: "srt".into(),
        cate_id: Some(i64::MAX),
        cate_ids: "9223372036854775807".into(),
        business_type: "subtitle".into(),
        ..video(5, 3)
    };
    for media in [&full, &image, &attached] {
        meta.create_media(media).await.expect("create a media item");
        assert_eq!(meta.get_media(&media.id).await.expect("get a media item"), Some(fresh(media)));
    }
    assert_eq!(meta.get_media(&media_id(5, 99)).await.expect("get an unknown media item"), None);

    for (media, size, crc64) in [(&full, 1_u64 << 63, u64::MAX), (&image, 0, 1_u64 << 63)] {
        let object = put_sized(media, size, crc64);
        let guard = guard(media, &issuer);
        let done =
            meta.put_object(&object, Some(&guard), None, at(50)).await.expect("complete the object").media;
        let expected = Media {
            status: MediaStatus::Normal,
            size: Some(size),
            etag: Some(object.blob.digests.etag()),
            crc64: Some(crc64),
            modified_at: at(50),
            completed_at: Some(at(50)),
            ..fresh(media)
        };
        assert_eq!(done, Some(expected.clone()), "completion returns the media after the change");
        assert_eq!(meta.get_media(&media.id).await.expect("get a media item"), Some(expected));
    }
}

/// A media id is used once; so is a non-empty ReferenceId among live media. Empty ones never conflict.
pub async fn media_ids_and_reference_ids_are_unique(meta: &dyn MetaStore) {
    let first = NewMedia { reference_id: "ref-6-a".into(), ..video(6, 1) };
    meta.create_media(&first).await.expect("create a video");

    let same_id = NewMedia { reference_id: "ref-6-other".into(), title: "other".into(), ..first.clone() };
    expect_conflict(meta.create_media(&same_id).await, "creating a media id twice");
    let same_reference = NewMedia { reference_id: "ref-6-a".into(), ..video(6, 2) };
    expect_conflict(meta.create_media(&same_reference).await, "reusing a ReferenceId");
    assert_eq!(meta.get_media(&same_reference.id).await.expect("get a media item"), None);
    assert_eq!(meta.get_media(&first.id).await.expect("get a media item"), Some(fresh(&first)));

    for n in 3..=5 {
        meta.create_media(&video(6, n)).await.expect("empty ReferenceIds never conflict");
    }
    meta.delete_media(std::slice::from_ref(&first.id), at(100)).await.expect("delete a video");
    let reuse = NewMedia { reference_id: "ref-6-a".into(), ..video(6, 6) };
    meta.create_media(&reuse).await.expect("a deleted video frees its ReferenceId");
}

/// Many creations and nonces at once, some of them refused, as a busy control plane sends them (SQLite
/// commits such writes in groups): each refused write fails alone and leaves nothing, every other one is
/// stored, and a nonce is accepted exactly once however many calls race for it.
pub async fn concurrent_writes_succeed_or_fail_alone(meta: &dyn MetaStore) {
    // 16 pairs share a ReferenceId; 16 more have their own.
    let medias: Vec<NewMedia> = (1..=48u32)
        .map(|n| NewMedia {
            reference_id: if n <= 32 {
                format!("ref-50-pair-{}", n.div_ceil(2))
            } else {
                format!("ref-50-own-{n}")
            },
            ..video(50, n)
        })
        .collect();
    let results = futures_util::future::join_all(medias.iter().map(|m| meta.create_media(m))).await;
    for pair in medias[..32].chunks(2).zip(results[..32].chunks(2)) {
        let ((first, second), (a, b)) = ((&pair.0[0], &pair.0[1]), (&pair.1[0], &pair.1[1]));
        let (winner, loser, refused) = match (a, b) {
            (Ok(()), Err(_)) => (first, second, b),
            (Err(_), Ok(())) => (second, first, a),
            other => panic!("exactly one of a pair sharing a ReferenceId is created, got {other:?}"),
        };
        assert!(matches!(refused, Err(MetaError::Conflict(_))), "the other is a Conflict: {refused:?}");
        assert_eq!(meta.get_media(&winner.id).await.expect("get"), Some(fresh(winner)));
        assert_eq!(meta.get_media(&loser.id).await.expect("get"), None, "a refused creation leaves nothing");
    }
    for (media, result) in medias[32..].iter().zip(&results[32..]) {
        assert!(result.is_ok(), "{}: {result:?}", media.id);
        assert_eq!(meta.get_media(&media.id).await.expect("get"), Some(fresh(media)));
    }

    let now = SystemTime::now();
    let live = now + Duration::from_secs(1800);
    let digests: Vec<[u8; 16]> = (0..96u32)
        .map(|n| *format!("conf.50.nonce.{:02}", n % 32).as_bytes().first_chunk().unwrap())
        .collect();
    let recorded =
        futures_util::future::join_all(digests.iter().map(|d| meta.record_nonce(d, now, live))).await;
    let accepted = recorded.into_iter().map(|r| r.expect("record a nonce")).filter(|&fresh| fresh).count();
    assert_eq!(accepted, 32, "each of 32 nonces is accepted once among 96 racing calls");
}

/// Lookup by ReferenceId finds live media only, matches exactly, and the empty id names nothing.
pub async fn media_by_reference(meta: &dyn MetaStore) {
    let named = NewMedia { reference_id: "ref-7-a".into(), ..video(7, 1) };
    meta.create_media(&named).await.expect("create a video");
    meta.create_media(&video(7, 2)).await.expect("create a video without ReferenceId");

    let found = meta.get_media_by_reference("ref-7-a").await.expect("look up a ReferenceId");
    assert_eq!(found, Some(fresh(&named)));
    for absent in ["ref-7-unknown", "REF-7-A", "ref-7-", ""] {
        let found = meta.get_media_by_reference(absent).await.expect("look up a ReferenceId");
        assert_eq!(found, None, "ReferenceId {absent:?} names nothing");
    }
    meta.delete_media(std::slice::from_ref(&named.id), at(100)).await.expect("delete a video");
    assert_eq!(meta.get_media_by_reference("ref-7-a").await.expect("look up a ReferenceId"), None);
}

/// An update changes exactly the given fields and the modification time, or nothing at all.
pub async fn update_media_changes_only_given_fields(meta: &dyn MetaStore) {
    let first = NewMedia { reference_id: "ref-8-a".into(), cate_id: Some(1), ..video(8, 1) };
    let second = NewMedia { reference_id: "ref-8-b".into(), ..video(8, 2) };
    meta.create_media(&first).await.expect("create a video");
    meta.create_media(&second).await.expect("create a video");

    let title_only = MediaUpdate { title: Some("新标题".into()), ..MediaUpdate::default() };
    meta.update_media(&first.id, &title_only, at(100)).await.expect("update the title");
    let mut expected = fresh(&first);
    expected.new.title = "新标题".into();
    expected.modified_at = at(100);
    assert_eq!(meta.get_media(&first.id).await.expect("get a media item"), Some(expected.clone()));

    let everything = MediaUpdate {
        title: Some(String::new()),
        description: Some("description ✓".into()),
        tags: Some("x,y".into()),
        cover_url: Some("https://example.com/c.jpg".into()),
        cate_id: Some(2),
        reference_id: Some("ref-8-c".into()),
        user_data: Some("{}".into()),
    };
    meta.update_media(&first.id, &everything, at(200)).await.expect("update every field");
    expected.new.title = String::new();
    expected.new.description = "description ✓".into();
    expected.new.tags = "x,y".into();
    expected.new.cover_url = "https://example.com/c.jpg".into();
    expected.new.cate_id = Some(2);
    expected.new.reference_id = "ref-8-c".into();
    expected.new.user_data = "{}".into();
    expected.modified_at = at(200);
    assert_eq!(meta.get_media(&first.id).await.expect("get a media item"), Some(expected.clone()));

    let taken = MediaUpdate {
        reference_id: Some("ref-8-b".into()),
        title: Some("lost".into()),
        ..MediaUpdate::default()
    };
    expect_conflict(
        meta.update_media(&first.id, &taken, at(300)).await,
        "taking another video's ReferenceId",
    );
    assert_eq!(
        meta.get_media(&first.id).await.expect("get a media item"),
        Some(expected),
        "a conflict changes nothing"
    );

    let own = MediaUpdate { reference_id: Some("ref-8-c".into()), ..MediaUpdate::default() };
    meta.update_media(&first.id, &own, at(400)).await.expect("setting a video's own ReferenceId");
    let clear = MediaUpdate { reference_id: Some(String::new()), ..MediaUpdate::default() };
    meta.update_media(&first.id, &clear, at(500)).await.expect("clearing a ReferenceId");
    meta.update_media(&second.id, &clear, at(500)).await.expect("empty ReferenceIds never conflict");

    expect_not_found(
        meta.update_media(&media_id(8, 99), &title_only, at(600)).await,
        "updating unknown media",
    );
    meta.delete_media(std::slice::from_ref(&second.id), at(700)).await.expect("delete a video");
    expect_not_found(meta.update_media(&second.id, &title_only, at(800)).await, "updating deleted media");
}

/// Deletion hides the media, aborts its open uploads, reports its object keys, and ignores unknown ids.
pub async fn delete_media_hides_media_and_aborts_uploads(meta: &dyn MetaStore) {
    let plain = video(9, 1);
    let playlist = NewMedia { object_prefix: Some("sv/9/2/".into()), ..video(9, 2) };
    let kept = video(9, 3);
    for media in [&plain, &playlist, &kept] {
        meta.create_media(media).await.expect("create a video");
    }
    let open = upload_for(&plain, 9, 1);
    let closed = upload_for(&plain, 9, 2);
    let segment = NewUpload { key: "sv/9/2/seg-0.ts".into(), ..upload_for(&playlist, 9, 3) };
    let other = upload_for(&kept, 9, 4);
    for upload in [&open, &closed, &segment, &other] {
        meta.create_upload(upload, None).await.expect("create an upload");
    }
    meta.abort_upload(&closed.upload_id, at(50)).await.expect("abort an upload");

    let ids = [plain.id.clone(), media_id(9, 99), playlist.id.clone(), plain.id.clone()];
    let deleted = meta.delete_media(&ids, at(100)).await.expect("delete media");
    assert_eq!(sorted(deleted.deleted), sorted(vec![plain.id.clone(), playlist.id.clone()]));

    for gone in [&plain, &playlist] {
        assert_eq!(
            meta.get_media(&gone.id).await.expect("get a media item"),
            None,
            "deleted media is hidden"
        );
    }
    assert_eq!(meta.get_media(&kept.id).await.expect("get a media item"), Some(fresh(&kept)));
    for (upload, state) in [
        (&open, UploadState::Aborted),
        (&closed, UploadState::Aborted),
        (&segment, UploadState::Aborted),
        (&other, UploadState::Open),
    ] {
        assert_eq!(upload_state(meta, &upload.upload_id).await, Some(state), "upload {}", upload.upload_id);
    }
    expect_not_found(
        meta.abort_upload(&open.upload_id, at(150)).await,
        "aborting an upload of deleted media",
    );

    let again =
        meta.delete_media(std::slice::from_ref(&plain.id), at(200)).await.expect("delete media again");
    assert_eq!(again, DeletedMedia::default(), "deleting twice reports nothing");
}

/// GetVideoList applies each filter, and only ever returns live videos.
pub async fn list_videos_filters(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 10).await;
    let here = "outin-10a.oss-cn-shanghai.aliyuncs.com";
    let there = "outin-10b.oss-cn-shanghai.aliyuncs.com";
    let in_here = |n: u32, cate_id: i64, created: u64, reference_id: &str| NewMedia {
        storage_location: here.into(),
        cate_id: Some(cate_id),
        reference_id: reference_id.into(),
        created_at: at(created),
        issuing_key_id: issuer.clone(),
        ..video(10, n)
    };
    let a1 = in_here(1, 1, 100, "ref-10-a1");
    let a2 = in_here(2, 2, 200, "ref-10-a2");
    let a3 = in_here(3, 1, 300, "");
    let deleted = in_here(4, 1, 250, "ref-10-deleted");
    let image = NewMedia { kind: MediaKind::Image, ..in_here(5, 1, 150, "") };
    let attached = NewMedia { kind: MediaKind::Attached, ..in_here(6, 1, 160, "") };
    let b1 = NewMedia { storage_location: there.into(), ..in_here(7, 1, 120, "ref-10-b1") };
    for media in [&a1, &a2, &a3, &deleted, &image, &attached, &b1] {
        meta.create_media(media).await.expect("create a media item");
    }
    let object = object_of(&a2);
    meta.put_object(&object, Some(&guard(&a2, &issuer)), None, at(400)).await.expect("complete a2");
    meta.delete_media(std::slice::from_ref(&deleted.id), at(400)).await.expect("delete a video");

    let base = VideoQuery { storage_location: Some(here.into()), ..all_videos() };
    let cases: Vec<(&str, VideoQuery, Vec<&NewMedia>)> = vec![
        ("storage location only", base.clone(), vec![&a1, &a2, &a3]),
        ("category", VideoQuery { cate_id: Some(1), ..base.clone() }, vec![&a1, &a3]),
        ("unknown category", VideoQuery { cate_id: Some(3), ..base.clone() }, vec![]),
        ("status", VideoQuery { statuses: vec![MediaStatus::Normal], ..base.clone() }, vec![&a2]),
        (
            "several statuses",
            VideoQuery { statuses: vec![MediaStatus::Uploading, MediaStatus::Normal], ..base.clone() },
            vec![&a1, &a2, &a3],
        ),
        ("absent status", VideoQuery { statuses: vec![MediaStatus::UploadFail], ..base.clone() }, vec![]),
        ("start is inclusive", VideoQuery { start: Some(at(200)), ..base.clone() }, vec![&a2, &a3]),
        ("end is exclusive", VideoQuery { end: Some(at(300)), ..base.clone() }, vec![&a1, &a2]),
        ("window", VideoQuery { start: Some(at(101)), end: Some(at(301)), ..base.clone() }, vec![&a2, &a3]),
        (
            "reference ids",
            VideoQuery {
                reference_ids: vec!["ref-10-a2".into(), "ref-10-a1".into(), "ref-10-none".into()],
                ..base.clone()
            },
            vec![&a1, &a2],
        ),
        ("other location", VideoQuery { storage_location: Some(there.into()), ..base.clone() }, vec![&b1]),
        (
            "reference ids in any location",
            VideoQuery {
                reference_ids: vec!["ref-10-a1".into(), "ref-10-b1".into(), "ref-10-deleted".into()],
                ..all_videos()
            },
            vec![&a1, &b1],
        ),
    ];
    for (case, query, expected) in cases {
        let (total, videos) = meta.list_videos(&query).await.expect("list videos");
        let expected: Vec<&str> = expected.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids_of(&videos), expected, "filter: {case}");
        assert_eq!(total, expected.len() as u64, "total for filter: {case}");
    }
    let (_, videos) =
        meta.list_videos(&VideoQuery { statuses: vec![MediaStatus::Normal], ..base }).await.expect("list");
    assert_eq!(videos[0], meta.get_media(&a2.id).await.expect("get a media item").expect("a2 exists"));
}

/// GetVideoList sorts by creation time either way (ties by id) and pages with a total independent of
/// the page.
pub async fn list_videos_orders_and_pages(meta: &dyn MetaStore) {
    let location = "outin-11.oss-cn-shanghai.aliyuncs.com";
    // Three share one creation instant and go in out of id order, so only the tie-break can sort them.
    for (n, created) in [(4, 20), (1, 10), (3, 20), (5, 30), (2, 20)] {
        let media = NewMedia { storage_location: location.into(), created_at: at(created), ..video(11, n) };
        meta.create_media(&media).await.expect("create a video");
    }
    let id = |n: u32| media_id(11, n);
    let base = VideoQuery { storage_location: Some(location.into()), ..all_videos() };
    let cases = [
        ("ascending", base.clone(), vec![1, 2, 3, 4, 5]),
        ("descending", VideoQuery { ascending: false, ..base.clone() }, vec![5, 4, 3, 2, 1]),
        ("a middle page", VideoQuery { offset: 1, limit: 2, ..base.clone() }, vec![2, 3]),
        (
            "a descending page",
            VideoQuery { ascending: false, offset: 1, limit: 3, ..base.clone() },
            vec![4, 3, 2],
        ),
        ("the last page", VideoQuery { offset: 4, limit: 10, ..base.clone() }, vec![5]),
        ("past the end", VideoQuery { offset: 5, limit: 10, ..base.clone() }, vec![]),
        ("an empty page", VideoQuery { offset: 0, limit: 0, ..base.clone() }, vec![]),
        ("huge numbers", VideoQuery { offset: 2, limit: u64::MAX, ..base.clone() }, vec![3, 4, 5]),
    ];
    for (case, query, expected) in cases {
        let (total, videos) = meta.list_videos(&query).await.expect("list videos");
        let expected: Vec<String> = expected.into_iter().map(id).collect();
        assert_eq!(ids_of(&videos), expected, "page: {case}");
        assert_eq!(total, 5, "the total ignores paging: {case}");
    }
}

/// Progress is stored only for a live `Uploading` video, replaces the previous report, and changes nothing
/// else (not even the modification time).
pub async fn record_progress_only_for_uploading_videos(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 12).await;
    let uploading = video(12, 1);
    let image = NewMedia { kind: MediaKind::Image, ..video(12, 2) };
    let normal = video(12, 3);
    let deleted = video(12, 4);
    for media in [&uploading, &image, &normal, &deleted] {
        meta.create_media(media).await.expect("create a media item");
    }
    meta.put_object(&object_of(&normal), Some(&guard(&normal, &issuer)), None, at(50))
        .await
        .expect("complete");
    meta.delete_media(std::slice::from_ref(&deleted.id), at(50)).await.expect("delete a video");
    let before_normal = meta.get_media(&normal.id).await.expect("get a media item");

    let first = ProgressReport {
        client_ip: "2001:db8::1".into(),
        source: "PythonSDK".into(),
        device_model: "设备 ✓".into(),
        file_size: Some(u64::MAX),
        done_bytes: Some(1_u64 << 63),
        done_parts: Some(0),
        part_size: Some(1 << 20),
        reported_at: at(60),
    };
    assert!(meta.record_progress(&uploading.id, &first).await.expect("record progress"));
    let expected = Media { progress: Some(first.clone()), ..fresh(&uploading) };
    assert_eq!(meta.get_media(&uploading.id).await.expect("get a media item"), Some(expected));

    let second = ProgressReport {
        client_ip: String::new(),
        source: String::new(),
        device_model: String::new(),
        file_size: None,
        done_bytes: None,
        done_parts: None,
        part_size: None,
        reported_at: at(70),
    };
    assert!(meta.record_progress(&uploading.id, &second).await.expect("record progress"));
    let expected = Media { progress: Some(second), ..fresh(&uploading) };
    assert_eq!(meta.get_media(&uploading.id).await.expect("get a media item"), Some(expected));

    let unknown = media_id(12, 99);
    for (id, what) in [
        (image.id.as_str(), "an image"),
        (normal.id.as_str(), "a Normal video"),
        (deleted.id.as_str(), "a deleted video"),
        (unknown.as_str(), "unknown media"),
    ] {
        assert!(
            !meta.record_progress(id, &first).await.expect("record progress"),
            "{what} takes no progress"
        );
    }
    assert_eq!(meta.get_media(&image.id).await.expect("get a media item"), Some(fresh(&image)));
    assert_eq!(meta.get_media(&normal.id).await.expect("get a media item"), before_normal);
}

/// Uploads are stored whole, duplicates conflict, and an upload is aborted once.
pub async fn uploads_round_trip(meta: &dyn MetaStore) {
    let media = video(13, 1);
    meta.create_media(&media).await.expect("create a video");
    let free = NewUpload {
        upload_id: upload_id(13, 1),
        bucket: "conformance-13".into(),
        key: "videos/测试 1 (final).mp4".into(),
        media_id: None,
        content_type: String::new(),
        initiated_at: at(1),
    };
    let owned = upload_for(&media, 13, 2);
    for upload in [&free, &owned] {
        meta.create_upload(upload, None).await.expect("create an upload");
        let stored = meta.get_upload(&upload.upload_id).await.expect("get an upload");
        assert_eq!(stored, Some(Upload { new: upload.clone(), state: UploadState::Open }));
    }
    assert_eq!(meta.get_upload(&upload_id(13, 99)).await.expect("get an unknown upload"), None);
    let twice = NewUpload { key: "elsewhere".into(), ..free.clone() };
    expect_conflict(meta.create_upload(&twice, None).await, "creating an upload id twice");

    meta.abort_upload(&free.upload_id, at(5)).await.expect("abort an upload");
    let stored = meta.get_upload(&free.upload_id).await.expect("get an upload");
    assert_eq!(
        stored,
        Some(Upload { new: free.clone(), state: UploadState::Aborted }),
        "closed uploads stay readable"
    );
    expect_not_found(meta.abort_upload(&free.upload_id, at(6)).await, "aborting an upload twice");
    expect_not_found(meta.abort_upload(&upload_id(13, 99), at(6)).await, "aborting an unknown upload");
}

/// ListMultipartUploads: open uploads of one bucket in byte order of (key, upload id), literal
/// case-sensitive prefixes, both markers, and at most `max + 1` rows.
pub async fn list_open_uploads_orders_filters_and_pages(meta: &dyn MetaStore) {
    let bucket = "conformance-14";
    let open = |n: u32, bucket: &str, key: &str| NewUpload {
        upload_id: upload_id(14, n),
        bucket: bucket.into(),
        key: key.into(),
        media_id: None,
        content_type: "application/octet-stream".into(),
        initiated_at: at(u64::from(n)),
    };
    // In byte order: "B" < "a%_" < "a/1" < "a/2" < "é" ('%' is 0x25, '/' 0x2f, 'é' starts with 0xc3).
    let uploads = [
        open(3, bucket, "a/1"),
        open(1, bucket, "a/1"),
        open(2, bucket, "a/2"),
        open(4, bucket, "B"),
        open(5, bucket, "é"),
        open(6, bucket, "a%_"),
        open(7, bucket, "z"),
        open(8, "conformance-14-other", "a/1"),
    ];
    for upload in &uploads {
        meta.create_upload(upload, None).await.expect("create an upload");
    }
    meta.abort_upload(&upload_id(14, 7), at(100)).await.expect("abort an upload");

    let base = UploadQuery { bucket: bucket.into(), max: 1000, ..UploadQuery::default() };
    let cases = [
        ("everything", base.clone(), vec![4, 6, 1, 3, 2, 5]),
        ("max + 1 rows", UploadQuery { max: 2, ..base.clone() }, vec![4, 6, 1]),
        ("max 0 still shows truncation", UploadQuery { max: 0, ..base.clone() }, vec![4]),
        ("prefix", UploadQuery { prefix: "a/".into(), ..base.clone() }, vec![1, 3, 2]),
        ("prefix is literal", UploadQuery { prefix: "a%".into(), ..base.clone() }, vec![6]),
        ("underscore is literal", UploadQuery { prefix: "a_".into(), ..base.clone() }, vec![]),
        ("prefix is case-sensitive", UploadQuery { prefix: "A".into(), ..base.clone() }, vec![]),
        ("unicode prefix", UploadQuery { prefix: "é".into(), ..base.clone() }, vec![5]),
        ("key marker", UploadQuery { key_marker: "a/1".into(), ..base.clone() }, vec![2, 5]),
        (
            "key marker between keys",
            UploadQuery { key_marker: "a/0".into(), ..base.clone() },
            vec![1, 3, 2, 5],
        ),
        (
            "key and upload id markers",
            UploadQuery { key_marker: "a/1".into(), upload_id_marker: upload_id(14, 1), ..base.clone() },
            vec![3, 2, 5],
        ),
        (
            "everything at once",
            UploadQuery {
                prefix: "a/".into(),
                key_marker: "a/1".into(),
                upload_id_marker: upload_id(14, 1),
                max: 1,
                ..base.clone()
            },
            vec![3, 2],
        ),
        ("other bucket", UploadQuery { bucket: "conformance-14-other".into(), ..base.clone() }, vec![8]),
        ("unknown bucket", UploadQuery { bucket: "conformance-14-none".into(), ..base.clone() }, vec![]),
    ];
    for (case, query, expected) in cases {
        let listed = meta.list_open_uploads(&query).await.expect("list open uploads");
        let listed: Vec<&str> = listed.iter().map(|u| u.new.upload_id.as_str()).collect();
        let expected: Vec<String> = expected.into_iter().map(|n| upload_id(14, n)).collect();
        assert_eq!(listed, expected, "listing: {case}");
    }
    let listed = meta.list_open_uploads(&UploadQuery { prefix: "B".into(), ..base }).await.expect("list");
    assert_eq!(listed, vec![Upload { new: uploads[3].clone(), state: UploadState::Open }], "rows are whole");
}

/// Initiating an upload under a guard is refused, leaving no row, unless the key is active and the media
/// live and `Uploading`.
pub async fn create_upload_checks_the_guard(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 19).await;
    let revoked = key_id(19, 2);
    meta.create_key(&key(19, 2, 0)).await.expect("create a key");
    meta.revoke_key(&revoked, at(1)).await.expect("revoke a key");
    let uploading = video(19, 1);
    let deleted = video(19, 2);
    let normal = video(19, 3);
    for media in [&uploading, &deleted, &normal] {
        meta.create_media(media).await.expect("create a video");
    }
    meta.delete_media(std::slice::from_ref(&deleted.id), at(10)).await.expect("delete a video");
    meta.put_object(&object_of(&normal), Some(&guard(&normal, &issuer)), None, at(10))
        .await
        .expect("complete");

    let refusals = [
        ("a revoked key", guard(&uploading, &revoked), &uploading),
        ("an unknown key", guard(&uploading, &key_id(19, 99)), &uploading),
        ("deleted media", guard(&deleted, &issuer), &deleted),
        ("Normal media", guard(&normal, &issuer), &normal),
        (
            "unknown media",
            WriteGuard { media_id: Some(media_id(19, 99)), ..guard(&uploading, &issuer) },
            &uploading,
        ),
    ];
    for (n, (case, refused, media)) in (1..).zip(refusals) {
        let upload = upload_for(media, 19, n);
        expect_refused(meta.create_upload(&upload, Some(&refused)).await, case);
        assert_eq!(
            meta.get_upload(&upload.upload_id).await.expect("get an upload"),
            None,
            "{case} leaves no row"
        );
    }
    let upload = upload_for(&uploading, 19, 50);
    meta.create_upload(&upload, Some(&guard(&uploading, &issuer))).await.expect("a valid guard is accepted");
    assert_eq!(upload_state(meta, &upload.upload_id).await, Some(UploadState::Open));
}

/// An instant `ms` milliseconds after a fixed base (November 2023).
fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

/// 32 lowercase hex characters, as VOD media ids are.
fn media_id(scope: u32, n: u32) -> String {
    format!("{scope:08x}{n:024x}")
}

/// 32 uppercase hex characters, as OSS upload ids are here.
fn upload_id(scope: u32, n: u32) -> String {
    format!("{scope:08X}{n:024X}")
}

fn key_scope(scope: u32) -> String {
    format!("LTAI5tConf{scope:06}")
}

fn key_id(scope: u32, n: u32) -> String {
    format!("{}{n:08}", key_scope(scope))
}

fn key(scope: u32, n: u32, created: u64) -> AccessKeyRecord {
    AccessKeyRecord {
        id: key_id(scope, n),
        secret: Secret::new(format!("secret-{scope}-{n}")),
        description: String::new(),
        created_at: at(created),
        revoked_at: None,
    }
}

/// Creates the scope's first key, active, and returns its id.
async fn active_key(meta: &dyn MetaStore, scope: u32) -> String {
    let record = key(scope, 1, 0);
    meta.create_key(&record).await.expect("create an active key");
    record.id
}

/// A plain video of the scope, issued by the scope's first key, every optional field empty.
fn video(scope: u32, n: u32) -> NewMedia {
    let id = media_id(scope, n);
    NewMedia {
        kind: MediaKind::Video,
        title: format!("video {scope}-{n}"),
        description: String::new(),
        file_name: format!("video-{n}.mp4"),
        file_ext: "mp4".into(),
        declared_size: None,
        cover_url: String::new(),
        cate_id: None,
        cate_ids: String::new(),
        tags: String::new(),
        template_group_id: String::new(),
        workflow_id: String::new(),
        storage_location: format!("outin-conformance-{scope}.oss-cn-shanghai.aliyuncs.com"),
        app_id: "app-1000000".into(),
        user_data: String::new(),
        reference_id: String::new(),
        image_type: String::new(),
        business_type: String::new(),
        bucket: format!("outin-conformance-{scope}"),
        object_key: format!("sv/{scope}/{id}.mp4"),
        object_prefix: None,
        issuing_key_id: key_id(scope, 1),
        created_at: at(u64::from(n)),
        id,
    }
}

/// The media as `create_media` must store it.
fn fresh(media: &NewMedia) -> Media {
    Media {
        new: media.clone(),
        status: MediaStatus::Uploading,
        size: None,
        etag: None,
        crc64: None,
        modified_at: media.created_at,
        completed_at: None,
        progress: None,
    }
}

fn upload_for(media: &NewMedia, scope: u32, n: u32) -> NewUpload {
    NewUpload {
        upload_id: upload_id(scope, n),
        bucket: media.bucket.clone(),
        key: media.object_key.clone(),
        media_id: Some(media.id.clone()),
        content_type: "video/mp4".into(),
        initiated_at: at(u64::from(n)),
    }
}

fn guard(media: &NewMedia, issuing_key_id: &str) -> WriteGuard {
    WriteGuard { issuing_key_id: issuing_key_id.into(), media_id: Some(media.id.clone()), overwrite: false }
}

/// A PutObject of the media's own object: 10 bytes in a fresh blob.
fn object_of(media: &NewMedia) -> PutCommit {
    put_sized(media, 10, 0x9A6C_9329_AD2C_5F6B)
}

/// A PutObject of the media's own object with the given figures (the catalogue records digests as the
/// blob store reported them; it never re-reads bytes).
fn put_sized(media: &NewMedia, size: u64, crc64: u64) -> PutCommit {
    let md5 =
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
    PutCommit {
        bucket: media.bucket.clone(),
        key: media.object_key.clone(),
        blob: NewBlob {
            id: crate::storage::new_blob_id(),
            digests: crate::storage::Digests { md5, crc64, len: size },
        },
        meta: super::ObjectMeta::default(),
        forbid_overwrite: false,
    }
}

/// Every video of every location, oldest first, in one page.
fn all_videos() -> VideoQuery {
    VideoQuery {
        cate_id: None,
        statuses: Vec::new(),
        start: None,
        end: None,
        storage_location: None,
        reference_ids: Vec::new(),
        ascending: true,
        offset: 0,
        limit: 100,
    }
}

async fn upload_state(meta: &dyn MetaStore, upload_id: &str) -> Option<UploadState> {
    meta.get_upload(upload_id).await.expect("get an upload").map(|u| u.state)
}

fn ids_of(media: &[Media]) -> Vec<&str> {
    media.iter().map(|m| m.new.id.as_str()).collect()
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

#[track_caller]
fn expect_conflict<T: std::fmt::Debug>(result: MetaResult<T>, what: &str) {
    assert!(matches!(result, Err(MetaError::Conflict(_))), "{what}: expected Conflict, got {result:?}");
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(result: MetaResult<T>, what: &str) {
    assert!(matches!(result, Err(MetaError::NotFound(_))), "{what}: expected NotFound, got {result:?}");
}

#[track_caller]
fn expect_refused<T: std::fmt::Debug>(result: MetaResult<T>, what: &str) {
    assert!(matches!(result, Err(MetaError::Refused(_))), "{what}: expected Refused, got {result:?}");
}
