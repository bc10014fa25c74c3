//! Which credential an OSS request carries, parsed before any key lookup: a V1 or V4 `Authorization`
//! header, a V1 or V4 presigned URL, or nothing. The service looks up the secret for
//! [`OssCredential::access_key_id`] and then calls [`OssCredential::verify`]; expiry and clock-skew
//! rules are in [`crate::oss::validity`], which reads the instants from [`OssCredential::signed_at`] and
//! [`OssCredential::expires_at`]. [`unsupported_payload_hash`] is the one body claim a request can make.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::SignatureError;
use crate::oss::header::{
    EXPIRES, OSS_ACCESS_KEY_ID, SECURITY_TOKEN, SIGNATURE, UNSIGNED_PAYLOAD, X_OSS_ADDITIONAL_HEADERS,
    X_OSS_CONTENT_SHA256, X_OSS_CREDENTIAL, X_OSS_DATE, X_OSS_EXPIRES, X_OSS_SECURITY_TOKEN, X_OSS_SIGNATURE,
    X_OSS_SIGNATURE_VERSION,
};
use crate::oss::request::OssRequest;
use crate::oss::{signature_v1, signature_v4, validity};
use crate::secret::AccessKeySecret;
use crate::timestamp;

/// The scope of a V4 credential: `YYYYMMDD/region/product/aliyun_v4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4Scope {
    /// `YYYYMMDD`.
    pub date: String,
    /// The region the request was signed for.
    pub region: String,
    /// `oss` (or `oss-cloudbox`).
    pub product: String,
}

impl FromStr for V4Scope {
    type Err = SignatureError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        let [date, region, product, terminator] = parts.as_slice() else {
            return Err(SignatureError::malformed(
                "credential scope",
                format!("{text:?} is not date/region/product/{}", signature_v4::TERMINATOR),
            ));
        };
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignatureError::malformed(
                "credential scope",
                format!("date {date:?} is not YYYYMMDD"),
            ));
        }
        if *terminator != signature_v4::TERMINATOR || region.is_empty() || product.is_empty() {
            return Err(SignatureError::malformed(
                "credential scope",
                format!("{text:?} is not date/region/product/{}", signature_v4::TERMINATOR),
            ));
        }
        Ok(Self { date: (*date).to_owned(), region: (*region).to_owned(), product: (*product).to_owned() })
    }
}

impl fmt::Display for V4Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&signature_v4::scope(&self.date, &self.region, &self.product))
    }
}

/// The credential a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OssCredential {
    /// No `Authorization` header and no presign parameters.
    Anonymous,
    /// `Authorization: OSS ak:signature`.
    V1Header {
        /// The AccessKeyId.
        access_key_id: String,
        /// Base64, as sent.
        signature: String,
    },
    /// `?OSSAccessKeyId=&Expires=&Signature=`.
    V1Presign {
        /// The AccessKeyId.
        access_key_id: String,
        /// `Expires` as sent (absolute Unix seconds); it is signed verbatim.
        expires: String,
        /// Base64, as sent.
        signature: String,
    },
    /// `Authorization: OSS4-HMAC-SHA256 Credential=…, Signature=…[, AdditionalHeaders=…]`.
    V4Header {
        /// The AccessKeyId.
        access_key_id: String,
        /// The credential scope.
        scope: V4Scope,
        /// Extra signed header names, in the order listed.
        additional_headers: Vec<String>,
        /// The `x-oss-date` header as sent.
        oss_date: String,
        /// Hex, as sent.
        signature: String,
    },
    /// `?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=…&x-oss-date=…&x-oss-expires=…`.
    V4Presign {
        /// The AccessKeyId.
        access_key_id: String,
        /// The credential scope.
        scope: V4Scope,
        /// Extra signed header names.
        additional_headers: Vec<String>,
        /// `x-oss-date` as sent.
        oss_date: String,
        /// Lifetime in seconds from `oss_date`.
        expires_in: u64,
        /// Hex, as sent.
        signature: String,
    },
}

