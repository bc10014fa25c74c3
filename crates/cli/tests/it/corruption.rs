//! CRC-64 end to end: a proxy between the CLI and the data plane flips a byte of one part. Once: the CLI
//! sees OSS's CRC differ from its own, resends the part, and the object is right. Every time: the CLI
//! gives up with the checksum exit code and keeps its checkpoint, and the same command finishes the same
//! video once the proxy stops corrupting.

use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::proxy::{CorruptingProxy, Corruption};

use super::support::{assert_uploaded, file_crc, run, run_ok, upload};

async fn server_behind_proxy() -> (TestServer, CorruptingProxy) {
    TestServer::start_behind(
        |_| {},
        async |oss| {
            let proxy = CorruptingProxy::start(oss, Corruption::PassThrough).await;
            (proxy.url(), proxy)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_damaged_once_is_detected_and_resent() {
    let (server, proxy) = server_behind_proxy().await;
    proxy.set_mode(Corruption::OncePart(2));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 40 << 20, 7).unwrap();
    let mut command = upload(&server, dir.path(), "video", file.to_str().unwrap());
    command.args(["--part-size", "8M"]);
    let outcome = run_ok(command).await;
    assert_eq!(proxy.corrupted(), 1);
    assert_uploaded(&server, &outcome, file_crc(&file)).await;
    let retried = outcome.named("retried");
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(retried[0]["PartNumber"], 2);
    assert!(retried[0]["Reason"].as_str().unwrap().contains("CRC-64"), "{}", retried[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_damaged_every_time_fails_clearly_and_resumes_after() {
    let (server, proxy) = server_behind_proxy().await;
    proxy.set_mode(Corruption::EveryPart(3));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 40 << 20, 8).unwrap();
    let command = || {
        let mut command = upload(&server, dir.path(), "video", file.to_str().unwrap());
        command.args(["--part-size", "8M", "--parallel", "2"]);
        command
    };
    let failed = run(command()).await;
    assert_eq!(failed.code, Some(7), "checksum exit code: {}", failed.stderr);
    assert!(failed.stderr.contains("part 3") && failed.stderr.contains("CRC-64"), "{}", failed.stderr);
    assert!(failed.stderr.contains("checkpoint is kept"), "{}", failed.stderr);
    let video_id = failed.named("started")[0]["VideoId"].as_str().unwrap().to_owned();
    assert!(proxy.corrupted() >= 3);

    proxy.set_mode(Corruption::PassThrough);
    let outcome = run_ok(command()).await;
    assert_uploaded(&server, &outcome, file_crc(&file)).await;
    assert_eq!(outcome.result()["VideoId"], video_id.as_str(), "resumed the same video");
    assert!(outcome.result()["ResumedParts"].as_u64().unwrap() >= 1);
}
