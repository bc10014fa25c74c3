//! The shared metadata backend: every repository trait of [`super`] over one PostgreSQL database, through
//! sqlx, one file per trait as for SQLite (`credentials`, `media`, `uploads`, `objects`, `blobs`,
//! `events`); this one connects, migrates, and holds what they share (transactions, locks, error mapping).
//!
//! SQLite runs one writer at a time, so its transactions never see each other. Here many run at once
//! (many connections, later many nodes), at READ COMMITTED, and the same outcomes come from locks taken in
//! one order by every transaction:
//!
//! 1. an advisory lock per object key a commit changes ([`lock_key`]), so two writers of one key take turns
//!    and the second sees the first's version, as with SQLite's single writer; and one per part number an
//!    UploadPart replaces ([`lock_part`]);
//! 2. the issuing AccessKey's row `FOR SHARE` and the credential's media row `FOR SHARE`
//!    (`objects::check_guard`): the revocation guarantee. A revocation or a deletion is an `UPDATE` of that
//!    row, which waits until the commit holding the share lock ends; and a commit that finds the row being
//!    revoked waits, then reads the revoked row and is refused. So a key revoked (or media deleted) before a
//!    commit can no longer publish, and one revoked after it returns only once the commit is durable. Row
//!    locks rather than SERIALIZABLE: serializable transactions may be ordered before a revocation that
//!    committed earlier in real time, which is exactly the case the guarantee forbids;
//! 3. the upload's row (`FOR UPDATE` to complete or abort it, `FOR SHARE` to add a part);
//! 4. everything else (parts, blobs, events).
//!
//! A transaction that still meets a deadlock or a serialization failure is retried whole
//! ([`in_transaction!`]), a few times. Reads that take several statements run in one REPEATABLE READ
//! snapshot, as SQLite's read transactions do. The collector's and the sweeper's claims take their rows with
//! `FOR UPDATE SKIP LOCKED`, passing over rows a commit holds. Unique violations are told apart by SQLSTATE
//! 23505 and the constraint's name, never by message text. Queries are checked at run time; the schema is in
//! `migrations/postgres`.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection as _, Decode, PgPool, Postgres, QueryBuilder, Row, Type};

mod blobs;
mod credentials;
mod events;
mod leases;
mod media;
mod objects;
mod uploads;

use super::location::PostgresUrl;
use super::rows::{
    Columns, decoded, event_from_row, impl_columns, key_from_row, media_from_row, millis, part_from_row,
    saturating_i64, u64_to_db, upload_from_row, user_meta_json, version_from_row,
};
use super::{
    AccessKeyRecord, CredentialRepo, DeletedMedia, EventBuilder, EventCounts, EventRepo, Media, MediaRepo,
    MediaStatus, MediaUpdate, MetaError, MetaResult, NewMedia, NewUpload, OutboxEvent, ProgressReport,
    Revocations, Upload, UploadQuery, UploadRepo, UploadState, VideoQuery, WriteGuard,
};

/// Connections per process. Transactions are short; more connections mostly add lock waits.
const MAX_CONNECTIONS: u32 = 10;

/// How long opening the first connection may take before the server is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a transaction runs when it keeps meeting deadlocks or serialization failures.
const MAX_ATTEMPTS: u32 = 5;

/// The metadata store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresMeta {
    /// Connections to the database.
    pool: PgPool,
}

/// Why [`PostgresMeta::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL, the server, the credentials or the database are wrong: what to fix, in words.
    #[error("{0}")]
    Setting(String),
    /// Connected, but bringing the schema up to date failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

impl PostgresMeta {
    /// Connects to the database `url` names and brings its schema up to date. The database must exist;
    /// its tables are created by the first start (the role needs the right to create tables in it).
    pub async fn connect(url: &PostgresUrl) -> Result<Self, ConnectError> {
        let options = PgConnectOptions::from_str(url.expose()).map_err(|e| {
            // The parser's message never repeats the URL (url::ParseError names only the fault).
            ConnectError::Setting(format!("the URL is not a valid PostgreSQL URL: {e}"))
        })?;
        // One connection first, outside the pool: the pool retries a refused connection until its timeout
        // and then reports only that it timed out, and the cause is what a person needs.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await;
        match first {
            Err(_) => {
                return Err(ConnectError::Setting(format!(
                    "no answer from {} within {} s: check the host and port, and that PostgreSQL runs and \
                     the network lets this machine reach it",
                    server_of(&options),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(error)) => return Err(ConnectError::Setting(connect_problem(&options, &error))),
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(|e| ConnectError::Setting(connect_problem(&options, &e)))?;
        // sqlx holds an advisory lock while it migrates, so nodes starting together migrate once.
        sqlx::migrate!("src/meta/migrations/postgres").run(&pool).await.map_err(|e| {
            let denied = match &e {
                sqlx::migrate::MigrateError::Execute(error) => sqlstate(error) == Some("42501"),
                _ => false,
            };
            if denied {
                ConnectError::Setting(format!(
                    "role {} may not create the catalogue's tables in database {}: make it the database's \
                     owner (ALTER DATABASE … OWNER TO …) or grant it CREATE on the schema",
                    options.get_username(),
                    options.get_database().unwrap_or("(default)")
                ))
            } else {
                ConnectError::Meta(failed("migrating the PostgreSQL catalogue", e))
            }
        })?;
        Ok(Self { pool })
    }

    /// Starts a read-write transaction (READ COMMITTED, with the locks of the module's rule).
    async fn begin(&self, what: &str) -> MetaResult<sqlx::Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(|e| failed(format!("starting to {what}"), e))
    }

    /// Starts a read-only transaction that reads one snapshot throughout.
    async fn begin_read(&self, what: &str) -> MetaResult<sqlx::Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| failed(format!("starting to {what}"), e))
    }
}

/// `host:port` (or the socket folder) the options name.
fn server_of(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// What a failed connection means for the person who configured it.
fn connect_problem(options: &PgConnectOptions, error: &sqlx::Error) -> String {
    let server = server_of(options);
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "nothing accepts connections at {server}: start PostgreSQL there, or correct the host and port"
        ),
        sqlx::Error::Io(io) => format!("cannot reach {server} ({io}): correct the host and port"),
        sqlx::Error::PoolTimedOut => {
            format!("no connection to {server} could be opened in time: check that PostgreSQL runs there")
        }
        sqlx::Error::Tls(tls) => format!(
            "TLS with {server} failed ({tls}): check sslmode and the server's certificate (sslrootcert)"
        ),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification (unknown role, pg_hba refusal)
            Some("28P01" | "28000") => format!(
                "{server} refused the login of role {user:?} ({}): correct the user name and password",
                db.message()
            ),
            // invalid_catalog_name
            Some("3D000") => format!(
                "database {database:?} does not exist on {server}: create it (createdb -O {user} {database}) \
                 or correct the database name"
            ),
            // too_many_connections, cannot_connect_now (starting up or shutting down)
            Some("53300" | "57P03") => format!("{server} accepts no new connections now ({})", db.message()),
            code => format!(
                "{server} refused the connection ({}, SQLSTATE {})",
                db.message(),
                code.unwrap_or("none")
            ),
        },
        other => format!("cannot connect to {server}: {other}"),
    }
}

