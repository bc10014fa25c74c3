//! The behaviour every [`BlobStore`] must have, as `pub async fn`s that take the store under test (the
//! object_store `integration.rs` / Garage `db/test.rs` pattern). Each backend's test module calls every
//! function on a fresh store, one test each, plus [`run_all`]; testkit can run them against a throwaway
//! S3-compatible server.
//!
//! Keys and upload ids are random per call, so the checks also hold on a shared bucket. The checks pin
//! down what the data plane relies on: digests computed while writing, nothing visible until a write is
//! whole and verified, Complete assembling exactly the listed parts, exact ranges, and reads that survive
//! a concurrent overwrite. They panic with what differed. Backend specifics (paths, crash leftovers,
//! memory) are tested by each backend.
#![cfg(any(test, feature = "testing"))]

use std::io;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{
    BlobStore, ByteStream, Digests, ObjectInfo, ObjectMeta, ObjectType, PartInfo, StorageError, WriteLimits,
};
use vodup_proto::crc64;
use vodup_proto::oss::part::multipart_etag;

/// Runs every check, in order, on one store.
pub async fn run_all(store: &dyn BlobStore) {
    health_check_passes(store).await;
    put_head_get_round_trip(store).await;
    hello_world_has_the_oss_digests(store).await;
    overwrite_replaces_the_whole_object(store).await;
    content_md5_mismatch_keeps_nothing(store).await;
    oversized_body_keeps_nothing(store).await;
    short_body_is_incomplete_and_keeps_nothing(store).await;
    failed_body_keeps_nothing(store).await;
    parts_upload_out_of_order_and_replace(store).await;
    part_writes_check_their_limits(store).await;
    part_numbers_out_of_range_are_refused(store).await;
    complete_publishes_the_listed_parts_in_order(store).await;
    complete_with_a_missing_part_leaves_the_upload_open(store).await;
    abort_removes_parts_and_closes_the_upload(store).await;
    unknown_uploads_are_not_found(store).await;
    ranges_of_every_form(store).await;
    invalid_ranges_are_rejected(store).await;
    empty_objects(store).await;
    delete_is_idempotent(store).await;
    awkward_keys_are_distinct(store).await;
    missing_objects_are_not_found(store).await;
    large_parts_and_objects_stream_back_exactly(store).await;
    reads_in_progress_survive_overwrite_and_delete(store).await;
    concurrent_writes_leave_one_whole_object(store).await;
}

/// A fresh store is usable.
pub async fn health_check_passes(store: &dyn BlobStore) {
    store.health_check().await.expect("health check of a fresh store");
}

/// PutObject returns what HEAD and GET then report, with the digests of the bytes and the meta given.
pub async fn put_head_get_round_trip(store: &dyn BlobStore) {
    let key = unique_key("round-trip.bin");
    let data = pattern(300_001, 1);
    let meta = ObjectMeta {
        content_type: Some("video/mp4".into()),
        user_meta: vec![("a".into(), "1".into()), ("title".into(), "中文 title".into())],
    };
    let before = SystemTime::now() - Duration::from_secs(2);
    let put = store.put_object(&key, chunked(&data, 4096), &limits(), meta.clone()).await.expect("put");
    let after = SystemTime::now() + Duration::from_secs(2);
    let digests = Digests::of(&data);
    assert_eq!(put.key, key);
    assert_eq!(put.size, data.len() as u64);
    assert_eq!(put.etag, digests.etag());
    assert_eq!(put.crc64, crc64::checksum(&data));
    assert_eq!(put.content_md5, Some(digests.md5));
    assert_eq!(put.object_type, ObjectType::Normal);
    assert_eq!(put.meta, meta);
    assert!(before <= put.last_modified && put.last_modified <= after, "last_modified is not now");
    assert_eq!(store.head_object(&key).await.expect("head"), put);
    let (info, bytes) = get(store, &key, None).await;
    assert_eq!(info, put);
    assert_same(&bytes, &data, "GET of the whole object");
}

