//! Garage losing nodes under a real `vodup serve` (issue 14), as users meet it: one `vodup serve` process on
//! a fresh PostgreSQL database and a private 3-node Garage cluster (replication 3, consistent mode: a write
//! needs 2 of the 3 nodes), and real `vodup upload` processes.
//!
//! - One Garage node SIGKILLed while four uploads are mid-way: every upload finishes, every video is
//!   `Normal`, every object reads back byte for byte.
//! - Two killed mid-way: every upload gives up within its short `--retry-for` with exit 6 and a message that
//!   names `ServiceUnavailable` and says to re-run to resume; no video is `Normal` and no key reads, not even
//!   in part. Once the nodes are back the same commands resume from their checkpoints and finish whole.
//! - Two killed, at the OSS port itself: PutObject and UploadPart answer 503 `ServiceUnavailable` in OSS's
//!   XML, nothing they sent becomes visible (no object, no part, no blob), and the same requests succeed
//!   once the nodes are back.
//!
//! The server's `garage_nodes.rs` shows the same at the storage layer, without the server. Garage notices
//! a dead peer only after some seconds (a write just after a kill can take 5 s), so the tests poll with
//! deadlines rather than sleep. Without PostgreSQL (`VODUP_TEST_POSTGRES_URL`) or the garage binary
//! (`VODUP_TEST_GARAGE_BIN`) they report a missing component (a failure under `VODUP_REQUIRE_ALL=1`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use vodup_proto::crc64;
use vodup_proto::oss::error::OssError;
use vodup_server::storage::{BlobStore as _, S3Settings, S3Store};
use vodup_testkit::{
    GarageCluster, OssCall, OssCredential, ServeOptions, ServeProcess, TestDatabase, random_bytes,
    write_random_file,
};

use super::support::{Outcome, create_video, file_crc, read_back, run, upload, video_status};

/// Uploads at once, of 12, 16, 20 and 24 MiB: 12 to 24 parts of 1 MiB each.
const FILES: u64 = 4;
/// How long a failing request is retried in the two-node test: long enough to see retries, far below the
/// default 60 s.
const RETRY_FOR: &str = "3";
/// A generous bound on the failure after the kill: Garage's own detection (~6 s), the server's retries of
/// its store (~1 s an attempt) and the client's `RETRY_FOR`, but far below the default 60 s budget.
const FAIL_WITHIN: Duration = Duration::from_secs(25);
/// What a 503 `ServiceUnavailable` tells the user to do once the retries ran out (the SDK's hint).
const HINT: &str = "the service is unavailable for now (HTTP 503); re-run the same command later (an upload \
                    resumes where it stopped), or give --retry-for more seconds to wait longer";
/// How long Garage and the server may take to serve again after the nodes restart.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// One `vodup serve` on its own PostgreSQL database and its own Garage cluster.
struct Deployment {
    /// Dropped first: the server stops before its database and cluster go.
    server: ServeProcess,
    garage: GarageCluster,
    /// The bucket and prefix the server writes its blobs to.
    s3: S3Settings,
    _database: TestDatabase,
    dir: tempfile::TempDir,
}

impl Deployment {
    async fn start() -> Option<Self> {
        let database = TestDatabase::create().await?;
        let garage = GarageCluster::start()?;
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Settings { prefix: "media".to_owned(), ..garage.settings() };
        let mut options = ServeOptions::new(env!("CARGO_BIN_EXE_vodup"), dir.path().join("node"));
        options.on_remote(database.url(), &s3);
        let key = options.create_key();
        let server = ServeProcess::start(&options, &key, &[]);
        Some(Self { server, garage, s3, _database: database, dir })
    }

    /// Writes the source files (file n has 12 MiB + 4 MiB × n); their paths, CRC-64s and lengths.
    fn sources(&self) -> Vec<(PathBuf, (u64, u64))> {
        (0..FILES)
            .map(|n| {
                let path = self.dir.path().join(format!("clip-{n}.mp4"));
                write_random_file(&path, (12 + 4 * n) << 20, n + 1).unwrap();
                let expected = file_crc(&path);
                (path, expected)
            })
            .collect()
    }

