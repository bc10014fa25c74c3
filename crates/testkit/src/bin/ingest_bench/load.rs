//! The load generator both modes of the bench drive a server with: a signed CreateUploadVideo (VOD RPC
//! signature v1 from vodup-proto, the code SDK and service share), then a multipart upload with the STS
//! credential it returns (OSS V1 header signatures), parts sent as slices of one reused buffer so that
//! the client hashes nothing and allocates nothing per part. It talks to whatever the account names: one
//! node, or a load balancer in front of several.

use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderValue};
use vodup_proto::Secret;
use vodup_proto::encoding::{percent_encode_path, query_encode};
use vodup_proto::oss::xml::{
    CompleteMultipartUpload, CompletePart, InitiateMultipartUploadResult, from_xml, to_xml_fragment,
};
use vodup_proto::oss::{OssRequest, signature_v1};
use vodup_proto::timestamp::{http_date, iso8601};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::vod::signature_v1 as vod_v1;

/// Where the VOD plane answers, and the long-lived key that signs calls to it.
#[derive(Clone)]
pub struct Account {
    /// `http://127.0.0.1:P` of a node's VOD plane, or of the balancer in front of the nodes.
    pub vod: String,
    /// AccessKeyId of a key made with `vodup keys create`.
    pub key_id: String,
    /// Its secret.
    pub secret: Secret,
}

/// One signed CreateUploadVideo call: the JSON reply when it carries an UploadAddress, else what went
/// wrong (transport error, non-JSON body, or the VOD error reply).
pub async fn create_upload_video(
    client: &reqwest::Client,
    account: &Account,
    n: usize,
) -> Result<serde_json::Value, String> {
    let mut pairs: Vec<(String, String)> = [
        ("Action", "CreateUploadVideo".to_owned()),
        ("Version", "2017-03-21".into()),
        ("Format", "JSON".into()),
        ("AccessKeyId", account.key_id.clone()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("SignatureNonce", format!("{:032x}", rand::random::<u128>())),
        ("Timestamp", iso8601(SystemTime::now())),
        ("Title", format!("bench {n}")),
        ("FileName", "bench.mp4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let signature = vod_v1::sign_params("POST", &pairs, &account.secret);
    pairs.push(("Signature".into(), signature));
    let response = client
        .post(format!("{}/?{}", account.vod, query_encode(&pairs)))
        .send()
        .await
        .map_err(|e| format!("CreateUploadVideo to {}: {e}", account.vod))?;
    let text = response.text().await.map_err(|e| format!("CreateUploadVideo reply body: {e}"))?;
    let reply: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("CreateUploadVideo reply is not JSON: {text}"))?;
    if reply["UploadAddress"].is_string() {
        Ok(reply)
    } else {
        Err(format!("CreateUploadVideo failed: {reply}"))
    }
}

/// CreateUploadVideo, decoded into where to upload and with which credential.
pub async fn create_upload(
    client: &reqwest::Client,
    account: &Account,
    n: usize,
) -> (UploadAddress, UploadAuth) {
    let reply = create_upload_video(client, account, n).await.unwrap_or_else(|e| panic!("{e}"));
    let address =
        UploadAddress::decode(reply["UploadAddress"].as_str().expect("UploadAddress")).expect("address");
    let auth = UploadAuth::decode(reply["UploadAuth"].as_str().expect("UploadAuth")).expect("auth");
    (address, auth)
}

/// Sends one signed OSS request with the upload credential.
async fn oss(
    client: &reqwest::Client,
    address: &UploadAddress,
    auth: &UploadAuth,
    method: &str,
    query: &[(String, String)],
    body: Bytes,
) -> reqwest::Response {
    let mut headers = HeaderMap::new();
    headers.insert("date", HeaderValue::from_str(&http_date(SystemTime::now())).expect("date"));
    headers
        .insert("x-oss-security-token", HeaderValue::from_str(auth.security_token.expose()).expect("token"));
    let request = OssRequest {
        method,
        bucket: Some(&address.bucket),
        key: Some(&address.file_name),
        query,
        headers: &headers,
    };
    let authorization = signature_v1::authorization(&request, &auth.access_key_id, &auth.access_key_secret);
    headers.insert("authorization", HeaderValue::from_str(&authorization).expect("authorization"));
    let url = format!(
        "{}/{}/{}{}",
        address.endpoint,
        address.bucket,
        percent_encode_path(&address.file_name),
        if query.is_empty() { String::new() } else { format!("?{}", query_encode(query)) }
    );
    let response = client
        .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("oss request");
    assert!(response.status().is_success(), "{method} failed: {}", response.status());
    response
}

/// One whole multipart upload of `size` bytes in parts sliced from `buffer`, `parallel` in flight.
pub async fn multipart(
    client: &reqwest::Client,
    account: &Account,
    n: usize,
    size: u64,
    part: u64,
    parallel: usize,
    buffer: &Bytes,
) {
    let (address, auth) = create_upload(client, account, n).await;
    let init = oss(client, &address, &auth, "POST", &[("uploads".into(), String::new())], Bytes::new()).await;
    let init: InitiateMultipartUploadResult =
        from_xml(&init.text().await.expect("body")).expect("initiate XML");
    let parts = size.div_ceil(part);
    let etags: Vec<(u32, String)> = futures_util::stream::iter(1..=parts)
        .map(|number| {
            let (address, auth, upload_id) = (&address, &auth, init.upload_id.clone());
            let len = part.min(size - (number - 1) * part) as usize;
            let body = buffer.slice(0..len);
            async move {
                let query =
                    vec![("partNumber".to_owned(), number.to_string()), ("uploadId".to_owned(), upload_id)];
                let response = oss(client, address, auth, "PUT", &query, body).await;
                let etag = response.headers()["etag"].to_str().expect("etag").to_owned();
                (number as u32, etag)
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    let body = to_xml_fragment(&CompleteMultipartUpload {
        parts: etags.into_iter().map(|(part_number, etag)| CompletePart { part_number, etag }).collect(),
    });
    oss(client, &address, &auth, "POST", &[("uploadId".into(), init.upload_id)], Bytes::from(body)).await;
}
