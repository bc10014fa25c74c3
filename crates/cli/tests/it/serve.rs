//! `vodup keys` and `vodup serve` as users run them: keys from the environment, `serve` configured by flags,
//! environment and a TOML file (flags win), the ready line on stdout, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vodup() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vodup"))
}

#[test]
fn keys_are_created_listed_and_revoked_through_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = vodup().args(["keys", "create", "--json"]).env("VODUP_DATA", &data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = key["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("LTAI") && key["AccessKeySecret"].as_str().unwrap().len() == 30);

    let list = vodup().args(["keys", "list", "--json"]).env("VODUP_DATA", &data).output().unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains(&id) && !listed.contains(key["AccessKeySecret"].as_str().unwrap()), "{listed}");

    assert!(vodup().args(["keys", "revoke", &id]).env("VODUP_DATA", &data).status().unwrap().success());
    let again = vodup().args(["keys", "revoke", &id]).env("VODUP_DATA", &data).output().unwrap();
    assert_eq!(again.status.code(), Some(3), "revoking twice is an error");
    assert!(String::from_utf8_lossy(&again.stderr).contains(&id));
}

#[test]
fn serve_layers_file_environment_and_flags_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vodup.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata = {:?}\nregion = \"cn-beijing\"\nbucket = \"from-file\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut child = vodup()
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--bucket", "from-flag"])
        .env("VODUP_LISTEN", "127.0.0.1:0")
        .env("VODUP_OSS_LISTEN", "127.0.0.1:0")
        .env("VODUP_BUCKET", "from-env")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("ready line: {line:?}"));
    assert_eq!(ready["region"], "cn-beijing", "the file sets the region");
    assert_eq!(ready["bucket"], "from-flag", "a flag beats the environment and the file");
    let oss = ready["oss"].as_str().unwrap();
    assert_eq!(ready["oss_endpoint"], format!("http://{oss}"));

    let health = std::net::TcpStream::connect(ready["vod"].as_str().unwrap());
    assert!(health.is_ok(), "the VOD port accepts connections");

    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "vodup serve did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn a_bad_configuration_fails_before_binding_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = vodup()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--oss-listen",
            "127.0.0.1:0",
            "--public-oss-endpoint",
            "oss.example.com",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--public-oss-endpoint") && stderr.contains("http://"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created for a refused configuration");
}
