//! The file end of a local blob write: the body's chunks go to disk as they are, in batches written with
//! one `writev` each on the blocking pool, and the file is synced in the background as it grows.
//!
//! Why not `BufWriter` over `tokio::fs::File`: that copies every byte twice before the kernel does
//! (into the `BufWriter`, then into tokio's own buffer for the blocking pool), and at a GiB per second
//! those copies are a tenth of the server's CPU (issue 15). Here the chunks the network delivered (shared
//! `Bytes`, the same ones the MD5 service reads) are handed to `writev` directly: the kernel's copy into
//! the page cache is the only one.
//!
//! Why sync as it grows: a blob counts as stored only after `fsync`; syncing at the end alone leaves the
//! whole body dirty in the page cache and then waits for all of it at once. A background `fdatasync`
//! every [`SYNC_EVERY`] bytes starts that work while the body still arrives (one at a time, on a second
//! handle to the same file), so the final sync waits for the tail only and dirty pages stay few even for
//! a body of many GiB.
//!
//! Why drop the pages once synced: a blob is rarely read right after it is written, and on virtual
//! machines whose memory the host hands over lazily (this project's CI and bench machines), writing into
//! page-cache pages the guest has never touched costs about ten times the copy (BENCHMARKS.md: 3.2
//! CPU-seconds per GiB against 0.3-0.6 into reused pages; it was over half of the server's samples).
//! After each sync the synced range is dropped (`POSIX_FADV_DONTNEED`, advisory), so the next writes
//! reuse those pages and the page cache does not grow with everything ever uploaded.
//!
//! Memory: one batch being written and one gathering, at most [`BATCH`] bytes each (or [`MAX_CHUNKS`]
//! chunks), whatever the body's size.

use std::fs::File;
use std::io::{self, IoSlice, Write as _};
use std::mem;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before they go to the blocking pool: a hop per MiB is negligible.
const BATCH: usize = 1024 * 1024;

/// Chunks gathered at most before a batch goes, so a body of tiny chunks cannot make a batch's list of
/// chunks large (the kernel takes at most 1024 per `writev` anyway).
const MAX_CHUNKS: usize = 1024;

/// Bytes written between two background syncs.
const SYNC_EVERY: u64 = 4 * 1024 * 1024;

/// Writes a body's chunks to a new file; [`FileSink::finish_then`] makes them durable.
#[derive(Debug)]
pub(super) struct FileSink {
    /// Where the file goes; it is created by the first task on the blocking pool, so a small body
    /// (one batch) costs one hop for create, write, sync and whatever follows.
    path: PathBuf,
    /// A spare file to rename to `path` instead of creating one ([`super::spare`]).
    spare: Option<super::spare::Lease>,
    /// The file, once the task that created it is joined.
    file: Option<Arc<File>>,
    gathering: Vec<Bytes>,
    gathered: usize,
    /// The batch on the blocking pool; it gives back the file.
    writing: Option<JoinHandle<io::Result<Arc<File>>>>,
    /// The background sync, if one runs.
    syncing: Option<JoinHandle<io::Result<()>>>,
    /// Bytes handed to the pool since the last background sync began.
    unsynced: u64,
    /// Bytes whose write has finished: a sync started now covers them.
    written: u64,
    /// Bytes of the batch on the blocking pool.
    in_flight: u64,
    /// Set when the sink is dropped unfinished (a refused or cancelled write): a task still on the pool
    /// that creates the file after the writer removed its leftovers removes it itself.
    abandoned: Arc<AtomicBool>,
    /// [`FileSink::finish_then`] took over.
    finished: bool,
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.finished {
            self.abandoned.store(true, Ordering::SeqCst);
        }
    }
}

impl FileSink {
    /// A sink that will create `path` (which must not exist), from `spare` when given, and write to it.
    pub(super) fn create(path: PathBuf, spare: Option<super::spare::Lease>) -> Self {
        Self::starting(path, None, spare)
    }

    /// A sink writing to `file`, already open (tests: a handle that refuses writes).
    #[cfg(test)]
    fn on(file: File) -> Self {
        Self::starting(PathBuf::new(), Some(Arc::new(file)), None)
    }

    fn starting(path: PathBuf, file: Option<Arc<File>>, spare: Option<super::spare::Lease>) -> Self {
        Self {
            path,
            spare,
            file,
            gathering: Vec::new(),
            gathered: 0,
            writing: None,
            syncing: None,
            unsynced: 0,
            written: 0,
            in_flight: 0,
            abandoned: Arc::default(),
            finished: false,
        }
    }

