//! The local-disk [`BlobStore`]: objects as small JSON manifests over immutable blob files, published by
//! one atomic rename, so an object is either absent or whole after any crash, and CompleteMultipartUpload
//! costs O(parts) whatever the object size.
//!
//! Layout under the root (no path is ever derived from a key; keys only ever reach a SHA-256):
//!
//! ```text
//! lock                          held (flock) while a LocalStore is open: one process per root
//! objects/ab/cd/<sha256(key)>.manifest     the object: key, blob folder, blob files + lengths, digests, meta
//! uploads/<UPLOAD_ID>/<n>       a staged part: data, then a 40-byte trailer (MD5, CRC-64, length, magic)
//! blobs/<UPLOAD_ID>/<n>         parts of a completed upload (its staging folder, moved by one rename)
//! blobs/put-<random>/1          the body of a PutObject, same file format
//! trash/                        blob folders being removed; emptied when the store opens
//! intents/<blob folder>         a publication in flight: its key (see `journal`); settled when the store opens
//! ```
//!
//! Every file is written under a `*.tmp` name, fsynced, then renamed into place, and the folder is fsynced;
//! a crash leaves at most `*.tmp` files and unreferenced blob folders, which are garbage, never visible.
//! Steps that must not stop halfway (publish, complete, delete, abort) run on their own task, so a client
//! that disconnects cannot interrupt them.
//!
//! A blob folder belongs to exactly one manifest publication, so once that manifest is replaced or deleted
//! the folder can go. Manifest changes are serialized per key (a striped lock; the root's lock file makes
//! this process the only writer), so each replaced folder is known exactly and retired once. Readers
//! lease the folder they read from ([`ReadLease`]); a folder retired while leased is removed when its last
//! reader finishes. Part files are therefore opened one at a time as a GET reaches them (a 10000-part
//! object does not need 10000 descriptors), and a concurrent overwrite or delete never tears a read.
//!
//! A crash between the steps of a publication is repaired when the store next opens, from the intent the
//! publication wrote first (`journal`): it is finished if its manifest was renamed, undone otherwise.
//!
//! Beside this file: `blob` (the blob file format and part files), `manifest` (the stored form of an
//! object), `reader` (GET streams and read leases), `journal` (intents and their recovery).
//!
//! Not here: which keys and upload ids are legal (the data plane), expiring uploads (the sweeper), and
//! whether the catalogue agrees with what storage holds (`crate::reconcile`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest as _, Sha256};
use tokio::fs;
use tokio::io::AsyncWriteExt as _;

mod blob;
mod journal;
mod manifest;
mod reader;

use self::blob::{prune, read_part, scan_parts, write_blob};
use self::journal::IntentFile;
pub use self::journal::Recovery;
use self::manifest::Manifest;
use self::reader::{BlobReader, LeaseState, ReadLease, resolve_range, segments};
use super::{BlobStore, ByteStream, ObjectInfo, ObjectMeta, PartInfo, StorageError, WriteLimits};
use crate::fault::{self, FaultPoint};
use vodup_proto::oss::part::is_valid_part_number;

/// The folders under the root.
const SUBFOLDERS: [&str; 5] = ["objects", "uploads", "blobs", "trash", "intents"];
/// A GET retries when the object is replaced between reading its manifest and leasing its blobs.
const OPEN_ATTEMPTS: usize = 8;

/// Objects and multipart staging in a folder on local disk. Cheap to clone; clones share one store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    /// Blob folders being read, and whether they were retired meanwhile (see [`ReadLease`]).
    leases: Mutex<HashMap<String, LeaseState>>,
    /// Held for the store's lifetime: leases only work if one process owns the root.
    _lock: std::fs::File,
    /// Manifest changes of keys in one stripe (first byte of the key hash) run one at a time, so the
    /// manifest a write reads as "previous" is exactly the one its rename replaces and every blob folder
    /// is retired once. One process owns the root, so an in-process lock is enough.
    stripes: Box<[tokio::sync::Mutex<()>; 256]>,
    /// What opening the store repaired.
    recovery: Recovery,
}

