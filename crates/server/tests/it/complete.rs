//! What the data plane validates before it publishes anything (oss-api.md §3.4, §4, §5): the
//! CompleteMultipartUpload list (order, ETags, missing parts, the 100 KiB minimum, XML), a body announced
//! over 5 GiB, and a `Content-MD5` that does not match. Each refusal is checked for its status and code,
//! and for leaving things as they were: no object, the upload still open with its parts, the media still
//! `Uploading`. A happy path first, so the refusals are refusals of a flow that otherwise works.

use vodup_server::meta::{MediaStatus, UploadState};
use vodup_server::proto::encoding::percent_encode_path;
use vodup_server::proto::mac::content_md5;
use vodup_server::proto::oss::part::MAX_PUT_OBJECT_SIZE;
use vodup_testkit::{OssCall, TestServer};

use crate::support::{
    MIN_PART, Video, assert_no_object, bytes, complete_body, complete_call, crc, create_video, initiate,
    media_status, oss_error, parts_of, put, raw_http, stored, stored_parts, upload_part, upload_state,
    v1_headers,
};

/// A video with an open upload holding part 1 (exactly 100 KiB) and part 2 (small, as a last part may be).
struct Open {
    server: TestServer,
    video: Video,
    upload_id: String,
    parts: [(Vec<u8>, String); 2],
}

async fn open_upload() -> Open {
    let server = TestServer::start().await;
    let video = create_video(&server, "a.mp4").await;
    let upload_id = initiate(&server, video.key(), video.sts()).await;
    let (one, two) = (bytes(MIN_PART, 1), bytes(12_345, 2));
    let first = upload_part(&server, video.key(), video.sts(), &upload_id, 1, &one).await;
    let second = upload_part(&server, video.key(), video.sts(), &upload_id, 2, &two).await;
    Open { server, video, upload_id, parts: [(one, first), (two, second)] }
}

impl Open {
    fn etag(&self, index: usize) -> &str {
        &self.parts[index].1
    }

    async fn complete(&self, body: String) -> reqwest::Response {
        self.server.oss(complete_call(self.video.key(), self.video.sts(), &self.upload_id, body)).await
    }

    /// Nothing published, the upload open with both parts, the media still waiting.
    async fn assert_unchanged(&self) {
        let state = &self.server.state;
        assert_no_object(state, self.video.key()).await;
        assert_eq!(upload_state(state, &self.upload_id).await, UploadState::Open);
        assert_eq!(stored_parts(state, &self.upload_id).await, [1, 2]);
        assert_eq!(media_status(state, &self.video.id).await, MediaStatus::Uploading);
    }
}

#[tokio::test]
async fn multipart_upload_completes_with_the_combined_crc() {
    let open = open_upload().await;
    let state = &open.server.state;
    let whole: Vec<u8> = [open.parts[0].0.as_slice(), open.parts[1].0.as_slice()].concat();

    let response = open.complete(complete_body(&[(1, open.etag(0)), (2, open.etag(1))])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-oss-hash-crc64ecma"], crc(&whole).to_string().as_str());

    let head = open.server.oss(OssCall::new("HEAD", Some(open.video.key()), open.video.sts())).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], whole.len().to_string().as_str());
    assert_eq!(head.headers()["x-oss-hash-crc64ecma"], crc(&whole).to_string().as_str());
    assert_eq!(head.headers()["x-oss-object-type"], "Multipart");
    assert_eq!(stored(state, open.video.key()).await, (whole.len() as u64, crc(&whole)));

    let media = state.meta.get_media(&open.video.id).await.unwrap().unwrap();
    assert_eq!(media.status, MediaStatus::Normal);
    assert_eq!((media.size, media.crc64), (Some(whole.len() as u64), Some(crc(&whole))));
    assert_eq!(upload_state(state, &open.upload_id).await, UploadState::Completed);
}

#[tokio::test]
async fn complete_rejects_parts_out_of_order() {
    let open = open_upload().await;
    for (what, parts) in
        [("descending", [(2, open.etag(1)), (1, open.etag(0))]), ("repeated", [(1, open.etag(0)); 2])]
    {
        oss_error(open.complete(complete_body(&parts)).await, 400, "InvalidPartOrder", what).await;
    }
    open.assert_unchanged().await;
}

#[tokio::test]
async fn complete_rejects_a_wrong_etag() {
    let open = open_upload().await;
    let wrong = "\"0123456789ABCDEF0123456789ABCDEF\"";
    let error = oss_error(
        open.complete(complete_body(&[(1, open.etag(0)), (2, wrong)])).await,
        400,
        "InvalidPart",
        "ETag",
    )
    .await;
    assert_eq!(error.part_number.as_deref(), Some("2"));
    assert_eq!(error.etag.as_deref(), Some(wrong));
    open.assert_unchanged().await;
}

