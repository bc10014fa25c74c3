//! The data plane's permissions and refusals against a real server (vod-api.md §12, oss-api.md §6.7):
//! anonymous callers, upload credentials in and out of their scope, the service's presigned URLs, and
//! unknown, revoked, expired, forged, skewed or mis-signed credentials. Every refusal is checked for its
//! status and code, and for leaving storage and catalogue as they were: no object appeared, no upload
//! was opened, closed or changed, and the media is still `Uploading`.

use std::time::{Duration, Instant, SystemTime};

use vodup_server::meta::{MediaStatus, UploadState};
use vodup_server::presign::PRESIGN_KEY_ID;
use vodup_server::proto::Secret;
use vodup_server::proto::encoding::query_encode;
use vodup_server::proto::oss::xml::{ListPartsResult, from_xml};
use vodup_server::proto::oss::{OssRequest, signature_v1};
use vodup_server::proto::timestamp::{http_date, unix_seconds};
use vodup_testkit::{OssCall, OssCredential, TestServer};

use crate::support::{
    MIN_PART, assert_no_object, bytes, complete_body, complete_call, crc, create_video, head_error, initiate,
    media_status, new_key, open_uploads, oss_error, parts_of, put, stored, stored_parts, upload_part,
    upload_state,
};

fn head(key: &str, credential: OssCredential) -> OssCall {
    OssCall::new("HEAD", Some(key), credential)
}

fn part(key: &str, credential: OssCredential, upload_id: &str, number: u32, body: &[u8]) -> OssCall {
    OssCall::new("PUT", Some(key), credential)
        .query("partNumber", &number.to_string())
        .query("uploadId", upload_id)
        .body(body.to_vec())
}

#[tokio::test]
async fn anonymous_requests_are_denied_on_every_operation() {
    let server = TestServer::start().await;
    let state = &server.state;
    let ak = server.key_credential();
    let existing = "sv/anon/existing.mp4";
    let data = bytes(1000, 1);
    assert_eq!(server.oss(put(existing, ak.clone(), &data)).await.status(), 200);
    let open_key = "sv/anon/multipart.mp4";
    let upload_id = initiate(&server, open_key, ak.clone()).await;
    let etag = upload_part(&server, open_key, ak.clone(), &upload_id, 1, &bytes(10, 2)).await;
    let uploads_before = open_uploads(state).await;

    let anon = || OssCredential::Anonymous;
    let cases = [
        ("PutObject", put("sv/anon/new.mp4", anon(), &data)),
        ("PutObject over an object", put(existing, anon(), b"replaced")),
        (
            "InitiateMultipartUpload",
            OssCall::new("POST", Some("sv/anon/new.mp4"), anon()).query("uploads", ""),
        ),
        ("UploadPart", part(open_key, anon(), &upload_id, 2, b"more")),
        (
            "CompleteMultipartUpload",
            complete_call(open_key, anon(), &upload_id, complete_body(&[(1, &etag)])),
        ),
        (
            "AbortMultipartUpload",
            OssCall::new("DELETE", Some(open_key), anon()).query("uploadId", &upload_id),
        ),
        ("ListParts", OssCall::new("GET", Some(open_key), anon()).query("uploadId", &upload_id)),
        ("ListMultipartUploads", OssCall::new("GET", None, anon()).query("uploads", "")),
        ("GetObject", OssCall::new("GET", Some(existing), anon())),
        ("DeleteObject", OssCall::new("DELETE", Some(existing), anon())),
    ];
    for (what, call) in cases {
        oss_error(server.oss(call).await, 403, "AccessDenied", what).await;
    }
    head_error(server.oss(head(existing, anon())).await, 403, "AccessDenied", "HeadObject").await;

    assert_no_object(state, "sv/anon/new.mp4").await;
    assert_eq!(
        stored(state, existing).await,
        (1000, crc(&data)),
        "the object is neither replaced nor deleted"
    );
    assert_no_object(state, open_key).await;
    assert_eq!(upload_state(state, &upload_id).await, UploadState::Open, "neither completed nor aborted");
    assert_eq!(stored_parts(state, &upload_id).await, [1], "no part added");
    assert_eq!(open_uploads(state).await, uploads_before, "no upload initiated");
}

