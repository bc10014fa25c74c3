//! Upgrades: a data folder written by an older `vodup serve` (the `layout-v1` fixture in
//! `crates/server/tests/fixtures/`, made by the binary of the first storage layout) must be served by
//! this build with nothing lost. The binary under test starts on a copy of the folder, so whatever
//! migration it runs at startup runs here, and must then serve every object with its bytes, digests and
//! headers, keep deleted objects deleted, report each media's status and size, and let every upload
//! left open before the upgrade be listed, continued and completed. A second start on the same folder
//! checks it all again: a migration must be idempotent.
//!
//! The fixture's bytes are not stored twice: each object's bytes are regenerated from the seeds in
//! `expected.json` (see `stream`), which is also what `make_layout_v1.py` uploaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use md5::{Digest as _, Md5};
use serde::Deserialize;
use sha2::Sha256;
use vodup_proto::crc64;
use vodup_proto::oss::xml::{CompleteMultipartUpload, CompletePart, to_xml};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_testkit::{Api, OssCall, OssCredential, ServeOptions, ServeProcess};

/// What the fixture's `expected.json` says its data folder holds.
#[derive(Debug, Deserialize)]
struct Expected {
    access_key: AccessKey,
    bucket: String,
    objects: Vec<Object>,
    deleted: Vec<Deleted>,
    open_uploads: Vec<OpenUpload>,
    media: Vec<Media>,
}

#[derive(Debug, Deserialize)]
struct AccessKey {
    id: String,
    secret: String,
}

/// One segment of an object's bytes: `stream(seed, size)`.
#[derive(Debug, Clone, Deserialize)]
struct Segment {
    seed: String,
    size: usize,
}

#[derive(Debug, Clone, Deserialize)]
struct Object {
    name: String,
    key: String,
    size: u64,
    md5: String,
    crc64: String,
    etag: String,
    content_type: Option<String>,
    meta: BTreeMap<String, String>,
    recipe: Vec<Segment>,
}

#[derive(Debug, Deserialize)]
struct Deleted {
    key: String,
}

#[derive(Debug, Deserialize)]
struct OpenUpload {
    name: String,
    upload_id: String,
    key: String,
    media_id: Option<String>,
    content_type: Option<String>,
    meta: BTreeMap<String, String>,
    parts: Vec<Part>,
    /// The part to upload after the upgrade before completing, if any.
    finish: Option<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    number: u32,
    size: u64,
    /// `None` for a part the test uploads itself.
    etag: Option<String>,
    recipe: Vec<Segment>,
}

#[derive(Debug, Clone, Deserialize)]
struct Media {
    id: String,
    kind: String,
    status: String,
    size: Option<u64>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/fixtures/layout-v1")
}

fn load_expected() -> Expected {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).expect("read expected.json");
    serde_json::from_str(&text).expect("parse expected.json")
}

/// SHA-256(seed || counter as 8-byte big-endian) for counter 0, 1, 2…, concatenated and cut to `size`:
/// the rule `make_layout_v1.py` used for every byte it uploaded.
fn stream(seed: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 32);
    let mut counter = 0u64;
    while out.len() < size {
        let mut hash = Sha256::new();
        hash.update(seed.as_bytes());
        hash.update(counter.to_be_bytes());
        out.extend_from_slice(&hash.finalize());
        counter += 1;
    }
    out.truncate(size);
    out
}

fn recipe_bytes(recipe: &[Segment]) -> Vec<u8> {
    recipe.iter().flat_map(|s| stream(&s.seed, s.size)).collect()
}

