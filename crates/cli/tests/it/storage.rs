//! `--storage` as users give it (issue 14): `vodup serve --storage s3://…` on the test SeaweedFS serves an
//! upload made by the built `vodup upload`, with its blobs in the bucket and no store folder on disk; and a
//! bucket that cannot be used (missing, wrong keys, nothing at the endpoint, no keys at all) is refused at
//! start with exit 2 and a message naming the setting to fix, never the secret. Without the
//! `VODUP_TEST_S3_*` variables (scripts/test starts a SeaweedFS) the tests skip, a failure under
//! `VODUP_REQUIRE_ALL=1`.

use std::path::Path;
use std::process::{Command, Output};

use vodup_server::storage::{BlobStore, S3Settings, S3Store};
use vodup_testkit::s3::{MISSING, test_s3};
use vodup_testkit::{ServeOptions, ServeProcess, write_random_file};

use crate::support::{assert_uploaded, file_crc, run_ok, upload};

/// `vodup serve` with none of the caller's `VODUP_*` or `AWS_*` variables, on loopback ports, with
/// `--data` when given.
fn serve_command(data: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vodup"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("VODUP_") || name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.args(["serve", "--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0"]);
    if let Some(data) = data {
        command.arg("--data").arg(data);
    }
    command
}

/// The flags and keys that point `vodup serve` at `s3`.
fn s3_flags(s3: &S3Settings) -> (Vec<String>, Vec<(String, String)>) {
    let args = vec![
        "--storage".to_owned(),
        format!("s3://{}/{}", s3.bucket, s3.prefix),
        "--s3-endpoint".to_owned(),
        s3.endpoint.clone().expect("the test store has an endpoint"),
        "--s3-region".to_owned(),
        s3.region.clone(),
    ];
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), s3.secret_access_key.expose().to_owned()),
    ];
    (args, env)
}

#[tokio::test]
async fn serve_on_an_s3_bucket_round_trips_an_upload_with_no_store_folder() {
    let Some(s3) = test_s3() else { return vodup_testkit::skip(MISSING) };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), &data);
    (options.args, options.env) = s3_flags(&s3);
    let key = options.create_key();
    let server = ServeProcess::start(&options, &key, &[]);

    // Over one multipart part, so both PutObject-sized and part-sized blobs go to the bucket.
    let source = dir.path().join("video.mp4");
    write_random_file(&source, 11 << 20, 7).unwrap();
    let outcome = run_ok(upload(&server, dir.path(), "video", source.to_str().unwrap())).await;
    assert_uploaded(&server, &outcome, file_crc(&source)).await;

    assert!(!data.join("store").exists(), "a store folder was made although the blobs are in the bucket");
    let bucket = S3Store::new(s3.clone()).unwrap();
    assert!(!bucket.list(None, 10).await.unwrap().is_empty(), "no blob in s3://{}/{}", s3.bucket, s3.prefix);
    let readyz = reqwest::get(format!("{}/readyz", server.vod_url)).await.unwrap();
    assert_eq!(readyz.status(), 200, "readyz checks the bucket: {}", readyz.text().await.unwrap());
    let log = server.log();
    assert!(log.contains(&format!("s3://{}/{}", s3.bucket, s3.prefix)), "the log names the storage: {log}");
    assert!(!log.contains(s3.secret_access_key.expose()), "the log shows the S3 secret");
}

/// Starts `vodup serve` on `s3` changed by `change`, expects exit 2 and no data folder, returns stderr.
fn refused(s3: &S3Settings, change: impl FnOnce(&mut Vec<String>, &mut Vec<(String, String)>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut args, mut env) = s3_flags(s3);
    change(&mut args, &mut env);
    let out: Output = serve_command(Some(&data)).args(&args).envs(env).output().expect("run vodup serve");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "an unusable bucket is a usage error: {stderr}");
    assert!(!data.exists(), "the data folder was created for a refused start");
    assert!(!stderr.contains(s3.secret_access_key.expose()), "the secret shows: {stderr}");
    stderr
}

#[test]
fn serve_refuses_an_unusable_bucket_with_exit_2_naming_what_to_fix() {
    let Some(s3) = test_s3() else { return vodup_testkit::skip(MISSING) };

    let missing = refused(&s3, |args, _| args[1] = "s3://no-such-bucket-vodup".into());
    assert!(missing.contains("--storage") && missing.contains("no-such-bucket-vodup"), "{missing}");
    // Garage answers NoSuchBucket ("does not exist"); SeaweedFS a 500, which the message words as a question.
    assert!(
        missing.contains("does not exist") || missing.contains("check that the bucket exists"),
        "{missing}"
    );

    let wrong_keys = refused(&s3, |_, env| env[1].1 = "not-the-secret-4711".into());
    assert!(
        wrong_keys.contains("AWS_ACCESS_KEY_ID") && wrong_keys.contains("refused the keys"),
        "{wrong_keys}"
    );
    assert!(!wrong_keys.contains("not-the-secret-4711"), "the wrong secret shows: {wrong_keys}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = refused(&s3, |args, _| args[3] = format!("http://{closed}"));
    assert!(nowhere.contains("--s3-endpoint") && nowhere.contains("nothing answers"), "{nowhere}");

    let no_keys = refused(&s3, |_, env| env.clear());
    assert!(no_keys.contains("AWS_ACCESS_KEY_ID") && no_keys.contains("AWS_SECRET_ACCESS_KEY"), "{no_keys}");

    let bad_url = refused(&s3, |args, _| args[1] = "s3:/typo".into());
    assert!(bad_url.contains("--storage (VODUP_STORAGE, [server] storage)"), "{bad_url}");
}

#[test]
fn serve_needs_no_data_folder_when_catalogue_and_storage_are_named() {
    use std::io::BufRead as _;
    let Some(s3) = test_s3() else { return vodup_testkit::skip(MISSING) };
    let dir = tempfile::tempdir().unwrap();
    let catalogue = dir.path().join("catalogue.sqlite");
    let (args, env) = s3_flags(&s3);
    let mut command = serve_command(None);
    let mut child = command
        .arg("--meta")
        .arg(format!("sqlite://{}", catalogue.display()))
        .args(&args)
        .envs(env)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vodup serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        line.contains("\"listening\""),
        "no ready line: {line:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        made.iter().all(|name| name.to_string_lossy().starts_with("catalogue.sqlite")),
        "files beside the catalogue: {made:?}"
    );
}

#[test]
fn serve_help_says_where_each_storage_setting_comes_from() {
    let out = serve_command(None).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "--storage",
        "VODUP_STORAGE",
        "--s3-endpoint",
        "VODUP_S3_ENDPOINT",
        "--s3-region",
        "--s3-path-style",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "[s3]",
    ] {
        assert!(help.contains(expected), "--help names {expected}: {help}");
    }
}
