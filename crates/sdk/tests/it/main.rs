//! The SDK as a library, against a real `vodup serve` on loopback: structured progress events through a
//! closure, cancellation that keeps the checkpoint and resumes, typed errors for bad input before any
//! request, and the wire the SDK signs accepted by the service.

use std::sync::{Arc, Mutex};

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::upload::progress::Event;
use vodup_sdk::vod::{AttachedMeta, VideoMeta};
use vodup_sdk::{Client, Credentials, ErrorKind};
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;

mod batch;

pub(crate) fn client(server: &TestServer) -> Client {
    Client::builder()
        .credentials(Credentials::new(&server.key_id, server.key_secret.expose()))
        .endpoint(&server.vod_url)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closure_receives_started_parts_and_completed_in_order() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 20 << 20, 11).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let options = UploadOptions {
        part_size: Some(4 << 20),
        checkpoint_dir: Some(dir.path().join("cp")),
        progress: Some(Arc::new(move |event: &Event| sink.lock().unwrap().push(event.clone()))),
        ..UploadOptions::default()
    };
    let result = client(&server)
        .upload_video(Source::File(file.clone()), &VideoMeta::default(), &options)
        .await
        .unwrap();
    assert_eq!(result.parts, 5);
    let events = events.lock().unwrap();
    assert!(
        matches!(&events[..2], [Event::Created { media_id, .. }, Event::Started { multipart: true, parts: Some(5), .. }]
            if *media_id == result.media_id),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(Event::Completed { .. })), "{events:?}");
    let parts = events.iter().filter(|e| matches!(e, Event::PartSent { .. })).count();
    assert_eq!(parts, 5);
    let bytes: u64 = events.iter().map(|e| if let Event::BytesSent { bytes } = e { *bytes } else { 0 }).sum();
    assert_eq!(bytes, 20 << 20, "every byte reported once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_upload_keeps_its_checkpoint_and_resumes_the_same_video() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 32 << 20, 12).unwrap();
    let options = UploadOptions {
        part_size: Some(1 << 20),
        parallel: Some(2),
        limit_rate: Some(8 << 20),
        checkpoint_dir: Some(dir.path().join("cp")),
        ..UploadOptions::default()
    };
    let first_id = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&first_id);
    let cancel = options.cancel.clone();
    let cancelling = UploadOptions {
        progress: Some(Arc::new(move |event: &Event| match event {
            Event::Started { media_id, .. } => *seen.lock().unwrap() = Some(media_id.clone()),
            Event::PartSent { part_number: 8, .. } => cancel.cancel(),
            _ => {}
        })),
        ..options.clone()
    };
    let client = client(&server);
    let error = client
        .upload_video(Source::File(file.clone()), &VideoMeta::default(), &cancelling)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled, "{error}");

    let resumed = UploadOptions { cancel: Default::default(), limit_rate: None, ..options };
    let result = client.upload_video(Source::File(file), &VideoMeta::default(), &resumed).await.unwrap();
    assert_eq!(Some(result.media_id), first_id.lock().unwrap().clone());
    assert!(result.resumed_parts >= 7, "{}", result.resumed_parts);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_typed_error_with_a_hint() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(&server);
    let missing = client
        .upload_video(
            Source::File(dir.path().join("no.mp4")),
            &VideoMeta::default(),
            &UploadOptions::default(),
        )
        .await;
    let error = missing.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.to_string().contains("no.mp4") && error.hint().contains("path"), "{error}");

    let srt = dir.path().join("a.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhi\n").unwrap();
    let meta = AttachedMeta { business_type: "watermark".into(), ..AttachedMeta::default() };
    let error =
        client.upload_attached(Source::File(srt), &meta, &UploadOptions::default()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.hint().contains("png"), "{error}");

    let wrong = Client::builder()
        .credentials(Credentials::new(&server.key_id, "not-the-secret"))
        .endpoint(&server.vod_url)
        .build()
        .unwrap();
    let file = dir.path().join("b.mp4");
    std::fs::write(&file, b"0123456789").unwrap();
    let error = wrong
        .upload_video(Source::File(file), &VideoMeta::default(), &UploadOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert_eq!(error.service_code(), Some("SignatureDoesNotMatch"));
    assert!(error.request_id().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_changed_since_the_checkpoint_starts_over_and_says_so() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 8 << 20, 13).unwrap();
    let options = UploadOptions {
        part_size: Some(1 << 20),
        parallel: Some(1),
        checkpoint_dir: Some(dir.path().join("cp")),
        ..UploadOptions::default()
    };
    let cancel = options.cancel.clone();
    let first_id = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&first_id);
    let cancelling = UploadOptions {
        progress: Some(Arc::new(move |event: &Event| match event {
            Event::Started { media_id, .. } => *seen.lock().unwrap() = media_id.clone(),
            Event::PartSent { part_number: 2, .. } => cancel.cancel(),
            _ => {}
        })),
        ..options.clone()
    };
    let client = client(&server);
    let error = client
        .upload_video(Source::File(file.clone()), &VideoMeta::default(), &cancelling)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Cancelled);

    write_random_file(&file, 8 << 20, 14).unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&notices);
    let again = UploadOptions {
        cancel: Default::default(),
        progress: Some(Arc::new(move |event: &Event| {
            if let Event::Notice { message } = event {
                sink.lock().unwrap().push(message.clone());
            }
        })),
        ..options
    };
    let result = client.upload_video(Source::File(file), &VideoMeta::default(), &again).await.unwrap();
    assert_ne!(result.media_id, *first_id.lock().unwrap(), "a new video for new content");
    assert_eq!(result.resumed_parts, 0);
    let notices = notices.lock().unwrap();
    assert!(notices.iter().any(|n| n.contains("changed since the checkpoint")), "{notices:?}");
}