/// Copies the fixture's data folder as a checkout has it (git keeps neither modes nor empty folders) to
/// `to`, with the modes a data folder gets from the server itself: folders 0700, files 0600.
fn copy_data_folder(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_data_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Stops the server as an operator does before an upgrade (SIGTERM), and checks it exits cleanly.
fn stop(mut server: ServeProcess) {
    let status = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(status.success(), "kill -TERM");
    let exit = server.wait_for_exit(Duration::from_secs(20));
    assert!(exit.success(), "vodup serve exited {exit} after SIGTERM; log:\n{}", server.log());
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The `x-oss-meta-*` headers of a response, names lower-case without the prefix.
fn user_meta(response: &reqwest::Response) -> BTreeMap<String, String> {
    response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-oss-meta-")?;
            Some((name.to_owned(), value.to_str().unwrap().to_owned()))
        })
        .collect()
}

/// Every `<name>…</name>` value in an XML body.
fn xml_values(text: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    text.split(&open).skip(1).map(|rest| rest[..rest.find(&close).unwrap()].replace("&quot;", "\"")).collect()
}

/// The object reads back exactly as recorded: bytes, length, ETag, CRC-64, Content-Type and user meta,
/// through both HEAD and GET.
async fn check_object(api: &Api, object: &Object) {
    let name = &object.name;
    let bytes = recipe_bytes(&object.recipe);
    assert_eq!(hex::encode(Md5::digest(&bytes)), object.md5, "{name}: the recipe regenerates the bytes");
    assert_eq!(crc64::checksum(&bytes).to_string(), object.crc64, "{name}: the recorded CRC-64");
    for method in ["HEAD", "GET"] {
        let response = api.oss(OssCall::new(method, Some(&object.key), api.key_credential())).await;
        assert_eq!(response.status(), 200, "{method} {name} ({})", object.key);
        assert_eq!(header(&response, "etag"), Some(object.etag.as_str()), "{method} {name}: ETag");
        assert_eq!(
            header(&response, "x-oss-hash-crc64ecma"),
            Some(object.crc64.as_str()),
            "{method} {name}: CRC-64"
        );
        if let Some(content_type) = &object.content_type {
            assert_eq!(header(&response, "content-type"), Some(content_type.as_str()), "{method} {name}");
        }
        assert_eq!(user_meta(&response), object.meta, "{method} {name}: x-oss-meta-*");
        let length = header(&response, "content-length").map(|v| v.parse::<u64>().unwrap());
        assert_eq!(length, Some(object.size), "{method} {name}: Content-Length");
        if method == "GET" {
            let body = response.bytes().await.unwrap();
            assert!(
                body == bytes,
                "GET {name}: {} bytes read, the {} expected differ",
                body.len(),
                bytes.len()
            );
        }
    }
}

/// Every object whole, every deleted key absent, every media item as recorded.
async fn check_all(api: &Api, objects: &[Object], deleted: &[Deleted], media: &[Media]) {
    for object in objects {
        check_object(api, object).await;
    }
    for gone in deleted {
        check_deleted(api, gone).await;
    }
    for item in media {
        check_media(api, item).await;
    }
}

async fn check_deleted(api: &Api, deleted: &Deleted) {
    for method in ["HEAD", "GET"] {
        let response = api.oss(OssCall::new(method, Some(&deleted.key), api.key_credential())).await;
        assert_eq!(response.status(), 404, "{method} of the deleted {}", deleted.key);
    }
}

/// GetVideoInfo / GetImageInfo report the recorded status and size.
async fn check_media(api: &Api, media: &Media) {
    let (status, size) = if media.kind == "video" {
        let reply = api.vod("GetVideoInfo", &[("VideoId", &media.id)]).await;
        assert_eq!(reply.status, 200, "GetVideoInfo {}: {}", media.id, reply.body);
        (reply.body["Video"]["Status"].clone(), reply.body["Video"]["Size"].as_u64())
    } else {
        let reply = api.vod("GetImageInfo", &[("ImageId", &media.id)]).await;
        assert_eq!(reply.status, 200, "GetImageInfo {}: {}", media.id, reply.body);
        let info = &reply.body["ImageInfo"];
        (info["Status"].clone(), info["Mezzanine"]["FileSize"].as_str().map(|s| s.parse().unwrap()))
    };
    assert_eq!(status, media.status.as_str(), "{} {}: status", media.kind, media.id);
    assert_eq!(size, media.size, "{} {}: size", media.kind, media.id);
}

