//! The control-plane figure: how many signed CreateUploadVideo calls a deployment answers per second
//! when many clients call it at once, each waiting for its answer before the next call, as upload
//! clients starting their files do. Each call is a catalogue write (a media and its upload), so the
//! figure is the catalogue's rate as much as the node's. Beside it, the same clients on the liveness
//! route show what the node's HTTP stack answers with no signature and no catalogue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{Account, create_upload_video};

/// What one run of the clients measured.
pub struct RateRun {
    /// Calls answered with an UploadAddress within the window.
    pub calls: u64,
    /// Calls that failed within the window.
    pub errors: u64,
    /// The first failure, to show.
    pub first_error: Option<String>,
    /// The window.
    pub window: Duration,
    /// Latency of every answered call.
    pub latencies: Vec<Duration>,
}

impl RateRun {
    /// Answered calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }
}

/// `clients` concurrent clients calling CreateUploadVideo back to back for `window`; calls still in
/// flight at its end are waited for but not counted.
pub async fn create_upload_rate(
    client: &reqwest::Client,
    account: Arc<Account>,
    clients: usize,
    window: Duration,
) -> RateRun {
    let client = client.clone();
    rate(clients, window, move |c, n| {
        let (client, account) = (client.clone(), account.clone());
        async move { create_upload_video(&client, &account, c * 1_000_000 + n).await.map(drop) }
    })
    .await
}

/// The same clients calling the node's liveness route, `GET /healthz` (no signature, no catalogue):
/// what the node's HTTP stack alone answers, the yardstick of the control-plane target.
pub async fn liveness_rate(client: &reqwest::Client, vod: &str, clients: usize, window: Duration) -> RateRun {
    let (client, url) = (client.clone(), format!("{vod}/healthz"));
    rate(clients, window, move |_, _| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status();
            response.bytes().await.map_err(|e| format!("GET {url} body: {e}"))?;
            if status.is_success() { Ok(()) } else { Err(format!("GET {url}: {status}")) }
        }
    })
    .await
}

/// `clients` tasks each making `call(client, n)` back to back for `window`; calls still in flight at its
/// end are waited for but not counted.
async fn rate<F, Fut>(clients: usize, window: Duration, call: F) -> RateRun
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut errors, mut first_error) = (0, None);
                let mut n = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let reply = call(c, n).await;
                    let answered = Instant::now();
                    n += 1;
                    if answered > deadline {
                        break;
                    }
                    match reply {
                        Ok(()) => latencies.push(answered - sent),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut run = RateRun { calls: 0, errors: 0, first_error: None, window, latencies: Vec::new() };
    for task in tasks {
        let (latencies, errors, first_error) = task.await.expect("a control-plane client panicked");
        run.calls += latencies.len() as u64;
        run.latencies.extend(latencies);
        run.errors += errors;
        if run.first_error.is_none() {
            run.first_error = first_error;
        }
    }
    run
}

/// The `q` quantile (0..=1) of `samples`, nearest rank; zero when there are none.
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// `min / median / max` with `decimals` decimals.
pub fn spread(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.decimals$} / {:.decimals$} / {max:.decimals$}", median(values))
}

/// The middle value (the upper one of the two middles for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut samples, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&mut samples, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&mut samples, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&mut [], 0.5), Duration::ZERO);
    }
}
