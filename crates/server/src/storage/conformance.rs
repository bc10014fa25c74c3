//! The behaviour every [`BlobStore`] must have, as `pub async fn`s that take the store under test (the
//! object_store `integration.rs` / Garage `db/test.rs` pattern). Each backend's test module calls every
//! function on a fresh store, one test each, plus [`run_all`] on one store, which proves the checks do
//! not rely on an empty store (the S3 backend will run them on a shared bucket).
//!
//! The checks pin down what the catalogue and the data plane rely on: digests computed while writing,
//! nothing kept from a write that failed its limits or lost its body, fresh ids for every write, exact
//! ranges, idempotent deletes, and a listing that pages in id order and shows every stored blob. They
//! panic with what differed. Backend specifics (paths, crash leftovers, memory) are tested by each backend.
#![cfg(any(test, feature = "testing"))]

use std::collections::BTreeSet;
use std::io;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::{BlobStore, ByteStream, Digests, StorageError, StoredBlob, WriteLimits};

/// The list of checks, written once: calls `$callback!(ARGS; check, check, …)` with every check's name
/// (not [`run_all`]). A backend's test module passes a macro that makes one test per check, so a new check
/// runs on every backend without touching their lists:
///
/// ```text
/// macro_rules! conformance_tests {
///     ($($check:ident),*) => {$( #[tokio::test] async fn $check() { conformance::$check(&store()).await } )*};
/// }
/// conformance_tests!(run_all);
/// vodup_server::storage_conformance_checks!(conformance_tests!());
/// ```
#[macro_export]
macro_rules! storage_conformance_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $callback!(
            $($args)*
            health_check_passes,
            write_read_round_trip,
            hello_world_has_the_oss_digests,
            every_write_gets_a_fresh_id,
            content_md5_mismatch_keeps_nothing,
            oversized_body_keeps_nothing,
            short_body_is_incomplete_and_keeps_nothing,
            failed_body_keeps_nothing,
            ranges_read_exactly,
            empty_blobs,
            delete_is_idempotent,
            missing_blobs_are_not_found,
            hostile_ids_are_not_found,
            listing_pages_in_id_order,
            large_blobs_stream_back_exactly,
            concurrent_writes_are_independent
        );
    };
}

macro_rules! run_each {
    ($store:ident; $($check:ident),*) => {$( $check($store).await; )*};
}

/// Runs every check, in order, on one store.
pub async fn run_all(store: &dyn BlobStore) {
    storage_conformance_checks!(run_each!(store;));
}

/// A body of `len` deterministic bytes (varied, so offsets matter).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 8) as u8)).collect()
}

/// `data` as a body of chunks of at most `chunk` bytes.
pub fn body_of(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, io::Error>> =
        data.chunks(chunk.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures_util::stream::iter(chunks))
}

fn limits() -> WriteLimits {
    WriteLimits { max_size: 1 << 40, expected_md5: None, expected_len: None }
}

/// Collects a read.
pub async fn read_all(store: &dyn BlobStore, id: &str, range: Range<u64>) -> Vec<u8> {
    let mut stream =
        store.read(id, range.clone()).await.unwrap_or_else(|e| panic!("read {id} {range:?}: {e}"));
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("read {id} {range:?}: {e}")));
    }
    out
}

async fn write(store: &dyn BlobStore, data: &[u8]) -> StoredBlob {
    store.write(body_of(data, 7919), &limits()).await.expect("write a blob")
}

/// Every id the store lists.
pub async fn listed(store: &dyn BlobStore) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(after.as_deref(), 1000).await.expect("list blobs");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        out.extend(page.into_iter().map(|b| b.id));
    }
    out
}

/// The store reports healthy.
pub async fn health_check_passes(store: &dyn BlobStore) {
    store.health_check().await.expect("health check");
}

