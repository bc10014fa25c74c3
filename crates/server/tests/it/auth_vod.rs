//! The control plane's refusals against a real server (vod-api.md §12 and §12.1): upload credentials,
//! anonymous callers, unknown, revoked and mis-signed keys, stale timestamps, replayed nonces and
//! oversized requests each get their own code, and none of them changes the catalogue. Then the
//! anonymous allow-list: ReportUploadProgress (advisory only, no existence oracle, rate-limited and
//! answered at once) and `/healthz` on both listeners.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use vodup_server::meta::MediaStatus;
use vodup_server::proto::Secret;
use vodup_server::proto::encoding::query_encode;
use vodup_server::proto::timestamp::iso8601;
use vodup_server::proto::vod::signature_v1 as vod_v1;
use vodup_testkit::{TestServer, VodReply};

use crate::support::{
    create_video, media_status, nonce, raw_http, signed_create_query, signed_vod_query, video_total,
};

/// Every action of the authorization table that needs a long-lived key.
const SIGNED_ACTIONS: &[&str] = &[
    "CreateUploadVideo",
    "RefreshUploadVideo",
    "CreateUploadImage",
    "CreateUploadAttachedMedia",
    "UploadMediaByURL",
    "GetURLUploadInfos",
    "GetVideoInfo",
    "GetVideoInfos",
    "GetVideoList",
    "SearchMedia",
    "UpdateVideoInfo",
    "GetImageInfo",
    "DeleteImage",
    "GetAttachedMediaInfo",
    "DeleteAttachedMedia",
    "GetMezzanineInfo",
    "GetPlayInfo",
    "RegisterMedia",
    "DeleteVideo",
    "GetUploadDetails",
];

fn assert_refused(reply: &VodReply, status: u16, code: &str, what: &str) {
    assert_eq!((reply.status, reply.code()), (status, code), "{what}: {}", reply.body);
    for field in ["RequestId", "HostId", "Message"] {
        assert!(reply.body[field].is_string(), "{what}: the JSON error has {field}: {}", reply.body);
    }
}

/// The params a call might need to do damage if it were let through: a title and file for the creates,
/// and the video's id for the reads, updates and deletes.
fn damaging_params(video_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Title", "t".into()),
        ("FileName", "b.mp4".into()),
        ("VideoId", video_id.into()),
        ("VideoIds", video_id.into()),
        ("MediaIds", video_id.into()),
    ]
}

#[tokio::test]
async fn sts_credential_cannot_call_the_vod_api() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    let auth = &video.auth;
    let mut params = damaging_params(&video.id);
    params.push(("SecurityToken", auth.security_token.expose().to_owned()));
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();

    for action in SIGNED_ACTIONS {
        let reply = server.vod_as(&auth.access_key_id, &auth.access_key_secret, action, &params).await;
        assert_refused(&reply, 403, "AccessDenied", action);
    }

    assert_eq!(video_total(&server.state).await, 1, "no media created");
    assert_eq!(
        media_status(&server.state, &video.id).await,
        MediaStatus::Uploading,
        "not deleted or changed"
    );
}

#[tokio::test]
async fn anonymous_call_is_missing_its_access_key_id() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    for action in SIGNED_ACTIONS {
        let mut pairs = vec![
            ("Action".to_owned(), (*action).to_owned()),
            ("Version".into(), "2017-03-21".into()),
            ("Format".into(), "JSON".into()),
            ("SignatureNonce".into(), nonce()),
            ("Timestamp".into(), iso8601(SystemTime::now())),
        ];
        pairs.extend(damaging_params(&video.id).into_iter().map(|(k, v)| (k.to_owned(), v)));
        let reply = server.vod_raw(&query_encode(&pairs), &[]).await;
        assert_refused(&reply, 400, "MissingParameter", action);
        assert!(
            reply.body["Message"].as_str().unwrap().contains("AccessKeyId"),
            "{action}: names the parameter"
        );
    }
    assert_eq!(video_total(&server.state).await, 1, "no media created");
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn unknown_access_key_is_not_found() {
    let server = TestServer::start().await;
    let secret = Secret::new("some secret");
    let reply = server
        .vod_as(
            "LTAIunknownKey000000000",
            &secret,
            "CreateUploadVideo",
            &[("Title", "t"), ("FileName", "a.mp4")],
        )
        .await;
    assert_refused(&reply, 404, "InvalidAccessKeyId.NotFound", "unknown key");
    assert_eq!(video_total(&server.state).await, 0, "no media created");
}