#[tokio::test]
async fn sts_credential_may_do_every_write_step_on_its_own_key() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let key = video.key();

    // Initiate, UploadPart, ListParts, Abort.
    let abandoned = initiate(&server, key, video.sts()).await;
    upload_part(&server, key, video.sts(), &abandoned, 1, b"first try").await;
    let listed = server.oss(OssCall::new("GET", Some(key), video.sts()).query("uploadId", &abandoned)).await;
    assert_eq!(listed.status(), 200, "ListParts");
    let listed: ListPartsResult = from_xml(&listed.text().await.unwrap()).expect("ListPartsResult");
    assert_eq!(listed.parts.len(), 1);
    let aborted =
        server.oss(OssCall::new("DELETE", Some(key), video.sts()).query("uploadId", &abandoned)).await;
    assert_eq!(aborted.status(), 204, "AbortMultipartUpload");
    assert_eq!(upload_state(state, &abandoned).await, UploadState::Aborted);

    // Initiate, two parts, Complete, HeadObject.
    let upload_id = initiate(&server, key, video.sts()).await;
    let (one, two) = (bytes(MIN_PART, 1), bytes(1000, 2));
    let first = upload_part(&server, key, video.sts(), &upload_id, 1, &one).await;
    let second = upload_part(&server, key, video.sts(), &upload_id, 2, &two).await;
    let body = complete_body(&[(1, &first), (2, &second)]);
    assert_eq!(server.oss(complete_call(key, video.sts(), &upload_id, body)).await.status(), 200, "Complete");
    let head = server.oss(head(key, video.sts())).await;
    assert_eq!(head.status(), 200, "HeadObject");
    assert_eq!(head.headers()["content-length"], (one.len() + two.len()).to_string().as_str());
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Normal);

    // PutObject, with another video's credential.
    let other = create_video(&server, "b.mp4").await;
    let response = server.oss(put(other.key(), other.sts(), b"hello world")).await;
    assert_eq!(response.status(), 200, "PutObject");
    assert_eq!(response.headers()["x-oss-hash-crc64ecma"], "5981764153023615706");
    assert_eq!(media_status(state, &other.id).await, MediaStatus::Normal);
}

#[tokio::test]
async fn sts_credential_cannot_read_delete_or_list() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let data = bytes(500, 3);
    assert_eq!(server.oss(put(video.key(), video.sts(), &data)).await.status(), 200);

    let get = OssCall::new("GET", Some(video.key()), video.sts());
    oss_error(server.oss(get).await, 403, "AccessDenied", "GetObject of its own object").await;
    let delete = OssCall::new("DELETE", Some(video.key()), video.sts());
    oss_error(server.oss(delete).await, 403, "AccessDenied", "DeleteObject of its own object").await;
    let list = OssCall::new("GET", None, video.sts()).query("uploads", "");
    oss_error(server.oss(list).await, 403, "AccessDenied", "ListMultipartUploads").await;

    assert_eq!(stored(state, video.key()).await, (500, crc(&data)), "still stored");
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Normal);
}

#[tokio::test]
async fn sts_credential_is_denied_outside_its_key() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let neighbour = create_video(&server, "b.mp4").await;
    let key = video.key();
    let folder = &key[..=key.rfind('/').unwrap()];
    let outside = [
        "sv/other/x.mp4".to_owned(),
        format!("{key}x"),
        format!("{folder}other.mp4"),
        neighbour.key().to_owned(),
    ];
    for target in &outside {
        oss_error(server.oss(put(target, video.sts(), b"data")).await, 403, "AccessDenied", target).await;
        let initiate = OssCall::new("POST", Some(target), video.sts()).query("uploads", "");
        oss_error(server.oss(initiate).await, 403, "AccessDenied", target).await;
        head_error(server.oss(head(target, video.sts())).await, 403, "AccessDenied", target).await;
        assert_no_object(state, target).await;
    }
    assert_eq!(open_uploads(state).await, 0, "no upload initiated");
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);
    assert_eq!(media_status(state, &neighbour.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn playlist_credential_writes_under_its_prefix_only() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "list.m3u8").await;
    let prefix = video.address.object_prefix.clone().expect("a playlist address has ObjectPrefix");
    assert!(video.key().starts_with(&prefix));

    let segment = format!("{prefix}seg_000.ts");
    assert_eq!(server.oss(put(&segment, video.sts(), b"segment")).await.status(), 200, "a segment");
    let multipart_segment = format!("{prefix}seg_001.ts");
    initiate(&server, &multipart_segment, video.sts()).await;
    assert_eq!(
        media_status(state, &video.id).await,
        MediaStatus::Uploading,
        "segments do not complete the video"
    );

    let sibling = format!("{}x/seg_000.ts", prefix.trim_end_matches('/'));
    for target in ["sv/other/seg_000.ts", sibling.as_str()] {
        oss_error(server.oss(put(target, video.sts(), b"segment")).await, 403, "AccessDenied", target).await;
        assert_no_object(state, target).await;
    }

    assert_eq!(server.oss(put(video.key(), video.sts(), b"#EXTM3U\n")).await.status(), 200, "the playlist");
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Normal);
}

