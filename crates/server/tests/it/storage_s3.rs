//! The S3 blob store on a real S3 implementation (SeaweedFS in CI, any store the `VODUP_TEST_S3_*`
//! variables name): every conformance check, each on its own prefix of the shared bucket, then what only
//! an object store can get wrong: a refused body longer than one chunk (a multipart upload) must leave no
//! object, a long body must come back exactly across chunk boundaries, and a wrong key or a missing
//! bucket must fail the health check with a message that names the bucket.

use bytes::Bytes;
use vodup_server::storage::{BlobStore, S3Store, StorageError, WriteLimits, conformance, s3};
use vodup_testkit::s3::{MISSING, test_s3};

fn store() -> Option<S3Store> {
    Some(S3Store::new(test_s3()?).expect("configure the S3 store"))
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let Some(store) = store() else { return vodup_testkit::skip(MISSING) };
            conformance::$check(&store).await;
        }
    )*};
}

conformance_tests!(
    run_all,
    health_check_passes,
    write_read_round_trip,
    hello_world_has_the_oss_digests,
    every_write_gets_a_fresh_id,
    content_md5_mismatch_keeps_nothing,
    oversized_body_keeps_nothing,
    short_body_is_incomplete_and_keeps_nothing,
    failed_body_keeps_nothing,
    ranges_read_exactly,
    empty_blobs,
    delete_is_idempotent,
    missing_blobs_are_not_found,
    hostile_ids_are_not_found,
    listing_pages_in_id_order,
    large_blobs_stream_back_exactly,
    concurrent_writes_are_independent,
);

#[tokio::test]
async fn a_refused_multipart_body_leaves_no_object() {
    let Some(store) = store() else { return vodup_testkit::skip(MISSING) };
    let data = conformance::pattern(3 * s3::CHUNK + 1234, 9);
    // Longer than one chunk, so it is a multipart upload by the time the MD5 is found wrong.
    let limits = WriteLimits { max_size: 1 << 30, expected_md5: Some([7; 16]), expected_len: None };
    let error = store.write(conformance::body_of(&data, 64 << 10), &limits).await.unwrap_err();
    assert!(matches!(error, StorageError::DigestMismatch), "{error}");
    // Too large, found in the third chunk.
    let limits = WriteLimits { max_size: 2 * s3::CHUNK as u64 + 5, expected_md5: None, expected_len: None };
    let error = store.write(conformance::body_of(&data, 64 << 10), &limits).await.unwrap_err();
    assert!(matches!(error, StorageError::TooLarge { .. }), "{error}");
    // A body that fails mid-way.
    let mut chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    chunks.truncate(8);
    chunks.push(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")));
    let error = store.write(Box::pin(futures_util::stream::iter(chunks)), &limits).await.unwrap_err();
    assert!(matches!(error, StorageError::Body(_)), "{error}");
    assert!(conformance::listed(&store).await.is_empty(), "a refused body left an object");
}

#[tokio::test]
async fn a_long_body_comes_back_exactly_across_chunks() {
    let Some(store) = store() else { return vodup_testkit::skip(MISSING) };
    let data = conformance::pattern(4 * s3::CHUNK + 777, 3);
    let limits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: Some(data.len() as u64) };
    let blob = store.write(conformance::body_of(&data, 100_000), &limits).await.expect("write");
    assert_eq!(blob.digests, vodup_server::storage::Digests::of(&data));
    let len = data.len() as u64;
    assert_eq!(conformance::read_all(&store, &blob.id, 0..len).await, data);
    let edge = s3::CHUNK as u64;
    let middle = conformance::read_all(&store, &blob.id, edge - 10..edge + 10).await;
    assert_eq!(middle, data[s3::CHUNK - 10..s3::CHUNK + 10]);
}

#[tokio::test]
async fn wrong_keys_or_a_missing_bucket_fail_the_health_check_naming_the_bucket() {
    let Some(settings) = test_s3() else { return vodup_testkit::skip(MISSING) };
    let wrong_key = S3Store::new(vodup_server::storage::S3Settings {
        secret_access_key: "not-the-secret".to_owned(),
        ..settings.clone()
    })
    .unwrap();
    let error = wrong_key.health_check().await.unwrap_err().to_string();
    assert!(error.contains(&settings.bucket), "{error}");
    let missing = S3Store::new(vodup_server::storage::S3Settings {
        bucket: "no-such-bucket-vodup".to_owned(),
        ..settings
    })
    .unwrap();
    let error = missing.health_check().await.unwrap_err().to_string();
    assert!(error.contains("no-such-bucket-vodup"), "{error}");
}
