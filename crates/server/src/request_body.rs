//! The one idle timeout every request body read goes through, on both planes: bodies streamed into
//! storage (`data::body`), read whole (`buffered_body`) or drained after a refusal. No byte for `idle`
//! fails the body with `TimedOut`; there is no deadline on the whole body (a 5 GiB part over a slow link
//! is legitimate; a client that stops sending is not).
//!
//! tower-http's `RequestBodyTimeoutLayer` does the same between frames, but its body reports neither
//! `size_hint` nor `is_end_stream` (0.6 and 0.7), and the service reads both: a body that announces more
//! than a limit is refused, or left undrained, before a byte is read.

use std::io;
use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt as _;

use crate::storage::ByteStream;

/// The body as a [`ByteStream`] that fails with `TimedOut` if no byte arrives for `idle`.
pub fn stream(body: Body, idle: Duration) -> ByteStream {
    let chunks = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
            Ok(Some(Err(e))) => Some((Err(io::Error::other(e)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request body bytes for {} s", idle.as_secs()),
                )),
                None,
            )),
        }
    }))
}
