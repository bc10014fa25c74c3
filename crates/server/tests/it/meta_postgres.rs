//! The PostgreSQL metadata backend: every conformance check on a fresh database of the server that
//! `VODUP_TEST_POSTGRES_URL` names (an ICU en-US database, so byte-order listing is really tested), then
//! what only a server database can get wrong: a connection that fails says why and what to fix without
//! showing the password, the schema migrates once, and two pools on one database see each other's writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vodup_server::meta::postgres::ConnectError;
use vodup_server::meta::{
    AccessKeyRecord, CredentialRepo, MetaLocation, MetaStore, PostgresMeta, PostgresUrl, conformance,
};
use vodup_server::proto::Secret;
use vodup_testkit::{POSTGRES_URL, TestDatabase};

use crate::meta::every_check;

fn postgres_url(text: &str) -> PostgresUrl {
    match MetaLocation::parse(text).expect("a valid URL") {
        MetaLocation::Postgres(url) => url,
        other => panic!("not a PostgreSQL URL: {other}"),
    }
}

/// A store on a fresh database; the database lives as long as the returned guard. `None`: skipped.
async fn open_fresh() -> Option<(TestDatabase, PostgresMeta)> {
    let database = TestDatabase::create().await?;
    let meta =
        PostgresMeta::connect(&postgres_url(database.url())).await.expect("connect to a fresh database");
    Some((database, meta))
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let Some((_database, meta)) = open_fresh().await else { return };
            conformance::$check(&meta).await;
        }
    )*};
}

every_check!(conformance_tests);

/// What `connect` said, for a URL expected to fail.
async fn refusal(url: &str) -> String {
    match PostgresMeta::connect(&postgres_url(url)).await {
        Ok(_) => panic!("connecting to {} succeeded", postgres_url(url)),
        Err(ConnectError::Setting(problem)) => problem,
        Err(ConnectError::Meta(error)) => panic!("expected a setting to fix, got {error}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_named_with_what_to_do() {
    // A port that was just free on loopback: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let problem = refusal(&format!("postgres://vodup:closed-port-secret@127.0.0.1:{port}/vodup")).await;
    assert!(problem.contains(&format!("nothing accepts connections at 127.0.0.1:{port}")), "{problem}");
    assert!(problem.contains("start PostgreSQL"), "{problem}");
    assert!(!problem.contains("closed-port-secret"), "the password shows: {problem}");
}

/// The test server's URL with `change` applied.
fn altered(change: impl FnOnce(&mut reqwest::Url)) -> Option<String> {
    let Ok(base) = std::env::var(POSTGRES_URL) else {
        vodup_testkit::skip(&format!("{POSTGRES_URL} is not set: no PostgreSQL to refuse a login"));
        return None;
    };
    let mut url = reqwest::Url::parse(&base).expect("a URL");
    change(&mut url);
    Some(url.to_string())
}

#[tokio::test]
async fn a_wrong_password_is_named_without_showing_it() {
    let Some(url) = altered(|url| url.set_password(Some("not-the-password-4711")).expect("set a password"))
    else {
        return;
    };
    let problem = refusal(&url).await;
    assert!(problem.contains("refused the login of role"), "{problem}");
    assert!(problem.contains("correct the user name and password"), "{problem}");
    assert!(!problem.contains("not-the-password-4711"), "the password shows: {problem}");
}

#[tokio::test]
async fn a_missing_database_is_named_with_how_to_create_it() {
    let Some(url) = altered(|url| url.set_path("vodup_no_such_database")) else { return };
    let problem = refusal(&url).await;
    assert!(problem.contains("database \"vodup_no_such_database\" does not exist"), "{problem}");
    assert!(problem.contains("createdb"), "{problem}");
}

fn key(id: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        id: id.into(),
        secret: Secret::new(format!("secret of {id}")),
        description: String::new(),
        created_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
        revoked_at: None,
    }
}

#[tokio::test]
async fn migrations_run_once_and_two_pools_share_the_rows() {
    // What two nodes (or `vodup keys create` beside a server) do: several pools on one database, opened
    // at the same time, so the migrations race too.
    let Some(database) = TestDatabase::create().await else { return };
    let url = postgres_url(database.url());
    let (first, second) = tokio::join!(PostgresMeta::connect(&url), PostgresMeta::connect(&url));
    let (server, cli) = (first.expect("the first pool"), second.expect("the second pool"));

    let record = key("LTAI5tSharedDatabaseKey1");
    cli.create_key(&record).await.expect("create a key through one pool");
    assert_eq!(server.get_key(&record.id).await.expect("get a key"), Some(record.clone()), "visible at once");
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_100_000);
    assert!(server.revoke_key(&record.id, at).await.expect("revoke through the other pool"));
    assert!(!cli.revoke_key(&record.id, at).await.expect("revoke again"), "revoked once");

    let writes = (0..20).map(|n| {
        let store = if n % 2 == 0 { server.clone() } else { cli.clone() };
        tokio::spawn(async move { store.create_key(&key(&format!("LTAI5tConcurrentKey{n:05}"))).await })
    });
    for write in writes.collect::<Vec<_>>() {
        write.await.expect("join a writer").expect("a concurrent write succeeds");
    }
    assert_eq!(server.list_keys().await.expect("list keys").len(), 21);

    // A third start on the migrated database changes nothing and keeps the rows.
    let again = PostgresMeta::connect(&url).await.expect("reconnect");
    assert_eq!(again.list_keys().await.expect("list keys").len(), 21);
    let secret = again.get_or_create_setting("server_secret", "first").await.expect("a setting");
    let meta: &dyn MetaStore = &server;
    assert_eq!(meta.get_or_create_setting("server_secret", "second").await.expect("the setting"), secret);
}

#[tokio::test]
async fn nonces_recorded_at_once_by_two_pools_admit_one_request() {
    // A replayed request sent to two nodes at the same moment: exactly one of them may accept it.
    let Some(database) = TestDatabase::create().await else { return };
    let url = postgres_url(database.url());
    let (one, two) =
        (PostgresMeta::connect(&url).await.expect("pool"), PostgresMeta::connect(&url).await.expect("pool"));
    let now = SystemTime::now();
    for round in 0..50u8 {
        let digest = [round; 16];
        let expires = now + Duration::from_secs(900);
        let (a, b) =
            tokio::join!(one.record_nonce(&digest, now, expires), two.record_nonce(&digest, now, expires));
        let accepted = [a.expect("record"), b.expect("record")].iter().filter(|&&ok| ok).count();
        assert_eq!(accepted, 1, "round {round}: exactly one node accepts a nonce");
    }
}
