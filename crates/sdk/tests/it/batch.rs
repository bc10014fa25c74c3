//! The batch manifest's promise, checked at the crash windows a kill cannot hit on purpose: a media item
//! created by an interrupted run but never recorded (a video known only by the ReferenceId of its
//! intent; an image known only from its `created` record) is deleted when the batch runs again, so each
//! file ends with exactly one media item.

use std::sync::Arc;

use vodup_sdk::batch::journal::{Journal, Record};
use vodup_sdk::batch::{BatchItem, BatchMedia, BatchOptions, BatchProgress, FileOutcome, FileStatus};
use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::upload::progress::Event;
use vodup_sdk::vod::{ImageMeta, VideoMeta};
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;

use super::client;

struct Quiet;

impl BatchProgress for Quiet {
    fn on_event(&self, _file: &str, _event: &Event) {}
    fn on_file(&self, _outcome: &FileOutcome) {}
}

fn options(dir: &std::path::Path) -> BatchOptions {
    BatchOptions {
        jobs: 2,
        parallel: 2,
        upload: UploadOptions { checkpoint_dir: Some(dir.join("cp")), ..UploadOptions::default() },
        key: vec!["test-batch".into()],
    }
}

/// A temp folder with one random file: the folder, the file, and its absolute path as a batch names it.
fn one_file(name: &str, size: u64, seed: u64) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    write_random_file(&file, size, seed).unwrap();
    let absolute = std::path::absolute(&file).unwrap().to_string_lossy().into_owned();
    (dir, file, absolute)
}

/// Opens the batch's journal as `upload_batch` will (same folder and key) and appends `records`.
async fn write_journal(server: &TestServer, dir: &std::path::Path, records: Vec<Record>) {
    let endpoint = format!("{}/", server.vod_url);
    let journal = Journal::open(&dir.join("cp"), &["batch", &endpoint, "test-batch"]).unwrap();
    for record in records {
        journal.append(record).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_video_created_but_never_recorded_is_found_by_reference_and_deleted() {
    let server = TestServer::start().await;
    let (dir, file, absolute) = one_file("clip.mp4", 300_000, 1);
    // The interrupted run wrote its intent, and VOD created the video; then the process died.
    let reference = "vodup-interrupted-0001";
    write_journal(
        &server,
        dir.path(),
        vec![Record::Intent { file: absolute.clone(), reference_id: Some(reference.into()) }],
    )
    .await;
    let stray = server
        .vod("CreateUploadVideo", &[("Title", "clip"), ("FileName", "clip.mp4"), ("ReferenceId", reference)])
        .await;
    let stray_id = stray.body["VideoId"].as_str().unwrap().to_owned();

    let items = vec![BatchItem {
        source: Source::File(file),
        file: absolute,
        media: BatchMedia::Video(VideoMeta::default()),
    }];
    let summary = client(&server).upload_batch(items, &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    let outcome = &summary.outcomes[0];
    assert_eq!(outcome.status, FileStatus::Done, "{outcome:?}");
    assert_eq!(outcome.cleaned, vec![stray_id.clone()], "the stray was deleted");
    let gone = server.vod("GetVideoInfo", &[("VideoId", &stray_id)]).await;
    assert_eq!(gone.code(), "InvalidVideo.NotFound", "{}", gone.body);
    let media_id = outcome.media_id.clone().unwrap();
    assert_ne!(media_id, stray_id);
    let kept = server.vod("GetVideoInfo", &[("VideoId", &media_id)]).await;
    assert_eq!(kept.body["Video"]["Status"], "Normal");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_video_finished_but_never_recorded_is_recorded_not_uploaded_again() {
    let server = TestServer::start().await;
    let (dir, file, absolute) = one_file("clip.mp4", 200_000, 2);
    // A first run that finished the upload and died before writing `done`.
    let reference = "vodup-finished-0002";
    write_journal(
        &server,
        dir.path(),
        vec![Record::Intent { file: absolute.clone(), reference_id: Some(reference.into()) }],
    )
    .await;
    let meta = VideoMeta { reference_id: Some(reference.into()), ..VideoMeta::default() };
    let first = client(&server)
        .upload_video(
            Source::File(file.clone()),
            &meta,
            &UploadOptions { resume: false, ..UploadOptions::default() },
        )
        .await
        .unwrap();

    let items = vec![BatchItem {
        source: Source::File(file),
        file: absolute,
        media: BatchMedia::Video(VideoMeta::default()),
    }];
    let summary = client(&server).upload_batch(items, &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    let outcome = &summary.outcomes[0];
    assert_eq!(outcome.status, FileStatus::Skipped, "{outcome:?}");
    assert_eq!(
        outcome.media_id.as_deref(),
        Some(first.media_id.as_str()),
        "the finished video is the file's"
    );
    assert_eq!(server.metric("vodup_objects_completed_total").await, 1.0, "nothing uploaded twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_created_without_a_checkpoint_is_deleted_before_the_new_upload() {
    let server = TestServer::start().await;
    let (dir, file, absolute) = one_file("cover.png", 50_000, 3);
    let stray = server.vod("CreateUploadImage", &[("ImageType", "default"), ("ImageExt", "png")]).await;
    let stray_id = stray.body["ImageId"].as_str().unwrap().to_owned();
    write_journal(
        &server,
        dir.path(),
        vec![
            Record::Intent { file: absolute.clone(), reference_id: None },
            Record::Created { file: absolute.clone(), media_id: stray_id.clone() },
        ],
    )
    .await;

    let items = vec![BatchItem {
        source: Source::File(file),
        file: absolute,
        media: BatchMedia::Image(ImageMeta::default()),
    }];
    let summary = client(&server).upload_batch(items, &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    let outcome = &summary.outcomes[0];
    assert_eq!(outcome.status, FileStatus::Done, "{outcome:?}");
    assert_eq!(outcome.cleaned, vec![stray_id.clone()]);
    let gone = server.vod("GetImageInfo", &[("ImageId", &stray_id)]).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_edited_after_its_upload_becomes_a_new_video_and_an_unchanged_one_is_skipped() {
    let server = TestServer::start().await;
    let (dir, file, absolute) = one_file("clip.mp4", 150_000, 4);
    let item = || BatchItem {
        source: Source::File(file.clone()),
        file: absolute.clone(),
        media: BatchMedia::Video(VideoMeta::default()),
    };
    let batch = client(&server);
    let first = batch.upload_batch(vec![item()], &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    let first_id = first.outcomes[0].media_id.clone().unwrap();
    let again = batch.upload_batch(vec![item()], &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    assert_eq!(again.outcomes[0].status, FileStatus::Skipped);
    assert_eq!(again.outcomes[0].media_id.as_deref(), Some(first_id.as_str()));

    std::thread::sleep(std::time::Duration::from_millis(20));
    write_random_file(&file, 160_000, 5).unwrap();
    let edited = batch.upload_batch(vec![item()], &options(dir.path()), Arc::new(Quiet)).await.unwrap();
    let outcome = &edited.outcomes[0];
    assert_eq!(outcome.status, FileStatus::Done, "{outcome:?}");
    assert_ne!(outcome.media_id.as_deref(), Some(first_id.as_str()), "a new video for the new content");
    assert_eq!(outcome.result.as_ref().unwrap().size, 160_000);
    let old = server.vod("GetVideoInfo", &[("VideoId", &first_id)]).await;
    assert_eq!(old.body["Video"]["Status"], "Normal", "the first video stays");
}
