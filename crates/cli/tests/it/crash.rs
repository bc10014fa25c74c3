//! Crash safety of `vodup serve`: the real binary kills itself (SIGKILL) at each named fault point
//! (`VODUP_FAULT`, see `vodup_server::fault`), is restarted on the same data folder, and must then show no
//! partial object, list every acknowledged part, complete the upload with the right bytes, keep every
//! object completed before the crash intact, agree between catalogue and storage, and deliver the event
//! of every completed upload.

use std::time::Duration;

use tokio::net::TcpListener;
use vodup_proto::crc64;
use vodup_proto::oss::xml::{CompleteMultipartUpload, CompletePart, to_xml};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::receiver::{Inbox, receive, wait_for};
use vodup_testkit::{Api, OssCall, OssCredential, ServeOptions, ServeProcess, random_bytes};

const PART: usize = 256 << 10;
/// How long a fault point may take to fire once its request is sent.
const DIE_WITHIN: Duration = Duration::from_secs(20);

/// A server with an event receiver, started once with a fault armed.
struct Crash {
    options: ServeOptions,
    key: (String, vodup_proto::Secret),
    inbox: Inbox,
    _dir: tempfile::TempDir,
}

impl Crash {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let callback = format!("http://{}/events", listener.local_addr().unwrap());
        let inbox = receive(listener);
        let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
        options.args = vec!["--callback-url".into(), callback];
        let key = options.create_key();
        Self { options, key, inbox, _dir: dir }
    }

    fn start(&self, fault: Option<&str>) -> ServeProcess {
        let env: Vec<(&str, &str)> = fault.map(|f| ("VODUP_FAULT", f)).into_iter().collect();
        ServeProcess::start(&self.options, &self.key, &env)
    }

    /// The events received for `id` (a VideoId or ImageId), waiting up to 20 s for at least `count`.
    async fn events_of(&self, field: &str, id: &str, count: usize) -> Vec<String> {
        let within = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = wait_for(&self.inbox, 0, Duration::ZERO).await;
            let ids: Vec<String> = got
                .iter()
                .filter(|r| r.body[field] == id)
                .map(|r| r.header("x-vod-event-id").to_owned())
                .collect();
            if ids.len() >= count || std::time::Instant::now() > within {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A media item created through the VOD API, with the STS credential of its UploadAuth.
struct Media {
    id: String,
    key: String,
    credential: OssCredential,
}

async fn create(api: &Api, action: &str, params: &[(&str, &str)], id_field: &str) -> Media {
    let reply = api.vod(action, params).await;
    assert_eq!(reply.status, 200, "{action}: {}", reply.body);
    let address = UploadAddress::decode(reply.body["UploadAddress"].as_str().unwrap()).unwrap();
    let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().unwrap()).unwrap();
    Media {
        id: reply.body[id_field].as_str().unwrap().to_owned(),
        key: address.file_name,
        credential: OssCredential::V1 {
            id: auth.access_key_id.clone(),
            secret: auth.access_key_secret.clone(),
            token: Some(auth.security_token.expose().to_owned()),
        },
    }
}

async fn create_video(api: &Api, name: &str) -> Media {
    create(api, "CreateUploadVideo", &[("Title", name), ("FileName", name)], "VideoId").await
}

fn call(media: &Media, method: &str) -> OssCall {
    OssCall::new(method, Some(&media.key), media.credential.clone())
}

async fn initiate(api: &Api, media: &Media) -> String {
    let response = api.oss(call(media, "POST").query("uploads", "")).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let start = text.find("<UploadId>").unwrap() + "<UploadId>".len();
    text[start..start + text[start..].find('<').unwrap()].to_owned()
}

fn part_call(media: &Media, upload_id: &str, number: u32, bytes: &[u8]) -> OssCall {
    call(media, "PUT")
        .query("partNumber", &number.to_string())
        .query("uploadId", upload_id)
        .body(bytes.to_vec())
}

async fn put_part(api: &Api, media: &Media, upload_id: &str, number: u32, bytes: &[u8]) -> String {
    let response = api.oss(part_call(media, upload_id, number, bytes)).await;
    assert_eq!(response.status(), 200, "part {number}");
    response.headers()["etag"].to_str().unwrap().to_owned()
}

fn complete_call(media: &Media, upload_id: &str, etags: &[String]) -> OssCall {
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| CompletePart { part_number: i as u32 + 1, etag: etag.clone() })
        .collect();
    call(media, "POST").query("uploadId", upload_id).body(to_xml(&CompleteMultipartUpload { parts }))
}

