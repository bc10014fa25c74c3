//! What one connection's watchdog knows: when bytes last moved, whether a request head is being read
//! and since when, how many requests are inside the service, and the framing verdict on every head.
//!
//! The socket is wrapped in [`Watched`], which records reads and writes and feeds every byte read to
//! the [`Framing`] tracker before hyper sees it. So the verdict on the n-th head is always recorded
//! before hyper hands the n-th request to the service, which asks for it with [`Shared::next_request`].
//! [`watchdog`] turns the record into the two timeouts hyper 1.x cannot give separately: the
//! header-read timeout (a head, or a new connection's first head, must arrive whole within it) and the
//! idle timeout (no request in the service and no byte either way).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::framing::{Event, Framing, Verdict};

/// Milliseconds value meaning "no head is being read".
const NO_HEAD: u64 = u64::MAX;

/// The state one connection's socket wrapper, service and watchdog share.
#[derive(Debug)]
pub struct Shared {
    opened: Instant,
    /// Milliseconds since `opened` when a byte last moved.
    last_io: AtomicU64,
    /// Milliseconds since `opened` when the head being read started ([`NO_HEAD`] between heads). A new
    /// connection starts at 0: its first head is due within the header-read timeout.
    head_started: AtomicU64,
    /// Requests inside the service (called, response not yet produced).
    in_flight: AtomicUsize,
    /// Heads the tracker has judged, and requests the service has taken.
    verdicts: Mutex<Verdicts>,
}

#[derive(Debug, Default)]
struct Verdicts {
    judged: u64,
    taken: u64,
    /// Indices of heads to refuse (few: hyper closes the connection after the first).
    refused: VecDeque<u64>,
    /// From this head on, every one is refused (the tracker lost the framing).
    unknown_from: Option<u64>,
}

/// Why a request is refused before the service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its head has both `Content-Length` and `Transfer-Encoding`.
    AmbiguousFraming,
    /// An earlier part of the connection could not be framed, so where this request starts is unsure.
    LostFraming,
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request head (or a new connection's first) did not arrive whole in time.
    HeaderRead,
    /// Nothing moved and no request was being served.
    Idle,
}

impl Shared {
    /// State for a connection accepted now.
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            verdicts: Mutex::new(Verdicts::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn touch(&self) {
        self.last_io.store(self.now_ms(), Ordering::Relaxed);
    }

    fn on_framing(&self, event: Event) {
        match event {
            Event::HeadStarted => {
                // Keep a running start (a new connection's 0) rather than restarting it.
                let _ = self.head_started.compare_exchange(
                    NO_HEAD,
                    self.now_ms(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Event::Head(verdict) => {
                self.head_started.store(NO_HEAD, Ordering::Relaxed);
                let mut v = self.verdicts.lock().expect("verdicts lock");
                let index = v.judged;
                v.judged += 1;
                if verdict == Verdict::Ambiguous {
                    v.refused.push_back(index);
                }
            }
        }
    }

    fn framing_lost(&self) {
        let mut v = self.verdicts.lock().expect("verdicts lock");
        let judged = v.judged;
        v.unknown_from.get_or_insert(judged);
        drop(v);
        // No more head starts will be seen: the idle timeout governs from here.
        self.head_started.store(NO_HEAD, Ordering::Relaxed);
    }

    /// The service takes its next request: `Some` when it must be refused. Hold the returned guard until
    /// the response is produced.
    pub fn next_request(self: &Arc<Self>) -> (Option<Refusal>, InFlight) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let mut v = self.verdicts.lock().expect("verdicts lock");
        let index = v.taken;
        v.taken += 1;
        let refusal = if v.refused.front() == Some(&index) {
            v.refused.pop_front();
            Some(Refusal::AmbiguousFraming)
        } else if v.unknown_from.is_some_and(|from| index >= from) || index >= v.judged {
            Some(Refusal::LostFraming)
        } else {
            None
        };
        drop(v);
        (refusal, InFlight(self.clone()))
    }
}

/// A request inside the service; dropping it ends that.
#[derive(Debug)]
pub struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Completes when the connection has outlived one of its timeouts.
pub async fn watchdog(shared: &Shared, header_read: Duration, idle: Duration) -> Expired {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
    let (header_ms, idle_ms) = (ms(header_read), ms(idle));
    loop {
        let now = shared.now_ms();
        let (deadline, reason) = if shared.in_flight.load(Ordering::Relaxed) > 0 {
            // The service owns the pace (bodies have their own idle timeout); look again later.
            (now.saturating_add(idle_ms), None)
        } else {
            match shared.head_started.load(Ordering::Relaxed) {
                NO_HEAD => {
                    (shared.last_io.load(Ordering::Relaxed).saturating_add(idle_ms), Some(Expired::Idle))
                }
                started => (started.saturating_add(header_ms), Some(Expired::HeaderRead)),
            }
        };
        if now >= deadline
            && let Some(reason) = reason
        {
            return reason;
        }
        let wait = Duration::from_millis(deadline.saturating_sub(now).max(1));
        tokio::time::sleep(wait).await;
    }
}

/// The socket, watched: every read feeds the framing tracker, every byte moved counts as activity.
#[derive(Debug)]
pub struct Watched {
    stream: TcpStream,
    shared: Arc<Shared>,
    framing: Framing,
}

impl Watched {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
        Self { stream, shared, framing: Framing::default() }
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.shared.touch();
            let shared = &this.shared;
            let was_stopped = this.framing.is_stopped();
            this.framing.feed(read, &mut |event| shared.on_framing(event));
            if !was_stopped && this.framing.is_stopped() {
                shared.framing_lost();
            }
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.shared.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.shared.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
