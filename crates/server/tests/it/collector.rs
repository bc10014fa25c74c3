//! The collector against a real server: it removes a blob only once nothing references it and its grace
//! period is over (orphans that no commit named, and blobs that overwrites, aborts, replaced parts and
//! deletions released), never a live object's blob; and racing it against commits never leaves an
//! acknowledged object unreadable or lets a commit reference a blob it removes.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use vodup_server::collector::{self, Collected};
use vodup_server::meta::{MetaError, NewBlob, NewUpload, ObjectMeta, PutCommit};
use vodup_server::state::AppState;
use vodup_server::storage::{ByteStream, WriteLimits};
use vodup_testkit::{OssCall, OssCredential, TestServer, random_bytes};

use super::support::{MIN_PART, complete_body, complete_call, initiate, parse_oss_error, put, upload_part};

const LIMITS: WriteLimits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: None };

/// A server whose collector only runs when a test calls it, with the given grace period.
async fn start(grace_secs: u64) -> TestServer {
    TestServer::start_with(|config| {
        config.sweeper.blob_grace_secs = Some(grace_secs);
        config.sweeper.collect_interval_secs = Some(86_400);
    })
    .await
}

fn body(data: &[u8]) -> ByteStream {
    let chunk: io::Result<Bytes> = Ok(Bytes::copy_from_slice(data));
    Box::pin(futures_util::stream::iter([chunk]))
}

/// One collector round.
async fn collect(state: &AppState) -> Collected {
    let (_tx, stop) = watch::channel(false);
    collector::collect(state, &stop).await.expect("a collector round")
}

/// Every blob id in storage.
async fn stored_ids(state: &AppState) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.storage.list(after.as_deref(), 1000).await.expect("list storage");
        let Some(last) = page.last() else { return ids };
        after = Some(last.id.clone());
        ids.extend(page.into_iter().map(|b| b.id));
    }
}

/// The blobs of the object at `key`, in order; panics if absent.
async fn blobs_of(state: &AppState, key: &str) -> Vec<String> {
    let (_, pieces) = state
        .meta
        .get_object(&state.site.bucket, key, true)
        .await
        .expect("read the catalogue")
        .unwrap_or_else(|| panic!("no object at {key}"));
    pieces.into_iter().map(|p| p.blob_id).collect()
}

/// The blobs of an open upload's parts.
async fn part_blobs(state: &AppState, upload_id: &str, key: &str) -> Vec<String> {
    let parts = state.meta.list_parts(upload_id, &state.site.bucket, key).await.expect("list parts");
    parts.into_iter().map(|p| p.blob_id).collect()
}

async fn get(server: &TestServer, key: &str) -> (u16, Vec<u8>) {
    let response = server.oss(OssCall::new("GET", Some(key), server.key_credential())).await;
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("GET body").to_vec())
}

#[track_caller]
fn assert_bytes(actual: &(u16, Vec<u8>), expected: &[u8], what: &str) {
    assert_eq!(actual.0, 200, "{what}: GET answered {}", actual.0);
    assert!(
        actual.1 == expected,
        "{what}: GET returned {} bytes that differ from the {} acknowledged",
        actual.1.len(),
        expected.len()
    );
}

/// The path of a blob in the local store (`<data>/store/blobs/ab/<id>`).
fn blob_path(server: &TestServer, id: &str) -> PathBuf {
    server.dir.path().join("data").join("store").join("blobs").join(&id[..2]).join(id)
}

