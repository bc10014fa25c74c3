//! Conformance of objects and blobs ([`ObjectRepo`](crate::meta::ObjectRepo),
//! [`BlobRepo`](crate::meta::BlobRepo)): every commit switches what a key names whole or changes nothing,
//! and the blobs it stops referencing reach the collector at the commit's instant, never before and never
//! while live. The collector's claims are global (every bucket), so [`run_all`](super::run_all) runs these
//! checks last; each asserts only about its own blobs. A blob's state is observed only through the
//! collector's calls: `claim_garbage` with a cutoff at and just after the release instant (released blobs
//! are claimed by the second call only), and `claim_orphans` (an id the catalogue never recorded, or
//! already collected, comes back; a live or released one does not).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use vodup_proto::crc64;
use vodup_proto::oss::part::multipart_etag;

use super::{
    MetaStore, NewMedia, NewUpload, UploadState, active_key, at, expect_conflict, expect_not_found,
    expect_refused, fresh, guard, key, key_id, media_id, sorted, upload_for, upload_id, video,
};
use crate::meta::{
    CompleteCommit, CompleteOutcome, ImportCounts, LegacyImport, Media, MediaStatus, NewBlob, NewEvent,
    ObjectMeta, ObjectType, ObjectVersion, Piece, PutCommit, StoredPart, WriteGuard,
};
use crate::storage::{Digests, new_blob_id};

/// Later than any instant a check uses: a cutoff that claims every released blob.
const FAR: u64 = 100_000_000_000;

/// Digests as a blob store would report them; `seed` makes them distinct, and seeds of 0x80 and above
/// give CRC-64s of 2^63 and more.
fn digests(seed: u8, len: u64) -> Digests {
    let mut md5 = [seed; 16];
    md5[0] = 0xA5;
    md5[15] = seed.wrapping_mul(7);
    Digests { md5, crc64: 0x0123_4567_89AB_CDEF ^ (u64::from(seed) << 56), len }
}

/// A freshly stored blob.
fn blob(seed: u8, len: u64) -> NewBlob {
    NewBlob { id: new_blob_id(), digests: digests(seed, len) }
}

fn put(bucket: &str, key: &str, blob: &NewBlob) -> PutCommit {
    PutCommit {
        bucket: bucket.into(),
        key: key.into(),
        blob: blob.clone(),
        meta: ObjectMeta::default(),
        forbid_overwrite: false,
    }
}

/// A PutObject of the media's own key.
fn put_media(media: &NewMedia, blob: &NewBlob) -> PutCommit {
    put(&media.bucket, &media.object_key, blob)
}

fn bucket(scope: u32) -> String {
    format!("conformance-{scope}")
}

fn free_upload(scope: u32, n: u32, key: &str) -> NewUpload {
    NewUpload {
        upload_id: upload_id(scope, n),
        bucket: bucket(scope),
        key: key.into(),
        media_id: None,
        content_type: "application/x-conformance".into(),
        initiated_at: at(u64::from(n)),
    }
}

fn complete(upload: &NewUpload, listed: Option<Vec<(u32, String)>>, min_part_size: u64) -> CompleteCommit {
    CompleteCommit {
        upload_id: upload.upload_id.clone(),
        bucket: upload.bucket.clone(),
        key: upload.key.clone(),
        listed,
        min_part_size,
    }
}

fn ids(blobs: &[&NewBlob]) -> Vec<String> {
    blobs.iter().map(|b| b.id.clone()).collect()
}

async fn object(meta: &dyn MetaStore, bucket: &str, key: &str) -> Option<(ObjectVersion, Vec<Piece>)> {
    meta.get_object(bucket, key, true).await.expect("get an object")
}

async fn parts(meta: &dyn MetaStore, upload: &NewUpload) -> Vec<StoredPart> {
    meta.list_parts(&upload.upload_id, &upload.bucket, &upload.key).await.expect("list parts")
}

async fn record_part(meta: &dyn MetaStore, upload: &NewUpload, number: u32, blob: &NewBlob, ms: u64) {
    meta.put_part(&upload.upload_id, &upload.bucket, &upload.key, number, blob, at(ms))
        .await
        .expect("record a part");
}

/// Asserts `ids` were released at `ms`: a collector cutting off at `ms` does not claim them, one cutting
/// off a millisecond later does (and so claims them).
async fn released_at(meta: &dyn MetaStore, ids: Vec<String>, ms: u64, what: &str) {
    let early = meta.claim_garbage(at(ms), u32::MAX, at(ms)).await.expect("claim garbage");
    for id in &ids {
        assert!(!early.contains(id), "{what}: blob {id} was claimable before its release at {ms}");
    }
    let due = meta.claim_garbage(at(ms + 1), u32::MAX, at(ms + 1)).await.expect("claim garbage");
    for id in &ids {
        assert!(due.contains(id), "{what}: blob {id} was not released at {ms} (claimed: {due:?})");
    }
}

/// Asserts `ids` are live: neither a released blob (the collector's cutoff far in the future does not
/// claim them) nor unknown (claiming them as orphans returns nothing). Claims every released blob.
async fn assert_live(meta: &dyn MetaStore, ids: Vec<String>, what: &str) {
    let garbage = meta.claim_garbage(at(FAR), u32::MAX, at(FAR)).await.expect("claim garbage");
    let orphans = meta.claim_orphans(&ids, at(FAR)).await.expect("claim orphans");
    for id in &ids {
        assert!(!garbage.contains(id), "{what}: live blob {id} was released");
        assert!(!orphans.contains(id), "{what}: live blob {id} is unknown to the catalogue");
    }
}

/// Asserts the catalogue never recorded `id` (a refused commit left no trace): claiming it as an orphan
/// returns it, which also tombstones it.
async fn assert_unrecorded(meta: &dyn MetaStore, id: &str, what: &str) {
    let claimed = meta.claim_orphans(&[id.to_owned()], at(FAR)).await.expect("claim orphans");
    assert_eq!(claimed, vec![id.to_owned()], "{what}: the refused commit recorded its blob");
}

