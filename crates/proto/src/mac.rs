//! The hashes and MACs the signatures are built from, and the strict decoding of signatures as sent.
//!
//! Strictness matters for verification: a signature is accepted only in its one canonical spelling
//! (padded standard Base64 with zero trailing bits, or lower-case hex of the exact length), so no bit of
//! a valid signature can be flipped into another string that still verifies. Comparison of MACs is
//! constant time.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::SignatureError;

/// Standard Base64 that decodes only the canonical form: padding required, trailing bits zero.
const STRICT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

/// HMAC-SHA1 of `data` under `key` (VOD signature v1, OSS V1).
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `data` under `key` (ACS3, OSS V4).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lower-case hex SHA-256 of `data`, the form both ACS3 and OSS V4 put in their canonical requests.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// MD5 of `data`, as the raw 16 bytes.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// Base64 of the MD5 of `data`: the `Content-MD5` header value.
pub fn content_md5(data: &[u8]) -> String {
    base64_encode(&md5(data))
}

/// Standard padded Base64.
pub fn base64_encode(data: &[u8]) -> String {
    STRICT_BASE64.encode(data)
}

/// Decodes standard Base64, accepting only the canonical spelling.
pub fn base64_decode_strict(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STRICT_BASE64.decode(text)
}

/// Decodes lower-case hex only (`A-F` is refused, as are odd lengths).
pub fn hex_decode_lower(text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()
}

/// Checks a Base64 signature as sent against the MAC the server computed, in constant time.
pub(crate) fn check_base64_signature(
    provided: &str,
    expected: &[u8],
    string_to_sign: &str,
) -> Result<(), SignatureError> {
    let decoded = base64_decode_strict(provided)
        .map_err(|e| SignatureError::malformed("signature", format!("not canonical Base64: {e}")))?;
    check_mac(&decoded, expected, string_to_sign)
}

/// Checks a hex signature as sent against the MAC the server computed, in constant time.
pub(crate) fn check_hex_signature(
    provided: &str,
    expected: &[u8],
    string_to_sign: &str,
) -> Result<(), SignatureError> {
    let decoded = hex_decode_lower(provided)
        .ok_or_else(|| SignatureError::malformed("signature", "not lower-case hex"))?;
    check_mac(&decoded, expected, string_to_sign)
}

/// Whether two byte strings are equal, in time independent of where they differ (the length may leak).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // `ct_eq` on slices of different length returns false without looking at the contents.
    a.ct_eq(b).into()
}

fn check_mac(provided: &[u8], expected: &[u8], string_to_sign: &str) -> Result<(), SignatureError> {
    if constant_time_eq(provided, expected) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch { string_to_sign: string_to_sign.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_of_empty_body_matches_oss() {
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn sha256_hex_of_empty_body_matches_acs3() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn strict_base64_refuses_non_canonical_trailing_bits() {
        // "QQ==" is the canonical encoding of "A"; "QR==" carries non-zero trailing bits.
        assert_eq!(base64_decode_strict("QQ==").unwrap(), b"A");
        assert!(base64_decode_strict("QR==").is_err());
        assert!(base64_decode_strict("QQ").is_err());
    }

    #[test]
    fn hex_decoding_refuses_upper_case() {
        assert_eq!(hex_decode_lower("0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(hex_decode_lower("0AFF").is_none());
        assert!(hex_decode_lower("0af").is_none());
    }
}
