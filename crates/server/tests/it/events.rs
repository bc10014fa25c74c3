//! Upload-complete events end to end: a loopback receiver gets FileUploadComplete,
//! ImageUploadComplete and AttachedMediaUploadComplete with the payloads of vod-api.md §6 and valid
//! `X-VOD-SIGNATURE`s; a per-upload callback URL outside the allow-list is refused at Create; and
//! events survive a receiver outage of a minute (every delivery answered 503) with a server restart in
//! the middle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use vodup_server::config::Config;
use vodup_server::proto::mac::md5;
use vodup_server::proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::receiver::{Received, receive, receive_when, wait_for};
use vodup_testkit::{OssCall, OssCredential, TestServer};

const AUTH_KEY: &str = "FakeAuthKey123";

fn events_to(url: &str, prefixes: Vec<String>) -> impl FnOnce(&mut Config) {
    let url = url.to_owned();
    move |config: &mut Config| {
        config.events.callback_url = Some(url);
        config.events.auth_key = Some(AUTH_KEY.to_owned());
        config.events.allowed_callback_prefixes = prefixes;
        config.events.poll_interval_ms = Some(50);
        config.events.max_backoff_secs = Some(2);
    }
}

/// Creates a media with `action` and `params`, uploads `body` to its key, returns its id and key.
async fn upload(
    server: &TestServer,
    action: &str,
    params: &[(&str, &str)],
    id_field: &str,
    body: &[u8],
) -> (String, String) {
    let reply = server.vod(action, params).await;
    assert_eq!(reply.status, 200, "{action}: {}", reply.body);
    let address = UploadAddress::decode(reply.body["UploadAddress"].as_str().unwrap()).unwrap();
    let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().unwrap()).unwrap();
    let credential = OssCredential::V1 {
        id: auth.access_key_id.clone(),
        secret: auth.access_key_secret.clone(),
        token: Some(auth.security_token.expose().to_owned()),
    };
    let response =
        server.oss(OssCall::new("PUT", Some(&address.file_name), credential).body(body.to_vec())).await;
    assert_eq!(response.status(), 200, "PutObject of {action}");
    (reply.body[id_field].as_str().unwrap().to_owned(), address.file_name)
}