/// Moves a blob's write time `by` into the past: the storage side of a clock, so the collector's grace
/// period is over for it at once.
fn age(server: &TestServer, id: &str, by: Duration) {
    let file = std::fs::File::options().write(true).open(blob_path(server, id)).expect("open a blob file");
    file.set_modified(SystemTime::now() - by).expect("set the blob's write time");
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_removed_only_after_the_grace_period() {
    let server = start(2).await;
    let state = &server.state;
    let kept = random_bytes(5000, 1);
    assert_eq!(server.oss(put("kept.bin", server.key_credential(), &kept)).await.status(), 200);
    let kept_blobs = blobs_of(state, "kept.bin").await;
    let orphan = state.storage.write(body(&random_bytes(3000, 2)), &LIMITS).await.expect("write a blob");

    let early = collect(state).await;
    assert_eq!(early, Collected::default(), "nothing is past its grace yet");
    assert!(stored_ids(state).await.contains(&orphan.id), "a young orphan stays");

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let due = collect(state).await;
    assert_eq!((due.orphans, due.garbage, due.failed), (1, 0, 0), "the orphan alone goes: {due:?}");
    let left = stored_ids(state).await;
    assert!(!left.contains(&orphan.id), "the orphan is removed after its grace period");
    assert!(kept_blobs.iter().all(|id| left.contains(id)), "a live object's blob is never removed");
    assert_bytes(&get(&server, "kept.bin").await, &kept, "the live object");

    // Its tombstone keeps a late commit from naming it.
    let late = PutCommit {
        bucket: state.site.bucket.clone(),
        key: "late.bin".into(),
        blob: NewBlob { id: orphan.id.clone(), digests: orphan.digests },
        meta: ObjectMeta::default(),
        forbid_overwrite: false,
    };
    let refused = state.meta.put_object(&late, None, None, state.now()).await;
    assert!(refused.is_err(), "a commit naming a collected blob fails: {refused:?}");
    assert!(state.meta.get_object(&state.site.bucket, "late.bin", false).await.expect("read").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn released_blobs_are_removed_after_the_grace_period_and_live_ones_never() {
    let server = start(2).await;
    let state = &server.state;
    let key = server.key_credential();
    let mut released = Vec::new();

    // An overwrite releases the first version.
    assert_eq!(server.oss(put("over.bin", key.clone(), &random_bytes(4000, 1))).await.status(), 200);
    released.extend(blobs_of(state, "over.bin").await);
    let over = random_bytes(6000, 2);
    assert_eq!(server.oss(put("over.bin", key.clone(), &over)).await.status(), 200);

    // A deletion releases the object.
    assert_eq!(server.oss(put("gone.bin", key.clone(), &random_bytes(100, 3))).await.status(), 200);
    released.extend(blobs_of(state, "gone.bin").await);
    let deleted = server.oss(OssCall::new("DELETE", Some("gone.bin"), key.clone())).await;
    assert_eq!(deleted.status(), 204);

    // A replaced part and an unlisted part are released by the upload and the Complete.
    let upload = initiate(&server, "multi.bin", key.clone()).await;
    upload_part(&server, "multi.bin", key.clone(), &upload, 1, &random_bytes(MIN_PART, 4)).await;
    released.extend(part_blobs(state, &upload, "multi.bin").await);
    let (first, second) = (random_bytes(MIN_PART, 5), random_bytes(777, 6));
    let e1 = upload_part(&server, "multi.bin", key.clone(), &upload, 1, &first).await;
    let e2 = upload_part(&server, "multi.bin", key.clone(), &upload, 2, &second).await;
    upload_part(&server, "multi.bin", key.clone(), &upload, 3, &random_bytes(10, 7)).await;
    let unlisted = part_blobs(state, &upload, "multi.bin").await[2].clone();
    released.push(unlisted);
    let body = complete_body(&[(1, e1.as_str()), (2, e2.as_str())]);
    assert_eq!(server.oss(complete_call("multi.bin", key.clone(), &upload, body)).await.status(), 200);

    // An abort releases every part.
    let aborted = initiate(&server, "aborted.bin", key.clone()).await;
    upload_part(&server, "aborted.bin", key.clone(), &aborted, 1, &random_bytes(50, 8)).await;
    upload_part(&server, "aborted.bin", key.clone(), &aborted, 2, &random_bytes(50, 9)).await;
    released.extend(part_blobs(state, &aborted, "aborted.bin").await);
    let abort = OssCall::new("DELETE", Some("aborted.bin"), key.clone()).query("uploadId", &aborted);
    assert_eq!(server.oss(abort).await.status(), 204);
    assert_eq!(released.len(), 6);

    let live: Vec<String> = [blobs_of(state, "over.bin").await, blobs_of(state, "multi.bin").await].concat();
    let early = collect(state).await;
    assert_eq!(early, Collected::default(), "nothing is past its grace yet");
    let stored = stored_ids(state).await;
    assert!(released.iter().chain(&live).all(|id| stored.contains(id)), "every blob is still stored");

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let due = collect(state).await;
    assert_eq!((due.garbage, due.orphans, due.failed), (6, 0, 0), "every released blob goes: {due:?}");
    let stored = stored_ids(state).await;
    assert_eq!(stored, live.iter().cloned().collect(), "exactly the live blobs remain");
    assert_eq!(state.meta.blob_counts().await.expect("count blobs").garbage, 0);
    assert_bytes(&get(&server, "over.bin").await, &over, "the overwritten object");
    assert_bytes(&get(&server, "multi.bin").await, &[first, second].concat(), "the completed object");
    assert_eq!(get(&server, "gone.bin").await.0, 404);
}

/// Rounds per writer in [`writers_racing_the_collector_never_lose_an_acknowledged_object`].
const WRITER_ROUNDS: u32 = 32;
/// Concurrent writers there.
const WRITERS: u32 = 4;

/// A failed response must be a clean OSS error: an error status and an `<Error>` body with a code.
async fn clean_failure(response: reqwest::Response, what: &str) -> String {
    let status = response.status().as_u16();
    assert!(status >= 400, "{what}: unexpected status {status}");
    let body = response.text().await.expect("error body");
    let error = parse_oss_error(&body, None);
    assert!(!error.code.is_empty(), "{what}: an error without a code: {body}");
    format!("{what}: {status} {}", error.code)
}

/// One writer's rounds on its own keys: PutObject (overwriting), a multipart upload with a replaced part
/// completed, one aborted, a put then delete of a side key. After every step, GET of the writer's key
/// returns exactly the last acknowledged bytes. Returns the failures seen (each a clean error).
async fn writer(server: &TestServer, n: u32) -> (Vec<u8>, Vec<String>) {
    let key = format!("race/{n}.bin");
    let credential: OssCredential = server.key_credential();
    let mut expected: Option<Vec<u8>> = None;
    let mut failures = Vec::new();
    for round in 0..WRITER_ROUNDS {
        let seed = u64::from(n) * 1000 + u64::from(round);
        match round % 4 {
            0 => {
                let data = random_bytes(1000 + (round as usize * 997) % 60_000, seed);
                let response = server.oss(put(&key, credential.clone(), &data)).await;
                if response.status() == 200 {
                    expected = Some(data);
                } else {
                    failures.push(clean_failure(response, "PutObject").await);
                }
            }
            1 | 2 => {
                let upload = initiate(server, &key, credential.clone()).await;
                let part = |number: u32, data: Vec<u8>| {
                    let call = OssCall::new("PUT", Some(&key), credential.clone())
                        .query("partNumber", &number.to_string())
                        .query("uploadId", &upload)
                        .body(data);
                    async move { server.oss(call).await }
                };
                let mut etags = Vec::new();
                let mut data = Vec::new();
                for (number, bytes) in [
                    (1, random_bytes(MIN_PART, seed ^ 0x10)),
                    (1, random_bytes(MIN_PART, seed ^ 0x11)),
                    (2, random_bytes(3000, seed ^ 0x12)),
                ] {
                    let response = part(number, bytes.clone()).await;
                    if response.status() == 200 {
                        let etag = response.headers()["etag"].to_str().expect("ETag").to_owned();
                        etags.retain(|(m, _): &(u32, String)| *m != number);
                        etags.push((number, etag));
                        if number == 1 {
                            data.truncate(0);
                        }
                        data.extend_from_slice(&bytes);
                    } else {
                        failures.push(clean_failure(response, "UploadPart").await);
                    }
                }
                if round % 4 == 1 && etags.len() == 2 {
                    let listed: Vec<(u32, &str)> = etags.iter().map(|(m, e)| (*m, e.as_str())).collect();
                    let call = complete_call(&key, credential.clone(), &upload, complete_body(&listed));
                    let response = server.oss(call).await;
                    if response.status() == 200 {
                        expected = Some(data);
                    } else {
                        failures.push(clean_failure(response, "CompleteMultipartUpload").await);
                    }
                } else {
                    let abort =
                        OssCall::new("DELETE", Some(&key), credential.clone()).query("uploadId", &upload);
                    let response = server.oss(abort).await;
                    if response.status() != 204 {
                        failures.push(clean_failure(response, "AbortMultipartUpload").await);
                    }
                }
            }
            _ => {
                let side = format!("race/{n}-side.bin");
                let response = server.oss(put(&side, credential.clone(), &random_bytes(500, seed))).await;
                if response.status() != 200 {
                    failures.push(clean_failure(response, "PutObject of a side key").await);
                }
                let response = server.oss(OssCall::new("DELETE", Some(&side), credential.clone())).await;
                if response.status() != 204 {
                    failures.push(clean_failure(response, "DeleteObject").await);
                }
            }
        }
        let got = get(server, &key).await;
        match &expected {
            Some(bytes) => assert_bytes(&got, bytes, &format!("writer {n} round {round}")),
            None => assert_eq!(got.0, 404, "writer {n} round {round}: nothing acknowledged yet"),
        }
    }
    (expected.expect("at least one write was acknowledged"), failures)
}

/// 4 writers × 32 rounds of PutObject, UploadPart (with replacements), Complete, Abort and DeleteObject,
/// with the collector (grace 1 s) running rounds back to back the whole time, so releases made during
/// the run are removed during it. Every acknowledged object reads back exactly after each step, every
/// failure is a clean OSS error, and at the end storage holds exactly the blobs the catalogue references.
#[tokio::test(flavor = "multi_thread")]
async fn writers_racing_the_collector_never_lose_an_acknowledged_object() {
    let server = start(1).await;
    let state = server.state.clone();
    let (stop_tx, stop) = watch::channel(false);
    let collector = tokio::spawn(async move {
        let mut total = Collected::default();
        while !*stop.borrow() {
            let done = collector::collect(&state, &stop).await.expect("a collector round");
            total.garbage += done.garbage;
            total.orphans += done.orphans;
            total.failed += done.failed;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        total
    });
    let started = std::time::Instant::now();
    let runs = (0..WRITERS).map(|n| writer(&server, n));
    let results = futures_util::future::join_all(runs).await;
    let elapsed = started.elapsed();
    stop_tx.send(true).expect("stop the collector");
    let during = collector.await.expect("the collector task");
    assert!(
        during.garbage > 0,
        "the collector removed nothing during the run ({elapsed:?}): it must outlast the grace period"
    );
    assert_eq!(during.failed, 0);

    let failures: Vec<&String> = results.iter().flat_map(|(_, f)| f).collect();
    let removed = during.garbage;
    println!(
        "{WRITERS} writers × {WRITER_ROUNDS} rounds in {elapsed:?}; {removed} released blobs removed meanwhile"
    );
    println!("failures (each a clean OSS error): {failures:?}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    collect(&server.state).await;
    let mut referenced = BTreeSet::new();
    for (n, (bytes, _)) in results.iter().enumerate() {
        let key = format!("race/{n}.bin");
        assert_bytes(&get(&server, &key).await, bytes, &format!("writer {n} at the end"));
        referenced.extend(blobs_of(&server.state, &key).await);
    }
    assert_eq!(stored_ids(&server.state).await, referenced, "storage holds exactly the referenced blobs");
}

/// Rounds in [`commits_racing_the_collector_for_their_blob_either_win_or_fail_cleanly`], and blobs per round.
const CLAIM_ROUNDS: u32 = 40;
const BLOBS_PER_ROUND: u32 = 8;

/// The narrowest race: blobs whose write time is past the grace period (aged through the store's file
/// times) are committed, half by PutObject's commit and half by UploadPart's, while a collector round
/// walks storage and claims them as orphans. 40 rounds of 8 blobs. Each commit either wins (its object or
/// part is readable with exact bytes, and later rounds never remove its blob) or fails with the
/// catalogue's error and changes nothing (then its blob is gone from storage).
#[tokio::test(flavor = "multi_thread")]
async fn commits_racing_the_collector_for_their_blob_either_win_or_fail_cleanly() {
    let server = start(1).await;
    let state = &server.state;
    let bucket = state.site.bucket.clone();
    let upload = NewUpload {
        upload_id: "C0LLEC70RRACE0000000000000000001".into(),
        bucket: bucket.clone(),
        key: "claimed/parts.bin".into(),
        media_id: None,
        content_type: String::new(),
        initiated_at: state.now(),
    };
    state.meta.create_upload(&upload, None).await.expect("create an upload");
    let mut won: HashMap<String, Vec<u8>> = HashMap::new();
    let mut lost = Vec::new();
    for round in 0..CLAIM_ROUNDS {
        let mut written = Vec::new();
        for i in 0..BLOBS_PER_ROUND {
            let data = random_bytes(64 + i as usize, u64::from(round * 100 + i));
            let blob = state.storage.write(body(&data), &LIMITS).await.expect("write a blob");
            age(&server, &blob.id, Duration::from_secs(5));
            written.push((i, blob, data));
        }
        let sweep = {
            let state = state.clone();
            tokio::spawn(async move { collect(&state).await })
        };
        let commits = written.iter().map(|(i, blob, _)| {
            let state = state.clone();
            let new = NewBlob { id: blob.id.clone(), digests: blob.digests };
            let (bucket, upload_id, upload_key) =
                (bucket.clone(), upload.upload_id.clone(), upload.key.clone());
            let (round, i) = (round, *i);
            // Spread over the collector's round: concurrent commits share one group transaction on
            // SQLite, so without a spread they would all land before (or after) the collector's claim.
            let delay = Duration::from_micros(u64::from((round * 7919 + i * 104_729) % 4000));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if i % 2 == 0 {
                    let commit = PutCommit {
                        bucket,
                        key: format!("claimed/{round}/{i}"),
                        blob: new,
                        meta: ObjectMeta::default(),
                        forbid_overwrite: false,
                    };
                    state.meta.put_object(&commit, None, None, state.now()).await.map(|_| ())
                } else {
                    let number = round * BLOBS_PER_ROUND + i;
                    state.meta.put_part(&upload_id, &bucket, &upload_key, number, &new, state.now()).await
                }
            })
        });
        let outcomes = futures_util::future::join_all(commits.collect::<Vec<_>>()).await;
        sweep.await.expect("the collector task");
        let parts = state.meta.list_parts(&upload.upload_id, &bucket, &upload.key).await.expect("list parts");
        let stored = stored_ids(state).await;
        for ((i, blob, data), outcome) in written.into_iter().zip(outcomes) {
            let key = format!("claimed/{round}/{i}");
            let number = round * BLOBS_PER_ROUND + i;
            let recorded = if i % 2 == 0 {
                state
                    .meta
                    .get_object(&bucket, &key, true)
                    .await
                    .expect("read")
                    .map(|(_, p)| p[0].blob_id.clone())
            } else {
                parts.iter().find(|p| p.part_number == number).map(|p| p.blob_id.clone())
            };
            match outcome.expect("the commit task") {
                Ok(()) => {
                    assert_eq!(
                        recorded.as_deref(),
                        Some(blob.id.as_str()),
                        "round {round}: a won commit is recorded"
                    );
                    assert!(stored.contains(&blob.id), "round {round}: a committed blob was removed");
                    won.insert(blob.id.clone(), data);
                }
                Err(error) => {
                    assert!(matches!(error, MetaError::Backend { .. }), "round {round}: {error:?}");
                    assert!(error.to_string().contains("claimed"), "round {round}: {error}");
                    assert_eq!(recorded, None, "round {round}: a failed commit changes nothing");
                    lost.push(blob.id.clone());
                }
            }
        }
    }
    // Whatever the collector claimed in a round is gone after its next round; won blobs never go.
    collect(state).await;
    let stored = stored_ids(state).await;
    for id in &lost {
        assert!(!stored.contains(id), "a lost blob is removed");
    }
    for (id, data) in &won {
        let mut read = state.storage.read(id, 0..data.len() as u64).await.expect("read a won blob");
        let mut bytes = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut read).await {
            bytes.extend_from_slice(&chunk.expect("a chunk"));
        }
        assert!(&bytes == data, "a won blob reads back exactly");
    }
    for round in 0..CLAIM_ROUNDS {
        for i in (0..BLOBS_PER_ROUND).step_by(2) {
            let key = format!("claimed/{round}/{i}");
            if let Some(expected) = state
                .meta
                .get_object(&bucket, &key, true)
                .await
                .expect("read")
                .map(|(_, p)| won[&p[0].blob_id].clone())
            {
                assert_bytes(&get(&server, &key).await, &expected, &key);
            }
        }
    }
    let total = CLAIM_ROUNDS * BLOBS_PER_ROUND;
    println!("{total} commits raced the collector: {} won, {} lost to it", won.len(), lost.len());
    assert_eq!(won.len() + lost.len(), total as usize);
    // About half go each way here; both outcomes must show, or the test did not race.
    assert!(!won.is_empty() && !lost.is_empty(), "the commits and the collector never met");
}
