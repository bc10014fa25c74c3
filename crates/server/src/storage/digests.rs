//! The digests every write computes once, while its bytes pass: MD5 (the ETag and the `Content-MD5`
//! check), CRC-64/XZ (`x-oss-hash-crc64ecma`, which parts combine into without re-reading) and the
//! length. Backends feed a [`Digester`] chunk by chunk as they store a body; nothing here does I/O or
//! decides what a mismatch means (that is the backend checking [`super::WriteLimits`]).

use md5::{Digest as _, Md5};
use vodup_proto::crc64::Crc64;

/// MD5, CRC-64 and length of one body (an object written by PutObject, or one part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// Binary MD5 of the bytes.
    pub md5: [u8; 16],
    /// CRC-64/XZ of the bytes, as OSS reports it.
    pub crc64: u64,
    /// Number of bytes.
    pub len: u64,
}

impl Digests {
    /// The digests of `data` in one call (for tests and small bodies; writes use [`Digester`]).
    pub fn of(data: &[u8]) -> Self {
        let mut digester = Digester::new();
        digester.update(data);
        digester.finish()
    }

    /// The quoted upper-case hex MD5, the ETag of a PutObject or of a part.
    pub fn etag(&self) -> String {
        vodup_proto::oss::part::etag_of_md5(&self.md5)
    }
}

/// Computes [`Digests`] incrementally: feed each chunk as it is stored, then [`Digester::finish`].
#[derive(Clone)]
pub struct Digester {
    md5: Md5,
    crc: Crc64,
}

impl Digester {
    /// A digester that has seen no bytes.
    pub fn new() -> Self {
        Self { md5: Md5::new(), crc: Crc64::new() }
    }

    /// Adds `chunk` to every digest.
    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.crc.update(chunk);
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.crc.len()
    }

    /// True when no byte has been fed.
    pub fn is_empty(&self) -> bool {
        self.crc.is_empty()
    }

    /// The digests of every byte fed.
    pub fn finish(self) -> Digests {
        Digests { md5: self.md5.finalize().into(), crc64: self.crc.value(), len: self.crc.len() }
    }
}

impl Default for Digester {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digester").field("len", &self.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_matches_oss() {
        let digests = Digests::of(b"hello world");
        assert_eq!(digests.etag(), "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
        assert_eq!(digests.crc64, 5_981_764_153_023_615_706);
        assert_eq!(digests.len, 11);
    }

    #[test]
    fn empty_body_has_the_empty_digests() {
        let digests = Digester::new().finish();
        assert_eq!(digests.etag(), "\"D41D8CD98F00B204E9800998ECF8427E\"");
        assert_eq!(digests.crc64, 0);
        assert_eq!(digests.len, 0);
    }

    #[test]
    fn chunked_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut digester = Digester::new();
        for chunk in data.chunks(333) {
            digester.update(chunk);
        }
        assert_eq!(digester.len(), 10_000);
        assert_eq!(digester.finish(), Digests::of(&data));
        assert_eq!(Digests::of(&data).crc64, vodup_proto::crc64::checksum(&data));
    }
}
