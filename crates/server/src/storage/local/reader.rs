//! Reading objects: which stretches of which blob files a byte range covers, a GET stream that opens
//! the files one at a time as it reaches them, and the read leases that keep a blob folder in place while
//! a GET streams from it (a folder retired meanwhile is removed by its last reader).

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::fs;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use super::Shared;
use super::manifest::BlobRef;
use crate::storage::{ByteStream, StorageError};

/// Largest chunk a GET stream yields, and so its memory per request.
const READ_CHUNK: usize = 256 * 1024;

/// `None` is the whole object; `Some(r)` must be non-empty and inside it (so an empty object has no range).
pub(super) fn resolve_range(range: Option<Range<u64>>, size: u64) -> Result<Range<u64>, StorageError> {
    match range {
        None => Ok(0..size),
        Some(r) if r.start < r.end && r.end <= size => Ok(r),
        Some(r) => Err(StorageError::InvalidRange { start: r.start, end: r.end, size }),
    }
}

/// One stretch of one blob file that a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    file: u32,
    offset: u64,
    len: u64,
}

/// The stretches of the blob files that `range` of the object covers, in order.
pub(super) fn segments(blobs: &[BlobRef], range: Range<u64>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for blob in blobs {
        let end = start + blob.len;
        let (from, to) = (range.start.max(start), range.end.min(end));
        if from < to {
            out.push(Segment { file: blob.file, offset: from - start, len: to - from });
        }
        start = end;
    }
    out
}

/// A GET in progress: the segments still to read and the file being read. Holds a lease on the folder.
pub(super) struct BlobReader {
    _lease: ReadLease,
    dir: PathBuf,
    key: String,
    pending: std::vec::IntoIter<Segment>,
    current: Option<(ReaderStream<tokio::io::Take<fs::File>>, Segment, u64)>,
}

impl BlobReader {
    /// Opens the first segment now, so that a missing or unreadable blob fails the request, not the body.
    pub(super) async fn open(
        lease: ReadLease,
        dir: PathBuf,
        segments: Vec<Segment>,
        key: &str,
    ) -> io::Result<Self> {
        let mut reader =
            Self { _lease: lease, dir, key: key.to_owned(), pending: segments.into_iter(), current: None };
        if let Some(first) = reader.pending.next() {
            reader.current = Some(reader.open_segment(first).await?);
        }
        Ok(reader)
    }

    async fn open_segment(
        &self,
        segment: Segment,
    ) -> io::Result<(ReaderStream<tokio::io::Take<fs::File>>, Segment, u64)> {
        let mut file = fs::File::open(self.dir.join(segment.file.to_string()))
            .await
            .map_err(|e| self.context(segment, e))?;
        file.seek(SeekFrom::Start(segment.offset)).await.map_err(|e| self.context(segment, e))?;
        Ok((ReaderStream::with_capacity(file.take(segment.len), READ_CHUNK), segment, segment.len))
    }

    fn context(&self, segment: Segment, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("reading blob {} of object {:?}: {e}", segment.file, self.key))
    }

    /// Yields each segment's bytes in turn; ends after the last, or after the first error.
    pub(super) fn into_stream(self) -> ByteStream {
        Box::pin(futures_util::stream::unfold(Some(self), |reader| async move {
            let mut reader = reader?;
            loop {
                if let Some((stream, segment, remaining)) = reader.current.as_mut() {
                    let segment = *segment;
                    match stream.next().await {
                        Some(Ok(bytes)) => {
                            *remaining -= bytes.len() as u64;
                            return Some((Ok::<Bytes, io::Error>(bytes), Some(reader)));
                        }
                        Some(Err(e)) => return Some((Err(reader.context(segment, e)), None)),
                        None if *remaining > 0 => {
                            let e = io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the blob file is shorter than its manifest says",
                            );
                            return Some((Err(reader.context(segment, e)), None));
                        }
                        None => reader.current = None,
                    }
                }
                let segment = reader.pending.next()?;
                match reader.open_segment(segment).await {
                    Ok(current) => reader.current = Some(current),
                    Err(e) => return Some((Err(e), None)),
                }
            }
        }))
    }
}

/// The read side of a blob folder's lifetime, per folder name in [`Shared::leases`].
#[derive(Debug, Default)]
pub(super) struct LeaseState {
    pub(super) readers: usize,
    /// Retired while read: the last reader removes it.
    pub(super) retired: bool,
    /// Being moved to trash/: new leases are refused (the reader re-reads the manifest).
    pub(super) discarding: bool,
}

/// Keeps a blob folder in place while a GET streams from it.
#[derive(Debug)]
pub(super) struct ReadLease {
    shared: Arc<Shared>,
    blob_dir: String,
}

impl ReadLease {
    /// `None` if the folder is being removed. A lease on a folder already gone is possible; the caller checks
    /// the folder exists after leasing (removal renames it away before it forgets the name).
    pub(super) fn acquire(shared: &Arc<Shared>, blob_dir: &str) -> Option<Self> {
        let mut leases = shared.leases();
        let state = leases.entry(blob_dir.to_owned()).or_default();
        if state.discarding {
            return None;
        }
        state.readers += 1;
        Some(Self { shared: Arc::clone(shared), blob_dir: blob_dir.to_owned() })
    }
}

impl Drop for ReadLease {
    fn drop(&mut self) {
        let discard = {
            let mut leases = self.shared.leases();
            match leases.get_mut(&self.blob_dir) {
                Some(state) if state.readers > 1 => {
                    state.readers -= 1;
                    false
                }
                Some(state) if state.retired => {
                    *state = LeaseState { readers: 0, retired: false, discarding: true };
                    true
                }
                _ => {
                    leases.remove(&self.blob_dir);
                    false
                }
            }
        };
        if discard {
            let (shared, blob_dir) = (Arc::clone(&self.shared), std::mem::take(&mut self.blob_dir));
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || shared.discard(&blob_dir))),
                Err(_) => shared.discard(&blob_dir),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_exactly_the_range() {
        let blobs = [BlobRef { file: 1, len: 5 }, BlobRef { file: 2, len: 0 }, BlobRef { file: 7, len: 3 }];
        let seg = |file, offset, len| Segment { file, offset, len };
        assert_eq!(segments(&blobs, 0..8), vec![seg(1, 0, 5), seg(7, 0, 3)]);
        assert_eq!(segments(&blobs, 4..6), vec![seg(1, 4, 1), seg(7, 0, 1)]);
        assert_eq!(segments(&blobs, 5..6), vec![seg(7, 0, 1)]);
        assert_eq!(segments(&blobs, 7..8), vec![seg(7, 2, 1)]);
        assert_eq!(segments(&blobs, 0..0), vec![]);
    }

    #[test]
    fn ranges_must_be_non_empty_and_inside() {
        assert_eq!(resolve_range(None, 0).unwrap(), 0..0);
        assert_eq!(resolve_range(Some(2..3), 3).unwrap(), 2..3);
        for (r, size) in [(0..0, 0), (0..1, 0), (2..2, 5), (Range { start: 3, end: 2 }, 5), (4..6, 5)] {
            assert!(matches!(resolve_range(Some(r), size), Err(StorageError::InvalidRange { .. })));
        }
    }
}