/// The ETag and CRC-64 of a known body are the ones OSS reports.
pub async fn hello_world_has_the_oss_digests(store: &dyn BlobStore) {
    let key = unique_key("hello.txt");
    let info = put(store, &key, b"hello world").await;
    assert_eq!(info.etag, "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
    assert_eq!(info.crc64, 5_981_764_153_023_615_706);
    assert_eq!(info.size, 11);
}

/// A second write to a key replaces the first entirely, including its type and meta, whatever the sizes.
pub async fn overwrite_replaces_the_whole_object(store: &dyn BlobStore) {
    let key = unique_key("overwritten");
    let long = pattern(200_000, 2);
    put(store, &key, &long).await;
    let short = pattern(10, 3);
    let meta = ObjectMeta { content_type: Some("text/plain".into()), user_meta: vec![] };
    let info = store.put_object(&key, chunked(&short, 3), &limits(), meta).await.expect("overwrite");
    assert_eq!(store.head_object(&key).await.expect("head"), info);
    assert_same(&get(store, &key, None).await.1, &short, "overwritten object");

    let id = upload_id();
    store.create_upload(&id).await.expect("create upload");
    let part = pattern(5000, 4);
    put_part(store, &id, 1, &part).await;
    let info = store.complete_upload(&id, &key, &[1], ObjectMeta::default()).await.expect("complete");
    assert_eq!(info.object_type, ObjectType::Multipart);
    assert_eq!(store.head_object(&key).await.expect("head"), info);
    assert_same(&get(store, &key, None).await.1, &part, "object replaced by a multipart upload");

    let info = put(store, &key, b"normal again").await;
    assert_eq!(info.object_type, ObjectType::Normal);
    assert_same(&get(store, &key, None).await.1, b"normal again", "multipart object replaced by a put");
}

/// A body whose MD5 differs from Content-MD5 is not kept, and an earlier object stays as it was.
pub async fn content_md5_mismatch_keeps_nothing(store: &dyn BlobStore) {
    let key = unique_key("md5");
    let wrong = WriteLimits { expected_md5: Some(Digests::of(b"other").md5), ..limits() };
    let err =
        failure(store.put_object(&key, chunked(b"body", 2), &wrong, ObjectMeta::default()).await, "bad MD5");
    assert!(matches!(err, StorageError::DigestMismatch), "{err}");
    assert_not_found(store, &key).await;

    let old = put(store, &key, b"old body").await;
    let err =
        failure(store.put_object(&key, chunked(b"new", 2), &wrong, ObjectMeta::default()).await, "bad MD5");
    assert!(matches!(err, StorageError::DigestMismatch), "{err}");
    assert_eq!(store.head_object(&key).await.expect("head"), old);
    assert_same(&get(store, &key, None).await.1, b"old body", "object after a rejected overwrite");

    let right = WriteLimits { expected_md5: Some(Digests::of(b"new").md5), ..limits() };
    store.put_object(&key, chunked(b"new", 2), &right, ObjectMeta::default()).await.expect("matching MD5");
    assert_same(&get(store, &key, None).await.1, b"new", "object after a verified overwrite");
}

/// `max_size` bytes are accepted, one more is not, and an endless body is cut off while streaming.
pub async fn oversized_body_keeps_nothing(store: &dyn BlobStore) {
    let key = unique_key("size");
    let ten = WriteLimits { max_size: 10, ..WriteLimits::default() };
    let err =
        failure(store.put_object(&key, chunked(&[7; 11], 4), &ten, ObjectMeta::default()).await, "11 > 10");
    assert!(matches!(err, StorageError::TooLarge { max_size: 10 }), "{err}");
    assert_not_found(store, &key).await;
    store
        .put_object(&key, chunked(&[7; 10], 4), &ten, ObjectMeta::default())
        .await
        .expect("exactly max_size");

    let endless: ByteStream =
        Box::pin(futures_util::stream::repeat_with(|| Ok(Bytes::from_static(&[1; 4096]))));
    let mib = WriteLimits { max_size: 1 << 20, ..WriteLimits::default() };
    let err = failure(store.put_object(&key, endless, &mib, ObjectMeta::default()).await, "endless body");
    assert!(matches!(err, StorageError::TooLarge { max_size: 1_048_576 }), "{err}");
    assert_same(&get(store, &key, None).await.1, &[7; 10], "object after an oversized overwrite");
}

/// A body that ends before its announced length is not kept; one that runs past it is cut off.
pub async fn short_body_is_incomplete_and_keeps_nothing(store: &dyn BlobStore) {
    let key = unique_key("short");
    let twenty = WriteLimits { expected_len: Some(20), ..limits() };
    let err =
        failure(store.put_object(&key, chunked(&[1; 15], 4), &twenty, ObjectMeta::default()).await, "short");
    assert!(matches!(err, StorageError::Incomplete { received: 15, expected: 20 }), "{err}");
    assert_not_found(store, &key).await;

    put(store, &key, b"kept").await;
    let err =
        failure(store.put_object(&key, chunked(&[1; 15], 4), &twenty, ObjectMeta::default()).await, "short");
    assert!(matches!(err, StorageError::Incomplete { .. }), "{err}");
    let err =
        failure(store.put_object(&key, chunked(&[1; 21], 4), &twenty, ObjectMeta::default()).await, "long");
    assert!(matches!(err, StorageError::TooLarge { max_size: 20 }), "{err}");
    assert_same(&get(store, &key, None).await.1, b"kept", "object after rejected overwrites");
    store.put_object(&key, chunked(&[1; 20], 4), &twenty, ObjectMeta::default()).await.expect("exact length");
}

/// A body stream that fails (the client went away) leaves nothing, and an earlier object as it was.
pub async fn failed_body_keeps_nothing(store: &dyn BlobStore) {
    let key = unique_key("broken");
    let err = failure(
        store.put_object(&key, broken(&pattern(100_000, 5)), &limits(), ObjectMeta::default()).await,
        "broken",
    );
    assert!(matches!(err, StorageError::Body(_)), "{err}");
    assert_not_found(store, &key).await;
    put(store, &key, b"intact").await;
    let err =
        failure(store.put_object(&key, broken(b"partial"), &limits(), ObjectMeta::default()).await, "broken");
    assert!(matches!(err, StorageError::Body(_)), "{err}");
    assert_same(&get(store, &key, None).await.1, b"intact", "object after a broken overwrite");
}

/// Parts may arrive in any order; a part number uploaded again replaces the earlier part; the listing is
/// ascending and carries each part's digests.
pub async fn parts_upload_out_of_order_and_replace(store: &dyn BlobStore) {
    let id = upload_id();
    store.create_upload(&id).await.expect("create upload");
    assert!(store.list_parts(&id).await.expect("list a fresh upload").is_empty());
    let bodies = [(3, pattern(3000, 6)), (1, pattern(1000, 7)), (2, pattern(2000, 8))];
    for (n, body) in &bodies {
        let info = put_part(store, &id, *n, body).await;
        assert_eq!(info.part_number, *n);
        assert_eq!(info.digests, Digests::of(body));
    }
    let listed = store.list_parts(&id).await.expect("list parts");
    let numbers: Vec<u32> = listed.iter().map(|p| p.part_number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    for part in &listed {
        let body = &bodies.iter().find(|(n, _)| *n == part.part_number).expect("a stored part").1;
        assert_eq!(part.digests, Digests::of(body), "digests of listed part {}", part.part_number);
        let age = SystemTime::now().duration_since(part.last_modified).unwrap_or_default();
        assert!(age < Duration::from_secs(3600), "part {} last_modified is not recent", part.part_number);
    }
    let replacement = pattern(777, 9);
    put_part(store, &id, 2, &replacement).await;
    let listed = store.list_parts(&id).await.expect("list parts after a replace");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1].digests, Digests::of(&replacement));
    store.abort_upload(&id).await.expect("abort");
}