#[tokio::test]
async fn revoked_key_is_inactive_at_once() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    assert!(server.state.meta.revoke_key(&server.key_id, SystemTime::now()).await.unwrap(), "revoked");

    let reply = server.vod("CreateUploadVideo", &[("Title", "t"), ("FileName", "b.mp4")]).await;
    assert_refused(&reply, 400, "InvalidAccessKeyId.Inactive", "create after revocation");
    let reply = server.vod("GetVideoInfo", &[("VideoId", &video.id)]).await;
    assert_refused(&reply, 400, "InvalidAccessKeyId.Inactive", "read after revocation");
    let reply = server.vod("DeleteVideo", &[("VideoIds", &video.id)]).await;
    assert_refused(&reply, 400, "InvalidAccessKeyId.Inactive", "delete after revocation");

    assert_eq!(video_total(&server.state).await, 1, "no media created or deleted");
}

#[tokio::test]
async fn wrong_secret_reports_the_server_string_to_sign_after_a_colon() {
    let server = TestServer::start().await;
    let wrong = Secret::new("not the secret");
    let (pairs, query) = signed_vod_query(
        &server.key_id,
        &wrong,
        "CreateUploadVideo",
        &[("Title", "t"), ("FileName", "a.mp4")],
        SystemTime::now(),
        &nonce(),
    );
    let reply = server.vod_raw(&query, &[]).await;
    assert_refused(&reply, 400, "SignatureDoesNotMatch", "wrong secret");

    // aliyun-python-sdk-core does Message.split(':')[1] and compares it with its own string to sign.
    let message = reply.body["Message"].as_str().unwrap();
    let after_colon = message.split(':').nth(1).expect("a colon in the Message");
    assert!(after_colon.starts_with("POST&%2F&"), "{message}");
    assert_eq!(
        after_colon,
        vod_v1::string_to_sign("POST", &pairs),
        "the server's string to sign is the client's"
    );
    assert_eq!(video_total(&server.state).await, 0, "no media created");
}

#[tokio::test]
async fn timestamp_twenty_minutes_off_is_expired() {
    let server = TestServer::start().await;
    let twenty = Duration::from_secs(20 * 60);
    for (what, at) in [("past", SystemTime::now() - twenty), ("future", SystemTime::now() + twenty)] {
        let (_, query) = signed_vod_query(
            &server.key_id,
            &server.key_secret,
            "CreateUploadVideo",
            &[("Title", "t"), ("FileName", "a.mp4")],
            at,
            &nonce(),
        );
        let reply = server.vod_raw(&query, &[]).await;
        assert_refused(&reply, 400, "InvalidTimeStamp.Expired", what);
    }
    assert_eq!(video_total(&server.state).await, 0, "no media created");

    // Inside the 15-minute window the same call goes through, so the window is what refused above.
    let (_, query) = signed_vod_query(
        &server.key_id,
        &server.key_secret,
        "CreateUploadVideo",
        &[("Title", "t"), ("FileName", "a.mp4")],
        SystemTime::now() - Duration::from_secs(10 * 60),
        &nonce(),
    );
    assert_eq!(server.vod_raw(&query, &[]).await.status, 200);
}

#[tokio::test]
async fn replayed_nonce_is_refused_and_creates_nothing() {
    let server = TestServer::start().await;
    let query = signed_create_query(&server);
    let first = server.vod_raw(&query, &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body["VideoId"].is_string());

    let replay = server.vod_raw(&query, &[]).await;
    assert_refused(&replay, 400, "SignatureNonceUsed", "the same signed request again");
    assert_eq!(video_total(&server.state).await, 1, "the replay created no second media");
}

