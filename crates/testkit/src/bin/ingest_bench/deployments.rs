//! `ingest_bench deployments`: what going distributed costs, in one run. Three deployments of the real
//! `vodup serve` (one node on SQLite + disk; one node on PostgreSQL + Garage; two nodes on PostgreSQL +
//! Garage behind the round-robin balancer, see [`crate::deployment`]) run side by side, and each round
//! measures them one after the other (A, B, C: ingest; then A, B, C: control plane), after a warm-up, so
//! that whatever else loads the machine loads all three alike. It prints markdown tables for
//! BENCHMARKS.md: ingest throughput and CreateUploadVideo rate with their ratios to the single SQLite
//! node, the servers' peak memory, and where the CPU time went.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::control::{RateRun, create_upload_rate, median, quantile, spread};
use crate::cpu::{Meter, Usage, postmaster};
use crate::deployment::Deployment;
use crate::load::multipart;
use crate::services::{Garage, Postgres};

const USAGE: &str = "usage: ingest_bench deployments [--vodup PATH] [--size-mib 256] [--part-mib 8] \
     [--parallel 4] [--rounds 5] [--clients 64] [--seconds 5]";

/// Pause before each measurement, so that the previous one's trailing work (Garage's third replica,
/// the kernel's writeback) is not billed to the next.
const SETTLE: Duration = Duration::from_secs(1);

struct Options {
    vodup: PathBuf,
    size: u64,
    part: u64,
    parallel: usize,
    rounds: usize,
    clients: usize,
    window: Duration,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            vodup: "target/release/vodup".into(),
            size: 256 << 20,
            part: 8 << 20,
            parallel: 4,
            rounds: 5,
            clients: 64,
            window: Duration::from_secs(5),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
            let number = || crate::flags::positive(flag, value, USAGE);
            match flag.as_str() {
                "--vodup" => o.vodup = value.into(),
                "--size-mib" => o.size = number()? << 20,
                "--part-mib" => o.part = number()? << 20,
                "--parallel" => o.parallel = number()? as usize,
                "--rounds" => o.rounds = number()? as usize,
                "--clients" => o.clients = number()? as usize,
                "--seconds" => o.window = Duration::from_secs(number()?),
                other => return Err(format!("unknown option {other}; {USAGE}")),
            }
        }
        crate::flags::require_vodup(&o.vodup)?;
        Ok(o)
    }
}

