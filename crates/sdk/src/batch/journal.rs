//! The batch manifest: an append-only journal, in the checkpoint folder, of what a batch did to each
//! file, so running the same batch again skips what is done, resumes what is half done, and finds what an
//! interrupted run created but never finished.
//!
//! One JSON record per line: `intent` (before the media is created, with the ReferenceId it will carry),
//! `created` (its id, the moment CreateUpload* answers), `done` (the result, with the source's identity),
//! `failed` and `cleaned` (a stray deleted). Records are fsynced before the step they announce goes on;
//! concurrent files share one fsync (group commit), so a batch of small files is not bound by the disk's
//! flush rate. A torn last line (a crash mid-write) is ignored on replay. Opening the journal replays it
//! into one entry per file and rewrites it compacted, so it does not grow across runs.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use vodup_proto::mac::sha256_hex;

use crate::error::{Error, ErrorKind, Result};
use crate::source::SourceIdentity;
use crate::upload::checkpoint;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// The file is about to get a new media item, which will carry this ReferenceId (videos).
    Intent {
        /// The file (absolute path or URL).
        file: String,
        /// The ReferenceId of the video to be created.
        reference_id: Option<String>,
    },
    /// CreateUpload* answered with this id.
    Created {
        /// The file.
        file: String,
        /// The media id.
        media_id: String,
    },
    /// The file is uploaded.
    Done {
        /// The file.
        file: String,
        /// Its media id.
        media_id: String,
        /// What the source was (size, modification time…), to tell an edited file from a done one.
        identity: Option<SourceIdentity>,
        /// Bytes uploaded.
        size: u64,
    },
    /// The file failed (kept for the record; a re-run tries it again).
    Failed {
        /// The file.
        file: String,
        /// Why.
        error: String,
    },
    /// A media item an interrupted run created and never finished was deleted.
    Cleaned {
        /// The file.
        file: String,
        /// The deleted media id.
        media_id: String,
    },
}

impl Record {
    fn file(&self) -> &str {
        match self {
            Self::Intent { file, .. }
            | Self::Created { file, .. }
            | Self::Done { file, .. }
            | Self::Failed { file, .. }
            | Self::Cleaned { file, .. } => file,
        }
    }
}

/// What the journal knows about one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The ReferenceId of the latest intent.
    pub reference_id: Option<String>,
    /// Media created for the file and neither done nor cleaned (strays, or the one being resumed).
    pub created: Vec<String>,
    /// The finished upload: media id, identity, size.
    pub done: Option<(String, Option<SourceIdentity>, u64)>,
}

impl Entry {
    fn apply(&mut self, record: &Record) {
        match record {
            Record::Intent { reference_id, .. } => {
                self.reference_id = reference_id.clone();
                self.done = None;
            }
            Record::Created { media_id, .. } => {
                if !self.created.contains(media_id) {
                    self.created.push(media_id.clone());
                }
            }
            Record::Done { media_id, identity, size, .. } => {
                self.created.retain(|id| id != media_id);
                self.done = Some((media_id.clone(), identity.clone(), *size));
            }
            Record::Cleaned { media_id, .. } => self.created.retain(|id| id != media_id),
            Record::Failed { .. } => {}
        }
    }

    /// The records that rebuild this entry.
    fn compact(&self, file: &str) -> Vec<Record> {
        let mut records = Vec::new();
        if self.reference_id.is_some() || !self.created.is_empty() || self.done.is_some() {
            records.push(Record::Intent { file: file.to_owned(), reference_id: self.reference_id.clone() });
        }
        for media_id in &self.created {
            records.push(Record::Created { file: file.to_owned(), media_id: media_id.clone() });
        }
        if let Some((media_id, identity, size)) = &self.done {
            records.push(Record::Done {
                file: file.to_owned(),
                media_id: media_id.clone(),
                identity: identity.clone(),
                size: *size,
            });
        }
        records
    }
}

type Pending = (Vec<u8>, oneshot::Sender<std::io::Result<()>>);

/// An open, locked journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    writer: mpsc::UnboundedSender<Pending>,
    _lock: Arc<File>,
}

