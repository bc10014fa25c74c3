//! Writers that really race against a real server on loopback (issue 12): many rounds each, fresh videos
//! and keys every round. A writer is paused mid-body with a chunked request fed from a channel, so the
//! order of the steps is forced where it matters (a loser whose guards were checked before the winner
//! committed) and left to the scheduler where it does not (two requests sent at once).
//!
//! What every round holds: a refused or losing writer never changes what GET returns, and whenever
//! GetVideoInfo says `Normal`, GET returns `Size` bytes whose digests are the ones the server reports
//! ([`visible`]). Some rounds also restart the server, to show the outcome is what was written to disk.
//!
//! Every race runs on both deployments (issue 14): `NAME::sqlite` on SQLite and local disk, and
//! `NAME::postgres_garage` on a fresh PostgreSQL database (`VODUP_TEST_POSTGRES_URL`) and a fresh prefix of
//! the Garage cluster (`VODUP_TEST_GARAGE_*`); without them it skips, or fails under `VODUP_REQUIRE_ALL=1`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vodup_server::proto::encoding::percent_encode_path;
use vodup_server::proto::mac::md5;
use vodup_server::proto::oss::error::OssError;
use vodup_server::proto::upload_auth::UploadAuth;
use vodup_testkit::{Backend, OssCall, OssCredential, TestServer};

use crate::support::{
    MIN_PART, Video, bytes, complete_body, complete_call, crc, create_video, initiate, new_key,
    parse_oss_error, put, upload_part, v1_headers,
};

/// Makes a test of each race on each deployment: `RACE::sqlite` and `RACE::postgres_garage`.
macro_rules! on_both_backends {
    ($($race:ident),* $(,)?) => {$(
        mod $race {
            use vodup_testkit::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$race(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres_garage() {
                super::$race(Backend::PostgresGarage).await;
            }
        }
    )*};
}

on_both_backends!(
    refused_writer_never_changes_what_get_returns,
    two_puts_at_once_one_wins_whole,
    two_uploads_of_one_key_completed_at_once_one_wins,
    complete_racing_abort_has_one_winner,
    identical_completes_get_the_same_answer,
    part_replaced_during_complete_is_refused_or_not_published,
    key_revoked_mid_body_does_not_publish,
    complete_whose_client_disconnects_still_commits,
    refresh_overwrites_a_normal_video_in_one_step,
    revoke_racing_complete_is_ordered_by_the_commit,
);

/// A response read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body").to_vec();
        Self { status, headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header"))
    }

    fn error(&self) -> OssError {
        parse_oss_error(std::str::from_utf8(&self.body).expect("UTF-8 body"), self.header("x-oss-err"))
    }

    /// Asserts a 200.
    fn assert_ok(&self, what: &str) {
        if self.status != 200 {
            panic!("{what}: expected 200, got {} {:?}", self.status, self.error());
        }
    }

    /// Asserts a refusal with `status` and `code`.
    fn assert_refused(&self, status: u16, code: &str, what: &str) {
        assert!(
            self.status >= 400,
            "{what}: expected {status} {code}, but it was accepted ({})",
            self.status
        );
        let error = self.error();
        assert_eq!((self.status, error.code.as_str()), (status, code), "{what}: {error:?}");
    }
}

async fn send(server: &TestServer, call: OssCall) -> Answer {
    Answer::read(server.oss(call).await).await
}

/// A request whose chunked body is sent piece by piece: it stays in flight, past the server's checks
/// made before the body, until [`Paused::finish`].
struct Paused {
    chunks: mpsc::Sender<Bytes>,
    answer: JoinHandle<Answer>,
}

impl Paused {
    /// Sends the head of `call` and `first`, the start of its body.
    async fn start(server: &TestServer, call: OssCall, first: &[u8]) -> Self {
        let (chunks, rx) = mpsc::channel::<Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
        });
        let request = server.oss_request(&server.oss_url, call).body(reqwest::Body::wrap_stream(stream));
        let answer = tokio::spawn(async move {
            let response = tokio::time::timeout(Duration::from_secs(20), request.send())
                .await
                .expect("answered within 20 s")
                .expect("a response");
            Answer::read(response).await
        });
        chunks.send(Bytes::copy_from_slice(first)).await.expect("the request is sending its body");
        Self { chunks, answer }
    }

    /// Sends `rest`, ends the body and reads the answer.
    async fn finish(self, rest: &[u8]) -> Answer {
        // A server that answered early has stopped reading: then the answer is what counts.
        let _ = self.chunks.send(Bytes::copy_from_slice(rest)).await;
        drop(self.chunks);
        self.answer.await.expect("request task")
    }
}

