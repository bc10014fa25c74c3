//! Multipart limits and ETag rules (oss-api.md §3.3-3.4, §4, §5).
//!
//! OSS numbers parts from 1 to 10000; every part but the last must be at least 100 KiB (checked at
//! Complete, not at UploadPart); a part or a single PUT is at most 5 GiB; so an object is at most
//! 10000 × 5 GiB ("48.8 TiB").

/// The lowest part number.
pub const MIN_PART_NUMBER: u32 = 1;
/// The highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// The largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The largest single PutObject body.
pub const MAX_PUT_OBJECT_SIZE: u64 = MAX_PART_SIZE;
/// The largest multipart object: 10000 parts of 5 GiB.
pub const MAX_OBJECT_SIZE: u64 = MAX_PART_NUMBER as u64 * MAX_PART_SIZE;

/// Whether `n` is a valid part number.
pub fn is_valid_part_number(n: u32) -> bool {
    (MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(&n)
}

/// Parses a `partNumber` query value: a decimal integer from 1 to 10000, nothing else.
pub fn parse_part_number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| is_valid_part_number(*n))
}

/// The ETag of a single PUT or a part: the quoted upper-case hex MD5.
pub fn etag_of_md5(md5: &[u8; 16]) -> String {
    format!("\"{}\"", hex::encode_upper(md5))
}

/// The ETag of a completed multipart object: the quoted upper-case hex MD5 of the concatenated binary
/// part MD5s, then `-` and the part count (the S3 convention; OSS documents it only as opaque).
pub fn multipart_etag<'a>(part_md5s: impl IntoIterator<Item = &'a [u8; 16]>) -> String {
    use md5::Digest as _;
    let mut hasher = md5::Md5::new();
    let mut count = 0usize;
    for part in part_md5s {
        hasher.update(part);
        count += 1;
    }
    format!("\"{}-{count}\"", hex::encode_upper(hasher.finalize()))
}

/// An ETag without its quotes.
pub fn unquote_etag(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(etag)
}

/// Whether two ETags name the same content: compared case-insensitively with quotes removed, as OSS
/// does at Complete (oss2 strips quotes, alibabacloud-oss-v2 keeps them).
pub fn etags_match(a: &str, b: &str) -> bool {
    unquote_etag(a).eq_ignore_ascii_case(unquote_etag(b))
}

/// The binary MD5 named by a part ETag, if it is one (32 hex digits, quoted or not).
pub fn md5_of_etag(etag: &str) -> Option<[u8; 16]> {
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(unquote_etag(etag), &mut md5).ok()?;
    Some(md5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mac::md5;

    #[test]
    fn limits_match_the_docs() {
        assert_eq!(MAX_OBJECT_SIZE, 53_687_091_200_000);
        assert_eq!(MIN_PART_SIZE, 102_400);
    }

    #[test]
    fn part_numbers() {
        assert_eq!(parse_part_number("1"), Some(1));
        assert_eq!(parse_part_number("10000"), Some(10_000));
        for bad in ["0", "10001", "", "-1", "+1", "1.0", "01x", "99999999999"] {
            assert_eq!(parse_part_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn etag_of_hello_world_matches_the_spec() {
        assert_eq!(etag_of_md5(&md5(b"hello world")), "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
    }

    #[test]
    fn etag_comparison_ignores_quotes_and_case() {
        assert!(etags_match("\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"", "5eb63bbbe01eeed093cb22bb8f5acdc3"));
        assert!(!etags_match("\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"", "\"5EB63BBBE01EEED093CB22BB8F5ACDC4\""));
        assert_eq!(md5_of_etag("\"5EB63BBBE01EEED093CB22BB8F5ACDC3\""), Some(md5(b"hello world")));
    }

    #[test]
    fn multipart_etag_has_the_part_count() {
        let parts = [md5(b"a"), md5(b"b")];
        let etag = multipart_etag(&parts);
        assert!(etag.ends_with("-2\"") && etag.len() == 2 + 32 + 2, "{etag}");
    }
}
