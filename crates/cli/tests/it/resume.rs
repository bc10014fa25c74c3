//! Resume across process restarts: `vodup upload` killed with SIGKILL at about half of a 1 GiB upload,
//! then the same command again, must finish the same video and send again no more than the parts that
//! were in flight (counted by the server's `/metrics`).

use tokio::io::{AsyncBufReadExt as _, BufReader};
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;

use super::support::{assert_uploaded, file_crc, run_ok, upload};

const SIZE: u64 = 1 << 30;
const PART: u64 = 8 << 20;
const PARALLEL: u64 = 4;

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_upload_resumes_with_the_same_video_and_resends_only_parts_in_flight() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.mp4");
    write_random_file(&file, SIZE, 4).unwrap();
    let expected = file_crc(&file);
    let command = |limit: bool| {
        let mut command = upload(&server, dir.path(), "video", file.to_str().unwrap());
        command.args(["--part-size", "8M", "--parallel", "4"]);
        if limit {
            // Slow enough that "half" is a moment the test can catch, not a race.
            command.args(["--limit-rate", "128M"]);
        }
        command
    };

    let mut child = command(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut video_id = String::new();
    let mut acknowledged = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        match event["Event"].as_str() {
            Some("started") => video_id = event["VideoId"].as_str().unwrap().to_owned(),
            Some("part_sent") => acknowledged += 1,
            _ => {}
        }
        if acknowledged == 64 {
            child.start_kill().unwrap();
            break;
        }
    }
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "the first run was killed");
    assert_eq!(acknowledged, 64, "the first run got to half before the kill");
    let received_at_kill = server.metric("vodup_bytes_received_total").await as u64;
    assert!(received_at_kill >= 64 * PART);

    let outcome = run_ok(command(false)).await;
    assert_uploaded(&server, &outcome, expected).await;
    let result = outcome.result();
    assert_eq!(result["VideoId"], video_id.as_str(), "same video");
    assert!(result["ResumedParts"].as_u64().unwrap() >= 64, "{result}");
    let received = server.metric("vodup_bytes_received_total").await as u64;
    assert!(
        received <= SIZE + PARALLEL * PART,
        "the server received {received} bytes for a {SIZE}-byte file: more than the parts in flight were resent"
    );
    assert_eq!(server.metric("vodup_uploads_initiated_total").await, 1.0, "the multipart upload was resumed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_process_on_the_same_upload_is_refused() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 64 << 20, 5).unwrap();
    let mut first = upload(&server, dir.path(), "video", file.to_str().unwrap());
    first.args(["--limit-rate", "16M"]);
    let mut first = first.spawn().unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("\"started\"") {
            break;
        }
    }
    let second = super::support::run(upload(&server, dir.path(), "video", file.to_str().unwrap())).await;
    assert_eq!(second.code, Some(8), "busy: {}", second.stderr);
    assert!(second.stderr.contains("another vodup process"), "{}", second.stderr);
    first.start_kill().unwrap();
    let _ = first.wait().await;
}
