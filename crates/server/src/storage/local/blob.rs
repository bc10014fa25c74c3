//! The blob file: a part or PutObject body followed by a 40-byte trailer (MD5, CRC-64, length, magic), so
//! a part's digests are read back without re-reading its bytes. Written under a temporary name, fsynced,
//! then renamed into place: a file under its final name is always whole.

use std::collections::HashSet;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::SystemTime;

use futures_util::StreamExt as _;
use tokio::fs;
use tokio::io::{AsyncWriteExt as _, BufWriter};
use vodup_proto::oss::part::is_valid_part_number;

use super::{Leftover, random_hex, sync_dir};
use crate::fault::{self, FaultPoint};
use crate::storage::digests::Digester;
use crate::storage::{ByteStream, Digests, PartInfo, StorageError, WriteLimits};

/// MD5 (16) + CRC-64 LE (8) + data length LE (8) + magic (8), appended to every blob file.
const TRAILER_LEN: usize = 40;
const TRAILER_MAGIC: &[u8; 8] = b"VODUPBL1";
/// Body chunks from the network are small; coalescing them saves a blocking-pool hop per chunk.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Streams `body` into `dir/<file>` followed by its trailer, enforcing `limits`; the file appears under its
/// final name (replacing any earlier one) only if the body is whole. `what` names it in errors.
pub(super) async fn write_blob(
    dir: &Path,
    file: u32,
    mut body: ByteStream,
    limits: &WriteLimits,
    what: &str,
) -> Result<(Digests, SystemTime), StorageError> {
    let fail = |doing: &str, e| StorageError::backend(format!("{doing} {what}"), e);
    let closed = || StorageError::NotFound(format!("{what}: the upload is not open"));
    let tmp = dir.join(format!("{file}.{}.tmp", random_hex()));
    let handle = match fs::OpenOptions::new().write(true).create_new(true).open(&tmp).await {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(closed()),
        Err(e) => return Err(fail("creating a staging file for", e)),
    };
    let mut leftover = Leftover::file(tmp.clone());
    // A body longer than it announced is cut off like one over the size limit.
    let cap = limits.expected_len.map_or(limits.max_size, |len| len.min(limits.max_size));
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, handle);
    let mut digester = Digester::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        if digester.len() + chunk.len() as u64 > cap {
            return Err(StorageError::TooLarge { max_size: cap });
        }
        digester.update(&chunk);
        out.write_all(&chunk).await.map_err(|e| fail("writing", e))?;
    }
    if let Some(expected) = limits.expected_len
        && digester.len() < expected
    {
        return Err(StorageError::Incomplete { received: digester.len(), expected });
    }
    let digests = digester.finish();
    if limits.expected_md5.is_some_and(|md5| md5 != digests.md5) {
        return Err(StorageError::DigestMismatch);
    }
    out.write_all(&encode_trailer(&digests)).await.map_err(|e| fail("writing", e))?;
    out.flush().await.map_err(|e| fail("writing", e))?;
    let handle = out.into_inner();
    handle.sync_all().await.map_err(|e| fail("syncing", e))?;
    fault::hit(FaultPoint::PartWritten);
    let modified =
        handle.metadata().await.and_then(|m| m.modified()).map_err(|e| fail("reading the time of", e))?;
    drop(handle);
    match fs::rename(&tmp, dir.join(file.to_string())).await {
        Ok(()) => leftover.disarm(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(closed()),
        Err(e) => return Err(fail("storing", e)),
    }
    sync_dir(dir).await.map_err(|e| fail("syncing the folder of", e))?;
    Ok((digests, modified))
}

fn encode_trailer(digests: &Digests) -> [u8; TRAILER_LEN] {
    let mut trailer = [0u8; TRAILER_LEN];
    trailer[..16].copy_from_slice(&digests.md5);
    trailer[16..24].copy_from_slice(&digests.crc64.to_le_bytes());
    trailer[24..32].copy_from_slice(&digests.len.to_le_bytes());
    trailer[32..].copy_from_slice(TRAILER_MAGIC);
    trailer
}

fn decode_trailer(trailer: &[u8; TRAILER_LEN]) -> Option<Digests> {
    let (md5, rest) = trailer.split_first_chunk::<16>()?;
    let (crc64, rest) = rest.split_first_chunk::<8>()?;
    let (len, magic) = rest.split_first_chunk::<8>()?;
    (magic == TRAILER_MAGIC).then(|| Digests {
        md5: *md5,
        crc64: u64::from_le_bytes(*crc64),
        len: u64::from_le_bytes(*len),
    })
}

/// The part stored as `dir/<part_number>`, from its trailer and its modification time.
pub(super) fn read_part(dir: &Path, part_number: u32) -> io::Result<PartInfo> {
    let mut file = std::fs::File::open(dir.join(part_number.to_string()))?;
    let meta = file.metadata()?;
    let corrupt = || {
        io::Error::new(io::ErrorKind::InvalidData, format!("part file {part_number} has no valid trailer"))
    };
    let data_len = meta.len().checked_sub(TRAILER_LEN as u64).ok_or_else(corrupt)?;
    let mut trailer = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(data_len))?;
    file.read_exact(&mut trailer)?;
    let digests = decode_trailer(&trailer).filter(|d| d.len == data_len).ok_or_else(corrupt)?;
    Ok(PartInfo { part_number, digests, last_modified: meta.modified()? })
}

/// Every stored part in a staging folder, ascending. `*.tmp` files (writes in flight, or left by a crash)
/// are not parts; a part removed while we list it is skipped.
pub(super) fn scan_parts(dir: &Path) -> io::Result<Vec<PartInfo>> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(n) = entry?.file_name().to_str().and_then(part_file_number) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    let mut parts = Vec::with_capacity(numbers.len());
    for n in numbers {
        match read_part(dir, n) {
            Ok(part) => parts.push(part),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(parts)
}

/// Removes every entry of a completed upload's folder that is not a listed part file; returns how many.
pub(super) fn prune(dir: &Path, keep: &HashSet<u32>) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_str().and_then(part_file_number).is_some_and(|n| keep.contains(&n)) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The part number a staged file name stands for: canonical decimal (no sign, no leading zero) in range.
pub(super) fn part_file_number(name: &str) -> Option<u32> {
    if name.is_empty() || name.starts_with('0') || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&n| is_valid_part_number(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_rejects_other_files() {
        let digests = Digests::of(b"hello world");
        let trailer = encode_trailer(&digests);
        assert_eq!(decode_trailer(&trailer), Some(digests));
        let mut foreign = trailer;
        foreign[39] ^= 1;
        assert_eq!(decode_trailer(&foreign), None);
    }
}