    /// Queues `chunk`; it may wait for the previous batch to reach the page cache (the write's
    /// backpressure).
    pub(super) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.gathered += chunk.len();
        self.gathering.push(chunk);
        if self.gathered >= BATCH || self.gathering.len() >= MAX_CHUNKS {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Writes what is gathered, waits for every write and sync, syncs the file (data and size), then
    /// runs `then` (the blob's placement), all in one task on the blocking pool: each hop to the pool
    /// is two thread switches, which for a small object cost more than its bytes (issue 15).
    pub(super) async fn finish_then<T: Send + 'static>(
        mut self,
        then: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        self.join_writing().await?;
        join(self.syncing.take()).await?;
        self.finished = true;
        let (path, file, batch) =
            (mem::take(&mut self.path), self.file.take(), mem::take(&mut self.gathering));
        let (spare, abandoned) = (self.spare.take(), Arc::clone(&self.abandoned));
        tokio::task::spawn_blocking(move || {
            let file = open(&path, file, spare, &abandoned)?;
            write_all(&file, &batch)?;
            file.sync_all()?;
            drop_cached(&file, None);
            then()
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Waits for the batch on the pool and keeps the file it gives back.
    async fn join_writing(&mut self) -> io::Result<()> {
        if let Some(task) = self.writing.take() {
            self.file = Some(task.await.map_err(io::Error::other)??);
            self.written += mem::take(&mut self.in_flight);
        }
        Ok(())
    }

    /// Hands the gathered chunks to the pool once the batch before them is written, and starts a
    /// background sync when enough has been written since the last one.
    async fn send_batch(&mut self) -> io::Result<()> {
        self.join_writing().await?;
        if self.gathering.is_empty() {
            return Ok(());
        }
        let batch = mem::take(&mut self.gathering);
        self.in_flight = mem::take(&mut self.gathered) as u64;
        self.unsynced += self.in_flight;
        let (path, file, abandoned) = (self.path.clone(), self.file.clone(), Arc::clone(&self.abandoned));
        // Only the first batch opens the file: later ones start after it is joined.
        let spare = self.spare.take();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let file = open(&path, file, spare, &abandoned)?;
            write_all(&file, &batch)?;
            Ok(file)
        }));
        if let Some(file) = &self.file
            && self.unsynced >= SYNC_EVERY
            && self.syncing.as_ref().is_none_or(JoinHandle::is_finished)
        {
            // The previous sync is done: learn its outcome (an I/O error fails the write) and start the
            // next one, which covers everything written so far.
            join(self.syncing.take()).await?;
            let (file, synced) = (Arc::clone(file), self.written);
            self.syncing = Some(tokio::task::spawn_blocking(move || {
                file.sync_data()?;
                drop_cached(&file, NonZeroU64::new(synced));
                Ok(())
            }));
            self.unsynced = 0;
        }
        Ok(())
    }
}

/// The sink's file: the one already open, or `path` created now (on the blocking pool, from `spare` when
/// given). A file created after its sink was dropped is removed again: the writer's own cleanup may have
/// run before it existed.
fn open(
    path: &Path,
    file: Option<Arc<File>>,
    spare: Option<super::spare::Lease>,
    abandoned: &AtomicBool,
) -> io::Result<Arc<File>> {
    if let Some(file) = file {
        return Ok(file);
    }
    let file = super::spare::open_fresh(path, spare)?;
    if abandoned.load(Ordering::SeqCst) {
        let _ = std::fs::remove_file(path);
        return Err(io::Error::other("the write was abandoned"));
    }
    Ok(Arc::new(file))
}

/// Waits for a task on the blocking pool, if there is one.
async fn join(task: Option<JoinHandle<io::Result<()>>>) -> io::Result<()> {
    match task {
        Some(task) => task.await.map_err(io::Error::other)?,
        None => Ok(()),
    }
}

/// Asks the kernel to drop the file's first `len` bytes (all of it when `None`) from the page cache;
/// called only on synced bytes, which are clean and so dropped at once. Advisory: a failure changes
/// nothing stored.
fn drop_cached(file: &File, len: Option<NonZeroU64>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = rustix::fs::fadvise(file, 0, len, rustix::fs::Advice::DontNeed);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (file, len);
}

/// Writes every byte of `chunks` with as few `writev` calls as the kernel allows.
fn write_all(mut file: &File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the disk took no bytes")),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::{Rng as _, RngExt as _, SeedableRng as _};

    use super::*;

    /// Bodies of every shape (empty, one byte, many tiny chunks, chunks across batch and sync
    /// boundaries) land on disk byte for byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_chunk_lands_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let shapes: [(usize, usize); 6] = [
            (0, 1),
            (1, 1),
            (3000, 1),
            (BATCH * 3 + 17, 64 << 10),
            (SYNC_EVERY as usize * 2 + 5, 1 << 20),
            (BATCH + 1, 300),
        ];
        for (round, (len, max_chunk)) in shapes.into_iter().enumerate() {
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            let path = dir.path().join(format!("blob{round}"));
            let mut sink = FileSink::create(path.clone(), None);
            let mut at = 0;
            while at < len {
                let n = rng.random_range(0..=max_chunk).min(len - at);
                sink.write(Bytes::copy_from_slice(&data[at..at + n])).await.unwrap();
                at += n;
            }
            sink.finish_then(|| Ok(())).await.unwrap();
            assert!(
                std::fs::read(&path).unwrap() == data,
                "shape {round}: {len} bytes in chunks up to {max_chunk}"
            );
        }
    }

    /// A write that fails (here: a file opened read-only) reports the error instead of losing it.
    #[tokio::test]
    async fn a_failed_write_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, b"").unwrap();
        let mut sink = FileSink::on(File::open(&path).unwrap());
        let mut result = Ok(());
        for _ in 0..3 {
            result = sink.write(Bytes::from(vec![1u8; BATCH])).await;
            if result.is_err() {
                break;
            }
        }
        let result = match result {
            Ok(()) => sink.finish_then(|| Ok(())).await,
            Err(e) => Err(e),
        };
        assert!(result.is_err(), "writing to a read-only handle must fail");
    }
}