fn check_signature(received: &Received, url: &str) {
    let timestamp = received.headers["x-vod-timestamp"].to_str().unwrap();
    assert_eq!(timestamp.len(), 10, "10-digit Unix seconds");
    let expected = hex::encode(md5(format!("{url}|{timestamp}|{AUTH_KEY}").as_bytes()));
    assert_eq!(received.headers["x-vod-signature"].to_str().unwrap(), expected);
    let id = received.headers["x-vod-event-id"].to_str().unwrap();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_upload_complete_event_arrives_signed_with_its_payload() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let inbox = receive(listener);
    let global = format!("http://{addr}/vod/callback");
    let own_prefix = format!("http://{addr}/own/");
    let server = TestServer::start_with(events_to(&global, vec![own_prefix.clone()])).await;

    let (video, video_key) = upload(
        &server,
        "CreateUploadVideo",
        &[("Title", "t"), ("FileName", "a.mp4"), ("UserData", r#"{"Extend":{"k":"v"}}"#)],
        "VideoId",
        b"video bytes",
    )
    .await;
    let (image, _) = upload(
        &server,
        "CreateUploadImage",
        &[("ImageType", "default"), ("ImageExt", "png")],
        "ImageId",
        b"png!",
    )
    .await;
    let (attached, _) = upload(
        &server,
        "CreateUploadAttachedMedia",
        &[("BusinessType", "subtitle"), ("MediaExt", "srt")],
        "MediaId",
        b"1\n00:00:00,000 --> 00:00:01,000\nhi\n",
    )
    .await;
    let own_url = format!("{own_prefix}hook");
    let user_data = format!(r#"{{"MessageCallback":{{"CallbackURL":"{own_url}","CallbackType":"http"}}}}"#);
    let (routed, _) = upload(
        &server,
        "CreateUploadVideo",
        &[("Title", "t"), ("FileName", "b.mp4"), ("UserData", &user_data)],
        "VideoId",
        b"xy",
    )
    .await;

    let got = wait_for(&inbox, 4, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 4, "{got:#?}");
    let find = |field: &str, id: &str| {
        got.iter().find(|r| r.body[field] == id).unwrap_or_else(|| panic!("no event for {id}: {got:#?}"))
    };

    let event = find("VideoId", &video);
    assert_eq!(event.path, "/vod/callback");
    assert_eq!(event.body["EventType"], "FileUploadComplete");
    assert_eq!(event.body["Size"], 11);
    assert_eq!(event.body["Status"], "success");
    assert!(event.body["FileUrl"].as_str().unwrap().ends_with(&video_key), "{}", event.body);
    assert_eq!(event.body["Extend"], r#"{"k":"v"}"#, "Extend is a JSON string");
    assert!(event.body["EventTime"].as_str().unwrap().ends_with('Z'));
    check_signature(event, &global);

    let event = find("ImageId", &image);
    assert_eq!(event.body["EventType"], "ImageUploadComplete");
    assert_eq!(event.body["Size"], 4);
    assert!(event.body["FileURL"].is_string() && event.body["AppId"].is_string(), "{}", event.body);
    check_signature(event, &global);

    let event = find("AttachedMediaId", &attached);
    assert_eq!(event.body["EventType"], "AttachedMediaUploadComplete");
    assert!(event.body["FileURL"].is_string());
    check_signature(event, &global);

    let event = find("VideoId", &routed);
    assert_eq!(event.path, "/own/hook", "the per-upload URL wins");
    check_signature(event, &own_url);

    let metrics = server.metrics_text().await;
    assert!(metrics.contains("vodup_events{state=\"delivered\"} 4"), "{metrics}");
    assert!(metrics.contains("vodup_events{state=\"pending\"} 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_url_outside_the_allow_list_is_refused_at_create() {
    let server = TestServer::start_with(events_to(
        "http://127.0.0.1:9/cb",
        vec!["https://hooks.example.com/vod/".into()],
    ))
    .await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "https://hooks.example.com.evil/vod/x",
        "https://hooks.example.com/other",
    ] {
        let user_data = format!(r#"{{"MessageCallback":{{"CallbackURL":"{url}"}}}}"#);
        let reply = server
            .vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4"), ("UserData", &user_data)])
            .await;
        assert_eq!(reply.status, 400, "{url}: {}", reply.body);
        assert_eq!(reply.code(), "InvalidParameter");
        let message = reply.body["Message"].as_str().unwrap();
        assert!(message.contains("not allowed") && message.contains("hooks.example.com/vod/"), "{message}");
    }
    let videos = server.vod("GetVideoList", &[]).await;
    assert_eq!(videos.body["Total"], 0, "nothing was created: {}", videos.body);
    let allowed = r#"{"MessageCallback":{"CallbackURL":"https://hooks.example.com/vod/x"}}"#;
    let reply = server
        .vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4"), ("UserData", allowed)])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // With no allow-list, every per-upload URL is refused.
    let closed = TestServer::start().await;
    let reply = closed
        .vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4"), ("UserData", allowed)])
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_survive_a_receiver_outage_of_a_minute_and_a_server_restart() {
    // The receiver is down (503 to every delivery) for a minute. It keeps its port meanwhile, so no other
    // test can take it and make the test flaky.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let up = Arc::new(AtomicBool::new(false));
    let inbox = receive_when(listener, Arc::clone(&up));
    let outage = Instant::now();
    let url = format!("http://{addr}/vod/callback");
    let server = TestServer::start_with(events_to(&url, Vec::new())).await;
    let mut ids = Vec::new();
    for name in ["a.mp4", "b.mp4"] {
        ids.push(
            upload(&server, "CreateUploadVideo", &[("Title", "t"), ("FileName", name)], "VideoId", b"abc")
                .await
                .0,
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("vodup_events{state=\"pending\"} 2"), "{metrics}");
    assert!(inbox.lock().unwrap().is_empty());

    let server = server.restart().await;
    let remaining = Duration::from_secs(60).saturating_sub(outage.elapsed());
    tokio::time::sleep(remaining).await;
    up.store(true, Ordering::SeqCst);
    let got = wait_for(&inbox, 2, Duration::from_secs(20)).await;
    let mut delivered: Vec<String> =
        got.iter().map(|r| r.body["VideoId"].as_str().unwrap().to_owned()).collect();
    delivered.sort();
    delivered.dedup();
    ids.sort();
    assert_eq!(delivered, ids, "both events arrived after the outage: {got:#?}");
    for received in &got {
        check_signature(received, &url);
    }
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("vodup_events{state=\"delivered\"} 2"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_server_hands_back_the_events_it_was_sending() {
    // The receiver takes the first delivery and never answers it; it answers later ones at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/vod/callback", listener.local_addr().unwrap());
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inbox = receive_after_a_hang(listener, Arc::clone(&attempts));
    // The default claim (60 s): without the hand-back the restarted server would wait that long.
    let server = TestServer::start_with(events_to(&url, Vec::new())).await;
    let (id, _) =
        upload(&server, "CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4")], "VideoId", b"abc")
            .await;
    let started = Instant::now();
    while attempts.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the first delivery never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let server = server.restart().await;
    let restarted = Instant::now();
    let got = wait_for(&inbox, 1, Duration::from_secs(15)).await;
    assert_eq!(
        got.iter().map(|r| r.body["VideoId"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        vec![id.as_str()],
        "the event was sent again after the restart, {:?} later (the claim lasts 60 s)",
        restarted.elapsed()
    );
    assert!(restarted.elapsed() < Duration::from_secs(15));
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("vodup_events{state=\"delivered\"} 1"), "{metrics}");
}

/// A receiver that counts every POST in `attempts`, leaves the first unanswered for ever, and records and
/// answers 200 to the others.
fn receive_after_a_hang(
    listener: TcpListener,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
) -> vodup_testkit::receiver::Inbox {
    let inbox = vodup_testkit::receiver::Inbox::default();
    let sink = Arc::clone(&inbox);
    let app = axum::Router::new().fallback(axum::routing::post(move |body: String| {
        let (sink, attempts) = (Arc::clone(&sink), Arc::clone(&attempts));
        async move {
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
            sink.lock().unwrap().push(Received {
                path: String::new(),
                headers: http::HeaderMap::new(),
                body,
            });
            http::StatusCode::OK
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    inbox
}
