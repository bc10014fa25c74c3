//! The numbers and times a signed OSS request carries, against a real server (issue 11): forged presign
//! numbers that once overflowed inside the handler, the lifetime caps of presigned URLs (V4: 7 days, as
//! OSS; V1: a setting, 30 days by default), signing dates from the future, and an `x-oss-content-sha256`
//! that claims a digest. Every refusal is a clean OSS `<Error>` with its code (and EC where OSS documents
//! one), and the server keeps answering afterwards.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use vodup_server::presign::PRESIGN_KEY_ID;
use vodup_server::proto::Secret;
use vodup_server::proto::encoding::query_encode;
use vodup_server::proto::mac::sha256_hex;
use vodup_server::proto::oss::{OssRequest, signature_v1, signature_v4};
use vodup_server::proto::timestamp::{oss_v4_date, unix_seconds};
use vodup_testkit::{OssCall, OssCredential, TestServer};

use crate::support::{assert_no_object, create_video, oss_error, put};

const DAY: u64 = 86_400;

/// A GET URL for `key` presigned with V4 by the server's long-lived key, signed at `at` for `expires_in`.
fn v4_url(server: &TestServer, key: &str, at: SystemTime, expires_in: u64) -> String {
    let headers = HeaderMap::new();
    let bucket = server.bucket();
    let request =
        OssRequest { method: "GET", bucket: Some(bucket), key: Some(key), query: &[], headers: &headers };
    let query = signature_v4::presign_query(
        &request,
        &server.key_id,
        &server.key_secret,
        None,
        &server.state.site.region,
        at,
        expires_in,
    );
    format!("{}?{}", server.state.site.object_url(key), query_encode(&query))
}

/// A GET URL for `key` presigned with V1 by `id`/`secret`, expiring at `expires` (Unix seconds).
fn v1_url(server: &TestServer, id: &str, secret: &Secret, key: &str, expires: u64) -> String {
    let headers = HeaderMap::new();
    let bucket = server.bucket();
    let request =
        OssRequest { method: "GET", bucket: Some(bucket), key: Some(key), query: &[], headers: &headers };
    let query = signature_v1::presign_query(&request, id, secret, expires, None);
    format!("{}?{}", server.state.site.object_url(key), query_encode(&query))
}

async fn get(server: &TestServer, url: &str) -> reqwest::Response {
    // A dropped connection (the panic of issue 11) fails here, with the URL in the message.
    server.client().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: no response: {e}"))
}

