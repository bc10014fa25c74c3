//! CRC-64/XZ, the checksum OSS reports as `x-oss-hash-crc64ecma` (an unsigned decimal), computed with the
//! SIMD `crc-fast` crate, and [`combine`] so that part CRCs join into the object's CRC without
//! re-reading a byte.
//!
//! Parameters (oss-api.md §5): ECMA-182 polynomial `0x42F0E1EBA9EA3693`, reflected, init and xorout all
//! ones; the check value of `"123456789"` is `0x995DC9BBDF1939FA`.

use crc_fast::{CrcAlgorithm, Digest};

const ALGORITHM: CrcAlgorithm = CrcAlgorithm::Crc64Xz;

/// The CRC-64/XZ of `data` in one call.
pub fn checksum(data: &[u8]) -> u64 {
    crc_fast::checksum(ALGORITHM, data)
}

/// The CRC of `A‖B` from `crc(A)`, `crc(B)` and the length of `B`. A zero-length `B` leaves `crc(A)`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(ALGORITHM, crc_a, crc_b, len_b)
}

/// A streaming CRC-64/XZ: feed it chunks as they pass, read the value at the end.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest,
    len: u64,
}

impl Crc64 {
    /// A CRC over zero bytes so far.
    pub fn new() -> Self {
        Self { digest: Digest::new(ALGORITHM), len: 0 }
    }

    /// Adds `chunk` to the checksum.
    pub fn update(&mut self, chunk: &[u8]) {
        self.digest.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// The CRC of every byte fed so far.
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }

    /// How many bytes have been fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no byte has been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64").field("value", &self.value()).field("len", &self.len).finish()
    }
}

/// Parses an `x-oss-hash-crc64ecma` header value (unsigned decimal).
pub fn parse_header(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_match_oss() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(checksum(b"123456789"), 11_051_210_869_376_104_954);
        assert_eq!(checksum(b"hello world"), 5_981_764_153_023_615_706);
    }

    #[test]
    fn combine_matches_the_spec_example() {
        let combined = combine(checksum(b"hello "), checksum(b"world"), 5);
        assert_eq!(combined, 5_981_764_153_023_615_706);
        assert_eq!(combine(checksum(b"hello world"), checksum(b""), 0), 5_981_764_153_023_615_706);
        assert_eq!(combine(0, checksum(b"hello world"), 11), 5_981_764_153_023_615_706);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut crc = Crc64::new();
        crc.update(b"hello");
        crc.update(b" ");
        crc.update(b"world");
        assert_eq!(crc.value(), 5_981_764_153_023_615_706);
        assert_eq!(crc.len(), 11);
    }

    #[test]
    fn header_parsing_is_strict() {
        assert_eq!(parse_header("5981764153023615706"), Some(5_981_764_153_023_615_706));
        assert_eq!(parse_header("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_header("18446744073709551616"), None);
        assert_eq!(parse_header("-1"), None);
        assert_eq!(parse_header("+1"), None);
        assert_eq!(parse_header(""), None);
    }
}
