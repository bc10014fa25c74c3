//! The local-disk [`BlobStore`]: each blob is one file, written under a temporary name, fsynced and
//! renamed into place, so a blob under its final name is always whole. The store decides nothing about
//! keys or versions (the catalogue does), so it has no commit of its own: no manifest, no journal, no
//! lock per key. A crash leaves at most temporary files, which opening the store removes, and blobs no
//! catalogue row references, which the collector removes after its grace period.
//!
//! Layout under the root (no path is ever derived from anything a client sent; ids are checked):
//!
//! ```text
//! lock              held (flock) while a LocalStore is open: one process per root
//! blobs/ab/<id>     a blob: its bytes, nothing else; `ab` is the first two hex digits of the id
//! tmp/              blobs being written; emptied when the store opens
//! spare/<id>        empty files of deleted blobs, reused by new writes (`spare`: creating files is
//!                   slow where files are deleted steadily)
//! ```
//!
//! A data folder written by vodup before the catalogue owned objects has other folders too
//! (`objects/`, `uploads/`, `blobs/<upload id>/`, …); `legacy` reads them for the migration that runs
//! once at startup (`crate::upgrade`), and nothing else here looks at them.
//!
//! Beside this file: `blob` (writing a blob), `sink` (its bytes to disk), `spare` (reused files), `reader` (reading a range of one), `legacy` (the layout
//! before the catalogue owned objects).

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::fs;
use tokio::io::AsyncWriteExt as _;

mod blob;
pub mod legacy;
mod reader;
mod sink;
mod spare;

use super::{BlobStore, ByteStream, ListedBlob, StorageError, StoredBlob, WriteLimits, is_blob_id};

/// The folders under the root.
const SUBFOLDERS: [&str; 3] = ["blobs", "tmp", "spare"];

/// Blobs in a folder on local disk. Cheap to clone; clones share one store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    /// Held for the store's lifetime: temporary files are removed at open only because no other
    /// process can be writing them.
    _lock: std::fs::File,
    spares: Arc<spare::Spares>,
}

impl LocalStore {
    /// Opens (creating if needed) the store at `root`, takes its lock and removes what writes a crash
    /// interrupted left in `tmp/`.
    pub async fn open(root: PathBuf) -> Result<Self, StorageError> {
        let at = root.display().to_string();
        for sub in SUBFOLDERS {
            fs::create_dir_all(root.join(sub)).await.map_err(|e| {
                StorageError::backend(format!("creating {sub}/ of the local store at {at}"), e)
            })?;
        }
        sync_dir(&root)
            .await
            .map_err(|e| StorageError::backend(format!("syncing the local store at {at}"), e))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("lock"))
            .await
            .map_err(|e| {
                StorageError::backend(format!("opening the lock file of the local store at {at}"), e)
            })?
            .into_std()
            .await;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => StorageError::InUse { root: at.clone() },
            std::fs::TryLockError::Error(e) => {
                StorageError::backend(format!("locking the local store at {at}"), e)
            }
        })?;
        let tmp = root.join("tmp");
        let removed = blocking(move || remove_children(&tmp))
            .await
            .map_err(|e| StorageError::backend(format!("emptying tmp/ of the local store at {at}"), e))?;
        if removed > 0 {
            tracing::warn!(root = at, removed, "removed blobs a crash left half-written");
        }
        let spare_dir = root.join("spare");
        let spares = blocking(move || spare::Spares::load(spare_dir))
            .await
            .map_err(|e| StorageError::backend(format!("reading spare/ of the local store at {at}"), e))?;
        Ok(Self { shared: Arc::new(Shared { root, _lock: lock, spares: Arc::new(spares) }) })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Where the blob `id` lives; `NotFound` for anything that is not a blob id, so no client-chosen
    /// text ever reaches a path.
    fn path_of(&self, id: &str) -> Result<PathBuf, StorageError> {
        if is_blob_id(id) {
            Ok(self.shared.root.join("blobs").join(&id[..2]).join(id))
        } else {
            Err(StorageError::NotFound(format!("blob {id:?}")))
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn write(&self, body: ByteStream, limits: &WriteLimits) -> Result<StoredBlob, StorageError> {
        blob::write(&self.shared.root, self.shared.spares.take(), body, limits).await
    }

    async fn read(&self, id: &str, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let path = self.path_of(id)?;
        reader::open(&path, id, range).await
    }

    async fn delete(&self, id: &str) -> Result<(), StorageError> {
        let path = self.path_of(id)?;
        let (spares, owned) = (Arc::clone(&self.shared.spares), id.to_owned());
        // The file becomes a spare for a later write when there is room, else it is removed.
        let deleted = blocking(move || {
            if spares.keep(&owned, &path)? {
                return Ok(());
            }
            std::fs::remove_file(&path)
        })
        .await;
        match deleted {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::backend(format!("deleting blob {id}"), e)),
        }
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<ListedBlob>, StorageError> {
        let blobs = self.shared.root.join("blobs");
        let after = after.map(str::to_owned);
        blocking(move || list_blobs(&blobs, after.as_deref(), limit))
            .await
            .map_err(|e| StorageError::backend("listing the blobs of the local store", e))
    }

    async fn available_bytes(&self) -> Result<Option<u64>, StorageError> {
        let root = self.shared.root.clone();
        let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&root))
            .await
            .map_err(|e| StorageError::backend("measuring free space", io::Error::other(e)))?
            .map_err(|e| StorageError::backend("measuring free space", io::Error::from(e)))?;
        Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
    }

    async fn health_check(&self) -> Result<(), StorageError> {
        for sub in SUBFOLDERS {
            let dir = self.shared.root.join(sub);
            let meta = fs::metadata(&dir).await;
            if !meta.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
                let e = meta.err().unwrap_or_else(|| io::Error::other("not a folder"));
                return Err(StorageError::backend(format!("checking {}", dir.display()), e));
            }
        }
        let probe = self.shared.root.join("tmp").join(format!("health.{}", super::new_blob_id()));
        let fail =
            |e| StorageError::backend(format!("writing a probe file in {}", self.shared.root.display()), e);
        let mut file = fs::File::create_new(&probe).await.map_err(fail)?;
        let written = async {
            file.write_all(b"ok").await?;
            file.sync_all().await
        }
        .await;
        drop(file);
        let removed = fs::remove_file(&probe).await;
        written.and(removed).map_err(fail)
    }
}