    /// Starts `vodup upload video PATH --json` for each source, each with its own checkpoint folder (the
    /// same on a re-run): 1 MiB parts, two at a time, 4 MB/s, so that a kill lands mid-upload; retried for
    /// `retry_for` seconds when given.
    fn start_uploads(
        &self,
        sources: &[(PathBuf, (u64, u64))],
        retry_for: Option<&str>,
    ) -> Vec<JoinHandle<Outcome>> {
        sources
            .iter()
            .enumerate()
            .map(|(n, (path, _))| {
                let client = self.dir.path().join(format!("client-{n}"));
                let mut command = upload(&self.server, &client, "video", path.to_str().unwrap());
                command.args(["--part-size", "1M", "--parallel", "2", "--limit-rate", "4M"]);
                if let Some(seconds) = retry_for {
                    command.args(["--retry-for", seconds]);
                }
                tokio::spawn(run(command))
            })
            .collect()
    }

    /// Waits until every upload has begun its multipart upload and parts are arriving, none finished.
    async fn wait_mid_way(&self, uploads: &[JoinHandle<Outcome>]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let initiated = self.server.metric("vodup_uploads_initiated_total").await;
            let parts = self.server.metric("vodup_parts_uploaded_total").await;
            // Each file has at least 12 parts: 8 stored in all cannot have finished one.
            if initiated >= FILES as f64 && parts >= 8.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the uploads did not get going: {initiated} initiated, {parts} parts; server log:\n{}",
                self.server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(uploads.iter().all(|u| !u.is_finished()), "an upload ended before the kill");
    }

