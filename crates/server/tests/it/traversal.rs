//! Object keys that try to climb out of the data folder (vod-api.md §12.1, oss-api.md §7
//! `InvalidObjectName`): `..` segments sent raw, percent-encoded as `%2e%2e`, hidden behind `%2F`, with
//! backslashes, and keys that start with `/` (absolute paths). Each is sent byte for byte over raw
//! HTTP/1.1, because reqwest would normalize the dot segments away, and signed over the decoded key the
//! server sees, so the only thing wrong with the request is its key.
//!
//! Each must be refused with 400 `InvalidObjectName` even for a long-lived key, and nothing may be
//! written anywhere: not as an object, not in a canary folder next to the data folder, not in the folder
//! that holds the server's temporary directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vodup_server::meta::MediaStatus;
use vodup_server::proto::encoding::percent_encode_path;
use vodup_testkit::{OssCredential, TestServer};

use crate::support::{
    assert_no_object, create_video, media_status, nonce, open_uploads, raw_http, v1_headers,
};

/// Every path under `root`, relative to it, except the subtree `skip`.
fn listing(root: &Path, skip: Option<&Path>) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read folder") {
            let path = entry.expect("entry").path();
            if Some(path.as_path()) == skip {
                continue;
            }
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    found
}

/// Entries directly in `folder` whose name contains `marker`.
fn named(folder: &Path, marker: &str) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .expect("read folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().contains(marker)))
        .collect()
}

/// The folders around the data folder, as they were before the requests.
struct Surroundings {
    temp_dir: PathBuf,
    data: PathBuf,
    canary: PathBuf,
    marker: String,
    outside_data: BTreeSet<PathBuf>,
}

impl Surroundings {
    /// Creates `canary/` with a file in it next to `data/`, and records everything but `data/`.
    fn record(server: &TestServer) -> Self {
        let temp_dir = server.dir.path().to_path_buf();
        let data = temp_dir.join("data");
        assert!(data.is_dir(), "the data folder is {}", data.display());
        let canary = temp_dir.join("canary");
        std::fs::create_dir(&canary).expect("canary folder");
        std::fs::write(canary.join("sentinel.txt"), b"untouched").expect("sentinel");
        let marker = format!("vodup-escape-{}", nonce());
        let outside_data = listing(&temp_dir, Some(&data));
        let this = Self { temp_dir, data, canary, marker, outside_data };
        this.assert_untouched();
        this
    }

    /// Nothing was added next to the data folder, in the canary, in the temp dir's parent, or (by
    /// name) inside the data folder.
    fn assert_untouched(&self) {
        assert_eq!(listing(&self.temp_dir, Some(&self.data)), self.outside_data, "next to the data folder");
        assert_eq!(
            listing(&self.canary, None),
            BTreeSet::from([PathBuf::from("sentinel.txt")]),
            "in the canary"
        );
        assert_eq!(std::fs::read(self.canary.join("sentinel.txt")).unwrap(), b"untouched");
        let parent = self.temp_dir.parent().expect("the temp dir has a parent");
        assert_eq!(named(parent, &self.marker), Vec::<PathBuf>::new(), "in {}", parent.display());
        let inside: Vec<PathBuf> = listing(&self.data, None)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(&self.marker))
            .collect();
        assert_eq!(inside, Vec::<PathBuf>::new(), "no file inside data/ is named after a key");
    }
}

/// (request target after `/{bucket}/`, the decoded key the server sees) for every way of climbing
/// `depth` folders to a file named `name`.
fn climbs(depth: usize, name: &str) -> Vec<(String, String)> {
    let up = |separator: &str| vec![".."; depth].join(separator);
    vec![
        (format!("{}/{name}", up("/")), format!("{}/{name}", up("/"))),
        (format!("a/{}/{name}", vec!["%2e%2e"; depth].join("/")), format!("a/{}/{name}", up("/"))),
        (format!("a/{}/{name}", vec!["%2E%2E"; depth].join("/")), format!("a/{}/{name}", up("/"))),
        (format!("a%2F{}%2F{name}", up("%2F")), format!("a/{}/{name}", up("/"))),
        (format!("{}\\{name}", up("\\")), format!("{}\\{name}", up("\\"))),
        (format!("{}%5C{name}", up("%5C")), format!("{}\\{name}", up("\\"))),
        (format!("a/{}/{name}", up("/")), format!("a/{}/{name}", up("/"))),
    ]
}

