//! Signed calls to a running `vodup serve`, wherever it runs (in this process as a [`TestServer`], or as
//! a child process as a [`ServeProcess`](crate::ServeProcess)): raw VOD RPC and OSS requests signed with
//! vodup-proto, and its `/metrics` counters.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use vodup_proto::Secret;
use vodup_proto::encoding::{percent_encode_path, query_encode};
use vodup_proto::oss::{OssRequest, signature_v1, signature_v4};
use vodup_proto::timestamp::{http_date, iso8601, oss_v4_date};
use vodup_proto::vod::signature_v1 as vod_v1;

/// Where a server listens and the long-lived key tests sign with.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:P` of the VOD plane.
    pub vod_url: String,
    /// `http://127.0.0.1:P` of the OSS plane.
    pub oss_url: String,
    /// A long-lived key created for the test.
    pub key_id: String,
    /// Its secret.
    pub key_secret: Secret,
    bucket: String,
    client: reqwest::Client,
}

/// A VOD reply: status and JSON body.
#[derive(Debug)]
pub struct VodReply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl VodReply {
    /// `Code` of an error body ("" on success).
    pub fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or("")
    }
}

/// How an OSS call is authenticated.
#[derive(Debug, Clone)]
pub enum OssCredential {
    /// No credentials.
    Anonymous,
    /// V1 header signature with a key (and a token for STS).
    V1 {
        /// AccessKeyId.
        id: String,
        /// Secret.
        secret: Secret,
        /// STS token.
        token: Option<String>,
    },
    /// V4 header signature.
    V4 {
        /// AccessKeyId.
        id: String,
        /// Secret.
        secret: Secret,
        /// STS token.
        token: Option<String>,
        /// Signing region.
        region: String,
    },
}

/// An OSS request to send.
#[derive(Debug, Clone)]
pub struct OssCall {
    /// Method.
    pub method: String,
    /// Object key (decoded), or `None` for bucket-level.
    pub key: Option<String>,
    /// Bucket override (default: the server's).
    pub bucket: Option<String>,
    /// Query pairs.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Credential.
    pub credential: OssCredential,
    /// Signing time (default: now).
    pub at: Option<SystemTime>,
}

impl OssCall {
    /// A call with no query, headers or body.
    pub fn new(method: &str, key: Option<&str>, credential: OssCredential) -> Self {
        Self {
            method: method.to_owned(),
            key: key.map(str::to_owned),
            bucket: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            credential,
            at: None,
        }
    }

    /// Adds a query pair.
    #[must_use]
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

impl Api {
    /// Calls to the server at these URLs, signed with this key.
    pub fn new(vod_url: String, oss_url: String, bucket: String, key_id: String, key_secret: Secret) -> Self {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        Self { vod_url, oss_url, key_id, key_secret, bucket, client }
    }

    /// The same key and bucket at new URLs (a server restarted on new ports).
    #[must_use]
    pub fn at(self, vod_url: String, oss_url: String) -> Self {
        Self { vod_url, oss_url, ..self }
    }

    /// The HTTP client the helpers use.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A VOD call signed (v1) with the test's key.
    pub async fn vod(&self, action: &str, params: &[(&str, &str)]) -> VodReply {
        self.vod_as(&self.key_id, &self.key_secret, action, params).await
    }