/// A written blob reads back whole, and its digests are those of its bytes.
pub async fn write_read_round_trip(store: &dyn BlobStore) {
    let data = pattern(300_001, 1);
    let blob = write(store, &data).await;
    assert_eq!(blob.digests, Digests::of(&data), "digests of the written bytes");
    assert!(super::is_blob_id(&blob.id), "the id {:?} has the blob id form", blob.id);
    assert_eq!(read_all(store, &blob.id, 0..data.len() as u64).await, data);
    assert!(listed(store).await.contains(&blob.id), "a written blob is listed");
}

/// "hello world" has the ETag and CRC-64 OSS reports for it.
pub async fn hello_world_has_the_oss_digests(store: &dyn BlobStore) {
    let blob = write(store, b"hello world").await;
    assert_eq!(blob.digests.etag(), "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
    assert_eq!(blob.digests.crc64, 5_981_764_153_023_615_706);
}

/// Two writes of the same bytes are two blobs: nothing is deduplicated or overwritten.
pub async fn every_write_gets_a_fresh_id(store: &dyn BlobStore) {
    let a = write(store, b"same").await;
    let b = write(store, b"same").await;
    assert_ne!(a.id, b.id);
    store.delete(&a.id).await.expect("delete");
    assert_eq!(read_all(store, &b.id, 0..4).await, b"same", "deleting one leaves the other");
}

async fn assert_kept_nothing(store: &dyn BlobStore, before: &BTreeSet<String>, what: &str) {
    let after = listed(store).await;
    let new: Vec<_> = after.difference(before).collect();
    assert!(new.is_empty(), "{what} kept blobs {new:?}");
}

/// A body whose MD5 differs from `Content-MD5` fails and keeps nothing.
pub async fn content_md5_mismatch_keeps_nothing(store: &dyn BlobStore) {
    let before = listed(store).await;
    let limits = WriteLimits { expected_md5: Some([0; 16]), ..limits() };
    let result = store.write(body_of(b"some bytes", 3), &limits).await;
    assert!(matches!(result, Err(StorageError::DigestMismatch)), "got {result:?}");
    assert_kept_nothing(store, &before, "an MD5 mismatch").await;
}

/// A body over the limit (or over its announced length) fails and keeps nothing.
pub async fn oversized_body_keeps_nothing(store: &dyn BlobStore) {
    let before = listed(store).await;
    let result = store.write(body_of(&[7; 100], 10), &WriteLimits { max_size: 99, ..limits() }).await;
    assert!(matches!(result, Err(StorageError::TooLarge { max_size: 99 })), "got {result:?}");
    let result =
        store.write(body_of(&[7; 100], 10), &WriteLimits { expected_len: Some(50), ..limits() }).await;
    assert!(matches!(result, Err(StorageError::TooLarge { max_size: 50 })), "got {result:?}");
    assert_kept_nothing(store, &before, "an oversized body").await;
}

/// A body shorter than announced fails as incomplete and keeps nothing.
pub async fn short_body_is_incomplete_and_keeps_nothing(store: &dyn BlobStore) {
    let before = listed(store).await;
    let result = store.write(body_of(&[7; 10], 4), &WriteLimits { expected_len: Some(11), ..limits() }).await;
    assert!(matches!(result, Err(StorageError::Incomplete { received: 10, expected: 11 })), "got {result:?}");
    assert_kept_nothing(store, &before, "a short body").await;
}

/// A body whose stream fails (the client went away) fails the write and keeps nothing.
pub async fn failed_body_keeps_nothing(store: &dyn BlobStore) {
    let before = listed(store).await;
    let chunks: Vec<Result<Bytes, io::Error>> =
        vec![Ok(Bytes::from_static(b"abc")), Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))];
    let result = store.write(Box::pin(futures_util::stream::iter(chunks)), &limits()).await;
    assert!(matches!(result, Err(StorageError::Body(_))), "got {result:?}");
    assert_kept_nothing(store, &before, "a failed body").await;
}

/// Every range reads exactly its bytes.
pub async fn ranges_read_exactly(store: &dyn BlobStore) {
    let data = pattern(1_000_003, 2);
    let blob = write(store, &data).await;
    let len = data.len() as u64;
    for range in [0..1, 0..len, 1..len, len - 1..len, 262_143..262_145, 500_000..900_000] {
        let got = read_all(store, &blob.id, range.clone()).await;
        assert!(got == data[range.start as usize..range.end as usize], "range {range:?}");
    }
}