/// The limits of a part write are those of an object write, and a rejected part keeps the earlier one.
pub async fn part_writes_check_their_limits(store: &dyn BlobStore) {
    let id = upload_id();
    store.create_upload(&id).await.expect("create upload");
    let first = put_part(store, &id, 1, b"first version").await;
    let wrong = WriteLimits { expected_md5: Some([0; 16]), ..limits() };
    let err = failure(store.put_part(&id, 1, chunked(b"second", 2), &wrong).await, "bad MD5");
    assert!(matches!(err, StorageError::DigestMismatch), "{err}");
    let small = WriteLimits { max_size: 3, ..WriteLimits::default() };
    let err = failure(store.put_part(&id, 1, chunked(b"second", 2), &small).await, "too large");
    assert!(matches!(err, StorageError::TooLarge { max_size: 3 }), "{err}");
    let long = WriteLimits { expected_len: Some(100), ..limits() };
    let err = failure(store.put_part(&id, 1, chunked(b"second", 2), &long).await, "short");
    assert!(matches!(err, StorageError::Incomplete { received: 6, expected: 100 }), "{err}");
    let err = failure(store.put_part(&id, 1, broken(b"second"), &limits()).await, "broken");
    assert!(matches!(err, StorageError::Body(_)), "{err}");
    let failed_new = failure(store.put_part(&id, 2, broken(b"x"), &limits()).await, "broken");
    assert!(matches!(failed_new, StorageError::Body(_)), "{failed_new}");
    let listed = store.list_parts(&id).await.expect("list parts");
    assert_eq!(listed.len(), 1, "only part 1 is stored");
    assert_eq!(listed[0].digests, first.digests);
    store.abort_upload(&id).await.expect("abort");
}

