//! Request bodies as the storage layer consumes them: a stream of chunks, never the whole body, with an
//! idle timeout between chunks instead of a deadline on the whole request (a 5 GiB part over a slow
//! link is legitimate; a client that stops sending is not).
//!
//! Also what happens to the part of a body nobody read. A handler gets the body [`lend`]-ed: whatever it
//! leaves unread (all of it, when the request is refused before the handler runs) comes back to the
//! data plane when the handler drops it, and [`drain`] reads and discards it before the answer is sent.
//! Without that, hyper reads at most one more chunk, sends the answer and closes the connection with
//! the client's bytes still unread, so the kernel resets it; a client that writes its whole body before
//! it reads (Node.js, ali-oss) then sees `write EPIPE` instead of the 403 and its OSS code.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body::{Frame, SizeHint};

pub use crate::request_body::stream;

/// What a handler left of a lent body.
#[derive(Debug)]
pub struct Leftover {
    /// The body, positioned after the last chunk the handler read.
    pub body: Body,
    /// Whether the handler asked for any of it. hyper sends `100 Continue` on the first read, so an
    /// unread body of a request with `Expect: 100-continue` was never sent by the client.
    pub read: bool,
}

/// Where a lent body comes back to.
#[derive(Debug, Clone, Default)]
pub struct Returned(Arc<Mutex<Option<Leftover>>>);

impl Returned {
    /// The leftover, once the handler has dropped the body; `None` while something still holds it.
    pub fn take(&self) -> Option<Leftover> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

/// `body` for a handler, and the place its unread rest comes back to when the handler drops it.
pub fn lend(body: Body) -> (Body, Returned) {
    let returned = Returned::default();
    (Body::new(Lent { body: Some(body), read: false, home: returned.clone() }), returned)
}

/// A body on loan: reads go through; dropping it hands the rest back (a lock taken once, on drop).
struct Lent {
    body: Option<Body>,
    read: bool,
    home: Returned,
}

impl HttpBody for Lent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        this.read = true;
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            *self.home.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Leftover { body, read: self.read });
        }
    }
}

/// How a [`drain`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The body ended: `discarded` bytes were read and thrown away. The connection can be kept.
    Whole {
        /// Bytes discarded.
        discarded: u64,
    },
    /// The body did not end within the limit (or announced more than the limit, and none was read), failed,
    /// or stalled for the idle timeout; the rest stays unread and the connection must close.
    Abandoned {
        /// Bytes discarded before giving up.
        discarded: u64,
    },
}

/// Reads what is left of `body` and throws it away, chunk by chunk as it arrives (nothing is kept), at most
/// `limit` bytes, with the idle timeout of [`stream`] between chunks. A body whose announced remainder
/// exceeds `limit` is not read at all: reading part of it would not spare the client its broken pipe.
pub async fn drain(body: Body, idle: Duration, limit: u64) -> Drained {
    if body.is_end_stream() {
        return Drained::Whole { discarded: 0 };
    }
    if body.size_hint().lower() > limit {
        return Drained::Abandoned { discarded: 0 };
    }
    let mut chunks = stream(body, idle);
    let mut discarded = 0u64;
    while let Some(chunk) = chunks.next().await {
        let Ok(chunk) = chunk else { return Drained::Abandoned { discarded } };
        discarded = discarded.saturating_add(chunk.len() as u64);
        if discarded > limit {
            return Drained::Abandoned { discarded };
        }
    }
    Drained::Whole { discarded }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[tokio::test]
    async fn passes_chunks_through() {
        let body = Body::from("hello world");
        let mut s = stream(body, Duration::from_secs(1));
        let mut all = Vec::new();
        while let Some(chunk) = s.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(all, b"hello world");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let pending = futures_util::stream::pending::<Result<bytes::Bytes, io::Error>>();
        let mut s = stream(Body::from_stream(pending), Duration::from_millis(50));
        let err = s.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_lent_body_comes_back_with_what_was_not_read() {
        let chunks = ["one ", "two ", "three"].map(|c| Ok::<_, io::Error>(Bytes::from_static(c.as_bytes())));
        let (body, returned) = lend(Body::from_stream(futures_util::stream::iter(chunks)));
        let mut s = stream(body, Duration::from_secs(1));
        assert_eq!(s.next().await.unwrap().unwrap(), "one ");
        assert!(returned.take().is_none(), "still on loan");
        drop(s);
        let left = returned.take().unwrap();
        assert!(left.read);
        assert_eq!(drain(left.body, Duration::from_secs(1), 100).await, Drained::Whole { discarded: 9 });
    }

    #[tokio::test]
    async fn an_untouched_body_says_so() {
        let (body, returned) = lend(Body::from("unread"));
        drop(body);
        let left = returned.take().unwrap();
        assert!(!left.read);
        assert_eq!(drain(left.body, Duration::from_secs(1), 6).await, Drained::Whole { discarded: 6 });
    }

    #[tokio::test]
    async fn drain_stops_at_the_limit_and_on_a_stall() {
        // Announced larger than the limit: not read at all.
        let announced = drain(Body::from(vec![0u8; 10]), Duration::from_secs(1), 9).await;
        assert_eq!(announced, Drained::Abandoned { discarded: 0 });
        // Unannounced (a stream): read up to the limit, then given up.
        let chunks = (0..4).map(|_| Ok::<_, io::Error>(Bytes::from_static(b"abcd")));
        let streamed =
            drain(Body::from_stream(futures_util::stream::iter(chunks)), Duration::from_secs(1), 10);
        assert_eq!(streamed.await, Drained::Abandoned { discarded: 12 });
        let stalled = Body::from_stream(futures_util::stream::pending::<Result<Bytes, io::Error>>());
        let drained = drain(stalled, Duration::from_millis(50), 10).await;
        assert_eq!(drained, Drained::Abandoned { discarded: 0 });
    }
}