impl_columns!(PgRow);

/// Reads one column, saying which one failed.
fn column<'r, T>(row: &'r PgRow, name: &str) -> MetaResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    decoded(row.try_get(name), name)
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .map(sqlx::postgres::PgDatabaseError::code),
        _ => None,
    }
}

/// unique_violation.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    sqlstate(error) == Some("23505")
}

/// A unique violation of the constraint (or unique index) `name`.
fn violates(error: &sqlx::Error, name: &str) -> bool {
    is_unique_violation(error)
        && error.as_database_error().and_then(sqlx::error::DatabaseError::constraint) == Some(name)
}

/// foreign_key_violation.
fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    sqlstate(error) == Some("23503")
}

fn failed(
    context: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> MetaError {
    let source = source.into();
    // disk_full: the server's disk, not ours, but the same promise: nothing was written.
    if source.downcast_ref::<sqlx::Error>().and_then(sqlstate) == Some("53100") {
        return MetaError::Full(context.into());
    }
    MetaError::Backend { context: context.into(), source }
}

/// A deadlock or a serialization failure: the transaction did nothing and may simply run again.
fn is_retryable(error: &MetaError) -> bool {
    match error {
        MetaError::Backend { source, .. } => source
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlstate)
            .is_some_and(|code| code == "40P01" || code == "40001"),
        _ => false,
    }
}

/// Runs `$body` in a transaction of `$meta` with `$tx` bound to its connection, commits when the body
/// returns `Ok` and rolls back when it returns `Err`. A body that met a deadlock or a serialization
/// failure runs again, whole, up to [`MAX_ATTEMPTS`] times. The body may `return` early (from the block).
macro_rules! in_transaction {
    ($meta:expr, $what:expr, |$tx:ident| $body:block) => {{
        let what: &str = $what;
        let mut attempt = 1;
        loop {
            let mut transaction = $meta.begin(what).await?;
            let outcome: MetaResult<_> = {
                let $tx: &mut PgConnection = &mut transaction;
                body_of(async { $body }).await
            };
            let outcome = match outcome {
                Ok(value) => transaction
                    .commit()
                    .await
                    .map(|()| value)
                    .map_err(|e| failed(format!("committing: {what}"), e)),
                // Dropping the transaction rolls it back.
                Err(error) => Err(error),
            };
            match outcome {
                Err(error) if is_retryable(&error) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, what, %error, "catalogue transaction retried");
                    attempt += 1;
                }
                outcome => break outcome,
            }
        }
    }};
}
use in_transaction;

/// Fixes the output of a transaction body to a [`MetaResult`], so `?` inside it knows its error type.
fn body_of<T, F: std::future::Future<Output = MetaResult<T>>>(body: F) -> F {
    body
}

/// Takes the transaction-long advisory lock of `bucket`/`key`: commits that change what one key names take
/// turns (rule 1 of the module). Held until the transaction ends.
async fn lock_key(conn: &mut PgConnection, bucket: &str, key: &str) -> MetaResult<()> {
    // Bucket names hold no `/`, so `bucket/key` names one key. A 64-bit hash: a collision only makes two
    // keys take turns.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("object:{bucket}/{key}"))
        .execute(&mut *conn)
        .await
        .map_err(|e| failed(format!("locking object {bucket}/{key}"), e))?;
    Ok(())
}

/// Takes the advisory lock of part `part_number` of `upload_id`: two UploadParts of one number take turns,
/// so the one that comes second releases the first one's blob.
async fn lock_part(conn: &mut PgConnection, upload_id: &str, part_number: u32) -> MetaResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("part:{upload_id}:{part_number}"))
        .execute(&mut *conn)
        .await
        .map_err(|e| failed(format!("locking part {part_number} of upload {upload_id}"), e))?;
    Ok(())
}
