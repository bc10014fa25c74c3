//! The S3-compatible store the storage tests run against, named by the `VODUP_TEST_S3_*` variables that
//! `scripts/test` sets after starting a throwaway SeaweedFS (`scripts/seaweedfs-throwaway.sh`). Each
//! caller gets its own random prefix in the shared bucket, so tests run in parallel and never see each
//! other's blobs. Without the variables the tests skip (a failure under `VODUP_REQUIRE_ALL=1`).

use vodup_server::storage::S3Settings;

/// Settings for a fresh, empty corner of the test bucket; `None` when no test store is configured.
pub fn test_s3() -> Option<S3Settings> {
    let var = |name: &str| std::env::var(format!("VODUP_TEST_S3_{name}")).ok().filter(|v| !v.is_empty());
    Some(S3Settings {
        bucket: var("BUCKET")?,
        prefix: format!("t-{:016x}", rand::random::<u64>()),
        endpoint: var("ENDPOINT"),
        region: var("REGION").unwrap_or_else(|| "us-east-1".to_owned()),
        path_style: true,
        access_key_id: var("ACCESS_KEY_ID")?,
        secret_access_key: var("SECRET_ACCESS_KEY")?.into(),
    })
}

/// Why an S3 test cannot run, for [`crate::skip`].
pub const MISSING: &str = "no S3 test store: VODUP_TEST_S3_* are unset (scripts/test starts one with scripts/seaweedfs-throwaway.sh)";
