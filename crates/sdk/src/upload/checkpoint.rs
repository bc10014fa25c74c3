//! Resume state on disk, one JSON file per upload, so a killed process picks up where it stopped. It
//! names the media (id, UploadAddress, and for images and attached media their UploadAuth), the multipart upload id,
//! the layout and every acknowledged part with its ETag and CRC-64, and what identified the source.
//!
//! Just before the commit (CompleteMultipartUpload or PutObject) it also records the object's expected
//! size and CRC-64 ([`Committing`]), so a run killed between the commit and the checkpoint's removal is
//! recognised as finished by the next one. M3U8 uploads record their finished segments ([`DoneSegment`]).
//!
//! Written atomically (temp file, fsync, rename) after each acknowledged part; mode 0600 because it
//! holds temporary credentials. A sibling `.lock` file, locked for the whole upload, keeps a second
//! process off the same upload. Removed when the upload completes.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vodup_proto::mac::sha256_hex;

use crate::error::{Error, ErrorKind, Result};
use crate::source::SourceIdentity;
use crate::vod::MediaKind;

/// The format version; a file with another one is ignored (and replaced).
pub const VERSION: u32 = 1;

/// An acknowledged part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    /// The part number.
    pub number: u32,
    /// Its size.
    pub size: u64,
    /// The ETag OSS returned, quoted.
    pub etag: String,
    /// Its CRC-64.
    pub crc64: u64,
}

/// The resume state of one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// The media type.
    pub kind: MediaKind,
    /// The VOD endpoint the media was created on.
    pub endpoint: String,
    /// What the source was.
    pub source: SourceIdentity,
    /// The media id.
    pub media_id: String,
    /// The Base64 UploadAddress.
    pub upload_address: String,
    /// The Base64 UploadAuth of an image or attached media (they cannot refresh; reused while valid).
    /// Empty for videos, which refresh on resume.
    pub upload_auth: String,
    /// The RequestId of the call that issued the address, for the result of a resumed upload.
    #[serde(default)]
    pub request_id: String,
    /// The media URL / file URL the Create call gave, for the result.
    #[serde(default)]
    pub media_url: Option<String>,
    /// See `media_url`.
    #[serde(default)]
    pub file_url: Option<String>,
    /// The multipart upload id, once initiated.
    pub upload_id: Option<String>,
    /// The part size of every part but the last.
    pub part_size: u64,
    /// Acknowledged parts, by number.
    pub parts: Vec<DonePart>,
    /// The object about to be committed, recorded just before CompleteMultipartUpload or PutObject. A
    /// run killed after the commit but before removing the checkpoint leaves it set; the next run finds
    /// the media whole with exactly these figures and records it done instead of uploading it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committing: Option<Committing>,
    /// Playlist segments already uploaded (M3U8 uploads only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<DoneSegment>,
}

/// The figures of an object whose commit was about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committing {
    /// Bytes in the object.
    pub size: u64,
    /// Its CRC-64/ECMA.
    pub crc64: u64,
    /// Parts it is made of (1 for a PutObject).
    pub parts: u32,
}

/// A playlist segment OSS acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneSegment {
    /// Its object name under the video's prefix.
    pub name: String,
    /// What the segment's source was, so an edited segment is sent again.
    pub source: SourceIdentity,
    /// Its size.
    pub size: u64,
}

impl Checkpoint {
    /// The state of a new upload of `source` to the media `ticket` names.
    pub(crate) fn new(
        endpoint: String,
        source: SourceIdentity,
        ticket: &crate::vod::UploadTicket,
        part_size: u64,
    ) -> Self {
        Self {
            version: VERSION,
            kind: ticket.kind,
            endpoint,
            source,
            media_id: ticket.media_id.clone(),
            upload_address: ticket.address_b64.clone(),
            upload_auth: String::new(),
            request_id: ticket.request_id.clone(),
            media_url: ticket.media_url.clone(),
            file_url: ticket.file_url.clone(),
            upload_id: None,
            part_size,
            parts: Vec::new(),
            committing: None,
            segments: Vec::new(),
        }
    }
}

