//! The embedded metadata backend: every repository trait of [`super`] over one SQLite file, one file per
//! trait (`credentials`, `media`, `uploads`, `objects`, `blobs`, `events`); this one opens the file and
//! holds what they share (the reading pool, the writer, error mapping); rows decode as in `super::rows`,
//! shared with PostgreSQL.
//!
//! Two ways in. Reads, and the rare writes of one statement, go through sqlx's pool of connections.
//! Writes of several statements that must hold together (every commit of an object, a part, an upload, a
//! media item, a nonce) go to the [`writer`] thread, which runs each whole on its own connection with the
//! concurrent ones in one transaction (group commit, one WAL `fsync` for many).
//!
//! The file holds AccessKeySecrets, so [`SqliteMeta::open`] creates it with mode 0600 before SQLite touches
//! it (SQLite gives its `-wal` and `-shm` side files the mode of the database file). An acknowledged write
//! survives power loss (WAL with `synchronous = FULL`). Several processes may use the file at once
//! (`vodup keys create` while the server runs): SQLite's locks serialise writers, who wait up to
//! [`BUSY_TIMEOUT`]. Every transaction that reads before it writes starts with `BEGIN IMMEDIATE`, taking the
//! write lock up front; a deferred transaction would fail with `SQLITE_BUSY` when its read lock could not
//! be upgraded, and the busy timeout does not help there. Queries are checked at run time (there is no
//! `DATABASE_URL` at build time); the schema and its conventions are in `migrations/sqlite`. This module
//! decides nothing about who may write, beyond the revocation checks of [`WriteGuard`].

use std::fs::{OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Decode, QueryBuilder, Row, Sqlite, SqlitePool, Type};
mod blobs;
mod credentials;
mod events;
mod leases;
mod media;
mod objects;
mod uploads;
mod writer;

use super::rows::{
    Columns, decoded, event_from_row, impl_columns, key_from_row, media_from_row, millis, part_from_row,
    saturating_i64, u64_to_db, upload_from_row, user_meta_json, version_from_row,
};
use super::{
    AccessKeyRecord, CredentialRepo, DeletedMedia, EventBuilder, EventCounts, EventRepo, Media, MediaRepo,
    MediaStatus, MediaUpdate, MetaError, MetaResult, NewMedia, NewUpload, OutboxEvent, ProgressReport,
    Revocations, Upload, UploadQuery, UploadRepo, UploadState, VideoQuery, WriteGuard,
};

/// How long a statement waits for another connection or process to release the write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per process. SQLite runs one writer at a time anyway; the rest serve concurrent reads.
const MAX_CONNECTIONS: u32 = 8;

/// The metadata store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteMeta {
    /// Connections to the database file, each configured by [`SqliteMeta::open`].
    pool: SqlitePool,
    /// The thread that runs the writes of several statements, concurrent ones committed together.
    writer: writer::Writer,
}

impl SqliteMeta {
    /// Opens (creating it if absent, with mode 0600) the database at `path` and brings its schema up to
    /// date. The parent directory must exist.
    pub async fn open(path: &Path) -> MetaResult<Self> {
        create_private_file(path)?;
        Self::open_existing(path).await
    }

    /// Opens the database at `path` only if it exists (SQLite creates nothing) and brings its schema up to
    /// date: for commands that must not turn a mistyped path into a new, empty catalogue.
    pub async fn open_existing(path: &Path) -> MetaResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            // Created above with the right mode; SQLite must not create it with the umask's.
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| failed(format!("opening metadata database {}", path.display()), e))?;
        sqlx::migrate!("src/meta/migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| failed(format!("migrating metadata database {}", path.display()), e))?;
        let writer = writer::Writer::start(path).await?;
        Ok(Self { pool, writer })
    }
}

/// Creates the database file with mode 0600, or narrows an existing one to 0600.
fn create_private_file(path: &Path) -> MetaResult<()> {
    let context = || format!("creating metadata database {} with mode 0600", path.display());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // Never truncate: an existing file is the live catalogue.
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed(context(), e))?;
    // `mode` applies only to a new file, and through the umask; this makes any file exactly 0600.
    file.set_permissions(Permissions::from_mode(0o600)).map_err(|e| failed(context(), e))
}

impl_columns!(SqliteRow);

/// Reads one column, saying which one failed.
fn column<'r, T>(row: &'r SqliteRow, name: &str) -> MetaResult<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    decoded(row.try_get(name), name)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}

fn failed(
    context: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> MetaError {
    let source = source.into();
    if is_disk_full(source.as_ref()) {
        return MetaError::Full(context.into());
    }
    MetaError::Backend { context: context.into(), source }
}

/// SQLITE_FULL (13, also in extended codes' low byte) from either driver, or an ENOSPC/EDQUOT from sqlx's
/// own I/O.
fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    match error.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => {
            db.code().and_then(|code| code.parse::<i64>().ok()).is_some_and(|code| code & 0xff == 13)
        }
        Some(sqlx::Error::Io(io)) => crate::storage::is_out_of_space(io),
        _ => {
            error.downcast_ref::<rusqlite::Error>().is_some_and(writer::is_disk_full)
                || error.downcast_ref::<writer::GroupFailed>().is_some_and(|group| group.disk_full)
        }
    }
}
