//! OSS signature V1: `Authorization: OSS <AccessKeyId>:<Base64(HMAC-SHA1)>` and the presigned-URL form
//! (`OSSAccessKeyId`, `Expires`, `Signature`), oss-api.md §6.1-6.2.
//!
//! StringToSign = `VERB\nContent-MD5\nContent-Type\nDate\n` + the `x-oss-*` headers + the canonical
//! resource. The Date slot is `x-oss-date` or `Date` for a header signature and `Expires` for a URL.
//! Only the sub-resources in [`SUB_RESOURCES`] join the resource; `encoding-type`, `max-parts` and the
//! other listing parameters do not.

use std::collections::BTreeMap;

use crate::SignatureError;
use crate::mac::{base64_encode, check_base64_signature, hmac_sha1};
use crate::oss::header::{EXPIRES, OSS_ACCESS_KEY_ID, SECURITY_TOKEN, SIGNATURE, X_OSS_DATE, X_OSS_PREFIX};
use crate::oss::request::OssRequest;
use crate::secret::{AccessKeySecret, SecurityToken};

/// The query parameters that V1 signs: the union of oss2 2.19.1's and alibabacloud-oss-v2 1.4.1's
/// sub-resource sets (oss2's is a superset but for `cloudboxes`). A client whose list lacks one of these
/// would not sign it, but none sends them on the upload path.
pub const SUB_RESOURCES: &[&str] = &[
    "accessPoint",
    "accessPointPolicy",
    "acl",
    "append",
    "asyncFetch",
    "bucketArchiveDirectRead",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "httpsConfig",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "publicAccessBlock",
    "qos",
    "qosInfo",
    "qosRequester",
    "redundancyTransition",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "requesterQosInfo",
    "resourceGroup",
    "resourcePool",
    "resourcePoolBuckets",
    "resourcePoolInfo",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
    "x-oss-ac-forward-allow",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-access-point-name",
    "x-oss-async-process",
    "x-oss-process",
    "x-oss-redundancy-transition-taskid",
    "x-oss-request-payer",
    "x-oss-target-redundancy-type",
    "x-oss-traffic-limit",
    "x-oss-write-get-object-response",
];

/// alibabacloud-oss-v2 1.4.1's own, shorter list. It signs only these (plus per-operation extras), so
/// for example its GetObject with `x-oss-process` leaves that parameter out of the string to sign
/// where oss2 puts it in. The verifier accepts either reading ([`verify`]).
pub const SUB_RESOURCES_V2: &[&str] = &[
    "acl",
    "append",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "continuation-token",
    "delete",
    "location",
    "objectMeta",
    "partNumber",
    "position",
    "regionList",
    "resourceGroup",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "stat",
    "symlink",
    "tagging",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
];

/// Which sub-resource list a string to sign is built over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubResourceList {
    /// [`SUB_RESOURCES`]: what OSS documents and oss2 signs; vodup's SDK signs with it.
    Full,
    /// [`SUB_RESOURCES_V2`]: what alibabacloud-oss-v2 1.4.1 signs.
    OssV2Client,
}

impl SubResourceList {
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Full => SUB_RESOURCES,
            Self::OssV2Client => SUB_RESOURCES_V2,
        }
    }
}

/// Whether `name` is a signed sub-resource.
pub fn is_sub_resource(name: &str) -> bool {
    SUB_RESOURCES.binary_search(&name).is_ok()
}

/// `/{bucket}/{key}` (decoded) plus `?` and the signed sub-resources sorted by name, `k=v` or `k` when
/// the value is empty.
pub fn canonical_resource(request: &OssRequest<'_>) -> String {
    canonical_resource_over(request, SubResourceList::Full)
}

fn canonical_resource_over(request: &OssRequest<'_>, list: SubResourceList) -> String {
    let sub_resources = list.names();
    let mut resource = request.resource_path();
    let mut signed: Vec<(&str, &str)> = request
        .query
        .iter()
        .filter(|(k, _)| sub_resources.binary_search(&k.as_str()).is_ok())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    signed.sort_unstable();
    for (i, (k, v)) in signed.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(k);
        if !v.is_empty() {
            resource.push('=');
            resource.push_str(v);
        }
    }
    resource
}

