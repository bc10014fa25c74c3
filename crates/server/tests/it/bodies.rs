//! Request bodies the server reads whole (Complete's part list, RPC forms): each one has the idle
//! timeout streamed bodies have, and together they hold at most the configured budget, so clients that
//! send half a body and stop are answered and forgotten instead of pinning memory forever.

use std::time::{Duration, Instant};

use bytes::Bytes;
use vodup_testkit::TestServer;

use super::support::{bytes, complete_body, complete_call, create_video, initiate, upload_part};

const BUDGET_MIB: u64 = 8;
const STALLED: usize = 20;

/// One MiB of a two-MiB body, then nothing, forever.
fn stalling_body() -> reqwest::Body {
    let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1 << 20]))]);
    reqwest::Body::wrap_stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()))
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_complete_bodies_are_answered_and_hold_at_most_the_budget() {
    let server = TestServer::start_with(|config| {
        config.data.body_idle_timeout_secs = Some(2);
        config.server.buffered_body_budget_mib = Some(BUDGET_MIB);
    })
    .await;
    let video = create_video(&server, "a.mp4").await;
    let upload = initiate(&server, video.key(), video.sts()).await;
    let etag = upload_part(&server, video.key(), video.sts(), &upload, 1, &bytes(1000, 1)).await;

    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let request = server
            .oss_request(&server.oss_url, complete_call(video.key(), video.sts(), &upload, String::new()))
            .header("content-length", (2u64 << 20).to_string())
            .body(stalling_body());
        stalled.push(tokio::spawn(async move {
            let response = tokio::time::timeout(Duration::from_secs(30), request.send()).await;
            let response = response.expect("a stalled body is answered, not left pending").expect("answered");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }));
    }
    let total = server.state.body_budget.total();
    let mut least = total;
    while !stalled.iter().all(tokio::task::JoinHandle::is_finished) {
        least = least.min(server.state.body_budget.available());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut busy = 0;
    for task in stalled {
        let (status, body) = task.await.unwrap();
        match status {
            503 => {
                assert!(body.contains("<Code>ServiceUnavailable</Code>"), "{body}");
                busy += 1;
            }
            400 => assert!(body.contains("<Code>RequestTimeout</Code>"), "{body}"),
            other => panic!("a stalled Complete got {other}: {body}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20), "answered within the idle timeout, not held");
    assert!(busy >= STALLED - BUDGET_MIB as usize, "{busy} refused at once: the budget holds 8 of 20");
    assert!(least < total, "the stalled bodies were charged");
    assert_eq!(server.state.body_budget.available(), total, "every charge is returned");

    // The upload itself is untouched: a whole Complete still works.
    let response = server
        .oss(complete_call(video.key(), video.sts(), &upload, complete_body(&[(1, etag.as_str())])))
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_rpc_body_is_answered_within_the_idle_timeout() {
    let server = TestServer::start_with(|config| config.data.body_idle_timeout_secs = Some(1)).await;
    let first =
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"Action=GetVideoList&"))]);
    let body =
        reqwest::Body::wrap_stream(futures_util::StreamExt::chain(first, futures_util::stream::pending()));
    let started = Instant::now();
    let response = server
        .client()
        .post(format!("{}/", server.vod_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "1000")
        .body(body)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 400, "{:?}", response.text().await);
    assert!(started.elapsed() < Duration::from_secs(10), "the idle timeout, not the 30 s deadline");
}