/// Part numbers are 1 to 10000.
pub async fn part_numbers_out_of_range_are_refused(store: &dyn BlobStore) {
    let id = upload_id();
    store.create_upload(&id).await.expect("create upload");
    for n in [0, 10_001, u32::MAX] {
        failure(store.put_part(&id, n, chunked(b"x", 1), &limits()).await, &format!("part {n}"));
    }
    put_part(store, &id, 10_000, b"last").await;
    let listed = store.list_parts(&id).await.expect("list parts");
    assert_eq!(listed.iter().map(|p| p.part_number).collect::<Vec<_>>(), [10_000]);
    store.abort_upload(&id).await.expect("abort");
}

/// Complete publishes exactly the listed parts, in that order: bytes, CRC-64 combined from the parts,
/// the multipart ETag, type and meta. Unlisted parts are gone and the upload is closed.
pub async fn complete_publishes_the_listed_parts_in_order(store: &dyn BlobStore) {
    let (id, key) = (upload_id(), unique_key("assembled.mp4"));
    store.create_upload(&id).await.expect("create upload");
    let bodies: Vec<Vec<u8>> = (1..=5).map(|n| pattern(1000 * n + 17, n as u64 + 10)).collect();
    for n in [5, 2, 4, 1, 3] {
        put_part(store, &id, n, &bodies[n as usize - 1]).await;
    }
    let parts = store.list_parts(&id).await.expect("list parts");
    let listed = [1u32, 3, 4];
    let meta =
        ObjectMeta { content_type: Some("video/mp4".into()), user_meta: vec![("k".into(), "v".into())] };
    let info = store.complete_upload(&id, &key, &listed, meta.clone()).await.expect("complete");

    let want: Vec<u8> = listed.iter().flat_map(|&n| bodies[n as usize - 1].iter().copied()).collect();
    let chosen: Vec<&PartInfo> = listed.iter().map(|&n| &parts[n as usize - 1]).collect();
    let crc = chosen.iter().fold(0, |crc, p| crc64::combine(crc, p.digests.crc64, p.digests.len));
    assert_eq!(info.key, key);
    assert_eq!(info.size, want.len() as u64);
    assert_eq!(info.crc64, crc);
    assert_eq!(info.crc64, crc64::checksum(&want));
    assert_eq!(info.etag, multipart_etag(chosen.iter().map(|p| &p.digests.md5)));
    assert!(info.etag.ends_with("-3\""), "{}", info.etag);
    assert_eq!(info.object_type, ObjectType::Multipart);
    assert_eq!(info.content_md5, None);
    assert_eq!(info.meta, meta);
    assert_eq!(store.head_object(&key).await.expect("head"), info);
    let (got_info, bytes) = get(store, &key, None).await;
    assert_eq!(got_info, info);
    assert_same(&bytes, &want, "completed object");

    assert_upload_closed(store, &id).await;
    let again =
        failure(store.complete_upload(&id, &key, &listed, ObjectMeta::default()).await, "complete twice");
    assert!(again.is_not_found(), "{again}");
    assert_same(&get(store, &key, None).await.1, &want, "object after a repeated complete");
}

