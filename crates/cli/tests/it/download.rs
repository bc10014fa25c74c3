//! `vodup download` against a real `vodup serve`: a file uploaded with `vodup upload` comes back byte for
//! byte (to a file, over an old one, and to stdout); an unknown id, a video still uploading and an
//! object without a CRC-64 are refused with what to do next; a stored object damaged on disk fails the
//! CRC-64 check with the checksum exit code, and the target file is left as it was.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::proxy::{CorruptingProxy, Corruption};
use vodup_testkit::{TestServer, random_bytes};

use super::support::{file_crc, parse_lines, run, run_ok, upload};

/// `vodup download ID -o OUTPUT` aimed at `server` through the environment, as a user would set it up.
fn download(server: &TestServer, id: &str, output: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vodup"));
    command
        .arg("download")
        .arg(id)
        .arg("-o")
        .arg(output)
        .env("VODUP_ENDPOINT", &server.vod_url)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &server.key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", server.key_secret.expose())
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env_remove("VODUP_RESOLVE")
        .env_remove("VODUP_CA_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Uploads `file` as `kind` and returns its id.
async fn uploaded(server: &TestServer, dir: &Path, kind: &str, file: &Path) -> String {
    let outcome = run_ok(upload(server, dir, kind, file.to_str().unwrap())).await;
    let id_field = if kind == "image" { "ImageId" } else { "VideoId" };
    outcome.result()[id_field].as_str().expect("media id").to_owned()
}

/// Whether two files hold the same bytes (without printing megabytes when they do not).
fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

/// Files a download may have left beside its target.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".vodup-part"))
        .collect()
}

/// The one JSON line `--json` prints.
fn json_line(stdout: &[u8]) -> Value {
    let lines = parse_lines(stdout);
    assert_eq!(lines.len(), 1, "one line expected: {lines:?}");
    lines.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_video_downloads_byte_for_byte() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    // Three parts of 8 MiB: the object is stored in pieces and read back across them.
    write_random_file(&file, (20 << 20) + 123, 31).unwrap();
    let video_id = uploaded(&server, dir.path(), "video", &file).await;
    let (crc, size) = file_crc(&file);

    let target = dir.path().join("back.mp4");
    let mut command = download(&server, &video_id, &target);
    command.arg("--json");
    let output = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let result = json_line(&output.stdout);
    assert_eq!(result["Event"], "result", "{result}");
    assert_eq!(result["VideoId"], video_id.as_str());
    assert_eq!(result["Size"], size);
    assert_eq!(result["Crc64"], crc.to_string());
    assert_eq!(result["Verified"], true);
    assert_eq!(result["Path"], target.to_str().unwrap());
    assert!(!result["RequestId"].as_str().unwrap().is_empty(), "{result}");
    assert!(same_bytes(&file, &target), "the download differs from the upload");

    // Again, over the file now there, in plain output: the line reads like the upload's.
    std::fs::write(&target, b"an older file").unwrap();
    let output = download(&server, &video_id, &target).output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        line.trim_end(),
        format!("VideoId {video_id}  {size} bytes  CRC-64 {crc}  {}", target.display()),
    );
    assert!(same_bytes(&file, &target), "the download over an old file differs from the upload");

    // To standard output: the bytes there, the result line on stderr.
    let output = download(&server, &video_id, Path::new("-")).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(output.stdout == std::fs::read(&file).unwrap(), "stdout differs from the upload");
    assert!(stderr.starts_with(&format!("VideoId {video_id}  {size} bytes")), "{stderr}");
    assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_image_downloads_with_image() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cover.png");
    std::fs::write(&file, random_bytes(150_000, 32)).unwrap();
    let image_id = uploaded(&server, dir.path(), "image", &file).await;

    let target = dir.path().join("cover-back.png");
    let mut command = download(&server, &image_id, &target);
    command.args(["--image", "--json"]);
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let result = json_line(&output.stdout);
    assert_eq!(result["ImageId"], image_id.as_str(), "{result}");
    assert_eq!(result["Crc64"], file_crc(&file).0.to_string());
    assert!(same_bytes(&file, &target), "the image differs from the upload");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_video_id_is_refused_with_a_hint_and_writes_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("none.mp4");
    let mut command = download(&server, "0123456789abcdef0123456789abcdef", &target);
    command.arg("--json");
    let output = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "bad input: {stderr}");
    assert!(stderr.contains("GetMezzanineInfo") && stderr.contains("InvalidVideo.NotFound"), "{stderr}");
    assert!(stderr.contains("check the id") && stderr.contains(&server.vod_url), "{stderr}");
    let error = json_line(&output.stdout);
    assert_eq!(error["Event"], "error", "{error}");
    assert_eq!(error["ErrorKind"], "not_found");
    assert_eq!(error["Code"], "InvalidVideo.NotFound");
    assert_eq!(error["ExitCode"], 3);
    assert!(error["Hint"].as_str().unwrap().contains("check the id"), "{error}");
    assert!(!target.exists());
    assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_video_still_uploading_is_refused_until_it_is_normal() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let created = server.vod("CreateUploadVideo", &[("Title", "later"), ("FileName", "later.mp4")]).await;
    let video_id = created.body["VideoId"].as_str().expect("VideoId").to_owned();
    let target = dir.path().join("later.mp4");
    let outcome = run(download(&server, &video_id, &target)).await;
    assert_eq!(outcome.code, Some(6), "the service's answer: {}", outcome.stderr);
    assert!(outcome.stderr.contains("is Uploading, not Normal"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("wait until its upload finishes"), "{}", outcome.stderr);
    assert!(!target.exists());
}