/// An empty body is a blob of length 0, with the empty digests.
pub async fn empty_blobs(store: &dyn BlobStore) {
    let blob = write(store, b"").await;
    assert_eq!(blob.digests, Digests::of(b""));
    assert!(listed(store).await.contains(&blob.id));
}

/// Deleting removes the blob from reads and the listing; deleting again succeeds.
pub async fn delete_is_idempotent(store: &dyn BlobStore) {
    let blob = write(store, b"to delete").await;
    store.delete(&blob.id).await.expect("delete");
    store.delete(&blob.id).await.expect("delete again");
    assert!(matches!(store.read(&blob.id, 0..1).await, Err(StorageError::NotFound(_))));
    assert!(!listed(store).await.contains(&blob.id));
}

/// A blob never written is NotFound.
pub async fn missing_blobs_are_not_found(store: &dyn BlobStore) {
    let id = super::new_blob_id();
    assert!(matches!(store.read(&id, 0..1).await, Err(StorageError::NotFound(_))));
    store.delete(&id).await.expect("deleting a missing blob succeeds");
}

/// Ids that are not blob ids never reach a path or a name: reads find nothing, deletes do nothing.
pub async fn hostile_ids_are_not_found(store: &dyn BlobStore) {
    for id in ["", "..", "../lock", "/etc/passwd", "ab/../../x", "ABCDEF0123456789ABCDEF0123456789", "a\0b"] {
        assert!(matches!(store.read(id, 0..1).await, Err(StorageError::NotFound(_))), "{id:?}");
        let _ = store.delete(id).await;
    }
    store.health_check().await.expect("still healthy");
}

/// The listing pages in ascending id order with the `after` marker, each blob once, with a write time
/// close to now.
pub async fn listing_pages_in_id_order(store: &dyn BlobStore) {
    let mut ids = BTreeSet::new();
    for n in 0..25u8 {
        ids.insert(write(store, &[n; 3]).await.id);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(after.as_deref(), 7).await.expect("list a page");
        assert!(page.len() <= 7, "a page holds at most the limit");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for blob in page {
            let age = SystemTime::now().duration_since(blob.written_at).unwrap_or_default();
            if ids.contains(&blob.id) {
                assert!(age < Duration::from_secs(300), "written_at of a fresh blob is recent");
            }
            seen.push(blob.id);
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ascending, each once");
    assert!(ids.iter().all(|id| seen.contains(id)), "every blob is listed");
}

/// A 24 MiB body in small chunks reads back exactly, whole and in a range across the middle.
pub async fn large_blobs_stream_back_exactly(store: &dyn BlobStore) {
    let data = pattern(24 << 20, 3);
    let blob = store.write(body_of(&data, 16 << 10), &limits()).await.expect("write 24 MiB");
    assert_eq!(blob.digests, Digests::of(&data));
    let got = read_all(store, &blob.id, 0..data.len() as u64).await;
    assert!(got == data, "24 MiB read back exactly");
    let mid = (10 << 20) as u64..(14 << 20) as u64 + 5;
    assert!(read_all(store, &blob.id, mid.clone()).await == data[mid.start as usize..mid.end as usize]);
}

/// Writes running at once each keep their own bytes.
pub async fn concurrent_writes_are_independent(store: &dyn BlobStore) {
    let bodies: Vec<Vec<u8>> = (0..8u8).map(|n| pattern(100_000 + usize::from(n), n)).collect();
    let limits = limits();
    let writes = bodies.iter().map(|b| store.write(body_of(b, 4096), &limits));
    let blobs = futures_util::future::join_all(writes).await;
    for (blob, data) in blobs.into_iter().zip(&bodies) {
        let blob = blob.expect("a concurrent write");
        assert_eq!(read_all(store, &blob.id, 0..data.len() as u64).await, *data);
    }
}