/// The `x-oss-*` headers as `name:value\n`, sorted by lower-case name.
fn canonical_oss_headers(request: &OssRequest<'_>) -> String {
    let mut headers = BTreeMap::new();
    for name in request.headers.keys() {
        // `HeaderName` is always lower case.
        if name.as_str().starts_with(X_OSS_PREFIX) {
            headers.insert(name.as_str(), request.header_joined(name.as_str()).unwrap_or_default());
        }
    }
    headers.into_iter().map(|(k, v)| format!("{k}:{v}\n")).collect()
}

/// The string to sign, with `date` in the Date slot.
pub fn string_to_sign(request: &OssRequest<'_>, date: &str) -> String {
    string_to_sign_over(request, date, SubResourceList::Full)
}

/// The string to sign over a chosen sub-resource list.
pub fn string_to_sign_over(request: &OssRequest<'_>, date: &str, list: SubResourceList) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        request.method,
        request.header_joined("content-md5").unwrap_or_default(),
        request.header_joined("content-type").unwrap_or_default(),
        date,
        canonical_oss_headers(request),
        canonical_resource_over(request, list)
    )
}

/// The Date slot of a header signature: `x-oss-date` if sent, else `Date`.
pub fn header_date(request: &OssRequest<'_>) -> String {
    request.header_joined(X_OSS_DATE).or_else(|| request.header_joined("date")).unwrap_or_default()
}

/// The Base64 signature of `string_to_sign`.
pub fn sign(secret: &AccessKeySecret, string_to_sign: &str) -> String {
    base64_encode(&hmac_sha1(secret.expose().as_bytes(), string_to_sign.as_bytes()))
}

/// The `Authorization` value for a request whose `Date` (or `x-oss-date`) and token headers are set.
pub fn authorization(request: &OssRequest<'_>, access_key_id: &str, secret: &AccessKeySecret) -> String {
    let signature = sign(secret, &string_to_sign(request, &header_date(request)));
    format!("OSS {access_key_id}:{signature}")
}

/// The query parameters to append to a presigned URL expiring at `expires` (Unix seconds). With a
/// token, `request.query` must already hold `security-token` (it is a signed sub-resource); pass it
/// again here and it is returned in the list so the URL carries it.
pub fn presign_query(
    request: &OssRequest<'_>,
    access_key_id: &str,
    secret: &AccessKeySecret,
    expires: u64,
    security_token: Option<&SecurityToken>,
) -> Vec<(String, String)> {
    let expires = expires.to_string();
    let signature = sign(secret, &string_to_sign(request, &expires));
    let mut query = Vec::with_capacity(4);
    if let Some(token) = security_token {
        query.push((SECURITY_TOKEN.to_owned(), token.expose().to_owned()));
    }
    query.push((OSS_ACCESS_KEY_ID.to_owned(), access_key_id.to_owned()));
    query.push((EXPIRES.to_owned(), expires));
    query.push((SIGNATURE.to_owned(), signature));
    query
}

/// Verifies `signature` (Base64, as sent) with `date` in the Date slot.
///
/// The full sub-resource list is tried first. If that fails and the query holds a parameter that only
/// the full list signs, the reading of alibabacloud-oss-v2 is tried too: both official clients must
/// work. Such parameters (`x-oss-process`, `x-oss-traffic-limit`…) change nothing on the upload path.
/// A failure reports the full-list string to sign.
pub fn verify(
    request: &OssRequest<'_>,
    date: &str,
    signature: &str,
    secret: &AccessKeySecret,
) -> Result<(), SignatureError> {
    let full = verify_string(secret, &string_to_sign(request, date), signature);
    let differs = request
        .query
        .iter()
        .any(|(k, _)| is_sub_resource(k) && SUB_RESOURCES_V2.binary_search(&k.as_str()).is_err());
    if full.is_ok() || !differs {
        return full;
    }
    verify_string(secret, &string_to_sign_over(request, date, SubResourceList::OssV2Client), signature)
        .or(full)
}

