//! The local-disk blob store: every conformance check on a fresh folder, then what only a store on a
//! filesystem can get wrong: ids that reach outside the root, whole bodies held in memory, crash
//! leftovers showing through, the lock on the root, and writes that fail or are abandoned.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tempfile::TempDir;
use vodup_server::proto::crc64::Crc64;
use vodup_server::storage::{BlobStore, ByteStream, LocalStore, WriteLimits, conformance};

/// A store at `<tempdir>/store`; the directory lives as long as the returned guard.
async fn open_temp() -> (TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = LocalStore::open(dir.path().join("store")).await.expect("open a fresh local store");
    (dir, store)
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let (_dir, store) = open_temp().await;
            conformance::$check(&store).await;
        }
    )*};
}

conformance_tests!(run_all);
vodup_server::storage_conformance_checks!(conformance_tests!());

const LIMITS: WriteLimits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: None };

fn body(data: &[u8]) -> ByteStream {
    let chunk: io::Result<Bytes> = Ok(Bytes::copy_from_slice(data));
    Box::pin(futures_util::stream::iter([chunk]))
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read a folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under the root").to_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn hostile_ids_never_reach_outside_the_root() {
    let (dir, store) = open_temp().await;
    let outside = dir.path().join("outside");
    std::fs::write(&outside, b"keep me").expect("write a file outside the store");
    for id in ["../outside", "../../outside", "ab/../../../outside", "/etc/passwd", "..", "lock", "tmp"] {
        assert!(store.read(id, 0..1).await.is_err(), "{id:?} read");
        let _ = store.delete(id).await;
    }
    assert_eq!(std::fs::read(&outside).expect("still there"), b"keep me");
    assert!(dir.path().join("store/lock").exists(), "the lock file is untouched");
}

#[tokio::test]
async fn large_bodies_are_streamed_not_buffered() {
    const CHUNK: usize = 64 << 10;
    const CHUNKS: usize = 1024;
    // BufWriter (1 MiB) plus tokio's in-flight write (2 MiB), with room to spare: far below the 64 MiB body.
    const SLACK: u64 = 8 << 20;
    let (dir, store) = open_temp().await;
    let tmp = dir.path().join("store/tmp");
    let checked = Arc::new(AtomicUsize::new(0));
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let (stream_chunk, stream_tmp, stream_checked) = (chunk.clone(), tmp.clone(), Arc::clone(&checked));
    // Before yielding chunk n, the store must already have written all but SLACK of chunks 0..n.
    let stream = futures_util::stream::iter(0..CHUNKS).map(move |n| {
        if n % 64 == 0 && n > 0 {
            let written: u64 = files(&stream_tmp)
                .iter()
                .map(|f| std::fs::metadata(stream_tmp.join(f)).expect("stat the temporary file").len())
                .sum();
            assert!(written + SLACK >= (n * CHUNK) as u64, "chunk {n}: only {written} bytes on disk");
            stream_checked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(stream_chunk.clone())
    });
    let blob = store.write(Box::pin(stream), &LIMITS).await.expect("write 64 MiB");
    assert_eq!(checked.load(Ordering::Relaxed), CHUNKS / 64 - 1);
    let mut want = Crc64::new();
    for _ in 0..CHUNKS {
        want.update(&chunk);
    }
    assert_eq!((blob.digests.len, blob.digests.crc64), (want.len(), want.value()));

    let mut stream = store.read(&blob.id, 0..want.len()).await.expect("read");
    let (mut got, mut largest) = (Crc64::new(), 0);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.expect("read");
        largest = largest.max(bytes.len());
        got.update(&bytes);
    }
    assert_eq!((got.len(), got.value()), (want.len(), want.value()));
    assert!(largest <= 1 << 20, "a read chunk of {largest} bytes");
}

#[tokio::test]
async fn crash_leftovers_are_invisible_and_removed_on_open() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let kept = store.write(body(b"kept"), &LIMITS).await.expect("write");
    drop(store);
    // What a crash mid-write leaves: a temporary file.
    std::fs::write(root.join("tmp/0123456789abcdef0123456789abcdef"), b"half").expect("plant a leftover");
    let store = LocalStore::open(root.clone()).await.expect("reopen");
    assert!(files(&root.join("tmp")).is_empty(), "opening empties tmp/");
    let listed = conformance::listed(&store).await;
    assert_eq!(listed.into_iter().collect::<Vec<_>>(), vec![kept.id.clone()], "only whole blobs are listed");
    assert_eq!(conformance::read_all(&store, &kept.id, 0..4).await, b"kept");
}

#[tokio::test]
async fn the_root_is_locked_and_blobs_survive_reopening() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let blob = store.write(body(b"durable"), &LIMITS).await.expect("write");
    assert!(
        matches!(
            LocalStore::open(root.clone()).await,
            Err(vodup_server::storage::StorageError::InUse { .. })
        ),
        "a second store on the same root must be refused as in use"
    );
    drop(store);
    let store = LocalStore::open(root).await.expect("reopen after the first store is gone");
    assert_eq!(conformance::read_all(&store, &blob.id, 0..7).await, b"durable");
}

#[tokio::test]
async fn failed_and_abandoned_writes_leave_no_files() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let bad_md5 = WriteLimits { expected_md5: Some([0; 16]), ..LIMITS };
    let small = WriteLimits { max_size: 2, ..LIMITS };
    let long = WriteLimits { expected_len: Some(99), ..LIMITS };
    for limits in [&bad_md5, &small, &long] {
        assert!(store.write(body(b"abc"), limits).await.is_err());
    }
    // A client that stops sending: the request future is dropped halfway through the body.
    let first: io::Result<Bytes> = Ok(Bytes::from_static(b"some bytes"));
    let stalled: ByteStream =
        Box::pin(futures_util::stream::iter([first]).chain(futures_util::stream::pending()));
    let write = store.write(stalled, &LIMITS);
    assert!(tokio::time::timeout(Duration::from_millis(200), write).await.is_err(), "the write must stall");
    assert!(files(&root.join("tmp")).is_empty(), "no temporary file is left");
    assert!(files(&root.join("blobs")).is_empty(), "no blob is left");
}