/// PutObject then GetObject, with and without pieces, returns every field as committed: user metadata
/// (unicode, order), content type, Content-MD5, and sizes and CRC-64s of 2^63 and above.
pub async fn put_and_get_object_round_trip(meta: &dyn MetaStore) {
    let bucket = bucket(40);
    let body = blob(0x80, 1_u64 << 63);
    let full = PutCommit {
        meta: ObjectMeta {
            content_type: Some("video/mp4; codecs=\"avc1\"".into()),
            user_meta: vec![
                ("author".into(), "张三 — \"quoted\"".into()),
                ("empty".into(), String::new()),
                ("x-y".into(), "1=2&3".into()),
            ],
        },
        ..put(&bucket, "videos/测试 1 (final).mp4", &body)
    };
    let committed = meta.put_object(&full, None, None, at(100)).await.expect("put an object");
    assert_eq!(
        (committed.etag.as_str(), committed.crc64, committed.content_md5, committed.media),
        (body.digests.etag().as_str(), body.digests.crc64, Some(body.digests.md5), None),
        "the commit answers the blob's figures and completes no media"
    );

    let (version, none) = meta.get_object(&bucket, &full.key, false).await.expect("get").expect("present");
    assert!(none.is_empty(), "no pieces unless asked for: {none:?}");
    assert!(
        version.version_id.len() == 32 && version.version_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "a version id is 32 hex digits: {}",
        version.version_id
    );
    let expected = ObjectVersion {
        bucket: bucket.clone(),
        key: full.key.clone(),
        version_id: version.version_id.clone(),
        size: 1_u64 << 63,
        etag: body.digests.etag(),
        crc64: body.digests.crc64,
        content_md5: Some(body.digests.md5),
        object_type: ObjectType::Normal,
        meta: full.meta.clone(),
        last_modified: at(100),
        upload_id: None,
    };
    assert_eq!(version, expected);
    let with_pieces = object(meta, &bucket, &full.key).await;
    assert_eq!(with_pieces, Some((expected, vec![Piece { blob_id: body.id.clone(), size: 1_u64 << 63 }])));

    let bare_blob = blob(0xFF, 0);
    let bare = put(&bucket, "bare", &bare_blob);
    meta.put_object(&bare, None, None, at(200)).await.expect("put an empty object");
    let (version, pieces) = object(meta, &bucket, "bare").await.expect("present");
    assert_eq!(
        (version.size, version.crc64, version.meta),
        (0, bare_blob.digests.crc64, ObjectMeta::default())
    );
    assert_eq!(pieces, vec![Piece { blob_id: bare_blob.id.clone(), size: 0 }]);

    for (b, k) in [(bucket.as_str(), "absent"), ("conformance-40-other", "bare"), (bucket.as_str(), "BARE")] {
        assert_eq!(meta.get_object(b, k, true).await.expect("get"), None, "{b}/{k} names nothing");
    }
    assert_live(meta, ids(&[&body, &bare_blob]), "committed objects").await;
}

/// A second PutObject replaces the version and releases the old blob at its instant; with
/// `forbid_overwrite` it is a Conflict that changes nothing and records nothing.
pub async fn put_replaces_the_version_and_releases_the_old_blob(meta: &dyn MetaStore) {
    let bucket = bucket(41);
    let (first, second) = (blob(1, 10), blob(2, 20));
    meta.put_object(&put(&bucket, "k", &first), None, None, at(100)).await.expect("put");
    let (old, _) = object(meta, &bucket, "k").await.expect("present");
    let before = meta.blob_counts().await.expect("count blobs");
    meta.put_object(&put(&bucket, "k", &second), None, None, at(200)).await.expect("put again");
    let after = meta.blob_counts().await.expect("count blobs");
    assert_eq!((after.live, after.garbage), (before.live, before.garbage + 1), "one blob in, one released");

    let (new, pieces) = object(meta, &bucket, "k").await.expect("present");
    assert_ne!(new.version_id, old.version_id, "every commit is a new version");
    assert_eq!((new.size, new.etag.clone(), new.last_modified), (20, second.digests.etag(), at(200)));
    assert_eq!(pieces, vec![Piece { blob_id: second.id.clone(), size: 20 }]);
    released_at(meta, vec![first.id.clone()], 200, "the replaced version").await;

    let forbidden = blob(3, 30);
    let refused = PutCommit { forbid_overwrite: true, ..put(&bucket, "k", &forbidden) };
    expect_conflict(
        meta.put_object(&refused, None, None, at(300)).await,
        "forbid_overwrite on a present key",
    );
    assert_eq!(object(meta, &bucket, "k").await, Some((new, pieces)), "a Conflict changes nothing");
    assert_unrecorded(meta, &forbidden.id, "forbid_overwrite").await;

    let fresh_key = blob(4, 40);
    let allowed = PutCommit { forbid_overwrite: true, ..put(&bucket, "other", &fresh_key) };
    meta.put_object(&allowed, None, None, at(300)).await.expect("forbid_overwrite on an absent key");
    assert_live(meta, ids(&[&second, &fresh_key]), "current versions").await;
}

