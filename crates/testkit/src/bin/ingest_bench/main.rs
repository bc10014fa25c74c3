//! Ingest benchmark for BENCHMARKS.md: a 1 GiB multipart upload through the real `vodup serve` binary
//! on loopback, beside a bare sink that only hashes (MD5 + CRC-64) what it receives, and beside
//! `vodup upload` itself (the SDK through the CLI) from a file, a URL and standard input, all in the same
//! run; then the server's peak RSS with many uploads in flight.
//!
//! The load generator is built on vodup-proto (the same signing code as SDK and service) and sends parts
//! as slices of one reused buffer, so the client does no hashing and no per-part allocation.
//!
//! The `deployments` mode compares, in one run, one node on SQLite + disk, one node on PostgreSQL +
//! Garage and two nodes behind a round-robin balancer: ingest throughput and CreateUploadVideo rate,
//! with their ratios and where the CPU time went ([`deployments`]). It starts a throwaway PostgreSQL and
//! Garage unless `VODUP_TEST_POSTGRES_URL` and `VODUP_TEST_GARAGE_*` name running ones.
//!
//! Usage: `cargo run --release -p vodup-testkit --bin ingest_bench -- [--vodup PATH] [--size-mib 1024]
//! [--part-mib 8] [--parallel 2] [--uploads 16] [--upload-mib 64] [--rounds 3]`, or
//! `... --bin ingest_bench -- deployments [--vodup PATH] [--size-mib 256] [--part-mib 8] [--parallel 4]
//! [--rounds 5] [--clients 64] [--seconds 5]`, or `... --bin ingest_bench -- control [--vodup PATH]
//! [--clients 64] [--seconds 5] [--rounds 3] [--json]` (signed CreateUploadVideo beside the liveness
//! route on one SQLite node, [`control_mode`]).

mod control;
mod control_mode;
mod cpu;
mod deployment;
mod deployments;
mod flags;
mod load;
mod services;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::any;
use bytes::Bytes;
use futures_util::StreamExt as _;
use md5::Digest as _;
use vodup_proto::Secret;
use vodup_proto::crc64::Crc64;

use crate::load::{Account, multipart};

struct Options {
    vodup: String,
    size: u64,
    part: u64,
    parallel: usize,
    uploads: usize,
    upload_size: u64,
    rounds: usize,
}

