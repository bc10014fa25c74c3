//! The SQLite catalogue's writer: one thread that owns the write connection and runs each write whole,
//! with the writes of concurrent requests committed together (group commit: one WAL `fsync` for many).
//!
//! Why a thread of our own: through sqlx, every statement is a round trip to the connection's worker
//! thread and back to a tokio worker, and a write of several statements (an upload's commit checks its
//! guard, records the blob, replaces the version, publishes the media, queues the event) paid that for each,
//! one after the other, on the one connection every writer shares. Measured for a small file (issue 15):
//! 36 switches of sqlx's threads and 53 of tokio's per file, scheduling 37% of the server's samples, and the
//! chain of hops, not the cores, was the bound. Here a write is one closure over a plain connection, handed
//! over once and answered once; its statements run back to back on this thread with cached prepared
//! statements.
//!
//! How: the thread takes the first write that arrives and every other already waiting (no timer: the
//! writes that queue while one group commits form the next), opens one `BEGIN IMMEDIATE` transaction, and
//! runs each write inside a savepoint of its own. A write that fails (a refused guard, a conflict) is rolled
//! back to its savepoint, so it leaves nothing whatever the others do; the rest are kept. Once every write
//! has run the thread commits once, and only then answers each writer: a writer hears that its write is
//! stored only after the transaction holding it has committed (durability is exactly that of a transaction
//! of its own, `synchronous = FULL`). If the transaction cannot begin or commit, every write of the group
//! fails and none is stored. A write whose caller has gone (the request was cancelled) before its turn is
//! skipped, as a transaction never begun. A write that panics is rolled back and answered with an error;
//! the thread goes on.
//!
//! Reads and the rare writes that are one statement stay on sqlx's pool; SQLite's own lock orders this
//! connection with those and with other processes (`BUSY_TIMEOUT`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::{BUSY_TIMEOUT, failed};
use crate::meta::rows::Columns;
use crate::meta::{MetaError, MetaResult};

/// Most writes in one group: bounds how long one transaction holds the write lock.
const MAX_GROUP: usize = 128;

/// Writes waiting for a group, at most; a writer beyond that waits to be queued.
const QUEUE: usize = 1024;

/// Prepared statements kept per connection: every distinct statement of the writes, with room to spare.
const STATEMENT_CACHE: usize = 64;

/// Why a write was not stored because its group was not: the group's error, said to each of its writers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (the catalogue commits concurrent writes together; nothing of this write was stored)")]
pub(super) struct GroupFailed {
    message: String,
    /// The database or its disk is full: the caller answers as it does for any full catalogue.
    pub(super) disk_full: bool,
}

impl GroupFailed {
    fn from_sqlite(error: &rusqlite::Error) -> Self {
        Self { message: error.to_string(), disk_full: is_disk_full(error) }
    }

    fn stopped() -> Self {
        Self { message: "the catalogue's writer thread stopped".into(), disk_full: false }
    }
}

/// SQLITE_FULL, from the database or its disk.
pub(super) fn is_disk_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// SQLite's extended result code of a failed statement, if it failed in SQLite.
pub(super) fn extended_code(error: &rusqlite::Error) -> Option<i32> {
    error.sqlite_error().map(|e| e.extended_code)
}

