//! `vodup upload` killed with SIGKILL at each step of a file's life (the SDK's fault points, named by
//! `VODUP_FAULT`), then the same command run again. The re-run must succeed with the media whole and
//! `Normal`, and must be the same media item whenever the killed run had recorded it in its checkpoint.
//! A kill after the commit (the media complete in the service, the checkpoint not yet removed) must be
//! recognised from the service's own figures (status, size, CRC-64) and not upload a byte again.
//!
//! A plain kill at a random moment almost never lands between a commit and its record, which is how a
//! re-run once failed with "the parts add up to 0 bytes": the points make every window a test case. Each
//! round gets a fresh server and checkpoint folder, so what one round leaves cannot hide another's bug.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::{TestServer, have_ffmpeg, make_hls, make_png, skip};

use super::support::{Outcome, file_crc, parse_lines, read_back, run, run_ok, upload};

/// Runs `command` with the fault point armed and requires that it was killed there.
async fn killed_at(mut command: Command, point: &str) -> Vec<Value> {
    command.env("VODUP_FAULT", point);
    let output = command.output().await.expect("vodup runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(9),
        "the run was not killed at {point} (exit {:?}); stderr: {stderr}",
        output.status.code()
    );
    assert!(stderr.contains(&format!("fault point {}", point.split(':').next().unwrap())), "{stderr}");
    parse_lines(&output.stdout)
}

/// The media ids the `created` events of a run announced.
fn created(events: &[Value]) -> Vec<String> {
    events.iter().filter(|e| e["Event"] == "created").map(result_id).collect()
}

/// The id a result line names, whatever the media type.
fn result_id(result: &Value) -> String {
    ["VideoId", "ImageId", "MediaId"]
        .iter()
        .find_map(|f| result[f].as_str())
        .unwrap_or_else(|| panic!("no id in {result}"))
        .to_owned()
}

/// `Status` of an image (GetImageInfo) or a video (GetVideoInfo).
async fn status(server: &TestServer, kind: &str, id: &str) -> String {
    if kind == "image" {
        let reply = server.vod("GetImageInfo", &[("ImageId", id)]).await;
        return reply.body["ImageInfo"]["Status"].as_str().unwrap_or_default().to_owned();
    }
    let reply = server.vod("GetVideoInfo", &[("VideoId", id)]).await;
    reply.body["Video"]["Status"].as_str().unwrap_or_default().to_owned()
}

