//! The S3 store on a Garage cluster that loses nodes (replication 3, consistent mode: reads and writes
//! need 2 of 3). Each test starts its own cluster (`GarageCluster`, on its own ports) and SIGKILLs nodes
//! of it, so the shared cluster stays whole. With one node dead, writes and reads go on; with two, a write
//! fails as [`StorageError::Unavailable`] (a 503 `ServiceUnavailable` to clients, which they retry) and,
//! once the nodes are back, nothing of it is visible: no blob listed, the old ones intact.

use std::time::Instant;

use vodup_server::data::error::OssApiError;
use vodup_server::proto::oss::OssErrorCode;
use vodup_server::storage::{BlobStore, Digests, S3Store, WriteLimits, conformance, s3};
use vodup_testkit::GarageCluster;

const LIMITS: WriteLimits = WriteLimits { max_size: 1 << 30, expected_md5: None, expected_len: None };

#[tokio::test]
async fn one_dead_node_still_takes_writes_and_serves_reads() {
    let Some(cluster) = GarageCluster::start() else { return };
    let store = S3Store::new(cluster.settings()).expect("configure the S3 store");
    let before = conformance::pattern(300_000, 1);
    let old = store.write(conformance::body_of(&before, 65_536), &LIMITS).await.expect("write with 3 nodes");

    cluster.kill(3);
    let started = Instant::now();
    let small = conformance::pattern(100_000, 2);
    let new =
        store.write(conformance::body_of(&small, 65_536), &LIMITS).await.expect("write with 2 of 3 nodes");
    // Longer than a chunk: a multipart upload, completed with a node down.
    let large = conformance::pattern(2 * s3::CHUNK + 99, 3);
    let multipart = store
        .write(conformance::body_of(&large, 1 << 20), &LIMITS)
        .await
        .expect("multipart with 2 of 3 nodes");
    eprintln!("two writes with node 3 dead took {:?}", started.elapsed());
    assert_eq!(multipart.digests, Digests::of(&large));
    assert_eq!(conformance::read_all(&store, &old.id, 0..before.len() as u64).await, before);
    assert_eq!(conformance::read_all(&store, &new.id, 0..small.len() as u64).await, small);
    assert!(conformance::read_all(&store, &multipart.id, 0..large.len() as u64).await == large);
    let listed = conformance::listed(&store).await;
    assert!([&old.id, &new.id, &multipart.id].iter().all(|id| listed.contains(*id)), "{listed:?}");
    store.health_check().await.expect("healthy with 2 of 3 nodes");
}

#[tokio::test]
async fn two_dead_nodes_refuse_writes_as_retryable_and_leave_nothing_visible() {
    let Some(cluster) = GarageCluster::start() else { return };
    let store = S3Store::new(cluster.settings()).expect("configure the S3 store");
    let kept = store.write(conformance::body_of(b"kept", 4), &LIMITS).await.expect("write with 3 nodes");

    cluster.kill(2);
    cluster.kill(3);
    let started = Instant::now();
    let error = store
        .write(conformance::body_of(&conformance::pattern(50_000, 4), 8192), &LIMITS)
        .await
        .expect_err("a write without quorum");
    eprintln!("the write without quorum failed after {:?}: {error}", started.elapsed());
    assert!(error.is_unavailable(), "not reported as unavailable: {error:?}");
    assert!(error.to_string().contains("unavailable"), "{error}");
    let answer = OssApiError::from_storage("req", &error, || OssApiError::new(OssErrorCode::NoSuchKey));
    assert_eq!((answer.code, answer.code.http_status()), (OssErrorCode::ServiceUnavailable, 503));
    let failure = store.probe().await.expect_err("the health check fails without quorum");
    assert!(failure.error.is_unavailable(), "{}", failure.error);

    cluster.restart(2);
    cluster.restart(3);
    // Back to quorum: the failed write left no blob, the old one reads whole.
    let restarted = Instant::now();
    let listed = loop {
        match store.list(None, 1000).await {
            Ok(page) => break page.into_iter().map(|b| b.id).collect::<Vec<_>>(),
            Err(e) if restarted.elapsed().as_secs() < 60 => {
                assert!(e.is_unavailable(), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the cluster did not come back within 60 s: {e}"),
        }
    };
    eprintln!("quorum was back {:?} after the restart", restarted.elapsed());
    assert_eq!(listed, vec![kept.id.clone()], "the failed write is visible");
    assert_eq!(conformance::read_all(&store, &kept.id, 0..4).await, b"kept");
}