/// A UNIQUE or PRIMARY KEY constraint failed.
pub(super) fn unique_violated(error: &rusqlite::Error) -> bool {
    matches!(
        extended_code(error),
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}

/// The table's primary key was duplicated, rather than another unique index (SQLITE_CONSTRAINT_PRIMARYKEY
/// against SQLITE_CONSTRAINT_UNIQUE). Media have one of each (the id, the live ReferenceId), so the code
/// tells them apart without reading the message.
pub(super) fn primary_key_violated(error: &rusqlite::Error) -> bool {
    extended_code(error) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// A FOREIGN KEY constraint failed.
pub(super) fn foreign_key_violated(error: &rusqlite::Error) -> bool {
    extended_code(error) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// Runs one statement of a write; how many rows it changed. Statements are prepared once per connection.
pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// The first column of the first row, if there is a row.
pub(super) fn first<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Option<T>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(sql)?.query_row(params, |row| row.get(0)).optional()
}

/// The first column of every row.
pub(super) fn all<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<T>> {
    conn.prepare_cached(sql)?.query_map(params, |row| row.get(0))?.collect()
}

/// Every row, each decoded by `decode` (a `*_from_row` of `super::rows`).
pub(super) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    context: impl Fn() -> String,
    decode: impl Fn(&rusqlite::Row<'_>) -> MetaResult<T>,
) -> MetaResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(|e| failed(context(), e))?;
    let mut found = statement.query(params).map_err(|e| failed(context(), e))?;
    let mut list = Vec::new();
    while let Some(row) = found.next().map_err(|e| failed(context(), e))? {
        list.push(decode(row)?);
    }
    Ok(list)
}

/// The handle writers use; clones share the one thread, which ends with the last handle.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    sender: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Opens the write connection to the database at `path` (which exists, its schema up to date) on a
    /// new thread, which then serves writes until every handle is gone.
    pub(super) async fn start(path: &Path) -> MetaResult<Self> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (opened, open) = oneshot::channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("vodup-sqlite-writer".into())
            .spawn(move || match connect(&path) {
                Ok(conn) => {
                    let _ = opened.send(Ok(()));
                    serve(&conn, receiver);
                }
                Err(e) => {
                    let _ = opened.send(Err(e));
                }
            })
            .map_err(|e| failed("starting the catalogue's writer thread", e))?;
        open.await
            .map_err(|_| failed("starting the catalogue's writer thread", GroupFailed::stopped()))??;
        Ok(Self { sender })
    }

    /// Runs `work` on the write connection inside the next group transaction and answers once that has
    /// committed. An error from `work` rolls back what it did and is returned as it is; `what` names the
    /// write in the error of a group that failed.
    pub(super) async fn write<T, F>(&self, what: &'static str, work: F) -> MetaResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> MetaResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending { what, work: Some(work), result: None, reply });
        self.sender.send(job).await.map_err(|_| failed(what, GroupFailed::stopped()))?;
        answer.await.map_err(|_| failed(what, GroupFailed::stopped()))?
    }
}

