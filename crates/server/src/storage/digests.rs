//! The digests every write computes once, while its bytes pass: MD5 (the ETag and the `Content-MD5`
//! check), CRC-64/XZ (`x-oss-hash-crc64ecma`, which parts combine into without re-reading) and the
//! length. Backends feed a [`Digester`] chunk by chunk as they store a body; nothing here does I/O or
//! decides what a mismatch means (that is the backend checking [`super::WriteLimits`]).
//!
//! The CRC-64 and the length are computed here, on the writer's thread, as each chunk passes (crc-fast,
//! about 1/20 of MD5's cost). MD5 goes to the hashing service ([`super::hashing`]), which hashes the
//! bodies of concurrent writes together in SIMD lanes on its own thread.

use bytes::Bytes;
use md5_many::Md5State;
use vodup_proto::crc64::Crc64;

use super::hashing::{HashError, Md5Service, Md5Stream};

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
    /// The digests of `data` in one call, on this thread (for tests and small bodies; writes use
    /// [`Digester`]).
    pub fn of(data: &[u8]) -> Self {
        let mut md5 = Md5State::new();
        md5.update(data);
        Self { md5: md5.finalize(), crc64: vodup_proto::crc64::checksum(data), len: data.len() as u64 }
    }

    /// The quoted upper-case hex MD5, the ETag of a PutObject or of a part.
    pub fn etag(&self) -> String {
        vodup_proto::oss::part::etag_of_md5(&self.md5)
    }
}

/// Computes [`Digests`] incrementally: feed each chunk as it is stored, then [`Digester::finish`].
#[derive(Debug)]
pub struct Digester {
    md5: Md5Stream,
    crc: Crc64,
}

impl Digester {
    /// A digester that has seen no bytes, hashing MD5 on the process's shared service.
    pub fn new() -> Self {
        Self::on(Md5Service::shared())
    }

    /// A digester whose MD5 runs on `service`.
    pub fn on(service: &Md5Service) -> Self {
        Self { md5: service.stream(), crc: Crc64::new() }
    }

    /// Adds `chunk` to every digest. It may wait while the MD5 of the previous segment finishes, which
    /// is what bounds a write's memory; it fails only when the hashing service is gone.
    pub async fn update(&mut self, chunk: Bytes) -> Result<(), HashError> {
        self.crc.update(&chunk);
        self.md5.update(chunk).await
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
    pub async fn finish(self) -> Result<Digests, HashError> {
        let md5 = self.md5.finish().await?;
        Ok(Digests { md5, crc64: self.crc.value(), len: self.crc.len() })
    }
}

impl Default for Digester {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use md5::Digest as _;

    use super::*;

    #[test]
    fn hello_world_matches_oss() {
        let digests = Digests::of(b"hello world");
        assert_eq!(digests.etag(), "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
        assert_eq!(digests.crc64, 5_981_764_153_023_615_706);
        assert_eq!(digests.len, 11);
    }

    #[tokio::test]
    async fn empty_body_has_the_empty_digests() {
        let digests = Digester::new().finish().await.unwrap();
        assert_eq!(digests.etag(), "\"D41D8CD98F00B204E9800998ECF8427E\"");
        assert_eq!(digests.crc64, 0);
        assert_eq!(digests.len, 0);
    }

    #[tokio::test]
    async fn chunked_equals_one_shot() {
        // Past the inline limit and over several segments, so the service hashes most of it.
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut digester = Digester::new();
        for chunk in data.chunks(3333) {
            digester.update(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert_eq!(digester.len(), 1_000_000);
        let digests = digester.finish().await.unwrap();
        let md5: [u8; 16] = md5::Md5::digest(&data).into();
        assert_eq!(digests.md5, md5);
        assert_eq!(digests, Digests::of(&data));
        assert_eq!(Digests::of(&data).crc64, vodup_proto::crc64::checksum(&data));
    }
}