#[tokio::test]
async fn upload_id_of_another_key_is_no_such_upload() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let neighbour = create_video(&server, "b.mp4").await;
    let foreign = initiate(&server, "sv/other/x.mp4", server.key_credential()).await;
    let neighbours = initiate(&server, neighbour.key(), neighbour.sts()).await;
    let key = video.key();

    for upload_id in [&foreign, &neighbours] {
        let cases = [
            ("UploadPart", part(key, video.sts(), upload_id, 1, b"data")),
            ("ListParts", OssCall::new("GET", Some(key), video.sts()).query("uploadId", upload_id)),
            ("Complete", complete_call(key, video.sts(), upload_id, complete_body(&[(1, "\"00\"")]))),
            ("Abort", OssCall::new("DELETE", Some(key), video.sts()).query("uploadId", upload_id)),
        ];
        for (what, call) in cases {
            let error = oss_error(server.oss(call).await, 404, "NoSuchUpload", what).await;
            assert_eq!(error.upload_id.as_deref(), Some(upload_id.as_str()));
        }
        assert_eq!(upload_state(state, upload_id).await, UploadState::Open, "still open");
        assert_eq!(stored_parts(state, upload_id).await, Vec::<u32>::new(), "no part landed in it");
    }
    assert_no_object(state, key).await;
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);
}

/// A URL for `method` on `key`, presigned with the service's own presign key (as GetMezzanineInfo's are).
fn presigned(server: &TestServer, method: &str, key: &str, expires: SystemTime) -> String {
    let state = &server.state;
    let headers = http::HeaderMap::new();
    let request = OssRequest {
        method,
        bucket: Some(&state.site.bucket),
        key: Some(key),
        query: &[],
        headers: &headers,
    };
    let query = signature_v1::presign_query(
        &request,
        PRESIGN_KEY_ID,
        state.presigner.secret(),
        unix_seconds(expires),
        None,
    );
    format!("{}?{}", state.site.object_url(key), query_encode(&query))
}

#[tokio::test]
async fn presigned_get_url_reads_its_object_and_nothing_else() {
    let server = TestServer::start().await;
    let state = &server.state;
    let client = server.client();
    let key = "sv/p/a.mp4";
    let data = bytes(2000, 4);
    assert_eq!(server.oss(put(key, server.key_credential(), &data)).await.status(), 200);
    let later = SystemTime::now() + Duration::from_secs(300);
    let url = state.presigner.get_url(&state.site, key, later);

    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), data, "the bytes of the object");

    // The method is signed: the same URL with another method does not verify.
    head_error(client.head(&url).send().await.unwrap(), 403, "SignatureDoesNotMatch", "GET URL as HEAD")
        .await;
    let replaced = client.put(&url).body(b"replaced".to_vec()).send().await.unwrap();
    oss_error(replaced, 403, "SignatureDoesNotMatch", "GET URL as PUT").await;
    oss_error(client.delete(&url).send().await.unwrap(), 403, "SignatureDoesNotMatch", "GET URL as DELETE")
        .await;
    // So is the key.
    let elsewhere = url.replace("/sv/p/a.mp4?", "/sv/p/b.mp4?");
    oss_error(client.get(&elsewhere).send().await.unwrap(), 403, "SignatureDoesNotMatch", "another key")
        .await;

    // Even a URL properly signed for a write by the presign key grants only reads.
    let put_url = presigned(&server, "PUT", key, later);
    let response = client.put(&put_url).body(b"replaced".to_vec()).send().await.unwrap();
    oss_error(response, 403, "AccessDenied", "presigned PUT").await;
    let delete_url = presigned(&server, "DELETE", key, later);
    oss_error(client.delete(&delete_url).send().await.unwrap(), 403, "AccessDenied", "presigned DELETE")
        .await;
    // And the presign key cannot sign headers.
    let header_signed = OssCredential::V1 {
        id: PRESIGN_KEY_ID.into(),
        secret: state.presigner.secret().clone(),
        token: None,
    };
    oss_error(server.oss(put(key, header_signed, b"replaced")).await, 403, "AccessDenied", "header-signed")
        .await;

    // A URL presigned for HEAD reads the attributes.
    let response = client.head(presigned(&server, "HEAD", key, later)).send().await.unwrap();
    assert_eq!(response.status(), 200, "presigned HEAD");
    assert_eq!(response.headers()["content-length"], "2000");

    assert_eq!(stored(state, key).await, (2000, crc(&data)), "neither replaced nor deleted");
}