/// Opens the write connection with the settings every connection of the catalogue has (WAL, FULL
/// synchronous commits, foreign keys, the busy timeout). The file must exist: creating it, with its mode,
/// is [`super::SqliteMeta::open`]'s.
fn connect(path: &Path) -> MetaResult<Connection> {
    let context = || format!("opening metadata database {} for writing", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failed(context(), e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| failed(context(), e))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(|e| failed(context(), e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The thread's loop: one group at a time, until every handle is gone.
fn serve(conn: &Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A writer gone before its turn: its write is not begun.
        group.retain(|job| job.wanted());
        if group.is_empty() {
            continue;
        }
        let outcome = run_group(conn, &mut group);
        if let Err(e) = &outcome {
            tracing::warn!(writes = group.len(), error = %e, "a group of catalogue writes failed; none was stored");
        }
        for job in group.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

/// Runs every write of `group` in one transaction, each in a savepoint, and commits.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), GroupFailed> {
    let fail = |e: rusqlite::Error| GroupFailed::from_sqlite(&e);
    run(conn, "BEGIN IMMEDIATE").map_err(fail)?;
    let ran = group.iter_mut().try_for_each(|job| {
        run(conn, "SAVEPOINT turn")?;
        let kept = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or_else(|_| {
            job.panicked();
            false
        });
        if !kept {
            run(conn, "ROLLBACK TO turn")?;
        }
        run(conn, "RELEASE turn")
    });
    match ran.and_then(|()| run(conn, "COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Whatever failed (a savepoint, the commit), nothing of the group stays. A failed COMMIT may
            // leave the transaction open; a ROLLBACK with none open fails, which changes nothing.
            if !conn.is_autocommit() {
                let _ = run(conn, "ROLLBACK");
            }
            Err(fail(e))
        }
    }
}

/// One statement without parameters or rows.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    execute(conn, sql, []).map(drop)
}

/// A write waiting for or having had its turn, its result type erased so one queue holds every kind.
trait Job: Send {
    /// Its caller still waits for the answer.
    fn wanted(&self) -> bool;
    /// Runs the write; `true` if its statements are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// The write panicked: it is answered with an error.
    fn panicked(&mut self);
    /// Answers the caller, given how the group's commit went.
    fn finish(self: Box<Self>, group: Result<(), GroupFailed>);
}

struct Pending<T, F> {
    what: &'static str,
    work: Option<F>,
    result: Option<MetaResult<T>>,
    reply: oneshot::Sender<MetaResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> MetaResult<T> + Send + 'static,
{
    fn wanted(&self) -> bool {
        !self.reply.is_closed()
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else { return false };
        let result = work(conn);
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn panicked(&mut self) {
        self.result = Some(Err(MetaError::Backend {
            context: self.what.into(),
            source: "the write panicked; it was rolled back".into(),
        }));
    }

    fn finish(self: Box<Self>, group: Result<(), GroupFailed>) {
        let result = match (self.result, group) {
            // Not run: the group failed before its turn.
            (None, Err(e)) => Err(failed(self.what, e)),
            (None, Ok(())) => Err(failed(self.what, GroupFailed::stopped())),
            // Kept, but the group was not committed.
            (Some(Ok(_)), Err(e)) => Err(failed(self.what, e)),
            (Some(result), _) => result,
        };
        let _ = self.reply.send(result);
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, name: &str) -> MetaResult<String> {
        column(self, name)
    }
    fn opt_text(&self, name: &str) -> MetaResult<Option<String>> {
        column(self, name)
    }
    fn int(&self, name: &str) -> MetaResult<i64> {
        column(self, name)
    }
    fn opt_int(&self, name: &str) -> MetaResult<Option<i64>> {
        column(self, name)
    }
    fn bytes(&self, name: &str) -> MetaResult<Vec<u8>> {
        column(self, name)
    }
    fn opt_bytes(&self, name: &str) -> MetaResult<Option<Vec<u8>>> {
        column(self, name)
    }
}

/// Reads one column of a row the writer read, saying which one failed.
fn column<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, name: &str) -> MetaResult<T> {
    row.get(name).map_err(|e| MetaError::Backend {
        context: format!("reading column {name} of the metadata database"),
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;

    async fn writer_on_a_table(dir: &Path) -> Writer {
        let path = dir.join("catalogue.sqlite");
        let conn = Connection::open(&path).expect("create a database");
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)").expect("create a table");
        drop(conn);
        Writer::start(&path).await.expect("start the writer")
    }

    async fn rows_of(writer: &Writer) -> Vec<i64> {
        writer
            .write("read", |conn| {
                all(conn, "SELECT x FROM t ORDER BY x", []).map_err(|e| failed("reading", e))
            })
            .await
            .expect("read the table")
    }

    fn insert(x: i64) -> impl FnOnce(&Connection) -> MetaResult<()> + Send + 'static {
        move |conn| {
            execute(conn, "INSERT INTO t (x) VALUES (?)", [x]).map(drop).map_err(|e| failed("inserting", e))
        }
    }

    #[tokio::test]
    async fn a_write_that_panics_is_rolled_back_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = writer_on_a_table(dir.path()).await;
        let panicked: MetaResult<()> = writer
            .write("insert, then panic", |conn| {
                insert(1)(conn)?;
                panic!("a bug in a write");
            })
            .await;
        let error = panicked.expect_err("a write that panics fails");
        assert!(error.to_string().contains("panicked"), "{error}");
        writer.write("insert", insert(2)).await.expect("the next write is served");
        assert_eq!(rows_of(&writer).await, [2], "the panicking write left nothing");
    }

    #[tokio::test]
    async fn a_write_whose_caller_left_before_its_turn_is_not_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = writer_on_a_table(dir.path()).await;
        // The first write holds the thread until told to go on, so the second queues behind it.
        let (go_on, wait) = std_mpsc::channel::<()>();
        let (started, has_started) = oneshot::channel();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write("hold the thread", move |conn| {
                        let _ = started.send(());
                        let _ = wait.recv();
                        insert(1)(conn)
                    })
                    .await
            }
        });
        has_started.await.expect("the first write runs");
        let mut second = Box::pin(writer.write("insert", insert(2)));
        // One poll queues it (the queue has room) and leaves it waiting for its answer; then its caller
        // goes away.
        assert!(futures_util::poll!(second.as_mut()).is_pending(), "queued behind the first write");
        drop(second);
        go_on.send(()).expect("release the first write");
        first.await.expect("join").expect("the first write is stored");
        assert_eq!(rows_of(&writer).await, [1], "the abandoned write was not run");
    }

    #[tokio::test]
    async fn a_failed_write_is_rolled_back_alone_within_its_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let writer = writer_on_a_table(dir.path()).await;
        // Many at once form groups; each odd one inserts its row and then fails.
        let writes = (0..200i64).map(|x| {
            writer.write("insert", move |conn| {
                insert(x)(conn)?;
                if x % 2 == 1 { Err(MetaError::Conflict(format!("{x} is odd"))) } else { Ok(()) }
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (x, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), x % 2 == 0, "write {x}: {result:?}");
        }
        assert_eq!(rows_of(&writer).await, (0..200).step_by(2).collect::<Vec<i64>>());
    }
}
