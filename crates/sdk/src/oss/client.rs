//! Sends OSS requests and reads their answers: PutObject, the multipart calls, ListParts and
//! AbortMultipartUpload. PutObject, UploadPart and CompleteMultipartUpload are single attempts: the
//! upload engine owns their retries, because a retry may need fresh credentials and a part's always
//! needs a fresh body. The small calls (Initiate, ListParts, Abort, GetObject) retry here, under the
//! client's [`RetryPolicy`]. [`parse_error`] turns an error answer into an [`Error`] whose kind says
//! whether to refresh credentials, retry or give up.

use bytes::Bytes;
use http::Method;
use reqwest::Response;
use vodup_proto::crc64;
use vodup_proto::mac::content_md5;
use vodup_proto::oss::error::{OssError, OssErrorCode};
use vodup_proto::oss::header::{X_OSS_ERR, X_OSS_HASH_CRC64ECMA, X_OSS_REQUEST_ID};
use vodup_proto::oss::xml::{
    self, CompleteMultipartUpload, CompletePart, ENCODING_TYPE_URL, InitiateMultipartUploadResult,
    ListPartsResult, ListedPart,
};

use super::request::{self, OssTarget, SignedRequest, StsCredentials};
use crate::error::{Error, ErrorKind, Result, Retry, SERVICE_UNAVAILABLE_HINT, network_error};
use crate::plain_http;
use crate::retry::{self, RetryPolicy};

/// An OSS client bound to one bucket.
#[derive(Debug, Clone)]
pub struct OssClient {
    http: reqwest::Client,
    target: OssTarget,
    retry: RetryPolicy,
}

/// What a PutObject, UploadPart or Complete answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutAnswer {
    /// The ETag, quoted as sent.
    pub etag: String,
    /// `x-oss-hash-crc64ecma`, when sent.
    pub crc64: Option<u64>,
    /// `x-oss-request-id`.
    pub request_id: String,
}

impl OssClient {
    /// A client for `target`, retrying its small calls under the default policy.
    pub fn new(http: reqwest::Client, target: OssTarget) -> Self {
        Self { http, target, retry: RetryPolicy::default() }
    }

    /// The same client with another retry policy (the SDK client's, normally).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The target.
    pub fn target(&self) -> &OssTarget {
        &self.target
    }

    /// `bucket/key`, for messages.
    pub fn object_name(&self, key: &str) -> String {
        format!("{}/{key}", self.target.bucket)
    }

    async fn send(
        &self,
        operation: &'static str,
        signed: SignedRequest,
        body: Option<(reqwest::Body, u64)>,
        key: &str,
    ) -> Result<Response> {
        let mut builder = self.http.request(signed.method, signed.url).headers(signed.headers);
        if let Some((body, len)) = body {
            builder = builder.header(http::header::CONTENT_LENGTH, len).body(body);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => {
                // A plain-HTTP port behind an https:// UploadAddress is the service's misconfiguration.
                let error = plain_http::send_failed(&self.http, operation, &e, ErrorKind::Service).await;
                return Err(error.with_object(self.object_name(key)).or_hint(format!(
                    "check that OSS at {} is reachable from this machine; re-run to resume",
                    self.target.endpoint.as_str().trim_end_matches('/')
                )));
            }
        };
        if response.status().is_success() {
            return Ok(response);
        }
        Err(parse_error(operation, response).await.with_object(self.object_name(key)))
    }

    /// PutObject of a whole object in memory.
    pub async fn put_object(
        &self,
        credentials: &StsCredentials,
        key: &str,
        body: reqwest::Body,
        len: u64,
        content_type: &str,
    ) -> Result<PutAnswer> {
        let signed = request::build(
            &self.target,
            credentials,
            Method::PUT,
            key,
            &[],
            &[("content-type", content_type.to_owned())],
            request::now(),
        )?;
        let response = self.send("PutObject", signed, Some((body, len)), key).await?;
        Ok(put_answer(&response))
    }