#[tokio::test]
async fn expired_presigned_url_is_access_denied() {
    let server = TestServer::start().await;
    let state = &server.state;
    let key = "sv/p/a.mp4";
    assert_eq!(server.oss(put(key, server.key_credential(), b"data")).await.status(), 200);
    let url = state.presigner.get_url(&state.site, key, SystemTime::now() - Duration::from_secs(5));
    oss_error(server.client().get(&url).send().await.unwrap(), 403, "AccessDenied", "expired URL").await;
}

#[tokio::test]
async fn unknown_access_key_is_invalid() {
    let server = TestServer::start().await;
    let unknown =
        OssCredential::V1 { id: "LTAIunknownKey000000000".into(), secret: Secret::new("s"), token: None };
    let key = "sv/u/a.mp4";
    let error =
        oss_error(server.oss(put(key, unknown.clone(), b"data")).await, 403, "InvalidAccessKeyId", "PUT")
            .await;
    assert_eq!(error.oss_access_key_id.as_deref(), Some("LTAIunknownKey000000000"));
    head_error(server.oss(head(key, unknown)).await, 403, "InvalidAccessKeyId", "HEAD").await;
    assert_no_object(&server.state, key).await;
}

#[tokio::test]
async fn revoked_long_lived_key_is_invalid() {
    let server = TestServer::start().await;
    let (id, secret) = new_key(&server).await;
    assert!(server.state.meta.revoke_key(&id, SystemTime::now()).await.unwrap());
    let revoked = OssCredential::V1 { id, secret, token: None };
    let key = "sv/r/a.mp4";
    oss_error(server.oss(put(key, revoked.clone(), b"data")).await, 403, "InvalidAccessKeyId", "PUT").await;
    let initiate = OssCall::new("POST", Some(key), revoked.clone()).query("uploads", "");
    oss_error(server.oss(initiate).await, 403, "InvalidAccessKeyId", "Initiate").await;
    head_error(server.oss(head(key, revoked)).await, 403, "InvalidAccessKeyId", "HEAD").await;
    assert_no_object(&server.state, key).await;
    assert_eq!(open_uploads(&server.state).await, 0);
}