/// Waits until the server is writing a blob (its `vodup_blob_writes_in_flight` gauge, on any storage): the
/// paused request is past every check made before its body.
async fn wait_writing(server: &TestServer) {
    let started = Instant::now();
    while server.state.metrics.blob_writes_in_flight.load(Ordering::Relaxed) == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "no blob being written after 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// GetVideoInfo's Status and Size.
async fn video_info(server: &TestServer, id: &str) -> (String, Option<u64>) {
    let reply = server.vod("GetVideoInfo", &[("VideoId", id)]).await;
    assert_eq!(reply.status, 200, "GetVideoInfo {id}: {}", reply.body);
    let video = &reply.body["Video"];
    let status = video["Status"].as_str().unwrap_or_else(|| panic!("Status in {}", reply.body)).to_owned();
    (status, video["Size"].as_u64())
}

/// GetObject with the test key: the answer, or `None` for 404 `NoSuchKey`.
async fn get(server: &TestServer, key: &str) -> Option<Answer> {
    let answer = send(server, OssCall::new("GET", Some(key), server.key_credential())).await;
    if answer.status == 404 {
        answer.assert_refused(404, "NoSuchKey", "GET");
        return None;
    }
    assert_eq!(answer.status, 200, "GET {key}: {:?}", answer.error());
    Some(answer)
}

/// What a reader sees of a video: its status and the bytes GET returns. When the catalogue says `Normal`
/// the object must be readable, `Size` bytes long, with the CRC-64 (and for a PutObject, the MD5 ETag)
/// the server reports for it.
async fn visible(server: &TestServer, video: &Video) -> (String, Option<Vec<u8>>) {
    let (status, size) = video_info(server, &video.id).await;
    let object = get(server, video.key()).await;
    if status == "Normal" {
        let object = object.as_ref().unwrap_or_else(|| panic!("video {} is Normal but GET is 404", video.id));
        assert_eq!(Some(object.body.len() as u64), size, "GET returns Size bytes");
        assert_eq!(object.header("x-oss-hash-crc64ecma"), Some(crc(&object.body).to_string().as_str()));
        if object.header("x-oss-object-type") == Some("Normal") {
            let etag = format!("\"{}\"", hex(&md5(&object.body)));
            let reported = object.header("etag").expect("ETag");
            assert!(etag.eq_ignore_ascii_case(reported), "ETag {reported} is not the MD5 {etag}");
        }
    }
    (status, object.map(|o| o.body))
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02X}")).collect()
}

/// Asserts the video is `Normal` with exactly `expected` readable.
async fn assert_normal_with(server: &TestServer, video: &Video, expected: &[u8], what: &str) {
    let (status, object) = visible(server, video).await;
    assert_eq!(status, "Normal", "{what}");
    assert!(object.as_deref() == Some(expected), "{what}: GET does not return the expected bytes");
}

/// Asserts the video is still `Uploading` and nothing is readable at its key.
async fn assert_nothing(server: &TestServer, video: &Video, what: &str) {
    let (status, object) = visible(server, video).await;
    assert_eq!(status, "Uploading", "{what}");
    assert!(object.is_none(), "{what}: GET returns an object");
}

/// A delay from 0 to 3.5 ms that steps by 0.5 ms from round to round, to shift which side of a race
/// comes first.
fn sweep(round: u8) -> Duration {
    Duration::from_micros(u64::from(round % 8) * 500)
}

fn abort_call(video: &Video, upload_id: &str) -> OssCall {
    OssCall::new("DELETE", Some(video.key()), video.sts()).query("uploadId", upload_id)
}

