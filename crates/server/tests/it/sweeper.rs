//! The sweeper: an abandoned multipart upload (its age forced short) disappears with its parts and its
//! media reads `UploadFail`, while a live upload in the same run is untouched and still completes.

use std::time::{Duration, Instant};

use vodup_server::meta::{MediaStatus, UploadState};
use vodup_testkit::TestServer;

use super::support::{
    bytes, complete_body, complete_call, create_video, initiate, media_status, parts_of, stored_parts,
    upload_part, upload_state,
};

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_upload_is_swept_and_a_live_one_is_untouched() {
    let server = TestServer::start_with(|config| {
        config.sweeper.max_age_secs = Some(3);
        config.sweeper.interval_ms = Some(100);
    })
    .await;
    let abandoned = create_video(&server, "old.mp4").await;
    let old_upload = initiate(&server, abandoned.key(), abandoned.sts()).await;
    upload_part(&server, abandoned.key(), abandoned.sts(), &old_upload, 1, &bytes(200 * 1024, 1)).await;
    assert_eq!(stored_parts(&server.state, &old_upload).await, vec![1]);

    // Let the first upload age past the limit, then start a live one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let live = create_video(&server, "new.mp4").await;
    let live_upload = initiate(&server, live.key(), live.sts()).await;
    let etag = upload_part(&server, live.key(), live.sts(), &live_upload, 1, &bytes(1000, 2)).await;

    // One sweep aborts the upload, then fails its media, in two steps: wait for both.
    let started = Instant::now();
    while upload_state(&server.state, &old_upload).await == UploadState::Open
        || media_status(&server.state, &abandoned.id).await == MediaStatus::Uploading
    {
        assert!(started.elapsed() < Duration::from_secs(10), "the sweeper never aborted the old upload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upload_state(&server.state, &old_upload).await, UploadState::Aborted);
    let gone = parts_of(&server.state, &old_upload).await;
    assert!(gone.is_err_and(|e| e.is_not_found()), "its parts are released");
    assert_eq!(media_status(&server.state, &abandoned.id).await, MediaStatus::UploadFail);

    assert_eq!(
        upload_state(&server.state, &live_upload).await,
        UploadState::Open,
        "the live upload is untouched"
    );
    assert_eq!(media_status(&server.state, &live.id).await, MediaStatus::Uploading);
    let response = server
        .oss(complete_call(live.key(), live.sts(), &live_upload, complete_body(&[(1, etag.as_str())])))
        .await;
    assert_eq!(response.status(), 200, "the live upload still completes");
    assert_eq!(media_status(&server.state, &live.id).await, MediaStatus::Normal);

    // The swept video's credentials can no longer write.
    let late = server.oss(super::support::put(abandoned.key(), abandoned.sts(), b"late")).await;
    assert_eq!(late.status(), 403);
}
