//! The README's quick start, run as written: the `sh` blocks that follow the quick-start marker comment
//! in README.md are read from the file at test time and run, in order, as one bash script in an empty
//! folder, with the `vodup` under test first on PATH. Change the page and this test runs the changed
//! commands; nothing in them is substituted.
//!
//! What the test supplies is only what a reader's machine would: an empty folder, a home directory,
//! PATH, and the two listen addresses the README says move the service (`VODUP_LISTEN`,
//! `VODUP_OSS_LISTEN`), set to free ports so parallel tests never collide; the README derives
//! `VODUP_ENDPOINT` from the first with the default a reader gets. The script runs under `bash -e -o
//! pipefail`, so any command that fails (the upload's own CRC-64 check, the download's, `cmp`) fails the
//! test. The service the script backgrounds is in the script's process group, which the test kills
//! whatever happens.
//!
//! Then the test checks the outcome itself: the download's result line names a file whose CRC-64 and
//! size are the ones it reports, and that file is byte for byte a file the script made and uploaded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::support::file_crc;

/// How a quick-start block is marked in README.md (an HTML comment: invisible on the rendered page).
const MARKER: &str = "<!-- quick start: crates/cli/tests/it/readme.rs runs";

/// Long enough for a slow machine; the script itself waits for nothing longer than the service's start.
const DEADLINE: Duration = Duration::from_secs(300);

/// The commands of every `sh` block right after a marker line, in order. A marker not followed by an
/// `sh` block is an error, so a broken marker cannot make the test run less.
fn quick_start(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with(MARKER) {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a quick-start marker must be followed by a ```sh block");
        let mut block = String::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        blocks.push(block);
    }
    blocks
}

/// A port nothing listens on right now. (Released before the service binds it: another process could
/// take it in between, which on loopback in a test run is not seen in practice.)
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills a process group when dropped: the script and the service it started in the background.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{id}")]).status();
        }
    }
}

/// The `VideoId <id>  <n> bytes  CRC-64 <crc>  <path>` line of `vodup download`: (id, size, crc, path).
fn download_line(stdout: &str) -> Option<(String, u64, u64, String)> {
    stdout.lines().find_map(|line| {
        let rest = line.strip_prefix("VideoId ")?;
        let (id, rest) = rest.split_once("  ")?;
        let (size, rest) = rest.split_once(" bytes  CRC-64 ")?;
        let (crc, path) = rest.split_once("  ")?;
        Some((id.to_owned(), size.parse().ok()?, crc.parse().ok()?, path.to_owned()))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quick_start_uploads_and_downloads_as_written() {
    if !std::process::Command::new("curl").arg("--version").output().is_ok_and(|o| o.status.success()) {
        vodup_testkit::skip("the README's quick start uses curl, which is not installed");
        return;
    }
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let blocks = quick_start(&readme);
    assert!(blocks.len() >= 2, "README.md has no quick start marked with {MARKER:?}");
    let script = blocks.concat();

    let temp = tempfile::tempdir().unwrap();
    let (work, home, bin) = (temp.path().join("work"), temp.path().join("home"), temp.path().join("bin"));
    for dir in [&work, &home, &bin] {
        std::fs::create_dir(dir).unwrap();
    }
    // Only `vodup` is put in front: the rest of PATH (bash, curl, awk, cmp) is the machine's own.
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_vodup"), bin.join("vodup")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c", &script])
        .current_dir(&work)
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("VODUP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("VODUP_OSS_LISTEN", format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().expect("bash runs");
    let _group = ProcessGroup(child.id());
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output()).await;
    let serve_log = || std::fs::read_to_string(work.join("serve.log")).unwrap_or_default();
    let output = match output {
        Ok(output) => output.unwrap(),
        Err(_) => panic!("the quick start did not finish in {DEADLINE:?}\nserve.log:\n{}", serve_log()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the quick start failed ({}):\n--- script\n{script}--- stdout\n{stdout}--- stderr\n{stderr}--- serve.log\n{}",
        output.status,
        serve_log()
    );

    let (video_id, size, crc, downloaded) = download_line(&stdout)
        .unwrap_or_else(|| panic!("no `vodup download` result line in the output:\n{stdout}"));
    assert_eq!(video_id.len(), 32, "VideoId {video_id:?}");
    let downloaded = work.join(downloaded);
    assert_eq!(file_crc(&downloaded), (crc, size), "the downloaded file is not what download reported");
    let bytes = std::fs::read(&downloaded).unwrap();
    let sources: Vec<PathBuf> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && *p != downloaded && std::fs::read(p).is_ok_and(|b| b == bytes))
        .collect();
    assert_eq!(
        sources.len(),
        1,
        "the download should equal the one file the quick start uploaded: {sources:?}"
    );
}

#[test]
fn only_marked_sh_blocks_are_taken() {
    let readme = format!(
        "```sh\ncargo install x\n```\n{MARKER} below -->\n```sh\necho one\necho two\n```\ntext\n\
         ```sh\necho not marked\n```\n{MARKER} too -->\n```sh\necho three\n```\n"
    );
    assert_eq!(quick_start(&readme), ["echo one\necho two\n", "echo three\n"]);
    let result = std::panic::catch_unwind(|| quick_start(&format!("{MARKER} -->\n```text\nx\n```\n")));
    assert!(result.is_err(), "a marker before a block that is not sh must fail");
}
