//! Local files: opened once, read by offset (`pread`) on the blocking pool so several parts read at
//! once without sharing a cursor. The identity is the absolute path, size and modification time.

use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::BytesMut;
use futures_util::future::BoxFuture;

use super::{Opened, RandomAccess, Reader, SourceIdentity};
use crate::error::{Error, ErrorKind, Result};

/// A local file read by offset.
#[derive(Debug)]
pub struct FileReader {
    file: Arc<std::fs::File>,
    path: PathBuf,
}

/// What identifies a file's content across runs: its absolute path, size and modification time (in
/// nanoseconds; `u64` reaches the year 2554).
pub(crate) fn identity(absolute: &std::path::Path, metadata: &std::fs::Metadata) -> SourceIdentity {
    let mtime_ns = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    SourceIdentity {
        location: absolute.to_string_lossy().into_owned(),
        size: Some(metadata.len()),
        mtime_ns,
        etag: None,
        last_modified: None,
    }
}

pub(crate) async fn open(path: PathBuf) -> Result<Opened> {
    let shown = path.clone();
    let io_error = move |e: std::io::Error, what: &str| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Io };
        Error::new(kind, "open source", format!("{what}: {e}"))
            .with_path(&shown)
            .with_hint("check the path and its permissions")
    };
    let opened = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        let metadata = file.metadata()?;
        let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        Ok::<_, std::io::Error>((file, metadata, absolute, path))
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Io, "open source", e.to_string()))?;
    let (file, metadata, absolute, path) = opened.map_err(|e| io_error(e, "cannot open the file"))?;
    if !metadata.is_file() {
        return Err(Error::invalid_input("not a regular file")
            .with_path(&path)
            .with_hint("give a file, not a folder"));
    }
    let identity = identity(&absolute, &metadata);
    let reader = FileReader { file: Arc::new(file), path: path.clone() };
    Ok(Opened {
        name: Some(path.to_string_lossy().into_owned()),
        size: Some(metadata.len()),
        identity: Some(identity),
        reader: Reader::Random(Arc::new(reader)),
        display: path.display().to_string(),
        path: Some(path),
    })
}

impl RandomAccess for FileReader {
    fn read_at(&self, offset: u64, len: usize, mut buf: BytesMut) -> BoxFuture<'_, Result<BytesMut>> {
        let file = Arc::clone(&self.file);
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || {
                // A reused buffer already holds a part's worth of bytes, which the read overwrites: only
                // a new buffer (or the growth of a shorter one) is zero-filled, once.
                if buf.len() >= len {
                    buf.truncate(len);
                } else {
                    buf.resize(len, 0);
                }
                file.read_exact_at(&mut buf, offset).map(|()| buf)
            })
            .await
            .map_err(|e| Error::new(ErrorKind::Io, "read source", e.to_string()))?;
            read.map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    ErrorKind::SourceChanged
                } else {
                    ErrorKind::Io
                };
                Error::new(kind, "read source", format!("at offset {offset}: {e}"))
                    .with_path(&self.path)
                    .with_hint(
                        "the file shrank or became unreadable while uploading; re-run when it is stable",
                    )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reused_buffer_gives_exactly_the_range_and_nothing_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source.bin");
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let opened = open(path).await.unwrap();
        let Reader::Random(reader) = opened.reader else { panic!("a file reads by offset") };
        // A buffer left with a longer earlier part, then a shorter one, then a longer one again.
        let stale = BytesMut::from(&[0xEEu8; 600][..]);
        let short = reader.read_at(900, 100, stale).await.unwrap();
        assert_eq!(&short[..], &data[900..]);
        let long = reader.read_at(0, 700, short).await.unwrap();
        assert_eq!(&long[..], &data[..700]);
    }
}
