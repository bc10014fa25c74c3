//! ACS3-HMAC-SHA256, the default signature of the current generated VOD SDKs (tea-openapi), as
//! described in vod-api.md §2.2.
//!
//! The request carries only API parameters in its query; `Action`, version, date and nonce travel in
//! `x-acs-*` headers, and `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`
//! names the headers it covers. The verifier takes the header list from the request and the values as
//! received, and hashes the body it actually got, so a swapped body fails.

use http::HeaderMap;

use crate::SignatureError;
use crate::encoding::percent_encode;
use crate::mac::{check_hex_signature, hmac_sha256, sha256_hex};
use crate::secret::AccessKeySecret;

/// The algorithm name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Header carrying the lower-case hex SHA-256 of the body.
pub const X_ACS_CONTENT_SHA256: &str = "x-acs-content-sha256";
/// Header carrying the action name.
pub const X_ACS_ACTION: &str = "x-acs-action";
/// Header carrying the API version.
pub const X_ACS_VERSION: &str = "x-acs-version";
/// Header carrying the signing time, `YYYY-MM-DDThh:mm:ssZ`.
pub const X_ACS_DATE: &str = "x-acs-date";
/// Header carrying the nonce.
pub const X_ACS_SIGNATURE_NONCE: &str = "x-acs-signature-nonce";
/// Header carrying an STS security token.
pub const X_ACS_SECURITY_TOKEN: &str = "x-acs-security-token";

/// A parsed `Authorization: ACS3-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    /// `Credential=`: the AccessKeyId.
    pub access_key_id: String,
    /// `SignedHeaders=`: lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    /// `Signature=`: lower-case hex, as sent.
    pub signature: String,
}

impl Acs3Authorization {
    /// Parses the header value. Fields are comma-separated `Name=value` pairs in any order.
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        let rest =
            value.strip_prefix(ALGORITHM).and_then(|rest| rest.strip_prefix(' ')).ok_or_else(|| {
                SignatureError::malformed("Authorization", format!("does not start with {ALGORITHM}"))
            })?;
        let [credential, signed_headers, signature] =
            crate::auth_header::fields(rest, ["Credential", "SignedHeaders", "Signature"], false)?;
        let access_key_id =
            credential.filter(|c| !c.is_empty()).ok_or(SignatureError::Missing("Credential"))?;
        let signed_headers = signed_headers.ok_or(SignatureError::Missing("SignedHeaders"))?;
        let signature = signature.ok_or(SignatureError::Missing("Signature"))?;
        let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
        if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
            return Err(SignatureError::malformed("SignedHeaders", "names must be non-empty lower case"));
        }
        Ok(Self { access_key_id, signed_headers, signature })
    }

    /// The header value.
    pub fn to_header_value(&self) -> String {
        format!(
            "{ALGORITHM} Credential={},SignedHeaders={},Signature={}",
            self.access_key_id,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

/// The parts of an RPC request that ACS3 covers.
#[derive(Debug, Clone, Copy)]
pub struct Acs3Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// URL path, `/` for RPC.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Request headers as received (or as about to be sent).
    pub headers: &'a HeaderMap,
    /// Lower-case hex SHA-256 of the body.
    pub hashed_payload: &'a str,
}

/// The canonical request over `signed_headers`. A signed header that the request lacks is an error.
pub fn canonical_request(
    request: &Acs3Request<'_>,
    signed_headers: &[String],
) -> Result<String, SignatureError> {
    let mut query: Vec<(&str, &str)> = request.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    query.sort_unstable();
    let canonical_query =
        query.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>();
    let mut out = format!("{}\n{}\n{}\n", request.method, request.path, canonical_query.join("&"));
    for name in signed_headers {
        let mut values = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().map(str::trim))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                SignatureError::malformed("signed header", format!("{name} is not visible ASCII"))
            })?;
        if values.is_empty() {
            return Err(SignatureError::malformed("SignedHeaders", format!("{name} is signed but not sent")));
        }
        values.sort_unstable();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(request.hashed_payload);
    Ok(out)
}

/// The string to sign: the algorithm and the hex SHA-256 of the canonical request.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The lower-case hex signature of `string_to_sign`.
pub fn sign(secret: &AccessKeySecret, string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(secret.expose().as_bytes(), string_to_sign.as_bytes()))
}

