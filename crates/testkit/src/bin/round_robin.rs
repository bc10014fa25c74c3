//! `round_robin LISTEN [UPSTREAM...]`: the testkit's per-request load balancer ([`vodup_testkit::RoundRobin`])
//! as a process, for the compat suite's runs on several nodes (Python starts one in front of the nodes'
//! OSS ports and one in front of their VOD ports).
//!
//! It prints one JSON line `{"listening":"127.0.0.1:P"}` once bound. Each line then read on stdin
//! replaces the upstreams (addresses separated by spaces): the nodes start after the balancer, since its
//! address is their public endpoint. When stdin closes, or on SIGTERM, it prints how many requests each
//! upstream was sent, `{"served":[N,M]}`, and exits.

use std::net::SocketAddr;

use tokio::io::AsyncBufReadExt as _;

const USAGE: &str =
    "usage: round_robin LISTEN [UPSTREAM...] (addresses as 127.0.0.1:PORT; more upstream lines on stdin)";

fn addresses<'a>(words: impl Iterator<Item = &'a str>) -> Result<Vec<SocketAddr>, String> {
    words.map(|word| word.parse().map_err(|_| format!("{word:?} is not an address; {USAGE}"))).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.split_first() {
        Some((listen, upstreams)) => addresses(std::iter::once(listen.as_str()))
            .and_then(|listen| Ok((listen[0], addresses(upstreams.iter().map(String::as_str))?))),
        None => Err(USAGE.to_owned()),
    };
    let (listen, upstreams) = parsed.unwrap_or_else(|problem| {
        eprintln!("round_robin: {problem}");
        std::process::exit(2)
    });
    let balancer = match vodup_testkit::RoundRobin::start(listen, upstreams).await {
        Ok(balancer) => balancer,
        Err(e) => {
            eprintln!("round_robin: cannot listen on {listen}: {e}");
            std::process::exit(1)
        }
    };
    println!("{}", serde_json::json!({ "listening": balancer.addr().to_string() }));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            line = lines.next_line() => match line {
                Ok(Some(line)) => match addresses(line.split_whitespace()) {
                    Ok(upstreams) => balancer.set_upstreams(upstreams),
                    Err(problem) => eprintln!("round_robin: ignoring a line: {problem}"),
                },
                _ => break,
            },
        }
    }
    println!("{}", serde_json::json!({ "served": balancer.served() }));
    // Exit now: tokio's stdin reads on a blocking thread that a runtime shutdown would wait for.
    std::process::exit(0)
}
