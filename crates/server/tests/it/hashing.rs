//! Concurrent writes through a real store share the MD5 hashing service's SIMD lanes (issue 15): every
//! blob's digests must still be exactly md-5's, and a write abandoned mid-body must neither wedge the
//! service nor touch the digests of the writes beside it.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use rand::{RngExt as _, SeedableRng as _};
use vodup_server::proto::crc64;
use vodup_server::storage::{BlobStore, ByteStream, LocalStore, WriteLimits};

const LIMITS: WriteLimits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: None };

/// `data` as a body of chunks of random lengths up to `max_chunk`, as hyper delivers them.
fn chunked(data: &[u8], seed: u64, max_chunk: usize) -> Vec<Bytes> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = rng.random_range(1..=max_chunk).min(data.len() - at);
        chunks.push(Bytes::copy_from_slice(&data[at..at + n]));
        at += n;
    }
    chunks
}

fn body(chunks: Vec<Bytes>) -> ByteStream {
    Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok::<_, io::Error>)))
}

fn random(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill(&mut data[..]);
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_of_random_sizes_get_md5_exactly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = LocalStore::open(dir.path().join("store")).await.expect("open a local store");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x15);
    let mut writes = tokio::task::JoinSet::new();
    for write in 0..24u64 {
        // From empty through inline-sized to several MiB, chunks from 1 byte to 256 KiB.
        let len = match write % 4 {
            0 => rng.random_range(0..100_000),
            1 => rng.random_range(0..1 << 20),
            _ => rng.random_range(1 << 20..6 << 20),
        };
        let data = random(&mut rng, len);
        let max_chunk = [700, 16 << 10, 64 << 10, 256 << 10][write as usize % 4];
        let store = store.clone();
        writes.spawn(async move {
            let blob = store.write(body(chunked(&data, write, max_chunk)), &LIMITS).await.expect("write");
            let md5: [u8; 16] = Md5::digest(&data).into();
            assert_eq!(blob.digests.md5, md5, "write {write}: {len} bytes in chunks up to {max_chunk}");
            assert_eq!(blob.digests.crc64, crc64::checksum(&data), "write {write}");
            assert_eq!(blob.digests.len, len as u64, "write {write}");
        });
    }
    while let Some(joined) = writes.join_next().await {
        joined.expect("a write task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_abandoned_mid_body_leave_the_others_whole() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = LocalStore::open(dir.path().join("store")).await.expect("open a local store");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x150);
    for round in 0..20u64 {
        let mut writes = tokio::task::JoinSet::new();
        for write in 0..8u64 {
            let len = rng.random_range(300_000..3_000_000);
            let data = random(&mut rng, len);
            let chunks = chunked(&data, round * 100 + write, 64 << 10);
            let store = store.clone();
            if write % 2 == 0 {
                // Abandoned: the body stalls after a few segments and the write is dropped, as when a
                // client disconnects and the handler's future is cancelled.
                let keep = rng.random_range(0..chunks.len());
                writes.spawn(async move {
                    let stalled =
                        futures_util::stream::iter(chunks.into_iter().take(keep).map(Ok::<_, io::Error>))
                            .chain(futures_util::stream::pending());
                    let written = tokio::time::timeout(
                        Duration::from_millis(20),
                        store.write(Box::pin(stalled), &LIMITS),
                    );
                    assert!(
                        written.await.is_err(),
                        "round {round} write {write}: a stalled body cannot finish"
                    );
                });
            } else {
                writes.spawn(async move {
                    let blob = store.write(body(chunks), &LIMITS).await.expect("write");
                    let md5: [u8; 16] = Md5::digest(&data).into();
                    assert_eq!(blob.digests.md5, md5, "round {round} write {write}");
                });
            }
        }
        let all = async {
            while let Some(joined) = writes.join_next().await {
                joined.expect("a write task");
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all).await.expect("no write wedged");
    }
}