    /// InitiateMultipartUpload; returns the upload id. (A retry after a lost answer leaves an unused
    /// upload behind, which OSS expires; it is never completed.)
    pub async fn initiate(
        &self,
        credentials: &StsCredentials,
        key: &str,
        content_type: &str,
    ) -> Result<String> {
        retry::run(self.retry, "InitiateMultipartUpload", || {
            self.initiate_once(credentials, key, content_type)
        })
        .await
    }

    async fn initiate_once(
        &self,
        credentials: &StsCredentials,
        key: &str,
        content_type: &str,
    ) -> Result<String> {
        let query = initiate_query();
        let extra = [("content-md5", content_md5(b"")), ("content-type", content_type.to_owned())];
        let signed =
            request::build(&self.target, credentials, Method::POST, key, &query, &extra, request::now())?;
        let response = self
            .send("InitiateMultipartUpload", signed, Some((reqwest::Body::from(Bytes::new()), 0)), key)
            .await?;
        let text = response.text().await.map_err(|e| network_error("InitiateMultipartUpload", &e))?;
        let result: InitiateMultipartUploadResult = xml::from_xml(&text).map_err(|e| {
            Error::new(ErrorKind::Service, "InitiateMultipartUpload", format!("unreadable answer: {e}"))
        })?;
        Ok(result.upload_id)
    }

    /// UploadPart of one part in memory.
    pub async fn upload_part(
        &self,
        credentials: &StsCredentials,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: reqwest::Body,
        len: u64,
    ) -> Result<PutAnswer> {
        let query = vec![
            ("partNumber".to_owned(), part_number.to_string()),
            ("uploadId".to_owned(), upload_id.to_owned()),
        ];
        let signed =
            request::build(&self.target, credentials, Method::PUT, key, &query, &[], request::now())?;
        let response = self
            .send("UploadPart", signed, Some((body, len)), key)
            .await
            .map_err(|e| e.with_part(part_number))?;
        Ok(put_answer(&response))
    }

