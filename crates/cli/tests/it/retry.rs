//! Retries as a user meets them (issue 13): an upload waits out a `vodup serve` stopped for two seconds
//! and restarted on the same ports and data folder, showing one waiting line (or only JSON events) and
//! no URL; a dead port fails once `--retry-for` is spent, with a hint that says what to check; answers
//! that cannot change by asking again (the OSS port given as the VOD endpoint, `https://` to a plain-HTTP
//! port, a URL source's 404) fail at once with a message that says what is wrong; and every error line
//! carries a hint. "At once" is checked by the absence of `retried` events, not by timing; the only
//! times asserted are generous bounds that prove a run did not wait out the default 60 s.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use vodup_proto::crc64;
use vodup_testkit::origin::{OriginOptions, OriginServer};
use vodup_testkit::{Api, ServeOptions, ServeProcess, TestServer, random_bytes};

use super::support::{Outcome, assert_uploaded, parse_lines, run, upload, upload_quiet};

/// Far below the default 60 s budget, far above anything a run that does not wait takes.
const NO_LONG_WAIT: Duration = Duration::from_secs(30);

/// The address (`127.0.0.1:P`) of an `http://127.0.0.1:P` URL.
fn address(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// The server's key with another VOD endpoint.
fn aimed_at(server: &TestServer, endpoint: &str) -> Api {
    server.api.clone().at(endpoint.to_owned(), server.oss_url.clone())
}

/// A port nothing listens on: bound, then released.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn write_video(dir: &Path, len: usize) -> (std::path::PathBuf, (u64, u64)) {
    let file = dir.join("clip.mp4");
    let bytes = random_bytes(len, 13);
    std::fs::write(&file, &bytes).unwrap();
    (file, (crc64::checksum(&bytes), len as u64))
}

/// Every line that mentions waiting.
fn waiting_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("waiting for")).collect()
}

/// An upload that went through a server restart.
struct Restarted {
    /// Exit code, JSON lines (with `--json`) and stderr.
    outcome: Outcome,
    /// stdout as text.
    stdout: String,
    /// The server after its restart.
    server: ServeProcess,
    /// CRC-64 and size of the file.
    expected: (u64, u64),
    _dir: tempfile::TempDir,
}

