//! Property tests: a signature verifies only as it was made. For every scheme, every bit of every byte
//! of a valid signature as sent, and of the string it signs, is flipped in turn, and verification must
//! refuse each one. Strict decoding is what makes this hold for the last Base64 character and for hex
//! letter case. Also: part CRCs combined at random split points equal the CRC of the whole.

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use vodup_proto::Secret;
use vodup_proto::crc64;
use vodup_proto::oss::{OssCredential, OssRequest, signature_v1, signature_v4};
use vodup_proto::timestamp;
use vodup_proto::vod::{signature_acs3, signature_v1 as vod_v1};

/// Every string obtained from `text` by flipping one bit. Flips that leave UTF-8 are read lossily,
/// which is what a server decoding the request would see; those strings differ from `text` too.
fn bit_flips(text: &str) -> impl Iterator<Item = String> + '_ {
    (0..text.len() * 8).map(move |bit| {
        let mut bytes = text.as_bytes().to_vec();
        bytes[bit / 8] ^= 1 << (bit % 8);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn assert_every_flip_refused(what: &str, original: &str, verifies: impl Fn(&str) -> bool) {
    assert!(verifies(original), "{what}: the untampered value must verify");
    let mut flips = 0;
    for flipped in bit_flips(original) {
        assert_ne!(flipped, original);
        assert!(!verifies(&flipped), "{what}: a flipped value verified: {flipped:?}");
        flips += 1;
    }
    assert_eq!(flips, original.len() * 8);
}

fn vod_params() -> Vec<(String, String)> {
    [
        ("Action", "CreateUploadVideo"),
        ("Version", "2017-03-21"),
        ("Format", "JSON"),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
        ("Timestamp", "2024-01-01T12:00:00Z"),
        ("Title", "My video 测试*~"),
        ("FileName", "a b.mp4"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

#[test]
fn vod_v1_refuses_every_flipped_bit() {
    let secret = Secret::new("testsecret");
    let params = vod_params();
    let signature = vod_v1::sign_params("POST", &params, &secret);
    assert_every_flip_refused("VOD v1 signature", &signature, |sig| {
        let mut signed = params.clone();
        signed.push(("Signature".into(), sig.into()));
        vod_v1::verify("POST", &signed, &secret).is_ok()
    });
    let string_to_sign = vod_v1::string_to_sign("POST", &params);
    assert_every_flip_refused("VOD v1 string to sign", &string_to_sign, |sts| {
        vod_v1::verify_string(&secret, sts, &signature).is_ok()
    });
}

#[test]
fn acs3_refuses_every_flipped_bit() {
    let secret = Secret::new("testsecret");
    let query = vec![("Title".to_owned(), "My video 测试*~".to_owned())];
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("vod.cn-shanghai.aliyuncs.com"));
    headers.insert("x-acs-action", HeaderValue::from_static("CreateUploadVideo"));
    headers.insert("x-acs-date", HeaderValue::from_static("2024-01-01T12:00:00Z"));
    let hashed = vodup_proto::mac::sha256_hex(b"");
    let request = signature_acs3::Acs3Request {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };
    let names = vec!["host".to_owned(), "x-acs-action".to_owned(), "x-acs-date".to_owned()];
    let auth = signature_acs3::authorization(&request, "testid", &secret, names).unwrap();
    assert_every_flip_refused("ACS3 signature", &auth.signature, |sig| {
        let tampered = signature_acs3::Acs3Authorization { signature: sig.to_owned(), ..auth.clone() };
        signature_acs3::verify("POST", "/", &query, &headers, b"", &tampered, &secret).is_ok()
    });
    let canonical = signature_acs3::canonical_request(&request, &auth.signed_headers).unwrap();
    let string_to_sign = signature_acs3::string_to_sign(&canonical);
    assert_every_flip_refused("ACS3 string to sign", &string_to_sign, |sts| {
        signature_acs3::verify_string(&secret, sts, &auth.signature).is_ok()
    });
}

fn oss_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    map
}

/// Verifies through the same path the service takes: the credential parsed out of the request.
fn oss_verifies(request: &OssRequest<'_>, secret: &Secret) -> bool {
    OssCredential::from_request(request).and_then(|c| c.verify(request, secret)).is_ok()
}

#[test]
fn oss_v1_header_refuses_every_flipped_bit() {
    let secret = Secret::new("ExampleSecretKey123");
    let query =
        vec![("partNumber".to_owned(), "1".to_owned()), ("uploadId".to_owned(), "0004B98".to_owned())];
    let base = [("date", "Wed, 25 Nov 2026 08:00:00 GMT"), ("x-oss-security-token", "CAIS-example-token")];
    let headers = oss_headers(&base);
    let request = OssRequest {
        method: "PUT",
        bucket: Some("b"),
        key: Some("sv/v.mp4"),
        query: &query,
        headers: &headers,
    };
    let authorization = signature_v1::authorization(&request, "STS.ak", &secret);
    let signature = authorization.rsplit_once(':').unwrap().1.to_owned();
    assert_every_flip_refused("OSS V1 signature", &signature, |sig| {
        let Ok(value) = HeaderValue::from_str(&format!("OSS STS.ak:{sig}")) else {
            return false;
        };
        let mut headers = headers.clone();
        headers.insert("authorization", value);
        oss_verifies(&OssRequest { headers: &headers, ..request }, &secret)
    });
    let string_to_sign = signature_v1::string_to_sign(&request, &signature_v1::header_date(&request));
    assert_every_flip_refused("OSS V1 string to sign", &string_to_sign, |sts| {
        signature_v1::verify_string(&secret, sts, &signature).is_ok()
    });
}

#[test]
fn oss_v1_presign_refuses_every_flipped_bit() {
    let secret = Secret::new("ExampleSecretKey123");
    let headers = HeaderMap::new();
    let request =
        OssRequest { method: "GET", bucket: Some("b"), key: Some("a b.mp4"), query: &[], headers: &headers };
    let params = signature_v1::presign_query(&request, "ak", &secret, 1_795_680_000, None);
    let signature = params.last().unwrap().1.clone();
    assert_every_flip_refused("OSS V1 presigned signature", &signature, |sig| {
        let mut query = params.clone();
        query.last_mut().unwrap().1 = sig.to_owned();
        oss_verifies(&OssRequest { query: &query, ..request }, &secret)
    });
    let string_to_sign = signature_v1::string_to_sign(&request, "1795680000");
    assert_every_flip_refused("OSS V1 presigned string to sign", &string_to_sign, |sts| {
        signature_v1::verify_string(&secret, sts, &signature).is_ok()
    });
}

#[test]
fn oss_v4_header_and_presign_refuse_every_flipped_bit() {
    let secret = Secret::new("ExampleSecretKey123");
    let at = timestamp::parse_oss_v4_date("20261125T080000Z").unwrap();
    let base = [
        ("x-oss-date", "20261125T080000Z"),
        ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ("x-oss-security-token", "CAIS-example-token"),
    ];
    let headers = oss_headers(&base);
    let request = OssRequest {
        method: "PUT",
        bucket: Some("b"),
        key: Some("sv/v +1.mp4"),
        query: &[],
        headers: &headers,
    };
    let authorization = signature_v4::authorization(&request, "STS.ak", &secret, "cn-hangzhou", at, &[]);
    let (prefix, signature) = authorization.rsplit_once("Signature=").unwrap();
    assert_every_flip_refused("OSS V4 signature", signature, |sig| {
        let Ok(value) = HeaderValue::from_str(&format!("{prefix}Signature={sig}")) else {
            return false;
        };
        let mut headers = headers.clone();
        headers.insert("authorization", value);
        oss_verifies(&OssRequest { headers: &headers, ..request }, &secret)
    });
    let canonical = signature_v4::canonical_request(&request, &[], "UNSIGNED-PAYLOAD");
    let scope = signature_v4::scope("20261125", "cn-hangzhou", "oss");
    let string_to_sign = signature_v4::string_to_sign("20261125T080000Z", &scope, &canonical);
    let key = signature_v4::signing_key(&secret, "20261125", "cn-hangzhou", "oss");
    assert_every_flip_refused("OSS V4 string to sign", &string_to_sign, |sts| {
        signature_v4::sign(&key, sts) == signature
    });

    let empty = HeaderMap::new();
    let get = OssRequest { method: "GET", bucket: Some("b"), key: Some("k"), query: &[], headers: &empty };
    let params = signature_v4::presign_query(&get, "ak", &secret, None, "cn-hangzhou", at, 900);
    let signature = params.last().unwrap().1.clone();
    assert_every_flip_refused("OSS V4 presigned signature", &signature, |sig| {
        let mut query = params.clone();
        query.last_mut().unwrap().1 = sig.to_owned();
        oss_verifies(&OssRequest { query: &query, ..get }, &secret)
    });
    let signed = OssRequest { query: &params, ..get };
    let canonical = signature_v4::canonical_request(&signed, &[], "UNSIGNED-PAYLOAD");
    let string_to_sign = signature_v4::string_to_sign("20261125T080000Z", &scope, &canonical);
    assert_every_flip_refused("OSS V4 presigned string to sign", &string_to_sign, |sts| {
        signature_v4::sign(&key, sts) == signature
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn combined_part_crcs_equal_the_whole(
        data in proptest::collection::vec(any::<u8>(), 0..20_000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        let mut combined = 0;
        for window in points.windows(2) {
            let part = &data[window[0]..window[1]];
            combined = crc64::combine(combined, crc64::checksum(part), part.len() as u64);
        }
        prop_assert_eq!(combined, crc64::checksum(&data));
    }

    #[test]
    fn streaming_in_random_chunks_equals_one_shot(
        data in proptest::collection::vec(any::<u8>(), 0..20_000),
        chunk in 1usize..5000,
    ) {
        let mut crc = crc64::Crc64::new();
        for piece in data.chunks(chunk) {
            crc.update(piece);
        }
        prop_assert_eq!(crc.value(), crc64::checksum(&data));
    }
}