/// Verifies `signature` over an already built string to sign.
pub fn verify_string(
    secret: &AccessKeySecret,
    string_to_sign: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    check_base64_signature(
        signature,
        &hmac_sha1(secret.expose().as_bytes(), string_to_sign.as_bytes()),
        string_to_sign,
    )
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

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const DATE: &str = "Wed, 25 Nov 2026 08:00:00 GMT";

    #[test]
    fn sub_resources_are_sorted_for_binary_search() {
        assert!(SUB_RESOURCES.windows(2).all(|w| w[0] < w[1]));
        assert!(SUB_RESOURCES_V2.windows(2).all(|w| w[0] < w[1]));
        assert!(SUB_RESOURCES_V2.iter().all(|name| is_sub_resource(name)));
        assert!(is_sub_resource("uploadId") && is_sub_resource("security-token"));
        assert!(!is_sub_resource("encoding-type") && !is_sub_resource("max-parts"));
    }

    // oss-api.md §6.5, V1-a.
    #[test]
    fn spec_example_initiate() {
        let headers = headers(&[
            ("content-type", "video/mp4"),
            ("date", DATE),
            ("x-oss-security-token", "CAIS-example-token"),
        ]);
        let query = query(&[("uploads", "")]);
        let request = OssRequest {
            method: "POST",
            bucket: Some("examplebucket"),
            key: Some("sv/video.mp4"),
            query: &query,
            headers: &headers,
        };
        assert_eq!(
            string_to_sign(&request, &header_date(&request)),
            "POST\n\nvideo/mp4\nWed, 25 Nov 2026 08:00:00 GMT\nx-oss-security-token:CAIS-example-token\n/examplebucket/sv/video.mp4?uploads"
        );
        let secret = Secret::new("ExampleSecretKey123");
        assert_eq!(
            authorization(&request, "STS.NTestExampleAK", &secret),
            "OSS STS.NTestExampleAK:B6K4uuwTBNo7/DvU+UvMa2eiXvA="
        );
    }

    // oss-api.md §6.5, V1-b.
    #[test]
    fn spec_example_upload_part() {
        let headers = headers(&[("date", DATE), ("x-oss-security-token", "CAIS-example-token")]);
        let query =
            query(&[("partNumber", "1"), ("uploadId", "0004B9895DBBB6EC98E36"), ("encoding-type", "url")]);
        let request = OssRequest {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("sv/video.mp4"),
            query: &query,
            headers: &headers,
        };
        let secret = Secret::new("ExampleSecretKey123");
        assert_eq!(
            authorization(&request, "STS.NTestExampleAK", &secret),
            "OSS STS.NTestExampleAK:KzYlhtezxkVOF2JRGa2esL0m2DE="
        );
        verify(&request, DATE, "KzYlhtezxkVOF2JRGa2esL0m2DE=", &secret).unwrap();
    }

    // oss-api.md §6.5, V1-c.
    #[test]
    fn spec_example_presigned_put() {
        let headers = HeaderMap::new();
        let query = query(&[("security-token", "CAIS-example-token")]);
        let request = OssRequest {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("sv/video.mp4"),
            query: &query,
            headers: &headers,
        };
        assert_eq!(
            string_to_sign(&request, "1795680000"),
            "PUT\n\n\n1795680000\n/examplebucket/sv/video.mp4?security-token=CAIS-example-token"
        );
        let token = Secret::new("CAIS-example-token");
        let params = presign_query(
            &request,
            "STS.NTestExampleAK",
            &Secret::new("ExampleSecretKey123"),
            1_795_680_000,
            Some(&token),
        );
        assert_eq!(
            crate::encoding::query_encode(&params),
            "security-token=CAIS-example-token&OSSAccessKeyId=STS.NTestExampleAK&Expires=1795680000&Signature=EBrPaNNc4jPafE9uY3qKh1o1%2FPM%3D"
        );
    }

    #[test]
    fn resource_forms() {
        let headers = HeaderMap::new();
        let empty = Vec::new();
        let mut request =
            OssRequest { method: "GET", bucket: None, key: None, query: &empty, headers: &headers };
        assert_eq!(canonical_resource(&request), "/");
        request.bucket = Some("b");
        assert_eq!(canonical_resource(&request), "/b/");
        let query = query(&[("uploads", ""), ("max-uploads", "1000"), ("prefix", "a")]);
        request.query = &query;
        assert_eq!(canonical_resource(&request), "/b/?uploads");
    }
}
