//! The local-disk blob store: every conformance check on a fresh folder, then what only a store on a
//! filesystem can get wrong: keys or upload ids that reach outside the root, whole bodies held in
//! memory, crash leftovers showing through, the lock on the root, and blob folders that outlive their
//! objects.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use vodup_server::proto::crc64::Crc64;
use vodup_server::storage::{BlobStore, ByteStream, LocalStore, ObjectMeta, WriteLimits, conformance};

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

conformance_tests!(
    run_all,
    health_check_passes,
    put_head_get_round_trip,
    hello_world_has_the_oss_digests,
    overwrite_replaces_the_whole_object,
    content_md5_mismatch_keeps_nothing,
    oversized_body_keeps_nothing,
    short_body_is_incomplete_and_keeps_nothing,
    failed_body_keeps_nothing,
    parts_upload_out_of_order_and_replace,
    part_writes_check_their_limits,
    part_numbers_out_of_range_are_refused,
    complete_publishes_the_listed_parts_in_order,
    complete_with_a_missing_part_leaves_the_upload_open,
    abort_removes_parts_and_closes_the_upload,
    unknown_uploads_are_not_found,
    ranges_of_every_form,
    invalid_ranges_are_rejected,
    empty_objects,
    delete_is_idempotent,
    awkward_keys_are_distinct,
    missing_objects_are_not_found,
    large_parts_and_objects_stream_back_exactly,
    reads_in_progress_survive_overwrite_and_delete,
    concurrent_writes_leave_one_whole_object,
);

const LIMITS: WriteLimits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: None };

fn body(data: &[u8]) -> ByteStream {
    let chunk: io::Result<Bytes> = Ok(Bytes::copy_from_slice(data));
    Box::pin(futures_util::stream::iter([chunk]))
}

async fn read_all(key: &str, store: &LocalStore) -> Vec<u8> {
    let (_, mut stream) = store.get_object(key, None).await.expect("get");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("read"));
    }
    out
}

/// Every file and folder under `dir` except `skip`, with its size and content hash (files) or `None`
/// (folders), keyed by path.
fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, Option<(u64, String)>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a folder") {
            let path = entry.expect("a folder entry").path();
            if path == skip {
                continue;
            }
            if path.is_dir() {
                out.insert(path.clone(), None);
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read a file");
                out.insert(path, Some((bytes.len() as u64, hex::encode(Sha256::digest(&bytes)))));
            }
        }
    }
    out
}

/// Every path under `root`, relative.
fn tree(root: &Path) -> Vec<PathBuf> {
    snapshot(root, Path::new(""))
        .into_keys()
        .map(|p| p.strip_prefix(root).expect("under the root").to_owned())
        .collect()
}

/// Names the store itself chooses: its folders, hash fan-out, manifests, upload ids, `put-` folders and
/// part numbers. Anything else would mean a key or id chose a name.
fn is_store_name(name: &str) -> bool {
    let hex = |s: &str, upper: bool| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_digit()
                    || if upper { b.is_ascii_uppercase() } else { b.is_ascii_lowercase() }
                        && b.is_ascii_hexdigit()
            })
    };
    ["lock", "objects", "uploads", "blobs", "trash", "intents"].contains(&name)
        || (name.len() == 2 && hex(name, false))
        || name.strip_suffix(".manifest").is_some_and(|h| h.len() == 64 && hex(h, false))
        || name.strip_prefix("put-").is_some_and(|h| h.len() == 32 && hex(h, false))
        || hex(name, true)
}

