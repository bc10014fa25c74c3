//! `/metrics` counts what the service did, in Prometheus text, without credentials.

use vodup_testkit::{OssCall, TestServer};

#[tokio::test]
async fn metrics_count_requests_by_action_and_code_and_bytes_received() {
    let server = TestServer::start().await;
    let created = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4")]).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let missing = server.vod("GetVideoInfo", &[("VideoId", "00000000000000000000000000000000")]).await;
    assert_eq!(missing.code(), "InvalidVideo.NotFound");
    let put = server
        .oss(OssCall::new("PUT", Some("free/key.bin"), server.key_credential()).body(vec![7u8; 12_345]))
        .await;
    assert_eq!(put.status(), 200);

    let text = server
        .client()
        .get(format!("{}/metrics", server.vod_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "vodup_requests_total{plane=\"vod\",action=\"CreateUploadVideo\",code=\"OK\"} 1",
        "vodup_requests_total{plane=\"vod\",action=\"GetVideoInfo\",code=\"InvalidVideo.NotFound\"} 1",
        "vodup_requests_total{plane=\"oss\",action=\"PutObject\",code=\"OK\"} 1",
        "vodup_bytes_received_total 12345",
        "vodup_objects_completed_total 1",
        // Up while a body is written (the race suite waits on it), back to 0 once it is stored.
        "vodup_blob_writes_in_flight 0",
        "vodup_blobs{state=\"live\"} 1",
        "vodup_blobs{state=\"garbage\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    server.stop().await;
}