#[tokio::test]
async fn a_request_replayed_after_a_restart_is_still_refused() {
    let server = TestServer::start().await;
    let query = signed_create_query(&server);
    let first = server.vod_raw(&query, &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);

    // The nonces live in the catalogue, not in the process that saw them.
    let server = server.restart().await;
    let replay = server.vod_raw(&query, &[]).await;
    assert_refused(&replay, 400, "SignatureNonceUsed", "the same signed request after a restart");
    assert_eq!(video_total(&server.state).await, 1, "the replay created no second media");
}

async fn post_raw(server: &TestServer, query: &str, content_type: &str, body: String) -> VodReply {
    let response = server
        .client()
        .post(format!("{}/?{query}", server.vod_url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    VodReply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

#[tokio::test]
// A documented divergence from vod-api.md §12.1: a request target over 65534 bytes is refused by the HTTP
// layer (the `http` crate caps a URI there) with 414 before the service sees it, so it cannot get the JSON
// 413. Anything that reaches the service over the limit does (see the body cases below).
async fn query_beyond_the_uri_cap_is_refused_by_the_http_layer() {
    let server = TestServer::start().await;
    let title = "a".repeat(70 * 1024);
    let (_, query) = signed_vod_query(
        &server.key_id,
        &server.key_secret,
        "CreateUploadVideo",
        &[("Title", &title), ("FileName", "a.mp4")],
        SystemTime::now(),
        &nonce(),
    );
    // reqwest cannot send this URL at all (the http crate caps a URI below 64 KiB), so it goes raw.
    let response = raw_http(&server.vod_url, "POST", &format!("/?{query}"), &[], b"").await;
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert_eq!(response.status, 414, "70 KiB query: {body}");
    assert_eq!(video_total(&server.state).await, 0, "no media created");
}

#[tokio::test]
async fn oversized_body_is_refused_with_a_json_413() {
    let server = TestServer::start().await;
    let form = "application/x-www-form-urlencoded";

    // A body alone over 64 KiB.
    let query = signed_create_query(&server);
    let reply = post_raw(&server, &query, form, format!("Description={}", "d".repeat(70 * 1024))).await;
    assert_refused(&reply, 413, "RequestEntityTooLarge", "70 KiB body");

    // Query and body each under the limit, together over it.
    let title = "a".repeat(40 * 1024);
    let (_, query) = signed_vod_query(
        &server.key_id,
        &server.key_secret,
        "CreateUploadVideo",
        &[("Title", &title), ("FileName", "a.mp4")],
        SystemTime::now(),
        &nonce(),
    );
    let reply = post_raw(&server, &query, form, format!("Description={}", "d".repeat(30 * 1024))).await;
    assert_refused(&reply, 413, "RequestEntityTooLarge", "40 KiB query + 30 KiB body");

    assert_eq!(video_total(&server.state).await, 0, "no media created");
}

fn progress_form(video_id: &str, done_bytes: u64) -> String {
    let point = format!("{{\"upMethod\":\"multipart\",\"partSize\":1048576,\"doneBytes\":{done_bytes}}}");
    let pairs: Vec<(&str, &str)> = vec![
        ("Action", "ReportUploadProgress"),
        ("Format", "JSON"),
        ("Version", "2017-03-21"),
        ("Timestamp", "2024-01-01T12:00:00Z"),
        ("SignatureNonce", "0123456789abcdef0123456789abcdef"),
        ("VideoId", video_id),
        ("Source", "PythonSDK"),
        ("ClientId", "LTAIwhoever"),
        ("BusinessType", "UploadVideo"),
        ("TerminalType", "PC"),
        ("DeviceModel", "Server"),
        ("AppVersion", "1.3.1"),
        ("AuthTimestamp", "1704110400"),
        ("AuthInfo", "0123456789abcdef0123456789abcdef"),
        ("FileSize", "4000"),
        ("UploadRatio", "0"),
        ("DonePartsCount", "1"),
        ("PartSize", "1048576"),
        ("UploadPoint", &point),
    ];
    query_encode(&pairs)
}

async fn report(server: &TestServer, form: String) -> VodReply {
    post_raw(server, "", "application/x-www-form-urlencoded", form).await
}

#[tokio::test]
async fn progress_report_is_accepted_anonymously_and_stays_advisory() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;

    let reply = report(&server, progress_form(&video.id, 1000)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["RequestId"].is_string());

    // The report is stored in the background: GetUploadDetails shows it shortly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let detail = loop {
        let details = server.vod("GetUploadDetails", &[("MediaIds", &video.id)]).await;
        assert_eq!(details.status, 200, "{}", details.body);
        let detail = details.body["UploadDetails"][0].clone();
        if detail["UploadSource"] == "PythonSDK" {
            break detail;
        }
        assert!(Instant::now() < deadline, "the report never showed: {detail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(detail["DeviceModel"], "Server");
    assert_eq!(detail["UploadSize"], 1000);
    assert_eq!(detail["UploadIP"], "127.0.0.1");
    assert_eq!(detail["Status"], "Uploading", "a report never completes a video");
    assert_eq!(detail["UploadStatus"], "Uploading");
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Uploading);
    assert_eq!(video_total(&server.state).await, 1);
}

#[tokio::test]
async fn progress_report_for_an_unknown_video_gets_the_same_answer() {
    let server = TestServer::start().await;
    let reply = report(&server, progress_form("0123456789abcdef0123456789abcdef", 10)).await;
    assert_eq!(reply.status, 200, "no existence oracle: {}", reply.body);
    assert!(reply.body["RequestId"].is_string());
    let keys: Vec<&String> = reply.body.as_object().expect("JSON object").keys().collect();
    assert_eq!(keys, ["RequestId"], "nothing tells an unknown video from a known one");
    assert_eq!(video_total(&server.state).await, 0, "no media created");
}

#[tokio::test]
async fn progress_flood_is_throttled_at_once() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    let mut codes = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        let reply = report(&server, progress_form(&video.id, 10)).await;
        // voduploadsdk fails the whole upload if a report takes a second.
        assert!(started.elapsed() < Duration::from_millis(500), "answered quickly: {:?}", started.elapsed());
        match reply.status {
            200 => codes.push("OK"),
            400 => {
                assert_refused(&reply, 400, "Throttling", "flood");
                codes.push("Throttling");
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(codes[..20].iter().all(|c| *c == "OK"), "the first 20 in a second pass: {codes:?}");
    assert!(codes.contains(&"Throttling"), "past 20 per second per video the reports are dropped: {codes:?}");
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn oversized_progress_report_is_refused_with_a_json_413() {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    let form = format!("{}&Pad={}", progress_form(&video.id, 10), "p".repeat(17 * 1024));
    let reply = report(&server, form).await;
    assert_refused(&reply, 413, "RequestEntityTooLarge", "17 KiB report");
}

#[tokio::test]
async fn healthz_answers_on_both_planes_without_credentials() {
    let server = TestServer::start().await;
    for base in [&server.vod_url, &server.oss_url] {
        let response = server.client().get(format!("{base}/healthz")).send().await.expect("healthz");
        assert_eq!(response.status(), 200, "{base}");
    }
}

/// RefreshUploadVideo refuses a video whose upload failed (`UploadFail`): its upload was abandoned, and
/// only `Uploading` (continue) or `Normal` (overwrite) videos get credentials.
#[tokio::test]
async fn refresh_of_a_failed_upload_is_refused() {
    let server = TestServer::start().await;
    let video = create_video(&server, "abandoned.mp4").await;
    let far = SystemTime::now() + Duration::from_secs(86_400);
    let failed = server.state.meta.fail_stale_media(far, SystemTime::now()).await.expect("fail stale media");
    assert!(failed.contains(&video.id));
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::UploadFail);
    let reply = server.vod("RefreshUploadVideo", &[("VideoId", &video.id)]).await;
    assert_eq!((reply.status, reply.code()), (403, "Forbidden.IllegalStatus"), "{}", reply.body);
    assert!(
        reply.body["Message"].as_str().is_some_and(|m| m.contains("CreateUploadVideo")),
        "{}",
        reply.body
    );
    server.stop().await;
}