/// The upload ids ListMultipartUploads shows for the whole bucket.
async fn open_upload_ids(api: &Api) -> Vec<String> {
    let response = api.oss(OssCall::new("GET", None, api.key_credential()).query("uploads", "")).await;
    assert_eq!(response.status(), 200, "ListMultipartUploads");
    let mut ids = xml_values(&response.text().await.unwrap(), "UploadId");
    ids.sort();
    ids
}

/// The credential an upload client holds after the upgrade: for a video, a fresh one from
/// RefreshUploadVideo (the fixture's STS credential has long expired); otherwise the AccessKey.
async fn credential_for(api: &Api, upload: &OpenUpload) -> OssCredential {
    let Some(video_id) = &upload.media_id else { return api.key_credential() };
    let reply = api.vod("RefreshUploadVideo", &[("VideoId", video_id)]).await;
    assert_eq!(reply.status, 200, "RefreshUploadVideo {video_id}: {}", reply.body);
    let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().unwrap()).unwrap();
    if let Some(address) = reply.body["UploadAddress"].as_str() {
        assert_eq!(UploadAddress::decode(address).unwrap().file_name, upload.key, "the same key");
    }
    OssCredential::V1 {
        id: auth.access_key_id.clone(),
        secret: auth.access_key_secret.clone(),
        token: Some(auth.security_token.expose().to_owned()),
    }
}

