//! `vodup serve` and `vodup upload` read their regions from different variables (`VODUP_SERVE_REGION`,
//! `VODUP_REGION`): setting one for the service must not move the other, and the reverse. See issue 13.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vodup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vodup"));
    for name in
        ["VODUP_REGION", "VODUP_SERVE_REGION", "VODUP_ENDPOINT", "VODUP_CONFIG", "ALIBABA_CLOUD_PROFILE"]
    {
        command.env_remove(name);
    }
    command
}

/// The region in the ready line of a `vodup serve` started with `env`.
fn serve_region(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = vodup()
        .args(["serve", "--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("ready line: {line:?}"));
    ready["region"].as_str().unwrap().to_owned()
}

#[test]
fn serve_takes_its_region_from_vodup_serve_region_only() {
    assert_eq!(
        serve_region(&[("VODUP_REGION", "eu-central-1")]),
        "cn-shanghai",
        "the upload variable is not read"
    );
    assert_eq!(
        serve_region(&[("VODUP_REGION", "eu-central-1"), ("VODUP_SERVE_REGION", "cn-beijing")]),
        "cn-beijing"
    );
}

/// The host `vodup upload` connects to with `env` and no endpoint: every VOD host it may pick resolves to
/// one local listener, which reads the server name from the TLS ClientHello.
fn upload_host(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("a.mp4");
    std::fs::write(&source, b"not really a video").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let hosts =
        ["cn-shanghai", "cn-beijing", "eu-central-1"].map(|r| format!("vod.{r}.aliyuncs.com={address}"));
    let mut child = vodup()
        .args(["upload", "video", "--json", "--no-resume", "--resolve", &hosts.join(",")])
        .arg(&source)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIregiontest")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "region-test-secret")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "vodup upload never connected");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = vec![0u8; 4096];
    let n = stream.read(&mut hello).unwrap();
    let hello = String::from_utf8_lossy(&hello[..n]).into_owned();
    child.kill().unwrap();
    child.wait().unwrap();
    let host = ["cn-shanghai", "cn-beijing", "eu-central-1"]
        .map(|r| format!("vod.{r}.aliyuncs.com"))
        .into_iter()
        .find(|h| hello.contains(h.as_str()));
    host.unwrap_or_else(|| panic!("no VOD host in the ClientHello ({n} bytes)"))
}

#[test]
fn upload_takes_its_region_from_vodup_region_only() {
    assert_eq!(upload_host(&[("VODUP_SERVE_REGION", "cn-beijing")]), "vod.cn-shanghai.aliyuncs.com");
    assert_eq!(
        upload_host(&[("VODUP_SERVE_REGION", "cn-beijing"), ("VODUP_REGION", "eu-central-1")]),
        "vod.eu-central-1.aliyuncs.com"
    );
}