/// Blobs with ids after `after`, ascending, at most `limit`: shard folders in order, each sorted.
fn list_blobs(blobs: &Path, after: Option<&str>, limit: usize) -> io::Result<Vec<ListedBlob>> {
    let mut shards: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(blobs)? {
        let name = entry?.file_name();
        // Only shard folders: two lower-case hex digits. Folders of the layout before the catalogue
        // owned objects (upload ids, `put-…`) are the migration's business.
        if let Some(name) = name.to_str().filter(|n| n.len() == 2 && is_blob_id(&format!("{n:0<32}"))) {
            shards.push(name.to_owned());
        }
    }
    shards.sort_unstable();
    let mut out = Vec::new();
    for shard in shards {
        if out.len() >= limit {
            break;
        }
        if after.is_some_and(|after| shard.as_str() < &after[..2.min(after.len())]) {
            continue;
        }
        let mut ids = Vec::new();
        let dir = blobs.join(&shard);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if !is_blob_id(&id) || !id.starts_with(&shard) || after.is_some_and(|after| id.as_str() <= after)
            {
                continue;
            }
            ids.push(id);
        }
        ids.sort_unstable();
        for id in ids {
            if out.len() >= limit {
                break;
            }
            let written_at = match std::fs::metadata(dir.join(&id)).and_then(|m| m.modified()) {
                Ok(at) => at,
                // Deleted while we listed it: not there any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(ListedBlob { id, written_at });
        }
    }
    Ok(out)
}

/// Filesystem work with no async form (a folder fsync) or worth batching (a folder listing) runs as one
/// task on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    blocking(move || sync_dir_now(&dir)).await
}

/// Makes `dir`'s entries durable, on the calling thread (one already on the blocking pool).
fn sync_dir_now(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes everything inside `dir`; returns how many entries there were.
fn remove_children(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// Removes a file on drop unless disarmed: a failed or abandoned write leaves nothing behind. The
/// removal is one blocking syscall in `drop`, accepted so that it also runs when a future is cancelled.
#[derive(Debug)]
struct Leftover(Option<PathBuf>);

impl Leftover {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(&path);
        }
    }
}