/// A refused guard changes nothing (the key's object, the media) and records no blob: a revoked or
/// unknown key, deleted or unknown media, media no longer `Uploading`. An overwrite credential may
/// replace a `Normal` media's source, which takes the new figures.
pub async fn put_object_checks_the_guard(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 42).await;
    let revoked = key_id(42, 2);
    meta.create_key(&key(42, 2, 0)).await.expect("create a key");
    meta.revoke_key(&revoked, at(1)).await.expect("revoke a key");
    let (uploading, deleted, normal) = (video(42, 1), video(42, 2), video(42, 3));
    for media in [&uploading, &deleted, &normal] {
        meta.create_media(media).await.expect("create a video");
    }
    let original = blob(1, 10);
    meta.put_object(&put_media(&normal, &original), Some(&guard(&normal, &issuer)), None, at(10))
        .await
        .expect("complete");
    meta.delete_media(std::slice::from_ref(&deleted.id), at(10)).await.expect("delete a video");
    let normal_before = meta.get_media(&normal.id).await.expect("get media");
    let normal_object = object(meta, &normal.bucket, &normal.object_key).await;

    let refusals = [
        ("a revoked key", guard(&uploading, &revoked), &uploading),
        ("an unknown key", guard(&uploading, &key_id(42, 99)), &uploading),
        ("deleted media", guard(&deleted, &issuer), &deleted),
        ("deleted media, overwriting", WriteGuard { overwrite: true, ..guard(&deleted, &issuer) }, &deleted),
        ("Normal media", guard(&normal, &issuer), &normal),
        ("a revoked key overwriting", WriteGuard { overwrite: true, ..guard(&normal, &revoked) }, &normal),
        (
            "unknown media",
            WriteGuard { media_id: Some(media_id(42, 99)), ..guard(&uploading, &issuer) },
            &uploading,
        ),
    ];
    for (n, (case, refused, media)) in (10_u8..).zip(refusals) {
        let body = blob(n, 5);
        let before = object(meta, &media.bucket, &media.object_key).await;
        expect_refused(meta.put_object(&put_media(media, &body), Some(&refused), None, at(20)).await, case);
        assert_eq!(
            object(meta, &media.bucket, &media.object_key).await,
            before,
            "{case}: the key is unchanged"
        );
        assert_unrecorded(meta, &body.id, case).await;
    }
    assert_eq!(meta.get_media(&uploading.id).await.expect("get media"), Some(fresh(&uploading)));
    assert_eq!(meta.get_media(&normal.id).await.expect("get media"), normal_before);
    assert_eq!(object(meta, &normal.bucket, &normal.object_key).await, normal_object);

    let replacement = blob(0x90, 1_u64 << 63);
    let overwrite = WriteGuard { overwrite: true, ..guard(&normal, &issuer) };
    let done = meta
        .put_object(&put_media(&normal, &replacement), Some(&overwrite), None, at(30))
        .await
        .expect("an overwrite credential replaces a Normal source");
    let expected = Media {
        status: MediaStatus::Normal,
        size: Some(1_u64 << 63),
        etag: Some(replacement.digests.etag()),
        crc64: Some(replacement.digests.crc64),
        modified_at: at(30),
        completed_at: Some(at(30)),
        ..fresh(&normal)
    };
    assert_eq!(done.media, Some(expected.clone()), "the overwrite returns the media with the new figures");
    assert_eq!(meta.get_media(&normal.id).await.expect("get media"), Some(expected));
    released_at(meta, vec![original.id.clone()], 30, "the overwritten source").await;
    assert_live(meta, vec![replacement.id.clone()], "the new source").await;
}

/// Parts are recorded per open upload and number, listed ascending with their digests; a replaced part's
/// blob is released at the replacement; a wrong key, bucket or upload, or a closed upload, is NotFound and
/// records nothing; aborting releases every part.
pub async fn parts_are_recorded_replaced_and_released(meta: &dyn MetaStore) {
    let bucket = bucket(43);
    let upload = free_upload(43, 1, "movie.mp4");
    meta.create_upload(&upload, None).await.expect("create an upload");
    assert_eq!(parts(meta, &upload).await, vec![], "a new upload has no parts");
    let (two, one, one_again) = (blob(2, 200), blob(1, 1_u64 << 63), blob(0x81, 100));
    record_part(meta, &upload, 2, &two, 10).await;
    record_part(meta, &upload, 1, &one, 20).await;
    let part = |number: u32, blob: &NewBlob, ms: u64| StoredPart {
        part_number: number,
        blob_id: blob.id.clone(),
        digests: blob.digests,
        uploaded_at: at(ms),
    };
    assert_eq!(parts(meta, &upload).await, vec![part(1, &one, 20), part(2, &two, 10)], "ascending, whole");

    record_part(meta, &upload, 1, &one_again, 30).await;
    assert_eq!(parts(meta, &upload).await, vec![part(1, &one_again, 30), part(2, &two, 10)]);
    released_at(meta, vec![one.id.clone()], 30, "the replaced part").await;

    let unknown = upload_id(43, 99);
    let wrong = [
        ("another key", upload.upload_id.as_str(), bucket.as_str(), "other.mp4"),
        ("another bucket", upload.upload_id.as_str(), "conformance-43-other", "movie.mp4"),
        ("an unknown upload", unknown.as_str(), bucket.as_str(), "movie.mp4"),
    ];
    for (n, (case, id, b, k)) in (50_u8..).zip(wrong) {
        let stray = blob(n, 1);
        expect_not_found(meta.put_part(id, b, k, 3, &stray, at(40)).await, case);
        expect_not_found(meta.list_parts(id, b, k).await, case);
        assert_unrecorded(meta, &stray.id, case).await;
    }
    assert_eq!(parts(meta, &upload).await, vec![part(1, &one_again, 30), part(2, &two, 10)], "unchanged");

    meta.abort_upload(&upload.upload_id, at(50)).await.expect("abort");
    released_at(meta, ids(&[&one_again, &two]), 50, "an aborted upload's parts").await;
    let late = blob(60, 1);
    expect_not_found(
        meta.put_part(&upload.upload_id, &bucket, "movie.mp4", 3, &late, at(60)).await,
        "a part for an aborted upload",
    );
    expect_not_found(
        meta.list_parts(&upload.upload_id, &bucket, "movie.mp4").await,
        "listing an aborted upload",
    );
    assert_unrecorded(meta, &late.id, "a part for an aborted upload").await;
}