impl LocalStore {
    /// Opens (creating if needed) the store at `root`, takes its lock, empties `trash/`, and settles the
    /// publications a crash interrupted (logged, and kept for [`Self::recovery`]).
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
        lock.try_lock().map_err(|e| {
            let source = match e {
                std::fs::TryLockError::WouldBlock => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another vodup process (or LocalStore) already uses this folder",
                ),
                std::fs::TryLockError::Error(e) => e,
            };
            StorageError::backend(format!("locking the local store at {at}"), source)
        })?;
        let shared = Shared {
            root,
            leases: Mutex::default(),
            _lock: lock,
            stripes: Box::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            recovery: Recovery::default(),
        };
        // Anything in trash/ was being removed when the last process stopped; nothing references it.
        let mut shared = blocking(move || {
            remove_children(&shared.dir("trash"))?;
            let mut shared = shared;
            shared.recovery = journal::recover(&shared)?;
            Ok(shared)
        })
        .await
        .map_err(|e| StorageError::backend(format!("recovering the local store at {at}"), e))?;
        let recovery = &mut shared.recovery;
        if recovery.is_empty() {
            tracing::debug!(root = at, "local store opened; nothing to recover");
        } else {
            tracing::warn!(
                root = at,
                reopened_uploads = ?recovery.reopened,
                finished_publications = recovery.finished,
                removed_folders = recovery.removed_folders,
                removed_temp_files = recovery.removed_temp_files,
                "local store repaired what a crash left behind"
            );
        }
        Ok(Self { shared: Arc::new(shared) })
    }

    /// What [`Self::open`] repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.shared.recovery
    }

    /// Reads and checks the manifest of `key`.
    async fn load(&self, key: &str) -> Result<Manifest, StorageError> {
        let (dir, name) = self.shared.manifest_location(key);
        let bytes = match fs::read(dir.join(format!("{name}.manifest"))).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(format!("object {key:?}")));
            }
            Err(e) => {
                return Err(StorageError::backend(format!("reading the manifest of object {key:?}"), e));
            }
        };
        Manifest::parse(&bytes, key)
            .map_err(|e| StorageError::backend(format!("reading the manifest of object {key:?}"), e))
    }

    /// Makes `manifest` the object at its key: the only commit point of a write. Returns the blob folder
    /// of the manifest it replaced, for [`Self::retire`] once the caller is done. An error means nothing
    /// was published, so the caller may undo.
    async fn publish(
        &self,
        manifest: &Manifest,
        intent: &mut IntentFile,
    ) -> Result<Option<String>, StorageError> {
        let key = &manifest.key;
        let fail =
            |doing: &str, e| StorageError::backend(format!("{doing} the manifest of object {key:?}"), e);
        let (dir, name) = self.shared.manifest_location(key);
        if fs::metadata(&dir).await.is_err() {
            fs::create_dir_all(&dir).await.map_err(|e| fail("creating the folder of", e))?;
            // The new folder entries must be durable before a manifest inside them counts as published.
            for parent in [dir.parent(), dir.parent().and_then(Path::parent)].into_iter().flatten() {
                sync_dir(parent).await.map_err(|e| fail("syncing the folder of", e))?;
            }
        }
        let json = serde_json::to_vec(manifest).map_err(|e| fail("encoding", io::Error::other(e)))?;
        let tmp = dir.join(format!("{name}.{}.tmp", random_hex()));
        let mut leftover = Leftover::file(tmp.clone());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(|e| fail("creating", e))?;
        file.write_all(&json).await.map_err(|e| fail("writing", e))?;
        file.sync_all().await.map_err(|e| fail("syncing", e))?;
        drop(file);
        fault::hit(FaultPoint::ManifestWritten);
        let path = dir.join(format!("{name}.manifest"));
        let stripe = self.shared.stripe(&name).lock().await;
        let previous = match fs::read(&path).await {
            Ok(bytes) => match Manifest::parse(&bytes, key) {
                Ok(old) => Some(old.blob_dir),
                Err(e) => {
                    tracing::warn!(key, error = %e, "replacing an unreadable manifest; its blobs are left behind");
                    None
                }
            },
            Err(_) => None,
        };
        intent.note_previous(previous.as_deref()).map_err(|e| fail("recording the intent to publish", e))?;
        fs::rename(&tmp, &path).await.map_err(|e| fail("publishing", e))?;
        leftover.disarm();
        drop(stripe);
        // Published: every reader sees it now. Reporting a failure here would make the caller undo its
        // blobs under a visible manifest; only durability across a power loss is in doubt, so log it.
        if let Err(e) = sync_dir(&dir).await {
            tracing::error!(key, error = %e, "syncing the folder of a published manifest failed");
        }
        Ok(previous)
    }

    /// Removes a blob folder whose manifest is no longer current, now or when its last reader finishes.
    /// Best effort: a folder left behind is garbage, never visible.
    async fn retire(&self, blob_dir: Option<String>) {
        let Some(blob_dir) = blob_dir else { return };
        if self.shared.retire(&blob_dir) {
            let shared = Arc::clone(&self.shared);
            if let Err(e) = tokio::task::spawn_blocking(move || shared.discard(&blob_dir)).await {
                tracing::warn!(error = %e, "removing a replaced blob folder failed");
            }
        }
    }

    /// The staging folder of an open upload; a malformed id names no upload (and never reaches a path).
    fn staging(&self, upload_id: &str) -> Result<PathBuf, StorageError> {
        if is_upload_id(upload_id) {
            Ok(self.shared.dir("uploads").join(upload_id))
        } else {
            Err(StorageError::NotFound(format!("upload {upload_id:?}")))
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn put_object(
        &self,
        key: &str,
        body: ByteStream,
        limits: &WriteLimits,
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, StorageError> {
        let blob_dir = format!("put-{}", random_hex());
        let intent = IntentFile::write(&self.shared, &blob_dir, key, false)
            .map_err(|e| StorageError::backend(format!("recording the intent to write object {key:?}"), e))?;
        let dir = self.shared.dir("blobs").join(&blob_dir);
        fs::create_dir(&dir)
            .await
            .map_err(|e| StorageError::backend(format!("creating the blob folder of object {key:?}"), e))?;
        let leftover = Leftover::dir(dir.clone());
        let (digests, _) = write_blob(&dir, 1, body, limits, &format!("object {key:?}")).await?;
        let manifest = Manifest::normal(key, blob_dir, &digests, meta);
        let store = self.clone();
        detached(async move {
            // Dropped in reverse: the body's folder goes (on failure) before the intent that names it.
            let mut intent = intent;
            let mut leftover = leftover;
            let blobs = store.shared.dir("blobs");
            sync_dir(&blobs)
                .await
                .map_err(|e| StorageError::backend("syncing blobs/ of the local store", e))?;
            let previous = store.publish(&manifest, &mut intent).await?;
            leftover.disarm();
            store.retire(previous).await;
            Ok(manifest.info())
        })
        .await
    }

    async fn create_upload(&self, upload_id: &str) -> Result<(), StorageError> {
        let fail = |doing: &str, e| StorageError::backend(format!("{doing} upload {upload_id:?}"), e);
        if !is_upload_id(upload_id) {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "upload ids are 1 to 64 of [0-9A-F]");
            return Err(fail("creating", e));
        }
        // A completed upload's parts live on in blobs/<id>; reusing its id would make two objects share it.
        if fs::metadata(self.shared.dir("blobs").join(upload_id)).await.is_ok() {
            let e = io::Error::new(io::ErrorKind::AlreadyExists, "the id belongs to a completed upload");
            return Err(fail("creating", e));
        }
        let uploads = self.shared.dir("uploads");
        fs::create_dir(uploads.join(upload_id))
            .await
            .map_err(|e| fail("creating the staging folder of", e))?;
        sync_dir(&uploads).await.map_err(|e| fail("syncing the staging folder of", e))
    }

    async fn put_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        limits: &WriteLimits,
    ) -> Result<PartInfo, StorageError> {
        let dir = self.staging(upload_id)?;
        if !is_valid_part_number(part_number) {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "part numbers are 1 to 10000");
            return Err(StorageError::backend(
                format!("storing part {part_number} of upload {upload_id}"),
                e,
            ));
        }
        let what = format!("part {part_number} of upload {upload_id}");
        let (digests, last_modified) = write_blob(&dir, part_number, body, limits, &what).await?;
        Ok(PartInfo { part_number, digests, last_modified })
    }

    async fn list_parts(&self, upload_id: &str) -> Result<Vec<PartInfo>, StorageError> {
        let dir = self.staging(upload_id)?;
        // Thousands of trailers: one blocking task instead of three pool hops per part.
        match blocking(move || scan_parts(&dir)).await {
            Ok(parts) => Ok(parts),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(format!("upload {upload_id}")))
            }
            Err(e) => Err(StorageError::backend(format!("listing the parts of upload {upload_id}"), e)),
        }
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        key: &str,
        part_numbers: &[u32],
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, StorageError> {
        let staging = self.staging(upload_id)?;
        let (store, id, key, listed) =
            (self.clone(), upload_id.to_owned(), key.to_owned(), part_numbers.to_vec());
        // From the first rename on, the steps must all run or be undone, whether or not the client waits.
        detached(async move { store.complete(staging, &id, &key, listed, meta).await }).await
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<(), StorageError> {
        let staging = self.staging(upload_id)?;
        let trash = self.shared.dir("trash").join(format!("{upload_id}.{}", random_hex()));
        let id = upload_id.to_owned();
        let uploads = self.shared.dir("uploads");
        detached(async move {
            match fs::rename(&staging, &trash).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StorageError::NotFound(format!("upload {id}")));
                }
                Err(e) => return Err(StorageError::backend(format!("closing upload {id}"), e)),
            }
            sync_dir(&uploads).await.map_err(|e| StorageError::backend(format!("closing upload {id}"), e))?;
            if let Err(e) = blocking(move || std::fs::remove_dir_all(&trash)).await {
                tracing::warn!(upload_id = id, error = %e, "removing the parts of an aborted upload failed");
            }
            Ok(())
        })
        .await
    }

    async fn head_object(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        Ok(self.load(key).await?.info())
    }

    async fn get_object(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        for _ in 0..OPEN_ATTEMPTS {
            let manifest = self.load(key).await?;
            let range = resolve_range(range.clone(), manifest.size)?;
            let Some(lease) = ReadLease::acquire(&self.shared, &manifest.blob_dir) else {
                // Being removed: a newer manifest (or none) is already published.
                tokio::task::yield_now().await;
                continue;
            };
            let dir = self.shared.dir("blobs").join(&manifest.blob_dir);
            match fs::metadata(&dir).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::backend(format!("opening object {key:?}"), e)),
            }
            let segments = segments(&manifest.blobs, range);
            let reader = BlobReader::open(lease, dir, segments, key)
                .await
                .map_err(|e| StorageError::backend(format!("opening object {key:?}"), e))?;
            return Ok((manifest.info(), reader.into_stream()));
        }
        let e = io::Error::other(format!("replaced {OPEN_ATTEMPTS} times while being opened"));
        Err(StorageError::backend(format!("opening object {key:?}"), e))
    }

    async fn delete_object(&self, key: &str) -> Result<(), StorageError> {
        let (dir, name) = self.shared.manifest_location(key);
        let (store, key) = (self.clone(), key.to_owned());
        detached(async move {
            let fail = |e| StorageError::backend(format!("deleting object {key:?}"), e);
            // Claim whichever manifest is current by renaming it away, so the blobs we retire are exactly
            // those of the object we removed.
            let claimed = dir.join(format!("{name}.{}.tmp", random_hex()));
            let stripe = store.shared.stripe(&name).lock().await;
            match fs::rename(dir.join(format!("{name}.manifest")), &claimed).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(fail(e)),
            }
            drop(stripe);
            sync_dir(&dir).await.map_err(fail)?;
            let manifest = fs::read(&claimed).await.and_then(|bytes| Manifest::parse(&bytes, &key));
            if let Err(e) = fs::remove_file(&claimed).await {
                tracing::warn!(key, error = %e, "removing a deleted manifest failed");
            }
            match manifest {
                Ok(manifest) => store.retire(Some(manifest.blob_dir)).await,
                Err(e) => tracing::warn!(key, error = %e, "deleted an unreadable manifest; its blobs are left behind"),
            }
            Ok(())
        })
        .await
    }

    async fn open_uploads(&self) -> Result<Vec<String>, StorageError> {
        let uploads = self.shared.dir("uploads");
        blocking(move || {
            let mut ids = Vec::new();
            for entry in std::fs::read_dir(&uploads)? {
                if let Some(id) = entry?.file_name().to_str().filter(|id| is_upload_id(id)) {
                    ids.push(id.to_owned());
                }
            }
            ids.sort_unstable();
            Ok(ids)
        })
        .await
        .map_err(|e| StorageError::backend("listing the open uploads", e))
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
            let dir = self.shared.dir(sub);
            let meta = fs::metadata(&dir).await;
            if !meta.as_ref().is_ok_and(std::fs::Metadata::is_dir) {
                let e = meta.err().unwrap_or_else(|| io::Error::other("not a folder"));
                return Err(StorageError::backend(format!("checking {}", dir.display()), e));
            }
        }
        let probe = self.shared.root.join(format!("health.{}.tmp", random_hex()));
        let fail =
            |e| StorageError::backend(format!("writing a probe file in {}", self.shared.root.display()), e);
        let mut leftover = Leftover::file(probe.clone());
        let mut file = fs::File::create_new(&probe).await.map_err(fail)?;
        file.write_all(b"ok").await.map_err(fail)?;
        file.sync_all().await.map_err(fail)?;
        drop(file);
        fs::remove_file(&probe).await.map_err(fail)?;
        leftover.disarm();
        Ok(())
    }
}

