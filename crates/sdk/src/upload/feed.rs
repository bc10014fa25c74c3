//! Hands out the next part to upload, with its bytes, to whichever worker asks. Random-access sources
//! are read by offset by the worker itself, so reads run in parallel; sequential sources are read in
//! order under a lock, one part at a time, into the asking worker's buffer. Either way memory is one
//! buffer per worker. Parts already done by an earlier run are skipped: by offset for random access,
//! and for a stream by reading them and checking their CRC-64 against the checkpoint, so a source that
//! changed between runs is caught instead of stitched.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt as _;
use vodup_proto::crc64;

use super::checkpoint::DonePart;
use super::plan::Layout;
use crate::error::{Error, ErrorKind, Result};
use crate::source::{ByteStream, RandomAccess};

/// One part to send.
#[derive(Debug)]
pub(crate) struct PartJob {
    pub(crate) number: u32,
    pub(crate) data: Bytes,
    pub(crate) crc64: u64,
}

pub(crate) enum Feed {
    Random { source: Arc<dyn RandomAccess>, layout: Layout, next: AtomicU32, done: HashMap<u32, DonePart> },
    Sequential(tokio::sync::Mutex<Sequential>),
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Random { .. } => "Feed::Random",
            Self::Sequential(_) => "Feed::Sequential",
        })
    }
}

pub(crate) struct Sequential {
    reader: ByteStream,
    layout: Layout,
    next: u32,
    finished: bool,
    done: HashMap<u32, DonePart>,
}

impl Feed {
    pub(crate) fn random(source: Arc<dyn RandomAccess>, layout: Layout, done: &[DonePart]) -> Self {
        Self::Random {
            source,
            layout,
            next: AtomicU32::new(1),
            done: done.iter().map(|p| (p.number, p.clone())).collect(),
        }
    }

    pub(crate) fn sequential(reader: ByteStream, layout: Layout, done: &[DonePart]) -> Self {
        Self::Sequential(tokio::sync::Mutex::new(Sequential {
            reader,
            layout,
            next: 1,
            finished: false,
            done: done.iter().map(|p| (p.number, p.clone())).collect(),
        }))
    }

    /// The next part to send, read into the buffer in `buf` (taken only when a part is read; left in
    /// place otherwise, so the caller keeps it), or None when the source is exhausted.
    pub(crate) async fn next(&self, buf: &mut Option<BytesMut>) -> Result<Option<PartJob>> {
        match self {
            Self::Random { source, layout, next, done } => loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                let Some(len) = layout.part_len(number) else { return Ok(None) };
                if done.contains_key(&number) {
                    continue;
                }
                let len =
                    usize::try_from(len).map_err(|_| Error::invalid_input("part too large for memory"))?;
                let buffer = buf.take().unwrap_or_default();
                let data = source.read_at(layout.part_offset(number), len, buffer).await?.freeze();
                let crc64 = crc64::checksum(&data);
                return Ok(Some(PartJob { number, data, crc64 }));
            },
            Self::Sequential(state) => {
                let mut state = state.lock().await;
                loop {
                    if state.finished {
                        return Ok(None);
                    }
                    let number = state.next;
                    let Some(len) = state.layout.part_len(number) else {
                        state.finished = true;
                        return Ok(None);
                    };
                    let mut buffer = buf.take().unwrap_or_default();
                    buffer.clear();
                    let read = read_full(&mut state.reader, &mut buffer, len).await?;
                    if read < len {
                        state.finished = true;
                    }
                    if read == 0 && number > 1 {
                        *buf = Some(buffer);
                        return Ok(None);
                    }
                    state.next += 1;
                    let data = buffer.freeze();
                    let crc64 = crc64::checksum(&data);
                    if let Some(done) = state.done.get(&number) {
                        if done.crc64 != crc64 || done.size != data.len() as u64 {
                            return Err(Error::new(
                                ErrorKind::SourceChanged,
                                "read source",
                                format!("part {number} differs from the one uploaded by the earlier run"),
                            )
                            .with_hint("the source changed since the checkpoint; re-run with --no-resume"));
                        }
                        *buf = data.try_into_mut().ok();
                        continue;
                    }
                    return Ok(Some(PartJob { number, data, crc64 }));
                }
            }
        }
    }
}

/// Reads until `buf` holds `len` bytes or the stream ends; returns how many were read.
async fn read_full(reader: &mut ByteStream, buf: &mut BytesMut, len: u64) -> Result<u64> {
    let want = usize::try_from(len).map_err(|_| Error::invalid_input("part too large for memory"))?;
    buf.reserve(want);
    while buf.len() < want {
        let limit = (want - buf.len()) as u64;
        let n = (&mut *reader).take(limit).read_buf(buf).await.map_err(|e| {
            Error::new(ErrorKind::Io, "read source", e.to_string())
                .with_hint("the input stream failed; re-run")
        })?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sequential_feed_cuts_a_stream_into_parts_and_checks_done_ones() {
        let data: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        let layout = Layout::Growing { base: 100 };
        let done =
            [DonePart { number: 1, size: 100, etag: "e".into(), crc64: crc64::checksum(&data[..100]) }];
        let feed = Feed::sequential(Box::new(std::io::Cursor::new(data.clone())), layout, &done);
        let part = feed.next(&mut None).await.unwrap().unwrap();
        assert_eq!((part.number, &part.data[..]), (2, &data[100..200]));
        let part = feed.next(&mut None).await.unwrap().unwrap();
        assert_eq!((part.number, &part.data[..]), (3, &data[200..]));
        assert!(feed.next(&mut None).await.unwrap().is_none());

        let wrong = [DonePart { number: 1, size: 100, etag: "e".into(), crc64: 1 }];
        let feed = Feed::sequential(Box::new(std::io::Cursor::new(data)), layout, &wrong);
        assert_eq!(feed.next(&mut None).await.unwrap_err().kind(), ErrorKind::SourceChanged);
    }
}