/// Signs `request` over every header in `signed_headers` and returns the `Authorization` value.
pub fn authorization(
    request: &Acs3Request<'_>,
    access_key_id: &str,
    secret: &AccessKeySecret,
    mut signed_headers: Vec<String>,
) -> Result<Acs3Authorization, SignatureError> {
    signed_headers.sort_unstable();
    signed_headers.dedup();
    let canonical = canonical_request(request, &signed_headers)?;
    let signature = sign(secret, &string_to_sign(&canonical));
    Ok(Acs3Authorization { access_key_id: access_key_id.to_owned(), signed_headers, signature })
}

/// Verifies `request` against its parsed `Authorization`. `body` is the body as received; its hash is
/// what the signature must cover.
pub fn verify(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    authorization: &Acs3Authorization,
    secret: &AccessKeySecret,
) -> Result<(), SignatureError> {
    let hashed_payload = sha256_hex(body);
    let request = Acs3Request { method, path, query, headers, hashed_payload: &hashed_payload };
    let canonical = canonical_request(&request, &authorization.signed_headers)?;
    let string_to_sign = string_to_sign(&canonical);
    verify_string(secret, &string_to_sign, &authorization.signature)
}

/// Verifies `signature` (hex, as sent) over an already built string to sign.
pub fn verify_string(
    secret: &AccessKeySecret,
    string_to_sign: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    check_hex_signature(
        signature,
        &hmac_sha256(secret.expose().as_bytes(), string_to_sign.as_bytes()),
        string_to_sign,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use http::HeaderValue;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// The worked example of vod-api.md §2.2 (alibabacloud-tea-openapi 0.4.6).
    fn example() -> (Vec<(String, String)>, HeaderMap) {
        let query = [("Title", "My video 测试*~"), ("FileName", "a b.mp4"), ("CateId", "1000")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec();
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("host", "vod.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "CreateUploadVideo"),
            ("x-acs-version", "2017-03-21"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            ("x-acs-signature-nonce", "3ee8c1b883d344afa94f4e0ad82fd6cf"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("accept", "application/json"),
            ("user-agent", "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"),
        ] {
            headers.insert(k, HeaderValue::from_static(v));
        }
        (query, headers)
    }

    const EXAMPLE_AUTHORIZATION: &str = "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=5dca19d6a681738135933202c6967abb1660479b7b7f816831c7db0fa9ffdfb7";

    #[test]
    fn spec_example_canonical_request_and_authorization() {
        let (query, headers) = example();
        let request = Acs3Request {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            hashed_payload: EMPTY_SHA256,
        };
        let signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        let auth = authorization(&request, "testid", &Secret::new("testsecret"), signed).unwrap();
        let canonical = canonical_request(&request, &auth.signed_headers).unwrap();
        assert_eq!(
            canonical,
            "POST\n/\nCateId=1000&FileName=a%20b.mp4&Title=My%20video%20%E6%B5%8B%E8%AF%95%2A~\naccept:application/json\nhost:vod.cn-shanghai.aliyuncs.com\nuser-agent:AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2\nx-acs-action:CreateUploadVideo\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2024-01-01T12:00:00Z\nx-acs-signature-nonce:3ee8c1b883d344afa94f4e0ad82fd6cf\nx-acs-version:2017-03-21\n\naccept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(&canonical),
            "ACS3-HMAC-SHA256\n4fcb4ea9c72e7eabc95b063536c28c634c985b75018b10fe684a8b40bc733ea7"
        );
        assert_eq!(auth.to_header_value(), EXAMPLE_AUTHORIZATION);
    }

    #[test]
    fn verify_accepts_the_example_and_refuses_a_changed_body() {
        let (query, headers) = example();
        let auth = Acs3Authorization::parse(EXAMPLE_AUTHORIZATION).unwrap();
        let secret = Secret::new("testsecret");
        verify("POST", "/", &query, &headers, b"", &auth, &secret).unwrap();
        let err = verify("POST", "/", &query, &headers, b"x", &auth, &secret).unwrap_err();
        assert!(matches!(err, SignatureError::Mismatch { .. }));
    }

    #[test]
    fn a_signed_header_that_is_missing_is_malformed() {
        let (query, mut headers) = example();
        headers.remove("accept");
        let auth = Acs3Authorization::parse(EXAMPLE_AUTHORIZATION).unwrap();
        let err = verify("POST", "/", &query, &headers, b"", &auth, &Secret::new("testsecret")).unwrap_err();
        assert!(matches!(err, SignatureError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn authorization_parsing_is_strict() {
        assert!(
            Acs3Authorization::parse("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=00").is_ok()
        );
        for bad in [
            "HMAC Credential=a,SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=00",
        ] {
            assert!(Acs3Authorization::parse(bad).is_err(), "{bad}");
        }
    }
}