fn options() -> Options {
    let mut o = Options {
        vodup: "target/release/vodup".into(),
        size: 1024 << 20,
        part: 8 << 20,
        parallel: 2,
        uploads: 16,
        upload_size: 64 << 20,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        let mib = || value.parse::<u64>().expect("a number") << 20;
        match pair[0].as_str() {
            "--vodup" => o.vodup = value.clone(),
            "--size-mib" => o.size = mib(),
            "--part-mib" => o.part = mib(),
            "--parallel" => o.parallel = value.parse().expect("a number"),
            "--uploads" => o.uploads = value.parse().expect("a number"),
            "--upload-mib" => o.upload_size = mib(),
            "--rounds" => o.rounds = value.parse().expect("a number"),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// A running `vodup serve` child process.
struct Server {
    child: Child,
    account: Account,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(vodup: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let out = Command::new(vodup)
            .args(["keys", "create", "--json", "--data"])
            .arg(&data)
            .output()
            .expect("run vodup keys");
        assert!(out.status.success(), "vodup keys create failed: {}", String::from_utf8_lossy(&out.stderr));
        let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("key JSON");
        let mut child = Command::new(vodup)
            .args(["serve", "--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env("VODUP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vodup serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready JSON");
        Self {
            child,
            account: Account {
                vod: format!("http://{}", ready["vod"].as_str().expect("vod")),
                key_id: key["AccessKeyId"].as_str().expect("id").to_owned(),
                secret: Secret::new(key["AccessKeySecret"].as_str().expect("secret")),
            },
            _dir: dir,
        }
    }

    /// VmHWM (peak RSS) and VmRSS of the server process, in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times `vodup upload video ARGUMENT` (stdin fed from `source` when ARGUMENT is `-`) with the same part
/// size and parallelism as the load generator.
async fn cli_upload(o: &Options, server: &Server, argument: &str, source: &std::path::Path) -> Duration {
    let part = format!("{}", o.part);
    let parallel = o.parallel.to_string();
    let mut command = tokio::process::Command::new(&o.vodup);
    command
        .args(["upload", "video", argument, "--endpoint", &server.account.vod, "--no-resume", "--quiet"])
        .args(["--part-size", &part, "--parallel", &parallel, "--file-name", "bench.mp4"])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &server.account.key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", server.account.secret.expose())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let stdin_file = (argument == "-").then(|| std::fs::File::open(source).expect("open source"));
    command.stdin(stdin_file.map_or_else(Stdio::null, Stdio::from));
    let started = Instant::now();
    let status = command.status().await.expect("run vodup upload");
    assert!(status.success(), "vodup upload {argument} failed");
    started.elapsed()
}

/// A bare sink: reads every PUT body, MD5 + CRC-64 of each byte, answers 200. The floor a hashing
/// OSS-compatible server cannot beat on this machine.
async fn start_sink() -> String {
    let app = axum::Router::new().fallback(any(|body: Body| async move {
        let mut md5 = md5::Md5::new();
        let mut crc = Crc64::new();
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("body");
            md5.update(&chunk);
            crc.update(&chunk);
        }
        format!("{:x}{}", md5.finalize()[0], crc.value() & 1)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn sink_upload(
    client: &reqwest::Client,
    sink: &str,
    size: u64,
    part: u64,
    parallel: usize,
    buffer: &Bytes,
) {
    futures_util::stream::iter(0..size.div_ceil(part))
        .map(|i| {
            let len = part.min(size - i * part) as usize;
            let body = buffer.slice(0..len);
            async move {
                let response = client.put(format!("{sink}/part{i}")).body(body).send().await.expect("sink");
                assert!(response.status().is_success());
            }
        })
        .buffered(parallel)
        .for_each(|()| async {})
        .await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|mode| mode == "deployments") {
        return deployments::main(&args[1..]).await;
    }
    if args.first().is_some_and(|mode| mode == "control") {
        return control_mode::main(&args[1..]).await;
    }
    let o = options();
    let mut random = vec![0u8; o.part as usize];
    rand::fill(&mut random[..]);
    let buffer = Bytes::from(random);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let server = Server::start(&o.vodup);
    let sink = start_sink().await;
    let gib = o.size as f64 / (1u64 << 30) as f64;

    // Warm-up, then alternate so both see the same machine state.
    multipart(&client, &server.account, 0, 64 << 20, o.part, o.parallel, &buffer).await;
    sink_upload(&client, &sink, 64 << 20, o.part, o.parallel, &buffer).await;
    let source_dir = tempfile::tempdir().expect("temp dir");
    let source = source_dir.path().join("bench.mp4");
    vodup_testkit::fixtures::write_random_file(&source, o.size, 42).expect("source file");
    let origin =
        vodup_testkit::origin::OriginServer::start(source_dir.path().to_owned(), Default::default()).await;
    let url = origin.url("bench.mp4");
    let (mut vodup_times, mut sink_times) = (Vec::new(), Vec::new());
    let mut cli_times: [Vec<Duration>; 3] = Default::default();
    for round in 1..=o.rounds {
        let started = Instant::now();
        multipart(&client, &server.account, round, o.size, o.part, o.parallel, &buffer).await;
        vodup_times.push(started.elapsed());
        let started = Instant::now();
        sink_upload(&client, &sink, o.size, o.part, o.parallel, &buffer).await;
        sink_times.push(started.elapsed());
        for (times, argument) in cli_times.iter_mut().zip([source.to_str().expect("utf-8 path"), &url, "-"]) {
            times.push(cli_upload(&o, &server, argument, &source).await);
        }
    }
    let (hwm_after_ingest, _) = server.memory_kib();

    // Peak RSS with many uploads in flight.
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let pid = server.child.id();
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(rss) = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    futures_util::future::join_all(
        (0..o.uploads)
            .map(|n| multipart(&client, &server.account, 100 + n, o.upload_size, o.part, 2, &buffer)),
    )
    .await;
    let concurrent = started.elapsed();
    sampler.abort();
    let (hwm, _) = server.memory_kib();

    let rate = |d: &Duration| o.size as f64 / d.as_secs_f64() / 1e9;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (best_v, best_s) = (*vodup_times.iter().min().unwrap(), *sink_times.iter().min().unwrap());
    let (med_v, med_s) = (median(&mut vodup_times), median(&mut sink_times));
    println!(
        "| upload of {gib:.2} GiB, {} MiB parts, {} in flight | best | median |",
        o.part >> 20,
        o.parallel
    );
    println!("|---|---|---|");
    println!(
        "| vodup serve (STS V1 auth, MD5+CRC-64, fsync'd blob files, catalogue commit) | {:.2} s ({:.2} GB/s) | {:.2} s ({:.2} GB/s) |",
        best_v.as_secs_f64(),
        rate(&best_v),
        med_v.as_secs_f64(),
        rate(&med_v)
    );
    println!(
        "| bare MD5+CRC-64 sink (no auth, no disk) | {:.2} s ({:.2} GB/s) | {:.2} s ({:.2} GB/s) |",
        best_s.as_secs_f64(),
        rate(&best_s),
        med_s.as_secs_f64(),
        rate(&med_s)
    );
    println!(
        "| ratio vodup / sink throughput | {:.2} | {:.2} |",
        rate(&best_v) / rate(&best_s),
        rate(&med_v) / rate(&med_s)
    );
    for (times, label) in
        cli_times.iter_mut().zip(["a file", "a URL (ranged GETs, loopback origin)", "stdin"])
    {
        let (best, med) = (*times.iter().min().unwrap(), median(times));
        println!(
            "| `vodup upload` from {label} | {:.2} s ({:.2} GB/s) | {:.2} s ({:.2} GB/s) |",
            best.as_secs_f64(),
            rate(&best),
            med.as_secs_f64(),
            rate(&med)
        );
        println!(
            "| ratio `vodup upload` from {label} / load generator | {:.2} | {:.2} |",
            rate(&best) / rate(&best_v),
            rate(&med) / rate(&med_v)
        );
    }
    println!();
    println!("server peak RSS after the ingest runs: {:.1} MiB", hwm_after_ingest as f64 / 1024.0);
    println!(
        "{} uploads of {} MiB in flight at once ({} MiB parts, 2 parts each): {:.2} s; server peak RSS (VmHWM) {:.1} MiB, sampled VmRSS max {:.1} MiB",
        o.uploads,
        o.upload_size >> 20,
        o.part >> 20,
        concurrent.as_secs_f64(),
        hwm as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
}
