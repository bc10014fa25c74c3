//! What the authorization and validation tests share: an upload credential from a real
//! CreateUploadVideo, the OSS error of a response (XML body, or `x-oss-err` for HEAD), probes of the
//! catalogue and storage behind the server's back, multipart steps, hand-signed VOD queries, and raw
//! HTTP/1.1 for the requests reqwest would normalize (dot segments, backslashes) or refuse to send (a
//! Content-Length with no body behind it).
//!
//! Not here: assertions about any one refusal; each test states those itself.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use vodup_server::meta::{MediaStatus, UploadQuery, UploadState, VideoQuery};
use vodup_server::proto::encoding::query_encode;
use vodup_server::proto::mac::base64_decode_strict;
use vodup_server::proto::oss::error::OssError;
use vodup_server::proto::oss::header::X_OSS_ERR;
use vodup_server::proto::oss::xml::{InitiateMultipartUploadResult, from_xml};
use vodup_server::proto::oss::{OssRequest, signature_v1};
use vodup_server::proto::timestamp::{http_date, iso8601};
use vodup_server::proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_server::proto::vod::signature_v1 as vod_v1;
use vodup_server::proto::{Secret, crc64};
use vodup_server::state::AppState;
use vodup_testkit::{OssCall, OssCredential, TestServer};

/// The smallest size every part but the last must have at Complete.
pub const MIN_PART: usize = 100 * 1024;

/// A video created through the VOD API, with its address and upload credential.
#[derive(Debug)]
pub struct Video {
    /// VideoId.
    pub id: String,
    /// Where to upload.
    pub address: UploadAddress,
    /// The STS credential.
    pub auth: UploadAuth,
}

impl Video {
    /// The object key the credential is scoped to.
    pub fn key(&self) -> &str {
        &self.address.file_name
    }

    /// The credential as an OSS V1 signer (token in `x-oss-security-token`).
    pub fn sts(&self) -> OssCredential {
        OssCredential::V1 {
            id: self.auth.access_key_id.clone(),
            secret: self.auth.access_key_secret.clone(),
            token: Some(self.auth.security_token.expose().to_owned()),
        }
    }
}

/// CreateUploadVideo with the test key, decoded.
pub async fn create_video(server: &TestServer, file_name: &str) -> Video {
    let reply = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", file_name)]).await;
    assert_eq!(reply.status, 200, "CreateUploadVideo: {}", reply.body);
    let text = |name: &str| {
        reply.body[name].as_str().unwrap_or_else(|| panic!("{name} in {}", reply.body)).to_owned()
    };
    Video {
        id: text("VideoId"),
        address: UploadAddress::decode(&text("UploadAddress")).expect("UploadAddress decodes"),
        auth: UploadAuth::decode(&text("UploadAuth")).expect("UploadAuth decodes"),
    }
}

/// The OSS error of a refused response, from its XML body, or for a body-less (HEAD) response from the
/// Base64 XML in `x-oss-err`, after asserting its status and code (`what` names the case on failure).
pub async fn oss_error(response: reqwest::Response, status: u16, code: &str, what: &str) -> OssError {
    let actual = response.status().as_u16();
    let header =
        response.headers().get(X_OSS_ERR).map(|v| v.to_str().expect("x-oss-err is ASCII").to_owned());
    assert!(actual >= 400, "{what}: expected {status} {code}, but the request was accepted with {actual}");
    let body = response.text().await.expect("error body");
    let error = parse_oss_error(&body, header.as_deref());
    assert_eq!((actual, error.code.as_str()), (status, code), "{what}: {error:?}");
    error
}

/// Parses an OSS error from a body, or from the `x-oss-err` header when the body is empty.
pub fn parse_oss_error(body: &str, x_oss_err: Option<&str>) -> OssError {
    if body.is_empty() {
        let header = x_oss_err.expect("an error without a body carries x-oss-err");
        let xml = base64_decode_strict(header).expect("x-oss-err is Base64");
        OssError::from_xml(std::str::from_utf8(&xml).expect("UTF-8 XML")).expect("x-oss-err holds an <Error>")
    } else {
        OssError::from_xml(body).unwrap_or_else(|e| panic!("not an OSS error ({e}): {body}"))
    }
}