impl Checkpoint {
    /// The in-memory state of a multipart upload nothing resumes (a playlist segment's): only the
    /// upload id and the parts as they are acknowledged.
    pub(crate) fn scratch(upload_id: String, part_size: u64) -> Self {
        Self {
            version: VERSION,
            kind: MediaKind::Video,
            endpoint: String::new(),
            source: SourceIdentity {
                location: String::new(),
                size: None,
                mtime_ns: None,
                etag: None,
                last_modified: None,
            },
            media_id: String::new(),
            upload_address: String::new(),
            upload_auth: String::new(),
            request_id: String::new(),
            media_url: None,
            file_url: None,
            upload_id: Some(upload_id),
            part_size,
            parts: Vec::new(),
            committing: None,
            segments: Vec::new(),
        }
    }
}

/// What a checkpoint is for, the first part of its key: a media type, or an M3U8 playlist with its
/// segments (a video too, but not to be confused with the playlist file uploaded as a plain video).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// One object of this media type.
    Media(MediaKind),
    /// A playlist and its segments.
    Playlist,
}

impl Purpose {
    /// The key part.
    pub fn label(self) -> &'static str {
        match self {
            Self::Media(kind) => kind.as_str(),
            Self::Playlist => "m3u8",
        }
    }
}

/// The locked checkpoint file of one upload.
#[derive(Debug)]
pub struct CheckpointFile {
    path: PathBuf,
    _lock: File,
}

/// The default folder: `$XDG_STATE_HOME/vodup/checkpoints`, else `~/.local/state/vodup/checkpoints`.
pub fn default_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("vodup").join("checkpoints")
}

impl CheckpointFile {
    /// Locks the checkpoint of the upload that `key_parts` identify in `dir` and reads what a previous
    /// run left there.
    pub fn open(dir: &Path, key_parts: &[&str]) -> Result<(Self, Option<Checkpoint>)> {
        let io = |e: std::io::Error, what: &str, path: &Path| {
            Error::new(ErrorKind::Io, "open checkpoint", format!("{what}: {e}"))
                .with_path(path)
                .with_hint("give a writable --checkpoint-dir, or --no-resume")
        };
        std::fs::create_dir_all(dir).map_err(|e| io(e, "cannot create the folder", dir))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let path = path_of(dir, key_parts);
        let lock = lock_beside(&path, "open checkpoint", "uploading this source")?;
        let previous = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Checkpoint>(&bytes).ok().filter(|c| c.version == VERSION),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e, "cannot read", &path)),
        };
        Ok((Self { path, _lock: lock }, previous))
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `checkpoint` atomically: a crash leaves the old or the new file, never half of one.
    pub fn save(&self, checkpoint: &Checkpoint) -> Result<()> {
        write_atomically(&self.path, &encode(checkpoint)?)
    }

    /// Deletes the checkpoint (the upload is complete), the previous version its saves keep beside it,
    /// and its lock file.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(temp_of(&self.path));
        let _ = std::fs::remove_file(self.path.with_extension("lock"));
    }
}

/// Creates and locks `<path>.lock`, the one-process-at-a-time guard of a checkpoint or a batch manifest:
/// held as long as the returned file lives. `doing` is the operation for errors, `what` what the other
/// process is doing ("uploading this source").
pub(crate) fn lock_beside(path: &Path, doing: &'static str, what: &str) -> Result<File> {
    let lock_path = path.with_extension("lock");
    let lock =
        OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path).map_err(
            |e| {
                Error::new(ErrorKind::Io, doing, format!("cannot create the lock file: {e}"))
                    .with_path(&lock_path)
                    .with_hint("give a writable --checkpoint-dir")
            },
        )?;
    if let Err(e) = lock.try_lock() {
        return Err(Error::new(ErrorKind::Locked, doing, format!("another vodup process is {what} ({e})"))
            .with_path(&lock_path)
            .with_hint("wait for it to finish, or stop it"));
    }
    Ok(lock)
}

/// The checkpoint file of the upload that `key_parts` identify.
fn path_of(dir: &Path, key_parts: &[&str]) -> PathBuf {
    let name = sha256_hex(key_parts.join("\n").as_bytes());
    dir.join(format!("{}.json", &name[..32]))
}

/// Reads the checkpoint `key_parts` identify without locking it (a batch deciding whether an interrupted
/// upload will be resumed); `None` if there is none or it does not parse.
pub fn peek(dir: &Path, key_parts: &[&str]) -> Option<Checkpoint> {
    let bytes = std::fs::read(path_of(dir, key_parts)).ok()?;
    serde_json::from_slice::<Checkpoint>(&bytes).ok().filter(|c| c.version == VERSION)
}

