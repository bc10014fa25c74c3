//! `vodup keys` and `vodup serve` as users run them: keys from the environment, `serve` configured by flags,
//! environment and a TOML file (flags win), the ready line on stdout, and a clean exit on SIGTERM; and the
//! messages of what goes wrong at start (no data folder, a port or a folder in use, a mistyped --data for
//! `keys`), each saying what to change.

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
    assert_eq!(out.status.code(), Some(2), "an invalid flag value is a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--public-oss-endpoint") && stderr.contains("http://"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was created for a refused configuration");
}

/// `vodup serve` with nothing set in `VODUP_*` that would fill in what the test leaves out.
fn bare_serve(cwd: &std::path::Path) -> Command {
    let mut command = vodup();
    command.arg("serve").current_dir(cwd).env("VODUP_LOG", "warn");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VODUP_") && name != "VODUP_LOG" {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn serve_without_a_data_folder_is_a_usage_error_that_says_where_the_folder_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = bare_serve(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a missing --data is a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for source in ["--data", "VODUP_DATA", "[server]"] {
        assert!(stderr.contains(source), "the error names {source}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");

    let help = vodup().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let data = &help[help.find("--data").expect("--data in the help")..];
    let data = &data[..data.find("--listen").unwrap_or(data.len())];
    for source in ["VODUP_DATA", "[server]", "config"] {
        assert!(data.contains(source), "--help says the folder may come from {source}: {data}");
    }
}

#[test]
fn a_port_in_use_names_the_address_and_what_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (flag, other, variable) in
        [("--listen", "--oss-listen", "VODUP_LISTEN"), ("--oss-listen", "--listen", "VODUP_OSS_LISTEN")]
    {
        let out = bare_serve(dir.path())
            .args([flag, &addr, other, "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&addr) && stderr.contains(flag) && stderr.contains(variable),
            "the error names {addr}, {flag} and {variable}: {stderr}"
        );
        assert!(!stderr.contains(other), "and not the other port's flag {other}: {stderr}");
    }
}

#[test]
fn a_second_server_on_the_same_folder_is_refused_once_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let options = vodup_testkit::ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
    let key = options.create_key();
    let _first = vodup_testkit::ServeProcess::start(&options, &key, &[]);
    let out = bare_serve(dir.path())
        .args(["--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0", "--data"])
        .arg(&options.data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("in use").count(), 1, "said once: {stderr}");
    assert!(stderr.contains(&options.data.display().to_string()), "names the folder: {stderr}");
    assert!(stderr.contains("stop") && stderr.contains("--data"), "says what to do: {stderr}");
    assert!(!stderr.contains("LocalStore") && !stderr.contains("Store"), "no internal type: {stderr}");
}

#[test]
fn keys_list_and_revoke_create_nothing_for_a_folder_without_a_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for data in [dir.path().join("typo"), empty.clone()] {
        for args in [&["keys", "list"][..], &["keys", "list", "--json"], &["keys", "revoke", "LTAIx"]] {
            let out = vodup().args(args).arg("--data").arg(&data).output().unwrap();
            assert_eq!(out.status.code(), Some(3), "{args:?} on {}", data.display());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("no catalogue")
                    && stderr.contains("vodup keys create")
                    && stderr.contains("vodup serve"),
                "says how to make one: {stderr}"
            );
        }
    }
    assert!(!dir.path().join("typo").exists(), "no folder was created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing was created in the folder");
}

#[test]
fn keys_list_has_a_header_and_aligned_columns_for_active_and_revoked_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let create = |description: &str| {
        let out = vodup()
            .args(["keys", "create", "--json", "--description", description, "--data"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        key["AccessKeyId"].as_str().unwrap().to_owned()
    };
    let old = create("the old one");
    let new = create("the new one");
    assert!(vodup().args(["keys", "revoke", &old, "--data"]).arg(&data).status().unwrap().success());
    let out = vodup().args(["keys", "list", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one line per key:\n{text}");
    let header = lines[0];
    let column = |name: &str| header.find(name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let (created, state, description) = (column("CREATED"), column("STATE"), column("DESCRIPTION"));
    assert!(header.starts_with("ACCESS KEY ID") && created < state && state < description, "{header:?}");
    for (id, revoked, note) in [(&old, true, "the old one"), (&new, false, "the new one")] {
        let line = lines.iter().find(|line| line.starts_with(id.as_str())).expect("a line per key");
        assert!(line[created..].starts_with("20") && line[..created].ends_with("  "), "{text}");
        let expected_state = if revoked { "revoked 20" } else { "active " };
        assert!(line[state..].starts_with(expected_state) && line[..state].ends_with("  "), "{text}");
        assert_eq!(&line[description..], note, "the description column lines up:\n{text}");
    }
}
