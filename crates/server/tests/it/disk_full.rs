//! A full disk, for real: the data folder on a small tmpfs (mounting needs root; CI runs as root).
//! Uploads are refused with `503 InsufficientStorage` and a message that says so, `/metrics` counts
//! them, `/readyz` reports the store not writable while `/healthz` stays up, nothing stored before is
//! touched, and once space is freed the same upload succeeds.

use std::time::{Duration, Instant};

use vodup_testkit::{OssCall, TestServer, Tmpfs};

use super::support::{bytes, create_video, put};

async fn readyz(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_uploads_clearly_and_loses_nothing() {
    let Some(disk) = Tmpfs::mount(48) else {
        return vodup_testkit::skip("cannot mount a tmpfs (needs root) to fill a disk for real");
    };
    let data = disk.path.join("data");
    let server = TestServer::start_with(|config| {
        config.server.data = Some(data.clone());
        config.data.ready_min_free_mib = Some(4);
    })
    .await;
    let before = create_video(&server, "before.mp4").await;
    let kept = bytes(1 << 20, 7);
    assert_eq!(server.oss(put(before.key(), before.sts(), &kept)).await.status(), 200);
    assert_eq!(readyz(&server.oss_url).await.0, 200);

    let filler = disk.fill(256 << 10);
    let video = create_video(&server, "after.mp4").await;
    let body = bytes(2 << 20, 9);
    let response = server.oss(put(video.key(), video.sts(), &body)).await;
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    assert!(text.contains("<Code>InsufficientStorage</Code>"), "{text}");
    assert!(text.contains("storage is full"), "the message says what happened: {text}");

    assert!(server.metric("vodup_storage_full_total").await >= 1.0);
    for url in [&server.oss_url, &server.vod_url] {
        tokio::time::sleep(vodup_server::health::PROBE_INTERVAL).await;
        let (status, body) = readyz(url).await;
        assert_eq!(status, 503, "{url}/readyz while full: {body}");
        assert_eq!(body["storage"], "full", "{body}");
        let live = reqwest::get(format!("{url}/healthz")).await.unwrap();
        assert_eq!(live.status(), 200, "liveness does no storage work");
    }

    // What was stored before is whole.
    let got = server.oss(OssCall::new("GET", Some(before.key()), server.key_credential())).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), kept.as_slice());

    // Space comes back: ready again, and the refused upload goes through.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(&server.oss_url).await.0 != 200 {
        assert!(Instant::now() < deadline, "ready again once space is freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.oss(put(video.key(), video.sts(), &body)).await.status(), 200);
    server.stop().await;
}
