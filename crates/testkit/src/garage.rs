//! Garage, the distributed S3 store the storage tests run against beside SeaweedFS: the shared 3-node
//! cluster `scripts/test` starts (`scripts/garage-throwaway.sh`, named by the `VODUP_TEST_GARAGE_*`
//! variables it writes), with a fresh random prefix per caller as for [`crate::s3`], and a private
//! [`GarageCluster`] per node-failure test, whose nodes the test kills without disturbing anyone else.
//! Without the variables the tests skip (a failure under `VODUP_REQUIRE_ALL=1`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use vodup_server::storage::S3Settings;

/// Why a Garage test cannot run, for [`crate::skip`].
pub const GARAGE_MISSING: &str = "no Garage test cluster: VODUP_TEST_GARAGE_* are unset (scripts/test starts one with \
     scripts/garage-throwaway.sh; the garage binary comes from scripts/garage)";

fn var(name: &str) -> Option<String> {
    std::env::var(format!("VODUP_TEST_GARAGE_{name}")).ok().filter(|v| !v.is_empty())
}

/// Settings for a fresh, empty corner of the shared Garage cluster's test bucket; `None` when no cluster
/// is configured.
pub fn test_garage() -> Option<S3Settings> {
    Some(S3Settings {
        bucket: var("BUCKET")?,
        prefix: format!("t-{:016x}", rand::random::<u64>()),
        endpoint: var("ENDPOINT"),
        region: var("REGION").unwrap_or_else(|| "garage".to_owned()),
        path_style: true,
        access_key_id: var("ACCESS_KEY_ID")?,
        secret_access_key: var("SECRET_ACCESS_KEY")?.into(),
    })
}

/// A private 3-node Garage cluster on loopback for one test (or one benchmark run), stopped and removed
/// on drop.
#[derive(Debug)]
pub struct GarageCluster {
    dir: TempDir,
    settings: S3Settings,
}

impl GarageCluster {
    /// Starts one with the garage binary of the shared cluster (`VODUP_TEST_GARAGE_BIN`); `None`, after the
    /// skip rule, without it.
    #[track_caller]
    pub fn start() -> Option<Self> {
        let Some(garage) = var("BIN") else {
            crate::skip(GARAGE_MISSING);
            return None;
        };
        Some(Self::start_with(Path::new(&garage)))
    }

    /// Starts one with the `garage` binary at `garage` (what `scripts/garage` prints), on a random port
    /// base (another one if those ports are taken).
    pub fn start_with(garage: &Path) -> Self {
        let mut last_error = String::new();
        for _ in 0..4 {
            let dir = tempfile::tempdir().expect("temp dir");
            // 34 ports from the base up, in 11000-24933: below Linux's ephemeral range (32768 up, where
            // any test's outgoing connection may hold a port) and clear of the shared SeaweedFS (28000 up)
            // and Garage (27000 up).
            let base = 11_000 + 100 * (rand::random::<u32>() % 140);
            let cluster = dir.path().join("garage");
            let out = Command::new(script())
                .arg("up")
                .arg(&cluster)
                .arg(base.to_string())
                .env("GARAGE", garage)
                .output()
                .expect("run scripts/garage-throwaway.sh");
            if out.status.success() {
                let env = String::from_utf8_lossy(&out.stdout).into_owned();
                let get = |name: &str| {
                    env.lines()
                        .find_map(|line| line.strip_prefix(&format!("VODUP_TEST_GARAGE_{name}=")))
                        .unwrap_or_else(|| panic!("garage-throwaway.sh printed no {name}: {env}"))
                        .to_owned()
                };
                let settings = S3Settings {
                    bucket: get("BUCKET"),
                    prefix: String::new(),
                    endpoint: Some(get("ENDPOINT")),
                    region: get("REGION"),
                    path_style: true,
                    access_key_id: get("ACCESS_KEY_ID"),
                    secret_access_key: get("SECRET_ACCESS_KEY").into(),
                };
                return Self { dir, settings };
            }
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
            run(&["down"], &cluster, None);
        }
        panic!("could not start a private Garage cluster: {last_error}");
    }

    /// Settings for the cluster's bucket, through node 1.
    pub fn settings(&self) -> S3Settings {
        self.settings.clone()
    }

    /// SIGKILLs node `n` (2 or 3; node 1 serves the tests' requests).
    pub fn kill(&self, n: u8) {
        run(&["kill"], &self.cluster(), Some(n));
    }

    /// Starts node `n` again on its data.
    pub fn restart(&self, n: u8) {
        run(&["start"], &self.cluster(), Some(n));
    }

    /// The cluster's folder (`garage-throwaway.sh`'s DIR: node N keeps its pid in `nN/pid`).
    pub fn cluster(&self) -> PathBuf {
        self.dir.path().join("garage")
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        run(&["down"], &self.cluster(), None);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/garage-throwaway.sh")
}

fn run(command: &[&str], cluster: &Path, node: Option<u8>) {
    let mut child = Command::new(script());
    child.args(command).arg(cluster);
    if let Some(node) = node {
        child.arg(node.to_string());
    }
    let status = child.status().expect("run scripts/garage-throwaway.sh");
    assert!(status.success() || command == ["down"], "garage-throwaway.sh {command:?} {node:?} failed");
}
