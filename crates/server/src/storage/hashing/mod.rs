//! The MD5 hashing service: one thread, off the async runtime, that hashes the bodies of every write in
//! flight together, their blocks sharing SIMD lanes (issue 15: MD5 was 2 of the server's 2.8 CPU-seconds
//! per GiB, and one MD5 stream cannot go faster, but the server nearly always has several bodies in
//! flight).
//!
//! A write hands its body over in segments ([`Md5Stream`] gathers them, about [`SEGMENT`] bytes of the
//! body's own `Bytes`, no copy), each with the stream's MD5 state, and gets the state back when the
//! segment is hashed; it keeps one segment in flight while it gathers the next, so a write holds at most
//! two segments whatever its size.
//!
//! When to hash: a segment is hashed at once only when its writer asks for the state (half way through
//! gathering the next segment, so hashing still overlaps the write to disk or S3, and at the end of the
//! body), or when enough segments are pending to fill the engine's lanes. Until then it waits, and every
//! segment pending when a round runs rides along in lanes that would otherwise idle. Clients send their
//! parts at their own pace, so streams rarely arrive at the same instant; this lets them share lanes
//! anyway, with no timer and no writer ever waiting for another. A stream alone is hashed with the
//! fastest single-stream code ([`lanes`]). CRC-64 stays on the writer (crc-fast, 1/20 of MD5's cost).
//!
//! What it does not do: decide anything about the digests (that is [`super::checked`]), or keep
//! per-stream records (the state travels with each segment, so a writer that goes away mid-body leaves
//! nothing behind). A panic in a round fails the writes in that round, not the service; a service whose
//! thread is gone fails every write with [`HashError::Stopped`].

pub mod lanes;
pub mod stream;

use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use md5_many::Md5State;
use tokio::sync::oneshot;

pub use stream::Md5Stream;

use lanes::{Job, Lanes};

/// Bytes a write gathers before it hands them to the service: enough work per hand-over (about 0.4 ms
/// of one stream) to make the thread hop negligible, small enough that a write holds little.
pub const SEGMENT: usize = 256 << 10;

/// Why a segment could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hashing thread is gone, or dropped the segment after a failure.
    #[error(
        "the MD5 hashing service stopped; the write was not stored (restart the server if this persists)"
    )]
    Stopped,
}

/// What the service thread is told.
#[derive(Debug)]
enum Message {
    Hash(Job),
    /// A writer asked for a pending segment's state, or went away: look again.
    Wake,
    /// Tests stop the thread to prove writers fail cleanly when it is gone.
    #[cfg(test)]
    Stop,
}

/// A handle on a hashing service thread; clones share the thread, which ends when the last handle and
/// the last stream on it are gone.
#[derive(Debug, Clone)]
pub struct Md5Service {
    sender: mpsc::Sender<Message>,
}

impl Md5Service {
    /// The process's service, started on first use; every store's writes share its lanes.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Md5Service> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// A new service on its own thread.
    pub fn start() -> Self {
        let (sender, receiver) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("vodup-md5".into()).spawn(move || serve(&receiver));
        if let Err(e) = spawned {
            // The receiver went with the failed closure, so every write fails with `Stopped`, and says so.
            tracing::error!(error = %e, "could not start the MD5 hashing thread; writes will fail");
        }
        Self { sender }
    }

    /// A new stream of this service, for one body.
    pub fn stream(&self) -> Md5Stream {
        Md5Stream::new(self.clone())
    }

    /// Hands `segment` over with the stream's `state`; the receiver gets the state after it, which is
    /// hashed when `demanded` is set (and [`Self::wake`] called) or when others fill the lanes.
    fn submit(
        &self,
        state: Md5State,
        segment: Vec<Bytes>,
        demanded: Arc<AtomicBool>,
    ) -> Result<oneshot::Receiver<Md5State>, HashError> {
        let (done, receiver) = oneshot::channel();
        let job = Job { state, segment, done, demanded };
        self.sender.send(Message::Hash(job)).map_err(|_| HashError::Stopped)?;
        Ok(receiver)
    }

    /// Tells the thread to look at its pending segments again.
    fn wake(&self) -> Result<(), HashError> {
        self.sender.send(Message::Wake).map_err(|_| HashError::Stopped)
    }

    #[cfg(test)]
    fn stop(&self) {
        let _ = self.sender.send(Message::Stop);
    }
}

/// The service thread: runs rounds while a writer waits or the lanes are full, sleeps in `recv`
/// otherwise (a new segment or a writer's request wakes it).
fn serve(receiver: &mpsc::Receiver<Message>) {
    let mut lanes = Lanes::new();
    loop {
        if lanes.is_empty() || !(lanes.any_demanded() || lanes.full()) {
            lanes.prune();
            match receiver.recv() {
                Ok(message) => {
                    if !take(&mut lanes, message) {
                        return;
                    }
                }
                Err(mpsc::RecvError) => return,
            }
        }
        while let Ok(message) = receiver.try_recv() {
            if !take(&mut lanes, message) {
                return;
            }
        }
        if !(lanes.any_demanded() || lanes.full()) {
            continue;
        }
        let pending = lanes.len();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lanes.round())).is_err() {
            // The states of this round are suspect: fail its writes (their receivers see the senders
            // dropped), keep serving the others that come.
            tracing::error!(pending, "an MD5 hashing round panicked; the writes in it fail");
            lanes.clear();
        }
    }
}