/// Continues an upload opened before the upgrade: ListParts shows its parts with their ETags, the
/// `finish` part (if any) goes up, Complete succeeds. Returns the object it became, as `check_object`
/// will expect it from now on.
async fn finish_upload(api: &Api, upload: &OpenUpload) -> Object {
    let name = &upload.name;
    let credential = credential_for(api, upload).await;
    let call = |method: &str| OssCall::new(method, Some(&upload.key), credential.clone());

    let response = api.oss(call("GET").query("uploadId", &upload.upload_id)).await;
    assert_eq!(response.status(), 200, "ListParts of {name}");
    let text = response.text().await.unwrap();
    let listed: Vec<(u32, String, u64)> = xml_values(&text, "PartNumber")
        .into_iter()
        .zip(xml_values(&text, "ETag"))
        .zip(xml_values(&text, "Size"))
        .map(|((number, etag), size)| (number.parse().unwrap(), etag, size.parse().unwrap()))
        .collect();
    let recorded: Vec<(u32, String, u64)> =
        upload.parts.iter().map(|p| (p.number, p.etag.clone().unwrap(), p.size)).collect();
    assert_eq!(listed, recorded, "ListParts of {name} shows the parts uploaded before the upgrade");

    let mut parts: Vec<CompletePart> =
        listed.into_iter().map(|(part_number, etag, _)| CompletePart { part_number, etag }).collect();
    let mut recipe: Vec<Segment> = upload.parts.iter().flat_map(|p| p.recipe.clone()).collect();
    if let Some(finish) = &upload.finish {
        let bytes = recipe_bytes(&finish.recipe);
        let number = finish.number.to_string();
        let response = api
            .oss(call("PUT").query("partNumber", &number).query("uploadId", &upload.upload_id).body(bytes))
            .await;
        assert_eq!(response.status(), 200, "UploadPart {number} of {name}");
        let etag = header(&response, "etag").unwrap().to_owned();
        parts.push(CompletePart { part_number: finish.number, etag });
        recipe.extend(finish.recipe.iter().cloned());
    }
    let complete =
        call("POST").query("uploadId", &upload.upload_id).body(to_xml(&CompleteMultipartUpload { parts }));
    let response = api.oss(complete).await;
    let status = response.status();
    assert_eq!(status, 200, "Complete {name}: {}", response.text().await.unwrap());

    let bytes = recipe_bytes(&recipe);
    let head = api.oss(OssCall::new("HEAD", Some(&upload.key), api.key_credential())).await;
    assert_eq!(head.status(), 200, "HEAD {name} after Complete");
    let object = Object {
        name: name.clone(),
        key: upload.key.clone(),
        size: bytes.len() as u64,
        md5: hex::encode(Md5::digest(&bytes)),
        crc64: crc64::checksum(&bytes).to_string(),
        etag: header(&head, "etag").unwrap().to_owned(),
        content_type: upload.content_type.clone(),
        meta: upload.meta.clone(),
        recipe,
    };
    check_object(api, &object).await;
    object
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layout_v1_data_folder_is_served_whole_after_the_upgrade_and_a_restart() {
    let expected = load_expected();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_data_folder(&fixture_dir().join("data"), &data);
    let options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), &data);
    let key = (expected.access_key.id.clone(), vodup_proto::Secret::new(expected.access_key.secret.clone()));

    // First start: the upgrade.
    let server = ServeProcess::start(&options, &key, &[]);
    assert_eq!(server.bucket(), expected.bucket, "the bucket name is kept");
    let mut objects = expected.objects.clone();
    let mut media = expected.media.clone();
    check_all(&server, &objects, &expected.deleted, &media).await;
    let mut fixture_ids: Vec<String> = expected.open_uploads.iter().map(|u| u.upload_id.clone()).collect();
    fixture_ids.sort();
    assert_eq!(open_upload_ids(&server).await, fixture_ids, "ListMultipartUploads after the upgrade");
    for upload in &expected.open_uploads {
        let object = finish_upload(&server, upload).await;
        if let Some(id) = &upload.media_id {
            let item =
                media.iter_mut().find(|m| &m.id == id).expect("the upload's media is in expected.json");
            item.status = "Normal".to_owned();
            item.size = Some(object.size);
            check_media(&server, item).await;
        }
        objects.push(object);
    }
    assert_eq!(open_upload_ids(&server).await, Vec::<String>::new(), "no upload left open");
    // A write after the upgrade, to read back after the restart.
    let fresh = recipe_bytes(&[Segment { seed: "upgrade/after".into(), size: 3000 }]);
    let put = OssCall::new("PUT", Some("after/upgrade.bin"), server.key_credential()).body(fresh.clone());
    let response = server.oss(put).await;
    assert_eq!(response.status(), 200, "PutObject after the upgrade");
    objects.push(Object {
        name: "after-upgrade".into(),
        key: "after/upgrade.bin".into(),
        size: fresh.len() as u64,
        md5: hex::encode(Md5::digest(&fresh)),
        crc64: crc64::checksum(&fresh).to_string(),
        etag: header(&response, "etag").unwrap().to_owned(),
        content_type: None,
        meta: BTreeMap::new(),
        recipe: vec![Segment { seed: "upgrade/after".into(), size: 3000 }],
    });
    stop(server);
    // The first start migrated the store: the layout before catalogue commits is gone, every byte now
    // lives in a blob the catalogue names.
    let store = data.join("store");
    for legacy in ["objects", "uploads", "intents", "trash"] {
        assert!(!store.join(legacy).exists(), "store/{legacy} is gone after the migration");
    }
    let old_folders: Vec<_> = std::fs::read_dir(store.join("blobs"))
        .expect("read store/blobs")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.len() != 2)
        .collect();
    assert!(old_folders.is_empty(), "old blob folders left: {old_folders:?}");

    // Second start on the same folder: nothing migrates twice, nothing is lost.
    let server = ServeProcess::start(&options, &key, &[]);
    assert_eq!(server.bucket(), expected.bucket);
    check_all(&server, &objects, &expected.deleted, &media).await;
    assert_eq!(open_upload_ids(&server).await, Vec::<String>::new());
    stop(server);
}