    /// `/readyz`: its status and JSON body.
    async fn readiness(&self) -> (u16, Value) {
        let response = self.server.client().get(format!("{}/readyz", self.server.vod_url)).send().await;
        let response = response.expect("/readyz answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("/readyz body");
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("/readyz is not JSON ({e}): {text}")))
    }

    /// Waits until `/readyz` says the node can take uploads (the store accepts a write again).
    async fn wait_ready(&self) -> Duration {
        let started = Instant::now();
        loop {
            let (status, body) = self.readiness().await;
            if status == 200 {
                return started.elapsed();
            }
            assert!(started.elapsed() < BACK_WITHIN, "not ready {BACK_WITHIN:?} after the restart: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET of `key` with the test key: its status, and the body only when it is not 200 (an error's XML).
    async fn get(&self, key: &str) -> (u16, String) {
        let response = self.server.oss(OssCall::new("GET", Some(key), self.server.key_credential())).await;
        let status = response.status().as_u16();
        (status, if status == 200 { String::new() } else { response.text().await.unwrap_or_default() })
    }

    /// Asserts `key` has no object: 404 `NoSuchKey`, not a part of one.
    async fn assert_no_object(&self, key: &str, when: &str) {
        let (status, body) = self.get(key).await;
        assert_eq!(status, 404, "GET {key} {when}: {body}");
        assert_eq!(OssError::from_xml(&body).expect("an OSS error body").code, "NoSuchKey", "{when}");
    }

    /// The blob ids in the server's prefix of the bucket.
    async fn stored_blobs(&self) -> Vec<String> {
        let store = S3Store::new(self.s3.clone()).expect("open the bucket");
        store.list(None, 1000).await.expect("list the bucket").into_iter().map(|b| b.id).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_dead_garage_node_lets_every_upload_finish_whole() {
    let Some(deployment) = Deployment::start().await else { return };
    let sources = deployment.sources();
    let uploads = deployment.start_uploads(&sources, None);
    deployment.wait_mid_way(&uploads).await;
    let parts_before = deployment.server.metric("vodup_parts_uploaded_total").await;
    deployment.garage.kill(3);
    let killed = Instant::now();

    for (upload, (_, expected)) in uploads.into_iter().zip(&sources) {
        let outcome = upload.await.unwrap();
        assert_eq!(
            outcome.code,
            Some(0),
            "an upload failed with one Garage node dead; stderr: {}\nserver log:\n{}",
            outcome.stderr,
            deployment.server.log()
        );
        let result = outcome.result();
        let video = result["VideoId"].as_str().expect("a VideoId");
        let info = deployment.server.vod("GetVideoInfo", &[("VideoId", video)]).await;
        assert_eq!(info.body["Video"]["Status"], "Normal", "{}", info.body);
        assert_eq!(info.body["Video"]["Size"], expected.1, "{}", info.body);
        let key = result["Key"].as_str().expect("the object key");
        assert_eq!(read_back(&deployment.server, key).await, *expected, "{key} reads back whole");
    }
    eprintln!("every upload finished {:?} after node 3 was killed", killed.elapsed());
    let parts_after = deployment.server.metric("vodup_parts_uploaded_total").await;
    assert!(parts_after > parts_before, "no part was stored after the kill: it did not land mid-upload");
    let (status, body) = deployment.readiness().await;
    assert_eq!(status, 200, "ready with 2 of 3 Garage nodes: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dead_garage_nodes_fail_uploads_clearly_and_a_rerun_resumes_them() {
    let Some(deployment) = Deployment::start().await else { return };
    let sources = deployment.sources();
    let uploads = deployment.start_uploads(&sources, Some(RETRY_FOR));
    deployment.wait_mid_way(&uploads).await;
    deployment.garage.kill(2);
    deployment.garage.kill(3);
    let killed = Instant::now();

    // Every upload gives up, within its budget, with the service exit code and a message that says what
    // happened and that a re-run resumes.
    let mut attempted = Vec::new();
    for upload in uploads {
        let outcome = upload.await.unwrap();
        let failed_after = killed.elapsed();
        assert_eq!(
            outcome.code,
            Some(6),
            "stderr: {}\nlast line: {:?}",
            outcome.stderr,
            outcome.events.last()
        );
        assert!(
            failed_after < FAIL_WITHIN,
            "gave up {failed_after:?} after the kill, not within --retry-for"
        );
        let message = outcome.stderr.trim();
        assert!(message.starts_with("vodup: UploadPart part "), "{message}");
        // What failed and why (the service's code, retried), then that it is temporary and a re-run resumes.
        assert!(message.contains(": ServiceUnavailable: ") && message.contains(" attempts in "), "{message}");
        assert!(message.ends_with(&format!("; {HINT}")), "{message}");
        let error = outcome.events.last().expect("an error line");
        assert_eq!(error["Event"], "error", "{error}");
        assert_eq!(
            (error["ErrorKind"].as_str(), error["ExitCode"].as_u64()),
            (Some("service"), Some(6)),
            "{error}"
        );
        assert_eq!(error["Hint"], HINT, "{error}");
        let retried = outcome.named("retried");
        assert!(retried.iter().any(|r| r["Cause"] == "ServiceUnavailable"), "never retried: {retried:?}");
        let started = outcome.named("started");
        let key = started.first().and_then(|s| s["Key"].as_str()).expect("a started line with the key");
        let video = error["VideoId"].as_str().expect("the error line names the video").to_owned();
        eprintln!("gave up {failed_after:?} after the kill: {message}");
        attempted.push((video, key.to_owned()));
    }
    let (status, body) = deployment.readiness().await;
    assert_eq!(
        (status, body["storage"].as_str()),
        (503, Some("failing")),
        "readiness without quorum: {body}"
    );

    // Nothing half-visible: the catalogue still says uploading, and no key reads, not even in part.
    for (video, key) in &attempted {
        assert_eq!(video_status(&deployment.server, video).await, "Uploading", "{video} with 2 nodes dead");
        deployment.assert_no_object(key, "with two Garage nodes dead").await;
    }
    deployment.garage.restart(2);
    deployment.garage.restart(3);
    let ready_after = deployment.wait_ready().await;
    eprintln!("ready {ready_after:?} after the restart");
    for (video, key) in &attempted {
        assert_eq!(video_status(&deployment.server, video).await, "Uploading", "{video} after the restart");
        deployment.assert_no_object(key, "once the nodes are back").await;
    }

    // Retryable: the same commands resume the same videos from their checkpoints and finish whole.
    let rerun_at = Instant::now();
    let reruns = deployment.start_uploads(&sources, Some(RETRY_FOR));
    for ((rerun, (_, expected)), (video, key)) in reruns.into_iter().zip(&sources).zip(&attempted) {
        let outcome = rerun.await.unwrap();
        assert_eq!(outcome.code, Some(0), "the re-run failed: {}", outcome.stderr);
        let result = outcome.result();
        assert_eq!(result["VideoId"], video.as_str(), "the re-run continued another video");
        assert!(result["ResumedParts"].as_u64().is_some_and(|n| n > 0), "nothing resumed: {result}");
        assert_eq!(video_status(&deployment.server, video).await, "Normal");
        assert_eq!(read_back(&deployment.server, key).await, *expected, "{key} reads back whole");
    }
    eprintln!("the re-runs finished in {:?}", rerun_at.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dead_garage_nodes_answer_writes_503_service_unavailable_and_store_nothing() {
    let Some(deployment) = Deployment::start().await else { return };
    let api = &deployment.server.api;
    let single = create_video(api, "single.mp4").await;
    let multi = create_video(api, "multi.mp4").await;
    let call = |method: &str, key: &str, credential: &OssCredential| {
        OssCall::new(method, Some(key), credential.clone())
    };
    let initiated = api.oss(call("POST", &multi.key, &multi.credential).query("uploads", "")).await;
    assert_eq!(initiated.status(), 200, "InitiateMultipartUpload");
    let text = initiated.text().await.unwrap();
    let start = text.find("<UploadId>").expect("an UploadId") + "<UploadId>".len();
    let upload_id = text[start..start + text[start..].find('<').unwrap()].to_owned();
    let upload_part = |number: u32, body: &[u8]| {
        call("PUT", &multi.key, &multi.credential)
            .query("partNumber", &number.to_string())
            .query("uploadId", &upload_id)
            .body(body.to_vec())
    };
    let first = random_bytes(200 << 10, 1);
    let response = api.oss(upload_part(1, &first)).await;
    assert_eq!(response.status(), 200, "UploadPart 1 with every node up");
    let first_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let blobs_before = deployment.stored_blobs().await;
    assert_eq!(blobs_before.len(), 1, "part 1's blob: {blobs_before:?}");

    deployment.garage.kill(2);
    deployment.garage.kill(3);
    let body = random_bytes(300 << 10, 2);
    let second = random_bytes(150 << 10, 3);
    let started = Instant::now();
    let put = api.oss(call("PUT", &single.key, &single.credential).body(body.clone())).await;
    assert_unavailable(put, "PutObject").await;
    let part = api.oss(upload_part(2, &second)).await;
    assert_unavailable(part, "UploadPart").await;
    eprintln!("PutObject and UploadPart answered 503 within {:?} of the kill", started.elapsed());

    // Nothing visible while the nodes are dead (the catalogue answers without the store) or once they are
    // back: no object, no second part, no blob but part 1's.
    for (video, key) in [(&single.id, &single.key), (&multi.id, &multi.key)] {
        assert_eq!(video_status(api, video).await, "Uploading", "{video} with two nodes dead");
        deployment.assert_no_object(key, "after a refused write").await;
    }
    deployment.garage.restart(2);
    deployment.garage.restart(3);
    deployment.wait_ready().await;
    deployment.assert_no_object(&single.key, "once the nodes are back").await;
    let parts = api.oss(call("GET", &multi.key, &multi.credential).query("uploadId", &upload_id)).await;
    let listed = parts.text().await.unwrap();
    assert_eq!(listed.matches("<PartNumber>").count(), 1, "ListParts after a refused part: {listed}");
    assert_eq!(deployment.stored_blobs().await, blobs_before, "a refused write left a blob");

    // Retryable: the same requests succeed now, and read back whole.
    let put = api.oss(call("PUT", &single.key, &single.credential).body(body.clone())).await;
    assert_eq!(put.status(), 200, "PutObject again: {}", put.text().await.unwrap_or_default());
    let response = api.oss(upload_part(2, &second)).await;
    assert_eq!(response.status(), 200, "UploadPart 2 again");
    let second_etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{first_etag}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{second_etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let completed = api
        .oss(call("POST", &multi.key, &multi.credential).query("uploadId", &upload_id).body(complete))
        .await;
    assert_eq!(completed.status(), 200, "Complete: {}", completed.text().await.unwrap_or_default());
    assert_eq!(read_back(api, &single.key).await, (crc64::checksum(&body), body.len() as u64));
    let whole = [first, second].concat();
    assert_eq!(read_back(api, &multi.key).await, (crc64::checksum(&whole), whole.len() as u64));
    for video in [&single.id, &multi.id] {
        assert_eq!(video_status(api, video).await, "Normal");
    }
}

/// Asserts a 503 `ServiceUnavailable` in OSS's XML, with the request id OSS clients quote.
async fn assert_unavailable(response: reqwest::Response, what: &str) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let request_id = response.headers().get("x-oss-request-id").is_some();
    let body = response.text().await.unwrap();
    assert_eq!(status, 503, "{what} with two Garage nodes dead: {body}");
    assert_eq!(content_type.as_deref(), Some("application/xml"), "{what}");
    let error = OssError::from_xml(&body).unwrap_or_else(|e| panic!("{what}: not OSS XML ({e}): {body}"));
    assert_eq!(error.code, "ServiceUnavailable", "{what}: {body}");
    assert!(request_id && !error.request_id.is_empty(), "{what} has no request id: {body}");
}
