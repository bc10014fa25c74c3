//! The `TestServer` additions: `/metrics` readings and a configurable credential lifetime.

use vodup_testkit::TestServer;

#[tokio::test]
async fn metric_reads_samples_and_sums_names() {
    let server = TestServer::start_with(|config| config.control.credential_lifetime_secs = Some(7)).await;
    assert_eq!(server.metric("vodup_requests_total").await, 0.0);
    for _ in 0..2 {
        let reply = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let missing = server.vod("GetVideoInfo", &[("VideoId", "00000000000000000000000000000000")]).await;
    assert_eq!(missing.code(), "InvalidVideo.NotFound");
    let created = r#"vodup_requests_total{plane="vod",action="CreateUploadVideo",code="OK"}"#;
    assert_eq!(server.metric(created).await, 2.0);
    assert_eq!(server.metric("vodup_requests_total").await, 3.0);
    assert_eq!(server.metric("vodup_credential_refreshes_total").await, 0.0);
    assert!(server.metrics_text().await.contains("# TYPE vodup_bytes_received_total counter"));
    assert_eq!(server.state.settings.credential_lifetime.as_secs(), 7);
    server.stop().await;
}
