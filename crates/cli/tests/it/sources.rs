//! Every source `vodup upload` takes, uploaded and read back through OSS GetObject: a 1 GiB local file,
//! a 300 MB URL and a 100 MB stdin stream (both under a file-size limit far below their size, so a
//! temporary copy would kill the process), an image from a URL, a subtitle, and an ffmpeg HLS playlist
//! with its segments in a subfolder, from disk and from a URL.

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::{have_ffmpeg, make_hls, make_png, make_srt, write_random_file};
use vodup_testkit::origin::{OriginOptions, OriginServer};

use super::support::{assert_uploaded, file_crc, read_back, run_ok, upload, video_status};

/// RLIMIT_FSIZE for sources that must not be copied to disk: the checkpoint fits, a copy does not.
const NO_COPY_LIMIT: &str = "--fsize=1048576";

/// `upload` wrapped in `prlimit` so no file larger than 1 MiB can be written.
fn upload_without_copies(
    server: &TestServer,
    dir: &Path,
    kind: &str,
    source: &str,
) -> tokio::process::Command {
    let inner = upload(server, dir, kind, source);
    let std = inner.as_std();
    let mut command = tokio::process::Command::new("prlimit");
    command.arg(NO_COPY_LIMIT).arg("--").arg(std.get_program()).args(std.get_args());
    for (name, value) in std.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_gib_local_file_uploads_in_parallel_parts_and_reads_back_whole() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.mp4");
    write_random_file(&file, 1 << 30, 1).unwrap();
    let expected = file_crc(&file);
    let outcome = run_ok(upload(&server, dir.path(), "video", file.to_str().unwrap())).await;
    assert_uploaded(&server, &outcome, expected).await;
    let result = outcome.result();
    assert_eq!(result["Parts"], 128, "1 GiB in 8 MiB parts");
    let parts: Vec<u64> =
        outcome.named("part_sent").iter().map(|e| e["PartNumber"].as_u64().unwrap()).collect();
    assert_eq!(parts.len(), 128);
    let video_id = result["VideoId"].as_str().unwrap();
    assert_ne!(video_status(&server, video_id).await, "Uploading", "the upload completed the video");
    assert!(
        !dir.path()
            .join("checkpoints")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().path().extension().is_some_and(|x| x == "json") }),
        "the checkpoint is removed after success"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_300_mb_url_streams_to_oss_without_a_temporary_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let origin_dir = dir.path().join("origin");
    std::fs::create_dir(&origin_dir).unwrap();
    let file = origin_dir.join("movie.mp4");
    write_random_file(&file, 300_000_000, 2).unwrap();
    let expected = file_crc(&file);
    let origin = OriginServer::start(origin_dir.clone(), OriginOptions::default()).await;
    let url = format!("{}?token=abc", origin.url("movie.mp4"));
    let outcome = run_ok(upload_without_copies(&server, dir.path(), "video", &url)).await;
    assert_uploaded(&server, &outcome, expected).await;
    assert!(origin.range_requests() >= 36, "parts were fetched by range ({})", origin.range_requests());

    // An origin without ranges is read as one stream, still without a copy.
    let plain =
        OriginServer::start(origin_dir, OriginOptions { ranges: false, ..OriginOptions::default() }).await;
    let outcome = run_ok(upload_without_copies(&server, dir.path(), "video", &plain.url("movie.mp4"))).await;
    assert_uploaded(&server, &outcome, expected).await;
    assert_eq!(plain.range_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_stdin_stream_uploads_without_a_temporary_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stream.bin");
    write_random_file(&file, 100_000_000, 3).unwrap();
    let expected = file_crc(&file);
    let mut command = upload_without_copies(&server, dir.path(), "video", "-");
    command.args(["--file-name", "live.ts"]).stdin(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = tokio::spawn(async move {
        let mut source = tokio::fs::File::open(&file).await.unwrap();
        tokio::io::copy(&mut source, &mut stdin).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let output = child.wait_with_output().await.unwrap();
    feeder.await.unwrap();
    let outcome = super::support::Outcome {
        code: output.status.code(),
        events: super::support::parse_lines(&output.stdout),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let key = assert_uploaded(&server, &outcome, expected).await;
    assert!(key.ends_with(".ts"), "{key}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_from_a_url_and_a_subtitle_upload_as_their_media_types() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    if !have_ffmpeg() {
        vodup_testkit::skip("ffmpeg is not installed (it makes the test PNG)");
        return;
    }
    let origin_dir = dir.path().join("origin");
    std::fs::create_dir(&origin_dir).unwrap();
    make_png(&origin_dir.join("cover.png")).unwrap();
    let expected = file_crc(&origin_dir.join("cover.png"));
    let origin = OriginServer::start(origin_dir, OriginOptions::default()).await;
    let mut command = upload(&server, dir.path(), "image", &origin.url("cover.png"));
    command.args(["--image-type", "cover", "--title", "Cover"]);
    let outcome = run_ok(command).await;
    assert_uploaded(&server, &outcome, expected).await;
    let image_id = outcome.result()["ImageId"].as_str().unwrap().to_owned();
    let info = server.vod("GetImageInfo", &[("ImageId", &image_id)]).await;
    assert_eq!(info.body["ImageInfo"]["ImageType"], "cover", "{}", info.body);

    let subtitle = dir.path().join("captions.srt");
    make_srt(&subtitle).unwrap();
    let mut command = upload(&server, dir.path(), "attached", subtitle.to_str().unwrap());
    command.args(["--business-type", "subtitle"]);
    let outcome = run_ok(command).await;
    assert_uploaded(&server, &outcome, file_crc(&subtitle)).await;
    assert!(outcome.result()["MediaId"].is_string());
}

/// The rewrite the README documents: URI lines become their base names, blank lines go.
fn documented_rewrite(playlist: &str) -> String {
    let mut out = String::new();
    for line in playlist.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(line.rsplit('/').next().unwrap());
        }
        out.push('\n');
    }
    out
}

async fn check_hls_upload(server: &TestServer, outcome: &super::support::Outcome, hls: &Path) {
    let playlist = std::fs::read_to_string(hls.join("index.m3u8")).unwrap();
    let result = outcome.result();
    let key = result["Key"].as_str().unwrap();
    assert!(key.ends_with(".m3u8"), "{key}");
    let response = server.oss(vodup_testkit::OssCall::new("GET", Some(key), server.key_credential())).await;
    let uploaded = response.text().await.unwrap();
    assert_eq!(uploaded, documented_rewrite(&playlist));
    let prefix = format!("{}/", key.rsplit_once('/').unwrap().0);
    let mut segments = 0;
    for entry in std::fs::read_dir(hls.join("seg")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(read_back(server, &format!("{prefix}{name}")).await, file_crc(&path), "segment {name}");
        segments += 1;
    }
    assert!(segments >= 3, "ffmpeg made {segments} segments");
    assert_eq!(result["Segments"], segments);
    assert_eq!(outcome.named("segment_sent").len(), segments);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hls_playlist_uploads_its_segments_then_the_rewritten_playlist() {
    if !have_ffmpeg() {
        vodup_testkit::skip("ffmpeg is not installed (it makes the HLS fixture)");
        return;
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hls = dir.path().join("hls");
    std::fs::create_dir(&hls).unwrap();
    let playlist = make_hls(&hls).unwrap();
    let outcome = run_ok(upload(&server, dir.path(), "m3u8", playlist.to_str().unwrap())).await;
    check_hls_upload(&server, &outcome, &hls).await;

    // The same playlist from a URL: segments are fetched relative to it.
    let origin = OriginServer::start(hls.clone(), OriginOptions::default()).await;
    let outcome = run_ok(upload(&server, dir.path(), "m3u8", &origin.url("index.m3u8"))).await;
    check_hls_upload(&server, &outcome, &hls).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_before_any_request_and_leaves_the_source_alone() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("tool.exe");
    std::fs::write(&exe, b"MZ").unwrap();
    let before = server.metrics_text().await;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dir.path().join("missing.mp4").display().to_string()], "missing.mp4"),
        (vec![exe.display().to_string()], ".exe"),
        (
            vec![
                exe.display().to_string(),
                "--file-name".into(),
                "a.mp4".into(),
                "--title".into(),
                "x".repeat(200),
            ],
            "128",
        ),
        (vec!["-".into()], "--file-name"),
    ];
    for (args, needle) in cases {
        let mut command = upload(&server, dir.path(), "video", &args[0]);
        command.args(&args[1..]);
        let outcome = super::support::run(command).await;
        assert_eq!(outcome.code, Some(3), "{args:?}: {}", outcome.stderr);
        assert!(outcome.stderr.contains(needle), "{args:?}: {}", outcome.stderr);
        let last = outcome.events.last().unwrap();
        assert_eq!(last["Event"], "error");
        assert_eq!(last["ExitCode"], 3);
    }
    let mut playlist = upload(&server, dir.path(), "m3u8", exe.to_str().unwrap());
    playlist.args(["--file-name", "x.m3u8"]);
    assert_eq!(super::support::run(playlist).await.code, Some(3));
    assert_eq!(server.metrics_text().await, before, "no request reached the service");
    assert_eq!(std::fs::read(&exe).unwrap(), b"MZ");
}