impl LocalStore {
    /// The body of CompleteMultipartUpload, run detached. Moving the staging folder first closes the upload
    /// (a concurrent UploadPart or abort then fails with NotFound) and freezes the part files we read.
    async fn complete(
        &self,
        staging: PathBuf,
        upload_id: &str,
        key: &str,
        listed: Vec<u32>,
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, StorageError> {
        let fail = |doing: &str, e| {
            StorageError::backend(format!("{doing} upload {upload_id} as object {key:?}"), e)
        };
        let blobs = self.shared.dir("blobs");
        let dir = blobs.join(upload_id);
        if fs::metadata(&staging).await.is_err() {
            return Err(StorageError::NotFound(format!("upload {upload_id}")));
        }
        // Durable before the rename: undoing it after a crash is what reopens the upload.
        let shared = Arc::clone(&self.shared);
        let (id, named) = (upload_id.to_owned(), key.to_owned());
        let mut intent = blocking(move || IntentFile::write(&shared, &id, &named, true))
            .await
            .map_err(|e| fail("recording the intent to complete", e))?;
        match fs::rename(&staging, &dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                intent.disown();
                return Err(StorageError::NotFound(format!("upload {upload_id}")));
            }
            Err(e) => return Err(fail("completing", e)),
        }
        let mut reopen = Reopen { from: dir.clone(), to: Some(staging) };
        sync_dir(&self.shared.dir("uploads")).await.map_err(|e| fail("syncing", e))?;
        sync_dir(&blobs).await.map_err(|e| fail("syncing", e))?;
        let (read_dir, numbers) = (dir.clone(), listed.clone());
        let parts = blocking(move || {
            let part = |&n: &u32| {
                read_part(&read_dir, n).map_err(|e| io::Error::new(e.kind(), format!("part {n}: {e}")))
            };
            numbers.iter().map(part).collect::<io::Result<Vec<_>>>()
        });
        let parts = match parts.await {
            Ok(parts) => parts,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(format!("upload {upload_id}, {e}")));
            }
            Err(e) => return Err(fail("reading the parts of", e)),
        };
        let manifest = Manifest::multipart(key, upload_id, &parts, meta);
        let previous = self.publish(&manifest, &mut intent).await?;
        reopen.to = None;
        let keep: HashSet<u32> = listed.into_iter().collect();
        if let Err(e) = blocking(move || prune(&dir, &keep)).await {
            tracing::warn!(upload_id, error = %e, "removing unlisted parts failed");
        }
        self.retire(previous).await;
        Ok(manifest.info())
    }
}

