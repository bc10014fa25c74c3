//! Pure OSS request builders (opendal's `oss_*_request` shape): method, URL and signed headers for one
//! operation, from the target bucket, the object key and the temporary credentials. No I/O; time comes
//! in as an argument, so the builders are tested against the proto verifier.
//!
//! Wire rules, as alibabacloud-oss-v2 1.4 sends them (oss-api.md §1, §2, §6.3, §8): V4 signature with
//! `x-oss-content-sha256: UNSIGNED-PAYLOAD`, `x-oss-date` and `Date`; the STS token in
//! `x-oss-security-token`; virtual-host style for DNS endpoints and path style for IP literals and
//! `localhost`; `/` kept literal in the key; query values RFC 3986-encoded.

use std::net::IpAddr;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use reqwest::Url;
use vodup_proto::encoding::{percent_encode, percent_encode_path};
use vodup_proto::oss::header::{UNSIGNED_PAYLOAD, X_OSS_CONTENT_SHA256, X_OSS_DATE, X_OSS_SECURITY_TOKEN};
use vodup_proto::oss::{OssRequest, signature_v4};
use vodup_proto::timestamp::{http_date, oss_v4_date};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::{Secret, timestamp};

use crate::error::{Error, Result};

/// Where objects go: the endpoint, bucket and signing region of an UploadAddress/UploadAuth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssTarget {
    /// The endpoint URL, scheme included.
    pub endpoint: Url,
    /// The bucket.
    pub bucket: String,
    /// The V4 signing region.
    pub region: String,
    /// Virtual-host style (`bucket.host/key`) rather than path style (`host/bucket/key`).
    pub virtual_host: bool,
}

impl OssTarget {
    /// The target of an UploadAddress, signed for the UploadAuth's region (or the one in the endpoint's
    /// host name, `oss-<region>[-internal].aliyuncs.com`, when the auth has none).
    pub fn new(address: &UploadAddress, auth: &UploadAuth) -> Result<Self> {
        let text = if address.endpoint.contains("://") {
            address.endpoint.clone()
        } else {
            format!("https://{}", address.endpoint)
        };
        let endpoint = Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "the UploadAddress endpoint {:?} is not a URL",
                    address.endpoint
                ))
            })?;
        let host = endpoint.host_str().unwrap_or_default().to_owned();
        let region = if auth.region.is_empty() { region_of_host(&host) } else { auth.region.clone() };
        let is_ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
        let virtual_host = !is_ip && host != "localhost";
        Ok(Self { endpoint, bucket: address.bucket.clone(), region, virtual_host })
    }

    /// The URL of `key` (or of the bucket when `key` is empty) with the query appended as given.
    pub fn url(&self, key: &str, query: &[(String, String)]) -> Url {
        let mut url = self.endpoint.clone();
        let encoded_key = percent_encode_path(key);
        if self.virtual_host {
            let host = format!("{}.{}", self.bucket, self.endpoint.host_str().unwrap_or_default());
            // A bucket name is a valid DNS label, so this cannot fail for a host name endpoint.
            let _ = url.set_host(Some(&host));
            url.set_path(&format!("/{encoded_key}"));
        } else {
            url.set_path(&format!("/{}/{encoded_key}", self.bucket));
        }
        let parts: Vec<String> = query
            .iter()
            // `uploads=` keeps its `=`, as alibabacloud-oss-v2 writes an empty value.
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        url.set_query((!parts.is_empty()).then(|| parts.join("&")).as_deref());
        url
    }
}

fn region_of_host(host: &str) -> String {
    host.split('.')
        .next()
        .and_then(|label| label.strip_prefix("oss-"))
        .map(|r| r.trim_end_matches("-internal").to_owned())
        .unwrap_or_default()
}

/// Temporary credentials for one upload, with a generation number so a refresh happens once however many
/// parts saw the old ones expire.
#[derive(Debug, Clone)]
pub struct StsCredentials {
    /// STS AccessKeyId.
    pub access_key_id: String,
    /// STS AccessKeySecret.
    pub access_key_secret: Secret,
    /// STS SecurityToken (empty for a long-lived key).
    pub security_token: Secret,
    /// When they expire, if known.
    pub expires_at: Option<SystemTime>,
    /// Bumped on each refresh.
    pub generation: u64,
}

impl StsCredentials {
    /// The credentials in an UploadAuth.
    pub fn from_auth(auth: &UploadAuth, generation: u64) -> Self {
        Self {
            access_key_id: auth.access_key_id.clone(),
            access_key_secret: auth.access_key_secret.clone(),
            security_token: auth.security_token.clone(),
            expires_at: auth.expires_at(),
            generation,
        }
    }
}

