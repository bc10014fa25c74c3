//! The PostgreSQL server and the Garage cluster the distributed deployments run on. The ones the tests'
//! variables name (`VODUP_TEST_POSTGRES_URL`, `VODUP_TEST_GARAGE_*`) are used as they are and left
//! running; otherwise the bench starts throwaways with the repository's scripts (`scripts/pg-throwaway.sh`,
//! `scripts/garage-throwaway.sh` with the binary `scripts/garage` prints) and stops them when the value is
//! dropped, which also happens when a panic unwinds through the bench's main or on Ctrl-C.
//!
//! Each also names its processes, so the bench can tell how much CPU they used.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vodup_server::storage::S3Settings;
use vodup_testkit::{GarageCluster, POSTGRES_URL};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

/// A PostgreSQL server whose role may create databases (each deployment gets its own).
pub struct Postgres {
    /// The server's URL (holds a password: never printed).
    url: String,
    /// Whether this run started it with `scripts/pg-throwaway.sh up` (then `down` stops it).
    started: bool,
}

impl Postgres {
    /// The server `VODUP_TEST_POSTGRES_URL` names, or a throwaway one.
    pub fn start_or_reuse() -> Result<Self, String> {
        if let Some(url) = std::env::var(POSTGRES_URL).ok().filter(|v| !v.is_empty()) {
            eprintln!("PostgreSQL: the server {POSTGRES_URL} names (left running)");
            return Ok(Self { url, started: false });
        }
        eprintln!("PostgreSQL: starting a throwaway (scripts/pg-throwaway.sh up, durable)");
        // Durable (fsync and synchronous commits on, PostgreSQL's defaults): the single node's SQLite
        // flushes every commit, so a throwaway that does not would flatter the distributed deployments.
        let out = Command::new(script("pg-throwaway.sh"))
            .arg("up")
            .env("PG_DURABLE", "1")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/pg-throwaway.sh: {e}"))?;
        let url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|line| line.starts_with("postgres://"))
            .map(str::to_owned);
        match url {
            Some(url) if out.status.success() => Ok(Self { url, started: true }),
            _ => Err(format!(
                "scripts/pg-throwaway.sh up failed ({}); see its output above, or set {POSTGRES_URL}",
                out.status
            )),
        }
    }

    /// The URL to create databases from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `fsync=… synchronous_commit=…` as the server reports them.
    pub async fn durability(&self) -> String {
        use sqlx::Connection as _;
        let Ok(mut connection) = sqlx::PgConnection::connect(&self.url).await else {
            return "unknown (cannot connect)".into();
        };
        let mut settings = Vec::new();
        for name in ["fsync", "synchronous_commit"] {
            let value = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {name}")))
                .fetch_one(&mut connection)
                .await
                .unwrap_or_else(|_| "?".into());
            settings.push(format!("{name}={value}"));
        }
        let _ = connection.close().await;
        settings.join(" ")
    }

    /// The TCP port it listens on (to find its processes), when the URL names one.
    pub fn port(&self) -> Option<u16> {
        reqwest::Url::parse(&self.url).ok()?.port()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.started {
            let stopped = Command::new(script("pg-throwaway.sh")).arg("down").status();
            if !stopped.is_ok_and(|s| s.success()) {
                eprintln!("could not stop the throwaway PostgreSQL: run scripts/pg-throwaway.sh down");
            }
        }
    }
}

/// A Garage cluster and the bucket the deployments take fresh prefixes of.
pub struct Garage {
    /// Bucket, endpoint (node 1) and key; the prefix is empty.
    settings: S3Settings,
    /// `garage-throwaway.sh`'s folder of the cluster, where node N keeps its pid in `nN/pid`.
    dir: Option<PathBuf>,
    /// The cluster this run started, stopped on drop.
    _started: Option<GarageCluster>,
}

impl Garage {
    /// The cluster `VODUP_TEST_GARAGE_*` name, or a private 3-node one on loopback.
    pub fn start_or_reuse() -> Result<Self, String> {
        if let Some(mut settings) = vodup_testkit::garage::test_garage() {
            eprintln!("Garage: the cluster VODUP_TEST_GARAGE_* name (left running)");
            settings.prefix = String::new();
            let dir = std::env::var_os("VODUP_TEST_GARAGE_DIR").map(PathBuf::from);
            return Ok(Self { settings, dir, _started: None });
        }
        let out = Command::new(script("garage"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/garage: {e}"))?;
        let binary = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || binary.is_empty() {
            return Err(format!(
                "scripts/garage found no garage binary ({}); see its output above, or set VODUP_TEST_GARAGE_*",
                out.status
            ));
        }
        eprintln!("Garage: starting a private 3-node cluster ({binary})");
        let cluster = GarageCluster::start_with(Path::new(&binary));
        Ok(Self { settings: cluster.settings(), dir: Some(cluster.cluster()), _started: Some(cluster) })
    }

    /// Settings for a fresh, empty prefix of the bucket.
    pub fn fresh_prefix(&self) -> S3Settings {
        S3Settings { prefix: format!("bench-{:016x}", rand::random::<u64>()), ..self.settings.clone() }
    }

    /// The `*_fsync` settings of node 1's configuration, when its folder is known.
    pub fn durability(&self) -> String {
        let config = self
            .dir
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join("n1/garage.toml")).ok())
            .unwrap_or_default();
        let settings: Vec<String> =
            config.lines().filter(|l| l.contains("_fsync")).map(|l| l.replace(' ', "")).collect();
        if settings.is_empty() { "unknown".into() } else { settings.join(" ") }
    }

    /// The pids of the cluster's nodes, when its folder is known.
    pub fn pids(&self) -> Vec<u32> {
        let Some(dir) = &self.dir else { return Vec::new() };
        (1..=3)
            .filter_map(|n| std::fs::read_to_string(dir.join(format!("n{n}/pid"))).ok())
            .filter_map(|pid| pid.trim().parse().ok())
            .collect()
    }
}
