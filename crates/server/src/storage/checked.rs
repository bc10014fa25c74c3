//! A body checked against its write's [`WriteLimits`] while it passes: each backend feeds it every
//! chunk before storing the chunk, and asks it at the end whether the body may be kept. One piece of code
//! decides what "too large", "incomplete" and "Content-MD5 mismatch" mean, whatever stores the bytes.

use std::io;

use bytes::Bytes;

use super::digests::{Digester, Digests};
use super::hashing::HashError;
use super::{StorageError, WriteLimits};

/// The digests of a body so far, and the limits it must meet.
#[derive(Debug)]
pub struct CheckedBody<'a> {
    limits: &'a WriteLimits,
    cap: u64,
    digester: Digester,
}

impl<'a> CheckedBody<'a> {
    /// A body that has not started.
    pub fn new(limits: &'a WriteLimits) -> Self {
        // A body longer than it announced is cut off like one over the size limit.
        let cap = limits.expected_len.map_or(limits.max_size, |len| len.min(limits.max_size));
        Self { limits, cap, digester: Digester::new() }
    }

    /// Counts and hashes `chunk` (shared with the caller, not copied); an error means the body is over
    /// its limit, or could not be hashed, and must not be kept. It may wait for the hashing of the
    /// previous segment: the write's backpressure.
    pub async fn accept(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        if self.digester.len().saturating_add(chunk.len() as u64) > self.cap {
            return Err(StorageError::TooLarge { max_size: self.cap });
        }
        self.digester.update(chunk).await.map_err(hashing_failed)
    }

    /// Bytes accepted so far.
    pub fn len(&self) -> u64 {
        self.digester.len()
    }

    /// True before the first byte.
    pub fn is_empty(&self) -> bool {
        self.digester.is_empty()
    }

    /// The body ended: its digests if it is whole and matches its `Content-MD5`, else why not.
    pub async fn finish(self) -> Result<Digests, StorageError> {
        if let Some(expected) = self.limits.expected_len
            && self.digester.len() < expected
        {
            return Err(StorageError::Incomplete { received: self.digester.len(), expected });
        }
        let digests = self.digester.finish().await.map_err(hashing_failed)?;
        if self.limits.expected_md5.is_some_and(|md5| md5 != digests.md5) {
            return Err(StorageError::DigestMismatch);
        }
        Ok(digests)
    }
}

/// A write whose bytes could not be hashed fails as a backend failure: the server, not the client, is at
/// fault, and nothing is kept.
fn hashing_failed(error: HashError) -> StorageError {
    StorageError::backend("hashing the body", io::Error::other(error))
}
