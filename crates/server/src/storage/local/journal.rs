//! Intents: one small file per publication in flight, so that [`super::LocalStore::open`] can finish or undo
//! whatever a crash interrupted without scanning every object.
//!
//! PutObject and CompleteMultipartUpload each publish a new blob folder under a key. Before the first step
//! that a crash could strand, they write `intents/<blob folder>` naming the key; just before the manifest
//! rename they add the blob folder the rename will replace. The intent is removed once everything after the
//! rename is done (or undone). On open, each intent left behind is settled:
//!
//! - **published** (the key's manifest names the intent's folder): the replaced folder and any part files
//!   the completion did not list are removed, as the interrupted request would have done;
//! - **not published**: stray manifest temp files of the key are removed, a completing upload's folder goes
//!   back to `uploads/` (the upload is open again, every acknowledged part intact), and a PutObject body
//!   is removed.
//!
//! Completions write their intent durably (fsync) because undoing them reopens an upload whose parts were
//! acknowledged; a PutObject's intent only guards against garbage, so it skips the fsync.

use std::collections::HashSet;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use super::{Shared, is_blob_dir, is_upload_id, prune};

/// What an intent file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Intent {
    key: String,
    /// The blob folder the publication replaced, once known.
    previous: Option<String>,
}

/// An intent on disk, removed when dropped: a request that finishes (or fails and undoes its steps)
/// leaves nothing to settle. A crash skips the drop, which is the point.
#[derive(Debug)]
pub(super) struct IntentFile {
    path: PathBuf,
    intent: Intent,
    /// Cleared by [`Self::disown`]: the file belongs to another request.
    owned: bool,
}

impl IntentFile {
    /// Records that `blob_dir` is about to be published as `key`; `durable` fsyncs the file and folder.
    pub(super) fn write(shared: &Shared, blob_dir: &str, key: &str, durable: bool) -> io::Result<Self> {
        let folder = shared.dir("intents");
        let file = Self {
            path: folder.join(blob_dir),
            intent: Intent { key: key.to_owned(), previous: None },
            owned: true,
        };
        file.save(durable)?;
        if durable {
            std::fs::File::open(&folder)?.sync_all()?;
        }
        Ok(file)
    }

    /// Adds the folder the manifest rename is about to replace. Not fsynced: losing it to a power cut
    /// only leaves that folder behind as garbage.
    pub(super) fn note_previous(&mut self, previous: Option<&str>) -> io::Result<()> {
        if previous.is_none() {
            return Ok(());
        }
        self.intent.previous = previous.map(str::to_owned);
        self.save(false)
    }

    /// Leaves the file in place when dropped: a racing request for the same folder (a second Complete of
    /// the same upload) lost the race, and the winner's intent has the same name.
    pub(super) fn disown(&mut self) {
        self.owned = false;
    }

    fn save(&self, durable: bool) -> io::Result<()> {
        let json = serde_json::to_vec(&self.intent).map_err(io::Error::other)?;
        let mut file = std::fs::File::create(&self.path)?;
        file.write_all(&json)?;
        if durable {
            file.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for IntentFile {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "removing a settled intent failed");
        }
    }
}

/// What [`recover`] repaired, for the startup log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Uploads whose interrupted completion was undone: open again with all their parts.
    pub reopened: Vec<String>,
    /// Publications that had finished but not cleaned up after themselves.
    pub finished: usize,
    /// Blob folders removed (unpublished PutObject bodies, replaced folders).
    pub removed_folders: usize,
    /// Temporary files removed (parts and manifests cut off mid-write).
    pub removed_temp_files: usize,
}

impl Recovery {
    /// Whether anything needed repair.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Settles every intent left by a crash, then removes part files cut off mid-write. Blocking; runs once in
/// `open`, before the store serves anything.
pub(super) fn recover(shared: &Shared) -> io::Result<Recovery> {
    let mut recovery = Recovery::default();
    let intents = shared.dir("intents");
    for entry in std::fs::read_dir(&intents)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_blob_dir(&name) {
            let intent = std::fs::read(entry.path())
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Intent>(&bytes).ok());
            match intent {
                Some(intent) => settle(shared, &name, &intent, &mut recovery)?,
                // Cut off while being written: nothing was renamed yet, except perhaps the upload folder.
                None => unpublished(shared, &name, None, &mut recovery)?,
            }
        }
        std::fs::remove_file(entry.path())?;
    }
    std::fs::File::open(&intents)?.sync_all()?;
    for upload in std::fs::read_dir(shared.dir("uploads"))? {
        let upload = upload?;
        if upload.file_type()?.is_dir() {
            recovery.removed_temp_files += remove_temp_files(&upload.path(), None)?;
        }
    }
    Ok(recovery)
}

fn settle(shared: &Shared, blob_dir: &str, intent: &Intent, recovery: &mut Recovery) -> io::Result<()> {
    let (folder, name) = shared.manifest_location(&intent.key);
    let current = std::fs::read(folder.join(format!("{name}.manifest")))
        .ok()
        .and_then(|bytes| Manifest::parse(&bytes, &intent.key).ok());
    match current {
        Some(manifest) if manifest.blob_dir == blob_dir => {
            recovery.finished += 1;
            let dir = shared.dir("blobs").join(blob_dir);
            let keep: HashSet<u32> = manifest.blobs.iter().map(|b| b.file).collect();
            recovery.removed_temp_files += prune(&dir, &keep)?;
            if let Some(previous) = intent.previous.as_deref().filter(|p| is_blob_dir(p) && *p != blob_dir) {
                recovery.removed_folders += remove_folder(&shared.dir("blobs").join(previous))?;
            }
            Ok(())
        }
        _ => unpublished(shared, blob_dir, Some(&intent.key), recovery),
    }
}

/// Undoes a publication that never happened.
fn unpublished(
    shared: &Shared,
    blob_dir: &str,
    key: Option<&str>,
    recovery: &mut Recovery,
) -> io::Result<()> {
    if let Some(key) = key {
        let (folder, name) = shared.manifest_location(key);
        if folder.is_dir() {
            recovery.removed_temp_files += remove_temp_files(&folder, Some(&name))?;
        }
    }
    let dir = shared.dir("blobs").join(blob_dir);
    if !dir.exists() {
        return Ok(());
    }
    let staging = shared.dir("uploads").join(blob_dir);
    if is_upload_id(blob_dir) && !staging.exists() {
        std::fs::rename(&dir, &staging)?;
        std::fs::File::open(shared.dir("uploads"))?.sync_all()?;
        std::fs::File::open(shared.dir("blobs"))?.sync_all()?;
        recovery.reopened.push(blob_dir.to_owned());
    } else {
        recovery.removed_folders += remove_folder(&dir)?;
    }
    Ok(())
}

/// Removes `*.tmp` files in `dir` (only those of the manifest `name`, when given). Returns how many.
fn remove_temp_files(dir: &Path, name: Option<&str>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.ends_with(".tmp") && name.is_none_or(|name| file.starts_with(&format!("{name}."))) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn remove_folder(dir: &Path) -> io::Result<usize> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}
