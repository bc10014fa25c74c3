//! A fresh PostgreSQL database for each test, on the server that `VODUP_TEST_POSTGRES_URL` names
//! (`scripts/pg-throwaway.sh up` starts one and prints such a URL; its role may create databases). Each
//! [`TestDatabase`] is a new database named `vodup_test_<random>`, so tests run in parallel without seeing
//! each other's rows, and it is dropped when the value is. Its default collation is ICU's en-US, not the
//! byte order, so a key column that forgot its `COLLATE "C"` lists in the wrong order and fails. Without the variable a test skips by the skip
//! rule (a failure under `VODUP_REQUIRE_ALL=1`).
//!
//! The variable is the tests' own: the server's `--meta`/`VODUP_META` is never read here.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

/// The test-only variable naming a PostgreSQL server whose role may `CREATE DATABASE`.
pub const POSTGRES_URL: &str = "VODUP_TEST_POSTGRES_URL";

/// A database created for one test, dropped (with any connection still open to it) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The URL of the new database (the variable's URL with another database name).
    url: String,
    /// The variable's URL, to drop the database from.
    admin: PgConnectOptions,
    /// The database's name.
    name: String,
}

impl TestDatabase {
    /// Creates a fresh database, or skips the calling test (see the module) and returns `None`.
    #[track_caller]
    pub fn create() -> impl Future<Output = Option<Self>> {
        let location = std::panic::Location::caller();
        async move {
            let Ok(base) = std::env::var(POSTGRES_URL) else {
                crate::skip(&format!(
                    "{POSTGRES_URL} is not set, so the PostgreSQL half of this test does not run ({location}); \
                     start one with `scripts/pg-throwaway.sh up` and export the URL it prints"
                ));
                return None;
            };
            Some(Self::create_on(&base).await)
        }
    }

    /// Creates a fresh database on the server `base` names.
    pub async fn create_on(base: &str) -> Self {
        let admin = PgConnectOptions::from_str(base)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL} is not a PostgreSQL URL: {e}"));
        let name = format!("vodup_test_{}", hex(&rand::random::<[u8; 8]>()));
        let mut connection = PgConnection::connect_with(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the server {POSTGRES_URL} names: {e}"));
        // An ICU en-US default collation, as a production database may well have, where "B" sorts after
        // "a": the catalogue must list keys in byte order anyway (its COLLATE "C" columns).
        connection
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
            )))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name} (may the role CREATE DATABASE?): {e}"));
        let _ = connection.close().await;
        let mut url =
            reqwest::Url::parse(base).unwrap_or_else(|e| panic!("{POSTGRES_URL} is not a URL: {e}"));
        url.set_path(&name);
        Self { url: url.to_string(), admin, name }
    }

    /// The new database's URL, for `--meta` or `[server] meta`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which must not be blocked on itself: the database is dropped
        // from a thread with its own small runtime. FORCE ends the connections a server may still hold.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut connection =
                    PgConnection::connect_with(&admin).await.map_err(std::io::Error::other)?;
                connection
                    .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await
                    .map_err(std::io::Error::other)?;
                let _ = connection.close().await;
                Ok::<_, std::io::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