/// A Complete naming a part that was never stored fails with NotFound and changes nothing.
pub async fn complete_with_a_missing_part_leaves_the_upload_open(store: &dyn BlobStore) {
    let (id, key) = (upload_id(), unique_key("incomplete"));
    store.create_upload(&id).await.expect("create upload");
    put_part(store, &id, 1, b"one").await;
    let err = failure(store.complete_upload(&id, &key, &[1, 2], ObjectMeta::default()).await, "missing part");
    assert!(err.is_not_found(), "{err}");
    assert_not_found(store, &key).await;
    assert_eq!(store.list_parts(&id).await.expect("list after a failed complete").len(), 1);
    put_part(store, &id, 2, b"two").await;
    store.complete_upload(&id, &key, &[1, 2], ObjectMeta::default()).await.expect("complete");
    assert_same(&get(store, &key, None).await.1, b"onetwo", "completed object");
}

/// Abort removes the parts and closes the upload; nothing is published.
pub async fn abort_removes_parts_and_closes_the_upload(store: &dyn BlobStore) {
    let id = upload_id();
    store.create_upload(&id).await.expect("create upload");
    put_part(store, &id, 1, &pattern(10_000, 12)).await;
    put_part(store, &id, 2, b"tail").await;
    store.abort_upload(&id).await.expect("abort");
    assert_upload_closed(store, &id).await;
    let err = failure(
        store.complete_upload(&id, &unique_key("aborted"), &[1], ObjectMeta::default()).await,
        "complete",
    );
    assert!(err.is_not_found(), "{err}");
}

/// Upload ids never created, or not of the `[0-9A-F]` form, name no upload.
pub async fn unknown_uploads_are_not_found(store: &dyn BlobStore) {
    for id in [upload_id(), String::new(), "abc".into(), "../AB".into(), "A/B".into(), "A".repeat(65)] {
        assert_upload_closed(store, &id).await;
        let err = failure(
            store.complete_upload(&id, &unique_key("never"), &[1], ObjectMeta::default()).await,
            "complete",
        );
        assert!(err.is_not_found(), "complete of upload {id:?}: {err}");
    }
}

/// Every range of a small multipart object (parts of 7, 1, 0 and 12 bytes) reads exactly those bytes,
/// across part boundaries, single bytes and the whole object; so does every range of a normal object.
pub async fn ranges_of_every_form(store: &dyn BlobStore) {
    let (id, key) = (upload_id(), unique_key("ranges"));
    store.create_upload(&id).await.expect("create upload");
    let bodies = [pattern(7, 13), pattern(1, 14), Vec::new(), pattern(12, 15)];
    for (n, body) in (1..).zip(&bodies) {
        put_part(store, &id, n, body).await;
    }
    store.complete_upload(&id, &key, &[1, 2, 3, 4], ObjectMeta::default()).await.expect("complete");
    let whole = bodies.concat();
    assert_same(&get(store, &key, None).await.1, &whole, "whole multipart object");
    check_every_range(store, &key, &whole).await;

    let normal = unique_key("ranges-normal");
    let data = pattern(9, 16);
    put(store, &normal, &data).await;
    check_every_range(store, &normal, &data).await;
}

/// Ranges that are empty, reversed or past the end are InvalidRange; a missing object is NotFound first.
pub async fn invalid_ranges_are_rejected(store: &dyn BlobStore) {
    let key = unique_key("ten");
    put(store, &key, &[5; 10]).await;
    // `Range { .. }` spells the reversed range clippy would flag as a literal.
    let reversed = Range { start: 6, end: 5 };
    for range in [0..0, 5..5, 10..10, reversed, 0..11, 10..11, 11..12, 3..u64::MAX] {
        let err = failure(store.get_object(&key, Some(range.clone())).await, &format!("range {range:?}"));
        let (start, end) = (range.start, range.end);
        assert!(
            matches!(err, StorageError::InvalidRange { start: s, end: e, size: 10 } if s == start && e == end),
            "range {range:?}: {err}"
        );
    }
    let err = failure(store.get_object(&unique_key("absent"), Some(0..1)).await, "range of a missing object");
    assert!(err.is_not_found(), "{err}");
}

