//! The local store's layout before the catalogue owned objects (vodup up to the commit that introduced
//! catalogue commits): objects as JSON manifests in `objects/`, their bytes in `blobs/<folder>/<n>`
//! (a multipart upload's id, or `put-<hex>`), open uploads' parts in `uploads/<upload id>/<n>`, each
//! file followed by a 40-byte trailer (MD5, CRC-64, length, magic). This module only reads that layout
//! and moves its files into the current one; `crate::upgrade` records what it found in the catalogue.
//!
//! Every step can be repeated after a crash: a file's new blob id is derived from its old path, so a
//! file already moved is recognised, and the old folders are removed only after the catalogue holds
//! everything (`remove`).

use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use vodup_proto::oss::part::is_valid_part_number;

use crate::storage::Digests;

/// The trailer after a legacy blob file's data.
const TRAILER_LEN: u64 = 40;
const TRAILER_MAGIC: &[u8; 8] = b"VODUPBL1";
/// The folders only the legacy layout has.
const LEGACY_FOLDERS: [&str; 4] = ["objects", "uploads", "intents", "trash"];

/// What a legacy store holds.
#[derive(Debug, Default)]
pub struct Layout {
    /// Every object its manifests describe.
    pub objects: Vec<Object>,
    /// Every upload with staged parts (open in the old store).
    pub uploads: Vec<StagedUpload>,
}

/// A legacy object, as its manifest describes it.
#[derive(Debug)]
pub struct Object {
    /// The key.
    pub key: String,
    /// Total size.
    pub size: u64,
    /// Quoted ETag.
    pub etag: String,
    /// CRC-64 of the whole object.
    pub crc64: u64,
    /// MD5 of the body (PutObject objects).
    pub content_md5: Option<[u8; 16]>,
    /// Assembled by CompleteMultipartUpload.
    pub multipart: bool,
    /// The upload it was completed from.
    pub upload_id: Option<String>,
    /// When it was published.
    pub last_modified: SystemTime,
    /// Content-Type.
    pub content_type: Option<String>,
    /// `x-oss-meta-*`, sorted.
    pub user_meta: Vec<(String, String)>,
    /// Its blobs in order.
    pub blobs: Vec<Blob>,
}

/// A legacy blob file and the blob it becomes.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The file, relative to the store's root.
    pub path: PathBuf,
    /// The blob id it moves to.
    pub id: String,
    /// Bytes of data (the trailer after them is never read).
    pub len: u64,
}

/// An upload with parts staged in the legacy store.
#[derive(Debug)]
pub struct StagedUpload {
    /// The upload id.
    pub upload_id: String,
    /// Its parts, ascending.
    pub parts: Vec<StagedPart>,
}

/// A staged part.
#[derive(Debug)]
pub struct StagedPart {
    /// 1..=10000.
    pub part_number: u32,
    /// Its file.
    pub blob: Blob,
    /// Its digests, from the trailer.
    pub digests: Digests,
    /// When it was stored.
    pub uploaded_at: SystemTime,
}

#[derive(Deserialize)]
struct Manifest {
    format: u32,
    key: String,
    blob_dir: String,
    blobs: Vec<ManifestBlob>,
    size: u64,
    etag: String,
    crc64: u64,
    content_md5: Option<String>,
    object_type: String,
    last_modified_ms: u64,
    content_type: Option<String>,
    user_meta: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct ManifestBlob {
    file: u32,
    len: u64,
}

/// Whether `root` holds any of the legacy layout.
pub fn present(root: &Path) -> bool {
    LEGACY_FOLDERS.iter().any(|f| root.join(f).exists())
        || !legacy_blob_folders(root).unwrap_or_default().is_empty()
}

/// Reads the legacy layout under `root`. A corrupt manifest or part is an error naming the file: the
/// migration stops rather than lose an object.
pub fn scan(root: &Path) -> io::Result<Layout> {
    let mut layout = Layout::default();
    let mut referenced = std::collections::HashSet::new();
    let objects = root.join("objects");
    if objects.exists() {
        for path in files_under(&objects)? {
            if path.extension().is_none_or(|e| e != "manifest") {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let object = parse_manifest(root, &bytes).map_err(|why| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()))
            })?;
            if let Some(first) = object.blobs.first()
                && let Some(folder) = first.path.parent()
            {
                referenced.insert(folder.to_owned());
            }
            layout.objects.push(object);
        }
    }
    layout.objects.sort_by(|a, b| a.key.cmp(&b.key));
    // Parts of open uploads; a Complete a crash interrupted may have moved them to blobs/<id> already.
    let mut staging: Vec<(String, PathBuf)> = Vec::new();
    let uploads = root.join("uploads");
    if uploads.exists() {
        for entry in std::fs::read_dir(&uploads)? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str().filter(|id| is_upload_id(id)) {
                staging.push((id.to_owned(), Path::new("uploads").join(id)));
            }
        }
    }
    for folder in legacy_blob_folders(root)? {
        let relative = Path::new("blobs").join(&folder);
        if is_upload_id(&folder)
            && !referenced.contains(&relative)
            && !staging.iter().any(|(id, _)| *id == folder)
        {
            staging.push((folder, relative));
        }
    }
    staging.sort();
    for (upload_id, folder) in staging {
        let mut parts = Vec::new();
        for entry in std::fs::read_dir(root.join(&folder))? {
            let entry = entry?;
            let Some(n) = entry.file_name().to_str().and_then(part_file_number) else { continue };
            let path = folder.join(n.to_string());
            let (digests, uploaded_at) = read_trailer(&root.join(&path))?;
            let blob = Blob { id: blob_id_for(&path), path, len: digests.len };
            parts.push(StagedPart { part_number: n, blob, digests, uploaded_at });
        }
        parts.sort_by_key(|p| p.part_number);
        layout.uploads.push(StagedUpload { upload_id, parts });
    }
    Ok(layout)
}