/// Runs `work` on its own task so that a caller that goes away (a client disconnect drops the request
/// future) cannot stop it between a rename and its undo or its sequel.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::spawn(work)
        .await
        .map_err(|e| StorageError::backend("running a storage task", io::Error::other(e)))?
}

fn is_upload_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// Blob folders are upload ids (multipart) or `put-` and 32 lower-case hex digits; the two never meet.
fn is_blob_dir(name: &str) -> bool {
    is_upload_id(name)
        || name.strip_prefix("put-").is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Filesystem work with no async form (a folder fsync) or worth batching (thousands of small reads) runs
/// as one task on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(io::Error::other)?
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_owned();
    blocking(move || std::fs::File::open(&dir)?.sync_all()).await
}

fn remove_children(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
    }
    Ok(())
}

impl Shared {
    fn dir(&self, sub: &str) -> PathBuf {
        self.root.join(sub)
    }

    /// `objects/ab/cd` and the hex SHA-256 of the key: keys choose nothing about paths.
    /// The lock serializing manifest changes for the key whose hash is `name`.
    fn stripe(&self, name: &str) -> &tokio::sync::Mutex<()> {
        &self.stripes[usize::from(u8::from_str_radix(&name[..2], 16).unwrap_or(0))]
    }

    fn manifest_location(&self, key: &str) -> (PathBuf, String) {
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        (self.dir("objects").join(&hash[..2]).join(&hash[2..4]), hash)
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<String, LeaseState>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a blob folder whose manifest is gone for removal: `true` if the caller should [`Self::discard`]
    /// it now, `false` if a reader will when it finishes (or another retire already is).
    fn retire(&self, blob_dir: &str) -> bool {
        let mut leases = self.leases();
        let state = leases.entry(blob_dir.to_owned()).or_default();
        if state.discarding {
            return false;
        }
        if state.readers > 0 {
            state.retired = true;
            return false;
        }
        state.discarding = true;
        true
    }

    /// Moves a retired blob folder to trash/ (atomically, so no reader sees it half-removed), forgets its
    /// lease entry, then removes it. Blocking; best effort.
    fn discard(&self, blob_dir: &str) {
        let from = self.dir("blobs").join(blob_dir);
        let to = self.dir("trash").join(format!("{blob_dir}.{}", random_hex()));
        let moved = std::fs::rename(&from, &to);
        self.leases().remove(blob_dir);
        let removed = moved.and_then(|()| std::fs::remove_dir_all(&to));
        if let Err(e) = removed
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(blob_dir, error = %e, "removing a replaced blob folder failed; it is left as garbage");
        }
    }
}

