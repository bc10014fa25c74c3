//! The manifest: the stored form of a local object (its key, blob folder, blob files with their lengths,
//! digests and attributes), and the checks applied whenever one is read back, so a corrupt or foreign
//! file can never lead a read outside the object's own blob folder.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use vodup_proto::oss::part::multipart_etag;

use super::is_blob_dir;
use crate::storage::{Digests, ObjectInfo, ObjectMeta, ObjectType, PartInfo};

const MANIFEST_FORMAT: u32 = 1;

/// One blob file of an object, named by its number inside the object's blob folder, and its data length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BlobRef {
    pub(super) file: u32,
    pub(super) len: u64,
}

/// The stored form of an object. Every path it leads to is rebuilt from checked names, never taken as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: u32,
    pub(super) key: String,
    pub(super) blob_dir: String,
    pub(super) blobs: Vec<BlobRef>,
    pub(super) size: u64,
    pub(super) etag: String,
    pub(super) crc64: u64,
    /// Lower-case hex; `Normal` objects only.
    pub(super) content_md5: Option<String>,
    pub(super) object_type: String,
    pub(super) last_modified_ms: u64,
    pub(super) content_type: Option<String>,
    pub(super) user_meta: Vec<(String, String)>,
}

impl Manifest {
    /// The manifest of a PutObject body stored as `blob_dir/1`.
    pub(super) fn normal(key: &str, blob_dir: String, body: &Digests, meta: ObjectMeta) -> Self {
        let blobs = vec![BlobRef { file: 1, len: body.len }];
        let mut manifest =
            Self::base(key, blob_dir, blobs, body.etag(), body.crc64, ObjectType::Normal, meta);
        manifest.content_md5 = Some(hex::encode(body.md5));
        manifest
    }

    /// The manifest of a completed upload: its parts in the listed order, with the CRC-64 combined from
    /// theirs and the ETag made of their MD5s, so no byte is re-read.
    pub(super) fn multipart(key: &str, upload_id: &str, parts: &[PartInfo], meta: ObjectMeta) -> Self {
        let blobs = parts.iter().map(|p| BlobRef { file: p.part_number, len: p.digests.len }).collect();
        let crc64 =
            parts.iter().fold(0, |crc, p| vodup_proto::crc64::combine(crc, p.digests.crc64, p.digests.len));
        let etag = multipart_etag(parts.iter().map(|p| &p.digests.md5));
        Self::base(key, upload_id.to_owned(), blobs, etag, crc64, ObjectType::Multipart, meta)
    }

    fn base(
        key: &str,
        blob_dir: String,
        blobs: Vec<BlobRef>,
        etag: String,
        crc64: u64,
        object_type: ObjectType,
        meta: ObjectMeta,
    ) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            format: MANIFEST_FORMAT,
            key: key.to_owned(),
            blob_dir,
            size: blobs.iter().map(|b| b.len).sum(),
            blobs,
            etag,
            crc64,
            content_md5: None,
            object_type: object_type.as_str().to_owned(),
            last_modified_ms: u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
            content_type: meta.content_type,
            user_meta: meta.user_meta,
        }
    }

    /// Decodes and checks a manifest read for `key`.
    pub(super) fn parse(bytes: &[u8], key: &str) -> io::Result<Self> {
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("corrupt manifest: {why}"));
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| invalid(&e.to_string()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(invalid(&format!("unknown format {}", manifest.format)));
        }
        if manifest.key != key {
            return Err(invalid("it belongs to another key"));
        }
        if !is_blob_dir(&manifest.blob_dir) {
            return Err(invalid("bad blob folder name"));
        }
        if manifest.blobs.iter().try_fold(0u64, |sum, b| sum.checked_add(b.len)) != Some(manifest.size) {
            return Err(invalid("blob lengths do not add up to the size"));
        }
        if !matches!(manifest.object_type.as_str(), "Normal" | "Multipart") {
            return Err(invalid("unknown object type"));
        }
        if manifest.content_md5.as_deref().is_some_and(|hex| md5_of_hex(hex).is_none()) {
            return Err(invalid("bad content MD5"));
        }
        Ok(manifest)
    }

    pub(super) fn info(&self) -> ObjectInfo {
        ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
            crc64: self.crc64,
            content_md5: self.content_md5.as_deref().and_then(md5_of_hex),
            object_type: if self.object_type == "Multipart" {
                ObjectType::Multipart
            } else {
                ObjectType::Normal
            },
            last_modified: UNIX_EPOCH + Duration::from_millis(self.last_modified_ms),
            upload_id: (self.object_type == "Multipart").then(|| self.blob_dir.clone()),
            meta: ObjectMeta { content_type: self.content_type.clone(), user_meta: self.user_meta.clone() },
        }
    }
}

pub(super) fn md5_of_hex(hex: &str) -> Option<[u8; 16]> {
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(hex, &mut md5).ok().map(|()| md5)
}