/// Complete publishes the listed parts' blobs in order, with the multipart ETag and the combined CRC-64
/// as OSS computes them, closes the upload and releases the unlisted parts; a repeat with the same parts,
/// or complete-all, answers the same again; another list, an abort, or a Complete of an aborted upload is
/// NotFound and changes nothing.
pub async fn complete_publishes_the_listed_parts(meta: &dyn MetaStore) {
    let bucket = bucket(44);
    let upload = free_upload(44, 1, "assembled.bin");
    meta.create_upload(&upload, None).await.expect("create an upload");
    let (p1, p2, p3) = (blob(1, 150), blob(2, 100), blob(0x83, 1_u64 << 62));
    for (number, part) in [(3, &p3), (1, &p1), (2, &p2)] {
        record_part(meta, &upload, number, part, u64::from(number)).await;
    }
    let listed = vec![(1, p1.digests.etag()), (3, p3.digests.etag().to_lowercase())];
    let outcome =
        meta.complete_upload(&complete(&upload, Some(listed.clone()), 100), None, None, at(100)).await;
    let etag = multipart_etag([&p1.digests.md5, &p3.digests.md5]);
    assert!(etag.ends_with("-2\""), "a multipart ETag counts its parts: {etag}");
    let crc = crc64::combine(p1.digests.crc64, p3.digests.crc64, p3.digests.len);
    let answer = crate::meta::Committed { etag: etag.clone(), crc64: crc, content_md5: None, media: None };
    assert_eq!(outcome.expect("complete"), CompleteOutcome::Completed(answer.clone()));

    let (version, pieces) = object(meta, &bucket, &upload.key).await.expect("the key names the object");
    let expected = ObjectVersion {
        bucket: bucket.clone(),
        key: upload.key.clone(),
        version_id: version.version_id.clone(),
        size: 150 + (1_u64 << 62),
        etag: etag.clone(),
        crc64: crc,
        content_md5: None,
        object_type: ObjectType::Multipart,
        meta: ObjectMeta { content_type: Some(upload.content_type.clone()), user_meta: Vec::new() },
        last_modified: at(100),
        upload_id: Some(upload.upload_id.clone()),
    };
    assert_eq!(version, expected);
    assert_eq!(
        pieces,
        vec![
            Piece { blob_id: p1.id.clone(), size: 150 },
            Piece { blob_id: p3.id.clone(), size: 1_u64 << 62 }
        ],
        "the listed parts' blobs, in order"
    );
    let got = meta.get_upload(&upload.upload_id).await.expect("get an upload").map(|u| u.state);
    assert_eq!(got, Some(UploadState::Completed));
    released_at(meta, vec![p2.id.clone()], 100, "an unlisted part").await;

    let repeats = [("an identical repeat", Some(listed.clone())), ("complete-all after completion", None)];
    for (case, list) in repeats {
        let again = meta.complete_upload(&complete(&upload, list, 100), None, None, at(200)).await;
        let again = again.unwrap_or_else(|e| panic!("{case}: {e}"));
        let CompleteOutcome::Repeated(repeated) = again else {
            panic!("{case}: expected Repeated, got {again:?}")
        };
        assert_eq!((repeated.etag, repeated.crc64), (etag.clone(), crc), "{case}: the same answer");
    }
    let others = [
        ("another list", Some(vec![(1, p1.digests.etag())])),
        (
            "the unlisted part too",
            Some(vec![(1, p1.digests.etag()), (2, p2.digests.etag()), (3, p3.digests.etag())]),
        ),
    ];
    for (case, list) in others {
        expect_not_found(
            meta.complete_upload(&complete(&upload, list, 100), None, None, at(200)).await,
            case,
        );
    }
    expect_not_found(meta.abort_upload(&upload.upload_id, at(200)).await, "aborting a completed upload");
    assert_eq!(
        object(meta, &bucket, &upload.key).await,
        Some((expected, pieces)),
        "repeats and refusals change nothing"
    );

    let aborted = free_upload(44, 2, "aborted.bin");
    meta.create_upload(&aborted, None).await.expect("create an upload");
    let lost = blob(9, 150);
    record_part(meta, &aborted, 1, &lost, 5).await;
    meta.abort_upload(&aborted.upload_id, at(300)).await.expect("abort");
    released_at(meta, vec![lost.id.clone()], 300, "an aborted upload's part").await;
    for (case, list) in [("listing a part", Some(vec![(1, lost.digests.etag())])), ("complete-all", None)] {
        expect_not_found(
            meta.complete_upload(&complete(&aborted, list, 100), None, None, at(400)).await,
            &format!("completing an aborted upload, {case}"),
        );
    }
    assert_eq!(object(meta, &bucket, &aborted.key).await, None, "an aborted upload publishes nothing");
    assert_live(meta, ids(&[&p1, &p3]), "the completed object").await;
}