impl OssCredential {
    /// Finds the credential in a request. Anything half-present (an `Authorization` header of an unknown
    /// scheme, a presigned URL missing a parameter) is an error rather than anonymous.
    pub fn from_request(request: &OssRequest<'_>) -> Result<Self, SignatureError> {
        if let Some(value) = request.headers.get(http::header::AUTHORIZATION) {
            let value =
                value.to_str().map_err(|_| SignatureError::malformed("Authorization", "not ASCII"))?;
            return Self::from_authorization_header(value, request);
        }
        if request.query_value(X_OSS_SIGNATURE_VERSION).is_some()
            || request.query_value(X_OSS_SIGNATURE).is_some()
        {
            return Self::v4_presign(request);
        }
        if request.query_value(OSS_ACCESS_KEY_ID).is_some() || request.query_value(SIGNATURE).is_some() {
            let required =
                |name: &'static str| request.query_value(name).ok_or(SignatureError::Missing(name));
            return Ok(Self::V1Presign {
                access_key_id: non_empty(required(OSS_ACCESS_KEY_ID)?, OSS_ACCESS_KEY_ID)?,
                expires: required(EXPIRES)?.to_owned(),
                signature: required(SIGNATURE)?.to_owned(),
            });
        }
        Ok(Self::Anonymous)
    }

    fn from_authorization_header(value: &str, request: &OssRequest<'_>) -> Result<Self, SignatureError> {
        if let Some(rest) = value.strip_prefix("OSS ") {
            let (access_key_id, signature) = rest.rsplit_once(':').ok_or_else(|| {
                SignatureError::malformed("Authorization", "expected OSS <AccessKeyId>:<Signature>")
            })?;
            return Ok(Self::V1Header {
                access_key_id: non_empty(access_key_id.trim(), "AccessKeyId")?,
                signature: signature.trim().to_owned(),
            });
        }
        if let Some(rest) = value.strip_prefix(signature_v4::ALGORITHM).and_then(|r| r.strip_prefix(' ')) {
            let [credential, signature, additional] =
                crate::auth_header::fields(rest, ["Credential", "Signature", "AdditionalHeaders"], true)?;
            let (access_key_id, scope) =
                split_credential(&credential.ok_or(SignatureError::Missing("Credential"))?)?;
            let oss_date = request.header(X_OSS_DATE);
            if oss_date.is_empty() {
                return Err(SignatureError::Missing(X_OSS_DATE));
            }
            check_scope_date(&scope, oss_date)?;
            return Ok(Self::V4Header {
                access_key_id,
                scope,
                additional_headers: parse_additional_headers(additional.as_deref())?,
                oss_date: oss_date.to_owned(),
                signature: signature.ok_or(SignatureError::Missing("Signature"))?,
            });
        }
        Err(SignatureError::malformed("Authorization", "unknown scheme (expected OSS or OSS4-HMAC-SHA256)"))
    }

    fn v4_presign(request: &OssRequest<'_>) -> Result<Self, SignatureError> {
        let required = |name: &'static str| request.query_value(name).ok_or(SignatureError::Missing(name));
        if required(X_OSS_SIGNATURE_VERSION)? != signature_v4::ALGORITHM {
            return Err(SignatureError::malformed(X_OSS_SIGNATURE_VERSION, "expected OSS4-HMAC-SHA256"));
        }
        let (access_key_id, scope) = split_credential(required(X_OSS_CREDENTIAL)?)?;
        let oss_date = required(X_OSS_DATE)?;
        check_scope_date(&scope, oss_date)?;
        let expires_in = required(X_OSS_EXPIRES)?;
        // Digits beyond what a u64 holds are still a number of seconds, just out of range: saturate, so
        // that the time check refuses them with the out-of-range error rather than "malformed".
        let expires_in = match validity::parse_seconds(expires_in) {
            Some(seconds) => seconds,
            None if !expires_in.is_empty() && expires_in.bytes().all(|b| b.is_ascii_digit()) => u64::MAX,
            None => return Err(SignatureError::malformed(X_OSS_EXPIRES, "not a number of seconds")),
        };
        Ok(Self::V4Presign {
            access_key_id,
            scope,
            additional_headers: parse_additional_headers(request.query_value(X_OSS_ADDITIONAL_HEADERS))?,
            oss_date: oss_date.to_owned(),
            expires_in,
            signature: required(X_OSS_SIGNATURE)?.to_owned(),
        })
    }

