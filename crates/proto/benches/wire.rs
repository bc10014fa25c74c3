//! Benchmarks of the wire layer's hot functions: CRC-64 one-shot and streamed (4 KiB and 1 MiB
//! chunks, the ratio to one-shot is the number that matters), MD5 (the data plane's real bound), each
//! signing function, and UploadAuth decoding. `cargo bench -p vodup-proto`; figures go to BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use divan::Bencher;
use divan::counter::BytesCount;
use http::{HeaderMap, HeaderValue};
use vodup_proto::Secret;
use vodup_proto::crc64;
use vodup_proto::mac;
use vodup_proto::oss::{OssRequest, signature_v1, signature_v4};
use vodup_proto::timestamp;
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::vod::{signature_acs3, signature_v1 as vod_v1};

fn main() {
    divan::main();
}

// 8 MiB: large enough to dwarf per-call overhead, small enough to stay in cache, as a part streaming
// through socket buffers does. (A buffer far beyond the cache measures DRAM, not the hash.)
const BUFFER: usize = 8 << 20;

fn buffer() -> Vec<u8> {
    // Deterministic, incompressible-looking bytes.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..BUFFER)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[divan::bench(min_time = Duration::from_secs(2))]
fn crc64_one_shot(bencher: Bencher) {
    let data = buffer();
    bencher.counter(BytesCount::new(data.len())).bench(|| crc64::checksum(black_box(&data)));
}

#[divan::bench(args = [4 << 10, 1 << 20], min_time = Duration::from_secs(2))]
fn crc64_streamed(bencher: Bencher, chunk: usize) {
    let data = buffer();
    bencher.counter(BytesCount::new(data.len())).bench(|| {
        let mut crc = crc64::Crc64::new();
        for piece in black_box(&data).chunks(chunk) {
            crc.update(piece);
        }
        crc.value()
    });
}

#[divan::bench(min_time = Duration::from_secs(2))]
fn md5(bencher: Bencher) {
    let data = buffer();
    bencher.counter(BytesCount::new(data.len())).bench(|| mac::md5(black_box(&data)));
}

fn vod_params() -> Vec<(String, String)> {
    [
        ("Action", "CreateUploadVideo"),
        ("Version", "2017-03-21"),
        ("Format", "JSON"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureType", ""),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("Timestamp", "2024-01-01T12:00:00Z"),
        ("RegionId", "cn-shanghai"),
        ("Title", "My video 测试*~"),
        ("FileName", "a b.mp4"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

#[divan::bench]
fn sign_vod_v1(bencher: Bencher) {
    let (params, secret) = (vod_params(), Secret::new("testsecret"));
    bencher.bench(|| vod_v1::sign_params("POST", black_box(&params), &secret));
}

#[divan::bench]
fn sign_vod_acs3(bencher: Bencher) {
    let secret = Secret::new("testsecret");
    let query = vec![
        ("Title".to_owned(), "My video 测试*~".to_owned()),
        ("FileName".to_owned(), "a b.mp4".to_owned()),
    ];
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("host", "vod.cn-shanghai.aliyuncs.com"),
        ("x-acs-action", "CreateUploadVideo"),
        ("x-acs-version", "2017-03-21"),
        ("x-acs-date", "2024-01-01T12:00:00Z"),
        ("x-acs-signature-nonce", "3ee8c1b883d344afa94f4e0ad82fd6cf"),
        ("x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    let hashed = mac::sha256_hex(b"");
    let names: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    bencher.bench(|| {
        let request = signature_acs3::Acs3Request {
            method: "POST",
            path: "/",
            query: black_box(&query),
            headers: &headers,
            hashed_payload: &hashed,
        };
        signature_acs3::authorization(&request, "testid", &secret, names.clone())
    });
}

fn oss_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("date", HeaderValue::from_static("Wed, 25 Nov 2026 08:00:00 GMT"));
    headers.insert("x-oss-date", HeaderValue::from_static("20261125T080000Z"));
    headers.insert("x-oss-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
    headers.insert("x-oss-security-token", HeaderValue::from_static("CAIS-example-token"));
    headers
}

fn part_query() -> Vec<(String, String)> {
    vec![("partNumber".into(), "1".into()), ("uploadId".into(), "0004B9895DBBB6EC98E36".into())]
}

#[divan::bench]
fn sign_oss_v1_header(bencher: Bencher) {
    let (headers, query, secret) = (oss_headers(), part_query(), Secret::new("ExampleSecretKey123"));
    bencher.bench(|| {
        let request = OssRequest {
            method: "PUT",
            bucket: Some("b"),
            key: Some("sv/video.mp4"),
            query: black_box(&query),
            headers: &headers,
        };
        signature_v1::authorization(&request, "STS.ak", &secret)
    });
}

#[divan::bench]
fn sign_oss_v1_presign(bencher: Bencher) {
    let (headers, secret) = (HeaderMap::new(), Secret::new("ExampleSecretKey123"));
    bencher.bench(|| {
        let request = OssRequest {
            method: "GET",
            bucket: Some("b"),
            key: Some(black_box("sv/video.mp4")),
            query: &[],
            headers: &headers,
        };
        signature_v1::presign_query(&request, "ak", &secret, 1_795_680_000, None)
    });
}

#[divan::bench]
fn sign_oss_v4_header(bencher: Bencher) {
    let (headers, query, secret) = (oss_headers(), part_query(), Secret::new("ExampleSecretKey123"));
    let at = timestamp::parse_oss_v4_date("20261125T080000Z").unwrap();
    bencher.bench(|| {
        let request = OssRequest {
            method: "PUT",
            bucket: Some("b"),
            key: Some("sv/video.mp4"),
            query: black_box(&query),
            headers: &headers,
        };
        signature_v4::authorization(&request, "STS.ak", &secret, "cn-hangzhou", at, &[])
    });
}

#[divan::bench]
fn sign_oss_v4_presign(bencher: Bencher) {
    let (headers, secret) = (HeaderMap::new(), Secret::new("ExampleSecretKey123"));
    let at = timestamp::parse_oss_v4_date("20261125T080000Z").unwrap();
    bencher.bench(|| {
        let request = OssRequest {
            method: "GET",
            bucket: Some("b"),
            key: Some(black_box("sv/video.mp4")),
            query: &[],
            headers: &headers,
        };
        signature_v4::presign_query(&request, "ak", &secret, None, "cn-hangzhou", at, 900)
    });
}

#[divan::bench]
fn decode_upload_auth(bencher: Bencher) {
    let auth = UploadAuth::new(
        "STS.NTestExampleAK",
        Secret::new("ExampleSecretKey123ExampleSecretKey123"),
        Secret::new("CAIS".repeat(150)),
        timestamp::from_unix_seconds(1_795_593_600),
        Duration::from_secs(3600),
        "cn-shanghai",
    )
    .encode();
    let address = UploadAddress::new(
        "https://oss-cn-shanghai.aliyuncs.com",
        "outin-0123456789abcdef",
        "sv/1a2b3c4d-18f2a3b4c5d/1a2b3c4d-18f2a3b4c5d.mp4",
    )
    .encode();
    bencher.bench(|| {
        (UploadAuth::decode(black_box(&auth)).unwrap(), UploadAddress::decode(black_box(&address)).unwrap())
    });
}
