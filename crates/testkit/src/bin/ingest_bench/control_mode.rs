//! `ingest_bench control`: the control-plane target of issue 15 in one run. One node on SQLite + disk
//! (as one machine runs it); the same concurrent clients call, round by round and in alternating order,
//! the liveness route (`GET /healthz`: HTTP only) and signed CreateUploadVideo (signature, nonce, a media
//! and its upload committed durably, STS credentials minted). The ratio of the two rates says what the
//! control plane costs over the bare HTTP stack on the same machine; p99 says what a client waits.
//! `--json` prints one JSON object instead of the table, for `bench/suite.py`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::control::{RateRun, create_upload_rate, liveness_rate, median, quantile, spread};
use crate::cpu::Meter;
use crate::deployment::Deployment;

const USAGE: &str =
    "usage: ingest_bench control [--vodup PATH] [--clients 64] [--seconds 5] [--rounds 3] [--json]";

struct Options {
    vodup: PathBuf,
    clients: usize,
    window: Duration,
    rounds: usize,
    json: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            vodup: "target/release/vodup".into(),
            clients: 64,
            window: Duration::from_secs(5),
            rounds: 3,
            json: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--json" {
                o.json = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
            let number = || crate::flags::positive(flag, value, USAGE);
            match flag.as_str() {
                "--vodup" => o.vodup = value.into(),
                "--clients" => o.clients = number()? as usize,
                "--seconds" => o.window = Duration::from_secs(number()?),
                "--rounds" => o.rounds = number()? as usize,
                other => return Err(format!("unknown option {other}; {USAGE}")),
            }
        }
        crate::flags::require_vodup(&o.vodup)?;
        Ok(o)
    }
}

/// One route's figures over the rounds.
#[derive(Default)]
struct Figures {
    rates: Vec<f64>,
    latencies: Vec<Duration>,
    /// Server CPU seconds per thousand answered calls, each round.
    server_cpu_per_k: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

impl Figures {
    fn add(&mut self, run: RateRun, server_cpu: f64) {
        self.rates.push(run.rate());
        self.server_cpu_per_k.push(server_cpu / (run.calls.max(1) as f64) * 1e3);
        self.errors += run.errors;
        if self.first_error.is_none() {
            self.first_error = run.first_error;
        }
        self.latencies.extend(run.latencies);
    }
}

/// Runs the mode with the arguments after `control`.
pub async fn main(args: &[String]) {
    let o = match Options::parse(args) {
        Ok(o) => o,
        Err(problem) => {
            eprintln!("ingest_bench control: {problem}");
            std::process::exit(2)
        }
    };
    let node = Deployment::local(&o.vodup, "one node, SQLite + disk");
    let meter = Meter { vodup: node.pids(), garage: Vec::new(), postgres: None };
    let account = Arc::new(node.account.clone());
    let client = reqwest::Client::builder().pool_max_idle_per_host(o.clients).build().expect("client");
    // Warm-up: connections open, the catalogue's pages in memory.
    liveness_rate(&client, &account.vod, o.clients, Duration::from_secs(1)).await;
    create_upload_rate(&client, account.clone(), o.clients, Duration::from_secs(1)).await;
    let (mut liveness, mut create) = (Figures::default(), Figures::default());
    for round in 0..o.rounds {
        for which in [round % 2, 1 - round % 2] {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = meter.read();
            if which == 0 {
                let run = liveness_rate(&client, &account.vod, o.clients, o.window).await;
                liveness.add(run, (meter.read() - before).vodup);
            } else {
                let run = create_upload_rate(&client, account.clone(), o.clients, o.window).await;
                create.add(run, (meter.read() - before).vodup);
            }
        }
        eprintln!("round {}/{} done", round + 1, o.rounds);
    }
    let ratio = median(&create.rates) / median(&liveness.rates);
    let rss = node.peak_rss().first().copied().unwrap_or(0);
    if o.json {
        let figures = |f: &mut Figures| {
            serde_json::json!({
                "rates": f.rates,
                "p50_ms": quantile(&mut f.latencies, 0.5).as_secs_f64() * 1e3,
                "p99_ms": quantile(&mut f.latencies, 0.99).as_secs_f64() * 1e3,
                "server_cpu_s_per_1000": median(&f.server_cpu_per_k),
                "errors": f.errors,
                "first_error": f.first_error,
            })
        };
        let out = serde_json::json!({
            "clients": o.clients,
            "seconds": o.window.as_secs(),
            "rounds": o.rounds,
            "liveness": figures(&mut liveness),
            "create_upload_video": figures(&mut create),
            "ratio": ratio,
            "server_peak_rss": rss,
        });
        println!("{out}");
        return;
    }
    println!(
        "{} clients for {} s per measurement, {} rounds after a warm-up, the two routes alternating; \
         {}",
        o.clients,
        o.window.as_secs(),
        o.rounds,
        node.label
    );
    println!();
    println!(
        "| route | calls/s (min / median / max) | p50 / p99 | server CPU-s per 1000 calls | failed calls |"
    );
    println!("|---|---|---|---|---|");
    for (name, f) in [("GET /healthz", &mut liveness), ("signed CreateUploadVideo", &mut create)] {
        println!(
            "| {name} | {} | {:.1} / {:.1} ms | {:.3} | {} |",
            spread(&f.rates, 0),
            quantile(&mut f.latencies, 0.5).as_secs_f64() * 1e3,
            quantile(&mut f.latencies, 0.99).as_secs_f64() * 1e3,
            median(&f.server_cpu_per_k),
            f.errors
        );
    }
    println!();
    println!(
        "CreateUploadVideo / healthz: {ratio:.3}; server peak RSS {:.1} MiB",
        rss as f64 / f64::from(1 << 20)
    );
    for (name, f) in [("healthz", &liveness), ("CreateUploadVideo", &create)] {
        if let Some(error) = &f.first_error {
            println!("{name}: first failed call: {error}");
        }
    }
}