/// Uploads a 4 MiB video at 1 MiB/s in 256 KiB parts to a `vodup serve` process, SIGKILLs the server
/// about a second into the parts, and starts it again two seconds later on the same ports and data.
async fn upload_through_a_restart(json: bool) -> Restarted {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
    let key = options.create_key();
    let mut server = ServeProcess::start(&options, &key, &[]);
    let (file, expected) = write_video(dir.path(), 4 << 20);

    let mut command =
        if json { upload } else { upload_quiet }(&server, dir.path(), "video", file.to_str().unwrap());
    // Slow enough that the restart falls in the middle of the parts, not after them.
    command.args(["--part-size", "256K", "--parallel", "2", "--limit-rate", "1M"]);
    let mut child = command.spawn().unwrap();

    // The checkpoint is written once the media exists, just before the first part goes out.
    let checkpoints = dir.path().join("checkpoints");
    let deadline = Instant::now() + NO_LONG_WAIT;
    while !checkpoints.read_dir().is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file()))) {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.kill();
    assert!(child.try_wait().unwrap().is_none(), "the upload was still running when the server stopped");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let same_ports =
        [("VODUP_LISTEN", address(&server.vod_url)), ("VODUP_OSS_LISTEN", address(&server.oss_url))];
    let restarted = ServeProcess::start(&options, &key, &same_ports);

    let mut stdout = Vec::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).await.unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    let status = child.wait().await.unwrap();
    let outcome =
        Outcome { code: status.code(), events: if json { parse_lines(&stdout) } else { Vec::new() }, stderr };
    assert_eq!(outcome.code, Some(0), "the upload outlasted the restart: {}", outcome.stderr);
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    Restarted { outcome, stdout, server: restarted, expected, _dir: dir }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_outlasts_a_server_restart_with_one_waiting_line_and_no_url() {
    let Restarted { outcome, stdout, server, expected, _dir: _kept } = upload_through_a_restart(false).await;
    let stderr = &outcome.stderr;
    let waiting = waiting_lines(stderr);
    assert_eq!(waiting.len(), 1, "one line for the outage:\n{stderr}");
    assert!(waiting[0].contains("retrying for up to"), "{}", waiting[0]);
    assert!(!stderr.contains("http://") && !stderr.contains("WARN"), "no URL, no log lines:\n{stderr}");

    // The result line names the video; the service holds exactly the file's bytes.
    let video_id = stdout.split_whitespace().nth(1).expect("VideoId on stdout");
    let info = server.vod("GetMezzanineInfo", &[("VideoId", video_id)]).await;
    let url = info.body["Mezzanine"]["FileURL"].as_str().unwrap_or_else(|| panic!("{}", info.body));
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!((crc64::checksum(&bytes), bytes.len() as u64), expected, "the object read back");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_json_an_outage_is_retried_events_on_stdout_and_nothing_on_stderr() {
    let Restarted { outcome, server, expected, _dir: _kept, .. } = upload_through_a_restart(true).await;
    assert_uploaded(&server, &outcome, expected).await;
    let retried = outcome.named("retried");
    assert!(!retried.is_empty(), "the outage shows as events");
    for event in &retried {
        assert_eq!(event["ErrorKind"], "network", "{event}");
        assert!(event["BudgetLeftMs"].as_u64().unwrap() <= 60_000, "{event}");
        let cause = event["Cause"].as_str().unwrap();
        assert!(!cause.is_empty() && !cause.contains("http://"), "a short cause: {event}");
    }
    assert_eq!(outcome.stderr, "", "stderr stays empty under --json");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_port_fails_once_retry_for_is_spent_with_a_hint_on_what_to_check() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_video(dir.path(), 100_000);
    let endpoint = format!("http://127.0.0.1:{}", dead_port());
    let mut command = upload(&aimed_at(&server, &endpoint), dir.path(), "video", file.to_str().unwrap());
    command.args(["--retry-for", "1"]);
    let started = Instant::now();
    let outcome = run(command).await;
    assert!(started.elapsed() < NO_LONG_WAIT, "did not wait out the default budget");
    assert_eq!(outcome.code, Some(5), "a network failure: {}", outcome.stderr);
    let error = outcome.events.last().unwrap();
    assert_eq!(error["Event"], "error");
    assert_eq!(error["ErrorKind"], "network");
    let hint = error["Hint"].as_str().expect("a hint");
    assert!(hint.contains(&endpoint) && hint.contains("port") && hint.contains("runs"), "{hint}");
    let message = error["Message"].as_str().unwrap();
    assert!(message.contains("attempts in 1 s"), "says it retried, and how long: {message}");
    let retried = outcome.named("retried");
    assert!(!retried.is_empty(), "it was retried");
    assert!(retried.iter().all(|e| e["Cause"] == "connection refused"), "{retried:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_an_outage_is_one_line_above_the_bar() {
    if !Path::new("/usr/bin/script").is_file() && !Path::new("/bin/script").is_file() {
        return vodup_testkit::skip("util-linux `script` is not installed (it provides the pseudo-terminal)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_video(dir.path(), 100_000);
    let line = format!(
        "{} upload video {} --endpoint http://127.0.0.1:{} --retry-for 3 --checkpoint-dir {}",
        env!("CARGO_BIN_EXE_vodup"),
        file.display(),
        dead_port(),
        dir.path().join("cp").display()
    );
    let output = tokio::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "secret")
        .env_remove("VODUP_LOG")
        .env("TERM", "xterm")
        .output()
        .await
        .unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{screen}");
    let waiting = screen.matches("waiting for the service (connection refused); retrying for up to").count();
    assert_eq!(waiting, 1, "one line for the outage, not one per attempt:\n{screen}");
    assert!(!screen.contains("WARN"), "no log lines: {screen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oss_port_as_endpoint_is_named_as_not_vod_and_not_retried() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_video(dir.path(), 100_000);
    let command = upload(&aimed_at(&server, &server.oss_url), dir.path(), "video", file.to_str().unwrap());
    let outcome = run(command).await;
    assert_eq!(outcome.code, Some(3), "a wrong endpoint is bad input: {}", outcome.stderr);
    assert!(outcome.named("retried").is_empty(), "not retried: {:?}", outcome.events);
    let error = outcome.events.last().unwrap();
    let message = error["Message"].as_str().unwrap();
    assert!(message.contains("is not a VOD endpoint") && message.contains("OSS"), "{message}");
    assert!(!message.contains("<?xml"), "no raw XML: {message}");
    let hint = error["Hint"].as_str().unwrap();
    assert!(hint.contains("--listen") && !hint.contains("re-run later"), "{hint}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plain_http_port_says_use_http_and_is_not_retried() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = write_video(dir.path(), 100_000);
    let https = server.vod_url.replace("http://", "https://");
    let command = upload(&aimed_at(&server, &https), dir.path(), "video", file.to_str().unwrap());
    let started = Instant::now();
    let outcome = run(command).await;
    assert!(started.elapsed() < NO_LONG_WAIT, "did not wait out the default budget");
    assert_eq!(outcome.code, Some(3), "{}", outcome.stderr);
    assert!(outcome.named("retried").is_empty(), "not retried: {:?}", outcome.events);
    let error = outcome.events.last().unwrap();
    let hint = error["Hint"].as_str().unwrap();
    assert!(hint.contains(&format!("use {}", server.vod_url)), "{hint}");
    assert!(hint.contains("speaks plain HTTP"), "{hint}");
    assert!(!error["Message"].as_str().unwrap().contains("corrupt message"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_source_answering_404_says_the_file_is_missing_there() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("origin");
    std::fs::create_dir(&root).unwrap();
    let origin = OriginServer::start(root, OriginOptions::default()).await;
    let url = origin.url("videos/missing.mp4");
    let outcome = run(upload(&server, dir.path(), "video", &url)).await;
    assert_eq!(outcome.code, Some(3), "{}", outcome.stderr);
    assert!(outcome.named("retried").is_empty(), "a 404 is not retried: {:?}", outcome.events);
    let error = outcome.events.last().unwrap();
    assert_eq!(error["ErrorKind"], "not_found");
    let message = error["Message"].as_str().unwrap();
    assert!(message.contains(&format!("the file is missing at {url}")), "{message}");
    assert!(message.contains("404"), "{message}");
    let hint = error["Hint"].as_str().unwrap();
    assert!(!hint.contains("reachable") && hint.contains("path"), "the server was reachable: {hint}");
}

/// Every error a user can provoke from outside gets a `hint` string in its JSON error line (issue 13: a
/// network failure had `"hint": null`). The kinds only a fault inside can cause are covered by the
/// CLI's unit test of the error line over every kind.
#[tokio::test(flavor = "multi_thread")]
async fn every_error_line_carries_a_hint() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (video, _) = write_video(dir.path(), 100_000);
    let exe = dir.path().join("tool.exe");
    std::fs::write(&exe, b"MZ").unwrap();
    let missing = dir.path().join("missing.mp4");
    let (vod, dead) = (&server.vod_url, &format!("http://127.0.0.1:{}", dead_port()));
    /// An upload of `source` to `endpoint` with one variable set, expected to fail with `kind`.
    struct Case<'a> {
        kind: &'a str,
        source: &'a Path,
        endpoint: &'a str,
        env: (&'a str, &'a str),
    }
    let secret = server.key_secret.expose();
    let cases = [
        Case { kind: "invalid_input", source: &exe, endpoint: vod, env: ("VODUP_RETRY_FOR", "60") },
        Case { kind: "not_found", source: &missing, endpoint: vod, env: ("VODUP_RETRY_FOR", "60") },
        Case {
            kind: "permission_denied",
            source: &video,
            endpoint: vod,
            env: ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &format!("not-{secret}")),
        },
        Case { kind: "network", source: &video, endpoint: dead, env: ("VODUP_RETRY_FOR", "0") },
    ];
    for Case { kind, source, endpoint, env } in cases {
        let mut command = upload(&aimed_at(&server, endpoint), dir.path(), "video", source.to_str().unwrap());
        command.env(env.0, env.1);
        let outcome = run(command).await;
        let error = outcome.events.last().unwrap_or_else(|| panic!("{kind}: no output: {}", outcome.stderr));
        assert_eq!(error["Event"], "error", "{kind}: {error}");
        assert_eq!(error["ErrorKind"], kind, "{error}");
        let hint = error["Hint"].as_str().unwrap_or_else(|| panic!("{kind}: no hint: {error}"));
        assert!(hint.len() > 10, "{kind}: a real hint: {error}");
        assert_ne!(outcome.code, Some(0));
        assert_eq!(error["ExitCode"].as_i64(), outcome.code.map(i64::from), "{error}");
    }
}