    /// CompleteMultipartUpload with the parts in order.
    pub async fn complete(
        &self,
        credentials: &StsCredentials,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<PutAnswer> {
        let query = vec![
            ("encoding-type".to_owned(), ENCODING_TYPE_URL.to_owned()),
            ("uploadId".to_owned(), upload_id.to_owned()),
        ];
        let document = CompleteMultipartUpload {
            parts: parts
                .iter()
                .map(|(n, etag)| CompletePart { part_number: *n, etag: etag.clone() })
                .collect(),
        };
        // As alibabacloud-oss-v2 sends it: no XML declaration, no Content-Type.
        let body = xml::to_xml_fragment(&document);
        let extra = [("content-md5", content_md5(body.as_bytes()))];
        let signed =
            request::build(&self.target, credentials, Method::POST, key, &query, &extra, request::now())?;
        let len = body.len() as u64;
        let response =
            self.send("CompleteMultipartUpload", signed, Some((reqwest::Body::from(body), len)), key).await?;
        let answer = put_answer(&response);
        // Drain the body so the connection goes back to the pool.
        let _ = response.bytes().await;
        Ok(answer)
    }

    /// ListParts, every page.
    pub async fn list_parts(
        &self,
        credentials: &StsCredentials,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<ListedPart>> {
        retry::run(self.retry, "ListParts", || self.list_parts_once(credentials, key, upload_id)).await
    }

    async fn list_parts_once(
        &self,
        credentials: &StsCredentials,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<ListedPart>> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let mut query = vec![
                ("encoding-type".to_owned(), ENCODING_TYPE_URL.to_owned()),
                ("max-parts".to_owned(), "1000".to_owned()),
                ("uploadId".to_owned(), upload_id.to_owned()),
            ];
            if marker > 0 {
                query.push(("part-number-marker".to_owned(), marker.to_string()));
            }
            let extra = [("content-md5", content_md5(b""))];
            let signed =
                request::build(&self.target, credentials, Method::GET, key, &query, &extra, request::now())?;
            let response = self.send("ListParts", signed, None, key).await?;
            let text = response.text().await.map_err(|e| network_error("ListParts", &e))?;
            let page: ListPartsResult = xml::from_xml(&text).map_err(|e| {
                Error::new(ErrorKind::Service, "ListParts", format!("unreadable answer: {e}"))
            })?;
            parts.extend(page.parts);
            if !page.is_truncated || page.next_part_number_marker <= marker {
                return Ok(parts);
            }
            marker = page.next_part_number_marker;
        }
    }

    /// AbortMultipartUpload.
    pub async fn abort(&self, credentials: &StsCredentials, key: &str, upload_id: &str) -> Result<()> {
        retry::run(self.retry, "AbortMultipartUpload", || async {
            let query = vec![("uploadId".to_owned(), upload_id.to_owned())];
            let extra = [("content-md5", content_md5(b""))];
            let signed = request::build(
                &self.target,
                credentials,
                Method::DELETE,
                key,
                &query,
                &extra,
                request::now(),
            )?;
            self.send("AbortMultipartUpload", signed, None, key).await.map(drop)
        })
        .await
    }

    /// GetObject of a whole object (for checks and small reads; streams should use the URL source).
    pub async fn get_object(&self, credentials: &StsCredentials, key: &str) -> Result<Bytes> {
        retry::run(self.retry, "GetObject", || async {
            let signed =
                request::build(&self.target, credentials, Method::GET, key, &[], &[], request::now())?;
            let response = self.send("GetObject", signed, None, key).await?;
            response.bytes().await.map_err(|e| network_error("GetObject", &e))
        })
        .await
    }
}

/// The query of InitiateMultipartUpload, as alibabacloud-oss-v2 sends it.
fn initiate_query() -> Vec<(String, String)> {
    vec![("uploads".to_owned(), String::new()), ("encoding-type".to_owned(), ENCODING_TYPE_URL.to_owned())]
}

fn put_answer(response: &Response) -> PutAnswer {
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned);
    PutAnswer {
        etag: header("etag").unwrap_or_default(),
        crc64: header(X_OSS_HASH_CRC64ECMA).and_then(|v| crc64::parse_header(&v)),
        request_id: header(X_OSS_REQUEST_ID).unwrap_or_default(),
    }
}

/// Reads an OSS error answer (XML body, or the `x-oss-err` header on bodiless answers) and classifies
/// it: expired or unknown temporary credentials → [`ErrorKind::CredentialsExpired`] (refresh, then
/// retry); server faults and throttling → retryable; the rest permanent.
pub async fn parse_error(operation: &'static str, response: Response) -> Error {
    let status = response.status().as_u16();
    let header_error = response.headers().get(X_OSS_ERR).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned);
    let request_id =
        response.headers().get(X_OSS_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.unwrap_or_default();
    let parsed = OssError::from_xml(&text).ok().or_else(|| {
        let decoded = vodup_proto::mac::base64_decode_strict(header_error.as_deref()?).ok()?;
        OssError::from_xml(std::str::from_utf8(&decoded).ok()?).ok()
    });
    let (code, message) = match &parsed {
        Some(e) => (e.code.clone(), e.message.clone()),
        None => (String::new(), format!("HTTP {status} {}", text.chars().take(200).collect::<String>())),
    };
    classify(operation, status, &code, &message).with_request_id(request_id)
}