/// 30 rounds. Writer B, paused mid-body after its checks, loses to writer A with the same credential: B is
/// refused and GET still returns A's 500 bytes (also after a restart, in the first round).
async fn refused_writer_never_changes_what_get_returns(backend: Backend) {
    let Some(mut server) = TestServer::start_on(backend).await else { return };
    for round in 0..30u8 {
        let video = create_video(&server, "a.mp4").await;
        let (a, b) = (bytes(500, round), bytes(800, round.wrapping_add(100)));
        let writer_b = Paused::start(&server, put(video.key(), video.sts(), b""), &b[..300]).await;
        wait_writing(&server).await;
        let answer = send(&server, put(video.key(), video.sts(), &a)).await;
        answer.assert_ok(&format!("round {round}: A"));
        writer_b.finish(&b[300..]).await.assert_refused(403, "AccessDenied", "B after A");
        assert_normal_with(&server, &video, &a, "A's bytes after B's refusal").await;
        assert_eq!(video_info(&server, &video.id).await.1, Some(500));
        if round == 0 {
            server = server.restart().await;
            assert_normal_with(&server, &video, &a, "A's bytes after a restart").await;
        }
    }
}

/// 40 rounds. Two PutObjects with one credential and different bytes sent at once: exactly one is
/// accepted, the other refused, and GET and Size are the winner's.
async fn two_puts_at_once_one_wins_whole(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..40u8 {
        let video = create_video(&server, "a.mp4").await;
        let (a, b) = (bytes(500, round), bytes(700, round.wrapping_add(100)));
        let (answer_a, answer_b) = tokio::join!(
            send(&server, put(video.key(), video.sts(), &a)),
            send(&server, put(video.key(), video.sts(), &b)),
        );
        let winner = match (answer_a.status, answer_b.status) {
            (200, _) => {
                answer_b.assert_refused(403, "AccessDenied", "B, loser");
                &a
            }
            (_, 200) => {
                answer_a.assert_refused(403, "AccessDenied", "A, loser");
                &b
            }
            other => panic!("round {round}: exactly one PutObject must win, got {other:?}"),
        };
        assert_normal_with(&server, &video, winner, "the winner's bytes").await;
    }
}

/// Two parts of `len` bytes each, both uploaded, for a two-part Complete: (bytes, ETag) each.
async fn two_parts(
    server: &TestServer,
    video: &Video,
    upload_id: &str,
    seed: u8,
    last: usize,
) -> [(Vec<u8>, String); 2] {
    let (one, two) = (bytes(MIN_PART, seed), bytes(last, seed.wrapping_add(1)));
    let first = upload_part(server, video.key(), video.sts(), upload_id, 1, &one).await;
    let second = upload_part(server, video.key(), video.sts(), upload_id, 2, &two).await;
    [(one, first), (two, second)]
}

fn complete_of(video: &Video, upload_id: &str, parts: &[(Vec<u8>, String)]) -> OssCall {
    let listed: Vec<(u32, &str)> = (1..).zip(parts.iter().map(|(_, etag)| etag.as_str())).collect();
    complete_call(video.key(), video.sts(), upload_id, complete_body(&listed))
}

fn whole(parts: &[(Vec<u8>, String)]) -> Vec<u8> {
    parts.iter().flat_map(|(data, _)| data.iter().copied()).collect()
}

/// 25 rounds. Two multipart uploads of one key (one credential) completed at once: exactly one succeeds,
/// and GET returns its bytes.
async fn two_uploads_of_one_key_completed_at_once_one_wins(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..25u8 {
        let video = create_video(&server, "a.mp4").await;
        let (first, second) = tokio::join!(
            initiate(&server, video.key(), video.sts()),
            initiate(&server, video.key(), video.sts())
        );
        let parts_a = two_parts(&server, &video, &first, round, 1000).await;
        let parts_b = two_parts(&server, &video, &second, round.wrapping_add(100), 3000).await;
        let (answer_a, answer_b) = tokio::join!(
            send(&server, complete_of(&video, &first, &parts_a)),
            send(&server, complete_of(&video, &second, &parts_b)),
        );
        let (winner, answer) = match (answer_a.status, answer_b.status) {
            (200, _) => {
                answer_b.assert_refused(403, "AccessDenied", "B, loser");
                (whole(&parts_a), answer_a)
            }
            (_, 200) => {
                answer_a.assert_refused(403, "AccessDenied", "A, loser");
                (whole(&parts_b), answer_b)
            }
            other => panic!("round {round}: exactly one Complete must win, got {other:?}"),
        };
        assert_normal_with(&server, &video, &winner, "the winner's bytes").await;
        let object = get(&server, video.key()).await.expect("the object");
        assert_eq!(object.header("etag"), answer.header("etag"), "GET has the winner's ETag");
    }
}

