//! OSS credentials: V1/V4 `Authorization` headers and presigned query parameters, with their time
//! checks and signature verification.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use vodup_proto::oss::authorization::{security_token, unsupported_payload_hash};
use vodup_proto::oss::validity::{self, CLOCK_SKEW, TimePolicy};
use vodup_proto::oss::{OssCredential, signature_v1, signature_v4};
use vodup_proto::{Secret, timestamp};

use crate::request::{Mutation, Req, mutation};
use crate::runner::{NOW, SECRET, bounded, start};

#[derive(Debug, Clone, Copy)]
enum Scheme {
    V1Header,
    V4Header,
    V1Presign,
    V4Presign,
}

#[derive(Debug, Clone)]
struct OssCase {
    request: Req,
    mutation: Mutation,
    /// When it was signed; also the "now" at which an unmutated request must be accepted.
    at: SystemTime,
}

fn base_request() -> impl Strategy<Value = Req> {
    (
        select(&["GET", "PUT", "POST", "HEAD", "DELETE"][..]),
        "[a-z0-9][a-z0-9-]{2,20}",
        "[a-zA-Z0-9/._ %+~-]{1,40}|sv/测试/a b.mp4",
        prop::option::of((1u32..=10_000, "[0-9A-F]{32}")),
        prop::option::of("[a-z]{1,10}/[a-z0-9.+-]{1,12}"),
        prop::option::of("[A-Za-z0-9+/]{22}=="),
        prop::collection::vec(("[a-z0-9-]{1,10}", "[ -~]{0,24}"), 0..3),
    )
        .prop_map(|(method, bucket, key, upload, content_type, md5, meta)| {
            let mut query = Vec::new();
            if let Some((number, id)) = upload {
                query.push(("partNumber".to_owned(), number.to_string()));
                query.push(("uploadId".to_owned(), id));
            }
            let mut headers = Vec::new();
            if let Some(t) = content_type {
                headers.push(("content-type".to_owned(), t));
            }
            if let Some(m) = md5 {
                headers.push(("content-md5".to_owned(), m));
            }
            for (name, value) in meta {
                headers.push((format!("x-oss-meta-{name}"), value.trim().to_owned()));
            }
            Req { method: method.to_owned(), bucket, key, query, headers, body: Vec::new() }
        })
}

pub fn secret() -> Secret {
    Secret::new(SECRET)
}

