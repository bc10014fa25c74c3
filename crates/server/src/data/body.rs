//! Request bodies as the storage layer consumes them: a stream of chunks, never the whole body, with an
//! idle timeout between chunks instead of a deadline on the whole request (a 5 GiB part over a slow
//! link is legitimate; a client that stops sending is not).

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

#[cfg(test)]
mod tests {
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
}
