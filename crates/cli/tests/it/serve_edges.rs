//! `vodup serve` at its edges, as the real binary behaves: a handler that panics answers 500 with its
//! request id, logs one line and keeps the connection and the process; a flood of anonymous progress
//! reports with huge, distinct VideoIds pins no memory; VOD errors point nobody at Alibaba's
//! troubleshooting site.

use futures_util::StreamExt as _;
use vodup_testkit::{OssCall, ServeOptions, ServeProcess};

fn serve(env: &[(&str, &str)]) -> (ServeProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
    let key = options.create_key();
    (ServeProcess::start(&options, &key, env), dir)
}

/// The server process's resident memory, from /proc.
fn rss_kib(server: &ServeProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    Some(&xml[start..start + xml[start..].find("</")?])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_answers_500_with_its_request_id_and_the_connection_lives_on() {
    // The second request of either plane panics; RUST_BACKTRACE would make the default hook print a
    // backtrace per panic.
    let (server, _dir) = serve(&[("VODUP_FAULT", "handler-panics:2"), ("RUST_BACKTRACE", "1")]);
    let head = || OssCall::new("GET", None, server.key_credential()).query("uploads", "");

    // The client keeps its connection alive between calls; a panic that dropped it would fail the call.
    let api = &server.api;
    let first = api.oss(head()).await;
    assert_eq!(first.status(), 200);

    let panicked = api.oss(head()).await;
    assert_eq!(panicked.status(), 500);
    let request_id = panicked.headers()["x-oss-request-id"].to_str().unwrap().to_owned();
    let body = panicked.text().await.unwrap();
    assert_eq!(xml_field(&body, "Code"), Some("InternalError"), "{body}");
    assert_eq!(xml_field(&body, "RequestId"), Some(request_id.as_str()), "{body}");

    let after = api.oss(head()).await;
    assert_eq!(after.status(), 200, "the server serves on after a panic");
    let vod = api.vod("GetVideoList", &[]).await;
    assert_eq!(vod.status, 200, "{}", vod.body);

    let log = server.log();
    let panic_lines: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert_eq!(panic_lines.len(), 1, "one line per panic; log:\n{log}");
    assert!(panic_lines[0].contains(&request_id), "the line names the request: {}", panic_lines[0]);
    assert!(!log.contains("stack backtrace") && !log.contains("RUST_BACKTRACE"), "no backtrace; log:\n{log}");
    assert!(log.contains("handler-panics"), "the line says why: {log}");
    let metrics = server.metrics_text().await;
    assert!(metrics.contains("code=\"InternalError\""), "the panic is counted:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_progress_floods_with_huge_video_ids_pin_no_memory() {
    let (server, _dir) = serve(&[]);
    const REPORTS: usize = 3000;
    const ID_BYTES: usize = 60 * 1024;
    let client = reqwest::Client::new();
    let url = format!("{}/", server.vod_url);
    let send = |n: usize| {
        let client = client.clone();
        let url = url.clone();
        async move {
            // A distinct 60 KB VideoId per report: each would be a table key if keys were request text.
            let id = format!("{n:08}{}", "a".repeat(ID_BYTES - 8));
            let query = format!("Action=ReportUploadProgress&Version=2017-03-21&Format=JSON&VideoId={id}");
            client.post(format!("{url}?{query}")).send().await.map(|r| r.status().as_u16())
        }
    };
    // Warm up the allocator and the connection pool, then measure.
    let warm: Vec<_> = futures_util::stream::iter(0..200).map(send).buffer_unordered(16).collect().await;
    assert!(warm.iter().all(Result::is_ok));
    let before = rss_kib(&server);
    let statuses: Vec<_> =
        futures_util::stream::iter(200..200 + REPORTS).map(send).buffer_unordered(16).collect().await;
    let after = rss_kib(&server);
    for status in &statuses {
        let status = *status.as_ref().expect("every report is answered");
        assert!(status == 200 || status == 400, "answered or throttled, got {status}");
    }
    // 3000 x 60 KB is 175 MiB if any table keeps the ids; allow 32 MiB of allocator noise.
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("RSS {before} -> {after} KiB over {REPORTS} reports of {ID_BYTES} B VideoIds");
    assert!(grown_mib < 32, "RSS grew by {grown_mib} MiB ({before} -> {after} KiB) over {REPORTS} reports");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_to_a_full_service_fails_at_once_and_is_not_retried() {
    let Some(disk) = vodup_testkit::Tmpfs::mount(48) else {
        return vodup_testkit::skip("cannot mount a tmpfs (needs root) to fill a disk for real");
    };
    let options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), disk.path.join("data"));
    let key = options.create_key();
    let server = ServeProcess::start(&options, &key, &[]);
    // Room for the catalogue's writes, not for the video.
    let _filler = disk.fill(1 << 20);
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("a.mp4");
    std::fs::write(&file, vodup_testkit::random_bytes(3 << 20, 5)).unwrap();

    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vodup"))
        .args(["upload", "video"])
        .arg(&file)
        .args(["--endpoint", &server.vod_url, "--json", "--no-resume"])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &key.0)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.1.expose())
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env_remove("VODUP_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "the service refused: exit 6\n{stdout}");
    assert!(!stdout.contains("\"Event\":\"retried\""), "a full disk is not retried:\n{stdout}");
    let error = stdout.lines().find(|l| l.contains("\"Event\":\"error\"")).expect("an error line");
    assert!(error.contains("storage is full"), "{error}");
    assert!(error.contains("operator"), "the hint says who can act: {error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "no retry backoff");
    assert_eq!(server.metric("vodup_storage_full_total").await, 1.0, "one attempt, not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn vod_errors_carry_no_link_to_alibabas_troubleshooting_site() {
    let (server, _dir) = serve(&[]);
    let reply = server.vod("GetVideoInfo", &[("VideoId", "0123456789abcdef0123456789abcdef")]).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.code(), "InvalidVideo.NotFound");
    assert!(reply.body.get("Recommend").is_none(), "{}", reply.body);
    assert!(!reply.body.to_string().contains("api.aliyun.com"), "{}", reply.body);
}
