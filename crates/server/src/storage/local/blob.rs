//! Writing one blob: the body streams into `tmp/<id>` ([`super::sink`]) while it is hashed, is checked against the write's
//! limits, fsynced, then renamed to `blobs/ab/<id>` and the folder fsynced. A blob under its final name
//! is therefore always whole and durable; anything else is a temporary file that a failed write removes
//! at once and a crash leaves for the next open.

use std::io;
use std::path::Path;

use futures_util::StreamExt as _;
use tokio::fs;

use super::sink::FileSink;
use super::{Leftover, sync_dir};
use crate::fault::{self, FaultPoint};
use crate::storage::checked::CheckedBody;
use crate::storage::{ByteStream, StorageError, StoredBlob, WriteLimits, new_blob_id};

/// Streams `body` into a new blob under `root`, enforcing `limits`.
pub(super) async fn write(
    root: &Path,
    mut body: ByteStream,
    limits: &WriteLimits,
) -> Result<StoredBlob, StorageError> {
    let id = new_blob_id();
    let fail = |doing: &str, e| StorageError::backend(format!("{doing} blob {id}"), e);
    let tmp = root.join("tmp").join(&id);
    let handle = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
        .map_err(|e| fail("creating", e))?
        .into_std()
        .await;
    let mut leftover = Leftover(Some(tmp.clone()));
    let mut out = FileSink::new(handle);
    let mut checked = CheckedBody::new(limits);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        checked.accept(chunk.clone()).await?;
        out.write(chunk).await.map_err(|e| fail("writing", e))?;
    }
    let digests = checked.finish().await?;
    out.finish().await.map_err(|e| fail("writing and syncing", e))?;
    fault::hit(FaultPoint::BlobWritten);
    let shard = root.join("blobs").join(&id[..2]);
    if let Err(e) = fs::metadata(&shard).await {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(fail("opening the folder of", e));
        }
        match fs::create_dir(&shard).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail("creating the folder of", e)),
        }
        // The folder entry must be durable before a blob inside it counts as stored.
        sync_dir(&root.join("blobs")).await.map_err(|e| fail("syncing the folder of", e))?;
    }
    fs::rename(&tmp, shard.join(&id)).await.map_err(|e| fail("storing", e))?;
    leftover.disarm();
    sync_dir(&shard).await.map_err(|e| fail("syncing the folder of", e))?;
    Ok(StoredBlob { id, digests })
}
