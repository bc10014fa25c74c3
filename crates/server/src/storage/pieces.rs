//! Reading an object: a byte range of the ordered blobs the catalogue says it is made of, streamed as one
//! body. Blobs are opened one at a time as the stream reaches them (a 10000-part object needs one open
//! file at a time), the first before the response starts so that a missing blob fails the request rather
//! than its body. Backend-independent: it needs only [`BlobStore::read`].

use std::ops::Range;
use std::sync::Arc;

use futures_util::StreamExt as _;

use super::{BlobStore, ByteStream, StorageError};

/// One blob of an object version, in order: what the catalogue records and a read needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The blob.
    pub blob_id: String,
    /// Its length.
    pub size: u64,
}

/// One stretch of one blob that a read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    blob_id: String,
    range: Range<u64>,
}

/// The stretches of the blobs that `range` of the object covers, in order.
fn segments(pieces: &[Piece], range: &Range<u64>) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for piece in pieces {
        let end = start.saturating_add(piece.size);
        let (from, to) = (range.start.max(start), range.end.min(end));
        if from < to {
            out.push(Segment { blob_id: piece.blob_id.clone(), range: from - start..to - start });
        }
        start = end;
    }
    out
}

/// The bytes `range` (end exclusive, inside the object) of the object made of `pieces`.
pub async fn read(
    store: Arc<dyn BlobStore>,
    pieces: Vec<Piece>,
    range: Range<u64>,
) -> Result<ByteStream, StorageError> {
    let mut pending = segments(&pieces, &range).into_iter();
    let Some(first) = pending.next() else { return Ok(Box::pin(futures_util::stream::empty())) };
    let current = store.read(&first.blob_id, first.range).await?;
    let state = (store, Some(current), pending);
    Ok(Box::pin(futures_util::stream::unfold(state, |(store, mut current, mut pending)| async move {
        loop {
            if let Some(stream) = current.as_mut() {
                match stream.next().await {
                    Some(Ok(bytes)) => return Some((Ok(bytes), (store, current, pending))),
                    Some(Err(e)) => return Some((Err(e), (store, None, Vec::new().into_iter()))),
                    None => {}
                }
            }
            let next = pending.next()?;
            match store.read(&next.blob_id, next.range).await {
                Ok(stream) => current = Some(stream),
                Err(e) => {
                    let e = std::io::Error::other(e);
                    return Some((Err(e), (store, None, Vec::new().into_iter())));
                }
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_exactly_the_range() {
        let piece = |id: &str, size| Piece { blob_id: id.into(), size };
        let pieces = [piece("a", 5), piece("b", 0), piece("c", 3)];
        let seg = |id: &str, range: Range<u64>| Segment { blob_id: id.into(), range };
        assert_eq!(segments(&pieces, &(0..8)), vec![seg("a", 0..5), seg("c", 0..3)]);
        assert_eq!(segments(&pieces, &(4..6)), vec![seg("a", 4..5), seg("c", 0..1)]);
        assert_eq!(segments(&pieces, &(5..6)), vec![seg("c", 0..1)]);
        assert_eq!(segments(&pieces, &(7..8)), vec![seg("c", 2..3)]);
        assert_eq!(segments(&pieces, &(0..0)), vec![]);
    }
}
