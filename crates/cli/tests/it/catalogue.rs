//! `--meta` as users give it (issue 14): `vodup serve` and `vodup keys` on a PostgreSQL catalogue, keys
//! without a data folder, and a database that cannot be used refused at start with exit 2, a message that
//! names the setting and what to fix, and never the password. The PostgreSQL tests run on a fresh database
//! of the server `VODUP_TEST_POSTGRES_URL` names (skipped without it; a failure under
//! `VODUP_REQUIRE_ALL=1`); the unreachable-server test needs no PostgreSQL.

use std::process::{Command, Output};
use std::time::Duration;

use vodup_server::proto::Secret;
use vodup_testkit::{POSTGRES_URL, ServeOptions, ServeProcess, TestDatabase};

/// `vodup` with no `VODUP_*` variable of the caller's environment.
fn vodup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vodup"));
    command.env("VODUP_LOG", "info");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VODUP_") && name != "VODUP_LOG" {
            command.env_remove(name);
        }
    }
    command
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `vodup serve` on loopback ports with `--data` in `dir` and the catalogue at `meta`, expected to refuse
/// to start.
fn refused_start(dir: &std::path::Path, meta: &str) -> Output {
    let out = vodup()
        .args(["serve", "--listen", "127.0.0.1:0", "--oss-listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .env("VODUP_META", meta)
        .output()
        .expect("run vodup serve");
    assert_eq!(out.status.code(), Some(2), "an unusable catalogue is a usage error: {}", stderr(&out));
    assert!(!dir.join("data").exists(), "the data folder was created for a refused start");
    out
}

#[test]
fn serve_with_nothing_at_the_database_address_exits_2_naming_meta_and_hiding_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = refused_start(dir.path(), &format!("postgres://vodup:do-not-show-4711@127.0.0.1:{port}/vodup"));
    let stderr = stderr(&out);
    for expected in [
        "--meta",
        "VODUP_META",
        "[server] meta",
        &format!("nothing accepts connections at 127.0.0.1:{port}"),
        &format!("postgres://vodup:******@127.0.0.1:{port}/vodup"),
    ] {
        assert!(stderr.contains(expected), "the error says {expected:?}: {stderr}");
    }
    assert!(!stderr.contains("do-not-show-4711"), "the password shows: {stderr}");

    let help =
        vodup().args(["serve", "--help"]).env("VODUP_META", "postgres://u:help-secret@h/d").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--meta") && help.contains("VODUP_META"), "{help}");
    assert!(!help.contains("help-secret"), "--help shows the variable's value: {help}");
}

#[test]
fn keys_without_a_data_folder_or_catalogue_say_how_to_name_one() {
    let out = vodup().args(["keys", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let stderr = stderr(&out);
    for source in ["--data", "--meta", "VODUP_DATA", "VODUP_META"] {
        assert!(stderr.contains(source), "names {source}: {stderr}");
    }
}

#[test]
fn keys_on_an_explicit_sqlite_file_create_it_and_list_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.sqlite").display());
    let missing = format!("sqlite://{}", dir.path().join("typo.sqlite").display());
    let out = vodup().args(["keys", "list", "--meta", &missing]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no catalogue at") && stderr(&out).contains("typo.sqlite"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("typo.sqlite").exists(), "list created a catalogue");

    let out = vodup().args(["keys", "create", "--json", "--meta", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = vodup().args(["keys", "list", "--json"]).env("VODUP_META", &url).output().unwrap();
    let id = created["AccessKeyId"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(id), "{}", stderr(&listed));
}

/// The password of `VODUP_TEST_POSTGRES_URL`, to look for where it must not be.
fn password_of(url: &str) -> String {
    let password = reqwest::Url::parse(url).expect("a URL").password().unwrap_or_default().to_owned();
    assert!(password.len() >= 6, "the test server's password is too short to look for in logs");
    password
}

fn altered(change: impl FnOnce(&mut reqwest::Url)) -> Option<String> {
    let Ok(base) = std::env::var(POSTGRES_URL) else {
        vodup_testkit::skip(&format!("{POSTGRES_URL} is not set: no PostgreSQL to refuse a login"));
        return None;
    };
    let mut url = reqwest::Url::parse(&base).expect("a URL");
    change(&mut url);
    Some(url.to_string())
}

#[test]
fn serve_with_a_wrong_password_or_a_missing_database_exits_2_saying_which() {
    let dir = tempfile::tempdir().unwrap();
    let Some(wrong) = altered(|url| url.set_password(Some("wrong-password-0815")).unwrap()) else { return };
    let stderr_wrong = stderr(&refused_start(dir.path(), &wrong));
    assert!(stderr_wrong.contains("refused the login of role \"vodup\""), "{stderr_wrong}");
    assert!(!stderr_wrong.contains("wrong-password-0815"), "the password shows: {stderr_wrong}");

    let Some(missing) = altered(|url| url.set_path("vodup_absent")) else { return };
    let stderr_missing = stderr(&refused_start(dir.path(), &missing));
    assert!(stderr_missing.contains("database \"vodup_absent\" does not exist"), "{stderr_missing}");
    assert!(!stderr_missing.contains(&password_of(&missing)), "the password shows: {stderr_missing}");
}

#[tokio::test]
async fn keys_and_serve_share_a_postgres_catalogue_without_a_data_folder_for_keys() {
    let Some(database) = TestDatabase::create().await else { return };
    let url = database.url().to_owned();
    let password = password_of(&url);

    // `vodup keys` needs no data folder with --meta: it runs in an empty folder, and writes nothing there.
    let cwd = tempfile::tempdir().unwrap();
    let out =
        vodup().current_dir(cwd.path()).args(["keys", "create", "--json", "--meta", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = Secret::new(created["AccessKeySecret"].as_str().unwrap());
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "keys wrote into the working folder");

    // The server on the same database: the key created beside it works at once.
    let dir = tempfile::tempdir().unwrap();
    let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
    options.env.push(("VODUP_META".into(), url.clone()));
    let server = ServeProcess::start(&options, &(id.clone(), secret), &[]);
    let reply = server.vod("CreateUploadVideo", &[("Title", "on postgres"), ("FileName", "a.mp4")]).await;
    assert_eq!(reply.status, 200, "a key made by `vodup keys --meta` signs for the server: {}", reply.body);
    assert!(!dir.path().join("data").join("meta.sqlite").exists(), "the server made an SQLite catalogue");

    let out = vodup().env("VODUP_META", &url).args(["keys", "revoke", &id]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let again = vodup().env("VODUP_META", &url).args(["keys", "revoke", &id]).output().unwrap();
    assert_eq!(again.status.code(), Some(3));
    let again = stderr(&again);
    assert!(again.contains(&id) && again.contains("postgres://vodup:******@"), "{again}");
    let listed = vodup().env("VODUP_META", &url).args(["keys", "list", "--json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(listed["RevokedTime"].is_string(), "listed as revoked: {listed}");

    // Revoked in the shared catalogue: the server refuses the key within its refresh (5 s by default).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "b.mp4")]).await;
        if reply.status != 200 {
            assert!((400..500).contains(&reply.status), "refused as a client error: {}", reply.body);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the revoked key still works: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log();
    assert!(log.contains("postgres://vodup:******@"), "the log names the catalogue, redacted: {log}");
    assert!(!log.contains(&password), "the server's log shows the database password");
    drop(server);
}