/// An empty object has the empty digests, reads as no bytes, and has no valid range.
pub async fn empty_objects(store: &dyn BlobStore) {
    let key = unique_key("empty");
    let info = put(store, &key, b"").await;
    assert_eq!(info.size, 0);
    assert_eq!(info.etag, "\"D41D8CD98F00B204E9800998ECF8427E\"");
    assert_eq!(info.crc64, 0);
    assert!(get(store, &key, None).await.1.is_empty());
    for range in [0..0, 0..1] {
        let err = failure(store.get_object(&key, Some(range)).await, "range of an empty object");
        assert!(matches!(err, StorageError::InvalidRange { size: 0, .. }), "{err}");
    }
    let (id, multipart) = (upload_id(), unique_key("empty-multipart"));
    store.create_upload(&id).await.expect("create upload");
    let part = put_part(store, &id, 1, b"").await;
    assert_eq!(part.digests.len, 0);
    let info = store.complete_upload(&id, &multipart, &[1], ObjectMeta::default()).await.expect("complete");
    assert_eq!((info.size, info.crc64), (0, 0));
    assert!(get(store, &multipart, None).await.1.is_empty());
}

/// Deleting removes the object; deleting a missing object succeeds; a key can be written again.
pub async fn delete_is_idempotent(store: &dyn BlobStore) {
    let key = unique_key("deleted");
    store.delete_object(&key).await.expect("delete a missing object");
    put(store, &key, b"soon gone").await;
    store.delete_object(&key).await.expect("delete");
    assert_not_found(store, &key).await;
    store.delete_object(&key).await.expect("delete again");
    put(store, &key, b"back").await;
    assert_same(&get(store, &key, None).await.1, b"back", "object written after a delete");

    let (id, multipart) = (upload_id(), unique_key("deleted-multipart"));
    store.create_upload(&id).await.expect("create upload");
    put_part(store, &id, 1, b"part").await;
    store.complete_upload(&id, &multipart, &[1], ObjectMeta::default()).await.expect("complete");
    store.delete_object(&multipart).await.expect("delete a multipart object");
    assert_not_found(store, &multipart).await;
}

/// Keys are opaque: unicode, spaces, `%`, `+`, slashes, case, normalization forms and 1023-byte keys all
/// name distinct objects, and removing one leaves the others.
pub async fn awkward_keys_are_distinct(store: &dyn BlobStore) {
    let prefix = unique_key("");
    let mut keys: Vec<String> = [
        "视频/🎬 final cut.mp4",
        "with space",
        "with  two  spaces ",
        "100%",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "a+b",
        "a b",
        "a/b/c",
        "a/b",
        "a//b",
        "a/b/",
        "Key",
        "key",
        "caf\u{e9}",
        "cafe\u{301}",
        "tab\there",
        "new\nline",
        "quote\"'<&>",
        "back\\slash",
        ".hidden",
        "...",
    ]
    .iter()
    .map(|k| format!("{prefix}{k}"))
    .collect();
    let long = format!("{prefix}{}", "l".repeat(1023 - prefix.len()));
    assert_eq!(long.len(), 1023);
    keys.push(long);
    keys.push(format!("{}ü", &keys[keys.len() - 1][..1021]));
    for (i, key) in keys.iter().enumerate() {
        let info = put(store, key, format!("object {i}").as_bytes()).await;
        assert_eq!(&info.key, key);
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(store.head_object(key).await.expect("head").key, *key);
        assert_same(&get(store, key, None).await.1, format!("object {i}").as_bytes(), key);
    }
    store.delete_object(&keys[0]).await.expect("delete");
    assert_not_found(store, &keys[0]).await;
    for (i, key) in keys.iter().enumerate().skip(1) {
        assert_same(&get(store, key, None).await.1, format!("object {i}").as_bytes(), key);
    }
}

