//! Edge-load benchmark for BENCHMARKS.md (issue 11): the real `vodup serve`, started with a lowered
//! descriptor limit, under slow-header clients, idle keep-alive sockets and an anonymous progress flood
//! ([`vodup_testkit::edge`]), while a normal client keeps creating videos and uploading them (a 256 KiB
//! PutObject and a two-part multipart upload per round). Prints the server's descriptors and resident
//! memory before and under the load, and how many normal rounds completed or failed.
//!
//! Usage: `cargo run -p vodup-testkit --bin edge_bench -- [--vodup target/debug/vodup] [--seconds 30]
//! [--nofile 256] [--idle-sockets 150] [--label after] [-- extra serve flags…]`

use std::time::Duration;

use vodup_proto::oss::xml::{CompleteMultipartUpload, CompletePart, to_xml};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::edge::{Edge, EdgeLoad, ProcessSampler, open_descriptors, resident_bytes};
use vodup_testkit::{Api, OssCall, OssCredential, ServeOptions, ServeProcess, random_bytes};

/// A normal call slower than this counts as failed (it is stuck behind the attack).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

struct Options {
    vodup: String,
    seconds: u64,
    nofile: u64,
    idle_sockets: usize,
    label: String,
    serve_args: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        vodup: "target/debug/vodup".into(),
        seconds: 30,
        nofile: 256,
        idle_sockets: 150,
        label: "run".into(),
        serve_args: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--" {
            o.serve_args = args.collect();
            break;
        }
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || value.parse::<u64>().unwrap_or_else(|_| panic!("{flag} takes a number"));
        match flag.as_str() {
            "--vodup" => o.vodup = value.clone(),
            "--seconds" => o.seconds = number(),
            "--nofile" => o.nofile = number(),
            "--idle-sockets" => o.idle_sockets = usize::try_from(number()).expect("a count"),
            "--label" => o.label = value.clone(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

async fn timed<T>(call: impl Future<Output = T>) -> Result<T, ()> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| ())
}

/// One round of normal work; `Err` when any call failed or timed out.
async fn round(api: &Api, n: usize) -> Result<(), ()> {
    for multipart in [false, true] {
        let name = format!("edge{n}-{multipart}.mp4");
        let reply = timed(api.vod("CreateUploadVideo", &[("Title", &name), ("FileName", &name)])).await?;
        if reply.status != 200 {
            return Err(());
        }
        let address =
            UploadAddress::decode(reply.body["UploadAddress"].as_str().ok_or(())?).map_err(|_| ())?;
        let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().ok_or(())?).map_err(|_| ())?;
        let credential = OssCredential::V1 {
            id: auth.access_key_id.clone(),
            secret: auth.access_key_secret.clone(),
            token: Some(auth.security_token.expose().to_owned()),
        };
        let call = |method: &str| OssCall::new(method, Some(&address.file_name), credential.clone());
        let ok = |r: Result<reqwest::Result<reqwest::Response>, ()>| match r {
            Ok(Ok(response)) if response.status().is_success() => Ok(response),
            _ => Err(()),
        };
        if !multipart {
            ok(timed(api.try_oss(call("PUT").body(random_bytes(256 << 10, n as u64)))).await)?;
            continue;
        }
        let text =
            ok(timed(api.try_oss(call("POST").query("uploads", ""))).await)?.text().await.map_err(|_| ())?;
        let start = text.find("<UploadId>").ok_or(())? + "<UploadId>".len();
        let upload_id = text[start..start + text[start..].find('<').ok_or(())?].to_owned();
        let mut parts = Vec::new();
        for number in 1..=2u32 {
            let part = call("PUT")
                .query("partNumber", &number.to_string())
                .query("uploadId", &upload_id)
                .body(random_bytes(128 << 10, u64::from(number)));
            let response = ok(timed(api.try_oss(part)).await)?;
            let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).ok_or(())?.to_owned();
            parts.push(CompletePart { part_number: number, etag });
        }
        let body = to_xml(&CompleteMultipartUpload { parts });
        ok(timed(api.try_oss(call("POST").query("uploadId", &upload_id).body(body))).await)?;
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let o = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut serve = ServeOptions::new(&o.vodup, dir.path().join("data"));
    serve.descriptor_limit = Some(o.nofile);
    serve.args.clone_from(&o.serve_args);
    let key = serve.create_key();
    let server = ServeProcess::start(&serve, &key, &[]);
    let pid = server.pid();
    round(&server, 0).await.expect("a warm-up round without load");
    let (fds_before, rss_before) = (open_descriptors(pid).unwrap_or(0), resident_bytes(pid).unwrap_or(0));

    let sampler = ProcessSampler::watch(pid);
    let vod = server.vod_url.trim_start_matches("http://").parse().expect("vod address");
    let oss = server.oss_url.trim_start_matches("http://").parse().expect("oss address");
    let mut load = EdgeLoad::new(vod, oss);
    load.idle_sockets = o.idle_sockets;
    let edge = Edge::start(&load);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(o.seconds);
    let (mut completed, mut failed, mut n) = (0, 0, 1);
    while tokio::time::Instant::now() < deadline {
        match round(&server, n).await {
            Ok(()) => completed += 1,
            Err(()) => failed += 1,
        }
        n += 1;
    }
    let (fds_under, rss_under) = (open_descriptors(pid).unwrap_or(0), resident_bytes(pid).unwrap_or(0));
    let stats = edge.stop().await;
    let (peak_fds, peak_rss) = sampler.stop();
    println!(
        "| {} | {fds_before} | {fds_under} | {peak_fds} | {:.1} | {:.1} | {:.1} | {completed} | {failed} |",
        o.label,
        mib(rss_before),
        mib(rss_under),
        mib(peak_rss)
    );
    eprintln!("attackers saw: {stats:?}");
}
