//! Crash safety of `vodup serve`: the real binary kills itself (SIGKILL) at each named step of a commit
//! and of the collector (`VODUP_FAULT`, see `vodup_server::fault`), is restarted on the same data folder,
//! and must then show that nothing acknowledged was lost (every acknowledged part listed, every object
//! answered 200 read back exactly, the upload completable with the right bytes), that nothing
//! unacknowledged is visible (an object whose request got no answer is absent or whole, and its media is
//! `Normal` exactly when it is whole), that the event of every committed completion is delivered (again
//! with the same id if the crash came after a delivery), and that after a collector round no blob file
//! is left in storage that no object or open part references.
//!
//! Every server here runs its collector every 200 ms with a one-second grace, so the tests can wait for
//! it. Blob files are counted on disk (`store/blobs/ab/<id>`) against what the test uploaded: one per
//! PutObject object, one per part of a completed or open upload.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use vodup_proto::crc64;
use vodup_proto::oss::xml::{CompleteMultipartUpload, CompletePart, to_xml};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::receiver::{Inbox, receive, wait_for};
use vodup_testkit::{Api, OssCall, OssCredential, ServeOptions, ServeProcess, random_bytes};

const PART: usize = 256 << 10;
/// How long a fault point may take to fire once its request is sent (or its garbage is past the grace).
const DIE_WITHIN: Duration = Duration::from_secs(20);
/// How long the collector may take to remove what it should, once the grace is over.
const COLLECTED_WITHIN: Duration = Duration::from_secs(15);

/// A data folder and an event receiver, shared by the runs of `vodup serve` a test starts on them.
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
        // A collector round every 200 ms, removing what has been unreferenced for a second; an event claimed
        // by a killed server comes due again a second after its claim (default a minute).
        let config = dir.path().join("vodup.toml");
        std::fs::write(&config, "[sweeper]\ncollect_interval_ms = 200\n[events]\nclaim_secs = 1\n").unwrap();
        let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("data"));
        options.args = vec![
            "--callback-url".into(),
            callback,
            "--config".into(),
            config.display().to_string(),
            "--blob-grace".into(),
            "1".into(),
        ];
        let key = options.create_key();
        Self { options, key, inbox, _dir: dir }
    }

    fn start(&self, fault: Option<&str>) -> ServeProcess {
        let env: Vec<(&str, &str)> = fault.map(|f| ("VODUP_FAULT", f)).into_iter().collect();
        ServeProcess::start(&self.options, &self.key, &env)
    }

    /// The event ids received for `id` (a VideoId or ImageId), waiting up to 20 s for at least `count`.
    async fn events_of(&self, field: &str, id: &str, count: usize) -> Vec<String> {
        let within = Instant::now() + Duration::from_secs(20);
        loop {
            let got = wait_for(&self.inbox, 0, Duration::ZERO).await;
            let ids: Vec<String> = got
                .iter()
                .filter(|r| r.body[field] == id)
                .map(|r| r.header("x-vod-event-id").to_owned())
                .collect();
            if ids.len() >= count || Instant::now() > within {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the event of `media` and checks it arrived at least once, every time with one event id.
    async fn assert_event(&self, media: &Media) {
        let ids = self.events_of(media.kind.id_field(), &media.id, 1).await;
        assert!(!ids.is_empty(), "the event of {} {} was delivered", media.kind.id_field(), media.id);
        assert!(ids.iter().all(|id| *id == ids[0]), "redeliveries keep the event id: {ids:?}");
    }

    fn store(&self, sub: &str) -> PathBuf {
        self.options.data.join("store").join(sub)
    }

    /// The blob files in storage (`blobs/ab/<id>`).
    fn blob_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        for shard in std::fs::read_dir(self.store("blobs")).unwrap() {
            let shard = shard.unwrap();
            if !shard.file_type().unwrap().is_dir() {
                continue;
            }
            // The collector may be deleting meanwhile; a file gone between listing and reading is gone.
            let Ok(blobs) = std::fs::read_dir(shard.path()) else { continue };
            found.extend(blobs.filter_map(|b| Some(b.ok()?.file_name().to_string_lossy().into_owned())));
        }
        found
    }

    /// Files left in `tmp/`, where blobs are written before they are renamed into place.
    fn tmp_files(&self) -> usize {
        std::fs::read_dir(self.store("tmp")).unwrap().count()
    }

    /// Waits for the collector to leave exactly `live` blob files: every referenced blob kept, every
    /// other one removed. A count that went below `live` would be a live blob deleted.
    async fn assert_collected_to(&self, live: usize) {
        let deadline = Instant::now() + COLLECTED_WITHIN;
        while self.blob_files().len() > live && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A few more rounds, so a collector that goes on deleting would be caught.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let files = self.blob_files();
        assert_eq!(files.len(), live, "blob files after the collector: {files:?}");
    }
}

/// What a media item is: the action that creates it and the fields that name it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Video,
    Image,
}

