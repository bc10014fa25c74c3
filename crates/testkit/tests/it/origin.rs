//! `OriginServer` answers like the kind of origin each option describes, refuses what is outside its
//! folder, and counts what clients asked for.

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE, TRANSFER_ENCODING,
};
use vodup_testkit::{OriginOptions, OriginServer, random_bytes, write_random_file};

use crate::raw;

/// 3 MiB and a bit, so whole-file bodies span many chunks.
const LEN: u64 = 3 * 1024 * 1024 + 17;
const SEED: u64 = 11;

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/a b")).unwrap();
    write_random_file(&dir.path().join("root/a b/clip.bin"), LEN, SEED).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "outside the root").unwrap();
    dir
}

async fn start(dir: &Path, options: OriginOptions) -> OriginServer {
    OriginServer::start(dir.join("root"), options).await
}

#[tokio::test]
async fn default_origin_serves_ranges_lengths_and_validators() {
    let dir = folder();
    let origin = start(dir.path(), OriginOptions::default()).await;
    let expected = random_bytes(LEN as usize, SEED);
    let url = origin.url("a b/clip.bin");
    assert!(url.ends_with("/a%20b/clip.bin"), "{url}");
    let client = reqwest::Client::new();

    let whole = client.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(whole.headers()[CONTENT_LENGTH], LEN.to_string().as_str());
    let etag = whole.headers()[ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(whole.headers().contains_key(LAST_MODIFIED));
    assert!(whole.bytes().await.unwrap() == expected);

    let part = client.get(&url).header(RANGE, "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()[CONTENT_RANGE], format!("bytes 100-199/{LEN}").as_str());
    assert_eq!(part.headers()[CONTENT_LENGTH], "100");
    assert_eq!(part.headers()[ETAG], etag.as_str(), "the validator names the file, not the range");
    assert!(part.bytes().await.unwrap() == expected[100..200]);

    let from = client.get(&url).header(RANGE, "bytes=3145728-").send().await.unwrap();
    assert_eq!(from.status(), StatusCode::PARTIAL_CONTENT);
    assert!(from.bytes().await.unwrap() == expected[3_145_728..]);

    let suffix = client.get(&url).header(RANGE, "bytes=-10").send().await.unwrap();
    assert_eq!(suffix.headers()[CONTENT_RANGE], format!("bytes {}-{}/{LEN}", LEN - 10, LEN - 1).as_str());
    assert!(suffix.bytes().await.unwrap() == expected[expected.len() - 10..]);

    let past = client.get(&url).header(RANGE, format!("bytes={LEN}-")).send().await.unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()[CONTENT_RANGE], format!("bytes */{LEN}").as_str());

    assert_eq!(origin.requests(), 5);
    assert_eq!(origin.range_requests(), 4);
    assert_eq!(origin.bytes_sent(), LEN + 100 + (LEN - 3_145_728) + 10);
}

#[tokio::test]
async fn head_describes_without_a_body_and_is_not_counted() {
    let dir = folder();
    let origin = start(dir.path(), OriginOptions::default()).await;
    let (status, head, body) = raw::request(origin.addr(), "HEAD", "/a%20b/clip.bin").await;
    assert_eq!(status, 200);
    assert!(head.contains(&format!("content-length: {LEN}\r\n")), "{head}");
    assert!(head.contains("accept-ranges: bytes\r\n"), "{head}");
    assert!(body.is_empty());
    assert_eq!((origin.requests(), origin.bytes_sent()), (0, 0));
}

#[tokio::test]
async fn without_ranges_the_whole_file_comes_back() {
    let dir = folder();
    let options = OriginOptions { ranges: false, ..OriginOptions::default() };
    let origin = start(dir.path(), options).await;
    let response = reqwest::Client::new()
        .get(origin.url("a b/clip.bin"))
        .header(RANGE, "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key(ACCEPT_RANGES));
    assert!(!response.headers().contains_key(CONTENT_RANGE));
    assert_eq!(response.bytes().await.unwrap().len() as u64, LEN);
    assert_eq!((origin.requests(), origin.range_requests(), origin.bytes_sent()), (1, 1, LEN));
}

#[tokio::test]
async fn without_a_length_bodies_are_chunked_and_head_has_no_length() {
    let dir = folder();
    let options = OriginOptions { content_length: false, ..OriginOptions::default() };
    let origin = start(dir.path(), options).await;
    let response = reqwest::Client::new().get(origin.url("a b/clip.bin")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key(CONTENT_LENGTH));
    assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");
    assert_eq!(response.content_length(), None);
    assert!(response.bytes().await.unwrap() == random_bytes(LEN as usize, SEED));

    let (status, head, _) = raw::request(origin.addr(), "HEAD", "/a%20b/clip.bin").await;
    assert_eq!(status, 200);
    assert!(!head.contains("content-length"), "{head}");
}

#[tokio::test]
async fn without_validators_there_is_no_etag_or_date() {
    let dir = folder();
    let options = OriginOptions { validators: false, ..OriginOptions::default() };
    let origin = start(dir.path(), options).await;
    let response = reqwest::Client::new().head(origin.url("a b/clip.bin")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key(ETAG));
    assert!(!response.headers().contains_key(LAST_MODIFIED));
}

#[tokio::test]
async fn queries_are_ignored_missing_files_are_404_and_traversal_is_403() {
    let dir = folder();
    let origin = start(dir.path(), OriginOptions::default()).await;
    let client = reqwest::Client::new();
    let with_token =
        client.get(format!("{}?token=abc&x=1", origin.url("a b/clip.bin"))).send().await.unwrap();
    assert_eq!(with_token.status(), StatusCode::OK);
    assert_eq!(client.get(origin.url("a b/none.bin")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(client.get(origin.url("a b")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    for target in ["/../secret.txt", "/a%20b/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        let (status, _, body) = raw::request(origin.addr(), "GET", target).await;
        assert_eq!(status, 403, "{target}");
        assert!(!String::from_utf8_lossy(&body).contains("outside the root"), "{target}");
    }
    let put = client.put(origin.url("a b/clip.bin")).body("x").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(origin.requests(), 7, "every GET counts, whatever its answer");
}

#[tokio::test]
async fn stop_closes_the_port() {
    let dir = folder();
    let origin = start(dir.path(), OriginOptions::default()).await;
    let addr = origin.addr();
    origin.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
