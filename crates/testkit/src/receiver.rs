//! A loopback receiver for upload-complete events: records every POST (path, headers, JSON body) and
//! answers 200, or 503 while switched down, so tests can check what `vodup serve` delivers and how it
//! copes with a receiver that is away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use http::HeaderMap;
use serde_json::Value;
use tokio::net::TcpListener;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body as JSON (a JSON string when it is not JSON).
    pub body: Value,
}

impl Received {
    /// A header's value, "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// What the receiver recorded so far, in arrival order.
pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// A receiver answering 200 to every POST on `listener`.
pub fn receive(listener: TcpListener) -> Inbox {
    receive_when(listener, Arc::new(AtomicBool::new(true)))
}

/// A receiver that records and answers 200 while `up`, and answers 503 (recording nothing) while not.
/// It keeps its port throughout, so no other test can take it while it is "down".
pub fn receive_when(listener: TcpListener, up: Arc<AtomicBool>) -> Inbox {
    let inbox: Inbox = Arc::default();
    let sink = Arc::clone(&inbox);
    let app = Router::new().fallback(post(move |uri: http::Uri, headers: HeaderMap, body: String| {
        let sink = Arc::clone(&sink);
        let up = Arc::clone(&up);
        async move {
            if !up.load(Ordering::SeqCst) {
                return http::StatusCode::SERVICE_UNAVAILABLE;
            }
            let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
            sink.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
            http::StatusCode::OK
        }
    }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    inbox
}

/// Waits until `inbox` holds at least `count` requests or `within` passes; returns what it holds.
pub async fn wait_for(inbox: &Inbox, count: usize, within: Duration) -> Vec<Received> {
    let started = Instant::now();
    loop {
        let got = inbox.lock().unwrap().clone();
        if got.len() >= count || started.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
