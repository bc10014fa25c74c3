//! The two deployments a server-level test can run on: everything on one machine (the SQLite catalogue and
//! the blobs in the data folder, the defaults), or what several nodes share (a fresh PostgreSQL database
//! and a fresh prefix of the shared Garage cluster's bucket). Tests that must hold on both (the race suite)
//! run once per value; [`crate::TestServer::start_on`] builds the server.

use vodup_server::config::Config;
use vodup_server::storage::S3Settings;

use crate::garage::{GARAGE_MISSING, test_garage};
use crate::postgres::TestDatabase;

/// Where a test server keeps its catalogue and its blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file and local disk, in the server's data folder: always available.
    Sqlite,
    /// A fresh database on the PostgreSQL server `VODUP_TEST_POSTGRES_URL` names, and a fresh prefix of
    /// the Garage cluster `VODUP_TEST_GARAGE_*` names.
    PostgresGarage,
}

/// What a [`Backend`] needs to exist for as long as the server runs (the database is dropped with it).
#[derive(Debug)]
pub(crate) struct Remote {
    pub database: TestDatabase,
    pub garage: S3Settings,
}

impl Backend {
    /// Creates the remote half of the backend, or `None` after the skip rule when a component is absent.
    #[track_caller]
    pub(crate) fn prepare(self) -> impl Future<Output = Option<Option<Remote>>> {
        let location = std::panic::Location::caller();
        // Made here, not in the future, so that its skip message names the test too.
        let database = if self == Self::PostgresGarage { Some(TestDatabase::create()) } else { None };
        async move {
            let Some(database) = database else { return Some(None) };
            let Some(garage) = test_garage() else {
                crate::skip(&format!("{GARAGE_MISSING} ({location})"));
                return None;
            };
            Some(Some(Remote { database: database.await?, garage }))
        }
    }
}

impl Remote {
    /// Points `config` at the database and the bucket prefix, as `--meta` and `--storage` with `[s3]` would.
    pub fn configure(&self, config: &mut Config) {
        config.server.meta = Some(self.database.url().to_owned());
        use_s3(config, &self.garage);
    }
}

/// Points `config`'s storage at `s3` (`--storage s3://BUCKET/PREFIX` and the `[s3]` section).
fn use_s3(config: &mut Config, s3: &S3Settings) {
    let prefix = if s3.prefix.is_empty() { String::new() } else { format!("/{}", s3.prefix) };
    config.server.storage = Some(format!("s3://{}{prefix}", s3.bucket));
    config.s3.endpoint = s3.endpoint.clone();
    config.s3.region = Some(s3.region.clone());
    config.s3.path_style = Some(s3.path_style);
    config.s3.access_key_id = Some(s3.access_key_id.clone());
    config.s3.secret_access_key = Some(s3.secret_access_key.clone());
}
