//! Credentials refreshed mid-upload: with upload credentials valid 5 seconds and `--limit-rate`
//! stretching the upload to about 30 seconds, the CLI must call RefreshUploadVideo again and again and
//! keep the one multipart upload it started.

use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;

use super::support::{assert_uploaded, file_crc, run_ok, upload};

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_credentials_are_refreshed_without_restarting_the_upload() {
    let server = TestServer::start_with(|config| config.control.credential_lifetime_secs = Some(5)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slow.mp4");
    let size = 30 * 1_600_000;
    write_random_file(&file, size, 6).unwrap();
    let mut command = upload(&server, dir.path(), "video", file.to_str().unwrap());
    command.args(["--part-size", "1M", "--parallel", "2", "--limit-rate", "1600000"]);
    let started = std::time::Instant::now();
    let outcome = run_ok(command).await;
    assert!(started.elapsed().as_secs() >= 25, "the upload took {:?}", started.elapsed());
    assert_uploaded(&server, &outcome, file_crc(&file)).await;
    let refreshes = server.metric("vodup_credential_refreshes_total").await;
    assert!(refreshes >= 3.0, "RefreshUploadVideo was called {refreshes} times");
    assert_eq!(server.metric("vodup_uploads_initiated_total").await, 1.0, "one InitiateMultipartUpload");
    assert!(outcome.named("credentials_refreshed").len() >= 3);
}