#[tokio::test]
async fn hostile_keys_and_upload_ids_stay_inside_the_root() {
    let outer = tempfile::tempdir().expect("create a temporary directory");
    // Deep enough that up to four `..` from any folder of the store still land inside `outer`.
    let root = outer.path().join("l1/l2/l3/store");
    for canary in ["canary", "l1/canary", "l1/l2/canary", "l1/l2/l3/canary"] {
        std::fs::create_dir_all(outer.path().join(canary)).expect("create a canary folder");
        std::fs::write(outer.path().join(canary).join("secret"), b"do not touch").expect("write a canary");
    }
    let store = LocalStore::open(root.clone()).await.expect("open the store");
    let before = snapshot(outer.path(), &root);

    let keys = [
        "../../etc/x",
        "a/../../b",
        "/abs",
        "/etc/passwd",
        "..",
        ".",
        "%2e%2e/x",
        "../../../canary/secret",
        "../../../../canary/secret",
        "../../../../../../../../../../tmp/x",
        "..\\..\\x",
        "nul\0byte",
        "objects/../blobs",
        "lock",
    ];
    for key in keys {
        store.put_object(key, body(b"payload"), &LIMITS, ObjectMeta::default()).await.expect("put");
        assert_eq!(read_all(key, &store).await, b"payload", "{key:?}");
    }
    for key in &keys[..5] {
        store.delete_object(key).await.expect("delete");
    }
    let bad_ids = ["../../../canary", "..", "/tmp", "A/../../B", "%2E%2E", "ABC/../../..", "", "a"];
    for id in bad_ids {
        assert!(store.create_upload(id).await.is_err(), "create_upload accepted {id:?}");
        let put = store.put_part(id, 1, body(b"x"), &LIMITS).await;
        assert!(put.is_err_and(|e| e.is_not_found()), "put_part to {id:?}");
        assert!(store.list_parts(id).await.is_err_and(|e| e.is_not_found()), "list_parts of {id:?}");
        let complete = store.complete_upload(id, "k", &[1], ObjectMeta::default()).await;
        assert!(complete.is_err_and(|e| e.is_not_found()), "complete of {id:?}");
        assert!(store.abort_upload(id).await.is_err_and(|e| e.is_not_found()), "abort of {id:?}");
    }
    store.create_upload("ABC123").await.expect("create upload");
    store.put_part("ABC123", 1, body(b"part"), &LIMITS).await.expect("put part");
    store
        .complete_upload("ABC123", "../../../canary/secret", &[1], ObjectMeta::default())
        .await
        .expect("complete");
    assert_eq!(read_all("../../../canary/secret", &store).await, b"part");

    assert_eq!(snapshot(outer.path(), &root), before, "something outside the store root changed");
    for path in tree(&root) {
        for name in path.iter() {
            let name = name.to_str().expect("a UTF-8 name");
            assert!(is_store_name(name), "{} holds a name the store did not choose", path.display());
        }
    }
    assert!(!Path::new("/tmp/x").exists() && !Path::new("/abs").exists());
}

#[tokio::test]
async fn large_bodies_are_streamed_not_buffered() {
    const CHUNK: usize = 64 << 10;
    const CHUNKS: usize = 1024;
    // BufWriter (1 MiB) plus tokio's in-flight write (2 MiB), with room to spare: far below the 64 MiB body.
    const SLACK: u64 = 8 << 20;
    let (_dir, store) = open_temp().await;
    let blobs = _dir.path().join("store/blobs");
    let checked = Arc::new(AtomicUsize::new(0));
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let (stream_chunk, stream_blobs, stream_checked) = (chunk.clone(), blobs.clone(), Arc::clone(&checked));
    // Before yielding chunk n, the store must already have written all but SLACK of chunks 0..n.
    let stream = futures_util::stream::iter(0..CHUNKS).map(move |n| {
        if n % 64 == 0 && n > 0 {
            let written = staging_file_len(&stream_blobs);
            assert!(written + SLACK >= (n * CHUNK) as u64, "chunk {n}: only {written} bytes on disk");
            stream_checked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(stream_chunk.clone())
    });
    let info =
        store.put_object("big", Box::pin(stream), &LIMITS, ObjectMeta::default()).await.expect("put 64 MiB");
    assert_eq!(checked.load(Ordering::Relaxed), CHUNKS / 64 - 1);
    let mut want = Crc64::new();
    for _ in 0..CHUNKS {
        want.update(&chunk);
    }
    assert_eq!((info.size, info.crc64), (want.len(), want.value()));

    let (_, mut stream) = store.get_object("big", None).await.expect("get");
    let (mut got, mut largest) = (Crc64::new(), 0);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.expect("read");
        largest = largest.max(bytes.len());
        got.update(&bytes);
    }
    assert_eq!((got.len(), got.value()), (want.len(), want.value()));
    assert!(largest <= 1 << 20, "a GET chunk of {largest} bytes");
}

/// The size of the one staging file (`*.tmp`) being written under `blobs/`.
fn staging_file_len(blobs: &Path) -> u64 {
    for folder in std::fs::read_dir(blobs).expect("read blobs/") {
        for file in std::fs::read_dir(folder.expect("a blob folder").path()).expect("read a blob folder") {
            let file = file.expect("a blob file");
            if file.file_name().to_string_lossy().ends_with(".tmp") {
                return file.metadata().expect("stat the staging file").len();
            }
        }
    }
    panic!("no staging file under {}", blobs.display());
}

