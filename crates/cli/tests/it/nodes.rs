//! Two `vodup serve` nodes on one PostgreSQL database and one Garage bucket, behind the testkit's
//! round-robin balancer (one for the VOD ports, one for the OSS ports), as a deployment of stateless nodes
//! runs: `vodup upload` talks to the balancer only.
//!
//! A node killed with SIGKILL in the middle of uploads: every upload finishes through the other node (the
//! balancer passes over a node that refuses connections; a request cut off mid-way is retried by the
//! client), the event receiver gets every media's event at least once (the dead node's claimed events
//! come due again when its claims end), and once the collector has run (on the node left, after the dead
//! node's lease expired) no blob is left in the bucket that the catalogue does not reference.
//!
//! Without a PostgreSQL (`VODUP_TEST_POSTGRES_URL`) or a Garage (`VODUP_TEST_GARAGE_*`) the test reports a
//! missing component (a failure under `VODUP_REQUIRE_ALL=1`).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use sqlx::Connection as _;
use tokio::net::TcpListener;
use vodup_server::storage::{BlobStore as _, S3Settings, S3Store};
use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::receiver::{Inbox, receive, wait_for};
use vodup_testkit::{Api, RoundRobin, ServeOptions, ServeProcess, TestDatabase, skip};

use super::support::{file_crc, read_back, run, upload};

const FILES: usize = 6;
const FILE_SIZE: usize = 12 << 20;