fn classify(operation: &'static str, status: u16, code: &str, message: &str) -> Error {
    let known = OssErrorCode::from_wire(code);
    let (kind, retry, hint) = match code {
        "SecurityTokenExpired" | "InvalidAccessKeyId" => (
            ErrorKind::CredentialsExpired,
            Retry::Permanent,
            "the upload credentials expired and could not be refreshed",
        ),
        "AccessDenied" | "SignatureDoesNotMatch" => {
            (ErrorKind::PermissionDenied, Retry::Permanent, "the upload credentials do not allow this object")
        }
        "NoSuchUpload" | "NoSuchKey" | "NoSuchBucket" => {
            (ErrorKind::NotFound, Retry::Permanent, "start the upload again")
        }
        "InvalidDigest" | "BadDigest" | "InvalidCrc64" => {
            (ErrorKind::ChecksumMismatch, Retry::Temporary, "the bytes were damaged on the way")
        }
        // vodup's own 503: the service's disk is full. Retrying only adds load until its operator acts.
        "InsufficientStorage" => (
            ErrorKind::Service,
            Retry::Permanent,
            "the service's storage is full; ask its operator, then re-run to resume",
        ),
        "RequestTimeTooSkewed" => {
            (ErrorKind::Service, Retry::Permanent, "sync this machine's clock and re-run")
        }
        // The request is not served here: asking again cannot change that.
        _ if status == 501 || code == "NotImplemented" => (
            ErrorKind::Service,
            Retry::Permanent,
            "the server does not implement this request; check that the upload address is an OSS endpoint",
        ),
        _ if status == 429 || code.contains("Throttl") => {
            (ErrorKind::RateLimited, Retry::Temporary, "the service asks to slow down; lower --parallel")
        }
        _ if status == 503 || code == "ServiceUnavailable" => {
            (ErrorKind::Service, Retry::Temporary, SERVICE_UNAVAILABLE_HINT)
        }
        _ if known.is_some_and(OssErrorCode::is_retryable) || status >= 500 => {
            (ErrorKind::Service, Retry::Temporary, "a server fault; re-run to resume")
        }
        _ => (ErrorKind::Service, Retry::Permanent, "see the message; the checkpoint is kept"),
    };
    Error::new(kind, operation, message.to_owned()).with_retry(retry).with_hint(hint).with_service_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(
            classify("UploadPart", 403, "SecurityTokenExpired", "").kind(),
            ErrorKind::CredentialsExpired
        );
        assert!(classify("UploadPart", 503, "ServiceUnavailable", "").is_retryable());
        assert!(classify("UploadPart", 500, "", "").is_retryable());
        assert!(!classify("UploadPart", 503, "InsufficientStorage", "").is_retryable());
        assert!(!classify("UploadPart", 501, "NotImplemented", "").is_retryable());
        assert!(!classify("UploadPart", 501, "", "").is_retryable());
        assert!(classify("UploadPart", 429, "", "").is_retryable());
        assert!(!classify("UploadPart", 400, "InvalidArgument", "").is_retryable());
        assert!(!classify("UploadPart", 403, "AccessDenied", "").is_retryable());
        assert_eq!(classify("UploadPart", 404, "NoSuchUpload", "").kind(), ErrorKind::NotFound);
    }

    #[test]
    fn service_unavailable_says_it_is_temporary_and_how_to_resume() {
        let error = classify(
            "UploadPart",
            503,
            "ServiceUnavailable",
            "The service is unavailable. Please try again.",
        )
        .with_part(9)
        .with_object("bucket/sv/a.mp4")
        .after_retries(4, std::time::Duration::from_millis(3100));
        assert_eq!(error.kind(), ErrorKind::Service);
        assert_eq!(
            error.to_string(),
            "UploadPart part 9 to bucket/sv/a.mp4: ServiceUnavailable: The service is unavailable. Please try \
             again. (after 4 attempts in 3 s); the service is unavailable for now (HTTP 503); re-run the same \
             command later (an upload resumes where it stopped), or give --retry-for more seconds to wait longer"
        );
        // A 503 without OSS's code (a proxy's) says the same; vodup's full disk does not.
        assert_eq!(classify("UploadPart", 503, "", "HTTP 503").hint(), SERVICE_UNAVAILABLE_HINT);
        assert_ne!(classify("UploadPart", 503, "InsufficientStorage", "").hint(), SERVICE_UNAVAILABLE_HINT);
    }
}