    /// A VOD call signed (v1) with any key.
    pub async fn vod_as(
        &self,
        key_id: &str,
        secret: &Secret,
        action: &str,
        params: &[(&str, &str)],
    ) -> VodReply {
        let nonce = format!("{:032x}", rand_u128());
        let timestamp = iso8601(SystemTime::now());
        let mut pairs: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), "2017-03-21".into()),
            ("Format".into(), "JSON".into()),
            ("AccessKeyId".into(), key_id.into()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), nonce),
            ("Timestamp".into(), timestamp),
        ];
        pairs.extend(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let signature = vod_v1::sign_params("POST", &pairs, secret);
        pairs.push(("Signature".into(), signature));
        self.vod_raw(&query_encode(&pairs), &[]).await
    }

    /// A VOD call with a raw query string and extra headers (no signing).
    pub async fn vod_raw(&self, query: &str, headers: &[(&str, &str)]) -> VodReply {
        let mut request = self.client.post(format!("{}/?{query}", self.vod_url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("vod request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("vod body");
        VodReply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    /// Sends a signed OSS call.
    pub async fn oss(&self, call: OssCall) -> reqwest::Response {
        self.oss_at(&self.oss_url, call).await
    }

    /// Sends a signed OSS call to another `http://host:port` that leads to this server's OSS plane (a
    /// [`CorruptingProxy`](crate::CorruptingProxy) in front of it, say).
    pub async fn oss_at(&self, base_url: &str, call: OssCall) -> reqwest::Response {
        self.try_oss_at(base_url, call).await.expect("oss request")
    }

    /// Sends a signed OSS call that may fail at the connection (a server that dies while answering).
    pub async fn try_oss(&self, call: OssCall) -> reqwest::Result<reqwest::Response> {
        self.try_oss_at(&self.oss_url, call).await
    }

    async fn try_oss_at(&self, base_url: &str, call: OssCall) -> reqwest::Result<reqwest::Response> {
        self.oss_request(base_url, call).send().await
    }

    /// A signed OSS call as a request not yet sent, so a test can give it a body of its own (a stream
    /// that stalls, say: the signature does not cover the body).
    pub fn oss_request(&self, base_url: &str, call: OssCall) -> reqwest::RequestBuilder {
        let bucket = call.bucket.clone().unwrap_or_else(|| self.bucket().to_owned());
        let at = call.at.unwrap_or_else(SystemTime::now);
        let mut headers = HeaderMap::new();
        for (k, v) in &call.headers {
            headers.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        match &call.credential {
            OssCredential::Anonymous => {}
            OssCredential::V1 { id, secret, token } => {
                headers.insert("date", HeaderValue::from_str(&http_date(at)).unwrap());
                if let Some(token) = token {
                    headers.insert("x-oss-security-token", HeaderValue::from_str(token).unwrap());
                }
                let request = OssRequest {
                    method: &call.method,
                    bucket: Some(&bucket),
                    key: call.key.as_deref(),
                    query: &call.query,
                    headers: &headers,
                };
                let value = signature_v1::authorization(&request, id, secret);
                headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
            }
            OssCredential::V4 { id, secret, token, region } => {
                headers.insert("x-oss-date", HeaderValue::from_str(&oss_v4_date(at)).unwrap());
                headers.insert("x-oss-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
                if let Some(token) = token {
                    headers.insert("x-oss-security-token", HeaderValue::from_str(token).unwrap());
                }
                let request = OssRequest {
                    method: &call.method,
                    bucket: Some(&bucket),
                    key: call.key.as_deref(),
                    query: &call.query,
                    headers: &headers,
                };
                let value = signature_v4::authorization(&request, id, secret, region, at, &[]);
                headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
            }
        }
        let path = match &call.key {
            Some(key) => format!("/{bucket}/{}", percent_encode_path(key)),
            None => format!("/{bucket}/"),
        };
        let query =
            if call.query.is_empty() { String::new() } else { format!("?{}", query_encode(&call.query)) };
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).unwrap();
        self.client
            .request(method, format!("{}{path}{query}", base_url.trim_end_matches('/')))
            .headers(headers)
            .body(call.body)
    }

    /// The `/metrics` page (Prometheus text), served on the VOD listener without credentials.
    pub async fn metrics_text(&self) -> String {
        let response =
            self.client.get(format!("{}/metrics", self.vod_url)).send().await.expect("metrics request");
        assert!(response.status().is_success(), "/metrics answered {}", response.status());
        response.text().await.expect("metrics body")
    }

    /// One value from `/metrics`, 0.0 when absent. A `name` with labels must match a sample exactly
    /// (labels in the order the server writes them); a bare metric name sums all its samples.
    ///
    /// What the server counts (`crates/server/src/metrics.rs`):
    /// - `vodup_requests_total{plane="vod"|"oss",action="…",code="…"}`: requests answered, by plane,
    ///   action (`CreateUploadVideo`, `RefreshUploadVideo`, `UploadPart`, `PutObject`,
    ///   `CompleteMultipartUpload`…) and code (`OK` or the error code), for example
    ///   `vodup_requests_total{plane="oss",action="UploadPart",code="InvalidDigest"}`;
    /// - `vodup_bytes_received_total`: body bytes stored by PutObject and UploadPart;
    /// - `vodup_blob_writes_in_flight`: bodies being written to storage now (a gauge);
    /// - `vodup_parts_uploaded_total`: multipart parts stored;
    /// - `vodup_objects_completed_total`: objects published by PutObject or CompleteMultipartUpload;
    /// - `vodup_uploads_initiated_total`: multipart uploads initiated;
    /// - `vodup_credential_refreshes_total`: RefreshUploadVideo calls answered.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics_text().await, name)
    }

    /// The test key as an OSS V1 credential.
    pub fn key_credential(&self) -> OssCredential {
        OssCredential::V1 { id: self.key_id.clone(), secret: self.key_secret.clone(), token: None }
    }
}

/// The value of sample `name` in a Prometheus text exposition, or the sum of every sample of a metric
/// when `name` has no labels.
fn metric_value(text: &str, name: &str) -> f64 {
    let samples = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(sample, value)| Some((sample, value.parse::<f64>().ok()?)));
    if name.contains('{') {
        samples.filter(|(sample, _)| *sample == name).map(|(_, value)| value).sum()
    } else {
        samples
            .filter(|(sample, _)| sample.split_once('{').map_or(*sample, |(metric, _)| metric) == name)
            .map(|(_, value)| value)
            .sum()
    }
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos());
    (u128::from(hasher.finish()) << 64)
        | u128::from(std::collections::hash_map::RandomState::new().build_hasher().finish())
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    #[test]
    fn metric_values_by_sample_or_by_name() {
        let text = "# HELP vodup_requests_total Requests.\n# TYPE vodup_requests_total counter\n\
                    vodup_requests_total{plane=\"vod\",action=\"A\",code=\"OK\"} 2\n\
                    vodup_requests_total{plane=\"oss\",action=\"B\",code=\"OK\"} 3\n\
                    vodup_bytes_received_total 10\nvodup_bytes_received_total_x 99\n";
        assert_eq!(metric_value(text, "vodup_requests_total"), 5.0);
        assert_eq!(metric_value(text, r#"vodup_requests_total{plane="oss",action="B",code="OK"}"#), 3.0);
        assert_eq!(metric_value(text, r#"vodup_requests_total{plane="oss",action="C",code="OK"}"#), 0.0);
        assert_eq!(metric_value(text, "vodup_bytes_received_total"), 10.0);
        assert_eq!(metric_value(text, "vodup_absent"), 0.0);
    }
}
