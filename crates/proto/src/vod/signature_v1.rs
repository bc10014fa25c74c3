//! VOD RPC signature v1 (HMAC-SHA1), as aliyun-python-sdk-core and voduploadsdk send it (vod-api.md §2.1).
//!
//! The string to sign covers every parameter (query and form body) except `Signature`, sorted by name
//! and RFC 3986-encoded, then encoded once more: `METHOD&%2F&enc(k1=v1&k2=v2…)`. The key is the
//! AccessKeySecret followed by `&`.

use crate::SignatureError;
use crate::encoding::percent_encode;
use crate::mac::{base64_encode, check_base64_signature, hmac_sha1};
use crate::secret::AccessKeySecret;

/// The parameter that carries the signature.
pub const SIGNATURE: &str = "Signature";
/// The `SignatureMethod` value of this scheme.
pub const SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The `SignatureVersion` value of this scheme.
pub const SIGNATURE_VERSION: &str = "1.0";

/// The string to sign for `method` over `params` (every parameter but `Signature`; empty values count).
pub fn string_to_sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)]) -> String {
    let mut pairs: Vec<(&str, &str)> =
        params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).filter(|(k, _)| *k != SIGNATURE).collect();
    // Byte-wise by name; by value too so that a repeated name still has one canonical order.
    pairs.sort_unstable();
    let mut canonical = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            canonical.push('&');
        }
        canonical.push_str(&percent_encode(k));
        canonical.push('=');
        canonical.push_str(&percent_encode(v));
    }
    format!("{method}&%2F&{}", percent_encode(&canonical))
}

/// The Base64 signature of `string_to_sign`.
pub fn sign(secret: &AccessKeySecret, string_to_sign: &str) -> String {
    base64_encode(&mac(secret, string_to_sign))
}

/// Signs `params` for `method`: the value to send as the `Signature` parameter.
pub fn sign_params<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: &AccessKeySecret,
) -> String {
    sign(secret, &string_to_sign(method, params))
}

/// Verifies a request from its method and its decoded parameters (query and form body together),
/// which must include exactly one `Signature`.
pub fn verify<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    params: &[(K, V)],
    secret: &AccessKeySecret,
) -> Result<(), SignatureError> {
    let mut provided = params.iter().filter(|(k, _)| k.as_ref() == SIGNATURE).map(|(_, v)| v.as_ref());
    let signature = provided.next().ok_or(SignatureError::Missing(SIGNATURE))?;
    if provided.next().is_some() {
        return Err(SignatureError::malformed(SIGNATURE, "given more than once"));
    }
    let string_to_sign = string_to_sign(method, params);
    verify_string(secret, &string_to_sign, signature)
}

/// Verifies `signature` (Base64, as sent) over an already built string to sign.
pub fn verify_string(
    secret: &AccessKeySecret,
    string_to_sign: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    check_base64_signature(signature, &mac(secret, string_to_sign), string_to_sign)
}

fn mac(secret: &AccessKeySecret, string_to_sign: &str) -> [u8; 20] {
    let mut key = Vec::with_capacity(secret.expose().len() + 1);
    key.extend_from_slice(secret.expose().as_bytes());
    key.push(b'&');
    let mac = hmac_sha1(&key, string_to_sign.as_bytes());
    zeroize::Zeroize::zeroize(&mut key);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    /// The worked example of vod-api.md §2.1 (aliyun-python-sdk-core 2.16.1).
    fn example_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Action", "CreateUploadVideo"),
            ("Version", "2017-03-21"),
            ("Format", "JSON"),
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureType", ""),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Timestamp", "2024-01-01T12:00:00Z"),
            ("RegionId", "cn-shanghai"),
            ("Title", "My video 测试*~"),
            ("FileName", "a b.mp4"),
        ]
    }

    #[test]
    fn spec_example_string_to_sign() {
        assert_eq!(
            string_to_sign("POST", &example_params()),
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DCreateUploadVideo%26FileName%3Da%2520b.mp4%26Format%3DJSON%26RegionId%3Dcn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T12%253A00%253A00Z%26Title%3DMy%2520video%2520%25E6%25B5%258B%25E8%25AF%2595%252A~%26Version%3D2017-03-21"
        );
    }

    #[test]
    fn spec_example_signatures_for_post_and_get() {
        let secret = Secret::new("testsecret");
        assert_eq!(sign_params("POST", &example_params(), &secret), "kgVDxlfXhIbhPlQLLUMj3oBpZmc=");
        assert_eq!(sign_params("GET", &example_params(), &secret), "MgRL0W08AtG1yElD9Q6I/bdtsdk=");
    }

    #[test]
    fn verify_accepts_the_spec_example_and_refuses_another_method() {
        let secret = Secret::new("testsecret");
        let mut params = example_params();
        params.push(("Signature", "kgVDxlfXhIbhPlQLLUMj3oBpZmc="));
        verify("POST", &params, &secret).unwrap();
        let err = verify("GET", &params, &secret).unwrap_err();
        assert!(
            matches!(err, SignatureError::Mismatch { ref string_to_sign } if string_to_sign.starts_with("GET&%2F&"))
        );
        assert!(verify("POST", &params, &Secret::new("other")).is_err());
    }

    #[test]
    fn verify_requires_exactly_one_signature() {
        let secret = Secret::new("testsecret");
        assert_eq!(verify("POST", &example_params(), &secret), Err(SignatureError::Missing("Signature")));
        let mut params = example_params();
        params.push(("Signature", "kgVDxlfXhIbhPlQLLUMj3oBpZmc="));
        params.push(("Signature", "kgVDxlfXhIbhPlQLLUMj3oBpZmc="));
        assert!(matches!(verify("POST", &params, &secret), Err(SignatureError::Malformed { .. })));
    }
}