/// Removes a file or folder on drop unless disarmed: a failed or abandoned write leaves nothing behind.
/// The removal is one blocking syscall in `drop`, accepted so that it also runs when a future is cancelled.
#[derive(Debug)]
struct Leftover {
    path: Option<PathBuf>,
    is_dir: bool,
}

impl Leftover {
    fn file(path: PathBuf) -> Self {
        Self { path: Some(path), is_dir: false }
    }

    fn dir(path: PathBuf) -> Self {
        Self { path: Some(path), is_dir: true }
    }

    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = if self.is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

/// Moves a claimed upload folder back to staging unless the completion was published: a failed Complete
/// leaves the upload open, as it was.
#[derive(Debug)]
struct Reopen {
    from: PathBuf,
    to: Option<PathBuf>,
}

impl Drop for Reopen {
    fn drop(&mut self) {
        if let Some(to) = self.to.take()
            && let Err(e) = std::fs::rename(&self.from, &to)
        {
            tracing::warn!(error = %e, path = %self.from.display(), "reopening an upload after a failed complete failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::blob::part_file_number;
    use super::*;
    use crate::storage::Digests;

    #[test]
    fn names_that_reach_paths_are_checked() {
        assert!(is_upload_id("0123456789ABCDEF"));
        for bad in ["", "abc", "../A", "A/B", "A.B", &"A".repeat(65)] {
            assert!(!is_upload_id(bad), "{bad:?}");
        }
        assert!(is_blob_dir("ABC") && is_blob_dir(&format!("put-{}", random_hex())));
        assert!(!is_blob_dir("put-../x") && !is_blob_dir("put-ABCDEF0123456789ABCDEF0123456789"));
        assert_eq!(part_file_number("37"), Some(37));
        for bad in ["0", "037", "10001", "1.ab.tmp", "+1", ""] {
            assert_eq!(part_file_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn manifests_are_checked_against_their_key_and_sizes() {
        let manifest =
            Manifest::normal("k", "ABC".into(), &Digests::of(b"hello world"), ObjectMeta::default());
        let json = serde_json::to_vec(&manifest).unwrap();
        let parsed = Manifest::parse(&json, "k").unwrap();
        assert_eq!(parsed.info(), manifest.info());
        assert_eq!(parsed.info().content_md5, Some(Digests::of(b"hello world").md5));
        assert!(Manifest::parse(&json, "other").is_err());
        let mut wrong = manifest.clone();
        wrong.size = 12;
        assert!(Manifest::parse(&serde_json::to_vec(&wrong).unwrap(), "k").is_err());
        let mut escaping = manifest;
        escaping.blob_dir = "../../etc".into();
        assert!(Manifest::parse(&serde_json::to_vec(&escaping).unwrap(), "k").is_err());
    }
}