/// The file's bytes.
pub(crate) fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    serde_json::to_vec(checkpoint).map_err(|e| Error::new(ErrorKind::Io, "save checkpoint", e.to_string()))
}

/// Where [`write_atomically`] writes before the swap, and where the previous version then stays.
pub(crate) fn temp_of(path: &Path) -> PathBuf {
    path.with_extension("json.tmp")
}

/// Writes `bytes` to `path` atomically (temp file, fsync, then swapped with `path`), mode 0600.
///
/// Swapped, not renamed over: the temp name then holds the previous version's file, which the next save
/// rewrites, so saving allocates no inode and frees none. On ext4 without a journal every new file
/// costs a scan of the block group's recently deleted inodes (about 0.85 ms on this project's machines,
/// BENCHMARKS.md), and a multipart upload saves once per part. Where the swap is not supported, or for the
/// first save, a plain rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_of(path);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        if swap(&temp, path)? {
            return Ok(());
        }
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        Error::new(ErrorKind::Io, "save checkpoint", e.to_string())
            .with_path(path)
            .with_hint("free disk space or give another --checkpoint-dir")
    })
}

/// Exchanges `a` and `b` atomically; false when they cannot be (no `b` yet, or no support for it here).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn swap(a: &Path, b: &Path) -> std::io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e)
            if e == rustix::io::Errno::NOENT
                || e == rustix::io::Errno::INVAL
                || e == rustix::io::Errno::NOSYS =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn swap(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            version: VERSION,
            kind: MediaKind::Video,
            endpoint: "http://127.0.0.1:1".into(),
            source: SourceIdentity {
                location: "/a.mp4".into(),
                size: Some(3),
                mtime_ns: Some(7),
                etag: None,
                last_modified: None,
            },
            media_id: "v".into(),
            upload_address: "a".into(),
            upload_auth: "b".into(),
            request_id: "r".into(),
            media_url: None,
            file_url: None,
            upload_id: Some("u".into()),
            part_size: 1,
            parts: vec![DonePart { number: 1, size: 1, etag: "\"E\"".into(), crc64: 9 }],
            committing: Some(Committing { size: 3, crc64: 11, parts: 1 }),
            segments: Vec::new(),
        }
    }

    #[test]
    fn a_checkpoint_of_an_earlier_version_reads_without_the_new_fields() {
        let mut old = serde_json::to_value(sample()).unwrap();
        old.as_object_mut().unwrap().remove("committing");
        let read: Checkpoint = serde_json::from_value(old).unwrap();
        assert_eq!((read.committing, read.segments.len()), (None, 0));
    }

    #[test]
    fn saves_reuse_two_files_and_removal_leaves_none() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = CheckpointFile::open(dir.path(), &["video", "/b.mp4"]).unwrap();
        let mut checkpoint = sample();
        let base = checkpoint.parts.len();
        let mut inodes = Vec::new();
        for part in 0..4u32 {
            checkpoint.parts.push(DonePart { number: part + 1, size: 1, etag: "\"e\"".into(), crc64: 1 });
            file.save(&checkpoint).unwrap();
            let reloaded = peek(dir.path(), &["video", "/b.mp4"]).unwrap();
            assert_eq!(
                reloaded.parts.len(),
                base + part as usize + 1,
                "the newest version is the checkpoint"
            );
            inodes.push(std::fs::metadata(file.path()).unwrap().ino());
        }
        // From the third save on, the two files take turns: no inode is allocated or freed per save.
        assert_eq!(inodes[2], inodes[0]);
        assert_eq!(inodes[3], inodes[1]);
        file.remove();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is left behind");
    }

    #[test]
    fn saves_reloads_and_locks_out_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (file, previous) = CheckpointFile::open(dir.path(), &["video", "/a.mp4"]).unwrap();
        assert!(previous.is_none());
        file.save(&sample()).unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let error = CheckpointFile::open(dir.path(), &["video", "/a.mp4"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Locked);
        drop(file);
        let (file, previous) = CheckpointFile::open(dir.path(), &["video", "/a.mp4"]).unwrap();
        assert_eq!(previous.unwrap(), sample());
        file.remove();
        let (_file, previous) = CheckpointFile::open(dir.path(), &["video", "/a.mp4"]).unwrap();
        assert!(previous.is_none());
    }
}