/// One OSS request, ready to send: the body is added by the caller.
#[derive(Debug)]
pub struct SignedRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: Url,
    /// All headers, `Authorization` included (Content-Length is the caller's).
    pub headers: HeaderMap,
}

/// Builds and signs a request for `key` with `query` and the `extra` headers (Content-Type,
/// Content-MD5…), at time `at`.
pub fn build(
    target: &OssTarget,
    credentials: &StsCredentials,
    method: Method,
    key: &str,
    query: &[(String, String)],
    extra: &[(&'static str, String)],
    at: SystemTime,
) -> Result<SignedRequest> {
    let mut headers = HeaderMap::new();
    let set = set_header;
    set(&mut headers, "date", &http_date(at))?;
    set(&mut headers, X_OSS_DATE, &oss_v4_date(at))?;
    set(&mut headers, X_OSS_CONTENT_SHA256, UNSIGNED_PAYLOAD)?;
    if !credentials.security_token.is_empty() {
        set(&mut headers, X_OSS_SECURITY_TOKEN, credentials.security_token.expose())?;
    }
    for (name, value) in extra {
        set(&mut headers, name, value)?;
    }
    let request = OssRequest {
        method: method.as_str(),
        bucket: Some(&target.bucket),
        key: Some(key),
        query,
        headers: &headers,
    };
    let authorization = signature_v4::authorization(
        &request,
        &credentials.access_key_id,
        &credentials.access_key_secret,
        &target.region,
        at,
        &[],
    );
    set(&mut headers, "authorization", &authorization)?;
    Ok(SignedRequest { method, url: target.url(key, query), headers })
}

/// Inserts a header, refusing values a header cannot carry (non-visible ASCII) with a clear error.
pub(crate) fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<()> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_input(format!("header {name} cannot carry {value:?}"))
            .with_hint("credentials and parameters sent in headers must be printable ASCII")
    })?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The seconds-precision clock the signatures use (kept here so tests can pin it).
pub fn now() -> SystemTime {
    timestamp::from_unix_seconds(timestamp::unix_seconds(SystemTime::now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vodup_proto::oss::authorization::OssCredential;

    fn auth(region: &str) -> UploadAuth {
        UploadAuth::new(
            "STS.id",
            Secret::new("sts-secret"),
            Secret::new("token"),
            SystemTime::now(),
            std::time::Duration::from_secs(3600),
            region,
        )
    }

    #[test]
    fn dns_endpoints_are_virtual_host_and_ip_endpoints_path_style() {
        let address = UploadAddress::new("https://oss-cn-shanghai.aliyuncs.com", "outin-1", "sv/a b/v.mp4");
        let target = OssTarget::new(&address, &auth("")).unwrap();
        assert!(target.virtual_host);
        assert_eq!(target.region, "cn-shanghai");
        let query =
            vec![("partNumber".to_owned(), "3".to_owned()), ("uploadId".to_owned(), "U/1".to_owned())];
        assert_eq!(
            target.url("sv/a b/v.mp4", &query).as_str(),
            "https://outin-1.oss-cn-shanghai.aliyuncs.com/sv/a%20b/v.mp4?partNumber=3&uploadId=U%2F1"
        );
        let address = UploadAddress::new("http://127.0.0.1:9000", "vod", "sv/x.mp4");
        let target = OssTarget::new(&address, &auth("cn-beijing")).unwrap();
        assert!(!target.virtual_host);
        assert_eq!(
            target.url("sv/x.mp4", &[("uploads".into(), String::new())]).as_str(),
            "http://127.0.0.1:9000/vod/sv/x.mp4?uploads="
        );
    }

    #[test]
    fn built_requests_verify_with_the_proto_verifier() {
        let address = UploadAddress::new("https://oss-cn-shanghai.aliyuncs.com", "outin-1", "sv/v.mp4");
        let auth = auth("cn-shanghai");
        let target = OssTarget::new(&address, &auth).unwrap();
        let credentials = StsCredentials::from_auth(&auth, 0);
        let query = vec![("uploadId".to_owned(), "abc".to_owned())];
        let at = now();
        let signed = build(
            &target,
            &credentials,
            Method::POST,
            "sv/v.mp4",
            &query,
            &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".into())],
            at,
        )
        .unwrap();
        let request = OssRequest {
            method: "POST",
            bucket: Some("outin-1"),
            key: Some("sv/v.mp4"),
            query: &query,
            headers: &signed.headers,
        };
        let credential = OssCredential::from_request(&request).unwrap();
        assert_eq!(credential.region(), Some("cn-shanghai"));
        assert_eq!(vodup_proto::oss::authorization::security_token(&request), Some("token"));
        credential.verify(&request, &Secret::new("sts-secret")).unwrap();
    }
}
