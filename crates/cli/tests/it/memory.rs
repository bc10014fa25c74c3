//! Bounded memory: with 8 MiB parts and 4 in flight, `vodup upload` of a 4 GiB source stays under
//! 80 MiB of peak RSS (VmHWM from /proc), whether the source is a file, a URL or standard input.
//! Throughput is not asserted here; it goes to BENCHMARKS.md.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::origin::{OriginOptions, OriginServer};
use vodup_testkit::rss::PeakRss;

use super::support::{parse_lines, upload};

const SIZE: u64 = 4 << 30;
const LIMIT: u64 = 80 << 20;

async fn peak_of(mut command: tokio::process::Command, stdin_from: Option<&std::path::Path>) -> u64 {
    command.args(["--part-size", "8M", "--parallel", "4", "--no-resume"]);
    if stdin_from.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().unwrap();
    let watch = PeakRss::watch(child.id().unwrap());
    let feeder = stdin_from.map(|path| {
        let mut stdin = child.stdin.take().unwrap();
        let path = path.to_owned();
        tokio::spawn(async move {
            let mut source = tokio::fs::File::open(path).await.unwrap();
            tokio::io::copy(&mut source, &mut stdin).await.unwrap();
            stdin.shutdown().await.unwrap();
        })
    });
    let output = child.wait_with_output().await.unwrap();
    if let Some(feeder) = feeder {
        feeder.await.unwrap();
    }
    let peak = watch.stop();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let events = parse_lines(&output.stdout);
    assert_eq!(events.last().unwrap()["Size"], SIZE);
    peak
}

#[tokio::test(flavor = "multi_thread")]
async fn peak_memory_is_bounded_by_part_size_times_parallel_for_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let origin_dir = dir.path().join("origin");
    std::fs::create_dir(&origin_dir).unwrap();
    let file = origin_dir.join("huge.mp4");
    write_random_file(&file, SIZE, 9).unwrap();

    // One server per source, dropped before the next, so the disk holds one stored copy at a time.
    let server = TestServer::start().await;
    let from_file = peak_of(upload(&server, dir.path(), "video", file.to_str().unwrap()), None).await;
    drop(server);

    let server = TestServer::start().await;
    let origin = OriginServer::start(origin_dir.clone(), OriginOptions::default()).await;
    let from_url = peak_of(upload(&server, dir.path(), "video", &origin.url("huge.mp4")), None).await;
    drop(server);

    let server = TestServer::start().await;
    let mut command = upload(&server, dir.path(), "video", "-");
    command.args(["--file-name", "huge.mp4"]);
    let from_stdin = peak_of(command, Some(&file)).await;
    drop(server);

    eprintln!("peak RSS: file {from_file}, url {from_url}, stdin {from_stdin}");
    for (source, peak) in [("file", from_file), ("url", from_url), ("stdin", from_stdin)] {
        assert!(peak > 0, "{source}: no RSS reading");
        assert!(peak < LIMIT, "{source}: peak RSS {} MiB is over 80 MiB", peak >> 20);
    }
}