/// Every video of the catalogue: id → status.
async fn all_videos(server: &TestServer) -> HashMap<String, String> {
    let reply = server.vod("GetVideoList", &[("PageSize", "100")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list = reply.body["VideoList"]["Video"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|v| (v["VideoId"].as_str().unwrap().to_owned(), v["Status"].as_str().unwrap().to_owned()))
        .collect()
}

/// Checks that an M3U8 upload's segments read back as the files in `hls/seg`.
async fn check_segments(server: &TestServer, playlist_key: &str, hls: &Path) {
    let prefix = format!("{}/", playlist_key.rsplit_once('/').unwrap().0);
    for entry in std::fs::read_dir(hls.join("seg")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(read_back(server, &format!("{prefix}{name}")).await, file_crc(&path), "segment {name}");
    }
}

/// One single-file case: the command's media type and source, and the kill points it goes through.
struct Case {
    kind: &'static str,
    source: PathBuf,
    args: Vec<&'static str>,
    points: Vec<String>,
}

fn points(names: &[(&str, u32)]) -> Vec<String> {
    names.iter().flat_map(|(name, hits)| (1..=*hits).map(move |n| format!("upload-{name}:{n}"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn single_uploads_killed_at_every_step_finish_as_one_whole_media_item() {
    if !have_ffmpeg() {
        return skip("ffmpeg is not installed (it makes the image and the HLS playlist)");
    }
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    // 4 parts of 1 MiB, the last one short.
    write_random_file(&video, (3 << 20) + 123_457, 7).unwrap();
    let image = dir.path().join("cover.png");
    make_png(&image).unwrap();
    let hls = dir.path().join("hls");
    let playlist = make_hls(&hls).unwrap();
    let segments = u32::try_from(std::fs::read_dir(hls.join("seg")).unwrap().count()).unwrap();
    assert!(segments >= 3, "ffmpeg made {segments} segments");

    let common: &[(&str, u32)] = &[("created", 1), ("checkpointed", 1)];
    let tail: &[(&str, u32)] = &[("committing", 1), ("committed", 1), ("finished", 1)];
    let cases = [
        Case {
            kind: "video",
            source: video,
            args: vec!["--part-size", "1M", "--parallel", "2"],
            points: points(
                &[common, &[("initiated", 1), ("part-sent", 4), ("part-recorded", 4)], tail].concat(),
            ),
        },
        Case { kind: "image", source: image, args: vec![], points: points(&[common, tail].concat()) },
        Case {
            kind: "m3u8",
            source: playlist,
            args: vec!["--parallel", "2"],
            points: points(&[common, &[("segment-sent", segments)], tail].concat()),
        },
    ];
    let mut rounds = 0;
    for case in &cases {
        for point in &case.points {
            kill_and_rerun(case, point, &hls).await;
            rounds += 1;
        }
    }
    assert!(rounds >= 20, "{rounds} kill points");
}

async fn kill_and_rerun(case: &Case, point: &str, hls: &Path) {
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let command = || {
        let mut command = upload(&server, work.path(), case.kind, case.source.to_str().unwrap());
        command.args(&case.args);
        command
    };
    let first = killed_at(command(), point).await;
    let received_before = server.metric("vodup_bytes_received_total").await;
    let outcome = run_ok(command()).await;
    let sent_again = server.metric("vodup_bytes_received_total").await - received_before;
    let result = outcome.result();
    let id = result_id(result);
    let context = format!("{} killed at {point}: {result}\nstderr: {}", case.kind, outcome.stderr);
    let key = result["Key"].as_str().unwrap();

    // Whole: the object reads back as the source (a playlist as what the result says, its segments as
    // the files), and the media is Normal.
    let read = read_back(&server, key).await;
    assert_eq!(read.0.to_string(), result["Crc64"].as_str().unwrap(), "{context}");
    if case.kind == "m3u8" {
        check_segments(&server, key, hls).await;
    } else {
        assert_eq!(read, file_crc(&case.source), "{context}");
    }
    let media_type = if case.kind == "image" { "image" } else { "video" };
    assert_eq!(status(&server, media_type, &id).await, "Normal", "{context}");

    // The same media item whenever the killed run had recorded it; a new one only after the
    // checkpoint was gone (before it was written, or after the upload finished and removed it).
    let created = created(&first);
    assert_eq!(created.len(), 1, "the killed run created one media item: {context}");
    let recorded = !point.starts_with("upload-created") && !point.starts_with("upload-finished");
    if recorded {
        assert_eq!(id, created[0], "the re-run went on with the killed run's media: {context}");
    } else {
        // The killed run's media stays as it was left: whole after `finished`, never half-visible.
        let earlier = status(&server, media_type, &created[0]).await;
        let expected = if point.starts_with("upload-finished") { "Normal" } else { "Uploading" };
        assert_eq!(earlier, expected, "{context}");
    }
    // After the commit, nothing is sent again: the service's figures say the media is whole.
    let whole_notice = outcome
        .named("notice")
        .iter()
        .any(|n| n["Message"].as_str().is_some_and(|m| m.contains("already uploaded whole")));
    if point.starts_with("upload-committed") {
        assert_eq!(sent_again, 0.0, "bytes sent again after the commit: {context}");
        assert!(whole_notice, "the re-run says why nothing was sent: {context}");
    } else {
        assert!(!whole_notice, "{context}");
    }
    if point.starts_with("upload-committing") && case.kind == "video" {
        assert_eq!(sent_again, 0.0, "every part was on the server; only Complete was left: {context}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_killed_at_every_step_reruns_to_one_whole_video_per_file() {
    if !have_ffmpeg() {
        return skip("ffmpeg is not installed (it makes the HLS playlist)");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(&root).unwrap();
    write_random_file(&root.join("a-large.mp4"), (3 << 20) + 99, 1).unwrap();
    write_random_file(&root.join("b-small.mp4"), 200_000, 2).unwrap();
    make_hls(&root.join("c-hls")).unwrap();
    let points = [
        "upload-created:1",
        "upload-created:3",
        "upload-checkpointed:2",
        "upload-initiated:1",
        "upload-part-sent:2",
        "upload-part-recorded:3",
        "upload-segment-sent:2",
        "upload-committing:1",
        "upload-committed:1",
        "upload-committed:3",
        "upload-finished:2",
        "upload-finished:3",
    ];
    for point in points {
        let server = TestServer::start().await;
        let work = tempfile::tempdir().unwrap();
        let command = || {
            let mut command = upload(&server, work.path(), "video", root.to_str().unwrap());
            command.args(["--recursive", "--jobs", "2", "--part-size", "1M"]);
            command
        };
        killed_at(command(), point).await;
        let second: Outcome = run(command()).await;
        let context =
            format!("batch killed at {point}: {:?}\nstderr: {}", second.events.last(), second.stderr);
        assert_eq!(second.code, Some(0), "{context}");
        let summary = second.events.last().unwrap();
        assert_eq!(summary["Event"], "summary", "{context}");
        assert_eq!(summary["Failed"], 0, "{context}");
        assert_eq!(summary["Done"].as_u64().unwrap() + summary["Skipped"].as_u64().unwrap(), 3, "{context}");
        // Exactly one video per file, all Normal: strays of the killed run are deleted, none uploaded twice.
        let videos = all_videos(&server).await;
        assert_eq!(videos.len(), 3, "{videos:?} {context}");
        assert!(videos.values().all(|s| s == "Normal"), "{videos:?} {context}");
        for result in second.named("result") {
            let file = PathBuf::from(result["File"].as_str().unwrap());
            assert!(videos.contains_key(&result_id(result)), "{result} {context}");
            if let Some(key) = result["Key"].as_str()
                && file.extension().is_some_and(|e| e == "mp4")
            {
                assert_eq!(read_back(&server, key).await, file_crc(&file), "{context}");
            }
        }
    }
}

/// A batch keeps a per-file checkpoint only for files that have parts to resume: a file sent in one
/// PutObject is found again through the journal (and its ReferenceId), so it writes none (issue 15: two
/// fsyncs per file were most of a small file's client time). Killed once both files are past that step,
/// the folder holds the journal and the multipart file's checkpoint only; the re-run still ends with one
/// whole video per file.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_checkpoints_only_the_files_it_sends_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(&root).unwrap();
    write_random_file(&root.join("a-large.mp4"), (3 << 20) + 7, 11).unwrap();
    write_random_file(&root.join("b-small.mp4"), 300_000, 12).unwrap();
    let server = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let command = || {
        let mut command = upload(&server, work.path(), "video", root.to_str().unwrap());
        command.args(["--recursive", "--jobs", "2", "--part-size", "1M", "--limit-rate", "1M"]);
        command
    };
    // Both files pass the step in either order; at 1 MiB/s the large one is still sending its parts.
    killed_at(command(), "upload-checkpointed:2").await;
    let mut names: Vec<String> = std::fs::read_dir(work.path().join("checkpoints"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") || name.ends_with(".jsonl"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "the journal and one checkpoint: {names:?}");
    assert!(names.iter().any(|n| n.starts_with("batch-")), "{names:?}");
    let checkpoint = names.iter().find(|n| !n.starts_with("batch-")).unwrap();
    let text = std::fs::read_to_string(work.path().join("checkpoints").join(checkpoint)).unwrap();
    assert!(text.contains("a-large.mp4") && !text.contains("b-small.mp4"), "{text}");

    let second: Outcome = run(command()).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let videos = all_videos(&server).await;
    assert_eq!(videos.len(), 2, "{videos:?}");
    assert!(videos.values().all(|s| s == "Normal"), "{videos:?}");
    for result in second.named("result") {
        let file = PathBuf::from(result["File"].as_str().unwrap());
        assert_eq!(read_back(&server, result["Key"].as_str().unwrap()).await, file_crc(&file));
    }
}

/// A request kept back: method, path with query, headers, body.
type Held = (axum::http::Method, String, axum::http::HeaderMap, bytes::Bytes);

/// A VOD proxy for [`a_create_that_lands_after_the_rerun_looked_is_removed`]: while `holding`, it keeps
/// CreateUploadVideo requests back (they never reach the service, their client waits); once released, it
/// passes everything, and the first GetVideoInfo by ReferenceId after that makes it send the held request
/// on before it answers: the create of a killed run that lands just after the re-run has looked for it.
#[derive(Clone)]
struct HoldingProxy {
    target: String,
    client: reqwest::Client,
    holding: Arc<AtomicBool>,
    held: Arc<Mutex<Option<Held>>>,
    held_one: Arc<tokio::sync::Notify>,
}

impl HoldingProxy {
    async fn start(target: &str) -> (Self, String) {
        let proxy = Self {
            target: target.to_owned(),
            client: reqwest::Client::new(),
            holding: Arc::new(AtomicBool::new(true)),
            held: Arc::default(),
            held_one: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(Self::handle).with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (proxy, url)
    }

    async fn handle(
        axum::extract::State(proxy): axum::extract::State<Self>,
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: axum::http::HeaderMap,
        body: bytes::Bytes,
    ) -> axum::response::Response {
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        // The action is a parameter (RPC v1 signature) or the `x-acs-action` header (ACS3).
        let action = headers.get("x-acs-action").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let text = format!("{path}&{}&Action={action}", String::from_utf8_lossy(&body));
        if text.contains("Action=CreateUploadVideo") && proxy.holding.load(Ordering::SeqCst) {
            *proxy.held.lock().unwrap() = Some((method, path, headers, body));
            proxy.held_one.notify_one();
            return std::future::pending().await;
        }
        let answer = proxy.forward(&method, &path, &headers, body).await;
        if text.contains("Action=GetVideoInfo") && text.contains("ReferenceId=") {
            let held = proxy.held.lock().unwrap().take();
            if let Some((method, path, headers, body)) = held {
                let late = proxy.forward(&method, &path, &headers, body).await;
                assert_eq!(late.status(), 200, "the held create is accepted when it lands");
            }
        }
        answer
    }

    async fn forward(
        &self,
        method: &axum::http::Method,
        path: &str,
        headers: &axum::http::HeaderMap,
        body: bytes::Bytes,
    ) -> axum::response::Response {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.target)).body(body);
        // Every header goes as it came, Host included: ACS3 signs it.
        for (name, value) in headers {
            if name != axum::http::header::CONTENT_LENGTH {
                request = request.header(name, value);
            }
        }
        let reply = request.send().await.expect("the service answers");
        let status = reply.status();
        let reply_headers = reply.headers().clone();
        let mut response =
            axum::response::Response::new(axum::body::Body::from(reply.bytes().await.unwrap()));
        *response.status_mut() = status;
        for (name, value) in &reply_headers {
            if name != axum::http::header::CONTENT_LENGTH && name != axum::http::header::TRANSFER_ENCODING {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

/// A batch run is killed while its CreateUploadVideo is on the way; that create lands only after the
/// re-run has looked for the run's ReferenceId and found nothing. The re-run must neither fail on the
/// ReferenceId (it used to: "already used by another video") nor leave the late video behind: the file
/// ends as exactly one whole video.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_lands_after_the_rerun_looked_is_removed() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(&root).unwrap();
    write_random_file(&root.join("late.mp4"), 300_000, 7).unwrap();
    let (proxy, url) = HoldingProxy::start(&server.vod_url).await;
    let mut via = (*server).clone();
    via.vod_url = url;
    let work = tempfile::tempdir().unwrap();
    let command = || {
        let mut command = upload(&via, work.path(), "video", root.to_str().unwrap());
        command.arg("--recursive");
        command
    };

    let mut first = command().spawn().expect("vodup runs");
    tokio::time::timeout(Duration::from_secs(30), proxy.held_one.notified())
        .await
        .expect("the first run sends its CreateUploadVideo");
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert!(all_videos(&server).await.is_empty(), "the held create has not landed yet");

    proxy.holding.store(false, Ordering::SeqCst);
    let second = run(command()).await;
    let context = format!("{:?}\nstderr: {}", second.events.last(), second.stderr);
    assert_eq!(second.code, Some(0), "{context}");
    assert!(proxy.held.lock().unwrap().is_none(), "the held create landed during the re-run");
    let videos = all_videos(&server).await;
    assert_eq!(videos.len(), 1, "exactly one video for the file: {videos:?} {context}");
    assert!(videos.values().all(|s| s == "Normal"), "{videos:?}");
    let summary = second.events.last().unwrap();
    assert_eq!(
        summary["Cleaned"].as_array().map(Vec::len),
        Some(1),
        "the late video is reported cleaned: {context}"
    );
}