impl Journal {
    /// Opens (creating) the journal of the batch named by `key_parts` in `dir`, locked against a second
    /// process running the same batch, replayed and compacted.
    pub fn open(dir: &Path, key_parts: &[&str]) -> Result<Self> {
        let io = |e: std::io::Error, what: &str, path: &Path| {
            Error::new(ErrorKind::Io, "open batch manifest", format!("{what}: {e}"))
                .with_path(path)
                .with_hint("give a writable --checkpoint-dir")
        };
        std::fs::create_dir_all(dir).map_err(|e| io(e, "cannot create the folder", dir))?;
        let name = sha256_hex(key_parts.join("\n").as_bytes());
        let path = dir.join(format!("batch-{}.jsonl", &name[..32]));
        let lock = checkpoint::lock_beside(&path, "open batch manifest", "running this batch")?;
        let entries = replay(&path).map_err(|e| io(e, "cannot read", &path))?;
        let compacted: Vec<u8> = entries
            .iter()
            .flat_map(|(file, entry)| entry.compact(file))
            .flat_map(|record| line(&record))
            .collect();
        checkpoint::write_atomically(&path, &compacted)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(|e| io(e, "cannot open", &path))?;
        let (writer, pending) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("vodup-batch-journal".into())
            .spawn(move || write_loop(file, pending))
            .map_err(|e| io(e, "cannot start the journal writer", &path))?;
        Ok(Self { path, entries: Mutex::new(entries), writer, _lock: Arc::new(lock) })
    }

    /// Where the journal lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the journal knows about `file`.
    pub fn entry(&self, file: &str) -> Entry {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).get(file).cloned().unwrap_or_default()
    }

    /// Queues `record` without waiting for the disk (from a synchronous progress callback). Records are
    /// written in order, so anything appended after it and awaited is durable only once it is.
    pub fn append_later(&self, record: Record) {
        let (done, _) = oneshot::channel();
        let _ = self.writer.send((line(&record), done));
        self.apply(&record);
    }

    fn apply(&self, record: &Record) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(record.file().to_owned())
            .or_default()
            .apply(record);
    }

    /// Appends `record` and returns once it is on disk.
    pub async fn append(&self, record: Record) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let failed = |e: String| {
            Error::new(ErrorKind::Io, "write batch manifest", e)
                .with_path(&self.path)
                .with_hint("free disk space or give another --checkpoint-dir")
        };
        self.writer.send((line(&record), done)).map_err(|_| failed("the writer stopped".into()))?;
        wait.await.map_err(|_| failed("the writer stopped".into()))?.map_err(|e| failed(e.to_string()))?;
        self.apply(&record);
        Ok(())
    }
}

fn line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads the journal into entries; a line that does not parse (torn by a crash) is skipped.
fn replay(path: &Path) -> std::io::Result<HashMap<String, Entry>> {
    let mut entries: HashMap<String, Entry> = HashMap::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(e),
    };
    for line in BufReader::new(file).lines() {
        if let Ok(record) = serde_json::from_str::<Record>(&line?) {
            entries.entry(record.file().to_owned()).or_default().apply(&record);
        }
    }
    Ok(entries)
}

/// Writes what is queued, one fsync for everything that arrived meanwhile, then acknowledges it all.
fn write_loop(mut file: File, mut pending: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = pending.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = pending.try_recv() {
            batch.push(more);
        }
        let bytes: Vec<u8> = batch.iter().flat_map(|(line, _)| line.iter().copied()).collect();
        let result = file.write_all(&bytes).and_then(|()| file.sync_data());
        for (_, done) in batch {
            let _ = done
                .send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_compacts_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path(), &["video", "x"]).unwrap();
        let file = "/a.mp4".to_owned();
        journal
            .append(Record::Intent { file: file.clone(), reference_id: Some("vodup-1".into()) })
            .await
            .unwrap();
        journal.append(Record::Created { file: file.clone(), media_id: "m1".into() }).await.unwrap();
        journal.append(Record::Created { file: file.clone(), media_id: "m2".into() }).await.unwrap();
        journal.append(Record::Cleaned { file: file.clone(), media_id: "m1".into() }).await.unwrap();
        let error = Journal::open(dir.path(), &["video", "x"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Locked);
        let path = journal.path().to_owned();
        drop(journal);
        // A torn last line, as a crash mid-write leaves it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"op\":\"done\",\"fi")
            .unwrap();

        let journal = Journal::open(dir.path(), &["video", "x"]).unwrap();
        let entry = journal.entry(&file);
        assert_eq!(entry.reference_id.as_deref(), Some("vodup-1"));
        assert_eq!(entry.created, vec!["m2".to_owned()]);
        assert!(entry.done.is_none());
        let identity = SourceIdentity {
            location: file.clone(),
            size: Some(3),
            mtime_ns: Some(1_764_000_000_123_456_789),
            etag: None,
            last_modified: None,
        };
        journal
            .append(Record::Done {
                file: file.clone(),
                media_id: "m2".into(),
                identity: Some(identity.clone()),
                size: 3,
            })
            .await
            .unwrap();
        drop(journal);
        let journal = Journal::open(dir.path(), &["video", "x"]).unwrap();
        let entry = journal.entry(&file);
        assert_eq!(entry.done, Some(("m2".into(), Some(identity), 3)), "the identity survives a replay");
        assert!(entry.created.is_empty());
        let lines = std::fs::read_to_string(journal.path()).unwrap().lines().count();
        assert_eq!(lines, 2, "compacted to the intent and the result");
    }
}
