//! The three deployments the `deployments` mode compares, each of real `vodup serve` processes started
//! from the release binary and kept running for the whole run:
//!
//! - one node on SQLite + local disk (its data folder), as a single machine runs it;
//! - one node on PostgreSQL + Garage (a fresh database and a fresh bucket prefix);
//! - two nodes on a fresh PostgreSQL database and Garage prefix of their own, behind the testkit's
//!   per-request round-robin balancer (one for the VOD ports, one for the OSS ports, the OSS one named by
//!   `--public-oss-endpoint`), so the parts of one upload split across the nodes, as in
//!   `crates/cli/tests/it/nodes.rs` and the compat suite's remote backend.
//!
//! Every server logs at `warn` to `serve.log` beside its data folder, so logging costs all of them alike.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use vodup_proto::Secret;
use vodup_server::storage::S3Settings;
use vodup_testkit::{RoundRobin, ServeOptions, ServeProcess, TestDatabase, current_vm_hwm};

use crate::load::Account;

/// One running deployment. Fields drop in order: the nodes stop before their database is dropped.
pub struct Deployment {
    /// How the tables name it.
    pub label: &'static str,
    /// Where the load generator sends its calls: the node, or the VOD balancer.
    pub account: Account,
    nodes: Vec<ServeProcess>,
    /// The VOD and OSS balancers of a deployment of several nodes.
    balancers: Option<(RoundRobin, RoundRobin)>,
    _database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// One node on SQLite + disk in a new data folder.
    pub fn local(vodup: &Path, label: &'static str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = ServeOptions::new(vodup, dir.path().join("data"));
        options.env = vec![("VODUP_LOG".into(), "warn".into())];
        let key = options.create_key();
        let node = ServeProcess::start(&options, &key, &[]);
        let account = Account { vod: node.vod_url.clone(), key_id: key.0, secret: key.1 };
        Self { label, account, nodes: vec![node], balancers: None, _database: None, _dir: dir }
    }

    /// `count` nodes on a fresh database of the PostgreSQL server `postgres` names and on `s3` (a fresh
    /// prefix), behind two balancers when there are several.
    pub async fn remote(
        vodup: &Path,
        postgres: &str,
        s3: &S3Settings,
        count: usize,
        label: &'static str,
    ) -> Self {
        let database = TestDatabase::create_on(postgres).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = format!("s3://{}/{}", s3.bucket, s3.prefix);
        let mut args: Vec<String> = vec![
            "--meta".into(),
            database.url().into(),
            "--storage".into(),
            storage,
            "--s3-endpoint".into(),
            s3.endpoint.clone().expect("the Garage endpoint"),
            "--s3-region".into(),
            s3.region.clone(),
            "--s3-path-style".into(),
        ];
        let balancers = if count > 1 {
            let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
            let vod = RoundRobin::start(any, Vec::new()).await.expect("start the VOD balancer");
            let oss = RoundRobin::start(any, Vec::new()).await.expect("start the OSS balancer");
            args.extend(["--public-oss-endpoint".into(), oss.url()]);
            Some((vod, oss))
        } else {
            None
        };
        let key = create_key(vodup, database.url());
        let nodes: Vec<ServeProcess> = (0..count)
            .map(|n| {
                let mut options = ServeOptions::new(vodup, dir.path().join(format!("node{n}")));
                options.args = args.clone();
                options.env = vec![
                    ("VODUP_LOG".into(), "warn".into()),
                    ("AWS_ACCESS_KEY_ID".into(), s3.access_key_id.clone()),
                    ("AWS_SECRET_ACCESS_KEY".into(), s3.secret_access_key.expose().to_owned()),
                ];
                ServeProcess::start(&options, &key, &[])
            })
            .collect();
        let vod = match &balancers {
            Some((vod, oss)) => {
                vod.set_upstreams(nodes.iter().map(|n| address(&n.vod_url)).collect());
                oss.set_upstreams(nodes.iter().map(|n| address(&n.oss_url)).collect());
                vod.url()
            }
            None => nodes[0].vod_url.clone(),
        };
        let account = Account { vod, key_id: key.0, secret: key.1 };
        Self { label, account, nodes, balancers, _database: Some(database), _dir: dir }
    }

    /// The nodes' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(ServeProcess::pid).collect()
    }

    /// Each node's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| current_vm_hwm(n.pid()).unwrap_or(0)).collect()
    }

    /// Requests the OSS balancer sent each node, when there is one.
    pub fn oss_served(&self) -> Option<Vec<u64>> {
        self.balancers.as_ref().map(|(_, oss)| oss.served())
    }
}

/// `vodup keys create --meta URL --json`: a key in the shared catalogue.
fn create_key(vodup: &Path, meta: &str) -> (String, Secret) {
    let out = Command::new(vodup)
        .args(["keys", "create", "--json", "--meta", meta])
        .env_remove("VODUP_DATA")
        .output()
        .expect("run vodup keys create");
    assert!(
        out.status.success(),
        "vodup keys create --meta failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("key JSON");
    let id = key["AccessKeyId"].as_str().expect("AccessKeyId").to_owned();
    (id, Secret::new(key["AccessKeySecret"].as_str().expect("AccessKeySecret")))
}

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").trim_end_matches('/').parse().expect("a node address")
}
