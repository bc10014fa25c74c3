//! Spare files: the inodes of deleted blobs, kept empty in `spare/` and handed to new writes instead of
//! creating files.
//!
//! Why: on ext4 without a journal (this project's CI and bench machines), allocating an inode skips every
//! inode of the same block group deleted in the last minute or more (`recently_deleted`, so that a crash
//! cannot leave two files on one inode), and checking each one reads its inode table entry. A store that
//! deletes blobs as steadily as it writes them (the collector, replaced objects, aborted uploads) then
//! pays about 0.85 ms of CPU for every new file: measured 846 µs per `open(O_CREAT)` in this store's
//! `tmp/` against 25 µs in a folder with no recent deletions, and 9% of the server's samples during a
//! large upload (issue 15). Renaming a spare into place and truncating it reuses the inode; no
//! allocation, no scan. On other filesystems it costs a rename, as cheap as the create it replaces.
//!
//! A spare is garbage: nothing references it, a crash may leave it with bytes (a write truncates it again)
//! or leave a deleted blob under its old name (the collector finds it again, as it would have). At most
//! [`MAX_SPARES`] are kept; deletions beyond that remove the file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::storage::is_blob_id;

/// Spare files kept at most: empty inodes cost nothing, and this covers a burst of deletions.
pub(super) const MAX_SPARES: usize = 4096;

/// The spare files of one store (names in `spare/`).
#[derive(Debug)]
pub(super) struct Spares {
    dir: PathBuf,
    names: Mutex<Vec<String>>,
}

impl Spares {
    /// The spares already in `dir` (left by an earlier run; anything that is not a spare's name is
    /// ignored).
    pub(super) fn load(dir: PathBuf) -> io::Result<Self> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str().filter(|n| is_blob_id(n))
                && entry.file_type()?.is_file()
            {
                if names.len() < MAX_SPARES {
                    names.push(name.to_owned());
                } else {
                    std::fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(Self { dir, names: Mutex::new(names) })
    }

    /// Takes a spare for a new write, if there is one. A lease dropped unused (the write was refused
    /// before its file was opened) gives the spare back.
    pub(super) fn take(self: &Arc<Self>) -> Option<Lease> {
        let name = self.names.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
        Some(Lease { spares: Arc::clone(self), name: Some(name) })
    }

    /// Keeps the file of deleted blob `id` (at `path`) as a spare, emptied; false when there are enough
    /// (the caller removes it then). Blocking: runs on the blocking pool.
    pub(super) fn keep(&self, id: &str, path: &Path) -> io::Result<bool> {
        if self.names.lock().unwrap_or_else(PoisonError::into_inner).len() >= MAX_SPARES {
            return Ok(false);
        }
        let spare = self.dir.join(id);
        std::fs::rename(path, &spare)?;
        // Emptied here, on the collector's time, so the write that takes it has no blocks to free.
        File::options().write(true).open(&spare)?.set_len(0)?;
        self.names.lock().unwrap_or_else(PoisonError::into_inner).push(id.to_owned());
        Ok(true)
    }
}

/// A spare taken for one write.
#[derive(Debug)]
pub(super) struct Lease {
    spares: Arc<Spares>,
    /// None once used (or found gone).
    name: Option<String>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            self.spares.names.lock().unwrap_or_else(PoisonError::into_inner).push(name);
        }
    }
}

/// Opens a new, empty file at `path` for a write: the `spare` renamed there when given (and still
/// present), else a new file. Blocking.
pub(super) fn open_fresh(path: &Path, spare: Option<Lease>) -> io::Result<File> {
    if let Some(mut lease) = spare
        && let Some(name) = lease.name.clone()
    {
        match std::fs::rename(lease.spares.dir.join(&name), path) {
            Ok(()) => {
                lease.name = None;
                let file = File::options().write(true).truncate(true).open(path)?;
                // The collector measures a blob's age by its modification time; the spare's is old.
                file.set_modified(SystemTime::now())?;
                return Ok(file);
            }
            // Gone (another writer cannot take it; an operator may have cleaned the folder): create.
            Err(e) if e.kind() == io::ErrorKind::NotFound => lease.name = None,
            Err(e) => return Err(e),
        }
    }
    File::options().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    /// A deleted blob's inode comes back, empty and with a fresh modification time, as the next write's
    /// file; without spares a write creates a file; the cap sends further deletions to the caller.
    #[test]
    fn a_deleted_blob_becomes_the_next_write_s_empty_file() {
        let root = tempfile::tempdir().unwrap();
        let spare_dir = root.path().join("spare");
        std::fs::create_dir(&spare_dir).unwrap();
        let spares = Arc::new(Spares::load(spare_dir.clone()).unwrap());
        let fresh = open_fresh(&root.path().join("new"), spares.take()).unwrap();
        drop(fresh);

        let id = crate::storage::new_blob_id();
        let blob = root.path().join(&id);
        std::fs::write(&blob, b"old bytes").unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options().write(true).open(&blob).unwrap().set_modified(old).unwrap();
        let inode = std::fs::metadata(&blob).unwrap().ino();
        assert!(spares.keep(&id, &blob).unwrap());
        assert!(!blob.exists());
        assert_eq!(
            Spares::load(spare_dir.clone()).unwrap().names.lock().unwrap().len(),
            1,
            "a restart finds it"
        );

        let target = root.path().join("tmp-write");
        drop(spares.take());
        assert_eq!(spares.names.lock().unwrap().len(), 1, "a lease dropped unused gives the spare back");
        let mut file = open_fresh(&target, spares.take()).unwrap();
        file.write_all(b"new").unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.ino(), inode, "the spare's inode is reused");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(meta.modified().unwrap() > old + std::time::Duration::from_secs(3000));
        assert!(spares.take().is_none());

        spares.names.lock().unwrap().extend((0..MAX_SPARES).map(|_| crate::storage::new_blob_id()));
        let other = root.path().join(crate::storage::new_blob_id());
        std::fs::write(&other, b"x").unwrap();
        let id = other.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(!spares.keep(&id, &other).unwrap(), "full: the caller removes it");
        assert!(other.exists());
    }
}