/// Every file under the server's data folder that is a stored blob.
fn stored_blobs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.parent().and_then(Path::parent).and_then(Path::file_name)
                == Some(std::ffi::OsStr::new("blobs"))
            {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_object_damaged_on_disk_fails_the_crc_check_and_leaves_the_file_as_it_was() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 1 << 20, 33).unwrap();
    let video_id = uploaded(&server, dir.path(), "video", &file).await;

    // One PutObject, one blob: flip a byte in its middle behind the server's back, as a failing disk would.
    let blobs = stored_blobs(server.dir.path());
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let mut bytes = std::fs::read(&blobs[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blobs[0], &bytes).unwrap();

    let target = dir.path().join("back.mp4");
    std::fs::write(&target, b"the old file").unwrap();
    let outcome = run(download(&server, &video_id, &target)).await;
    assert_eq!(outcome.code, Some(7), "the checksum exit code: {}", outcome.stderr);
    assert!(outcome.stderr.contains("CRC-64") && outcome.stderr.contains("damaged"), "{}", outcome.stderr);
    assert_eq!(std::fs::read(&target).unwrap(), b"the old file", "the old file was replaced");

    let fresh = dir.path().join("fresh.mp4");
    let outcome = run(download(&server, &video_id, &fresh)).await;
    assert_eq!(outcome.code, Some(7), "{}", outcome.stderr);
    assert!(!fresh.exists(), "a file appeared for a download that failed its check");
    assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_without_a_crc64_is_refused_unless_no_verify() {
    let (server, proxy) = TestServer::start_behind(
        |_| {},
        async |oss| {
            let proxy = CorruptingProxy::start(oss, Corruption::PassThrough).await;
            (proxy.url(), proxy)
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 3 << 20, 34).unwrap();
    let video_id = uploaded(&server, dir.path(), "video", &file).await;
    proxy.set_mode(Corruption::NoCrc64OnGet);

    let target = dir.path().join("back.mp4");
    let outcome = run(download(&server, &video_id, &target)).await;
    assert_eq!(outcome.code, Some(6), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("without x-oss-hash-crc64ecma"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("--no-verify"), "{}", outcome.stderr);
    assert!(!target.exists());

    let mut command = download(&server, &video_id, &target);
    command.args(["--no-verify", "--json"]);
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let result = json_line(&output.stdout);
    assert_eq!(result["Verified"], false, "{result}");
    assert_eq!(result["Crc64"], file_crc(&file).0.to_string());
    assert!(same_bytes(&file, &target), "the unverified download differs from the upload");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_with_stdout_output_is_a_usage_error() {
    let server = TestServer::start().await;
    let mut command = download(&server, "0123456789abcdef0123456789abcdef", Path::new("-"));
    command.arg("--json");
    let outcome = run(command).await;
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("-o -"), "{}", outcome.stderr);
}
