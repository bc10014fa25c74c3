//! Running `vodup upload` against a `vodup serve` (in process, or a child process: both are an [`Api`]):
//! the command with the server's endpoint and key in its environment, its JSON lines parsed, and objects read back through OSS GetObject with
//! their CRC-64 computed as they stream (a 4 GiB object is never held in memory). For tests that speak
//! OSS themselves, a video created with its upload credential.

use std::path::Path;
use std::process::Stdio;

use futures_util::StreamExt as _;
use serde_json::Value;
use tokio::process::Command;
use vodup_proto::crc64::Crc64;
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::{Api, OssCall, OssCredential};

/// `vodup upload KIND SOURCE --json` aimed at `server`, with a private checkpoint folder under `dir`.
pub fn upload(server: &Api, dir: &Path, kind: &str, source: &str) -> Command {
    let mut command = upload_quiet(server, dir, kind, source);
    command.arg("--json");
    command
}

/// The same without `--json`: on pipes, the quiet mode of scripts and cron jobs.
pub fn upload_quiet(server: &Api, dir: &Path, kind: &str, source: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vodup"));
    command
        .args(["upload", kind, source, "--endpoint", &server.vod_url, "--checkpoint-dir"])
        .arg(dir.join("checkpoints"))
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &server.key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", server.key_secret.expose())
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env_remove("VODUP_ENDPOINT")
        .env_remove("VODUP_RESOLVE")
        .env_remove("VODUP_CA_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub code: Option<i32>,
    /// Every JSON line of stdout, in order.
    pub events: Vec<Value>,
    /// stderr.
    pub stderr: String,
}

impl Outcome {
    /// The last line, which must be the `result`.
    pub fn result(&self) -> &Value {
        let last = self.events.last().unwrap_or_else(|| panic!("no output; stderr: {}", self.stderr));
        assert_eq!(last["Event"], "result", "last line is not the result: {last}\nstderr: {}", self.stderr);
        last
    }

    /// Events named `name`.
    pub fn named(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["Event"] == name).collect()
    }
}

/// Parses JSON lines; any line that is not JSON fails the test.
pub fn parse_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

/// Runs the command to the end.
pub async fn run(mut command: Command) -> Outcome {
    let output = command.output().await.expect("vodup runs");
    Outcome {
        code: output.status.code(),
        events: parse_lines(&output.stdout),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs the command and requires success.
pub async fn run_ok(command: Command) -> Outcome {
    let outcome = run(command).await;
    assert_eq!(
        outcome.code,
        Some(0),
        "vodup failed: {}\nlast lines: {:?}",
        outcome.stderr,
        outcome.events.last()
    );
    outcome
}

/// Streams `key` back through GetObject and returns its CRC-64 and length.
pub async fn read_back(server: &Api, key: &str) -> (u64, u64) {
    let response = server.oss(OssCall::new("GET", Some(key), server.key_credential())).await;
    assert_eq!(response.status(), 200, "GetObject {key}");
    let mut crc = Crc64::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        crc.update(&chunk.expect("object body"));
    }
    (crc.value(), crc.len())
}

/// The CRC-64 and length of a local file, streamed.
pub fn file_crc(path: &Path) -> (u64, u64) {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).expect("open");
    let mut crc = Crc64::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return (crc.value(), crc.len());
        }
        crc.update(&buf[..n]);
    }
}

/// The media status the catalogue shows (`GetVideoInfo`'s `Video.Status`).
pub async fn video_status(server: &Api, video_id: &str) -> String {
    let reply = server.vod("GetVideoInfo", &[("VideoId", video_id)]).await;
    reply.body["Video"]["Status"].as_str().unwrap_or_default().to_owned()
}

/// Checks the upload result against the source and the object read back.
pub async fn assert_uploaded(server: &Api, outcome: &Outcome, expected: (u64, u64)) -> String {
    let result = outcome.result();
    let key = result["Key"].as_str().expect("Key");
    assert_eq!(result["Crc64"], expected.0.to_string(), "result CRC");
    assert_eq!(result["Size"], expected.1, "result size");
    assert_eq!(read_back(server, key).await, expected, "object read back");
    key.to_owned()
}

/// A video made by CreateUploadVideo, as a client that speaks OSS itself uses it.
#[derive(Debug)]
pub struct CreatedVideo {
    /// VideoId.
    pub id: String,
    /// The object key its UploadAuth may write.
    pub key: String,
    /// That STS credential (V1 signature, token in `x-oss-security-token`).
    pub credential: OssCredential,
}

/// CreateUploadVideo named `name` with the test key, then its key and STS credential.
pub async fn create_video(api: &Api, name: &str) -> CreatedVideo {
    let reply = api.vod("CreateUploadVideo", &[("Title", name), ("FileName", name)]).await;
    assert_eq!(reply.status, 200, "CreateUploadVideo: {}", reply.body);
    let text =
        |field: &str| reply.body[field].as_str().unwrap_or_else(|| panic!("{field} in {}", reply.body));
    let address = UploadAddress::decode(text("UploadAddress")).expect("UploadAddress decodes");
    let auth = UploadAuth::decode(text("UploadAuth")).expect("UploadAuth decodes");
    let credential = OssCredential::V1 {
        id: auth.access_key_id.clone(),
        secret: auth.access_key_secret.clone(),
        token: Some(auth.security_token.expose().to_owned()),
    };
    CreatedVideo { id: text("VideoId").to_owned(), key: address.file_name, credential }
}