#[tokio::test]
async fn crash_leftovers_are_invisible() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    store.create_upload("ABCDEF").await.expect("create upload");
    store.put_part("ABCDEF", 1, body(b"kept part"), &LIMITS).await.expect("put part");
    // A part write interrupted before its rename, and files that are not parts at all.
    let staging = root.join("uploads/ABCDEF");
    std::fs::write(staging.join("2.0123456789abcdef0123456789abcdef.tmp"), b"half a part").expect("write");
    std::fs::write(staging.join("3.tmp"), b"").expect("write");
    std::fs::write(staging.join("01"), b"not canonical").expect("write");
    let parts = store.list_parts("ABCDEF").await.expect("list parts");
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [1]);
    store.complete_upload("ABCDEF", "assembled", &[1], ObjectMeta::default()).await.expect("complete");
    assert_eq!(read_all("assembled", &store).await, b"kept part");
    let kept: Vec<_> = tree(&root.join("blobs/ABCDEF"));
    assert_eq!(kept, [PathBuf::from("1")], "unlisted files are removed at complete");

    // A manifest write interrupted before its rename, next to a published one.
    store.put_object("k", body(b"published"), &LIMITS, ObjectMeta::default()).await.expect("put");
    let manifest = tree(&root.join("objects"))
        .into_iter()
        .map(|p| root.join("objects").join(p))
        .find(|p| p.extension().is_some_and(|e| e == "manifest") && read_json_key(p) == "k")
        .expect("the manifest of k");
    let half = manifest.with_extension("0123456789abcdef0123456789abcdef.tmp");
    std::fs::write(&half, b"{\"format\":1,\"key\":\"k\",\"blob").expect("write a torn manifest");
    assert_eq!(read_all("k", &store).await, b"published");
    // A PutObject interrupted before publishing: a blob folder no manifest names.
    std::fs::create_dir(root.join("blobs/put-0123456789abcdef0123456789abcdef")).expect("mkdir");
    assert_eq!(store.head_object("k").await.expect("head").size, 9);

    // Folders being removed when the process stopped are emptied on the next open.
    std::fs::create_dir_all(root.join("trash/put-0.x/sub")).expect("mkdir");
    std::fs::write(root.join("trash/put-0.x/sub/1"), b"garbage").expect("write");
    drop(store);
    let store = LocalStore::open(root.clone()).await.expect("reopen");
    assert!(tree(&root.join("trash")).is_empty(), "trash/ is emptied on open");
    assert_eq!(read_all("k", &store).await, b"published");
    assert_eq!(read_all("assembled", &store).await, b"kept part");
}

/// The state a crash leaves between a manifest's rename and the removal of the folder it replaced: the
/// next open finishes the publication (the replaced folder goes) and reports it. The crash itself is
/// simulated here; `vodup-cli`'s `crash.rs` kills the real server at each of its fault points.
#[tokio::test]
async fn a_publication_cut_off_after_its_rename_is_finished_on_open() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let blob_dir_of = |key: &str| {
        let manifest = tree(&root.join("objects"))
            .into_iter()
            .map(|p| root.join("objects").join(p))
            .find(|p| p.extension().is_some_and(|e| e == "manifest") && read_json_key(p) == key)
            .expect("the manifest");
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
        value["blob_dir"].as_str().unwrap().to_owned()
    };
    store.put_object("k", body(b"first"), &LIMITS, ObjectMeta::default()).await.expect("put");
    let first = blob_dir_of("k");
    let saved = dir.path().join("saved");
    std::fs::rename(root.join("blobs").join(&first), &saved).expect("set the first version aside");
    std::fs::create_dir(root.join("blobs").join(&first)).expect("an empty stand-in to retire");
    store.put_object("k", body(b"second"), &LIMITS, ObjectMeta::default()).await.expect("put again");
    let second = blob_dir_of("k");
    drop(store);
    // As if the process died right after the second manifest's rename.
    std::fs::rename(&saved, root.join("blobs").join(&first)).expect("restore");
    let intent = serde_json::json!({ "key": "k", "previous": first });
    std::fs::write(root.join("intents").join(&second), intent.to_string()).expect("write the intent");

    let store = LocalStore::open(root.clone()).await.expect("reopen");
    assert_eq!(store.recovery().finished, 1, "{:?}", store.recovery());
    assert_eq!(store.recovery().removed_folders, 1, "{:?}", store.recovery());
    assert!(!root.join("blobs").join(&first).exists(), "the replaced folder is removed");
    assert!(tree(&root.join("intents")).is_empty(), "the intent is settled");
    assert_eq!(read_all("k", &store).await, b"second");
    drop(store);
    let store = LocalStore::open(root).await.expect("reopen again");
    assert!(store.recovery().is_empty(), "nothing left to repair: {:?}", store.recovery());
}

