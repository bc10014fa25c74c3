//! Rate limits for the one anonymous action, ReportUploadProgress (vod-api.md §5.13): per client
//! address and per VideoId, with `governor`'s keyed GCRA limiters.
//!
//! Anyone can send these reports, so every table here is bounded, in key size and in entries:
//! - keys are fixed-size numbers, never request text: the client's address as
//!   [`crate::client_address`] groups it (IPv6 per /64), and a VideoId
//!   parsed from its 32 hex digits (anything else cannot name a video and never reaches a table);
//! - the address limit is checked first, so a client over its limit adds no per-video entry;
//! - each table holds at most `max_keys` entries: when full, entries whose limit has fully replenished
//!   are dropped (at most once per [`PRUNE_EVERY`], so a flood cannot make every request scan the
//!   table), and a new key that still finds no room is refused like an over-limit one.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::client_address::client_group;

/// How often a full table may be pruned.
pub const PRUNE_EVERY: Duration = Duration::from_millis(200);

/// Why a report was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client address is over its limit (or the address table is full).
    Address,
    /// The video is over its limit (or the video table is full).
    Video,
}

/// The two limiters and their bounds.
#[derive(Debug)]
pub struct ProgressLimiter {
    per_address: Table,
    per_video: Table,
}

impl ProgressLimiter {
    /// Allows `per_ip` reports per second per client address and `per_media` per video (bursts of the
    /// same size), keeping at most `max_keys` entries in each table.
    pub fn new(per_ip: u32, per_media: u32, max_keys: usize) -> Self {
        Self { per_address: Table::new(per_ip, max_keys), per_video: Table::new(per_media, max_keys) }
    }

    /// Counts one report from `peer` about `video` (parsed with [`video_key`]; `None` when the report
    /// names no video, which still counts against the address).
    pub fn check(&self, peer: IpAddr, video: Option<u128>) -> Result<(), Refusal> {
        self.per_address.check(address_key(peer)).map_err(|()| Refusal::Address)?;
        match video {
            Some(video) => self.per_video.check(video).map_err(|()| Refusal::Video),
            None => Ok(()),
        }
    }

    /// Entries held (address table, video table), for tests and metrics.
    pub fn len(&self) -> (usize, usize) {
        (self.per_address.limiter.len(), self.per_video.limiter.len())
    }

    /// Whether both tables are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

/// The table key of a VideoId: its 32 hex digits as a number; `None` for anything else, which cannot
/// be a video this service issued.
pub fn video_key(video_id: &str) -> Option<u128> {
    if video_id.len() != 32 || !video_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(video_id, 16).ok()
}

/// The table key of a client ([`client_group`]): an IPv4 address in the low 32 bits, an IPv6 /64 with
/// the top bit set so the two never meet.
fn address_key(peer: IpAddr) -> u128 {
    match client_group(peer) {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) | (1 << 127),
    }
}

#[derive(Debug)]
struct Table {
    limiter: DefaultKeyedRateLimiter<u128>,
    max_keys: usize,
    last_prune: Mutex<Option<Instant>>,
}

impl Table {
    fn new(per_second: u32, max_keys: usize) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
            max_keys: max_keys.max(1),
            last_prune: Mutex::new(None),
        }
    }

    fn check(&self, key: u128) -> Result<(), ()> {
        if self.limiter.len() >= self.max_keys && !self.make_room() {
            return Err(());
        }
        self.limiter.check_key(&key).map_err(|_| ())
    }

    /// Prunes a full table (at most once per [`PRUNE_EVERY`]); whether there is room now. governor's
    /// store has no lookup, so a key already present is refused too while the table stays full: only
    /// under a flood that fills it.
    fn make_room(&self) -> bool {
        let mut last = self.last_prune.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            *last = Some(Instant::now());
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        drop(last);
        self.limiter.len() < self.max_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const A: u128 = 0xa;
    const B: u128 = 0xb;

    #[test]
    fn limits_per_address_and_per_video() {
        let limiter = ProgressLimiter::new(3, 2, 1000);
        assert_eq!(limiter.check(ip("1.1.1.1"), Some(A)), Ok(()));
        assert_eq!(limiter.check(ip("1.1.1.1"), Some(A)), Ok(()));
        assert_eq!(limiter.check(ip("1.1.1.1"), Some(A)), Err(Refusal::Video));
        assert_eq!(limiter.check(ip("1.1.1.1"), Some(B)), Err(Refusal::Address));
        assert_eq!(limiter.check(ip("2.2.2.2"), Some(B)), Ok(()));
    }

    #[test]
    fn an_address_over_its_limit_adds_no_video_entry() {
        let limiter = ProgressLimiter::new(1, 100, 1000);
        assert_eq!(limiter.check(ip("1.1.1.1"), Some(1)), Ok(()));
        for video in 2..1000 {
            assert_eq!(limiter.check(ip("1.1.1.1"), Some(video)), Err(Refusal::Address));
        }
        assert_eq!(limiter.len(), (1, 1));
    }

    #[test]
    fn tables_never_grow_past_their_bound() {
        let limiter = ProgressLimiter::new(1000, 1000, 64);
        for n in 0..10_000u32 {
            let peer = IpAddr::from(n.to_be_bytes());
            let _ = limiter.check(peer, Some(u128::from(n)));
            let (addresses, videos) = limiter.len();
            assert!(addresses <= 64 && videos <= 64, "{addresses} {videos} after {n}");
        }
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let limiter = ProgressLimiter::new(2, 100, 1000);
        assert_eq!(limiter.check(ip("2001:db8::1"), Some(1)), Ok(()));
        assert_eq!(limiter.check(ip("2001:db8::ffff:2"), Some(2)), Ok(()));
        assert_eq!(limiter.check(ip("2001:db8::3"), Some(3)), Err(Refusal::Address));
        assert_eq!(limiter.check(ip("2001:db8:0:1::1"), Some(4)), Ok(()));
        assert_eq!(address_key(ip("::ffff:1.2.3.4")), address_key(ip("1.2.3.4")));
    }

    #[test]
    fn only_32_hex_digits_name_a_video() {
        assert_eq!(video_key("0123456789abcdef0123456789ABCDEF"), Some(0x0123456789abcdef0123456789abcdef));
        for bad in [
            "",
            "abc",
            &"a".repeat(33),
            &"a".repeat(60_000),
            "+123456789abcdef0123456789abcdef",
            "g".repeat(32).as_str(),
        ] {
            assert_eq!(video_key(bad), None, "{bad:.40}");
        }
    }
}