impl Kind {
    fn id_field(self) -> &'static str {
        match self {
            Self::Video => "VideoId",
            Self::Image => "ImageId",
        }
    }
}

/// A media item created through the VOD API, with the STS credential of its UploadAuth.
struct Media {
    kind: Kind,
    id: String,
    key: String,
    credential: OssCredential,
}

async fn create(api: &Api, kind: Kind, name: &str) -> Media {
    let (action, params): (&str, Vec<(&str, &str)>) = match kind {
        Kind::Video => ("CreateUploadVideo", vec![("Title", name), ("FileName", name)]),
        Kind::Image => ("CreateUploadImage", vec![("ImageType", "default"), ("ImageExt", "png")]),
    };
    let reply = api.vod(action, &params).await;
    assert_eq!(reply.status, 200, "{action}: {}", reply.body);
    let address = UploadAddress::decode(reply.body["UploadAddress"].as_str().unwrap()).unwrap();
    let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().unwrap()).unwrap();
    Media {
        kind,
        id: reply.body[kind.id_field()].as_str().unwrap().to_owned(),
        key: address.file_name,
        credential: OssCredential::V1 {
            id: auth.access_key_id.clone(),
            secret: auth.access_key_secret.clone(),
            token: Some(auth.security_token.expose().to_owned()),
        },
    }
}

async fn create_video(api: &Api, name: &str) -> Media {
    create(api, Kind::Video, name).await
}

/// The media's status as GetVideoInfo or GetImageInfo reports it.
async fn media_status(api: &Api, media: &Media) -> String {
    let (action, field) = match media.kind {
        Kind::Video => ("GetVideoInfo", "Video"),
        Kind::Image => ("GetImageInfo", "ImageInfo"),
    };
    let reply = api.vod(action, &[(media.kind.id_field(), &media.id)]).await;
    assert_eq!(reply.status, 200, "{action}: {}", reply.body);
    reply.body[field]["Status"].as_str().unwrap().to_owned()
}

fn call(media: &Media, method: &str) -> OssCall {
    OssCall::new(method, Some(&media.key), media.credential.clone())
}

fn api_key(api: &Api) -> OssCredential {
    OssCredential::V1 { id: api.key_id.clone(), secret: api.key_secret.clone(), token: None }
}

async fn initiate(api: &Api, on: OssCall) -> String {
    let response = api.oss(on.query("uploads", "")).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let start = text.find("<UploadId>").unwrap() + "<UploadId>".len();
    text[start..start + text[start..].find('<').unwrap()].to_owned()
}

fn part_call(on: OssCall, upload_id: &str, number: u32, bytes: &[u8]) -> OssCall {
    on.query("partNumber", &number.to_string()).query("uploadId", upload_id).body(bytes.to_vec())
}

async fn put_part(api: &Api, on: OssCall, upload_id: &str, number: u32, bytes: &[u8]) -> String {
    let response = api.oss(part_call(on, upload_id, number, bytes)).await;
    assert_eq!(response.status(), 200, "part {number}");
    response.headers()["etag"].to_str().unwrap().to_owned()
}

