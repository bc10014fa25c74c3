//! `CorruptingProxy` forwards requests untouched, and damages exactly the UploadPart bodies its mode
//! names, one byte each, keeping their length.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vodup_proto::mac::content_md5;
use vodup_proto::oss::xml::{InitiateMultipartUploadResult, from_xml};
use vodup_testkit::{CorruptingProxy, Corruption, OssCall, TestServer, random_bytes};

/// An upstream that answers 201 with what it received: method, target, Host, Content-Length, and the
/// length and MD5 of the body (hashed as it streams in).
async fn echo_server() -> SocketAddr {
    async fn echo(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> (StatusCode, HeaderMap, String) {
        let mut stream = body.into_data_stream();
        let (mut hasher, mut len) = (Md5::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            hasher.update(&chunk);
            len += chunk.len() as u64;
        }
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        let mut reply = HeaderMap::new();
        reply.insert("x-echo", "yes".parse().unwrap());
        let report = json!({
            "method": method.as_str(),
            "uri": uri.to_string(),
            "host": header("host"),
            "content_length": header("content-length"),
            "x_custom": header("x-custom"),
            "len": len,
            "md5": hex(&hasher.finalize()),
        });
        (StatusCode::CREATED, reply, report.to_string())
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    addr
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn put(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Value {
    let response = client.put(url).body(body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    json(response).await
}

#[tokio::test]
async fn pass_through_forwards_everything_unchanged() {
    let proxy = CorruptingProxy::start(echo_server().await, Corruption::PassThrough).await;
    let client = reqwest::Client::new();
    let body = random_bytes(300_000, 1);
    let url = format!("{}/bucket/k%20ey?partNumber=1&uploadId=u", proxy.url());
    let response = client.put(&url).header("x-custom", "kept").body(body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-echo"], "yes");
    let echo = json(response).await;
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["uri"], "/bucket/k%20ey?partNumber=1&uploadId=u");
    assert_eq!(echo["host"], proxy.addr().to_string(), "Host is the client's, not rewritten");
    assert_eq!(echo["x_custom"], "kept");
    assert_eq!(echo["content_length"], "300000");
    assert_eq!(echo["md5"], md5_hex(&body));

    let get = client.get(format!("{}/x?y=z", proxy.url())).send().await.unwrap();
    let echo = json(get).await;
    assert_eq!((echo["method"].as_str(), echo["uri"].as_str()), (Some("GET"), Some("/x?y=z")));
    assert_eq!(proxy.corrupted(), 0);
}

#[tokio::test]
async fn once_part_damages_only_the_first_upload_of_that_part() {
    let proxy = CorruptingProxy::start(echo_server().await, Corruption::OncePart(2)).await;
    let client = reqwest::Client::new();
    let body = random_bytes(250_000, 2);
    let part = |n: u32| format!("{}/b/k?partNumber={n}&uploadId=abc", proxy.url());

    // Neighbours of the target are left alone: another part, another method, no upload id.
    assert_eq!(put(&client, &part(1), body.clone()).await["md5"], md5_hex(&body));
    let post = client.post(part(2)).body(body.clone()).send().await.unwrap();
    assert_eq!(json(post).await["md5"], md5_hex(&body));
    let no_upload = format!("{}/b/k?partNumber=2", proxy.url());
    assert_eq!(put(&client, &no_upload, body.clone()).await["md5"], md5_hex(&body));
    assert_eq!(proxy.corrupted(), 0);

    let damaged = put(&client, &part(2), body.clone()).await;
    assert_ne!(damaged["md5"], md5_hex(&body));
    assert_eq!(damaged["len"], 250_000, "the length is kept");
    assert_eq!(damaged["content_length"], "250000");
    let mut flipped = body.clone();
    flipped[125_000] ^= 0xFF;
    assert_eq!(damaged["md5"], md5_hex(&flipped), "exactly the middle byte is flipped");
    assert_eq!(proxy.corrupted(), 1);

    for _ in 0..2 {
        assert_eq!(put(&client, &part(2), body.clone()).await["md5"], md5_hex(&body));
    }
    assert_eq!(proxy.corrupted(), 1);

    proxy.set_mode(Corruption::OncePart(2));
    assert_ne!(put(&client, &part(2), body.clone()).await["md5"], md5_hex(&body), "re-armed");
    assert_eq!(proxy.corrupted(), 2);
}

#[tokio::test]
async fn every_part_damages_each_upload_even_chunked_ones() {
    let proxy = CorruptingProxy::start(echo_server().await, Corruption::EveryPart(3)).await;
    let client = reqwest::Client::new();
    let body = random_bytes(1 << 20, 3);
    let url = format!("{}/b/k?uploadId=abc&partNumber=3", proxy.url());
    for _ in 0..3 {
        let echo = put(&client, &url, body.clone()).await;
        assert_ne!(echo["md5"], md5_hex(&body));
        assert_eq!(echo["len"], 1 << 20);
    }
    // No Content-Length: the stream is chunked and the first non-empty chunk takes the damage.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let streamed = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let echo = json(client.put(&url).body(streamed).send().await.unwrap()).await;
    assert_eq!(echo["content_length"], Value::Null);
    assert_eq!(echo["len"], 1 << 20);
    assert_ne!(echo["md5"], md5_hex(&body));
    assert_eq!(proxy.corrupted(), 4);

    proxy.set_mode(Corruption::PassThrough);
    assert_eq!(put(&client, &url, body.clone()).await["md5"], md5_hex(&body));
    assert_eq!(proxy.corrupted(), 4);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let proxy = CorruptingProxy::start(closed, Corruption::PassThrough).await;
    let response = reqwest::get(format!("{}/x", proxy.url())).await.unwrap();
    assert_eq!(response.status(), 502);
}

/// The route the SDK tests take: UploadAddress names the proxy, and a part damaged on the way is refused
/// by its Content-MD5 and stored on the retry.
#[tokio::test]
async fn behind_a_test_server_a_damaged_part_is_refused_then_stored() {
    let (server, proxy) = TestServer::start_behind(
        |_| {},
        async |oss| {
            let proxy = CorruptingProxy::start(oss, Corruption::OncePart(1)).await;
            (proxy.url(), proxy)
        },
    )
    .await;
    assert_eq!(server.state.site.endpoint, proxy.url());
    let created = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "a.mp4")]).await;
    let address =
        vodup_proto::upload_auth::UploadAddress::decode(created.body["UploadAddress"].as_str().unwrap())
            .unwrap();
    assert_eq!(address.endpoint, proxy.url());

    let key = "free/part.bin";
    let initiated =
        server.oss(OssCall::new("POST", Some(key), server.key_credential()).query("uploads", "")).await;
    assert_eq!(initiated.status(), 200);
    let upload_id =
        from_xml::<InitiateMultipartUploadResult>(&initiated.text().await.unwrap()).unwrap().upload_id;
    let body = random_bytes(200_000, 4);
    let part = || {
        OssCall::new("PUT", Some(key), server.key_credential())
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .header("content-md5", &content_md5(&body))
            .body(body.clone())
    };

    let refused = server.oss_at(&proxy.url(), part()).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("InvalidDigest"));
    assert_eq!(proxy.corrupted(), 1);
    let refused_metric = r#"vodup_requests_total{plane="oss",action="UploadPart",code="InvalidDigest"}"#;
    assert_eq!(server.metric(refused_metric).await, 1.0);
    assert_eq!(server.metric("vodup_bytes_received_total").await, 0.0);

    let stored = server.oss_at(&proxy.url(), part()).await;
    assert_eq!(stored.status(), 200);
    assert_eq!(server.metric("vodup_bytes_received_total").await, 200_000.0);
    assert_eq!(server.metric("vodup_parts_uploaded_total").await, 1.0);
    assert_eq!(server.metric("vodup_uploads_initiated_total").await, 1.0);
    assert_eq!(server.metric("vodup_requests_total").await, 4.0, "Create, Initiate and two UploadParts");
    server.stop().await;
}