    /// The AccessKeyId to look the secret up by, or `None` when anonymous.
    pub fn access_key_id(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::V1Header { access_key_id, .. }
            | Self::V1Presign { access_key_id, .. }
            | Self::V4Header { access_key_id, .. }
            | Self::V4Presign { access_key_id, .. } => Some(access_key_id),
        }
    }

    /// Whether this is a presigned URL (expiry instead of clock skew applies).
    pub fn is_presigned(&self) -> bool {
        matches!(self, Self::V1Presign { .. } | Self::V4Presign { .. })
    }

    /// The region a V4 credential was scoped to.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::V4Header { scope, .. } | Self::V4Presign { scope, .. } => Some(&scope.region),
            _ => None,
        }
    }

    /// When the request says it was signed (`x-oss-date`, else `Date`), for the clock-skew check of
    /// header signatures and the start of a V4 URL's validity.
    pub fn signed_at(&self, request: &OssRequest<'_>) -> Option<SystemTime> {
        match self {
            Self::Anonymous | Self::V1Presign { .. } => None,
            Self::V1Header { .. } => {
                let date = signature_v1::header_date(request);
                timestamp::parse_oss_v4_date(&date).or_else(|| timestamp::parse_http_date(&date))
            }
            Self::V4Header { oss_date, .. } | Self::V4Presign { oss_date, .. } => {
                timestamp::parse_oss_v4_date(oss_date)
            }
        }
    }

    /// When a presigned URL stops being valid, or `None` for header signatures and for expiries that are
    /// unreadable or past year 9999 (the numbers come off the wire: no arithmetic on them is unchecked).
    pub fn expires_at(&self) -> Option<SystemTime> {
        match self {
            Self::V1Presign { expires, .. } => {
                validity::parse_seconds(expires).and_then(timestamp::checked_from_unix_seconds)
            }
            Self::V4Presign { oss_date, expires_in, .. } => timestamp::parse_oss_v4_date(oss_date)
                .and_then(|t| t.checked_add(Duration::from_secs(*expires_in)))
                .filter(|t| timestamp::unix_seconds(*t) <= timestamp::MAX_UNIX_SECONDS),
            _ => None,
        }
    }

    /// Verifies the signature with the secret of [`Self::access_key_id`]. Anonymous requests have no
    /// signature to verify and are an error here.
    pub fn verify(&self, request: &OssRequest<'_>, secret: &AccessKeySecret) -> Result<(), SignatureError> {
        match self {
            Self::Anonymous => Err(SignatureError::Missing("Authorization")),
            Self::V1Header { signature, .. } => {
                signature_v1::verify(request, &signature_v1::header_date(request), signature, secret)
            }
            Self::V1Presign { expires, signature, .. } => {
                // The presign parameters themselves are not sub-resources, except `security-token`.
                signature_v1::verify(request, expires, signature, secret)
            }
            Self::V4Header { scope, additional_headers, oss_date, signature, .. } => {
                // The payload line is always UNSIGNED-PAYLOAD: nothing here hashes the body, so a signature
                // over any other claimed hash must not verify (see [`unsupported_payload_hash`]).
                if let Some(claimed) = unsupported_payload_hash(request) {
                    return Err(SignatureError::malformed(
                        X_OSS_CONTENT_SHA256,
                        format!("{claimed:?} is not supported; only {UNSIGNED_PAYLOAD} is"),
                    ));
                }
                signature_v4::verify(
                    request,
                    oss_date,
                    scope,
                    additional_headers,
                    UNSIGNED_PAYLOAD,
                    signature,
                    secret,
                )
            }
            Self::V4Presign { scope, additional_headers, oss_date, signature, .. } => signature_v4::verify(
                request,
                oss_date,
                scope,
                additional_headers,
                UNSIGNED_PAYLOAD,
                signature,
                secret,
            ),
        }
    }
}

/// The `x-oss-content-sha256` a request claims, when it claims anything but `UNSIGNED-PAYLOAD` (or sends
/// the header more than once).
///
/// OSS accepts only `UNSIGNED-PAYLOAD` here (400 `InvalidArgument`, EC 0002-00000214, "only supports
/// UNSIGNED-PAYLOAD"), and every official client sends exactly that: alibabacloud-oss-v2
/// (`signer/v4.py`), oss2 (`auth.py`, `ProviderAuthV4`) and ali-oss (`authorizationV4`). Verifying a real
/// digest would mean buffering or re-reading the body before answering; refusing it is what OSS does, and a
/// claimed digest is then never silently ignored. Absent, the payload is unsigned as well.
pub fn unsupported_payload_hash<'a>(request: &OssRequest<'a>) -> Option<String> {
    let value = request.header_joined(X_OSS_CONTENT_SHA256)?;
    (value != UNSIGNED_PAYLOAD).then_some(value)
}

