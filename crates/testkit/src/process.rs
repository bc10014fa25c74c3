//! `vodup serve` as a child process, for what an in-process [`TestServer`](crate::TestServer) cannot show:
//! a real SIGKILL (from outside, or from a fault point inside) and a restart of the binary on the same
//! data folder. Its stderr goes to `serve.log` beside the data folder, so a failing test can show it.

use std::io::{BufRead as _, BufReader};
use std::ops::Deref;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use vodup_proto::Secret;
use vodup_server::storage::S3Settings;

use crate::api::Api;

/// A running `vodup serve` child process.
#[derive(Debug)]
pub struct ServeProcess {
    /// Signed calls to it (also through `Deref`).
    pub api: Api,
    child: Child,
    log: PathBuf,
}

/// How to start one: the binary, its data folder, the key tests sign with, and extra flags and environment.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `vodup` binary (`env!("CARGO_BIN_EXE_vodup")` in the CLI's tests).
    pub bin: PathBuf,
    /// The data folder (kept across restarts).
    pub data: PathBuf,
    /// Extra `vodup serve` flags.
    pub args: Vec<String>,
    /// Extra environment (`VODUP_FAULT`, say).
    pub env: Vec<(String, String)>,
    /// A descriptor limit (soft and hard `RLIMIT_NOFILE`) to start it with, through util-linux's
    /// `prlimit`, which then runs the binary in its own process (same pid).
    pub descriptor_limit: Option<u64>,
    /// The catalogue's URL when it is not in the data folder (set by [`Self::on_remote`]), so that
    /// [`Self::create_key`] writes the key where the server will look for it.
    pub meta: Option<String>,
}

impl ServeOptions {
    /// Options for `bin` on `data`, with no extra flags or environment.
    pub fn new(bin: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            data: data.into(),
            args: Vec::new(),
            env: Vec::new(),
            descriptor_limit: None,
            meta: None,
        }
    }

    /// Puts the catalogue in the PostgreSQL database `meta` and the blobs in `s3`'s bucket and prefix, as
    /// each node of a shared deployment runs: `--meta`, `--storage s3://BUCKET[/PREFIX]` with the endpoint,
    /// region and path style, and the S3 key in the standard `AWS_*` variables.
    pub fn on_remote(&mut self, meta: &str, s3: &S3Settings) {
        let prefix = if s3.prefix.is_empty() { String::new() } else { format!("/{}", s3.prefix) };
        self.args.extend([
            "--meta".to_owned(),
            meta.to_owned(),
            "--storage".to_owned(),
            format!("s3://{}{prefix}", s3.bucket),
            "--s3-region".to_owned(),
            s3.region.clone(),
            format!("--s3-path-style={}", s3.path_style),
        ]);
        if let Some(endpoint) = &s3.endpoint {
            self.args.extend(["--s3-endpoint".to_owned(), endpoint.clone()]);
        }
        self.env.extend([
            ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), s3.secret_access_key.expose().to_owned()),
        ]);
        self.meta = Some(meta.to_owned());
    }

    /// Creates a long-lived key with `vodup keys create` (before the first start): in the catalogue
    /// [`Self::on_remote`] named, else in the data folder's.
    pub fn create_key(&self) -> (String, Secret) {
        let mut command = Command::new(&self.bin);
        command.args(["keys", "create", "--json"]);
        match &self.meta {
            Some(meta) => command.args(["--meta", meta]).env_remove("VODUP_DATA"),
            None => command.env("VODUP_DATA", &self.data),
        };
        let out = command.output().expect("run vodup keys create");
        assert!(out.status.success(), "vodup keys create: {}", String::from_utf8_lossy(&out.stderr));
        let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("key JSON");
        let id = key["AccessKeyId"].as_str().expect("AccessKeyId").to_owned();
        (id, Secret::new(key["AccessKeySecret"].as_str().expect("AccessKeySecret").to_owned()))
    }
}

impl ServeProcess {
    /// Starts the server with `options` and `extra_env` (for this start only) on new loopback ports,
    /// and waits for its ready line.
    pub fn start(options: &ServeOptions, key: &(String, Secret), extra_env: &[(&str, &str)]) -> Self {
        let log = options.data.with_extension("serve.log");
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("serve.log");
        let mut command = match options.descriptor_limit {
            Some(limit) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={limit}:{limit}")).arg("--").arg(&options.bin);
                command
            }
            None => Command::new(&options.bin),
        };
        command
            .arg("serve")
            .args(&options.args)
            .env("VODUP_DATA", &options.data)
            .env("VODUP_LISTEN", "127.0.0.1:0")
            .env("VODUP_OSS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env_remove("VODUP_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (name, value) in &options.env {
            command.env(name, value);
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn vodup serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("vodup serve did not start (stdout {line:?}); its log:\n{log}")
        });
        let url = |field: &str| format!("http://{}", ready[field].as_str().expect("address"));
        let bucket = ready["bucket"].as_str().expect("bucket").to_owned();
        let api = Api::new(url("vod"), url("oss"), bucket, key.0.clone(), key.1.clone());
        Self { api, child, log }
    }

    /// Waits up to `within` for the process to end on its own (a fault point) and returns how it ended.
    pub fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vodup serve still runs after {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to be killed by SIGKILL (a fault point), failing the test otherwise.
    pub fn expect_killed(&mut self, within: Duration) {
        let status = self.wait_for_exit(within);
        assert_eq!(
            status.signal(),
            Some(9),
            "vodup serve ended with {status}, not SIGKILL; log:\n{}",
            self.log()
        );
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (for /proc readings: memory, descriptors).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Deref for ServeProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