/// A Complete that finds a listed part missing or with another ETag, a part too small, no parts, a
/// refused guard, or the upload under another key or unknown, changes nothing: the upload stays open
/// with its parts, the key names nothing, no blob is released; the right Complete then succeeds.
pub async fn complete_refusals_change_nothing(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 45).await;
    let revoked = key_id(45, 2);
    meta.create_key(&key(45, 2, 0)).await.expect("create a key");
    meta.revoke_key(&revoked, at(1)).await.expect("revoke a key");
    let media = video(45, 1);
    meta.create_media(&media).await.expect("create a video");
    let upload = upload_for(&media, 45, 1);
    meta.create_upload(&upload, None).await.expect("create an upload");
    let (p1, p2, p3) = (blob(1, 100), blob(2, 99), blob(3, 7));
    for (number, part) in [(1, &p1), (2, &p2), (3, &p3)] {
        record_part(meta, &upload, number, part, u64::from(number)).await;
    }
    let stored = parts(meta, &upload).await;
    let e = |p: &NewBlob| p.digests.etag();
    let invalid = |part_number: u32, etag: String| CompleteOutcome::InvalidPart { part_number, etag };
    let cases = [
        ("a missing part", Some(vec![(1, e(&p1)), (4, e(&p3))]), invalid(4, e(&p3))),
        ("another part's ETag", Some(vec![(1, e(&p2)), (2, e(&p2))]), invalid(1, e(&p2))),
        ("a malformed ETag", Some(vec![(1, "\"xyz\"".into())]), invalid(1, "\"xyz\"".into())),
        (
            "a part too small",
            Some(vec![(1, e(&p1)), (2, e(&p2)), (3, e(&p3))]),
            CompleteOutcome::PartTooSmall { part_number: 2 },
        ),
        ("complete-all with a part too small", None, CompleteOutcome::PartTooSmall { part_number: 2 }),
        ("an empty list", Some(vec![]), CompleteOutcome::NoParts),
    ];
    let good = guard(&media, &issuer);
    for (case, list, expected) in cases {
        let outcome = meta.complete_upload(&complete(&upload, list, 100), Some(&good), None, at(10)).await;
        assert_eq!(outcome.unwrap_or_else(|e| panic!("{case}: {e}")), expected, "{case}");
    }
    let listed = Some(vec![(1, e(&p1)), (3, e(&p3))]);
    expect_refused(
        meta.complete_upload(
            &complete(&upload, listed.clone(), 100),
            Some(&guard(&media, &revoked)),
            None,
            at(10),
        )
        .await,
        "a revoked key",
    );
    let elsewhere = [
        ("another key", CompleteCommit { key: "other".into(), ..complete(&upload, listed.clone(), 100) }),
        (
            "another bucket",
            CompleteCommit { bucket: "other".into(), ..complete(&upload, listed.clone(), 100) },
        ),
        (
            "an unknown upload",
            CompleteCommit { upload_id: upload_id(45, 99), ..complete(&upload, None, 100) },
        ),
    ];
    for (case, commit) in elsewhere {
        expect_not_found(meta.complete_upload(&commit, Some(&good), None, at(10)).await, case);
    }
    assert_eq!(parts(meta, &upload).await, stored, "refusals keep every part");
    assert_eq!(object(meta, &media.bucket, &media.object_key).await, None, "refusals publish nothing");
    assert_eq!(meta.get_media(&media.id).await.expect("get media"), Some(fresh(&media)));
    let empty = upload_for(&media, 45, 2);
    meta.create_upload(&empty, None).await.expect("create an upload");
    let outcome = meta.complete_upload(&complete(&empty, None, 100), Some(&good), None, at(10)).await;
    assert_eq!(outcome.expect("complete-all without parts"), CompleteOutcome::NoParts);
    assert_eq!(
        meta.get_upload(&empty.upload_id).await.expect("get").map(|u| u.state),
        Some(UploadState::Open)
    );
    assert_live(meta, ids(&[&p1, &p2, &p3]), "the parts of a refused Complete").await;

    let outcome = meta.complete_upload(&complete(&upload, listed, 100), Some(&good), None, at(20)).await;
    assert!(
        matches!(outcome, Ok(CompleteOutcome::Completed(_))),
        "then the right Complete works: {outcome:?}"
    );
    released_at(meta, vec![p2.id.clone()], 20, "the part left out").await;
}

/// Complete and Abort close an upload once: after either, the other is NotFound.
pub async fn complete_and_abort_exclude_each_other(meta: &dyn MetaStore) {
    let bucket = bucket(46);
    let (completed, aborted) = (free_upload(46, 1, "a"), free_upload(46, 2, "b"));
    let (c1, a1, a2) = (blob(1, 10), blob(2, 10), blob(3, 10));
    for upload in [&completed, &aborted] {
        meta.create_upload(upload, None).await.expect("create an upload");
    }
    record_part(meta, &completed, 1, &c1, 1).await;
    record_part(meta, &aborted, 1, &a1, 1).await;
    record_part(meta, &aborted, 2, &a2, 1).await;

    let done = meta.complete_upload(&complete(&completed, None, 1), None, None, at(10)).await;
    assert!(matches!(done, Ok(CompleteOutcome::Completed(_))), "{done:?}");
    expect_not_found(meta.abort_upload(&completed.upload_id, at(20)).await, "abort after Complete");
    assert!(object(meta, &bucket, "a").await.is_some(), "the completed object stays");

    meta.abort_upload(&aborted.upload_id, at(30)).await.expect("abort");
    released_at(meta, ids(&[&a1, &a2]), 30, "abort releases every part").await;
    for (case, list) in [("Complete after abort", Some(vec![(1, a1.digests.etag())])), ("complete-all", None)]
    {
        expect_not_found(meta.complete_upload(&complete(&aborted, list, 1), None, None, at(40)).await, case);
    }
    expect_not_found(meta.abort_upload(&aborted.upload_id, at(40)).await, "abort twice");
    assert_eq!(object(meta, &bucket, "b").await, None);
    assert_live(meta, vec![c1.id.clone()], "the completed object").await;
}