/// HEAD and GET of a key never written are NotFound.
pub async fn missing_objects_are_not_found(store: &dyn BlobStore) {
    let key = unique_key("never-written");
    assert_not_found(store, &key).await;
    let err = failure(store.get_object(&key, Some(0..1)).await, "ranged GET of a missing object");
    assert!(err.is_not_found(), "{err}");
}

/// Parts over 1 MiB and an object of several MiB, written in odd-sized chunks, read back byte-exact,
/// whole and across part boundaries.
pub async fn large_parts_and_objects_stream_back_exactly(store: &dyn BlobStore) {
    let (id, key) = (upload_id(), unique_key("large-multipart"));
    store.create_upload(&id).await.expect("create upload");
    let bodies = [pattern((3 << 19) + 3, 17), pattern(2 << 20, 18), pattern(1, 19)];
    for (n, body) in (1..).zip(&bodies) {
        let info = store.put_part(&id, n, chunked(body, 65_537), &limits()).await.expect("put a large part");
        assert_eq!(info.digests, Digests::of(body));
    }
    let info = store.complete_upload(&id, &key, &[1, 2, 3], ObjectMeta::default()).await.expect("complete");
    let whole = bodies.concat();
    assert_eq!(info.crc64, crc64::checksum(&whole));
    assert_same(&get(store, &key, None).await.1, &whole, "large multipart object");
    let boundary = bodies[0].len() as u64;
    for range in [boundary - 100_000..boundary + 100_000, 1..whole.len() as u64 - 1, boundary..boundary + 1] {
        let (start, end) = (range.start as usize, range.end as usize);
        assert_same(&get(store, &key, Some(range)).await.1, &whole[start..end], "range across parts");
    }

    let normal = unique_key("large-object");
    let data = pattern((5 << 20) + 17, 20);
    let info = store
        .put_object(&normal, chunked(&data, 64 << 10), &limits(), ObjectMeta::default())
        .await
        .expect("put");
    assert_eq!(info.crc64, crc64::checksum(&data));
    assert_same(&get(store, &normal, None).await.1, &data, "large object");
}

/// A GET that has started keeps reading the object it opened, whole, even if the object is overwritten
/// and then deleted before the body is consumed.
pub async fn reads_in_progress_survive_overwrite_and_delete(store: &dyn BlobStore) {
    let (id, key) = (upload_id(), unique_key("read-while-replaced"));
    store.create_upload(&id).await.expect("create upload");
    let bodies = [pattern(300_000, 21), pattern(300_000, 22), pattern(300_000, 23)];
    for (n, body) in (1..).zip(&bodies) {
        put_part(store, &id, n, body).await;
    }
    store.complete_upload(&id, &key, &[1, 2, 3], ObjectMeta::default()).await.expect("complete");
    let whole = bodies.concat();
    let (_, mut first) = store.get_object(&key, None).await.expect("open a GET");
    let (_, second) = store.get_object(&key, Some(250_000..900_000)).await.expect("open a ranged GET");
    let mut head = first.next().await.expect("a first chunk").expect("read a first chunk").to_vec();
    put(store, &key, b"replacement").await;
    store.delete_object(&key).await.expect("delete");
    assert_not_found(store, &key).await;
    head.extend(read(first).await);
    assert_same(&head, &whole, "GET begun before an overwrite and a delete");
    assert_same(&read(second).await, &whole[250_000..900_000], "ranged GET begun before a delete");
}

/// Concurrent writes to one key leave exactly one of them, whole.
pub async fn concurrent_writes_leave_one_whole_object(store: &dyn BlobStore) {
    let key = unique_key("contended");
    let bodies: Vec<Vec<u8>> = (0..4).map(|i| pattern(100_000 + i * 1000, 30 + i as u64)).collect();
    let limits = limits();
    let writes =
        bodies.iter().map(|body| store.put_object(&key, chunked(body, 8192), &limits, ObjectMeta::default()));
    for result in futures_util::future::join_all(writes).await {
        result.expect("a concurrent put");
    }
    let (info, bytes) = get(store, &key, None).await;
    let winner =
        bodies.iter().find(|b| **b == bytes).expect("the object is one of the bodies written, whole");
    assert_eq!(info.etag, Digests::of(winner).etag());
    assert_eq!(store.head_object(&key).await.expect("head"), info);
}

