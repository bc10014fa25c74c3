//! Writing one blob: the body streams into `tmp/<id>` (a spare file renamed there when the store has one,
//! [`super::spare`]; [`super::sink`]) while it is hashed, is checked against the write's
//! limits, fsynced, then renamed to `blobs/ab/<id>` and the folder fsynced. A blob under its final name
//! is therefore always whole and durable; anything else is a temporary file that a failed write removes
//! at once and a crash leaves for the next open.

use std::io;
use std::path::Path;

use futures_util::StreamExt as _;

use super::sink::FileSink;
use super::{Leftover, sync_dir_now};
use crate::fault::{self, FaultPoint};
use crate::storage::checked::CheckedBody;
use crate::storage::{ByteStream, StorageError, StoredBlob, WriteLimits, new_blob_id};

/// Streams `body` into a new blob under `root`, enforcing `limits`.
pub(super) async fn write(
    root: &Path,
    spare: Option<super::spare::Lease>,
    mut body: ByteStream,
    limits: &WriteLimits,
) -> Result<StoredBlob, StorageError> {
    let id = new_blob_id();
    let fail = |doing: &str, e| StorageError::backend(format!("{doing} blob {id}"), e);
    let tmp = root.join("tmp").join(&id);
    let mut leftover = Leftover(Some(tmp.clone()));
    let mut out = FileSink::create(tmp.clone(), spare);
    let mut checked = CheckedBody::new(limits);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        checked.accept(chunk.clone()).await?;
        out.write(chunk).await.map_err(|e| fail("writing", e))?;
    }
    let digests = checked.finish().await?;
    // The rest runs in the sink's last task on the blocking pool, one hop for the whole tail. (A refusal
    // above drops `out` before `leftover`, so a batch still on the pool removes a file it creates late.)
    let (blobs, name) = (root.join("blobs"), id.clone());
    out.finish_then(move || place(&tmp, &blobs, &name)).await.map_err(|e| fail("storing", e))?;
    leftover.disarm();
    Ok(StoredBlob { id, digests })
}

/// Moves the synced file `tmp` to `blobs/<first two characters of id>/<id>` and makes the move durable
/// (the shard folder's own entry first, when the folder is new).
fn place(tmp: &Path, blobs: &Path, id: &str) -> io::Result<()> {
    fault::hit(FaultPoint::BlobWritten);
    let shard = blobs.join(&id[..2]);
    if let Err(e) = std::fs::metadata(&shard) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(e);
        }
        match std::fs::create_dir(&shard) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // The folder entry must be durable before a blob inside it counts as stored.
        sync_dir_now(blobs)?;
    }
    std::fs::rename(tmp, shard.join(id))?;
    sync_dir_now(&shard)
}