/// DeleteObject removes the version and releases its blobs; `false` when the key names nothing; refused,
/// changing nothing, for the source of a live `Normal` media item.
pub async fn delete_object_releases_or_refuses(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 47).await;
    let bucket = bucket(47);
    assert!(!meta.delete_object(&bucket, "absent", at(1)).await.expect("delete"), "nothing to delete");
    let body = blob(1, 10);
    meta.put_object(&put(&bucket, "k", &body), None, None, at(10)).await.expect("put");
    assert!(meta.delete_object(&bucket, "k", at(20)).await.expect("delete"));
    assert_eq!(object(meta, &bucket, "k").await, None);
    released_at(meta, vec![body.id.clone()], 20, "a deleted object").await;
    assert!(!meta.delete_object(&bucket, "k", at(30)).await.expect("delete again"), "deleted once");

    let media = video(47, 1);
    meta.create_media(&media).await.expect("create a video");
    let source = blob(2, 10);
    meta.put_object(&put_media(&media, &source), Some(&guard(&media, &issuer)), None, at(40))
        .await
        .expect("put");
    let before = object(meta, &media.bucket, &media.object_key).await;
    let media_before = meta.get_media(&media.id).await.expect("get media");
    expect_refused(meta.delete_object(&media.bucket, &media.object_key, at(50)).await, "a Normal source");
    assert_eq!(object(meta, &media.bucket, &media.object_key).await, before, "the refusal changes nothing");
    assert_eq!(meta.get_media(&media.id).await.expect("get media"), media_before);
    assert_live(meta, vec![source.id.clone()], "a Normal media's source").await;
}

/// Deleting media releases its object, every object under its prefix (not beside it), and the parts of
/// its open uploads, at the deletion's instant.
pub async fn delete_media_releases_objects_and_parts(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 48).await;
    let playlist = NewMedia { object_prefix: Some("sv/48/2/".into()), ..video(48, 2) };
    let other = video(48, 3);
    for media in [&playlist, &other] {
        meta.create_media(media).await.expect("create a video");
    }
    let bucket = playlist.bucket.clone();
    let (segment, deep, beside, other_source) = (blob(1, 10), blob(2, 10), blob(3, 10), blob(4, 10));
    meta.put_object(&put(&bucket, "sv/48/2/seg-0.ts", &segment), None, None, at(10)).await.expect("put");
    meta.put_object(&put(&bucket, "sv/48/2/a/b.ts", &deep), None, None, at(10)).await.expect("put");
    meta.put_object(&put(&bucket, "sv/48/2", &beside), None, None, at(10)).await.expect("put");
    meta.put_object(&put_media(&other, &other_source), Some(&guard(&other, &issuer)), None, at(10))
        .await
        .expect("put");
    let manifest = blob(5, 10);
    meta.put_object(&put_media(&playlist, &manifest), Some(&guard(&playlist, &issuer)), None, at(20))
        .await
        .expect("publish the playlist");
    let upload = NewUpload { key: "sv/48/2/seg-1.ts".into(), ..upload_for(&playlist, 48, 1) };
    meta.create_upload(&upload, None).await.expect("create an upload");
    let part = blob(6, 10);
    record_part(meta, &upload, 1, &part, 30).await;

    let deleted = meta.delete_media(std::slice::from_ref(&playlist.id), at(100)).await.expect("delete media");
    assert_eq!(deleted.deleted, vec![playlist.id.clone()]);
    for gone in [&playlist.object_key, "sv/48/2/seg-0.ts", "sv/48/2/a/b.ts"] {
        assert_eq!(object(meta, &bucket, gone).await, None, "{gone} went with its media");
    }
    released_at(meta, ids(&[&manifest, &segment, &deep, &part]), 100, "a deleted media's blobs").await;
    assert!(object(meta, &bucket, "sv/48/2").await.is_some(), "a key beside the prefix stays");
    assert!(object(meta, &other.bucket, &other.object_key).await.is_some(), "other media stay");
    assert_live(meta, ids(&[&beside, &other_source]), "unrelated objects").await;
}

fn event_for(media: &Media) -> Option<NewEvent> {
    Some(NewEvent {
        id: format!(
            "E{}{:x}",
            media.new.id,
            media.modified_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
        ),
        media_id: media.new.id.clone(),
        event_type: "FileUploadComplete".into(),
        payload: format!("{{\"VideoId\":\"{}\",\"Size\":{}}}", media.new.id, media.size.unwrap_or(0)),
        callback_url: None,
        created_at: media.modified_at,
    })
}

/// A commit that writes a live media item's key publishes it: `Normal`, the object's figures, its event,
/// in the commit; a key under its prefix (an m3u8 segment) changes no media and queues nothing. An
/// overwrite of a `Normal` source publishes the new figures with a new event.
pub async fn commits_publish_the_media_key_only(meta: &dyn MetaStore) {
    let issuer = active_key(meta, 49).await;
    let playlist = NewMedia { object_prefix: Some("sv/49/1/".into()), ..video(49, 1) };
    let multipart = video(49, 2);
    for media in [&playlist, &multipart] {
        meta.create_media(media).await.expect("create a video");
    }
    let ours = |events: Vec<crate::meta::OutboxEvent>| -> Vec<crate::meta::OutboxEvent> {
        events.into_iter().filter(|e| e.media_id.starts_with(&playlist.id[..8])).collect()
    };
    let segment = put(&playlist.bucket, "sv/49/1/seg-0.ts", &blob(1, 10));
    let done = meta
        .put_object(&segment, Some(&guard(&playlist, &issuer)), Some(Arc::new(event_for)), at(10))
        .await
        .expect("put a segment");
    assert_eq!(done.media, None, "a segment publishes no media");
    assert_eq!(meta.get_media(&playlist.id).await.expect("get media"), Some(fresh(&playlist)));
    assert!(
        ours(meta.claim_due_events(at(FAR), at(FAR), 1000).await.expect("claim due events")).is_empty(),
        "and queues nothing"
    );

    let manifest = blob(0x82, 1_u64 << 63);
    let done = meta
        .put_object(
            &put_media(&playlist, &manifest),
            Some(&guard(&playlist, &issuer)),
            Some(Arc::new(event_for)),
            at(20),
        )
        .await
        .expect("put the playlist");
    let published = Media {
        status: MediaStatus::Normal,
        size: Some(1_u64 << 63),
        etag: Some(manifest.digests.etag()),
        crc64: Some(manifest.digests.crc64),
        modified_at: at(20),
        completed_at: Some(at(20)),
        ..fresh(&playlist)
    };
    assert_eq!(done.media, Some(published.clone()));
    assert_eq!(meta.get_media(&playlist.id).await.expect("get media"), Some(published.clone()));

    let upload = upload_for(&multipart, 49, 1);
    meta.create_upload(&upload, None).await.expect("create an upload");
    let part = blob(2, 10);
    record_part(meta, &upload, 1, &part, 25).await;
    let outcome = meta
        .complete_upload(
            &complete(&upload, None, 1),
            Some(&guard(&multipart, &issuer)),
            Some(Arc::new(event_for)),
            at(30),
        )
        .await
        .expect("complete");
    let CompleteOutcome::Completed(committed) = outcome else {
        panic!("expected Completed, got {outcome:?}")
    };
    let media = committed.media.expect("the Complete publishes its media");
    assert_eq!(
        (media.status, media.size, media.etag.as_deref(), media.crc64, media.completed_at),
        (MediaStatus::Normal, Some(10), Some(committed.etag.as_str()), Some(committed.crc64), Some(at(30)))
    );

    let replacement = blob(3, 30);
    let overwrite = WriteGuard { overwrite: true, ..guard(&playlist, &issuer) };
    let done = meta
        .put_object(&put_media(&playlist, &replacement), Some(&overwrite), Some(Arc::new(event_for)), at(40))
        .await
        .expect("overwrite the source");
    let overwritten = done.media.expect("an overwrite publishes its media again");
    assert_eq!((overwritten.size, overwritten.etag), (Some(30), Some(replacement.digests.etag())));

    let events = ours(meta.claim_due_events(at(FAR), at(FAR), 1000).await.expect("claim due events"));
    let mut seen: Vec<(String, SystemTime)> =
        events.iter().map(|e| (e.media_id.clone(), e.created_at)).collect();
    seen.sort();
    let mut expected =
        vec![(playlist.id.clone(), at(20)), (multipart.id.clone(), at(30)), (playlist.id.clone(), at(40))];
    expected.sort();
    assert_eq!(seen, expected, "one event per publishing commit: {events:?}");
}