// ---- helpers ----

/// Limits that let any test body through.
fn limits() -> WriteLimits {
    WriteLimits { max_size: vodup_proto::oss::part::MAX_PART_SIZE, ..WriteLimits::default() }
}

/// A key unique to this call, so checks can share a bucket.
fn unique_key(name: &str) -> String {
    format!("conformance/{:016x}/{name}", rand::random::<u64>())
}

fn upload_id() -> String {
    format!("{:032X}", rand::random::<u128>())
}

/// Deterministic bytes that differ by `seed`, so misplaced parts or offsets show.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// `data` as a body of `chunk`-byte pieces.
fn chunked(data: &[u8], chunk: usize) -> ByteStream {
    let pieces: Vec<io::Result<Bytes>> =
        data.chunks(chunk.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures_util::stream::iter(pieces))
}

/// `data`, then the error a client disconnect gives.
fn broken(data: &[u8]) -> ByteStream {
    let pieces = vec![
        Ok(Bytes::copy_from_slice(data)),
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "client went away")),
    ];
    Box::pin(futures_util::stream::iter(pieces))
}

async fn put(store: &dyn BlobStore, key: &str, data: &[u8]) -> ObjectInfo {
    store
        .put_object(key, chunked(data, 1000), &limits(), ObjectMeta::default())
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {e}"))
}

async fn put_part(store: &dyn BlobStore, upload_id: &str, n: u32, data: &[u8]) -> PartInfo {
    store
        .put_part(upload_id, n, chunked(data, 1000), &limits())
        .await
        .unwrap_or_else(|e| panic!("put part {n} of upload {upload_id}: {e}"))
}

async fn get(store: &dyn BlobStore, key: &str, range: Option<Range<u64>>) -> (ObjectInfo, Vec<u8>) {
    let (info, body) = store
        .get_object(key, range.clone())
        .await
        .unwrap_or_else(|e| panic!("get {key:?} range {range:?}: {e}"));
    (info, read(body).await)
}

async fn read(mut body: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.expect("read the GET body"));
    }
    out
}

async fn check_every_range(store: &dyn BlobStore, key: &str, whole: &[u8]) {
    let size = whole.len() as u64;
    for start in 0..size {
        for end in start + 1..=size {
            let (info, bytes) = get(store, key, Some(start..end)).await;
            assert_eq!(info.size, size, "a ranged GET reports the object's size");
            assert_same(&bytes, &whole[start as usize..end as usize], &format!("{key} range {start}..{end}"));
        }
    }
}

/// The error of a call that must fail.
fn failure<T>(result: Result<T, StorageError>, what: &str) -> StorageError {
    match result {
        Ok(_) => panic!("{what}: expected an error, the call succeeded"),
        Err(e) => e,
    }
}

async fn assert_not_found(store: &dyn BlobStore, key: &str) {
    let err = failure(store.head_object(key).await, &format!("head {key:?}"));
    assert!(err.is_not_found(), "head {key:?}: {err}");
    let err = failure(store.get_object(key, None).await, &format!("get {key:?}"));
    assert!(err.is_not_found(), "get {key:?}: {err}");
}

async fn assert_upload_closed(store: &dyn BlobStore, id: &str) {
    let err = failure(store.put_part(id, 1, chunked(b"late", 2), &limits()).await, "put_part");
    assert!(err.is_not_found(), "put_part to upload {id:?}: {err}");
    let err = failure(store.list_parts(id).await, "list_parts");
    assert!(err.is_not_found(), "list_parts of upload {id:?}: {err}");
    let err = failure(store.abort_upload(id).await, "abort_upload");
    assert!(err.is_not_found(), "abort of upload {id:?}: {err}");
}

/// Byte equality without dumping megabytes on failure.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: got {} bytes, want {}; first difference at byte {at}", got.len(), want.len());
    }
}