// See: issue 11, item 1. Each of these once panicked the handler ("Empty reply from server").
#[tokio::test]
async fn forged_presign_numbers_get_a_clean_refusal() {
    let server = TestServer::start().await;
    let base = server.state.site.endpoint.clone();
    let day = oss_v4_date(SystemTime::now());
    let region = &server.state.site.region;
    let mut urls = Vec::new();
    for id in [PRESIGN_KEY_ID, server.key_id.as_str()] {
        for bucket in ["anybucket", server.bucket()] {
            urls.push(format!(
                "{base}/{bucket}/k?OSSAccessKeyId={id}&Expires=10000000000000000000&Signature=AAAA"
            ));
            for expires in ["18446744073709551615", "9223372036854775807"] {
                urls.push(format!(
                    "{base}/{bucket}/k?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential={id}%2F{}%2F{region}%2Foss%2Faliyun_v4_request&x-oss-date={day}&x-oss-expires={expires}&x-oss-signature=AAAA",
                    &day[..8]
                ));
            }
        }
    }
    for url in &urls {
        let error = oss_error(get(&server, url).await, 403, "AccessDenied", url).await;
        if url.contains("x-oss-expires") {
            assert_eq!(error.ec.as_deref(), Some("0002-00000232"), "{url}");
        }
    }
    // And the server is still there.
    let ok = server.oss(put("sv/after.mp4", server.key_credential(), b"data")).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn v4_presigned_url_lives_at_most_seven_days() {
    let server = TestServer::start().await;
    let key = "sv/v4/a.mp4";
    assert_eq!(server.oss(put(key, server.key_credential(), b"data")).await.status(), 200);
    let now = SystemTime::now();

    let thirty_days = v4_url(&server, key, now, 30 * DAY);
    let error = oss_error(get(&server, &thirty_days).await, 403, "AccessDenied", "30-day V4 URL").await;
    assert_eq!(error.ec.as_deref(), Some("0002-00000232"));
    let zero = v4_url(&server, key, now, 0);
    oss_error(get(&server, &zero).await, 403, "AccessDenied", "0-second V4 URL").await;

    // Seven days exactly is fine, and so is a URL signed six days ago for seven: a URL's age is bounded
    // by its expiry, not by the 15-minute window.
    for (what, at) in [("fresh", now), ("six days old", now - Duration::from_secs(6 * DAY))] {
        let response = get(&server, &v4_url(&server, key, at, 7 * DAY)).await;
        assert_eq!(response.status(), 200, "{what}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), b"data");
    }
    let past = v4_url(&server, key, now - Duration::from_secs(2 * DAY), DAY);
    let error = oss_error(get(&server, &past).await, 403, "AccessDenied", "expired V4 URL").await;
    assert_eq!(error.ec.as_deref(), Some("0002-00000236"));
}

#[tokio::test]
async fn signing_date_an_hour_ahead_is_refused_for_headers_and_urls() {
    let server = TestServer::start().await;
    let key = "sv/future/a.mp4";
    assert_eq!(server.oss(put(key, server.key_credential(), b"data")).await.status(), 200);
    let hour_ahead = SystemTime::now() + Duration::from_secs(3600);

    let v4 = OssCredential::V4 {
        id: server.key_id.clone(),
        secret: server.key_secret.clone(),
        token: None,
        region: server.state.site.region.clone(),
    };
    let mut call = OssCall::new("GET", Some(key), v4);
    call.at = Some(hour_ahead);
    let error = oss_error(server.oss(call).await, 403, "RequestTimeTooSkewed", "V4 header").await;
    assert_eq!(error.ec.as_deref(), Some("0002-00000504"));

    let url = v4_url(&server, key, hour_ahead, DAY);
    let error = oss_error(get(&server, &url).await, 403, "AccessDenied", "V4 URL an hour ahead").await;
    assert_eq!(error.ec.as_deref(), Some("0002-00000235"));

    // Within the window is fine: clocks differ a little.
    let url = v4_url(&server, key, SystemTime::now() + Duration::from_secs(10 * 60), DAY);
    assert_eq!(get(&server, &url).await.status(), 200, "V4 URL ten minutes ahead");
}

#[tokio::test]
async fn v1_presigned_url_lifetime_is_capped() {
    let server = TestServer::start().await;
    let key = "sv/v1/a.mp4";
    assert_eq!(server.oss(put(key, server.key_credential(), b"data")).await.status(), 200);
    let now = unix_seconds(SystemTime::now());
    let presign_secret = server.state.presigner.secret().clone();
    // 2^40 - 1 seconds: a day in the year 36812.
    let year_36812 = 1_099_511_627_775;
    for (id, secret) in [(PRESIGN_KEY_ID, &presign_secret), (server.key_id.as_str(), &server.key_secret)] {
        let url = v1_url(&server, id, secret, key, year_36812);
        let error = oss_error(get(&server, &url).await, 403, "AccessDenied", "year 36812").await;
        assert!(error.message.contains("expires later than this service allows"), "{}", error.message);
        // Thirty days, the longest AuthTimeout the service issues, is the default cap.
        let url = v1_url(&server, id, secret, key, now + 30 * DAY - 60);
        assert_eq!(get(&server, &url).await.status(), 200, "{id}: 30 days");
        let url = v1_url(&server, id, secret, key, now + 31 * DAY);
        oss_error(get(&server, &url).await, 403, "AccessDenied", "31 days").await;
    }
}

#[tokio::test]
async fn v1_presign_cap_is_a_setting() {
    let server = TestServer::start_with(|config| config.data.max_v1_presign_lifetime_secs = Some(600)).await;
    let key = "sv/v1/a.mp4";
    assert_eq!(server.oss(put(key, server.key_credential(), b"data")).await.status(), 200);
    let now = unix_seconds(SystemTime::now());
    let url = v1_url(&server, &server.key_id, &server.key_secret, key, now + 300);
    assert_eq!(get(&server, &url).await.status(), 200);
    let url = v1_url(&server, &server.key_id, &server.key_secret, key, now + 3600);
    oss_error(get(&server, &url).await, 403, "AccessDenied", "an hour, over a 10-minute cap").await;
}

// The default cap must let through every URL the service itself hands out.
#[tokio::test]
async fn the_longest_mezzanine_url_the_service_issues_works() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    assert_eq!(server.oss(put(video.key(), video.sts(), b"video bytes")).await.status(), 200);
    let reply = server
        .vod("GetMezzanineInfo", &[("VideoId", &video.id), ("OutputType", "oss"), ("AuthTimeout", "2592000")])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let url = reply.body["Mezzanine"]["FileURL"].as_str().expect("FileURL").to_owned();
    let response = get(&server, &url).await;
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"video bytes");
}

