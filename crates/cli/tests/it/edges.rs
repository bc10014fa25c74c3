//! The edge load of issue 11 against the real `vodup serve` started with only 256 descriptors, as in the
//! report: clients sending their head a byte at a time, 300 idle keep-alive sockets and a flood of
//! anonymous ReportUploadProgress calls run the whole time, while a normal client makes signed VOD calls,
//! PutObjects and multipart uploads, which must all complete; the server must close the slow and idle
//! sockets itself, within its (short, configured) timeouts, and never run out of descriptors.
//!
//! Before the listener had caps and timeouts, the idle sockets took every descriptor and the normal
//! client's calls hung until they timed out.

use std::net::SocketAddr;
use std::time::Duration;

use vodup_proto::oss::xml::{CompleteMultipartUpload, CompletePart, to_xml};
use vodup_testkit::edge::{Edge, EdgeLoad, ProcessSampler};
use vodup_testkit::{Api, OssCall, OssCredential, ServeOptions, ServeProcess, random_bytes};

use super::support;

const DESCRIPTORS: u64 = 256;
const HEADER_READ_TIMEOUT_S: u64 = 2;
const IDLE_TIMEOUT_S: u64 = 3;
/// Slack for the server's timer and the attacker's own scheduling on a busy 2-core machine.
const SLACK_MS: u64 = 2500;
/// A normal call that takes longer than this is stuck behind the attack (before the fix they hung).
const NORMAL_CALL: Duration = Duration::from_secs(20);

async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(NORMAL_CALL, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not complete within {NORMAL_CALL:?} under the edge load"))
}

/// CreateUploadVideo, then the object key and STS credential of its UploadAuth.
async fn create_video(api: &Api, name: &str) -> (String, OssCredential) {
    let video = bounded("CreateUploadVideo", support::create_video(api, name)).await;
    (video.key, video.credential)
}

async fn oss(api: &Api, what: &str, call: OssCall) -> reqwest::Response {
    let response = bounded(what, api.oss(call)).await;
    assert_eq!(response.status(), 200, "{what}");
    response
}

/// One PutObject and one multipart upload (two parts), each of a new video.
async fn normal_uploads(api: &Api, round: usize) {
    let (key, credential) = create_video(api, &format!("put{round}.mp4")).await;
    let body = random_bytes(256 << 10, round as u64);
    oss(api, "PutObject", OssCall::new("PUT", Some(&key), credential).body(body)).await;

    let (key, credential) = create_video(api, &format!("multipart{round}.mp4")).await;
    let call = |method: &str| OssCall::new(method, Some(&key), credential.clone());
    let text =
        oss(api, "InitiateMultipartUpload", call("POST").query("uploads", "")).await.text().await.unwrap();
    let start = text.find("<UploadId>").unwrap() + "<UploadId>".len();
    let upload_id = text[start..start + text[start..].find('<').unwrap()].to_owned();
    let mut parts = Vec::new();
    for number in 1..=2u32 {
        let part = call("PUT")
            .query("partNumber", &number.to_string())
            .query("uploadId", &upload_id)
            .body(random_bytes(128 << 10, u64::from(number) + 100 * round as u64));
        let response = oss(api, "UploadPart", part).await;
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        parts.push(CompletePart { part_number: number, etag });
    }
    let complete =
        call("POST").query("uploadId", &upload_id).body(to_xml(&CompleteMultipartUpload { parts }));
    oss(api, "CompleteMultipartUpload", complete).await;
}

fn address(url: &str) -> SocketAddr {
    url.strip_prefix("http://").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn normal_uploads_complete_while_slow_idle_and_flooding_clients_attack() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
    options.descriptor_limit = Some(DESCRIPTORS);
    options.args = vec![
        "--header-read-timeout".into(),
        HEADER_READ_TIMEOUT_S.to_string(),
        "--idle-timeout".into(),
        IDLE_TIMEOUT_S.to_string(),
    ];
    let key = options.create_key();
    let server = ServeProcess::start(&options, &key, &[]);
    let sampler = ProcessSampler::watch(server.pid());
    let edge = Edge::start(&EdgeLoad::new(address(&server.vod_url), address(&server.oss_url)));

    // Let the attack reach its full size, then work through it; keep it running long enough for every
    // slow and idle socket to meet its timeout at least once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = tokio::time::Instant::now();
    for round in 0..4 {
        normal_uploads(&server, round).await;
        let info = bounded("GetMezzanineInfo", server.vod("GetMezzanineInfo", &[("VideoId", "none")])).await;
        assert!(info.status < 500, "a signed RPC call answered {}: {}", info.status, info.body);
    }
    let at_least = Duration::from_secs(HEADER_READ_TIMEOUT_S + IDLE_TIMEOUT_S + 3);
    tokio::time::sleep(at_least.saturating_sub(started.elapsed())).await;
    let stats = edge.stop().await;
    let (peak_fds, _) = sampler.stop();
    let log = || server.log();
    eprintln!("edge load: peak descriptors {peak_fds}; {stats:?}");

    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    assert!(peak_fds < DESCRIPTORS, "the server reached {peak_fds} of {DESCRIPTORS} descriptors");
    assert!(load(&stats.slow_closed) > 0, "no slow client was closed by the server: {stats:?}");
    assert!(
        load(&stats.slow_longest_ms) <= HEADER_READ_TIMEOUT_S * 1000 + SLACK_MS,
        "a slow client lived {} ms (header-read timeout {HEADER_READ_TIMEOUT_S} s): {stats:?}",
        load(&stats.slow_longest_ms)
    );
    assert!(load(&stats.idle_closed) > 0, "no idle socket was closed by the server: {stats:?}");
    assert!(
        load(&stats.idle_longest_ms) <= IDLE_TIMEOUT_S * 1000 + SLACK_MS,
        "an idle socket stayed {} ms (idle timeout {IDLE_TIMEOUT_S} s): {stats:?}",
        load(&stats.idle_longest_ms)
    );
    assert!(load(&stats.refused) > 0, "the per-client caps refused nothing: {stats:?}");
    assert!(load(&stats.flood_answered) > 0, "the flood got no answer: {stats:?}");
    let metrics = bounded("/metrics", server.metrics_text()).await;
    for name in [
        "vodup_connections_header_timeout_total",
        "vodup_connections_idle_timeout_total",
        "vodup_connections_refused_per_client_total",
    ] {
        assert!(server.metric(name).await > 0.0, "{name} is 0 in /metrics:\n{metrics}\nlog:\n{}", log());
    }
}
