//! OSS header and query names, spelled once as they appear on the wire.

/// The STS token header (covered by the signature as an `x-oss-*` header).
pub const X_OSS_SECURITY_TOKEN: &str = "x-oss-security-token";
/// The plain token header that alibabacloud-oss-v2 sends when it signs with V1 (oss-api.md §6.6).
pub const SECURITY_TOKEN: &str = "security-token";
/// The V4 signing time, `YYYYMMDDTHHMMSSZ` (header or presign query).
pub const X_OSS_DATE: &str = "x-oss-date";
/// The V4 payload hash header; the official clients always send `UNSIGNED-PAYLOAD`.
pub const X_OSS_CONTENT_SHA256: &str = "x-oss-content-sha256";
/// The value of [`X_OSS_CONTENT_SHA256`] that leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// CRC-64/XZ of the body or object, unsigned decimal.
pub const X_OSS_HASH_CRC64ECMA: &str = "x-oss-hash-crc64ecma";
/// The request id on every response.
pub const X_OSS_REQUEST_ID: &str = "x-oss-request-id";
/// `Normal`, `Multipart` or `Appendable`.
pub const X_OSS_OBJECT_TYPE: &str = "x-oss-object-type";
/// The error XML of a HEAD response, Base64-encoded (HEAD has no body).
pub const X_OSS_ERR: &str = "x-oss-err";
/// The error's EC code, optional.
pub const X_OSS_EC: &str = "x-oss-ec";
/// The storage class of an object.
pub const X_OSS_STORAGE_CLASS: &str = "x-oss-storage-class";
/// User metadata header prefix.
pub const X_OSS_META_PREFIX: &str = "x-oss-meta-";
/// Prefix of every OSS-specific header.
pub const X_OSS_PREFIX: &str = "x-oss-";

/// V1 presign query: the AccessKeyId.
pub const OSS_ACCESS_KEY_ID: &str = "OSSAccessKeyId";
/// V1 presign query: absolute expiry in Unix seconds.
pub const EXPIRES: &str = "Expires";
/// V1 presign query: the signature.
pub const SIGNATURE: &str = "Signature";
/// V4 presign query: `OSS4-HMAC-SHA256`.
pub const X_OSS_SIGNATURE_VERSION: &str = "x-oss-signature-version";
/// V4 presign query: `AK/date/region/oss/aliyun_v4_request`.
pub const X_OSS_CREDENTIAL: &str = "x-oss-credential";
/// V4 presign query: lifetime in seconds from `x-oss-date`.
pub const X_OSS_EXPIRES: &str = "x-oss-expires";
/// V4 presign query: extra signed header names.
pub const X_OSS_ADDITIONAL_HEADERS: &str = "x-oss-additional-headers";
/// V4 presign query: the signature.
pub const X_OSS_SIGNATURE: &str = "x-oss-signature";
