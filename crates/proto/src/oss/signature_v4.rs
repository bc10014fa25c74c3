//! OSS signature V4 (`OSS4-HMAC-SHA256`), header and presigned URL, oss-api.md §6.3-6.4.
//!
//! CanonicalRequest = `VERB\nURI\nQuery\nHeaders\nAdditionalHeaders\nPayloadHash`, where the URI is
//! `/{bucket}/{key}` RFC 3986-encoded with `/` kept, the query is every parameter (but
//! `x-oss-signature`) encoded and sorted, and the headers are `x-oss-*`, `content-type`, `content-md5`
//! and the additional ones. The key is derived from `"aliyun_v4" + secret` through date, region, `oss`
//! and `aliyun_v4_request`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::SignatureError;
use crate::encoding::{percent_encode, percent_encode_path};
use crate::mac::{check_hex_signature, hmac_sha256, sha256_hex};
use crate::oss::header::{
    UNSIGNED_PAYLOAD, X_OSS_CONTENT_SHA256, X_OSS_CREDENTIAL, X_OSS_DATE, X_OSS_EXPIRES, X_OSS_PREFIX,
    X_OSS_SECURITY_TOKEN, X_OSS_SIGNATURE, X_OSS_SIGNATURE_VERSION,
};
use crate::oss::request::OssRequest;
use crate::secret::{AccessKeySecret, SecurityToken};
use crate::timestamp;

/// The algorithm name.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The product in the scope.
pub const PRODUCT: &str = "oss";
/// The last scope element.
pub const TERMINATOR: &str = "aliyun_v4_request";

/// `YYYYMMDD/region/oss/aliyun_v4_request`.
pub fn scope(date: &str, region: &str, product: &str) -> String {
    format!("{date}/{region}/{product}/{TERMINATOR}")
}

/// The canonical request. `additional_headers` are lower-case names, sorted (as both official clients
/// sign them); `payload_hash` is the `x-oss-content-sha256` value (`UNSIGNED-PAYLOAD` for presigned URLs).
pub fn canonical_request(
    request: &OssRequest<'_>,
    additional_headers: &[String],
    payload_hash: &str,
) -> String {
    let uri = percent_encode_path(&request.resource_path());
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| k != X_OSS_SIGNATURE)
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    query.sort_unstable();
    let query: Vec<String> =
        query.into_iter().map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") }).collect();

    let mut headers = BTreeMap::new();
    for name in request.headers.keys() {
        let name = name.as_str();
        let signed = name.starts_with(X_OSS_PREFIX)
            || name == "content-type"
            || name == "content-md5"
            || additional_headers.iter().any(|h| h == name);
        if signed {
            headers.insert(name, request.header_joined(name).unwrap_or_default().trim().to_owned());
        }
    }
    let headers: String = headers.into_iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{payload_hash}",
        request.method,
        query.join("&"),
        additional_headers.join(";")
    )
}