/// 40 rounds. Complete and Abort of one upload at once: exactly one wins, the other is told
/// `NoSuchUpload`, and what a reader sees is the winner's outcome; the first round of each outcome is
/// checked again after a restart.
async fn complete_racing_abort_has_one_winner(backend: Backend) {
    let Some(mut server) = TestServer::start_on(backend).await else { return };
    let (mut completed, mut aborted) = (0, 0);
    for round in 0..40u8 {
        let video = create_video(&server, "a.mp4").await;
        let upload_id = initiate(&server, video.key(), video.sts()).await;
        let parts = two_parts(&server, &video, &upload_id, round, 2000).await;
        // Abort is the shorter request: held back a little, by a delay swept over the rounds, so that
        // each side wins some rounds.
        let (complete, abort) = tokio::join!(send(&server, complete_of(&video, &upload_id, &parts)), async {
            tokio::time::sleep(sweep(round)).await;
            send(&server, abort_call(&video, &upload_id)).await
        });
        let first_of_its_kind = match (complete.status, abort.status) {
            (200, _) => {
                abort.assert_refused(404, "NoSuchUpload", "Abort after Complete");
                assert_normal_with(&server, &video, &whole(&parts), "Complete won").await;
                completed += 1;
                completed == 1
            }
            (_, 204) => {
                complete.assert_refused(404, "NoSuchUpload", "Complete after Abort");
                assert_nothing(&server, &video, "Abort won").await;
                aborted += 1;
                aborted == 1
            }
            other => panic!("round {round}: exactly one of Complete and Abort must win, got {other:?}"),
        };
        if first_of_its_kind {
            server = server.restart().await;
            if complete.status == 200 {
                assert_normal_with(&server, &video, &whole(&parts), "Complete won, after a restart").await;
            } else {
                assert_nothing(&server, &video, "Abort won, after a restart").await;
            }
        }
    }
    eprintln!("Complete won {completed} rounds, Abort {aborted}");
}

/// 30 rounds. The same Complete sent twice at once: both are answered 200 with the same ETag and CRC-64.
async fn identical_completes_get_the_same_answer(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..30u8 {
        let video = create_video(&server, "a.mp4").await;
        let upload_id = initiate(&server, video.key(), video.sts()).await;
        let parts = two_parts(&server, &video, &upload_id, round, 2000).await;
        let (one, two) = tokio::join!(
            send(&server, complete_of(&video, &upload_id, &parts)),
            send(&server, complete_of(&video, &upload_id, &parts)),
        );
        for answer in [&one, &two] {
            answer.assert_ok(&format!("round {round}: Complete"));
        }
        assert_eq!(one.header("etag"), two.header("etag"), "round {round}: ETag");
        let crc_of = |a: &Answer| a.header("x-oss-hash-crc64ecma").map(str::to_owned);
        assert_eq!(crc_of(&one), Some(crc(&whole(&parts)).to_string()), "round {round}: CRC-64");
        assert_eq!(crc_of(&one), crc_of(&two), "round {round}: CRC-64");
        assert_normal_with(&server, &video, &whole(&parts), "completed").await;
    }
}

/// 30 rounds. Part 1 is uploaded again, with other bytes of the same size, while a Complete listing the
/// original ETags runs: the Complete is refused (`InvalidPart`), or it publishes the original bytes.
async fn part_replaced_during_complete_is_refused_or_not_published(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    let (mut published, mut refused) = (0, 0);
    for round in 0..30u8 {
        let video = create_video(&server, "a.mp4").await;
        let upload_id = initiate(&server, video.key(), video.sts()).await;
        let parts = two_parts(&server, &video, &upload_id, round, 2000).await;
        let replacement = bytes(MIN_PART, round.wrapping_add(100));
        let replace = OssCall::new("PUT", Some(video.key()), video.sts())
            .query("partNumber", "1")
            .query("uploadId", &upload_id);
        // The replacement is in flight with all but its last bytes, so that its commit and the Complete's
        // come close together; the Complete is held back by a delay swept over the rounds.
        let split = MIN_PART - 100;
        let replacing = Paused::start(&server, replace, &replacement[..split]).await;
        wait_writing(&server).await;
        let (complete, replaced) = tokio::join!(
            async {
                tokio::time::sleep(sweep(round)).await;
                send(&server, complete_of(&video, &upload_id, &parts)).await
            },
            replacing.finish(&replacement[split..]),
        );
        assert!(
            replaced.status == 200 || replaced.error().code == "NoSuchUpload",
            "round {round}: the replacement is stored or finds the upload closed: {:?}",
            replaced.error()
        );
        if complete.status == 200 {
            assert_normal_with(&server, &video, &whole(&parts), "the original parts").await;
            published += 1;
        } else {
            complete.assert_refused(400, "InvalidPart", "Complete after the replacement");
            assert_eq!(complete.error().part_number.as_deref(), Some("1"));
            assert_eq!(replaced.status, 200, "round {round}: the replacement was stored");
            assert_nothing(&server, &video, "Complete refused").await;
            refused += 1;
        }
    }
    eprintln!("published {published} rounds, refused {refused}");
}