#[tokio::test]
async fn complete_rejects_a_missing_part() {
    let open = open_upload().await;
    let parts = [(1, open.etag(0)), (2, open.etag(1)), (3, open.etag(1))];
    let error = oss_error(open.complete(complete_body(&parts)).await, 400, "InvalidPart", "part 3").await;
    assert_eq!(error.part_number.as_deref(), Some("3"));
    open.assert_unchanged().await;
}

#[tokio::test]
async fn complete_rejects_a_small_part_before_the_last() {
    let open = open_upload().await;
    // Part 2 (12 345 bytes) is fine as the last part; a part 3 after it makes it too small.
    let three = bytes(10, 3);
    let third =
        upload_part(&open.server, open.video.key(), open.video.sts(), &open.upload_id, 3, &three).await;
    let parts = [(1, open.etag(0)), (2, open.etag(1)), (3, third.as_str())];
    let error = oss_error(open.complete(complete_body(&parts)).await, 400, "EntityTooSmall", "part 2").await;
    assert_eq!(error.part_number.as_deref(), Some("2"));

    let state = &open.server.state;
    assert_no_object(state, open.video.key()).await;
    assert_eq!(upload_state(state, &open.upload_id).await, UploadState::Open);
    assert_eq!(stored_parts(state, &open.upload_id).await, [1, 2, 3]);
    assert_eq!(media_status(state, &open.video.id).await, MediaStatus::Uploading);
}

#[tokio::test]
async fn complete_rejects_malformed_xml() {
    let open = open_upload().await;
    for body in
        ["<CompleteMultipartUpload><Part>", "not xml", "<CompleteMultipartUpload></CompleteMultipartUpload>"]
    {
        oss_error(open.complete(body.to_owned()).await, 400, "MalformedXML", body).await;
    }
    open.assert_unchanged().await;
}

#[tokio::test]
async fn body_announced_over_5_gib_is_too_large_before_any_byte() {
    let open = open_upload().await;
    let server = &open.server;
    let key = open.video.key();
    let path = format!("/{}/{}", server.bucket(), percent_encode_path(key));
    let too_large = (MAX_PUT_OBJECT_SIZE + 1).to_string();
    assert_eq!(MAX_PUT_OBJECT_SIZE, 5 << 30);

    // Only the head is sent; the refusal must come without waiting for 5 GiB.
    let mut with_length = v1_headers(server, &open.video.sts(), "PUT", key, &[], &[]);
    with_length.push(("content-length".into(), too_large.clone()));
    let response = raw_http(&server.oss_url, "PUT", &path, &with_length, b"").await;
    assert_eq!((response.status, response.oss_error().code.as_str()), (400, "EntityTooLarge"), "PutObject");

    let query =
        vec![("partNumber".to_owned(), "3".to_owned()), ("uploadId".to_owned(), open.upload_id.clone())];
    let mut with_length = v1_headers(server, &open.video.sts(), "PUT", key, &query, &[]);
    with_length.push(("content-length".into(), too_large));
    let target = format!("{path}?partNumber=3&uploadId={}", open.upload_id);
    let response = raw_http(&server.oss_url, "PUT", &target, &with_length, b"").await;
    assert_eq!((response.status, response.oss_error().code.as_str()), (400, "EntityTooLarge"), "UploadPart");

    open.assert_unchanged().await;
}

#[tokio::test]
async fn content_md5_mismatch_is_invalid_digest() {
    let open = open_upload().await;
    let server = &open.server;
    let key = open.video.key();
    let md5_of_other = content_md5(b"other bytes");

    let call = put(key, open.video.sts(), b"object bytes").header("content-md5", &md5_of_other);
    oss_error(server.oss(call).await, 400, "InvalidDigest", "PutObject").await;
    let call = put(key, open.video.sts(), b"object bytes").header("content-md5", "not base64 of 16 bytes");
    oss_error(server.oss(call).await, 400, "InvalidDigest", "PutObject with a malformed Content-MD5").await;

    let call = OssCall::new("PUT", Some(key), open.video.sts())
        .query("partNumber", "2")
        .query("uploadId", &open.upload_id)
        .header("content-md5", &md5_of_other)
        .body(b"replacement part".to_vec());
    oss_error(server.oss(call).await, 400, "InvalidDigest", "UploadPart").await;

    let body = complete_body(&[(1, open.etag(0)), (2, open.etag(1))]);
    let call =
        complete_call(key, open.video.sts(), &open.upload_id, body).header("content-md5", &md5_of_other);
    oss_error(server.oss(call).await, 400, "InvalidDigest", "CompleteMultipartUpload").await;

    open.assert_unchanged().await;
    let parts = parts_of(&server.state, &open.upload_id).await.unwrap();
    assert_eq!(parts[1].digests.len, 12_345, "part 2 was not replaced");
}
