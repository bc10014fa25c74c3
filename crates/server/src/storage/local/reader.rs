//! Reading a range of one blob file: opened before the response starts (so a missing blob fails the
//! request, not its body), then streamed in bounded chunks.

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::Path;

use futures_util::StreamExt as _;
use tokio::fs;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use crate::storage::{ByteStream, StorageError};

/// Largest chunk a read yields, and so its memory per request.
const READ_CHUNK: usize = 256 * 1024;

/// The bytes `range` of the blob file at `path`; a file shorter than the range ends the stream with an
/// error rather than silently short.
pub(super) async fn open(path: &Path, id: &str, range: Range<u64>) -> Result<ByteStream, StorageError> {
    let fail = |e: io::Error| StorageError::backend(format!("reading blob {id}"), e);
    let mut file = match fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StorageError::NotFound(format!("blob {id}")));
        }
        Err(e) => return Err(fail(e)),
    };
    let len = range.end.saturating_sub(range.start);
    if range.start > 0 {
        file.seek(SeekFrom::Start(range.start)).await.map_err(fail)?;
    }
    let reader = ReaderStream::with_capacity(file.take(len), READ_CHUNK);
    let state = Some((reader, len, id.to_owned()));
    Ok(Box::pin(futures_util::stream::unfold(state, |state| async move {
        let (mut reader, remaining, id) = state?;
        match reader.next().await {
            Some(Ok(bytes)) => {
                let remaining = remaining.saturating_sub(bytes.len() as u64);
                Some((Ok(bytes), Some((reader, remaining, id))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None if remaining > 0 => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("blob {id} is shorter than the catalogue records"),
                )),
                None,
            )),
            None => None,
        }
    })))
}