// A lower cap also caps the URLs the service issues: it never hands out a URL it would then refuse.
#[tokio::test]
async fn a_lower_v1_cap_caps_auth_timeout_too() {
    let server = TestServer::start_with(|config| config.data.max_v1_presign_lifetime_secs = Some(600)).await;
    let video = create_video(&server, "a.mp4").await;
    assert_eq!(server.oss(put(video.key(), video.sts(), b"video bytes")).await.status(), 200);
    let info = |timeout: &'static str| {
        let id = video.id.clone();
        let server = &server;
        async move {
            let mut params = vec![("VideoId", id.as_str()), ("OutputType", "oss")];
            if !timeout.is_empty() {
                params.push(("AuthTimeout", timeout));
            }
            server.vod("GetMezzanineInfo", &params).await
        }
    };
    let refused = info("3600").await;
    assert_eq!((refused.status, refused.code()), (400, "InvalidParameter"), "{}", refused.body);
    assert!(refused.body["Message"].as_str().unwrap().contains("1..=600"), "{}", refused.body);
    for timeout in ["600", ""] {
        let reply = info(timeout).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let url = reply.body["Mezzanine"]["FileURL"].as_str().expect("FileURL").to_owned();
        assert_eq!(get(&server, &url).await.status(), 200, "AuthTimeout {timeout:?}: {url}");
    }
}

/// Sends a V4 header-signed PUT whose `x-oss-content-sha256` is `claimed`, signed over that claim the way
/// a client would (the signature is right; only the claim is at issue).
async fn v4_put_claiming(server: &TestServer, key: &str, body: &[u8], claimed: &str) -> reqwest::Response {
    let at = SystemTime::now();
    let mut headers = HeaderMap::new();
    headers.insert("x-oss-date", HeaderValue::from_str(&oss_v4_date(at)).unwrap());
    headers.insert("x-oss-content-sha256", HeaderValue::from_str(claimed).unwrap());
    let bucket = server.bucket();
    let request =
        OssRequest { method: "PUT", bucket: Some(bucket), key: Some(key), query: &[], headers: &headers };
    let authorization = signature_v4::authorization(
        &request,
        &server.key_id,
        &server.key_secret,
        &server.state.site.region,
        at,
        &[],
    );
    headers.insert("authorization", HeaderValue::from_str(&authorization).unwrap());
    server
        .client()
        .put(server.state.site.object_url(key))
        .headers(headers)
        .body(body.to_vec())
        .send()
        .await
        .expect("PUT answered")
}

// See: issue 11, item 7. A digest of another body was accepted and the body stored unchecked.
#[tokio::test]
async fn v4_put_claiming_a_payload_digest_is_refused() {
    let server = TestServer::start().await;
    let key = "sv/sha/a.mp4";
    let other = sha256_hex(b"another body");
    let own = sha256_hex(b"the body");
    for (what, claimed) in [("another body's digest", other.as_str()), ("its own digest", own.as_str())] {
        let response = v4_put_claiming(&server, key, b"the body", claimed).await;
        let error = oss_error(response, 400, "InvalidArgument", what).await;
        assert_eq!(error.argument_name.as_deref(), Some("x-oss-content-sha256"), "{what}");
        assert_eq!(error.argument_value.as_deref(), Some(claimed), "{what}");
        assert_eq!(error.ec.as_deref(), Some("0002-00000214"), "{what}");
        assert!(error.message.contains("UNSIGNED-PAYLOAD"), "{what}: {}", error.message);
        assert_no_object(&server.state, key).await;
    }
    let response = v4_put_claiming(&server, key, b"the body", "UNSIGNED-PAYLOAD").await;
    assert_eq!(response.status(), 200, "UNSIGNED-PAYLOAD");
}