/// Moves every file of `layout` to its blob id's place in the current layout; a file already moved is
/// skipped. Durable when it returns.
pub fn move_blobs(root: &Path, layout: &Layout) -> io::Result<usize> {
    let blobs = layout
        .objects
        .iter()
        .flat_map(|o| o.blobs.iter())
        .chain(layout.uploads.iter().flat_map(|u| u.parts.iter().map(|p| &p.blob)));
    let mut moved = 0;
    let mut shards = std::collections::BTreeSet::new();
    for blob in blobs {
        let shard = root.join("blobs").join(&blob.id[..2]);
        std::fs::create_dir_all(&shard)?;
        let to = shard.join(&blob.id);
        match std::fs::rename(root.join(&blob.path), &to) {
            Ok(()) => moved += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("moving {}: {e}", blob.path.display()))),
        }
        shards.insert(shard);
    }
    for dir in shards.iter().chain([&root.join("blobs")]) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(moved)
}

/// Removes every legacy folder, once the catalogue holds what they described.
pub fn remove(root: &Path) -> io::Result<()> {
    for folder in LEGACY_FOLDERS {
        match std::fs::remove_dir_all(root.join(folder)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    for folder in legacy_blob_folders(root)? {
        std::fs::remove_dir_all(root.join("blobs").join(folder))?;
    }
    std::fs::File::open(root)?.sync_all()?;
    std::fs::File::open(root.join("blobs"))?.sync_all()
}

/// The new blob id of a legacy file: derived from its path, so a repeated migration finds it again.
fn blob_id_for(path: &Path) -> String {
    let digest = Sha256::digest(format!("vodup layout-v1 {}", path.display()).as_bytes());
    hex::encode(&digest[..16])
}

/// Folders of `blobs/` that are not shard folders of the current layout.
fn legacy_blob_folders(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let blobs = root.join("blobs");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_upload_id(name) && name.len() > 2 || name.starts_with("put-") {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn files_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

fn parse_manifest(root: &Path, bytes: &[u8]) -> Result<Object, String> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    if m.format != 1 {
        return Err(format!("unknown manifest format {}", m.format));
    }
    let folder_ok = is_upload_id(&m.blob_dir)
        || m.blob_dir
            .strip_prefix("put-")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !folder_ok {
        return Err("bad blob folder name".into());
    }
    if m.blobs.iter().try_fold(0u64, |sum, b| sum.checked_add(b.len)) != Some(m.size) {
        return Err("blob lengths do not add up to the size".into());
    }
    let multipart = match m.object_type.as_str() {
        "Normal" => false,
        "Multipart" => true,
        other => return Err(format!("unknown object type {other:?}")),
    };
    let content_md5 = match m.content_md5.as_deref() {
        None => None,
        Some(text) => {
            let mut md5 = [0u8; 16];
            hex::decode_to_slice(text, &mut md5).map_err(|_| "bad content MD5".to_owned())?;
            Some(md5)
        }
    };
    let mut blobs = Vec::with_capacity(m.blobs.len());
    for b in &m.blobs {
        if !is_valid_part_number(b.file) {
            return Err(format!("bad blob file number {}", b.file));
        }
        let path = Path::new("blobs").join(&m.blob_dir).join(b.file.to_string());
        let id = blob_id_for(&path);
        // The file must be there (or already moved); a missing one would lose bytes silently.
        let moved = root.join("blobs").join(&id[..2]).join(&id);
        if !root.join(&path).exists() && !moved.exists() {
            return Err(format!("its blob file {} is missing", path.display()));
        }
        blobs.push(Blob { path, id, len: b.len });
    }
    Ok(Object {
        key: m.key,
        size: m.size,
        etag: m.etag,
        crc64: m.crc64,
        content_md5,
        upload_id: multipart.then(|| m.blob_dir.clone()),
        multipart,
        last_modified: UNIX_EPOCH + Duration::from_millis(m.last_modified_ms),
        content_type: m.content_type,
        user_meta: m.user_meta,
        blobs,
    })
}

/// A part file's digests (from its trailer) and modification time.
fn read_trailer(path: &Path) -> io::Result<(Digests, SystemTime)> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let corrupt =
        || io::Error::new(io::ErrorKind::InvalidData, format!("{} has no valid trailer", path.display()));
    let data_len = meta.len().checked_sub(TRAILER_LEN).ok_or_else(corrupt)?;
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(data_len))?;
    file.read_exact(&mut trailer)?;
    let (md5, rest) = trailer.split_first_chunk::<16>().ok_or_else(corrupt)?;
    let (crc64, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (len, magic) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let len = u64::from_le_bytes(*len);
    if magic != TRAILER_MAGIC || len != data_len {
        return Err(corrupt());
    }
    Ok((Digests { md5: *md5, crc64: u64::from_le_bytes(*crc64), len }, meta.modified()?))
}

fn is_upload_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// The part number a staged file name stands for: canonical decimal in range.
fn part_file_number(name: &str) -> Option<u32> {
    if name.is_empty() || name.starts_with('0') || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&n| is_valid_part_number(n))
}