/// A HEAD refusal: its status, an empty body, and the code in `x-oss-err`.
pub async fn head_error(response: reqwest::Response, status: u16, code: &str, what: &str) -> OssError {
    let actual = response.status().as_u16();
    let header =
        response.headers().get(X_OSS_ERR).map(|v| v.to_str().expect("x-oss-err is ASCII").to_owned());
    assert!(actual >= 400, "{what}: expected {status} {code}, but the request was accepted with {actual}");
    assert!(header.is_some(), "{what}: HEAD errors carry x-oss-err");
    let body = response.bytes().await.expect("HEAD body");
    assert!(body.is_empty(), "{what}: HEAD errors have no body");
    let error = parse_oss_error("", header.as_deref());
    assert_eq!((actual, error.code.as_str()), (status, code), "{what}: {error:?}");
    error
}

/// How many videos the catalogue lists (any status).
pub async fn video_total(state: &AppState) -> u64 {
    let query = VideoQuery {
        cate_id: None,
        statuses: Vec::new(),
        start: None,
        end: None,
        storage_location: None,
        reference_ids: Vec::new(),
        ascending: false,
        offset: 0,
        limit: 1000,
    };
    state.meta.list_videos(&query).await.expect("list videos").0
}

/// The media's status; panics if it is gone.
pub async fn media_status(state: &AppState, id: &str) -> MediaStatus {
    state.meta.get_media(id).await.expect("read media").unwrap_or_else(|| panic!("media {id} exists")).status
}

/// Asserts the catalogue names no object at `key`.
pub async fn assert_no_object(state: &AppState, key: &str) {
    let found = state.meta.get_object(&state.site.bucket, key, false).await.expect("read the catalogue");
    assert!(found.is_none(), "expected no object at {key:?}, found {found:?}");
}

/// How many multipart uploads the catalogue has open.
pub async fn open_uploads(state: &AppState) -> usize {
    let query = UploadQuery { bucket: state.site.bucket.clone(), max: 1000, ..UploadQuery::default() };
    state.meta.list_open_uploads(&query).await.expect("list uploads").len()
}

/// The size and CRC-64 of the object the catalogue names at `key`; panics if absent.
pub async fn stored(state: &AppState, key: &str) -> (u64, u64) {
    let (object, _) = state
        .meta
        .get_object(&state.site.bucket, key, false)
        .await
        .expect("read the catalogue")
        .unwrap_or_else(|| panic!("no object at {key:?}"));
    (object.size, object.crc64)
}

/// The catalogue state of an upload; panics if unknown.
pub async fn upload_state(state: &AppState, upload_id: &str) -> UploadState {
    state.meta.get_upload(upload_id).await.expect("read upload").expect("upload is known").state
}

/// The parts the catalogue holds for an open upload; NotFound once it is closed.
pub async fn parts_of(
    state: &AppState,
    upload_id: &str,
) -> Result<Vec<vodup_server::meta::StoredPart>, vodup_server::meta::MetaError> {
    let upload = state.meta.get_upload(upload_id).await.expect("read upload").expect("upload is known");
    state.meta.list_parts(upload_id, &upload.new.bucket, &upload.new.key).await
}

/// The part numbers the catalogue holds for an open upload.
pub async fn stored_parts(state: &AppState, upload_id: &str) -> Vec<u32> {
    parts_of(state, upload_id).await.expect("list parts").iter().map(|p| p.part_number).collect()
}

/// InitiateMultipartUpload; returns the upload id.
pub async fn initiate(server: &TestServer, key: &str, credential: OssCredential) -> String {
    let response = server.oss(OssCall::new("POST", Some(key), credential).query("uploads", "")).await;
    assert_eq!(response.status(), 200, "initiate {key}");
    let result: InitiateMultipartUploadResult =
        from_xml(&response.text().await.expect("initiate body")).expect("InitiateMultipartUploadResult");
    result.upload_id
}

/// UploadPart; returns the quoted ETag.
pub async fn upload_part(
    server: &TestServer,
    key: &str,
    credential: OssCredential,
    upload_id: &str,
    part_number: u32,
    bytes: &[u8],
) -> String {
    let call = OssCall::new("PUT", Some(key), credential)
        .query("partNumber", &part_number.to_string())
        .query("uploadId", upload_id)
        .body(bytes.to_vec());
    let response = server.oss(call).await;
    assert_eq!(response.status(), 200, "upload part {part_number} of {key}");
    response.headers()["etag"].to_str().expect("ETag").to_owned()
}