fn complete_call(on: OssCall, upload_id: &str, etags: &[String]) -> OssCall {
    let parts = etags
        .iter()
        .enumerate()
        .map(|(i, etag)| CompletePart { part_number: i as u32 + 1, etag: etag.clone() })
        .collect();
    on.query("uploadId", upload_id).body(to_xml(&CompleteMultipartUpload { parts }))
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

/// Asserts that `key` reads back as exactly `bytes`.
async fn assert_reads(api: &Api, key: &str, bytes: &[u8]) {
    let (status, read) = get(api, key).await;
    assert_eq!(status, 200, "GET {key}");
    assert!(read == bytes, "the bytes of {key} ({} read, {} expected)", read.len(), bytes.len());
}

/// An object whose request got no answer is absent (404, media `Uploading`) or whole (exactly `bytes`,
/// media `Normal`): never partial, and the catalogue says `Normal` exactly when GET returns it. Returns
/// whether it is whole.
async fn absent_or_whole(api: &Api, media: &Media, bytes: &[u8]) -> bool {
    let (status, read) = get(api, &media.key).await;
    let media_status = media_status(api, media).await;
    if status == 200 {
        assert!(read == bytes, "a visible object is whole ({} read, {} sent)", read.len(), bytes.len());
        assert_eq!(media_status, "Normal", "a readable object's media");
        true
    } else {
        assert_eq!(status, 404, "an object that is not whole is absent");
        assert_eq!(media_status, "Uploading", "an absent object's media");
        false
    }
}

/// Catalogue and storage agree on a completed video: `Normal` with the object's size, the object's
/// bytes and CRC-64 those expected, and no upload left open under its key.
async fn assert_completed(api: &Api, media: &Media, bytes: &[u8]) {
    let reply = api.vod("GetVideoInfo", &[("VideoId", &media.id)]).await;
    assert_eq!(reply.body["Video"]["Status"], "Normal", "{}", reply.body);
    assert_eq!(reply.body["Video"]["Size"].as_u64(), Some(bytes.len() as u64), "{}", reply.body);
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

/// A two-part video fully uploaded before the crash, to check afterwards that it is intact. Its two
/// parts hit the blob points twice; with its Complete, `status-committed` is hit three times.
async fn completed_video(api: &Api) -> (Media, Vec<u8>) {
    let media = create_video(api, "before.mp4").await;
    let bytes = random_bytes(PART + 1000, 7);
    let upload_id = initiate(api, call(&media, "POST")).await;
    let etags = vec![
        put_part(api, call(&media, "PUT"), &upload_id, 1, &bytes[..PART]).await,
        put_part(api, call(&media, "PUT"), &upload_id, 2, &bytes[PART..]).await,
    ];
    assert_eq!(api.oss(complete_call(call(&media, "POST"), &upload_id, &etags)).await.status(), 200);
    (media, bytes)
}

/// The video the crash interrupts: three parts, the last one short.
fn video_bytes() -> Vec<u8> {
    random_bytes(2 * PART + 12_345, 11)
}

fn chunks(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(PART).collect()
}

/// Blob files of the two videos once both are complete: two parts and three.
const TWO_VIDEOS: usize = 5;

/// Where a write was cut, and so what the crash leaves on disk before the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// `blob-written`: the bytes are in `tmp/`, not in place.
    Written,
    /// `blob-stored`: the blob is in place, no commit references it.
    Stored,
    /// `status-committed`: the blob is in place and committed; no answer was sent.
    Committed,
}

impl Cut {
    /// Asserts what the crash left: `acknowledged` blobs in place, plus the cut write's blob in `tmp/`
    /// or in place.
    fn assert_left(self, crash: &Crash, acknowledged: usize) {
        let in_place = acknowledged + usize::from(self != Self::Written);
        assert_eq!(crash.blob_files().len(), in_place, "blobs in place after a crash at {self:?}");
        assert_eq!(crash.tmp_files(), usize::from(self == Self::Written), "tmp/ after a crash at {self:?}");
    }
}

/// Kills the server at `fault` (written `point:N`) while it takes part 3 of the second video, parts 1 and
/// 2 acknowledged; restarts it and checks: the acknowledged parts are listed, part 3 is listed only if
/// it was committed and then whole, the upload completes with the right bytes and its event arrives,
/// the first video is intact, and the collector leaves exactly the referenced blobs.
async fn part_survives(fault: &str, cut_at: Cut) {
    let crash = Crash::new().await;
    let mut server = crash.start(Some(fault));
    let (before, before_bytes) = completed_video(&server).await;
    let media = create_video(&server, "cut.mp4").await;
    let bytes = video_bytes();
    let upload_id = initiate(&server, call(&media, "POST")).await;
    let parts = chunks(&bytes);
    let mut etags = vec![
        put_part(&server, call(&media, "PUT"), &upload_id, 1, parts[0]).await,
        put_part(&server, call(&media, "PUT"), &upload_id, 2, parts[1]).await,
    ];
    let cut = server.try_oss(part_call(call(&media, "PUT"), &upload_id, 3, parts[2])).await;
    assert!(cut.is_err(), "the server died before answering part 3: {cut:?}");
    server.expect_killed(DIE_WITHIN);
    cut_at.assert_left(&crash, 4);

    let server = crash.start(None);
    assert_eq!(crash.tmp_files(), 0, "the restart removed half-written blobs");
    assert!(!absent_or_whole(&server, &media, &bytes).await, "no object before Complete");
    let listed = list_parts(&server, &media, &upload_id).await;
    let mut expected: Vec<(u32, String, u64)> =
        vec![(1, etags[0].clone(), PART as u64), (2, etags[1].clone(), PART as u64)];
    if cut_at == Cut::Committed {
        // The part was recorded before the crash: it is listed with its size, and it is whole, as the
        // Complete below that uses it proves with the object's bytes and CRC-64.
        expected.push((3, listed.get(2).map_or(String::new(), |p| p.1.clone()), parts[2].len() as u64));
        assert_eq!(listed, expected, "the acknowledged parts and the committed part 3 are listed");
        etags.push(listed[2].1.clone());
    } else {
        assert_eq!(listed, expected, "exactly the acknowledged parts are listed");
        etags.push(put_part(&server, call(&media, "PUT"), &upload_id, 3, parts[2]).await);
    }
    let done = server.oss(complete_call(call(&media, "POST"), &upload_id, &etags)).await;
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    crash.assert_event(&media).await;
    crash.assert_event(&before).await;
    crash.assert_collected_to(TWO_VIDEOS).await;
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
}

// Hits 1 and 2 are the first video's parts, 3 and 4 the second's first two parts: hit 5 is part 3.
#[tokio::test(flavor = "multi_thread")]
async fn killed_before_a_part_blob_is_in_place_keeps_every_acknowledged_part() {
    part_survives("blob-written:5", Cut::Written).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_a_part_blob_is_stored_before_its_commit_keeps_every_acknowledged_part() {
    part_survives("blob-stored:5", Cut::Stored).await;
}

// The first video's Complete commits too (hit 3): the second video's part 3 is hit 6.
#[tokio::test(flavor = "multi_thread")]
async fn killed_after_a_part_commits_before_its_answer_lists_the_part_whole() {
    part_survives("status-committed:6", Cut::Committed).await;
}

/// Kills the server at `fault` during the PutObject of an image, after a video PutObject was
/// acknowledged (hit 1); restarts it and checks: the video reads back exactly with its event, the image
/// is absent or whole (whole exactly when its commit ran) with a consistent status, it can be uploaded again
/// when absent, and the collector leaves exactly the two objects' blobs.
async fn put_object_survives(fault: &str, cut_at: Cut) {
    let crash = Crash::new().await;
    let mut server = crash.start(Some(fault));
    let video = create_video(&server, "whole.mp4").await;
    let video_bytes = random_bytes(300_000, 5);
    let answer = server.oss(call(&video, "PUT").body(video_bytes.clone())).await;
    assert_eq!(answer.status(), 200, "the video's PutObject");
    let image = create(&server, Kind::Image, "cut.png").await;
    let image_bytes = random_bytes(150_000, 3);
    let cut = server.try_oss(call(&image, "PUT").body(image_bytes.clone())).await;
    assert!(cut.is_err(), "the server died before answering the image's PutObject: {cut:?}");
    server.expect_killed(DIE_WITHIN);
    cut_at.assert_left(&crash, 1);

    let server = crash.start(None);
    assert_eq!(crash.tmp_files(), 0, "the restart removed half-written blobs");
    assert!(absent_or_whole(&server, &video, &video_bytes).await, "the acknowledged video is whole");
    crash.assert_event(&video).await;
    let whole = absent_or_whole(&server, &image, &image_bytes).await;
    assert_eq!(whole, cut_at == Cut::Committed, "the image is visible exactly when its commit ran");
    if !whole {
        // The credential still works: the client's retry goes through.
        let retried = server.oss(call(&image, "PUT").body(image_bytes.clone())).await;
        assert_eq!(retried.status(), 200, "the image's retried PutObject");
        assert!(absent_or_whole(&server, &image, &image_bytes).await);
    }
    crash.assert_event(&image).await;
    crash.assert_collected_to(2).await;
    assert_reads(&server, &video.key, &video_bytes).await;
    assert_reads(&server, &image.key, &image_bytes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_object_killed_before_its_blob_is_in_place_is_absent() {
    put_object_survives("blob-written:2", Cut::Written).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_object_killed_after_its_blob_is_stored_before_its_commit_is_absent() {
    put_object_survives("blob-stored:2", Cut::Stored).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_object_killed_after_its_commit_before_its_answer_is_whole() {
    put_object_survives("status-committed:2", Cut::Committed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_killed_after_its_commit_before_its_answer_is_completed_on_restart() {
    let crash = Crash::new().await;
    // Hits 1-3 are the first video's two parts and Complete, 4-6 the second's parts: 7 is its Complete.
    let mut server = crash.start(Some("status-committed:7"));
    let (before, before_bytes) = completed_video(&server).await;
    let media = create_video(&server, "cut.mp4").await;
    let bytes = video_bytes();
    let upload_id = initiate(&server, call(&media, "POST")).await;
    let mut etags = Vec::new();
    for (i, part) in chunks(&bytes).into_iter().enumerate() {
        etags.push(put_part(&server, call(&media, "PUT"), &upload_id, i as u32 + 1, part).await);
    }
    let cut = server.try_oss(complete_call(call(&media, "POST"), &upload_id, &etags)).await;
    assert!(cut.is_err(), "the server died before answering Complete: {cut:?}");
    server.expect_killed(DIE_WITHIN);
    assert_eq!(crash.blob_files().len(), TWO_VIDEOS, "Complete copies no byte and writes no blob");

    let server = crash.start(None);
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
    let retried = server.oss(complete_call(call(&media, "POST"), &upload_id, &etags)).await;
    assert_eq!(retried.status(), 200, "a retried Complete gets the first answer");
    let crc = retried.headers()["x-oss-hash-crc64ecma"].to_str().unwrap().to_owned();
    assert_eq!(crc, crc64::checksum(&bytes).to_string());
    let mut other = etags.clone();
    other.pop();
    let different = server.oss(complete_call(call(&media, "POST"), &upload_id, &other)).await;
    assert_eq!(different.status(), 404, "a Complete listing other parts is NoSuchUpload");
    crash.assert_event(&media).await;
    crash.assert_collected_to(TWO_VIDEOS).await;
    assert_completed(&server, &media, &bytes).await;
    assert_completed(&server, &before, &before_bytes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_posting_an_event_delivers_it_again_with_the_same_id() {
    let crash = Crash::new().await;
    // The first event is the first video's: let it through, die after the second is posted.
    let mut server = crash.start(Some("event-posted:2"));
    let (before, before_bytes) = completed_video(&server).await;
    assert_eq!(crash.events_of("VideoId", &before.id, 1).await.len(), 1);
    let media = create_video(&server, "cut.mp4").await;
    let bytes = video_bytes();
    let upload_id = initiate(&server, call(&media, "POST")).await;
    let mut etags = Vec::new();
    for (i, part) in chunks(&bytes).into_iter().enumerate() {
        etags.push(put_part(&server, call(&media, "PUT"), &upload_id, i as u32 + 1, part).await);
    }
    let done = server.oss(complete_call(call(&media, "POST"), &upload_id, &etags)).await;
    assert_eq!(done.status(), 200);
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

/// Objects a collector test writes with the long-lived key, and the garbage it makes beside them.
struct Garbage {
    /// Key → bytes that must read back.
    live: Vec<(String, Vec<u8>)>,
    /// Blob files the live objects reference.
    live_blobs: usize,
    /// Blob files nothing references any more.
    garbage_blobs: usize,
    /// The aborted upload: (key, upload id).
    aborted: (String, String),
}

/// Writes live objects and garbage: a PutObject kept, a PutObject overwritten (its first blob is garbage),
/// a two-part upload completed, a two-part upload aborted (both blobs garbage).
async fn make_garbage(api: &Api) -> Garbage {
    let at = |method: &str, name: &str| OssCall::new(method, Some(name), api_key(api));
    let kept = random_bytes(70_000, 21);
    assert_eq!(api.oss(at("PUT", "kept.bin").body(kept.clone())).await.status(), 200);
    let first = random_bytes(80_000, 22);
    assert_eq!(api.oss(at("PUT", "over.bin").body(first)).await.status(), 200);
    let joined = random_bytes(PART + 5000, 24);
    let upload_id = initiate(api, at("POST", "joined.bin")).await;
    let etags = vec![
        put_part(api, at("PUT", "joined.bin"), &upload_id, 1, &joined[..PART]).await,
        put_part(api, at("PUT", "joined.bin"), &upload_id, 2, &joined[PART..]).await,
    ];
    let done = api.oss(complete_call(at("POST", "joined.bin"), &upload_id, &etags)).await;
    assert_eq!(done.status(), 200);
    let dropped = random_bytes(PART + 6000, 25);
    let aborted = initiate(api, at("POST", "aborted.bin")).await;
    put_part(api, at("PUT", "aborted.bin"), &aborted, 1, &dropped[..PART]).await;
    put_part(api, at("PUT", "aborted.bin"), &aborted, 2, &dropped[PART..]).await;
    // The garbage is made last, in two quick steps, so the grace second starts after everything else.
    let second = random_bytes(90_000, 23);
    assert_eq!(api.oss(at("PUT", "over.bin").body(second.clone())).await.status(), 200);
    let abort = api.oss(at("DELETE", "aborted.bin").query("uploadId", &aborted)).await;
    assert_eq!(abort.status(), 204, "AbortMultipartUpload");
    Garbage {
        live: vec![("kept.bin".into(), kept), ("over.bin".into(), second), ("joined.bin".into(), joined)],
        live_blobs: 4,
        garbage_blobs: 3,
        aborted: ("aborted.bin".into(), aborted),
    }
}

/// Makes garbage, lets the collector claim it and die at `fault` with `deleted` blobs already removed,
/// restarts, and checks that the next rounds remove exactly the garbage and every live object still
/// reads back exactly.
async fn collection_survives(fault: &str, deleted: usize) {
    let crash = Crash::new().await;
    let mut server = crash.start(Some(fault));
    let made = make_garbage(&server).await;
    assert_eq!(crash.blob_files().len(), made.live_blobs + made.garbage_blobs, "every blob written");
    // The collector claims the garbage once its grace second is over, and dies.
    server.expect_killed(DIE_WITHIN);
    let files = crash.blob_files();
    assert_eq!(files.len(), made.live_blobs + made.garbage_blobs - deleted, "at the crash: {files:?}");

    let server = crash.start(None);
    crash.assert_collected_to(made.live_blobs).await;
    for (key, bytes) in &made.live {
        assert_reads(&server, key, bytes).await;
    }
    let (key, upload_id) = &made.aborted;
    let listed =
        server.oss(OssCall::new("GET", Some(key), api_key(&server)).query("uploadId", upload_id)).await;
    assert_eq!(listed.status(), 404, "the aborted upload stays gone");
    assert_eq!(get(&server, key).await.0, 404, "the aborted upload published nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_collector_claims_garbage_removes_it_after_restart() {
    collection_survives("garbage-claimed", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_collector_deletes_one_blob_removes_the_rest_after_restart() {
    collection_survives("blob-deleted", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_collector_claims_an_orphan_removes_it_after_restart() {
    let crash = Crash::new().await;
    let kept = random_bytes(60_000, 31);
    let orphan = random_bytes(50_000, 32);
    // A PutObject cut between storing its blob and committing it leaves a blob no commit references.
    let mut server = crash.start(Some("blob-stored:2"));
    let at = |method: &str, name: &str| OssCall::new(method, Some(name), api_key(&server));
    assert_eq!(server.oss(at("PUT", "kept.bin").body(kept.clone())).await.status(), 200);
    assert!(server.try_oss(at("PUT", "orphan.bin").body(orphan.clone())).await.is_err());
    server.expect_killed(DIE_WITHIN);
    assert_eq!(crash.blob_files().len(), 2, "the kept object's blob and the orphan");

    // The collector's walk tombstones the orphan once it is a second old, and dies before deleting it.
    let mut server = crash.start(Some("garbage-claimed"));
    server.expect_killed(DIE_WITHIN);
    assert_eq!(crash.blob_files().len(), 2, "claimed, not yet deleted");

    let server = crash.start(None);
    crash.assert_collected_to(1).await;
    assert_reads(&server, "kept.bin", &kept).await;
    assert_eq!(get(&server, "orphan.bin").await.0, 404, "the cut PutObject never became visible");
    let at = |method: &str, name: &str| OssCall::new(method, Some(name), api_key(&server));
    assert_eq!(server.oss(at("PUT", "orphan.bin").body(orphan.clone())).await.status(), 200, "a retry");
    assert_reads(&server, "orphan.bin", &orphan).await;
    crash.assert_collected_to(2).await;
}