/// 20 rounds. A long-lived key revoked in the catalogue while its PutObject body is in flight (past the
/// checks made before the body): the PutObject is refused and nothing is published.
async fn key_revoked_mid_body_does_not_publish(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..20u8 {
        let (id, secret) = new_key(&server).await;
        let credential = OssCredential::V1 { id: id.clone(), secret, token: None };
        let key = format!("sv/races/revoked-{round}.mp4");
        let data = bytes(1000, round);
        let writer = Paused::start(&server, put(&key, credential, b""), &data[..400]).await;
        wait_writing(&server).await;
        assert!(server.state.meta.revoke_key(&id, std::time::SystemTime::now()).await.expect("revoke"));
        let answer = writer.finish(&data[400..]).await;
        answer.assert_refused(403, "AccessDenied", &format!("round {round}: PutObject of a revoked key"));
        assert!(get(&server, &key).await.is_none(), "round {round}: nothing published");
    }
}

/// 20 rounds. A CompleteMultipartUpload sent on a raw connection that is closed as soon as the request is
/// written: the commit still happens (the video turns `Normal` with the bytes), and the client's retry is
/// answered 200 with the object's ETag.
async fn complete_whose_client_disconnects_still_commits(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..20u8 {
        let video = create_video(&server, "a.mp4").await;
        let upload_id = initiate(&server, video.key(), video.sts()).await;
        let parts = two_parts(&server, &video, &upload_id, round, 2000).await;
        let listed: Vec<(u32, &str)> = vec![(1, &parts[0].1), (2, &parts[1].1)];
        let body = complete_body(&listed);
        let query = vec![("uploadId".to_owned(), upload_id.clone())];
        let headers = v1_headers(&server, &video.sts(), "POST", video.key(), &query, &[]);
        let target =
            format!("/{}/{}?uploadId={upload_id}", server.bucket(), percent_encode_path(video.key()));
        let host = server.oss_url.strip_prefix("http://").expect("http URL");
        let mut request = format!("POST {target} HTTP/1.1\r\nhost: {host}\r\n");
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        let mut stream = TcpStream::connect(host).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send the Complete");
        drop(stream);

        let started = Instant::now();
        while video_info(&server, &video.id).await.0 != "Normal" {
            assert!(started.elapsed() < Duration::from_secs(5), "round {round}: still not Normal after 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_normal_with(&server, &video, &whole(&parts), "the abandoned Complete's bytes").await;
        let retry = send(&server, complete_of(&video, &upload_id, &parts)).await;
        retry.assert_ok(&format!("round {round}: the retry"));
        let object = get(&server, video.key()).await.expect("the object");
        assert_eq!(retry.header("etag"), object.header("etag"), "round {round}: the retry's ETag");
    }
}

/// RefreshUploadVideo's UploadAuth as an OSS credential.
async fn refreshed(server: &TestServer, video: &Video) -> OssCredential {
    let reply = server.vod("RefreshUploadVideo", &[("VideoId", &video.id)]).await;
    assert_eq!(reply.status, 200, "RefreshUploadVideo: {}", reply.body);
    let auth = UploadAuth::decode(reply.body["UploadAuth"].as_str().expect("UploadAuth")).expect("decodes");
    OssCredential::V1 {
        id: auth.access_key_id.clone(),
        secret: auth.access_key_secret.clone(),
        token: Some(auth.security_token.expose().to_owned()),
    }
}

/// 20 rounds. A Normal video's source overwritten through RefreshUploadVideo: while the new PutObject is
/// in flight readers see the old bytes and Size, then the new ones. A credential refreshed while the
/// video was still `Uploading` is no overwrite credential: paused while the first upload completes, it is
/// refused.
async fn refresh_overwrites_a_normal_video_in_one_step(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    for round in 0..20u8 {
        let video = create_video(&server, "a.mp4").await;
        let old = bytes(500, round);
        assert_eq!(send(&server, put(video.key(), video.sts(), &old)).await.status, 200);
        let overwrite = refreshed(&server, &video).await;
        let new = bytes(800, round.wrapping_add(100));
        let writer = Paused::start(&server, put(video.key(), overwrite, b""), &new[..300]).await;
        wait_writing(&server).await;
        assert_normal_with(&server, &video, &old, "the old source while the new one is in flight").await;
        let answer = writer.finish(&new[300..]).await;
        answer.assert_ok(&format!("round {round}: the overwrite"));
        assert_normal_with(&server, &video, &new, "the new source").await;
        assert_eq!(video_info(&server, &video.id).await.1, Some(800), "round {round}: Size changed");

        let other = create_video(&server, "b.mp4").await;
        let early = refreshed(&server, &other).await;
        let data = bytes(600, round.wrapping_add(50));
        let late = Paused::start(&server, put(other.key(), early, b""), &data[..200]).await;
        wait_writing(&server).await;
        let first = bytes(400, round.wrapping_add(150));
        assert_eq!(send(&server, put(other.key(), other.sts(), &first)).await.status, 200);
        late.finish(&data[200..]).await.assert_refused(
            403,
            "AccessDenied",
            "a continuing credential after Normal",
        );
        assert_normal_with(&server, &other, &first, "the first upload's bytes").await;
    }
}

/// 40 rounds. A long-lived key's CompleteMultipartUpload (eight parts) races the key's revocation in the
/// catalogue, the revocation sent 0 to 7 ms after the Complete (swept over the rounds). Whichever comes
/// first, a revocation that has returned is final: if the object was not published when it returned, the
/// Complete is refused and nothing is ever published; if it was, the Complete succeeded with exactly those
/// bytes (issue 14: SQLite's write lock, PostgreSQL's lock on the key's row).
async fn revoke_racing_complete_is_ordered_by_the_commit(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else { return };
    let (mut completed, mut refused) = (0, 0);
    for round in 0..40u8 {
        let (id, secret) = new_key(&server).await;
        let credential = OssCredential::V1 { id: id.clone(), secret, token: None };
        let key = format!("sv/races/revoke-complete-{round}.bin");
        let upload_id = initiate(&server, &key, credential.clone()).await;
        let mut parts = Vec::new();
        for number in 1..=8u8 {
            let data = bytes(if number == 8 { 1000 } else { MIN_PART }, round.wrapping_add(number));
            let etag = upload_part(&server, &key, credential.clone(), &upload_id, number.into(), &data).await;
            parts.push((data, etag));
        }
        let listed: Vec<(u32, &str)> = (1..).zip(parts.iter().map(|(_, etag)| etag.as_str())).collect();
        let complete = complete_call(&key, credential, &upload_id, complete_body(&listed));
        let (answer, published_when_revoked) = tokio::join!(send(&server, complete), async {
            tokio::time::sleep(Duration::from_millis(u64::from(round % 8))).await;
            let revoked = server.state.meta.revoke_key(&id, std::time::SystemTime::now()).await;
            assert!(revoked.expect("revoke"), "round {round}: the key was active");
            let object = server.state.meta.get_object(server.bucket(), &key, false).await;
            object.expect("read the catalogue").is_some()
        });
        if answer.status == 200 {
            assert!(
                published_when_revoked,
                "round {round}: the Complete succeeded, but its object was not published when the revocation \
                 returned: it committed after the key was revoked"
            );
            completed += 1;
        } else {
            assert_eq!(answer.status, 403, "round {round}: Complete of a revoked key: {:?}", answer.error());
            let code = answer.error().code;
            // Refused at the commit (AccessDenied), or already at authentication if the key's revocation
            // reached the data plane's key lookup first.
            assert!(code == "AccessDenied" || code == "InvalidAccessKeyId", "round {round}: {code}");
            assert!(
                !published_when_revoked,
                "round {round}: the Complete was refused, yet its object was published"
            );
            refused += 1;
        }
        let whole = whole(&parts);
        let object = get(&server, &key).await.map(|o| o.body);
        assert!(
            object == (answer.status == 200).then_some(whole),
            "round {round}: GET disagrees with the answer"
        );
    }
    eprintln!(
        "{backend:?}: Complete committed before the revocation in {completed} rounds, refused in {refused}"
    );
}