/// The collector's claim of released blobs respects its cutoff and limit, oldest release first, and never
/// returns a live blob.
pub async fn claim_garbage_respects_cutoff_and_limit(meta: &dyn MetaStore) {
    let bucket = bucket(50);
    let base = 50_000_000;
    let live: Vec<NewBlob> = (1..=4).map(|n| blob(n, 10)).collect();
    let old: Vec<NewBlob> = (11..=13).map(|n| blob(n, 10)).collect();
    let older = blob(20, 10);
    meta.put_object(&put(&bucket, "first", &older), None, None, at(base)).await.expect("put");
    meta.put_object(&put(&bucket, "first", &live[0]), None, None, at(base + 5)).await.expect("replace");
    for (n, blob) in old.iter().enumerate() {
        meta.put_object(&put(&bucket, &format!("k{n}"), blob), None, None, at(base)).await.expect("put");
    }
    // Everything released before this check's releases is claimed now, so the limit below counts ours.
    let before = meta.claim_garbage(at(base + 5), u32::MAX, at(base + 5)).await.expect("claim garbage");
    assert!(!before.contains(&older.id), "released at the cutoff is not before it");
    for (n, blob) in live[1..].iter().enumerate() {
        meta.put_object(&put(&bucket, &format!("k{n}"), blob), None, None, at(base + 10))
            .await
            .expect("replace");
    }
    let mut claimed = Vec::new();
    for (limit, expected) in [(1, 1), (2, 2), (5, 1), (5, 0)] {
        let batch = meta.claim_garbage(at(base + 11), limit, at(base + 20)).await.expect("claim garbage");
        assert_eq!(batch.len(), expected, "a claim of at most {limit}: {batch:?}");
        if claimed.is_empty() {
            assert_eq!(batch, vec![older.id.clone()], "the oldest release comes first");
        }
        claimed.extend(batch);
    }
    let mut wanted = ids(&old.iter().collect::<Vec<_>>());
    wanted.push(older.id.clone());
    assert_eq!(sorted(claimed.clone()), sorted(wanted), "every released blob once, and nothing else");
    assert_eq!(
        meta.claim_garbage(at(FAR), u32::MAX, at(FAR))
            .await
            .expect("claim")
            .iter()
            .filter(|id| claimed.contains(id))
            .count(),
        0,
        "a claimed blob is not claimed twice"
    );
    assert_live(meta, ids(&live.iter().collect::<Vec<_>>()), "current versions").await;
}