/// A CompleteMultipartUpload body listing `parts` as given (number, quoted ETag).
pub fn complete_body(parts: &[(u32, &str)]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        body.push_str(&format!("<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// A PutObject call.
pub fn put(key: &str, credential: OssCredential, body: &[u8]) -> OssCall {
    OssCall::new("PUT", Some(key), credential).body(body.to_vec())
}

/// A CompleteMultipartUpload call.
pub fn complete_call(key: &str, credential: OssCredential, upload_id: &str, body: String) -> OssCall {
    OssCall::new("POST", Some(key), credential).query("uploadId", upload_id).body(body)
}

/// Deterministic bytes that differ from part to part.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// The CRC-64 OSS reports for `data`.
pub fn crc(data: &[u8]) -> u64 {
    crc64::checksum(data)
}

/// A long-lived key other than the test's, stored in the server's catalogue.
pub async fn new_key(server: &TestServer) -> (String, Secret) {
    let key = vodup_server::keys::create_key(server.state.meta.as_ref(), "another", SystemTime::now())
        .await
        .expect("key");
    (key.id, key.secret)
}

/// A VOD v1 query signed with `secret` at `at` with `nonce`: the signed pairs (without `Signature`)
/// and the query string to send.
pub fn signed_vod_query(
    key_id: &str,
    secret: &Secret,
    action: &str,
    params: &[(&str, &str)],
    at: SystemTime,
    nonce: &str,
) -> (Vec<(String, String)>, String) {
    let pairs: Vec<(String, String)> = [
        ("Action", action),
        ("Version", "2017-03-21"),
        ("Format", "JSON"),
        ("AccessKeyId", key_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", &iso8601(at)),
    ]
    .iter()
    .chain(params)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let signature = vod_v1::sign_params("POST", &pairs, secret);
    let mut sent = pairs.clone();
    sent.push(("Signature".into(), signature));
    (pairs, query_encode(&sent))
}

/// A CreateUploadVideo query signed now with the test key and a fresh nonce, to send (and send again)
/// as it is.
pub fn signed_create_query(server: &TestServer) -> String {
    let params = [("Title", "t"), ("FileName", "a.mp4")];
    signed_vod_query(
        &server.key_id,
        &server.key_secret,
        "CreateUploadVideo",
        &params,
        SystemTime::now(),
        &nonce(),
    )
    .1
}

/// A fresh 32-hex nonce.
pub fn nonce() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos();
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
}

/// The headers of a V1 request signed with `credential` (a V1 one) over the *decoded* key the server
/// will see: `date`, the token if any, the given headers, and `authorization`.
pub fn v1_headers(
    server: &TestServer,
    credential: &OssCredential,
    method: &str,
    key: &str,
    query: &[(String, String)],
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let OssCredential::V1 { id, secret, token } = credential else { panic!("a V1 credential") };
    let mut headers = HeaderMap::new();
    headers.insert("date", HeaderValue::from_str(&http_date(SystemTime::now())).expect("date"));
    if let Some(token) = token {
        headers.insert("x-oss-security-token", HeaderValue::from_str(token).expect("token"));
    }
    for (name, value) in extra {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    let request =
        OssRequest { method, bucket: Some(server.bucket()), key: Some(key), query, headers: &headers };
    let authorization = signature_v1::authorization(&request, id, secret);
    headers.insert("authorization", HeaderValue::from_str(&authorization).expect("authorization"));
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().expect("ASCII").to_owned())).collect()
}

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body (by Content-Length, or to the end of the connection).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The OSS error this response carries.
    pub fn oss_error(&self) -> OssError {
        parse_oss_error(std::str::from_utf8(&self.body).expect("UTF-8 body"), self.header("x-oss-err"))
    }
}

/// Sends `method target HTTP/1.1` with `headers` and `body` byte for byte to `base_url`
/// (`http://host:port`) and reads the response. A `Content-Length` is added only if `headers` has none,
/// so a caller can announce more than it sends. The connection is closed after one response.
pub async fn raw_http(
    base_url: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let host = base_url.strip_prefix("http://").expect("http URL");
    let mut request = format!("{method} {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut stream = TcpStream::connect(host).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send head");
        stream.write_all(body).await.expect("send body");
        read_response(&mut stream).await
    })
    .await
    .expect("raw response within 20 s")
}

/// Reads one HTTP/1.1 response (head, then the body by Content-Length or to the end of the connection).
pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "connection closed before the response head: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let length =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    loop {
        if length.is_some_and(|len| body.len() >= len) {
            break;
        }
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if let Some(len) = length {
        body.truncate(len);
    }
    RawResponse { status, headers, body }
}