/// Sends PutObject and InitiateMultipartUpload for `key` at `/{bucket}/{target}`, signed with
/// `credential`, and asserts both are refused as `InvalidObjectName` and stored nothing.
async fn assert_invalid_name(server: &TestServer, credential: &OssCredential, target: &str, key: &str) {
    let path = format!("/{}/{target}", server.bucket());
    let headers = v1_headers(server, credential, "PUT", key, &[], &[]);
    let response = raw_http(&server.oss_url, "PUT", &path, &headers, b"escaped").await;
    let what = format!("PUT {path} (key {key:?})");
    assert_eq!(response.status, 400, "{what}: {:?}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.oss_error().code, "InvalidObjectName", "{what}");

    let query = [("uploads".to_owned(), String::new())];
    let headers = v1_headers(server, credential, "POST", key, &query, &[]);
    let response = raw_http(&server.oss_url, "POST", &format!("{path}?uploads"), &headers, b"").await;
    let what = format!("POST {path}?uploads (key {key:?})");
    assert_eq!(response.status, 400, "{what}: {:?}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.oss_error().code, "InvalidObjectName", "{what}");

    assert_no_object(&server.state, key).await;
}

#[tokio::test]
async fn keys_that_climb_out_of_the_data_folder_are_invalid_object_names() {
    let server = TestServer::start().await;
    let around = Surroundings::record(&server);
    let ak = server.key_credential();

    // The same machinery with a harmless key goes through, so the refusals below are about the names.
    let harmless = format!("a..b/.../{}-ok", around.marker);
    let headers = v1_headers(&server, &ak, "PUT", &harmless, &[], &[]);
    let path = format!("/{}/{}", server.bucket(), percent_encode_path(&harmless));
    assert_eq!(raw_http(&server.oss_url, "PUT", &path, &headers, b"fine").await.status, 200, "{harmless}");

    for depth in 1..=5 {
        for (target, key) in climbs(depth, &format!("{}-{depth}", around.marker)) {
            assert_invalid_name(&server, &ak, &target, &key).await;
        }
    }

    // A leading `/` (or `\`): absolute paths, one aimed straight at the canary.
    let into_canary = around.canary.join(&around.marker).display().to_string();
    assert!(into_canary.starts_with('/'));
    let absolute = [
        (format!("/{}-abs", around.marker), format!("/{}-abs", around.marker)),
        (percent_encode_path(&into_canary), into_canary.clone()),
        (format!("%2F{}-abs", around.marker), format!("/{}-abs", around.marker)),
        (format!("\\{}-abs", around.marker), format!("\\{}-abs", around.marker)),
        (format!("%5C{}-abs", around.marker), format!("\\{}-abs", around.marker)),
    ];
    for (target, key) in absolute {
        assert_invalid_name(&server, &ak, &target, &key).await;
    }

    around.assert_untouched();
    assert_eq!(open_uploads(&server.state).await, 0, "no upload initiated");
}

#[tokio::test]
async fn playlist_credential_cannot_climb_out_of_its_prefix() {
    let server = TestServer::start().await;
    let around = Surroundings::record(&server);
    let video = create_video(&server, "list.m3u8").await;
    let prefix = video.address.object_prefix.clone().expect("ObjectPrefix");
    let sts = video.sts();

    // Each key starts with the credential's prefix, so only the `..` rule stands between it and
    // `sv/escaped/…`, outside the scope.
    let name = format!("{}.ts", around.marker);
    let attempts = [
        (format!("{prefix}../escaped/{name}"), format!("{prefix}../escaped/{name}")),
        (format!("{prefix}%2e%2e/escaped/{name}"), format!("{prefix}../escaped/{name}")),
        (format!("{prefix}..%2Fescaped%2F{name}"), format!("{prefix}../escaped/{name}")),
        (format!("{prefix}..\\escaped\\{name}"), format!("{prefix}..\\escaped\\{name}")),
    ];
    for (target, key) in attempts {
        assert!(key.starts_with(&prefix));
        assert_invalid_name(&server, &sts, &target, &key).await;
    }

    assert_no_object(&server.state, &format!("sv/escaped/{name}")).await;
    assert_eq!(media_status(&server.state, &video.id).await, MediaStatus::Uploading);
    around.assert_untouched();
}
