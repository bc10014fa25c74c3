//! Sends VOD API calls the way the current official SDK (alibabacloud_vod20170321 on tea-openapi) does:
//! `POST /?<params>` with an empty body, signed with ACS3-HMAC-SHA256 over every header it sends
//! (vod-api.md §2.2, §10.2). Retries network faults, server faults and throttling under the client's
//! [`RetryPolicy`]; everything else comes back as an [`Error`] carrying the service's `Code`, `Message`
//! and `RequestId`. An answer that is not VOD's JSON means the endpoint is not a VOD API (often the OSS
//! port of `vodup serve`): that is said, and not retried.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use reqwest::Url;
use serde_json::Value;
use vodup_proto::encoding::percent_encode;
use vodup_proto::mac::sha256_hex;
use vodup_proto::oss::error::OssError;
use vodup_proto::oss::header::X_OSS_REQUEST_ID;
use vodup_proto::timestamp::iso8601;
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::vod::signature_acs3::{
    self as acs3, Acs3Request, X_ACS_ACTION, X_ACS_CONTENT_SHA256, X_ACS_DATE, X_ACS_SECURITY_TOKEN,
    X_ACS_SIGNATURE_NONCE, X_ACS_VERSION,
};
use vodup_proto::vod::{API_VERSION, VodErrorCode};

use super::media::MediaKind;
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result, Retry, SERVICE_UNAVAILABLE_HINT, network_error};
use crate::oss::request::set_header;
use crate::plain_http;
use crate::retry::{self, RetryPolicy};

/// Signs and sends VOD API calls.
#[derive(Debug, Clone)]
pub struct VodClient {
    http: reqwest::Client,
    endpoint: Url,
    credentials: Credentials,
    timeout: Duration,
    retry: RetryPolicy,
}

/// What a Create*/Refresh call hands out: the media's id and where and how to upload it.
#[derive(Debug, Clone)]
pub struct UploadTicket {
    /// The media type.
    pub kind: MediaKind,
    /// `VideoId`, `ImageId` or `MediaId`.
    pub media_id: String,
    /// The decoded UploadAddress.
    pub address: UploadAddress,
    /// The decoded UploadAuth (temporary OSS credentials).
    pub auth: UploadAuth,
    /// The raw Base64 UploadAddress, kept for checkpoints.
    pub address_b64: String,
    /// The call's RequestId.
    pub request_id: String,
    /// `ImageURL` or `MediaURL`, when given.
    pub media_url: Option<String>,
    /// `FileURL`, when given.
    pub file_url: Option<String>,
}