/// The STS token a request carries, from wherever the official clients put it (oss-api.md §6.6): the
/// `x-oss-security-token` header, the plain `security-token` header (alibabacloud-oss-v2 with V1), or the
/// `security-token` / `x-oss-security-token` query parameter of a presigned URL.
pub fn security_token<'a>(request: &OssRequest<'a>) -> Option<&'a str> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let query = |name: &str| request.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    header(X_OSS_SECURITY_TOKEN)
        .or_else(|| header(SECURITY_TOKEN))
        .or_else(|| query(SECURITY_TOKEN))
        .or_else(|| query(X_OSS_SECURITY_TOKEN))
        .filter(|t| !t.is_empty())
}

fn non_empty(value: &str, what: &'static str) -> Result<String, SignatureError> {
    if value.is_empty() { Err(SignatureError::Missing(what)) } else { Ok(value.to_owned()) }
}

/// `AK/date/region/product/aliyun_v4_request`; the scope is the last four elements.
fn split_credential(credential: &str) -> Result<(String, V4Scope), SignatureError> {
    let mut split = credential.rsplitn(5, '/').collect::<Vec<_>>();
    if split.len() != 5 {
        return Err(SignatureError::malformed(
            "Credential",
            "expected AccessKeyId/date/region/product/aliyun_v4_request",
        ));
    }
    split.reverse();
    let access_key_id = non_empty(split[0], "AccessKeyId")?;
    let scope = split[1..].join("/").parse()?;
    Ok((access_key_id, scope))
}

fn check_scope_date(scope: &V4Scope, oss_date: &str) -> Result<(), SignatureError> {
    if timestamp::parse_oss_v4_date(oss_date).is_none() {
        return Err(SignatureError::malformed(X_OSS_DATE, format!("{oss_date:?} is not YYYYMMDDTHHMMSSZ")));
    }
    if !oss_date.starts_with(&scope.date) {
        return Err(SignatureError::malformed("credential scope", "scope date differs from x-oss-date"));
    }
    Ok(())
}

