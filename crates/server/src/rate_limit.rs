//! A small fixed-window rate limiter for the one anonymous action (ReportUploadProgress), per client IP
//! and per VideoId (vod-api.md §5.13). Over the limit the report is dropped and answered at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts events per key in one-second windows.
#[derive(Debug)]
pub struct RateLimiter {
    per_ip: u32,
    per_media: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_ip` reports per second per IP and `per_media` per media item.
    pub fn new(per_ip: u32, per_media: u32) -> Self {
        Self { per_ip, per_media, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one report; `false` if either limit is exceeded.
    pub fn allow(&self, ip: &str, media_id: &str) -> bool {
        let mut windows = self.windows.lock().expect("rate limiter lock");
        let now = Instant::now();
        if windows.len() > 50_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(1));
        }
        let mut bump = |key: String, limit: u32| {
            let entry = windows.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= Duration::from_secs(1) {
                *entry = (now, 0);
            }
            entry.1 += 1;
            entry.1 <= limit
        };
        let ip_ok = bump(format!("ip:{ip}"), self.per_ip);
        let media_ok = bump(format!("media:{media_id}"), self.per_media);
        ip_ok && media_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_media() {
        let limiter = RateLimiter::new(3, 2);
        assert!(limiter.allow("1.1.1.1", "a"));
        assert!(limiter.allow("1.1.1.1", "a"));
        assert!(!limiter.allow("1.1.1.1", "a"));
        assert!(!limiter.allow("1.1.1.1", "b"));
        assert!(limiter.allow("2.2.2.2", "c"));
    }
}
