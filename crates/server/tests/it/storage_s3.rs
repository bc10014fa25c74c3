//! The S3 blob store on two real S3 implementations, SeaweedFS (single process) and Garage (three nodes,
//! consistent mode), each named by its test variables (`VODUP_TEST_S3_*`, `VODUP_TEST_GARAGE_*`): every
//! conformance check, each on its own prefix of the shared bucket, then what only an object store can get
//! wrong: a refused body longer than one chunk (a multipart upload) must leave no object, a long body must
//! come back exactly across chunk boundaries, and a wrong key or a missing bucket must fail the health
//! check with a message that names the bucket. One list of cases, one module per backend.

use bytes::Bytes;
use vodup_server::storage::s3::Problem;
use vodup_server::storage::{BlobStore, S3Settings, S3Store, StorageError, WriteLimits, conformance, s3};
use vodup_testkit::garage::{GARAGE_MISSING, test_garage};
use vodup_testkit::s3::{MISSING, test_s3};

/// One test per conformance check, on a fresh prefix of the backend's bucket.
macro_rules! conformance_tests {
    ($settings:path, $missing:expr; $($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let Some(settings) = $settings() else { return vodup_testkit::skip($missing) };
            let store = S3Store::new(settings).expect("configure the S3 store");
            conformance::$check(&store).await;
        }
    )*};
}

/// One test per S3-only case below, each given the settings of a fresh prefix.
macro_rules! s3_cases {
    ($settings:path, $missing:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let Some(settings) = $settings() else { return vodup_testkit::skip($missing) };
            super::$case(settings).await;
        }
    )*};
}

/// Every case on one backend.
macro_rules! backend {
    ($backend:ident, $settings:path, $missing:expr) => {
        mod $backend {
            use super::*;
            conformance_tests!($settings, $missing; run_all);
            vodup_server::storage_conformance_checks!(conformance_tests!($settings, $missing;));
            s3_cases!(
                $settings, $missing;
                a_refused_multipart_body_leaves_no_object,
                a_long_body_comes_back_exactly_across_chunks,
                wrong_keys_or_a_missing_bucket_fail_the_health_check_naming_the_bucket,
            );
        }
    };
}

backend!(seaweedfs, test_s3, MISSING);
backend!(garage, test_garage, GARAGE_MISSING);

async fn a_refused_multipart_body_leaves_no_object(settings: S3Settings) {
    let store = S3Store::new(settings).expect("configure the S3 store");
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

async fn a_long_body_comes_back_exactly_across_chunks(settings: S3Settings) {
    let store = S3Store::new(settings).expect("configure the S3 store");
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

async fn wrong_keys_or_a_missing_bucket_fail_the_health_check_naming_the_bucket(settings: S3Settings) {
    let wrong_key =
        S3Store::new(S3Settings { secret_access_key: "not-the-secret".into(), ..settings.clone() }).unwrap();
    let error = wrong_key.health_check().await.unwrap_err().to_string();
    assert!(error.contains(&settings.bucket), "{error}");
    let failure = wrong_key.probe().await.unwrap_err();
    assert_eq!(failure.problem, Problem::Denied, "{failure:?}");
    let unknown_key =
        S3Store::new(S3Settings { access_key_id: "GK0123456789abcdef01234567".into(), ..settings.clone() })
            .unwrap();
    let failure = unknown_key.probe().await.unwrap_err();
    assert_eq!(failure.problem, Problem::Denied, "{failure:?}");
    let missing =
        S3Store::new(S3Settings { bucket: "no-such-bucket-vodup".to_owned(), ..settings.clone() }).unwrap();
    let error = missing.health_check().await.unwrap_err().to_string();
    assert!(error.contains("no-such-bucket-vodup"), "{error}");
    let failure = missing.probe().await.unwrap_err();
    // Garage answers 404 NoSuchBucket; SeaweedFS 4.48 answers a PUT into a missing bucket with 500
    // InternalError (and lists it as empty), which startup words as "the bucket may not exist".
    if failure.service_code.as_deref() == Some("InternalError") {
        assert_eq!(failure.problem, Problem::Unavailable, "{failure:?}");
    } else {
        assert_eq!(failure.problem, Problem::NoSuchBucket, "{failure:?}");
    }
    // A port nothing listens on: refused at once, reported as unreachable (and retryable).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere =
        S3Store::new(S3Settings { endpoint: Some(format!("http://{closed}")), ..settings }).unwrap();
    let failure = nowhere.probe().await.unwrap_err();
    assert_eq!(failure.problem, Problem::Unreachable, "{failure:?}");
    assert!(failure.error.is_unavailable(), "{}", failure.error);
}