impl VodClient {
    pub(crate) fn new(
        http: reqwest::Client,
        endpoint: Url,
        credentials: Credentials,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Self {
        Self { http, endpoint, credentials, timeout, retry }
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Calls `action` with `params`, retrying what may be retried; returns the JSON body.
    pub async fn call(&self, action: &'static str, params: &[(String, String)]) -> Result<Value> {
        retry::run(self.retry, action, || self.call_once(action, params)).await
    }

    /// What to check when the endpoint does not answer.
    fn unreachable_hint(&self) -> String {
        format!(
            "check that the VOD service runs at {} and that --endpoint (or VODUP_ENDPOINT) has the right host \
             and port, then re-run",
            self.endpoint.as_str().trim_end_matches('/')
        )
    }

    async fn call_once(&self, action: &'static str, params: &[(String, String)]) -> Result<Value> {
        let (url, headers) = self.signed_request(action, params, SystemTime::now())?;
        let response = match self.http.post(url).headers(headers).timeout(self.timeout).send().await {
            Ok(response) => response,
            Err(e) => {
                let error = plain_http::send_failed(&self.http, action, &e, ErrorKind::InvalidInput).await;
                return Err(error.or_hint(self.unreachable_hint()));
            }
        };
        let status = response.status();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        };
        let request_id_header = header("x-acs-request-id");
        let oss_request_id = header(X_OSS_REQUEST_ID);
        let text = response
            .text()
            .await
            .map_err(|e| network_error(action, &e).with_hint(self.unreachable_hint()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !body.is_object() {
            return Err(not_vod(action, &self.endpoint, status.as_u16(), !oss_request_id.is_empty(), &text));
        }
        if status.is_success() {
            return Ok(body);
        }
        let code = body["Code"].as_str().or(body["code"].as_str()).unwrap_or_default().to_owned();
        let message = body["Message"].as_str().or(body["message"].as_str()).unwrap_or_default().to_owned();
        let request_id = body["RequestId"].as_str().map_or(request_id_header, ToOwned::to_owned);
        Err(service_error(action, status.as_u16(), &code, &message, &text).with_request_id(request_id))
    }

    /// Builds the URL and headers of a signed call (no I/O; `at` is the signing time).
    pub fn signed_request(
        &self,
        action: &str,
        params: &[(String, String)],
        at: SystemTime,
    ) -> Result<(Url, HeaderMap)> {
        let mut query: Vec<(String, String)> = params.to_vec();
        query.sort();
        let mut url = self.endpoint.clone();
        url.set_path("/");
        let encoded: Vec<String> =
            query.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect();
        url.set_query((!encoded.is_empty()).then(|| encoded.join("&")).as_deref());

        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let nonce = format!("{:032x}", rand::random::<u128>());
        let mut headers = HeaderMap::new();
        let set = set_header;
        set(&mut headers, "host", &host)?;
        set(&mut headers, X_ACS_VERSION, API_VERSION)?;
        set(&mut headers, X_ACS_ACTION, action)?;
        set(&mut headers, "user-agent", &crate_user_agent())?;
        set(&mut headers, X_ACS_DATE, &iso8601(at))?;
        set(&mut headers, X_ACS_SIGNATURE_NONCE, &nonce)?;
        set(&mut headers, "accept", "application/json")?;
        set(&mut headers, X_ACS_CONTENT_SHA256, &sha256_hex(b""))?;
        if let Some(token) = &self.credentials.security_token {
            set(&mut headers, X_ACS_SECURITY_TOKEN, token.expose())?;
        }
        let signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
        let hashed = sha256_hex(b"");
        let request = Acs3Request {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            hashed_payload: &hashed,
        };
        let authorization = acs3::authorization(
            &request,
            &self.credentials.access_key_id,
            &self.credentials.access_key_secret,
            signed,
        )
        .map_err(|e| Error::invalid_input(format!("cannot sign {action}: {e}")))?;
        set(&mut headers, "authorization", &authorization.to_header_value())?;
        Ok((url, headers))
    }

    /// CreateUploadVideo with prepared parameters (see [`VideoMeta::params`](super::VideoMeta::params)).
    pub async fn create_upload_video(&self, params: &[(String, String)]) -> Result<UploadTicket> {
        let body = self.call("CreateUploadVideo", params).await?;
        ticket(MediaKind::Video, "CreateUploadVideo", &body)
    }

    /// RefreshUploadVideo: fresh UploadAuth (and the same UploadAddress) for a video still uploading.
    pub async fn refresh_upload_video(&self, video_id: &str) -> Result<UploadTicket> {
        let body = self.call("RefreshUploadVideo", &[("VideoId".to_owned(), video_id.to_owned())]).await?;
        ticket(MediaKind::Video, "RefreshUploadVideo", &body)
    }

    /// CreateUploadImage with prepared parameters.
    pub async fn create_upload_image(&self, params: &[(String, String)]) -> Result<UploadTicket> {
        let body = self.call("CreateUploadImage", params).await?;
        ticket(MediaKind::Image, "CreateUploadImage", &body)
    }

    /// CreateUploadAttachedMedia with prepared parameters.
    pub async fn create_upload_attached_media(&self, params: &[(String, String)]) -> Result<UploadTicket> {
        let body = self.call("CreateUploadAttachedMedia", params).await?;
        ticket(MediaKind::Attached, "CreateUploadAttachedMedia", &body)
    }

    /// DeleteVideo of one or more ids.
    pub async fn delete_videos(&self, video_ids: &[&str]) -> Result<Value> {
        self.call("DeleteVideo", &[("VideoIds".to_owned(), video_ids.join(","))]).await
    }

    /// GetVideoInfo of one video.
    pub async fn get_video_info(&self, video_id: &str) -> Result<Value> {
        self.call("GetVideoInfo", &[("VideoId".to_owned(), video_id.to_owned())]).await
    }

    /// The video with this ReferenceId, `None` when there is none: `(VideoId, Status, Size)`.
    pub async fn find_video_by_reference(
        &self,
        reference_id: &str,
    ) -> Result<Option<(String, String, Option<u64>)>> {
        let reply = self.call("GetVideoInfo", &[("ReferenceId".to_owned(), reference_id.to_owned())]).await;
        match reply {
            Ok(reply) => {
                let video = &reply["Video"];
                let id = video["VideoId"].as_str().unwrap_or_default().to_owned();
                let status = video["Status"].as_str().unwrap_or_default().to_owned();
                let size =
                    video["Size"].as_u64().or_else(|| video["Size"].as_str().and_then(|s| s.parse().ok()));
                Ok((!id.is_empty()).then_some((id, status, size)))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes media of `kind` (DeleteVideo, DeleteImage by id, or DeleteAttachedMedia).
    pub async fn delete_media(&self, kind: MediaKind, ids: &[&str]) -> Result<Value> {
        let ids = ids.join(",");
        match kind {
            MediaKind::Video => self.call("DeleteVideo", &[("VideoIds".to_owned(), ids)]).await,
            MediaKind::Image => {
                let params =
                    [("DeleteImageType".to_owned(), "ImageId".to_owned()), ("ImageIds".to_owned(), ids)];
                self.call("DeleteImage", &params).await
            }
            MediaKind::Attached => self.call("DeleteAttachedMedia", &[("MediaIds".to_owned(), ids)]).await,
        }
    }
}

fn crate_user_agent() -> String {
    format!(
        "AlibabaCloud ({}; {}) vodup/{}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

fn ticket(kind: MediaKind, action: &'static str, body: &Value) -> Result<UploadTicket> {
    let field = |name: &str| body[name].as_str().map(ToOwned::to_owned);
    let request_id = field("RequestId").unwrap_or_default();
    let missing = |name: &str| {
        Error::new(ErrorKind::Service, action, format!("the answer has no {name}"))
            .with_request_id(request_id.clone())
            .with_hint("the endpoint does not speak the VOD API; check --endpoint/--region")
    };
    let media_id = field(kind.id_field()).ok_or_else(|| missing(kind.id_field()))?;
    let address_b64 = field("UploadAddress").ok_or_else(|| missing("UploadAddress"))?;
    let auth_b64 = field("UploadAuth").ok_or_else(|| missing("UploadAuth"))?;
    let address = UploadAddress::decode(&address_b64).map_err(|e| {
        Error::new(ErrorKind::Service, action, format!("bad UploadAddress: {e}"))
            .with_request_id(request_id.clone())
    })?;
    let auth = UploadAuth::decode(&auth_b64).map_err(|e| {
        Error::new(ErrorKind::Service, action, format!("bad UploadAuth: {e}"))
            .with_request_id(request_id.clone())
    })?;
    let media_url = field("ImageURL").or_else(|| field("MediaURL"));
    Ok(UploadTicket {
        kind,
        media_id,
        address,
        auth,
        address_b64,
        request_id,
        media_url,
        file_url: field("FileURL"),
    })
}

/// Where the VOD API of `vodup serve` is, for answers that show the endpoint is something else.
const VOD_PORT_HINT: &str = "point --endpoint (or VODUP_ENDPOINT) at the VOD API: for `vodup serve` that is its \
     --listen address (127.0.0.1:8080 unless changed; see `vodup serve --help`), not its --oss-listen one";

/// An answer without a VOD JSON body. OSS's XML (or its request-id header) means the endpoint is an OSS
/// data port; any other body is some other server, or a proxy in front of the service. Only a proxy's
/// server fault (other than 501) or throttling may pass, so only those are retried.
fn not_vod(action: &'static str, endpoint: &Url, status: u16, oss_header: bool, text: &str) -> Error {
    let endpoint = endpoint.as_str().trim_end_matches('/');
    let snippet: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    let oss_code = OssError::from_xml(text).ok().map(|e| e.code).filter(|code| !code.is_empty());
    if oss_header || oss_code.is_some() {
        let code = oss_code.map(|code| format!(" {code}")).unwrap_or_default();
        return Error::new(
            ErrorKind::InvalidInput,
            action,
            format!("{endpoint} is not a VOD endpoint: it answers like OSS (HTTP {status}{code})"),
        )
        .with_retry(Retry::Permanent)
        .with_hint(VOD_PORT_HINT);
    }
    match status {
        429 => Error::new(ErrorKind::RateLimited, action, format!("HTTP {status} {snippet}")),
        500..=599 if status != 501 => {
            Error::new(ErrorKind::Service, action, format!("HTTP {status} {snippet}"))
                .with_retry(Retry::Temporary)
                .with_hint("the endpoint (or a proxy in front of it) failed; re-run later")
        }
        _ => Error::new(
            ErrorKind::InvalidInput,
            action,
            format!("{endpoint} answered HTTP {status} without VOD's JSON: {snippet}"),
        )
        .with_retry(Retry::Permanent)
        .with_hint(VOD_PORT_HINT),
    }
}

/// Maps a VOD error answer to an [`Error`]: the kind from status and code, retryable for server faults
/// and throttling (as the core SDK's retry policy).
fn service_error(action: &'static str, status: u16, code: &str, message: &str, raw: &str) -> Error {
    let known = VodErrorCode::from_wire(code);
    // InsufficientStorage is vodup's own 503 for a full disk, and 501 says the action is not served:
    // neither changes by asking again, unlike other server faults.
    let retryable = known != Some(VodErrorCode::InsufficientStorage)
        && status != 501
        && (known.is_some_and(VodErrorCode::is_retryable) || status >= 500 || status == 429);
    let kind = match (status, code) {
        (429, _) | (_, "Throttling" | "Throttling.User" | "Throttling.Api") => ErrorKind::RateLimited,
        (_, c) if c.starts_with("InvalidAccessKeyId") || c.starts_with("SignatureDoesNotMatch") => {
            ErrorKind::PermissionDenied
        }
        (401 | 403, _) => ErrorKind::PermissionDenied,
        (404, _) => ErrorKind::NotFound,
        (400, _) => ErrorKind::InvalidInput,
        _ => ErrorKind::Service,
    };
    let text = if code.is_empty() && message.is_empty() {
        format!("HTTP {status} {}", raw.chars().take(200).collect::<String>())
    } else {
        message.to_owned()
    };
    let hint = match kind {
        ErrorKind::PermissionDenied => "check the AccessKey and its permissions",
        ErrorKind::InvalidInput => "fix the parameter the message names, then re-run",
        ErrorKind::NotFound => "check the id or storage location",
        _ if code == "InsufficientStorage" => "the service's storage is full; ask its operator, then re-run",
        _ if status == 501 => "the service does not implement this action; check --endpoint",
        _ if status == 503 || code == "ServiceUnavailable" => SERVICE_UNAVAILABLE_HINT,
        _ => "re-run later; the checkpoint, if any, is kept",
    };
    Error::new(kind, action, text)
        .with_retry(if retryable { Retry::Temporary } else { Retry::Permanent })
        .with_hint(hint)
        .with_service_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vodup_proto::Secret;
    use vodup_proto::vod::signature_acs3::Acs3Authorization;

    #[test]
    fn signed_request_verifies_and_has_tea_shape() {
        let client = VodClient::new(
            reqwest::Client::new(),
            Url::parse("https://vod.cn-shanghai.aliyuncs.com").unwrap(),
            Credentials::new("testid", "testsecret"),
            Duration::from_secs(1),
            RetryPolicy::none(),
        );
        let params =
            vec![("Title".to_owned(), "a b*~".to_owned()), ("FileName".to_owned(), "x.mp4".to_owned())];
        let (url, headers) = client.signed_request("CreateUploadVideo", &params, SystemTime::now()).unwrap();
        assert_eq!(url.as_str(), "https://vod.cn-shanghai.aliyuncs.com/?FileName=x.mp4&Title=a%20b%2A~");
        let auth = Acs3Authorization::parse(headers["authorization"].to_str().unwrap()).unwrap();
        assert_eq!(
            auth.signed_headers.join(";"),
            "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
        );
        let mut query = params.clone();
        query.sort();
        acs3::verify("POST", "/", &query, &headers, b"", &auth, &Secret::new("testsecret")).unwrap();
    }

    #[test]
    fn errors_map_to_kinds() {
        let e = service_error("CreateUploadVideo", 400, "InvalidFileName.Extension", "bad", "");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.is_retryable());
        let e = service_error("CreateUploadVideo", 503, "ServiceUnavailable", "later", "");
        assert!(e.is_retryable());
        assert_eq!(e.hint(), SERVICE_UNAVAILABLE_HINT);
        let e = service_error("CreateUploadVideo", 403, "InvalidAccessKeyId.NotFound", "no", "");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(!service_error("CreateUploadVideo", 503, "InsufficientStorage", "full", "").is_retryable());
        assert!(!service_error("CreateUploadVideo", 501, "NotImplemented", "no", "").is_retryable());
    }

    #[test]
    fn an_answer_in_oss_xml_is_not_a_vod_endpoint_and_is_not_retried() {
        let endpoint = Url::parse("http://127.0.0.1:9000").unwrap();
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented</Code>\
                   <Message>no</Message><RequestId>R</RequestId><HostId>h</HostId></Error>";
        let e = not_vod("CreateUploadVideo", &endpoint, 501, true, xml);
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("http://127.0.0.1:9000 is not a VOD endpoint"), "{e}");
        assert!(e.hint().contains("--listen"), "{e}");
        // A proxy's 502 page while the service restarts may pass; a web page answering 200 will not.
        assert!(not_vod("GetVideoInfo", &endpoint, 502, false, "<html>bad gateway</html>").is_retryable());
        assert!(!not_vod("GetVideoInfo", &endpoint, 200, false, "<html>hello</html>").is_retryable());
        assert!(!not_vod("GetVideoInfo", &endpoint, 501, false, "").is_retryable());
    }
}