/// Orphans: an id the catalogue never recorded is tombstoned and returned, so a later commit naming it
/// fails and changes nothing; a collected id is returned again; live and released ids are not. Forgetting
/// tombstones makes the id unknown again.
pub async fn claim_orphans_tombstones_unknown_blobs(meta: &dyn MetaStore) {
    let bucket = bucket(51);
    let (kept, released, replacement) = (blob(1, 10), blob(2, 10), blob(3, 10));
    meta.put_object(&put(&bucket, "kept", &kept), None, None, at(10)).await.expect("put");
    meta.put_object(&put(&bucket, "replaced", &released), None, None, at(10)).await.expect("put");
    meta.put_object(&put(&bucket, "replaced", &replacement), None, None, at(20)).await.expect("replace");
    let (orphan, second) = (blob(4, 10), blob(5, 10));
    let asked = vec![orphan.id.clone(), kept.id.clone(), released.id.clone(), second.id.clone()];
    let claimed = meta.claim_orphans(&asked, at(30)).await.expect("claim orphans");
    assert_eq!(sorted(claimed), sorted(vec![orphan.id.clone(), second.id.clone()]), "unknown ids only");
    let again = meta.claim_orphans(&asked, at(31)).await.expect("claim orphans again");
    assert_eq!(sorted(again), sorted(vec![orphan.id.clone(), second.id.clone()]), "collected ids come back");

    let before = object(meta, &bucket, "kept").await;
    let late = meta.put_object(&put(&bucket, "kept", &orphan), None, None, at(40)).await;
    assert!(late.is_err(), "a commit naming a claimed blob fails: {late:?}");
    assert_eq!(object(meta, &bucket, "kept").await, before, "and changes nothing");
    let upload = free_upload(51, 1, "up");
    meta.create_upload(&upload, None).await.expect("create an upload");
    let late = meta.put_part(&upload.upload_id, &bucket, "up", 1, &second, at(40)).await;
    assert!(late.is_err(), "a part naming a claimed blob fails: {late:?}");
    assert_eq!(parts(meta, &upload).await, vec![], "and records nothing");
    assert_eq!(object(meta, &bucket, "new").await, None);

    // Garbage claimed by the collector but still in storage (a crash between claim and delete) is found
    // by the walk and returned again.
    let garbage = meta.claim_garbage(at(21), u32::MAX, at(50)).await.expect("claim garbage");
    assert!(garbage.contains(&released.id), "{garbage:?}");
    let found = meta.claim_orphans(std::slice::from_ref(&released.id), at(60)).await.expect("claim orphans");
    assert_eq!(found, vec![released.id.clone()], "a collected blob still in storage is returned again");

    // Tombstones marked at 30 (a second claim does not move the mark) outlive a forget at that
    // instant, and go with a later one.
    meta.forget_collected(at(30)).await.expect("forget collected");
    let still = meta.put_object(&put(&bucket, "new", &orphan), None, None, at(70)).await;
    assert!(still.is_err(), "a tombstone marked at the cutoff is kept: {still:?}");
    assert!(meta.forget_collected(at(31)).await.expect("forget collected") >= 2, "both tombstones go");
    meta.put_object(&put(&bucket, "new", &orphan), None, None, at(80)).await.expect("an unknown id again");
    assert_live(meta, ids(&[&kept, &replacement, &orphan]), "committed blobs").await;
}

/// Importing the legacy layout records its objects and the parts of uploads the catalogue holds open,
/// leaves keys already named and parts of closed or unknown uploads alone, and a second run skips all.
pub async fn import_legacy_is_idempotent(meta: &dyn MetaStore) {
    let bucket = bucket(52);
    let (open, closed) = (free_upload(52, 1, "open.bin"), free_upload(52, 2, "closed.bin"));
    for upload in [&open, &closed] {
        meta.create_upload(upload, None).await.expect("create an upload");
    }
    meta.abort_upload(&closed.upload_id, at(5)).await.expect("abort");
    let present = blob(1, 10);
    meta.put_object(&put(&bucket, "present", &present), None, None, at(5)).await.expect("put");
    let present_object = object(meta, &bucket, "present").await;

    let version = |key: &str, size: u64, object_type: ObjectType| ObjectVersion {
        bucket: "ignored: the bucket argument wins".into(),
        key: key.into(),
        version_id: new_blob_id(),
        size,
        etag: "\"0123456789ABCDEF0123456789ABCDEF-2\"".into(),
        crc64: u64::MAX,
        content_md5: None,
        object_type,
        meta: ObjectMeta {
            content_type: Some("video/mp4".into()),
            user_meta: vec![("k".into(), "v".into())],
        },
        last_modified: at(3),
        upload_id: None,
    };
    let piece = |size: u64| Piece { blob_id: new_blob_id(), size };
    let assembled = (version("legacy/assembled.mp4", 30, ObjectType::Multipart), vec![piece(10), piece(20)]);
    let single = (version("legacy/single.mp4", 1_u64 << 63, ObjectType::Normal), vec![piece(1_u64 << 63)]);
    let shadowed = (version("present", 5, ObjectType::Normal), vec![piece(5)]);
    let stored = |number: u32, seed: u8| StoredPart {
        part_number: number,
        blob_id: new_blob_id(),
        digests: digests(seed, 100),
        uploaded_at: at(u64::from(number)),
    };
    let open_parts = vec![stored(1, 1), stored(2, 2)];
    let import = LegacyImport {
        objects: vec![assembled.clone(), single.clone(), shadowed.clone()],
        parts: vec![
            (open.upload_id.clone(), open_parts.clone()),
            (closed.upload_id.clone(), vec![stored(1, 3)]),
            (upload_id(52, 99), vec![stored(1, 4)]),
        ],
    };
    let first = meta.import_legacy(&bucket, &import, at(10)).await.expect("import");
    assert_eq!(first, ImportCounts { objects: 2, parts: 2, skipped: 3 });
    for (version, pieces) in [&assembled, &single] {
        let expected = ObjectVersion { bucket: bucket.clone(), ..version.clone() };
        assert_eq!(
            object(meta, &bucket, &version.key).await,
            Some((expected, pieces.clone())),
            "{}",
            version.key
        );
    }
    assert_eq!(object(meta, &bucket, "present").await, present_object, "a named key is not overwritten");
    assert_eq!(parts(meta, &open).await, open_parts, "an open upload takes its parts");
    expect_not_found(meta.list_parts(&closed.upload_id, &bucket, &closed.key).await, "a closed upload");

    let second = meta.import_legacy(&bucket, &import, at(20)).await.expect("import again");
    assert_eq!(second, ImportCounts { objects: 0, parts: 0, skipped: 7 }, "a second run skips everything");
    assert_eq!(parts(meta, &open).await, open_parts);
    let mut imported: Vec<String> =
        [&assembled, &single].iter().flat_map(|(_, p)| p.iter().map(|p| p.blob_id.clone())).collect();
    imported.extend(open_parts.iter().map(|p| p.blob_id.clone()));
    assert_live(meta, imported, "imported blobs").await;
    let skipped = [&shadowed.1[0].blob_id, &import.parts[1].1[0].blob_id, &import.parts[2].1[0].blob_id];
    for id in skipped {
        assert_unrecorded(meta, id, "a skipped import").await;
    }
}