/// The parts ListParts shows: (number, ETag, size).
async fn list_parts(api: &Api, media: &Media, upload_id: &str) -> Vec<(u32, String, u64)> {
    let response = api.oss(call(media, "GET").query("uploadId", upload_id)).await;
    assert_eq!(response.status(), 200, "ListParts");
    let text = response.text().await.unwrap();
    let field = |part: &str, name: &str| {
        let open = format!("<{name}>");
        let start = part.find(&open).unwrap() + open.len();
        part[start..start + part[start..].find('<').unwrap()].to_owned()
    };
    text.split("<Part>")
        .skip(1)
        .map(|part| {
            (
                field(part, "PartNumber").parse().unwrap(),
                field(part, "ETag").replace("&quot;", "\""),
                field(part, "Size").parse().unwrap(),
            )
        })
        .collect()
}

/// The object at `key` as a long-lived key reads it: status and body.
async fn get(api: &Api, key: &str) -> (u16, Vec<u8>) {
    let response = api.oss(OssCall::new("GET", Some(key), api_key(api))).await;
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

fn api_key(api: &Api) -> OssCredential {
    OssCredential::V1 { id: api.key_id.clone(), secret: api.key_secret.clone(), token: None }
}

async fn video_status(api: &Api, video_id: &str) -> (String, Option<u64>) {
    let reply = api.vod("GetVideoInfo", &[("VideoId", video_id)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (reply.body["Video"]["Status"].as_str().unwrap().to_owned(), reply.body["Video"]["Size"].as_u64())
}

/// Catalogue and storage agree on a completed video: `Normal` with the object's size, the object's
/// bytes and CRC-64 those expected, and no upload left open under its key.
async fn assert_completed(api: &Api, media: &Media, bytes: &[u8]) {
    assert_eq!(video_status(api, &media.id).await, ("Normal".to_owned(), Some(bytes.len() as u64)));
    let response = api.oss(OssCall::new("GET", Some(&media.key), api_key(api))).await;
    assert_eq!(response.status(), 200);
    let crc = response.headers()["x-oss-hash-crc64ecma"].to_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(crc, crc64::checksum(bytes), "the object's CRC-64");
    let body = response.bytes().await.unwrap();
    assert!(body == bytes, "the object's bytes ({} read, {} expected)", body.len(), bytes.len());
    let open = api
        .oss(OssCall::new("GET", None, api_key(api)).query("uploads", "").query("prefix", &media.key))
        .await;
    let text = open.text().await.unwrap();
    assert!(!text.contains("<Upload>"), "an upload is still open under {}: {text}", media.key);
}

/// A video fully uploaded before the crash, to check afterwards that it is intact.
async fn completed_video(api: &Api) -> (Media, Vec<u8>) {
    let media = create_video(api, "before.mp4").await;
    let bytes = random_bytes(PART + 1000, 7);
    let upload_id = initiate(api, &media).await;
    let etags = vec![
        put_part(api, &media, &upload_id, 1, &bytes[..PART]).await,
        put_part(api, &media, &upload_id, 2, &bytes[PART..]).await,
    ];
    assert_eq!(api.oss(complete_call(&media, &upload_id, &etags)).await.status(), 200);
    (media, bytes)
}

/// The video the crash interrupts: three parts, the last one short.
fn video_bytes() -> Vec<u8> {
    random_bytes(2 * PART + 12_345, 11)
}

fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(PART).collect()
}

/// The interrupted video with every part acknowledged: media, bytes, upload id, part ETags.
async fn cut_video_parts(api: &Api) -> (Media, Vec<u8>, String, Vec<String>) {
    let media = create_video(api, "cut.mp4").await;
    let bytes = video_bytes();
    let upload_id = initiate(api, &media).await;
    let mut etags = Vec::new();
    for (i, part) in chunks(&bytes).into_iter().enumerate() {
        etags.push(put_part(api, &media, &upload_id, i as u32 + 1, part).await);
    }
    (media, bytes, upload_id, etags)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_writing_a_part_keeps_every_acknowledged_part() {
    let crash = Crash::new().await;
    let mut server = crash.start(Some("part-written:5"));
    let (before, before_bytes) = completed_video(&server).await;
    let media = create_video(&server, "cut.mp4").await;
    let bytes = video_bytes();
    let upload_id = initiate(&server, &media).await;
    let parts = chunks(&bytes);
    // Hits 3 and 4 are these two parts (1 and 2 were the first video's); hit 5 is part 3.
    let mut etags = vec![
        put_part(&server, &media, &upload_id, 1, parts[0]).await,
        put_part(&server, &media, &upload_id, 2, parts[1]).await,
    ];
    let cut = server.try_oss(part_call(&media, &upload_id, 3, parts[2])).await;
    assert!(cut.is_err(), "the server died before answering part 3");
    server.expect_killed(DIE_WITHIN);

    let server = crash.start(None);
    assert_eq!(get(&server, &media.key).await.0, 404, "no object before Complete");
    let listed = list_parts(&server, &media, &upload_id).await;
    let expected: Vec<(u32, String, u64)> =
        vec![(1, etags[0].clone(), PART as u64), (2, etags[1].clone(), PART as u64)];
    assert_eq!(listed, expected, "exactly the acknowledged parts are listed");
    let staging = crash.options.data.join("store/uploads").join(&upload_id);
    let leftovers: Vec<_> = std::fs::read_dir(&staging).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "the cut-off part file was removed: {leftovers:?}");

    etags.push(put_part(&server, &media, &upload_id, 3, parts[2]).await);
    assert_eq!(server.oss(complete_call(&media, &upload_id, &etags)).await.status(), 200);
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    assert_eq!(crash.events_of("VideoId", &media.id, 1).await.len(), 1, "the event after restart");
    assert!(server.log().contains("repaired"), "the repair was logged:\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_before_the_manifest_is_renamed_reopens_the_upload() {
    let crash = Crash::new().await;
    // The first video's Complete is hit 1.
    let mut server = crash.start(Some("manifest-written:2"));
    let (before, before_bytes) = completed_video(&server).await;
    let (media, bytes, upload_id, etags) = cut_video_parts(&server).await;
    assert!(server.try_oss(complete_call(&media, &upload_id, &etags)).await.is_err());
    server.expect_killed(DIE_WITHIN);

    let server = crash.start(None);
    assert_eq!(get(&server, &media.key).await.0, 404, "nothing was published");
    assert_eq!(video_status(&server, &media.id).await.0, "Uploading");
    let listed = list_parts(&server, &media, &upload_id).await;
    assert_eq!(listed.iter().map(|p| p.1.clone()).collect::<Vec<_>>(), etags, "the upload is open again");
    assert_eq!(server.oss(complete_call(&media, &upload_id, &etags)).await.status(), 200);
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    assert_eq!(crash.events_of("VideoId", &media.id, 1).await.len(), 1);
    assert!(server.log().contains("reopened_uploads"), "the repair was logged:\n{}", server.log());
}

/// Kills at `fault` during the second video's Complete (the first video's is hit 1), restarts, and checks
/// the completion was carried through: a retried Complete gets the same answer, the video is `Normal`
/// with the right bytes, and its event arrives.
async fn completion_survives(fault: &str) {
    let crash = Crash::new().await;
    let mut server = crash.start(Some(&format!("{fault}:2")));
    let (before, before_bytes) = completed_video(&server).await;
    let (media, bytes, upload_id, etags) = cut_video_parts(&server).await;
    assert!(server.try_oss(complete_call(&media, &upload_id, &etags)).await.is_err());
    server.expect_killed(DIE_WITHIN);

    let server = crash.start(None);
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    let retried = server.oss(complete_call(&media, &upload_id, &etags)).await;
    assert_eq!(retried.status(), 200, "a retried Complete gets the first answer");
    let crc = retried.headers()["x-oss-hash-crc64ecma"].to_str().unwrap().to_owned();
    assert_eq!(crc, crc64::checksum(&bytes).to_string());
    let mut other = etags.clone();
    other.pop();
    let different = server.oss(complete_call(&media, &upload_id, &other)).await;
    assert_eq!(different.status(), 404, "a Complete listing other parts is NoSuchUpload");
    assert_eq!(crash.events_of("VideoId", &media.id, 1).await.len(), 1, "the event after restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_publishing_before_the_catalogue_records_completes_on_restart() {
    completion_survives("object-published").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_status_commit_before_the_event_delivers_it_after_restart() {
    completion_survives("status-committed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_posting_an_event_delivers_it_again_with_the_same_id() {
    let crash = Crash::new().await;
    // The first event is the first video's: let it through, die after the second is posted.
    let mut server = crash.start(Some("event-posted:2"));
    let (before, before_bytes) = completed_video(&server).await;
    assert_eq!(crash.events_of("VideoId", &before.id, 1).await.len(), 1);
    let (media, bytes, upload_id, etags) = cut_video_parts(&server).await;
    assert_eq!(server.oss(complete_call(&media, &upload_id, &etags)).await.status(), 200);
    server.expect_killed(DIE_WITHIN);
    assert_eq!(crash.events_of("VideoId", &media.id, 1).await.len(), 1, "posted once before the crash");

    let server = crash.start(None);
    let ids = crash.events_of("VideoId", &media.id, 2).await;
    assert_eq!(ids.len(), 2, "delivered again after the restart (at least once)");
    assert_eq!(ids[0], ids[1], "with the same X-VOD-Event-Id, so the receiver can deduplicate");
    assert_eq!(crash.events_of("VideoId", &before.id, 1).await.len(), 1, "a delivered event is not resent");
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.metric("vodup_events{state=\"delivered\"}").await, 2.0);
    assert_eq!(server.metric("vodup_events{state=\"pending\"}").await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_object_killed_before_or_after_publishing_is_absent_or_complete() {
    let crash = Crash::new().await;
    let image = |api: &Api| {
        let api = api.clone();
        async move {
            create(&api, "CreateUploadImage", &[("ImageType", "default"), ("ImageExt", "png")], "ImageId")
                .await
        }
    };
    // Cut before the body is renamed: the image stays Uploading, with no object and no garbage.
    let mut server = crash.start(Some("part-written"));
    let first = image(&server).await;
    let body = random_bytes(150_000, 3);
    assert!(server.try_oss(call(&first, "PUT").body(body.clone())).await.is_err());
    server.expect_killed(DIE_WITHIN);
    let mut server = crash.start(Some("object-published"));
    assert_eq!(get(&server, &first.key).await.0, 404);
    let blobs: Vec<_> = std::fs::read_dir(crash.options.data.join("store/blobs")).unwrap().collect();
    assert!(blobs.is_empty(), "the unpublished body was removed: {blobs:?}");

    // Cut after publishing, before the catalogue: the restart records the image and sends its event.
    let second = image(&server).await;
    assert!(server.try_oss(call(&second, "PUT").body(body.clone())).await.is_err());
    server.expect_killed(DIE_WITHIN);
    let server = crash.start(None);
    let (status, read) = get(&server, &second.key).await;
    assert!(status == 200 && read == body, "the published image is whole");
    assert_eq!(crash.events_of("ImageId", &second.id, 1).await.len(), 1, "its event after restart");
    let info = server.vod("GetImageInfo", &[("ImageId", &second.id)]).await;
    assert_eq!(info.body["ImageInfo"]["Status"], "Normal", "{}", info.body);
    // The first image can still be uploaded with its credential.
    assert_eq!(server.oss(call(&first, "PUT").body(body.clone())).await.status(), 200);
    let info = server.vod("GetImageInfo", &[("ImageId", &first.id)]).await;
    assert_eq!(info.body["ImageInfo"]["Status"], "Normal", "{}", info.body);
}