/// What one deployment measured over the rounds.
#[derive(Default)]
struct Figures {
    /// Ingest throughput of each round, GB/s.
    ingest: Vec<f64>,
    ingest_cpu: Vec<(f64, Usage)>,
    /// CreateUploadVideo calls per second of each round.
    rates: Vec<f64>,
    control_cpu: Vec<(f64, Usage)>,
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the mode with the arguments after `deployments`; stops what it started also on Ctrl-C.
pub async fn main(args: &[String]) {
    let o = match Options::parse(args) {
        Ok(o) => o,
        Err(problem) => {
            eprintln!("ingest_bench deployments: {problem}");
            std::process::exit(2)
        }
    };
    // The run's future owns the servers and the services: it is dropped, and they are stopped, before
    // the process exits, whichever way it ends.
    let outcome = tokio::select! {
        outcome = run(&o) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted; the servers and the services this run started are stopped".into()),
    };
    if let Err(problem) = outcome {
        eprintln!("ingest_bench deployments: {problem}");
        std::process::exit(1)
    }
}

async fn run(o: &Options) -> Result<(), String> {
    let postgres = Postgres::start_or_reuse()?;
    let garage = Garage::start_or_reuse()?;
    eprintln!("starting the three deployments");
    let deployments = [
        Deployment::local(&o.vodup, "A. one node, SQLite + disk"),
        Deployment::remote(
            &o.vodup,
            postgres.url(),
            &garage.fresh_prefix(),
            1,
            "B. one node, PostgreSQL + Garage",
        )
        .await,
        Deployment::remote(
            &o.vodup,
            postgres.url(),
            &garage.fresh_prefix(),
            2,
            "C. two nodes behind the balancer, PostgreSQL + Garage",
        )
        .await,
    ];
    let meter = Meter {
        vodup: deployments.iter().flat_map(Deployment::pids).collect(),
        garage: garage.pids(),
        postgres: postgres.port().and_then(postmaster),
    };
    let accounts: Vec<Arc<_>> = deployments.iter().map(|d| Arc::new(d.account.clone())).collect();
    let mut random = vec![0u8; o.part as usize];
    rand::fill(&mut random[..]);
    let buffer = Bytes::from(random);
    let client = reqwest::Client::builder().pool_max_idle_per_host(o.clients).build().expect("client");
    let durability = format!(
        "durability: A fsyncs every blob and SQLite commit (synchronous=FULL); PostgreSQL {}; Garage {} \
         (both off by default in Garage: replication is its durability)",
        postgres.durability().await,
        garage.durability()
    );
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    eprintln!("warm-up");
    for account in &accounts {
        multipart(&client, account, 0, o.size.min(64 << 20), o.part, o.parallel, &buffer).await;
        create_upload_rate(&client, account.clone(), o.clients, Duration::from_secs(1)).await;
    }
    let mut figures: Vec<Figures> = deployments.iter().map(|_| Figures::default()).collect();
    for round in 1..=o.rounds {
        for (account, f) in accounts.iter().zip(&mut figures) {
            tokio::time::sleep(SETTLE).await;
            let (before, started) = (meter.read(), Instant::now());
            multipart(&client, account, round, o.size, o.part, o.parallel, &buffer).await;
            let wall = started.elapsed().as_secs_f64();
            f.ingest_cpu.push((wall, meter.read() - before));
            f.ingest.push(o.size as f64 / wall / 1e9);
        }
        for (account, f) in accounts.iter().zip(&mut figures) {
            tokio::time::sleep(SETTLE).await;
            let (before, started) = (meter.read(), Instant::now());
            let run = create_upload_rate(&client, account.clone(), o.clients, o.window).await;
            f.control_cpu.push((started.elapsed().as_secs_f64(), meter.read() - before));
            f.add(run);
        }
        eprintln!("round {round}/{} done", o.rounds);
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    print_tables(o, &deployments, &mut figures, &meter);
    println!();
    println!("{durability}");
    println!(
        "load average (1, 5, 15 min) before: {}; after: {}",
        first_three(&load_before),
        first_three(&load_after)
    );
    Ok(())
}

impl Figures {
    fn add(&mut self, run: RateRun) {
        self.rates.push(run.rate());
        self.errors += run.errors;
        if self.first_error.is_none() {
            self.first_error = run.first_error;
        }
        self.latencies.extend(run.latencies);
    }
}

fn print_tables(o: &Options, deployments: &[Deployment], figures: &mut [Figures], meter: &Meter) {
    let medians: Vec<(f64, f64)> = figures.iter().map(|f| (median(&f.ingest), median(&f.rates))).collect();
    let (ingest_a, rate_a) = medians[0];
    println!(
        "{} MiB multipart upload ({} MiB parts, {} in flight); CreateUploadVideo from {} clients for {} s; \
         {} rounds after a warm-up, the deployments interleaved in each round",
        o.size >> 20,
        o.part >> 20,
        o.parallel,
        o.clients,
        o.window.as_secs(),
        o.rounds
    );
    println!();
    println!(
        "| deployment | ingest GB/s (min / median / max) | ingest ratio to A | CreateUploadVideo/s (min / median / max) \
         | rate ratio to A | latency p50 / p99 | failed calls | server peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((d, f), (ingest, rate)) in deployments.iter().zip(figures.iter_mut()).zip(&medians) {
        let rss: Vec<String> =
            d.peak_rss().iter().map(|b| format!("{:.1}", *b as f64 / f64::from(1 << 20))).collect();
        println!(
            "| {} | {} | {:.2} | {} | {:.2} | {:.1} / {:.1} ms | {} | {} MiB |",
            d.label,
            spread(&f.ingest, 2),
            ingest / ingest_a,
            spread(&f.rates, 0),
            rate / rate_a,
            quantile(&mut f.latencies, 0.5).as_secs_f64() * 1e3,
            quantile(&mut f.latencies, 0.99).as_secs_f64() * 1e3,
            f.errors,
            rss.join(" / ")
        );
    }
    for (d, f) in deployments.iter().zip(figures.iter()) {
        if let Some(error) = &f.first_error {
            println!("\n{}: first failed call: {error}", d.label);
        }
        if let Some(served) = d.oss_served() {
            println!("\n{}: OSS requests per node through the balancer: {served:?}", d.label);
        }
    }
    println!();
    println!(
        "CPU seconds per measurement (median of the rounds) and the wall time it took; 2 cores give at most \
         2 CPU-s per second{}",
        if meter.postgres.is_none() { " (PostgreSQL's processes not found: counted in other)" } else { "" }
    );
    println!();
    println!(
        "| deployment | figure | wall s | vodup node(s) | Garage (3 nodes) | PostgreSQL | bench (client, balancer) | other: kernel threads, interrupts, anything else running (median, max) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (d, f) in deployments.iter().zip(figures.iter()) {
        for (figure, samples) in [("ingest", &f.ingest_cpu), ("control plane", &f.control_cpu)] {
            let column = |get: fn(&(f64, Usage)) -> f64| median(&samples.iter().map(get).collect::<Vec<_>>());
            println!(
                "| {} | {figure} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}, {:.2} |",
                short(d.label),
                column(|s| s.0),
                column(|s| s.1.vodup),
                column(|s| s.1.garage),
                column(|s| s.1.postgres),
                column(|s| s.1.bench),
                column(|s| s.1.other()),
                samples.iter().map(|s| s.1.other()).fold(0.0, f64::max)
            );
        }
    }
}

/// "A" of "A. one node, ...".
fn short(label: &str) -> &str {
    label.split('.').next().unwrap_or(label)
}

fn first_three(loadavg: &str) -> String {
    loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