/// The string to sign for a canonical request signed at `oss_date` (`YYYYMMDDTHHMMSSZ`) in `scope`.
pub fn string_to_sign(oss_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{oss_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The derived signing key for a day, region and product.
pub fn signing_key(secret: &AccessKeySecret, date: &str, region: &str, product: &str) -> [u8; 32] {
    let mut key = format!("aliyun_v4{}", secret.expose()).into_bytes();
    let mut derived = hmac_sha256(&key, date.as_bytes());
    zeroize::Zeroize::zeroize(&mut key);
    for part in [region, product, TERMINATOR] {
        derived = hmac_sha256(&derived, part.as_bytes());
    }
    derived
}

/// The lower-case hex signature.
pub fn sign(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// The `Authorization` value for a request whose `x-oss-date`, `x-oss-content-sha256` and token headers
/// are set. `at` must be the time written in `x-oss-date`.
pub fn authorization(
    request: &OssRequest<'_>,
    access_key_id: &str,
    secret: &AccessKeySecret,
    region: &str,
    at: SystemTime,
    additional_headers: &[String],
) -> String {
    let mut additional_headers: Vec<String> =
        additional_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    additional_headers.sort_unstable();
    additional_headers.dedup();
    let oss_date = timestamp::oss_v4_date(at);
    let day = &oss_date[..8];
    let scope = scope(day, region, PRODUCT);
    let payload_hash =
        request.header_joined(X_OSS_CONTENT_SHA256).unwrap_or_else(|| UNSIGNED_PAYLOAD.to_owned());
    let canonical = canonical_request(request, &additional_headers, &payload_hash);
    let signature =
        sign(&signing_key(secret, day, region, PRODUCT), &string_to_sign(&oss_date, &scope, &canonical));
    let mut value = format!("{ALGORITHM} Credential={access_key_id}/{scope}");
    if !additional_headers.is_empty() {
        value.push_str(",AdditionalHeaders=");
        value.push_str(&additional_headers.join(";"));
    }
    value.push_str(",Signature=");
    value.push_str(&signature);
    value
}

/// The query parameters to append to a presigned URL signed at `at` and valid for `expires_in` seconds.
/// They are signed along with `request.query`, so the caller's own parameters must already be there.
pub fn presign_query(
    request: &OssRequest<'_>,
    access_key_id: &str,
    secret: &AccessKeySecret,
    security_token: Option<&SecurityToken>,
    region: &str,
    at: SystemTime,
    expires_in: u64,
) -> Vec<(String, String)> {
    let oss_date = timestamp::oss_v4_date(at);
    let day = &oss_date[..8];
    let scope = scope(day, region, PRODUCT);
    let mut added = vec![
        (X_OSS_SIGNATURE_VERSION.to_owned(), ALGORITHM.to_owned()),
        (X_OSS_CREDENTIAL.to_owned(), format!("{access_key_id}/{scope}")),
        (X_OSS_DATE.to_owned(), oss_date.clone()),
        (X_OSS_EXPIRES.to_owned(), expires_in.to_string()),
    ];
    if let Some(token) = security_token {
        added.push((X_OSS_SECURITY_TOKEN.to_owned(), token.expose().to_owned()));
    }
    let mut all = request.query.to_vec();
    all.extend(added.iter().cloned());
    let signed = OssRequest { query: &all, ..*request };
    let canonical = canonical_request(&signed, &[], UNSIGNED_PAYLOAD);
    let signature =
        sign(&signing_key(secret, day, region, PRODUCT), &string_to_sign(&oss_date, &scope, &canonical));
    added.push((X_OSS_SIGNATURE.to_owned(), signature));
    added
}

/// Verifies a V4 signature: `oss_date` as sent, the scope from the credential, the additional headers
/// as listed, the payload hash as sent (`UNSIGNED-PAYLOAD` for URLs).
pub fn verify(
    request: &OssRequest<'_>,
    oss_date: &str,
    scope: &super::V4Scope,
    additional_headers: &[String],
    payload_hash: &str,
    signature: &str,
    secret: &AccessKeySecret,
) -> Result<(), SignatureError> {
    let canonical = canonical_request(request, additional_headers, payload_hash);
    let string_to_sign = string_to_sign(oss_date, &scope.to_string(), &canonical);
    let key = signing_key(secret, &scope.date, &scope.region, &scope.product);
    check_hex_signature(signature, &hmac_sha256(&key, string_to_sign.as_bytes()), &string_to_sign)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn secret() -> Secret {
        Secret::new("ExampleSecretKey123")
    }

    fn at() -> SystemTime {
        timestamp::parse_oss_v4_date("20261125T080000Z").unwrap()
    }

    #[test]
    fn spec_example_signing_key() {
        assert_eq!(
            hex::encode(signing_key(&secret(), "20261125", "cn-hangzhou", "oss")),
            "96d7f8762bf576f6d32bbda4a59cd12d329577de4be5f44cd5d0f0c8384d83a2"
        );
    }

    // oss-api.md §6.5, V4-a.
    #[test]
    fn spec_example_upload_part() {
        let headers = headers(&[
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-oss-date", "20261125T080000Z"),
            ("x-oss-security-token", "CAIS-example-token"),
        ]);
        let query =
            vec![("partNumber".into(), "1".into()), ("uploadId".into(), "0004B9895DBBB6EC98E36".into())];
        let request = OssRequest {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("sv/video.mp4"),
            query: &query,
            headers: &headers,
        };
        let canonical = canonical_request(&request, &[], UNSIGNED_PAYLOAD);
        assert_eq!(
            canonical,
            "PUT\n/examplebucket/sv/video.mp4\npartNumber=1&uploadId=0004B9895DBBB6EC98E36\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20261125T080000Z\nx-oss-security-token:CAIS-example-token\n\n\nUNSIGNED-PAYLOAD"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "0e66208cf662c3ef9663f96b67072dbdb578e0e4a0e8f8550be0adcd881f0787"
        );
        let value = authorization(&request, "STS.NTestExampleAK", &secret(), "cn-hangzhou", at(), &[]);
        assert_eq!(
            value,
            "OSS4-HMAC-SHA256 Credential=STS.NTestExampleAK/20261125/cn-hangzhou/oss/aliyun_v4_request,Signature=31f8e9475702f4cb358b070e2278083c206760c76632cf996779b06eac4dbc4a"
        );
    }

    // oss-api.md §6.5, V4-b.
    #[test]
    fn spec_example_put_object_with_encoded_key() {
        let headers = headers(&[
            ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
            ("content-type", "video/mp4"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-oss-date", "20261125T080000Z"),
            ("x-oss-security-token", "CAIS-example-token"),
            ("user-agent", "not signed"),
        ]);
        let request = OssRequest {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("sv/video +1.mp4"),
            query: &[],
            headers: &headers,
        };
        let canonical = canonical_request(&request, &[], UNSIGNED_PAYLOAD);
        assert_eq!(
            canonical,
            "PUT\n/examplebucket/sv/video%20%2B1.mp4\n\ncontent-md5:XrY7u+Ae7tCTyyK7j1rNww==\ncontent-type:video/mp4\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20261125T080000Z\nx-oss-security-token:CAIS-example-token\n\n\nUNSIGNED-PAYLOAD"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "a144484026a493f7a7a0fd260d6db549e3e66a56c55ac9ae10fc9c1a54dcd635"
        );
        assert!(
            authorization(&request, "STS.NTestExampleAK", &secret(), "cn-hangzhou", at(), &[])
                .ends_with("Signature=6e662f6511f40a046979d36b5fdedfb4b73f27f9a17dea48fc68820d57044818")
        );
    }

    #[test]
    fn presigned_url_verifies_with_its_own_parameters() {
        let headers = HeaderMap::new();
        let request = OssRequest {
            method: "GET",
            bucket: Some("b"),
            key: Some("a b/c.mp4"),
            query: &[],
            headers: &headers,
        };
        let token = Secret::new("tok");
        let params = presign_query(&request, "AK", &secret(), Some(&token), "cn-hangzhou", at(), 900);
        let signature = params.iter().find(|(k, _)| k == X_OSS_SIGNATURE).unwrap().1.clone();
        let query: Vec<(String, String)> = params.into_iter().collect();
        let signed = OssRequest { query: &query, ..request };
        let scope: super::super::V4Scope = "20261125/cn-hangzhou/oss/aliyun_v4_request".parse().unwrap();
        verify(&signed, "20261125T080000Z", &scope, &[], UNSIGNED_PAYLOAD, &signature, &secret()).unwrap();
        let as_head = OssRequest { method: "HEAD", ..signed };
        assert!(
            verify(&as_head, "20261125T080000Z", &scope, &[], UNSIGNED_PAYLOAD, &signature, &secret())
                .is_err()
        );
    }
}