/// `a;b` into names, lower-cased and sorted: both official clients build the canonical request from
/// the sorted list, whatever order oss2 writes into the header (it sorts by first letter only). An
/// empty name is an error, as in OSS (EC 0002-00000209).
fn parse_additional_headers(value: Option<&str>) -> Result<Vec<String>, SignatureError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let mut names: Vec<String> = value.split(';').map(|n| n.trim().to_ascii_lowercase()).collect();
    if names.iter().any(String::is_empty) {
        return Err(SignatureError::malformed("AdditionalHeaders", "empty header name"));
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn request<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> OssRequest<'a> {
        OssRequest { method: "PUT", bucket: Some("b"), key: Some("k"), query, headers }
    }

    #[test]
    fn anonymous_without_credentials() {
        let headers = HeaderMap::new();
        assert_eq!(OssCredential::from_request(&request(&headers, &[])).unwrap(), OssCredential::Anonymous);
    }

    #[test]
    fn parses_v1_header() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("OSS STS.ak:c2ln"));
        let cred = OssCredential::from_request(&request(&headers, &[])).unwrap();
        assert_eq!(
            cred,
            OssCredential::V1Header { access_key_id: "STS.ak".into(), signature: "c2ln".into() }
        );
    }

    #[test]
    fn parses_v4_header_in_either_field_order() {
        for value in [
            "OSS4-HMAC-SHA256 Credential=AK/20261125/cn-shanghai/oss/aliyun_v4_request, Signature=ab, AdditionalHeaders=host",
            "OSS4-HMAC-SHA256 Credential=AK/20261125/cn-shanghai/oss/aliyun_v4_request,AdditionalHeaders=host,Signature=ab",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
            headers.insert("x-oss-date", HeaderValue::from_static("20261125T080000Z"));
            let cred = OssCredential::from_request(&request(&headers, &[])).unwrap();
            let OssCredential::V4Header { access_key_id, scope, additional_headers, signature, .. } = cred
            else {
                panic!("not V4: {cred:?}")
            };
            assert_eq!((access_key_id.as_str(), signature.as_str()), ("AK", "ab"));
            assert_eq!(scope.region, "cn-shanghai");
            assert_eq!(additional_headers, vec!["host".to_owned()]);
        }
    }

    // oss2 writes AdditionalHeaders sorted by first letter only; the signature covers the sorted list.
    #[test]
    fn additional_headers_are_sorted_for_signing() {
        assert_eq!(
            parse_additional_headers(Some("host;Cache-Control;content-disposition")).unwrap(),
            vec!["cache-control".to_owned(), "content-disposition".to_owned(), "host".to_owned()]
        );
        assert!(parse_additional_headers(Some("host;")).is_err());
    }

    #[test]
    fn v4_scope_date_must_match_x_oss_date() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "OSS4-HMAC-SHA256 Credential=AK/20261124/cn-shanghai/oss/aliyun_v4_request,Signature=ab",
            ),
        );
        headers.insert("x-oss-date", HeaderValue::from_static("20261125T080000Z"));
        assert!(OssCredential::from_request(&request(&headers, &[])).is_err());
    }

    #[test]
    fn refuses_malformed_credentials() {
        for value in ["Bearer x", "OSS nocolon", "OSS :sig", "OSS4-HMAC-SHA256 Credential=AK/x,Signature=ab"]
        {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(value).unwrap());
            headers.insert("x-oss-date", HeaderValue::from_static("20261125T080000Z"));
            assert!(OssCredential::from_request(&request(&headers, &[])).is_err(), "{value}");
        }
        let headers = HeaderMap::new();
        let query = vec![("OSSAccessKeyId".to_owned(), "ak".to_owned())];
        assert_eq!(
            OssCredential::from_request(&request(&headers, &query)),
            Err(SignatureError::Missing("Expires"))
        );
    }

    #[test]
    fn presign_expiry_instants() {
        let headers = HeaderMap::new();
        let query: Vec<(String, String)> = [
            ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
            ("x-oss-credential", "AK/20261125/cn-hangzhou/oss/aliyun_v4_request"),
            ("x-oss-date", "20261125T080000Z"),
            ("x-oss-expires", "900"),
            ("x-oss-signature", "ab"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec();
        let cred = OssCredential::from_request(&request(&headers, &query)).unwrap();
        assert_eq!(cred.expires_at(), Some(timestamp::from_unix_seconds(1_795_594_500)));
        assert!(cred.is_presigned());
    }

    // See: issue 11. `Expires=10000000000000000000` and `x-oss-expires=u64::MAX` once panicked here.
    #[test]
    fn absurd_expiries_are_none_not_a_panic() {
        let headers = HeaderMap::new();
        let v1 = |expires: &str| {
            let query: Vec<(String, String)> =
                [("OSSAccessKeyId", "ak"), ("Expires", expires), ("Signature", "AAAA")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .to_vec();
            OssCredential::from_request(&request(&headers, &query)).unwrap().expires_at()
        };
        assert_eq!(v1("10000000000000000000"), None);
        assert_eq!(v1("18446744073709551615"), None);
        assert_eq!(v1("99999999999999999999999"), None);
        assert_eq!(v1("1795594500"), Some(timestamp::from_unix_seconds(1_795_594_500)));
        for expires in ["18446744073709551615", "9223372036854775807", "99999999999999999999999"] {
            let query: Vec<(String, String)> = [
                ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
                ("x-oss-credential", "AK/99991231/cn-hangzhou/oss/aliyun_v4_request"),
                ("x-oss-date", "99991231T235959Z"),
                ("x-oss-expires", expires),
                ("x-oss-signature", "ab"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec();
            let cred = OssCredential::from_request(&request(&headers, &query)).unwrap();
            assert_eq!(cred.expires_at(), None, "{expires}");
        }
    }

    #[test]
    fn only_unsigned_payload_may_be_claimed() {
        let mut headers = HeaderMap::new();
        assert_eq!(unsupported_payload_hash(&request(&headers, &[])), None);
        headers.insert("x-oss-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        assert_eq!(unsupported_payload_hash(&request(&headers, &[])), None);
        headers.append("x-oss-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        assert!(unsupported_payload_hash(&request(&headers, &[])).is_some(), "repeated");
        let digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        headers.insert("x-oss-content-sha256", HeaderValue::from_static(digest));
        assert_eq!(unsupported_payload_hash(&request(&headers, &[])).as_deref(), Some(digest));
    }

    #[test]
    fn security_token_from_every_place_clients_put_it() {
        let mut headers = HeaderMap::new();
        headers.insert("security-token", HeaderValue::from_static("plain"));
        assert_eq!(security_token(&request(&headers, &[])), Some("plain"));
        headers.insert("x-oss-security-token", HeaderValue::from_static("oss"));
        assert_eq!(security_token(&request(&headers, &[])), Some("oss"));
        let empty = HeaderMap::new();
        let query = vec![("security-token".to_owned(), "q".to_owned())];
        assert_eq!(security_token(&request(&empty, &query)), Some("q"));
    }
}