/// Sends `call()` until it is refused with 403 `code`, or fails after `within`. Returns how long it took.
async fn refused_within(
    server: &TestServer,
    within: Duration,
    code: &str,
    call: impl Fn() -> OssCall,
) -> Duration {
    let started = Instant::now();
    loop {
        let response = server.oss(call()).await;
        if response.status() == 403 {
            oss_error(response, 403, code, "after revocation").await;
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still accepted {within:?} after revocation: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revoked_key_in_use_is_refused_within_the_refresh_interval() {
    let server = TestServer::start_with(|config| config.data.revocation_refresh_secs = Some(1)).await;
    let (id, secret) = new_key(&server).await;
    let key_in_use = OssCredential::V1 { id: id.clone(), secret, token: None };
    assert_eq!(server.oss(put("sv/r/before.mp4", key_in_use.clone(), b"data")).await.status(), 200);
    assert!(server.state.meta.revoke_key(&id, SystemTime::now()).await.unwrap());

    // Refresh interval (1 s) plus one refresh in flight, with headroom for a loaded machine.
    let took = refused_within(&server, Duration::from_secs(3), "InvalidAccessKeyId", || {
        OssCall::new("GET", Some("sv/r/before.mp4"), key_in_use.clone())
    })
    .await;
    eprintln!("revoked key refused after {took:?}");
    oss_error(server.oss(put("sv/r/after.mp4", key_in_use, b"data")).await, 403, "InvalidAccessKeyId", "PUT")
        .await;
    assert_no_object(&server.state, "sv/r/after.mp4").await;
}

#[tokio::test]
async fn revoked_key_in_use_cannot_publish_an_object_at_once() {
    let server = TestServer::start().await;
    let (id, secret) = new_key(&server).await;
    let key_in_use = OssCredential::V1 { id: id.clone(), secret, token: None };
    assert_eq!(server.oss(put("sv/r/before.mp4", key_in_use.clone(), b"data")).await.status(), 200);
    assert!(server.state.meta.revoke_key(&id, SystemTime::now()).await.unwrap());

    let response = server.oss(put("sv/r/after.mp4", key_in_use, b"data")).await;
    oss_error(response, 403, "InvalidAccessKeyId", "PUT right after revocation").await;
    assert_no_object(&server.state, "sv/r/after.mp4").await;
}

#[tokio::test]
async fn sts_of_a_revoked_key_is_refused() {
    let server = TestServer::start_with(|config| config.data.revocation_refresh_secs = Some(1)).await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let key = video.key();
    let upload_id = initiate(&server, key, video.sts()).await;
    let etag = upload_part(&server, key, video.sts(), &upload_id, 1, b"part").await;
    assert!(state.meta.revoke_key(&server.key_id, SystemTime::now()).await.unwrap());

    // At once where the catalogue is touched.
    let complete = complete_call(key, video.sts(), &upload_id, complete_body(&[(1, &etag)]));
    oss_error(server.oss(complete).await, 403, "InvalidAccessKeyId", "Complete").await;
    oss_error(server.oss(put(key, video.sts(), b"data")).await, 403, "InvalidAccessKeyId", "PutObject").await;
    let initiate = OssCall::new("POST", Some(key), video.sts()).query("uploads", "");
    oss_error(server.oss(initiate).await, 403, "InvalidAccessKeyId", "Initiate").await;
    assert_no_object(state, key).await;
    assert_eq!(upload_state(state, &upload_id).await, UploadState::Open, "not completed");
    assert_eq!(open_uploads(state).await, 1, "no second upload");
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);

    // Within the refresh interval on UploadPart, which reads no database.
    let took = refused_within(&server, Duration::from_secs(3), "InvalidAccessKeyId", || {
        part(key, video.sts(), &upload_id, 2, b"more")
    })
    .await;
    eprintln!("STS of a revoked key refused on UploadPart after {took:?}");
    assert_no_object(state, key).await;
}

#[tokio::test]
async fn sts_of_a_deleted_media_is_refused_at_once() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let key = video.key();
    let upload_id = initiate(&server, key, video.sts()).await;
    let etag = upload_part(&server, key, video.sts(), &upload_id, 1, b"part").await;
    let deleted = server.vod("DeleteVideo", &[("VideoIds", &video.id)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);

    oss_error(
        server.oss(part(key, video.sts(), &upload_id, 2, b"more")).await,
        403,
        "AccessDenied",
        "UploadPart",
    )
    .await;
    let complete = complete_call(key, video.sts(), &upload_id, complete_body(&[(1, &etag)]));
    oss_error(server.oss(complete).await, 403, "AccessDenied", "Complete").await;
    oss_error(server.oss(put(key, video.sts(), b"data")).await, 403, "AccessDenied", "PutObject").await;
    let initiate = OssCall::new("POST", Some(key), video.sts()).query("uploads", "");
    oss_error(server.oss(initiate).await, 403, "AccessDenied", "Initiate").await;

    assert_no_object(state, key).await;
    assert!(state.meta.get_media(&video.id).await.unwrap().is_none(), "the media stays deleted");
    assert_eq!(upload_state(state, &upload_id).await, UploadState::Aborted, "deleting the media aborted it");
    assert!(parts_of(state, &upload_id).await.is_err(), "and discarded its parts");
}

#[tokio::test]
async fn expired_sts_is_security_token_expired() {
    let server = TestServer::start_with(|config| config.control.credential_lifetime_secs = Some(1)).await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let key = video.key();
    // Before expiry the credential is accepted (a HEAD of the missing object gets as far as NoSuchKey).
    head_error(server.oss(head(key, video.sts())).await, 404, "NoSuchKey", "before expiry").await;

    let expiry = video.auth.expires_at().expect("ExpireUTCTime");
    let wait = expiry.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;

    oss_error(server.oss(put(key, video.sts(), b"data")).await, 403, "SecurityTokenExpired", "PutObject")
        .await;
    let initiate = OssCall::new("POST", Some(key), video.sts()).query("uploads", "");
    oss_error(server.oss(initiate).await, 403, "SecurityTokenExpired", "Initiate").await;
    head_error(server.oss(head(key, video.sts())).await, 403, "SecurityTokenExpired", "HEAD").await;
    assert_no_object(state, key).await;
    assert_eq!(open_uploads(state).await, 0);
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);
}

/// A credential lives at least its lifetime: its expiry, kept in whole seconds, is rounded up. Minted in
/// the last twentieth of a second, a 1 s credential used 100 ms later is still good (rounded down, it
/// had expired; a compat test with ali-oss failed on exactly that, 40 ms after a refresh).
#[tokio::test]
async fn a_credential_minted_late_in_a_second_lives_its_whole_lifetime() {
    let server = TestServer::start_with(|config| config.control.credential_lifetime_secs = Some(1)).await;
    for round in 0..3 {
        let fraction = || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_millis();
        while fraction() < 950 {
            tokio::time::sleep(Duration::from_millis(fraction().abs_diff(955).into())).await;
        }
        let video = create_video(&server, &format!("late{round}.mp4")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        head_error(
            server.oss(head(video.key(), video.sts())).await,
            404,
            "NoSuchKey",
            "100 ms after minting",
        )
        .await;
        let expiry = video.auth.expires_at().expect("ExpireUTCTime");
        assert!(expiry > SystemTime::now() + Duration::from_millis(500), "round {round}: expiry too early");
    }
}

#[tokio::test]
async fn forged_or_mismatched_tokens_are_invalid() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let neighbour = create_video(&server, "b.mp4").await;
    let with_token = |token: Option<String>| OssCredential::V1 {
        id: video.auth.access_key_id.clone(),
        secret: video.auth.access_key_secret.clone(),
        token,
    };
    let token = video.auth.security_token.expose().to_owned();
    let middle = token.len() / 2;
    let flipped = if token.as_bytes()[middle] == b'A' { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &token[..middle], &token[middle + 1..]);

    let cases = [
        ("tampered token", with_token(Some(tampered))),
        ("another credential's token", with_token(Some(neighbour.auth.security_token.expose().to_owned()))),
        ("no token", with_token(None)),
        ("not a token", with_token(Some("CAISgarbage".into()))),
    ];
    for (what, credential) in cases {
        oss_error(server.oss(put(video.key(), credential, b"data")).await, 403, "InvalidSecurityToken", what)
            .await;
    }
    assert_no_object(state, video.key()).await;
    assert_no_object(state, neighbour.key()).await;
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);
    assert_eq!(media_status(state, &neighbour.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn request_signed_twenty_minutes_off_is_too_skewed() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let twenty = Duration::from_secs(20 * 60);
    for (what, at) in
        [("20 min ago", SystemTime::now() - twenty), ("20 min ahead", SystemTime::now() + twenty)]
    {
        for credential in [server.key_credential(), video.sts()] {
            let mut call = put(video.key(), credential, b"data");
            call.at = Some(at);
            oss_error(server.oss(call).await, 403, "RequestTimeTooSkewed", what).await;
        }
    }
    assert_no_object(state, video.key()).await;
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);

    // Ten minutes off is inside the window.
    let mut call = put("sv/skew/ok.mp4", server.key_credential(), b"data");
    call.at = Some(SystemTime::now() - Duration::from_secs(10 * 60));
    assert_eq!(server.oss(call).await.status(), 200);
}

#[tokio::test]
async fn wrong_secret_is_signature_mismatch_with_the_string_to_sign() {
    let server = TestServer::start().await;
    let state = &server.state;
    let video = create_video(&server, "a.mp4").await;
    let at = SystemTime::now();
    let date = http_date(at);
    let bucket = server.bucket();

    let wrong_key =
        OssCredential::V1 { id: server.key_id.clone(), secret: Secret::new("wrong"), token: None };
    let mut call = put("sv/w/a.mp4", wrong_key, b"data");
    call.at = Some(at);
    let error = oss_error(server.oss(call).await, 403, "SignatureDoesNotMatch", "long-lived key").await;
    assert_eq!(
        error.string_to_sign.as_deref(),
        Some(format!("PUT\n\n\n{date}\n/{bucket}/sv/w/a.mp4").as_str())
    );
    assert_eq!(error.oss_access_key_id.as_deref(), Some(server.key_id.as_str()));
    assert!(error.signature_provided.is_some_and(|s| !s.is_empty()));
    assert!(error.string_to_sign_bytes.is_some_and(|b| b.starts_with("50 55 54 0a")), "PUT\\n in hex");

    let token = video.auth.security_token.expose().to_owned();
    let wrong_sts = OssCredential::V1 {
        id: video.auth.access_key_id.clone(),
        secret: Secret::new("wrong"),
        token: Some(token.clone()),
    };
    let mut call = put(video.key(), wrong_sts, b"data");
    call.at = Some(at);
    let error = oss_error(server.oss(call).await, 403, "SignatureDoesNotMatch", "STS").await;
    let expected = format!("PUT\n\n\n{date}\nx-oss-security-token:{token}\n/{bucket}/{}", video.key());
    assert_eq!(error.string_to_sign.as_deref(), Some(expected.as_str()));

    assert_no_object(state, "sv/w/a.mp4").await;
    assert_no_object(state, video.key()).await;
    assert_eq!(media_status(state, &video.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn v4_signed_for_another_region_is_refused() {
    let server = TestServer::start().await;
    let state = &server.state;
    let v4 = |region: &str| OssCredential::V4 {
        id: server.key_id.clone(),
        secret: server.key_secret.clone(),
        token: None,
        region: region.to_owned(),
    };
    assert_ne!(state.site.region, "cn-beijing");
    let error = oss_error(
        server.oss(put("sv/v4/a.mp4", v4("cn-beijing"), b"data")).await,
        400,
        "InvalidArgument",
        "V4",
    )
    .await;
    assert_eq!(error.argument_name.as_deref(), Some("x-oss-credential"));
    assert_eq!(error.argument_value.as_deref(), Some("cn-beijing"));
    assert_no_object(state, "sv/v4/a.mp4").await;

    // The same request scoped to the service's region goes through.
    assert_eq!(server.oss(put("sv/v4/a.mp4", v4(&state.site.region), b"data")).await.status(), 200);
}

/// DeleteObject of a `Normal` media's source is refused (it goes through DeleteVideo), and the refusal
/// changes nothing: the object still reads back whole and the video stays `Normal`. Once the video is
/// deleted, the key names nothing.
#[tokio::test]
async fn delete_object_of_a_normal_media_source_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let video = create_video(&server, "source.mp4").await;
    let bytes = bytes(2_000, 3);
    let put_answer = server.oss(put(video.key(), video.sts(), &bytes)).await;
    assert_eq!(put_answer.status(), 200);
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Normal);

    let delete = OssCall::new("DELETE", Some(video.key()), server.key_credential());
    let error = oss_error(server.oss(delete).await, 403, "AccessDenied", "DeleteObject of a source").await;
    assert!(error.message.contains("DeleteVideo"), "the message says what to do: {}", error.message);
    let get = server.oss(OssCall::new("GET", Some(video.key()), server.key_credential())).await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.bytes().await.unwrap().as_ref(), bytes.as_slice(), "the source is untouched");
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Normal);

    let deleted = server.vod("DeleteVideo", &[("VideoIds", &video.id)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_no_object(&server.state, video.key()).await;
    server.stop().await;
}
