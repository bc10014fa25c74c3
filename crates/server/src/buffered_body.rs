//! Request bodies read whole into memory (the control plane's RPC forms, CompleteMultipartUpload's part
//! list), within one memory budget shared by every request of both planes.
//!
//! Object bytes never come through here: PutObject and UploadPart stream (`data::body`). The bodies here
//! are small, but a client can open many connections and send each one half a body, so three bounds
//! hold: each body's size (`limit`), the time between two chunks (the same idle timeout as streamed
//! bodies) and in all ([`BUFFERED_BODY_DEADLINE`]), and the bytes all buffered bodies hold at once
//! ([`BodyBudget`]). Bytes are charged against the budget as they arrive, before they are kept, so a
//! request that finds the budget spent is refused at once (503, retryable) instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest a buffered body may take to arrive, however steadily it trickles.
pub const BUFFERED_BODY_DEADLINE: Duration = Duration::from_secs(60);

/// The bytes every buffered body may hold at once, together.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(total)), total }
    }

    /// Bytes not held by any body now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// The budget's size.
    pub fn total(&self) -> usize {
        self.total
    }
}

/// A body read whole; its bytes count against the budget until it is dropped.
#[derive(Debug)]
pub struct Buffered {
    /// The body.
    pub bytes: Bytes,
    _charge: Option<OwnedSemaphorePermit>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The body is larger than the request's limit.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Other requests hold the whole budget.
    #[error("the server is holding too many request bodies; retry shortly")]
    Busy,
    /// No byte arrived for the idle timeout, or the whole body took longer than the deadline.
    #[error("the request body did not arrive in time ({0})")]
    TimedOut(&'static str),
    /// The connection failed or closed mid-body.
    #[error("reading the request body failed: {0}")]
    Broken(String),
}

/// Reads `body` whole: at most `limit` bytes, no gap between chunks longer than `idle`, all of it
/// within [`BUFFERED_BODY_DEADLINE`], every byte charged to `budget` before it is kept.
pub async fn read(
    body: Body,
    limit: usize,
    idle: Duration,
    budget: &BodyBudget,
) -> Result<Buffered, BufferError> {
    match tokio::time::timeout(BUFFERED_BODY_DEADLINE, read_within(body, limit, idle, budget)).await {
        Ok(result) => result,
        Err(_) => Err(BufferError::TimedOut("the deadline for the whole body passed")),
    }
}

async fn read_within(
    body: Body,
    limit: usize,
    idle: Duration,
    budget: &BodyBudget,
) -> Result<Buffered, BufferError> {
    // A declared Content-Length over the limit is refused before a byte is read.
    if usize::try_from(axum::body::HttpBody::size_hint(&body).lower())
        .map_or(true, |declared| declared > limit)
    {
        return Err(BufferError::TooLarge { limit });
    }
    let mut chunks = crate::request_body::stream(body, idle);
    let mut buffer = BytesMut::new();
    let mut charge: Option<OwnedSemaphorePermit> = None;
    loop {
        let chunk = match chunks.next().await {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(BufferError::TimedOut("no byte arrived for the idle timeout"));
            }
            Some(Err(e)) => return Err(BufferError::Broken(e.to_string())),
        };
        if chunk.is_empty() {
            continue;
        }
        let len = buffer.len().checked_add(chunk.len()).filter(|len| *len <= limit);
        if len.is_none() {
            return Err(BufferError::TooLarge { limit });
        }
        let more = u32::try_from(chunk.len()).map_err(|_| BufferError::TooLarge { limit })?;
        let permit =
            Arc::clone(&budget.permits).try_acquire_many_owned(more).map_err(|_| BufferError::Busy)?;
        match &mut charge {
            Some(held) => held.merge(permit),
            None => charge = Some(permit),
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Buffered { bytes: buffer.freeze(), _charge: charge })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> Body {
        let items: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p.as_bytes()))).collect();
        Body::from_stream(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn reads_the_whole_body_and_holds_its_charge_until_dropped() {
        let budget = BodyBudget::new(100);
        let read = read(chunks(&["hello ", "world"]), 64, Duration::from_secs(1), &budget).await.unwrap();
        assert_eq!(&read.bytes[..], b"hello world");
        assert_eq!(budget.available(), 89);
        drop(read);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn a_body_over_its_limit_is_refused_and_releases_its_charge() {
        let budget = BodyBudget::new(100);
        let err = read(chunks(&["12345", "67890"]), 8, Duration::from_secs(1), &budget).await.unwrap_err();
        assert!(matches!(err, BufferError::TooLarge { limit: 8 }), "{err}");
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_at_once() {
        let budget = BodyBudget::new(10);
        let held = read(chunks(&["12345678"]), 64, Duration::from_secs(1), &budget).await.unwrap();
        let err = read(chunks(&["123"]), 64, Duration::from_secs(1), &budget).await.unwrap_err();
        assert!(matches!(err, BufferError::Busy), "{err}");
        drop(held);
        assert!(read(chunks(&["123"]), 64, Duration::from_secs(1), &budget).await.is_ok());
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_releases_its_charge() {
        let budget = BodyBudget::new(100);
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let body = Body::from_stream(first.chain(futures_util::stream::pending()));
        let err = read(body, 64, Duration::from_millis(50), &budget).await.unwrap_err();
        assert!(matches!(err, BufferError::TimedOut(_)), "{err}");
        assert_eq!(budget.available(), 100);
    }
}
