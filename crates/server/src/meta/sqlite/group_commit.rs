//! Group commit for the SQLite catalogue: the writes of many concurrent requests share one transaction,
//! and so one `fsync` of the WAL.
//!
//! Why: with `synchronous = FULL` every commit waits for an `fsync` (about half a millisecond to a few
//! milliseconds here), and SQLite runs one writer at a time, so committing each write on its own caps the
//! control plane at a few hundred signed calls per second whatever the CPU (issue 15: a signed
//! CreateUploadVideo writes a nonce and a media item; a small file adds its PutObject). Durability stays
//! exactly as it was: a writer hears that its write is stored only after the transaction holding it has
//! committed.
//!
//! How: one task owns the group's transaction and lends it to each waiting writer in turn. The task takes
//! the first writer that asks and every other already waiting (no timer: the writers that queue while one
//! group commits form the next group), opens one `BEGIN IMMEDIATE` transaction, and for each writer sets a
//! savepoint and hands over the connection ([`Turn`]). The writer runs its statements as it would in a
//! transaction of its own, then either commits ([`Turn::commit`]: its savepoint is kept, and it waits for
//! the group) or drops the turn (its savepoint is rolled back, so a refused write leaves nothing, whatever
//! the others do). Once every writer has had its turn the task commits once and tells each one. If the
//! transaction cannot begin or commit, every write of the group fails and none of them is stored.
//!
//! A writer holding a turn must not ask for another (that would wait on this very task); it may read
//! through the pool.

use std::ops::{Deref, DerefMut};

use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

/// Most writers in one group: bounds how long one transaction holds the write lock.
const MAX_GROUP: usize = 128;

/// Writers waiting for a group, at most; a writer beyond that waits to be queued.
const QUEUE: usize = 1024;

/// Why a write was not stored because its group was not: the group's error, said to each of its writers.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (the catalogue commits concurrent writes together; nothing of this write was stored)")]
pub(super) struct GroupFailed {
    message: String,
    /// The database or its disk is full: the caller answers as it does for any full catalogue.
    pub(super) disk_full: bool,
}

impl GroupFailed {
    fn from_sqlx(error: &sqlx::Error) -> Self {
        Self { message: error.to_string(), disk_full: super::is_disk_full(error) }
    }

    fn stopped() -> Self {
        Self { message: "the catalogue's commit task stopped".into(), disk_full: false }
    }
}

/// The handle writers use; clones share the one committing task, which ends with the last handle.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    sender: mpsc::Sender<oneshot::Sender<Lent>>,
}

impl GroupCommit {
    /// Starts the committing task on the current tokio runtime.
    pub(super) fn start(pool: SqlitePool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, receiver));
        Self { sender }
    }

    /// Waits for this writer's turn in the next group.
    pub(super) async fn turn(&self) -> Result<Turn, GroupFailed> {
        let (lend, lent) = oneshot::channel();
        self.sender.send(lend).await.map_err(|_| GroupFailed::stopped())?;
        // A dropped sender means the group failed before this writer's turn (its error went to the log
        // and to the writers that had run).
        let lent = lent.await.map_err(|_| GroupFailed {
            message: "the group this write was part of failed before its turn".into(),
            disk_full: false,
        })?;
        Ok(Turn { lent })
    }
}

/// A writer's turn on the group's transaction: a connection inside a savepoint of its own. Dropped
/// without [`Turn::commit`], its statements are rolled back and the group goes on.
#[derive(Debug)]
pub(super) struct Turn {
    lent: Lent,
}

impl Turn {
    /// Keeps this writer's statements and waits until the group that holds them has committed.
    pub(super) async fn commit(mut self) -> Result<(), GroupFailed> {
        let outcome = self.lent.outcome.take().expect("a turn's outcome is taken once, here");
        self.lent.give_back(true);
        outcome.await.unwrap_or_else(|_| Err(GroupFailed::stopped()))
    }
}

impl Deref for Turn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        self.lent.tx.as_ref().expect("lent until given back")
    }
}

impl DerefMut for Turn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.lent.tx.as_mut().expect("lent until given back")
    }
}

/// The transaction while a writer has it. However it is dropped (the turn dropped, the writer's future
/// cancelled while its turn was on the way), it goes back to the task.
#[derive(Debug)]
struct Lent {
    tx: Option<Transaction<'static, Sqlite>>,
    back: Option<oneshot::Sender<(Transaction<'static, Sqlite>, bool)>>,
    outcome: Option<oneshot::Receiver<Result<(), GroupFailed>>>,
}

impl Lent {
    fn give_back(&mut self, keep: bool) {
        if let (Some(tx), Some(back)) = (self.tx.take(), self.back.take()) {
            let _ = back.send((tx, keep));
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.give_back(false);
    }
}

/// The committing task: one group at a time, until every handle is gone.
async fn run(pool: SqlitePool, mut receiver: mpsc::Receiver<oneshot::Sender<Lent>>) {
    let mut writers = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut writers, MAX_GROUP).await > 0 {
        let group = std::mem::take(&mut writers);
        let size = group.len();
        let mut kept = Vec::with_capacity(size);
        let outcome = match run_group(&pool, group, &mut kept).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(writers = size, error = %e, "a group of catalogue writes failed; none was stored");
                Err(e)
            }
        };
        for writer in kept {
            let _ = writer.send(outcome.clone());
        }
    }
}

/// Lends one transaction to each writer in turn, then commits it; `kept` gets the writers whose
/// statements the transaction holds, to be told how the commit went.
async fn run_group(
    pool: &SqlitePool,
    group: Vec<oneshot::Sender<Lent>>,
    kept: &mut Vec<oneshot::Sender<Result<(), GroupFailed>>>,
) -> Result<(), GroupFailed> {
    let fail = |e: sqlx::Error| GroupFailed::from_sqlx(&e);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
    sqlx::query("SAVEPOINT turn").execute(&mut *tx).await.map_err(fail)?;
    let last = group.len().saturating_sub(1);
    for (n, writer) in group.into_iter().enumerate() {
        let (back, returned) = oneshot::channel();
        let (told, outcome) = oneshot::channel();
        let lent = Lent { tx: Some(tx), back: Some(back), outcome: Some(outcome) };
        // A writer gone before its turn drops what it was lent, which hands the transaction back at once.
        drop(writer.send(lent));
        let (back_tx, keep) = returned.await.map_err(|_| GroupFailed {
            message: "a writer kept the group's transaction".into(),
            disk_full: false,
        })?;
        tx = back_tx;
        if keep {
            kept.push(told);
        }
        // One round trip to SQLite's thread between two writers: drop this writer's statements if it
        // did not commit, close its savepoint and open the next one. The last one's savepoint goes with
        // the COMMIT, which keeps whatever is still open.
        let next = match (keep, n == last) {
            (true, false) => "RELEASE turn; SAVEPOINT turn",
            (false, false) => "ROLLBACK TO turn; RELEASE turn; SAVEPOINT turn",
            (false, true) => "ROLLBACK TO turn",
            (true, true) => continue,
        };
        sqlx::raw_sql(next).execute(&mut *tx).await.map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}
