//! A bytes-per-second limit shared by every request of an upload (`--limit-rate`), so parallel parts
//! together stay under it. Virtual scheduling: each chunk reserves the next slot on one shared clock
//! and sleeps until its slot starts, which allows no burst beyond one chunk.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A shared rate limit.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_second: u64,
    next_free: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limit of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        Self { bytes_per_second: bytes_per_second.max(1), next_free: Mutex::new(None) }
    }

    /// The limit.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Waits until `bytes` more may be sent.
    pub async fn acquire(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let start = {
            let mut next = self.next_free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let start = next.map_or(now, |n| n.max(now));
            *next = Some(start + cost);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Parses `500K`, `8M`, `1.5G`, `1048576` (binary multiples) into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, multiplier) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&text[..i], 1 << 20),
        (i, 'g' | 'G') => (&text[..i], 1 << 30),
        (i, 't' | 'T') => (&text[..i], 1 << 40),
        _ => (text, 1),
    };
    let number = number.trim().trim_end_matches(['i', 'I']);
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier);
    }
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("100K"), Some(102_400));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1M"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn acquiring_spreads_bytes_over_time() {
        let limiter = RateLimiter::new(1000);
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire(1000).await;
        }
        // Five 1000-byte chunks at 1000 B/s: the fifth may start after four seconds.
        assert_eq!(started.elapsed().as_secs(), 4);
    }
}