fn sign_oss(mut req: Req, scheme: Scheme, token: Option<String>, at: SystemTime, lifetime: u64) -> Req {
    let secret = secret();
    let id = if token.is_some() { "STS.NTestExampleAK" } else { "LTAItestkey" };
    match scheme {
        Scheme::V1Header | Scheme::V4Header => {
            if let Some(token) = &token {
                req.headers.push(("x-oss-security-token".into(), token.clone()));
            }
            if matches!(scheme, Scheme::V1Header) {
                req.headers.push(("date".into(), timestamp::http_date(at)));
            } else {
                req.headers.push(("x-oss-date".into(), timestamp::oss_v4_date(at)));
                req.headers.push(("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
            }
            let headers = req.header_map();
            let value = if matches!(scheme, Scheme::V1Header) {
                signature_v1::authorization(&req.oss(&headers), id, &secret)
            } else {
                signature_v4::authorization(&req.oss(&headers), id, &secret, "cn-hangzhou", at, &[])
            };
            req.headers.push(("authorization".into(), value));
        }
        Scheme::V1Presign => {
            let token = token.map(Secret::new);
            if let Some(token) = &token {
                req.query.push(("security-token".into(), token.expose().to_owned()));
            }
            let headers = req.header_map();
            let expires = timestamp::unix_seconds(at) + lifetime;
            let mut added =
                signature_v1::presign_query(&req.oss(&headers), id, &secret, expires, token.as_ref());
            added.retain(|(k, _)| k != "security-token");
            req.query.extend(added);
        }
        Scheme::V4Presign => {
            let token = token.map(Secret::new);
            let headers = req.header_map();
            let lifetime = lifetime.clamp(1, validity::MAX_V4_PRESIGN_EXPIRES);
            let added = signature_v4::presign_query(
                &req.oss(&headers),
                id,
                &secret,
                token.as_ref(),
                "cn-hangzhou",
                at,
                lifetime,
            );
            req.query.extend(added);
        }
    }
    req
}

fn oss_case() -> impl Strategy<Value = OssCase> {
    (
        base_request(),
        select(&[Scheme::V1Header, Scheme::V4Header, Scheme::V1Presign, Scheme::V4Presign][..]),
        prop::option::of("CAIS[A-Za-z0-9+/=]{8,40}"),
        0u64..86_400,
        1u64..30 * 86_400,
        mutation(),
    )
        .prop_map(|(req, scheme, token, offset, lifetime, mutation)| {
            let at = timestamp::from_unix_seconds(NOW + offset);
            let request = sign_oss(req, scheme, token, at, lifetime).mutate(&mutation);
            OssCase { request, mutation, at }
        })
}

fn policy() -> TimePolicy {
    TimePolicy { max_skew: CLOCK_SKEW, max_v1_presign_lifetime: Duration::from_secs(30 * 86_400) }
}

fn check_oss(case: &OssCase) -> Result<(), TestCaseError> {
    let headers = case.request.header_map();
    let request = case.request.oss(&headers);
    let secret = secret();
    let nows = [
        case.at,
        UNIX_EPOCH,
        timestamp::from_unix_seconds(u64::MAX),
        case.at + Duration::from_secs(8 * 86_400),
    ];
    let (verified, in_time) = bounded(case.request.input_len(), || {
        let _ = unsupported_payload_hash(&request);
        let _ = security_token(&request);
        let Ok(credential) = OssCredential::from_request(&request) else { return (None, None) };
        let _ = (credential.access_key_id(), credential.region(), credential.is_presigned());
        let _ = (credential.signed_at(&request), credential.expires_at());
        let mut in_time = None;
        for now in nows {
            let checked = validity::check(&credential, &request, now, &policy());
            in_time.get_or_insert(checked.map_err(|e| e.to_string()));
        }
        (Some(credential.verify(&request, &secret)), in_time)
    })?;
    if matches!(case.mutation, Mutation::None) {
        prop_assert!(
            matches!(verified, Some(Ok(()))),
            "a correctly signed request must verify: {verified:?}"
        );
        prop_assert_eq!(in_time, Some(Ok(())), "a fresh request must be in time");
    }
    Ok(())
}

/// The requests of issue 11 that panicked before any signature check.
fn oss_regressions() -> Vec<OssCase> {
    let v1 = |expires: &str| Req {
        method: "GET".into(),
        bucket: "anybucket".into(),
        key: "k".into(),
        query: [("OSSAccessKeyId", "vodup-presign"), ("Expires", expires), ("Signature", "AAAA")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let v4 = |expires: &str| Req {
        query: [
            ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
            ("x-oss-credential", "LTAItestkey/20261125/cn-hangzhou/oss/aliyun_v4_request"),
            ("x-oss-date", "20261125T080000Z"),
            ("x-oss-expires", expires),
            ("x-oss-signature", "AAAA"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
        ..v1("0")
    };
    let at = timestamp::from_unix_seconds(NOW);
    let case = |request| OssCase { request, mutation: Mutation::SetQuery(0, String::new()), at };
    vec![
        case(v1("10000000000000000000")),
        case(v1("18446744073709551615")),
        case(v4("18446744073709551615")),
        case(v4("9223372036854775807")),
    ]
}

#[test]
fn oss_credentials_survive_fuzzing() {
    let run = start();
    for case in oss_regressions() {
        check_oss(&case).unwrap_or_else(|e| panic!("regression {case:?}: {e}"));
    }
    run.fuzz("oss credentials", oss_case(), |case| check_oss(&case));
}
