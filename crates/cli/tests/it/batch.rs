//! Batch uploads as users run them: a folder of 200 small videos, 5 large ones and an HLS playlist,
//! killed with SIGKILL partway and run again, ends with exactly one `Normal` video per file and no stray
//! `Uploading` entry; memory with 8 jobs stays bounded by the shared part slots; a file that vanishes
//! mid-batch fails alone with a clear reason and exit code 9.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::rss::PeakRss;
use vodup_testkit::{TestServer, have_ffmpeg, make_hls, skip};

use super::support::{file_crc, parse_lines, read_back, run, upload};

const LIMIT: u64 = 80 << 20;

/// Every video of the catalogue: id → status.
async fn all_videos(server: &TestServer) -> HashMap<String, String> {
    let mut videos = HashMap::new();
    for page in 1.. {
        let reply = server.vod("GetVideoList", &[("PageNo", &page.to_string()), ("PageSize", "100")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let list = reply.body["VideoList"]["Video"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            break;
        }
        for video in list {
            videos.insert(
                video["VideoId"].as_str().unwrap().to_owned(),
                video["Status"].as_str().unwrap().to_owned(),
            );
        }
    }
    videos
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap().to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_batch_reruns_to_exactly_one_normal_video_per_file() {
    if !have_ffmpeg() {
        return skip("ffmpeg is not installed; the batch needs an HLS playlist");
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    let mut files: Vec<PathBuf> = Vec::new();
    // Named so the walk meets the small files first: by the time the large ones start, many files are
    // done, and the kill below catches a large file half done.
    std::fs::create_dir_all(root.join("1-small")).unwrap();
    for i in 0..200u64 {
        let path = root.join("1-small").join(format!("clip-{i:03}.mp4"));
        write_random_file(&path, 16_000 + (i * 7919) % 180_000, i).unwrap();
        files.push(path);
    }
    std::fs::create_dir_all(root.join("2-large")).unwrap();
    for i in 0..5u64 {
        let path = root.join("2-large").join(format!("big-{i}.mp4"));
        write_random_file(&path, (40 << 20) + i * 1_000_003, 1000 + i).unwrap();
        files.push(path);
    }
    let playlist = make_hls(&root.join("3-hls")).unwrap();
    let command = |limit: bool| {
        let mut command = upload(&server, dir.path(), "video", root.to_str().unwrap());
        command.args(["--recursive", "--jobs", "8", "--part-size", "8M"]);
        if limit {
            command.args(["--limit-rate", "8M"]);
        }
        command
    };

    // Killed once 40 files are done and a large file has a part acknowledged (so it is half done).
    let mut child = command(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_results: Vec<Value> = Vec::new();
    let mut large_parts = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["Event"] == "result" {
            first_results.push(event);
        } else if event["Event"] == "part_sent"
            && event["File"].as_str().is_some_and(|f| f.contains("/2-large/"))
        {
            large_parts += 1;
        }
        if first_results.len() >= 40 && large_parts >= 1 {
            child.start_kill().unwrap();
            break;
        }
    }
    assert!(!child.wait().await.unwrap().success(), "the first run was killed");
    assert!(first_results.len() >= 40 && large_parts >= 1, "the first run got partway");
    let first_done = first_results.len() as u64;
    let stray_before = all_videos(&server).await.values().filter(|s| *s == "Uploading").count();
    assert!(stray_before > 0, "the kill left uploads in flight");

    let second = run(command(false)).await;
    assert_eq!(second.code, Some(0), "the re-run succeeds: {}", second.stderr);
    let summary = second.events.last().unwrap();
    assert_eq!(summary["Event"], "summary", "{summary}");
    assert_eq!(summary["Files"], 206, "200 small, 5 large, 1 playlist: {summary}");
    assert_eq!(summary["Failed"], 0, "{summary}");
    let (done, skipped) = (summary["Done"].as_u64().unwrap(), summary["Skipped"].as_u64().unwrap());
    assert_eq!(done + skipped, 206, "{summary}");
    assert!(skipped >= first_done, "what the first run finished is skipped: {summary}");
    let resumed: u64 = second.named("result").iter().filter_map(|r| r["ResumedParts"].as_u64()).sum();
    eprintln!("re-run: {summary}; parts resumed {resumed}");
    assert!(resumed >= 1, "half-done large files resumed their acknowledged parts");

    // Exactly one Normal video per file, nothing left Uploading.
    let videos = all_videos(&server).await;
    let uploading: Vec<_> = videos.iter().filter(|(_, s)| *s != "Normal").collect();
    assert!(uploading.is_empty(), "videos not Normal: {uploading:?}");
    assert_eq!(videos.len(), 206, "one video per file");
    let results: Vec<&Value> =
        first_results.iter().chain(second.events.iter().filter(|e| e["Event"] == "result")).collect();
    let mut media_of: HashMap<String, String> = HashMap::new();
    for result in &results {
        let file = result["File"].as_str().unwrap().to_owned();
        let id = result["VideoId"].as_str().unwrap().to_owned();
        if let Some(earlier) = media_of.insert(file.clone(), id.clone()) {
            assert_eq!(earlier, id, "{file} has one video across both runs");
        }
    }
    let ids: HashSet<&String> = media_of.values().collect();
    assert_eq!((media_of.len(), ids.len()), (206, 206), "every file reported, each with its own video");

    // The bytes read back are the files' bytes (the playlist is rewritten, so it is checked by status).
    let mut checked = 0;
    for result in results.iter().filter(|r| r["Key"].is_string()) {
        let file = PathBuf::from(result["File"].as_str().unwrap());
        if file == std::path::absolute(&playlist).unwrap() {
            continue;
        }
        assert_eq!(
            read_back(&server, result["Key"].as_str().unwrap()).await,
            file_crc(&file),
            "{}",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 200, "bytes checked for {checked} files");
    assert!(files.iter().all(|f| media_of.contains_key(&absolute(f))));
    assert!(media_of.contains_key(&absolute(&playlist)), "the playlist is one video");
    let segments = std::fs::read_dir(root.join("3-hls/seg")).unwrap().count();
    assert_eq!(media_of.len(), 206, "its {segments} segments are not videos of their own");
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_jobs_share_four_part_slots_and_stay_under_80_mib() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..8u64 {
        write_random_file(&root.join(format!("f{i}.mp4")), 48 << 20, 50 + i).unwrap();
    }
    let mut command = upload(&server, dir.path(), "video", root.to_str().unwrap());
    command.args(["--jobs", "8", "--parallel", "4", "--part-size", "8M", "--no-resume"]);
    let child = command.spawn().unwrap();
    let watch = PeakRss::watch(child.id().unwrap());
    let output = child.wait_with_output().await.unwrap();
    let peak = watch.stop();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let events = parse_lines(&output.stdout);
    assert_eq!(events.last().unwrap()["Done"], 8);
    eprintln!("peak RSS of 8 jobs × 48 MiB, --parallel 4 --part-size 8M: {:.1} MiB", peak as f64 / 1048576.0);
    assert!(peak < LIMIT, "peak RSS {peak} bytes is over {LIMIT}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_vanishes_mid_batch_fails_alone_with_exit_code_9() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..12u64 {
        write_random_file(&root.join(format!("v{i:02}.mp4")), 2 << 20, 80 + i).unwrap();
    }
    let doomed = root.join("v09.mp4");
    let mut command = upload(&server, dir.path(), "video", root.to_str().unwrap());
    command.args(["--jobs", "1", "--limit-rate", "8M"]);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["Event"] == "result" && events.iter().all(|e: &Value| e["Event"] != "result") {
            std::fs::remove_file(&doomed).unwrap();
        }
        events.push(event);
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(9), "exit code 9: some files failed");
    let summary = events.last().unwrap();
    assert_eq!((summary["Done"].as_u64(), summary["Failed"].as_u64()), (Some(11), Some(1)), "{summary}");
    let failure = &summary["Failures"][0];
    assert_eq!(failure["File"], absolute(&doomed));
    let message = failure["Message"].as_str().unwrap();
    assert!(message.contains("No such file") && message.contains("v09.mp4"), "a clear reason: {message}");
    assert!(failure["Hint"].is_string(), "and what to do next: {failure}");
    let errors: Vec<&Value> = events.iter().filter(|e| e["Event"] == "error").collect();
    assert_eq!(errors.len(), 1, "one error line, for that file");
    assert_eq!(errors[0]["File"], absolute(&doomed));
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_region_come_from_an_aliyun_cli_profile() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 100_000, 7).unwrap();
    let config = dir.path().join("config.json");
    let profiles = serde_json::json!({
        "current": "other",
        "profiles": [
            {"name": "other", "mode": "AK", "access_key_id": "LTAInotvalid", "access_key_secret": "x"},
            {"name": "vodup", "mode": "AK", "access_key_id": server.key_id, "access_key_secret": server.key_secret.expose(), "region_id": "cn-beijing"}
        ]
    });
    std::fs::write(&config, profiles.to_string()).unwrap();
    let command = |profile: Option<&str>| {
        let mut command = upload(&server, dir.path(), "video", file.to_str().unwrap());
        command
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .env_remove("ALIBABA_CLOUD_PROFILE")
            .env("ALIBABA_CLOUD_CONFIG_FILE", &config)
            .arg("--no-resume");
        if let Some(profile) = profile {
            command.args(["--profile", profile]);
        }
        command
    };
    let named = run(command(Some("vodup"))).await;
    assert_eq!(named.code, Some(0), "{}", named.stderr);
    // Without --profile the file's current profile is used, and its key is refused.
    let current = run(command(None)).await;
    assert_eq!(current.code, Some(4), "{}", current.stderr);
    let missing = run(command(Some("nope"))).await;
    assert_eq!(missing.code, Some(3));
    assert!(missing.stderr.contains("other, vodup"), "{}", missing.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_refuses_stdin_and_an_empty_selection_before_any_request() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.mp4");
    write_random_file(&file, 1000, 1).unwrap();
    let mut with_stdin = upload(&server, dir.path(), "video", file.to_str().unwrap());
    with_stdin.arg("-");
    let refused = run(with_stdin).await;
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains("standard input cannot be part of a batch"), "{}", refused.stderr);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"not a video").unwrap();
    let nothing = run(upload(&server, dir.path(), "video", empty.to_str().unwrap())).await;
    assert_eq!(nothing.code, Some(3), "{}", nothing.stderr);
    assert!(nothing.stderr.contains("no file to upload"), "{}", nothing.stderr);
    let last = nothing.events.last().unwrap();
    assert_eq!((last["Event"].as_str(), last["ExitCode"].as_u64()), (Some("error"), Some(3)));
    assert_eq!(server.metric("vodup_requests_total").await, 0.0, "nothing was sent");
}
