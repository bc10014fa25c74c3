//! A part in memory as a request body: sent in slices (zero-copy views of one buffer) so the shared rate
//! limit can pace it and progress can be reported as bytes leave, not only when a part is acknowledged.
//! The caller keeps its own handle on the buffer, so a retry resends the same bytes without re-reading
//! the source, and the buffer is reclaimed for the next part once the request has dropped its handle.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;

use crate::rate::RateLimiter;

/// Slice size: small enough for smooth pacing and progress, large enough to cost nothing.
pub const SLICE: usize = 256 * 1024;

/// Called with the size of each slice as it is handed to the connection.
pub type SentCallback = Arc<dyn Fn(u64) + Send + Sync>;

/// A request body over `data`. The Content-Length header must be set by the caller.
pub fn part_body(
    data: Bytes,
    limiter: Option<Arc<RateLimiter>>,
    on_sent: Option<SentCallback>,
) -> reqwest::Body {
    if limiter.is_none() && on_sent.is_none() {
        return reqwest::Body::from(data);
    }
    let slices = stream::unfold((data, limiter, on_sent), |(mut rest, limiter, on_sent)| async move {
        if rest.is_empty() {
            return None;
        }
        let slice = rest.split_to(rest.len().min(SLICE));
        let len = slice.len() as u64;
        if let Some(limiter) = &limiter {
            limiter.acquire(len).await;
        }
        if let Some(on_sent) = &on_sent {
            on_sent(len);
        }
        Some((Ok::<_, std::io::Error>(slice), (rest, limiter, on_sent)))
    });
    reqwest::Body::wrap_stream(slices)
}
