//! When and how long to wait before sending a failed request again: exponential backoff with full
//! jitter (so parallel parts that failed together do not retry together), for retryable errors only.

use std::time::Duration;

use rand::RngExt as _;

/// Retry settings for every request the SDK sends.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 5).
    pub max_attempts: u32,
    /// The first backoff ceiling (default 200 ms); it doubles with each attempt.
    pub base_delay: Duration,
    /// The largest backoff ceiling (default 10 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The delay before attempt `attempt + 1`, after `attempt` (1-based) failed: uniform in
    /// `[0, min(max, base × 2^(attempt-1))]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(200));
            assert!(policy.backoff(3) <= Duration::from_millis(800));
            assert!(policy.backoff(30) <= Duration::from_secs(10));
        }
    }
}
