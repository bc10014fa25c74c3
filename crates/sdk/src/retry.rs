//! When to send a failed request again, and for how long: a time budget (60 s by default) rather than a
//! count of attempts, so an outage as long as a service restart is waited out, with exponential backoff
//! and full jitter, capped, so parallel parts that failed together do not retry together. Only errors
//! that say a retry may help ([`Error::is_retryable`]) are retried; the classifiers of each service
//! decide that (never for a full disk, `501 Not Implemented`, an https URL aimed at a plain-HTTP port,
//! or a 4xx other than throttling).
//!
//! Every retry is told as a [`RetryNotice`]. Retries deep in the VOD client or a URL source have no
//! handle on the upload that caused them, so an upload [`listen`]s for the notices of everything it
//! awaits (a task-local listener) and reports them as its own progress events. Outside an upload the
//! notices go nowhere.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt as _;
// Tokio's clock (the same as std's outside tests), so tests with a paused clock see the budget pass.
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Retry settings for every request the SDK sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long a request that keeps failing is retried, counted from its first failure (default 60 s;
    /// env `VODUP_RETRY_FOR`, flag `--retry-for`). Zero never retries.
    pub budget: Duration,
    /// The first backoff ceiling (default 200 ms); it doubles with each failure.
    pub base_delay: Duration,
    /// The largest backoff ceiling (default 5 s), so a service back from a restart is found quickly.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::for_budget(Duration::from_secs(60))
    }
}

impl RetryPolicy {
    /// The default backoff, retrying for `budget`.
    pub fn for_budget(budget: Duration) -> Self {
        Self { budget, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }

    /// A policy that never retries.
    pub fn none() -> Self {
        Self::for_budget(Duration::ZERO)
    }

    /// The delay after the `failures`-th failure (1-based): uniform in
    /// `[0, min(max, base × 2^(failures-1))]`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        let ceiling = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

/// The retry state of one request: how often it failed and since when.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: RetryPolicy,
    first_failure: Option<Instant>,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        Self { policy, first_failure: None, failures: 0 }
    }

    /// Records a retryable failure and returns the wait before the next attempt, or None when the
    /// budget is spent. The last wait is cut to what is left of the budget.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let first = *self.first_failure.get_or_insert(now);
        self.failures += 1;
        let left = self.policy.budget.checked_sub(now - first).filter(|left| !left.is_zero())?;
        Some(self.policy.backoff(self.failures).min(left))
    }

    /// Attempts that failed so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// What is left of the budget.
    pub(crate) fn left(&self) -> Duration {
        let spent = self.first_failure.map_or(Duration::ZERO, |first| first.elapsed());
        self.policy.budget.saturating_sub(spent)
    }

    /// The last failure, marked with how many attempts were made over how long.
    pub(crate) fn give_up(&self, error: Error) -> Error {
        let waited = self.first_failure.map_or(Duration::ZERO, |first| first.elapsed());
        error.after_retries(self.failures, waited)
    }
}

/// One failed attempt that is about to be sent again.
#[derive(Debug, Clone)]
pub struct RetryNotice {
    /// The operation (`UploadPart`, `CreateUploadVideo`, `read source URL`…).
    pub operation: &'static str,
    /// The part, for part uploads.
    pub part_number: Option<u32>,
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// The failure.
    pub error: Error,
    /// The wait before the next attempt.
    pub delay: Duration,
    /// How much longer the request is retried at most.
    pub budget_left: Duration,
    /// Bytes of the failed attempt that went out for nothing.
    pub wasted_bytes: u64,
}

/// Receives [`RetryNotice`]s.
pub(crate) type Listener = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

tokio::task_local! {
    static LISTENER: Listener;
}

/// Runs `future` with `listener` hearing of every retry inside it (on this task).
pub(crate) async fn listen<F: Future>(listener: Listener, future: F) -> F::Output {
    LISTENER.scope(listener, future).await
}

/// Tells the listener of the current task, if any (and the log, at `info`: `VODUP_LOG=info` shows
/// every retry with its full error).
pub(crate) fn notify(notice: &RetryNotice) {
    log(notice);
    let _ = LISTENER.try_with(|listener| listener(notice));
}

/// Logs a retry at `info`, below the CLI's default level: an outage is one line of the CLI's own.
pub(crate) fn log(notice: &RetryNotice) {
    tracing::info!(
        operation = notice.operation,
        part = ?notice.part_number,
        attempt = notice.attempt,
        delay = ?notice.delay,
        error = %notice.error,
        "retrying"
    );
}

/// Runs `attempt` until it succeeds, fails in a way a retry cannot help, or the budget is spent.
pub(crate) async fn run<T, F, Fut>(policy: RetryPolicy, operation: &'static str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::new(policy);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_retryable() => {
                let Some(delay) = backoff.next_delay() else { return Err(backoff.give_up(error)) };
                notify(&RetryNotice {
                    operation,
                    part_number: error.part_number(),
                    attempt: backoff.failures(),
                    error,
                    delay,
                    budget_left: backoff.left(),
                    wasted_bytes: 0,
                });
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::{ErrorKind, Retry};

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(200));
            assert!(policy.backoff(3) <= Duration::from_millis(800));
            assert!(policy.backoff(30) <= Duration::from_secs(5));
        }
    }

    #[test]
    fn a_zero_budget_never_waits() {
        let mut backoff = Backoff::new(RetryPolicy::none());
        assert_eq!(backoff.next_delay(), None);
        assert_eq!(backoff.failures(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_budget_is_spent_and_says_so() {
        let calls = AtomicU32::new(0);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let listener: Listener = {
            let heard = Arc::clone(&heard);
            Arc::new(move |notice: &RetryNotice| heard.lock().unwrap().push(notice.budget_left))
        };
        let started = tokio::time::Instant::now();
        let result: Result<()> = listen(
            listener,
            run(RetryPolicy::for_budget(Duration::from_secs(30)), "CreateUploadVideo", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Error::new(ErrorKind::Network, "CreateUploadVideo", "connection refused")) }
            }),
        )
        .await;
        let error = result.unwrap_err();
        let calls = calls.load(Ordering::SeqCst);
        assert!(calls > 5, "retried many times within the budget: {calls}");
        assert_eq!(error.retry(), Retry::Exhausted { attempts: calls });
        assert!(started.elapsed() >= Duration::from_secs(30), "waited the whole budget");
        assert!(started.elapsed() < Duration::from_secs(36), "and not much more: {:?}", started.elapsed());
        let heard = heard.lock().unwrap();
        assert_eq!(heard.len() as u32, calls - 1, "every retry is told, the last failure is not");
        assert!(heard.windows(2).all(|w| w[0] >= w[1]), "the budget only shrinks");
        assert!(error.to_string().contains("attempts in 30 s"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn errors_a_retry_cannot_help_are_returned_at_once() {
        let calls = AtomicU32::new(0);
        let full = || {
            Error::new(ErrorKind::Service, "UploadPart", "disk full")
                .with_service_code("InsufficientStorage")
                .with_retry(Retry::Permanent)
        };
        let result: Result<()> = run(RetryPolicy::default(), "UploadPart", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(full()) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(result.unwrap_err().retry(), Retry::Permanent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_recovers_succeeds() {
        let calls = AtomicU32::new(0);
        let result =
            run(RetryPolicy::default(), "GetVideoInfo", || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 { Err(Error::new(ErrorKind::Network, "GetVideoInfo", "reset")) } else { Ok(n) }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
    }
}