/// Adds a message's job; false when the thread is told to stop.
fn take(lanes: &mut Lanes, message: Message) -> bool {
    match message {
        Message::Hash(job) => {
            lanes.add(job);
            true
        }
        Message::Wake => true,
        #[cfg(test)]
        Message::Stop => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use md5::{Digest as _, Md5};
    use rand::{RngExt as _, SeedableRng as _};

    use super::*;

    fn body(rng: &mut impl rand::Rng, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        data
    }

    /// Feeds `data` to a stream of `service` in chunks of random lengths up to `max_chunk`.
    async fn hash(
        service: &Md5Service,
        data: &[u8],
        seed: u64,
        max_chunk: usize,
    ) -> Result<[u8; 16], HashError> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut stream = service.stream();
        let mut at = 0;
        while at < data.len() {
            let n = rng.random_range(1..=max_chunk).min(data.len() - at);
            stream.update(Bytes::copy_from_slice(&data[at..at + n])).await?;
            at += n;
            if rng.random_ratio(1, 8) {
                tokio::task::yield_now().await;
            }
        }
        stream.finish().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_get_the_md5_of_their_bodies() {
        let service = Md5Service::start();
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..40u64 {
            // Empty, inline-sized, one segment, and many segments; chunks from 1 byte to 100 KiB.
            let len = match writer % 4 {
                0 => rng.random_range(0..INLINE_PROBE),
                1 => rng.random_range(0..SEGMENT * 2),
                _ => rng.random_range(SEGMENT..SEGMENT * 12),
            };
            let data = body(&mut rng, len);
            let max_chunk = [1 << 10, 16 << 10, 100 << 10][writer as usize % 3];
            let service = service.clone();
            writers.spawn(async move {
                let got = hash(&service, &data, writer, max_chunk).await.expect("service running");
                let want: [u8; 16] = Md5::digest(&data).into();
                assert_eq!(got, want, "writer {writer}: {} bytes in chunks up to {max_chunk}", data.len());
            });
        }
        while let Some(joined) = writers.join_next().await {
            joined.expect("writer");
        }
    }

    const INLINE_PROBE: usize = stream::INLINE * 2;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_dropped_mid_body_neither_wedge_nor_corrupt_the_others() {
        let service = Md5Service::start();
        let mut rng = rand::rngs::StdRng::seed_from_u64(150);
        for round in 0..30u64 {
            let mut writers = tokio::task::JoinSet::new();
            let mut doomed = Vec::new();
            for writer in 0..12u64 {
                let len = rng.random_range(SEGMENT / 2..SEGMENT * 6);
                let data = body(&mut rng, len);
                let service = service.clone();
                let seed = round * 100 + writer;
                let handle = writers.spawn(async move {
                    let got = hash(&service, &data, seed, 64 << 10).await.expect("service running");
                    let want: [u8; 16] = Md5::digest(&data).into();
                    assert_eq!(got, want, "round {round} writer {writer}");
                });
                if writer % 3 == 0 {
                    doomed.push(handle);
                }
            }
            // A third of the writers go away mid-body, with a segment in flight or being gathered.
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..3000))).await;
            for handle in doomed {
                handle.abort();
            }
            while let Some(joined) = writers.join_next().await {
                if let Err(e) = joined {
                    assert!(e.is_cancelled(), "round {round}: {e}");
                }
            }
        }
        // Still serving, and promptly.
        let data = vec![5u8; SEGMENT * 3];
        let got = tokio::time::timeout(Duration::from_secs(10), hash(&service, &data, 1, 64 << 10))
            .await
            .expect("the service answers after the races")
            .expect("service running");
        assert_eq!(got, <[u8; 16]>::from(Md5::digest(&data)));
    }

    #[tokio::test]
    async fn a_write_fails_cleanly_when_the_service_is_gone() {
        let service = Md5Service::start();
        let mut stream = service.stream();
        stream.update(Bytes::from(vec![1u8; SEGMENT])).await.expect("first segment handed over");
        service.stop();
        let mut failed = None;
        for _ in 0..4 {
            if let Err(e) = stream.update(Bytes::from(vec![2u8; SEGMENT])).await {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("a write on a stopped service fails");
        assert!(matches!(failed, HashError::Stopped));
        assert!(failed.to_string().contains("hashing service stopped"), "{failed}");
        // A new stream fails too, at its first segment, instead of hanging.
        let mut late = service.stream();
        let result = tokio::time::timeout(Duration::from_secs(5), async {
            late.update(Bytes::from(vec![3u8; SEGMENT])).await?;
            late.finish().await
        })
        .await
        .expect("no hang");
        assert!(matches!(result, Err(HashError::Stopped)));
    }
}