fn read_json_key(path: &Path) -> String {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    value["key"].as_str().expect("a key").to_owned()
}

#[tokio::test]
async fn the_root_is_locked_and_everything_survives_reopening() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    store.put_object("k", body(b"durable"), &LIMITS, ObjectMeta::default()).await.expect("put");
    store.create_upload("F00D").await.expect("create upload");
    store.put_part("F00D", 2, body(b"staged"), &LIMITS).await.expect("put part");
    let second = LocalStore::open(root.clone()).await;
    assert!(second.is_err(), "a second store on the same root must be refused");
    drop(store);

    let store = LocalStore::open(root).await.expect("reopen after the first store is gone");
    assert_eq!(read_all("k", &store).await, b"durable");
    let parts = store.list_parts("F00D").await.expect("list parts after reopening");
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [2]);
    store
        .complete_upload("F00D", "later", &[2], ObjectMeta::default())
        .await
        .expect("complete after reopening");
    assert_eq!(read_all("later", &store).await, b"staged");
}

#[tokio::test]
async fn replaced_blobs_are_removed_once_their_readers_finish() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let blob_folders =
        || tree(&root.join("blobs")).into_iter().filter(|p| p.components().count() == 1).count();
    let old = vec![3u8; 3 << 20];
    store.put_object("k", body(&old), &LIMITS, ObjectMeta::default()).await.expect("put");
    let (_, mut reading) = store.get_object("k", None).await.expect("get");
    let mut got = reading.next().await.expect("a chunk").expect("read").to_vec();

    store.put_object("k", body(b"new"), &LIMITS, ObjectMeta::default()).await.expect("overwrite");
    assert_eq!(blob_folders(), 2, "the old blobs stay while a GET reads them");
    while let Some(chunk) = reading.next().await {
        got.extend_from_slice(&chunk.expect("read"));
    }
    assert!(got == old, "the GET read the old object whole");
    drop(reading);
    let deadline = Instant::now() + Duration::from_secs(10);
    while blob_folders() != 1 {
        assert!(Instant::now() < deadline, "the old blobs were not removed after their reader finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    store.create_upload("AB").await.expect("create upload");
    store.put_part("AB", 1, body(b"part"), &LIMITS).await.expect("put part");
    store.complete_upload("AB", "k", &[1], ObjectMeta::default()).await.expect("complete over k");
    assert_eq!(blob_folders(), 1, "an overwrite with no reader removes the old blobs at once");
    store.delete_object("k").await.expect("delete");
    for sub in ["blobs", "uploads", "trash"] {
        assert!(tree(&root.join(sub)).is_empty(), "{sub}/ is empty once every object is gone");
    }
    let manifests = tree(&root.join("objects")).into_iter().filter(|p| p.extension().is_some()).count();
    assert_eq!(manifests, 0, "no manifest or temporary file is left in objects/");
}

#[tokio::test]
async fn upload_ids_of_completed_uploads_cannot_be_reused() {
    let (_dir, store) = open_temp().await;
    store.create_upload("AB").await.expect("create upload");
    assert!(store.create_upload("AB").await.is_err(), "an open upload id is refused");
    store.put_part("AB", 1, body(b"part"), &LIMITS).await.expect("put part");
    store.complete_upload("AB", "k", &[1], ObjectMeta::default()).await.expect("complete");
    assert!(store.create_upload("AB").await.is_err(), "two objects would share blobs/AB");
    store.create_upload("CD").await.expect("create upload");
    store.abort_upload("CD").await.expect("abort");
    store.create_upload("CD").await.expect("an aborted upload left nothing behind");
}

#[tokio::test]
async fn failed_and_abandoned_writes_leave_no_files() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    let bad_md5 = WriteLimits { expected_md5: Some([0; 16]), ..LIMITS };
    let small = WriteLimits { max_size: 2, ..LIMITS };
    let long = WriteLimits { expected_len: Some(99), ..LIMITS };
    for limits in [&bad_md5, &small, &long] {
        assert!(store.put_object("k", body(b"abc"), limits, ObjectMeta::default()).await.is_err());
    }
    store.create_upload("AB").await.expect("create upload");
    for limits in [&bad_md5, &small, &long] {
        assert!(store.put_part("AB", 1, body(b"abc"), limits).await.is_err());
    }
    // A client that stops sending: the request future is dropped halfway through the body.
    let stalled = || -> ByteStream {
        let first: io::Result<Bytes> = Ok(Bytes::from_static(b"some bytes"));
        Box::pin(futures_util::stream::iter([first]).chain(futures_util::stream::pending()))
    };
    let put = store.put_object("k", stalled(), &LIMITS, ObjectMeta::default());
    assert!(tokio::time::timeout(Duration::from_millis(200), put).await.is_err(), "the put must stall");
    let part = store.put_part("AB", 2, stalled(), &LIMITS);
    assert!(tokio::time::timeout(Duration::from_millis(200), part).await.is_err(), "the part must stall");

    assert_eq!(tree(&root.join("uploads")), [PathBuf::from("AB")], "no staging file is left");
    assert!(tree(&root.join("blobs")).is_empty(), "no blob folder is left");
    assert!(tree(&root.join("objects")).is_empty(), "nothing was published");
    store.abort_upload("AB").await.expect("abort");
    assert!(tree(&root.join("uploads")).is_empty() && tree(&root.join("trash")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_reads_writes_and_deletes_see_whole_versions_and_leave_no_garbage() {
    let (dir, store) = open_temp().await;
    let root = dir.path().join("store");
    // Version v is 600 KB of the byte v: a torn read shows as mixed bytes or a wrong length.
    let version = |v: u8| vec![v; 600_000];
    store.put_object("k", body(&version(0)), &LIMITS, ObjectMeta::default()).await.expect("put");
    let writing = Arc::new(AtomicUsize::new(3));
    let mut writers = Vec::new();
    // One writer puts single-blob objects, one completes three-part uploads (whose later parts a GET
    // opens only when it reaches them), one deletes now and then.
    for writer in 0..3u8 {
        let (store, writing) = (store.clone(), Arc::clone(&writing));
        writers.push(tokio::spawn(async move {
            for round in 0..20u8 {
                let v = 1 + writer * 20 + round;
                match writer {
                    0 => {
                        let put = store.put_object("k", body(&version(v)), &LIMITS, ObjectMeta::default());
                        put.await.expect("put");
                    }
                    1 => {
                        let id = format!("{v:02X}");
                        store.create_upload(&id).await.expect("create upload");
                        for (n, third) in (1..).zip(version(v).chunks(200_000)) {
                            store.put_part(&id, n, body(third), &LIMITS).await.expect("put part");
                        }
                        let done = store.complete_upload(&id, "k", &[1, 2, 3], ObjectMeta::default());
                        done.await.expect("complete");
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        store.delete_object("k").await.expect("delete");
                    }
                }
            }
            writing.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (store, writing) = (store.clone(), Arc::clone(&writing));
        readers.push(tokio::spawn(async move {
            let mut whole_reads = 0;
            while writing.load(Ordering::SeqCst) > 0 {
                let (_, mut stream) = match store.get_object("k", None).await {
                    Ok(found) => found,
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => panic!("get: {e}"),
                };
                let mut bytes = Vec::new();
                // A slow client, so that overwrites land while later parts are still unopened.
                while let Some(chunk) = stream.next().await {
                    bytes.extend_from_slice(&chunk.expect("read"));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                assert_eq!(bytes.len(), 600_000, "a read returned a partial object");
                assert!(bytes.iter().all(|&b| b == bytes[0]), "a read mixed two versions");
                whole_reads += 1;
            }
            whole_reads
        }));
    }
    for writer in writers {
        writer.await.expect("a writer");
    }
    for reader in readers {
        assert!(reader.await.expect("a reader") > 0, "every reader read something");
    }
    store.put_object("k", body(&version(99)), &LIMITS, ObjectMeta::default()).await.expect("final put");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tree(&root.join("blobs")).into_iter().filter(|p| p.components().count() == 1).count() != 1 {
        assert!(Instant::now() < deadline, "replaced blob folders were left behind");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tree(&root.join("trash")).is_empty() && tree(&root.join("uploads")).is_empty());
}