/// Two nodes, their balancers, and what they share.
struct Cluster {
    nodes: Vec<ServeProcess>,
    /// Signed calls through the balancers.
    api: Api,
    vod: RoundRobin,
    oss: RoundRobin,
    inbox: Inbox,
    s3: S3Settings,
    database: TestDatabase,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(count: usize) -> Option<Self> {
        let Some(s3) = vodup_testkit::garage::test_garage() else {
            skip(vodup_testkit::garage::GARAGE_MISSING);
            return None;
        };
        let database = TestDatabase::create().await?;
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callback = format!("http://{}/events", listener.local_addr().unwrap());
        let inbox = receive(listener);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let vod = RoundRobin::start(any, Vec::new()).await.unwrap();
        let oss = RoundRobin::start(any, Vec::new()).await.unwrap();
        // Collector rounds every 300 ms for blobs unreferenced for a second; a dead node's event claims
        // end after 2 s.
        let config = dir.path().join("vodup.toml");
        std::fs::write(
            &config,
            "[sweeper]\ncollect_interval_ms = 300\n[events]\nclaim_secs = 2\npoll_interval_ms = 100\n",
        )
        .unwrap();
        let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("node"));
        options.on_remote(database.url(), &s3);
        options.args.extend(
            [
                "--public-oss-endpoint",
                &oss.url(),
                "--callback-url",
                &callback,
                "--blob-grace",
                "1",
                "--config",
                &config.display().to_string(),
            ]
            .map(str::to_owned),
        );
        let key = options.create_key();
        let mut nodes = Vec::new();
        for n in 0..count {
            let node = ServeOptions { data: dir.path().join(format!("node{n}")), ..options.clone() };
            nodes.push(ServeProcess::start(&node, &key, &[]));
        }
        vod.set_upstreams(nodes.iter().map(|n| address(&n.vod_url)).collect());
        oss.set_upstreams(nodes.iter().map(|n| address(&n.oss_url)).collect());
        let bucket = nodes[0].bucket().to_owned();
        assert!(nodes.iter().all(|n| n.bucket() == bucket), "the nodes agree on the bucket");
        let api = Api::new(vod.url(), oss.url(), bucket, key.0, key.1);
        Some(Self { nodes, api, vod, oss, inbox, s3, database, dir })
    }

    /// Blob ids in the bucket under this cluster's prefix.
    async fn stored_blobs(&self) -> HashSet<String> {
        let store = S3Store::new(self.s3.clone()).expect("open the bucket");
        let mut found = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list(after.as_deref(), 500).await.expect("list the bucket");
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            found.extend(page.into_iter().map(|b| b.id));
        }
        found
    }

    /// Blob ids an object version or an open upload's part references, read from the catalogue.
    async fn referenced_blobs(&self) -> HashSet<String> {
        let mut connection = sqlx::PgConnection::connect(self.database.url()).await.expect("connect");
        sqlx::query_scalar::<_, String>("SELECT blob_id FROM object_blobs UNION SELECT blob_id FROM parts")
            .fetch(&mut connection)
            .try_collect()
            .await
            .expect("read references")
    }
}

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().expect("a node address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_upload_leaves_every_upload_to_the_other() {
    let Some(mut cluster) = Cluster::start(2).await else { return };
    let mut uploads = Vec::new();
    let mut expected = Vec::new();
    for n in 0..FILES {
        let path = cluster.dir.path().join(format!("clip-{n}.mp4"));
        write_random_file(&path, FILE_SIZE as u64, n as u64 + 1).unwrap();
        expected.push(file_crc(&path));
        let mut command = upload(
            &cluster.api,
            &cluster.dir.path().join(format!("client{n}")),
            "video",
            path.to_str().unwrap(),
        );
        // Slow enough that the kill lands mid-upload: about 4 s per file.
        command.args(["--part-size", "1M", "--parallel", "2", "--limit-rate", "3M"]);
        uploads.push(tokio::spawn(run(command)));
    }
    // Kill the second node once both nodes are taking parts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.oss.served().iter().any(|n| *n < 3) {
        assert!(
            Instant::now() < deadline,
            "the balancer never sent parts to both nodes: {:?}",
            cluster.oss.served()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(uploads.iter().all(|u| !u.is_finished()), "an upload finished before the kill");
    cluster.nodes[1].kill();
    let killed_at = cluster.oss.served();

    let mut videos = Vec::new();
    for (n, upload) in uploads.into_iter().enumerate() {
        let outcome = upload.await.unwrap();
        assert_eq!(
            outcome.code,
            Some(0),
            "upload {n} failed after the kill; stderr: {}\nnode log: {}",
            outcome.stderr,
            cluster.nodes[0].log()
        );
        let result = outcome.result();
        let key = result["Key"].as_str().expect("the object key").to_owned();
        let video = result["VideoId"].as_str().expect("a VideoId").to_owned();
        let info = cluster.api.vod("GetVideoInfo", &[("VideoId", &video)]).await;
        assert_eq!(info.body["Video"]["Status"], "Normal", "{}", info.body);
        assert_eq!(info.body["Video"]["Size"], FILE_SIZE as u64);
        assert_eq!(read_back(&cluster.api, &key).await, expected[n], "upload {n} reads back whole");
        videos.push(video);
    }
    let after = cluster.oss.served();
    assert!(after[0] > killed_at[0], "the node left took the rest: {killed_at:?} then {after:?}");

    // Every event at least once, within the dead node's claim (2 s) and some delivery retries.
    let within = Instant::now() + Duration::from_secs(30);
    loop {
        let got = wait_for(&cluster.inbox, 0, Duration::ZERO).await;
        let seen: HashSet<&str> = got.iter().filter_map(|r| r.body["VideoId"].as_str()).collect();
        let missing: Vec<&String> = videos.iter().filter(|v| !seen.contains(v.as_str())).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < within,
            "events never delivered for {missing:?}; node log: {}",
            cluster.nodes[0].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The collector (on the node left, once the dead node's lease has expired) leaves no unreferenced blob.
    let within = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = cluster.stored_blobs().await;
        let referenced = cluster.referenced_blobs().await;
        let unreferenced: Vec<&String> = stored.difference(&referenced).collect();
        let lost: Vec<&String> = referenced.difference(&stored).collect();
        assert!(lost.is_empty(), "referenced blobs missing from the bucket: {lost:?}");
        if unreferenced.is_empty() {
            break;
        }
        assert!(Instant::now() < within, "unreferenced blobs stay in the bucket: {unreferenced:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(cluster.vod.served().iter().sum::<u64>() > 0, "VOD calls went through the balancer");
}
