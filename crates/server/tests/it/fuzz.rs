//! Property-based fuzzing of the server's own parsers (issue 11), the ones vodup-proto's harness
//! (`crates/proto/tests/fuzz/`) cannot reach: [`Endpoint::classify`] directly, and through a real
//! server on loopback the data plane's addressing (path, virtual host, percent-decoding), query and
//! `Range` parsing, and the control plane's parameter parsing.
//!
//! The requests are near-valid: each is signed correctly with the server's key *after* its mutation, so
//! it passes authentication and reaches the handler (a `Range` is parsed only for an authorized GET); a
//! few are tampered with after signing to exercise the refusals too. Properties: every request gets an
//! answer (a dropped connection is the panic of issue 11), never a 5xx but 501 NotImplemented, and a body bounded by a stated
//! size (the largest stored object plus 16 KiB on the data plane, 1 MiB on the control plane); a GET that
//! succeeds returns exactly the bytes its `Content-Range` names.
//!
//! The seed is printed; `VODUP_FUZZ_SEED` replays it and `VODUP_FUZZ_CASES` sets the cases per parser
//! (default 10,000), as in the proto harness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use vodup_server::data::endpoint::Endpoint;
use vodup_server::proto::encoding::{form_decode, percent_decode, percent_encode_path, query_encode};
use vodup_server::proto::oss::{OssRequest, signature_v1, signature_v4};
use vodup_server::proto::timestamp::{http_date, oss_v4_date};
use vodup_server::proto::vod::Action;
use vodup_testkit::TestServer;

use crate::support::{RawResponse, bytes, create_video, put, read_response, signed_vod_query};

/// The sizes of the objects GETs are fuzzed against: empty, one byte, and a few KiB.
const OBJECT_SIZES: [usize; 4] = [0, 1, 1000, 5000];
/// How much a data-plane answer may carry beyond the largest object: headers' worth of XML error.
const DATA_BODY_SLACK: usize = 16 * 1024;
/// The largest control-plane answer allowed (a page of a listing is far below this).
const CONTROL_BODY_MAX: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------------
// The runner (the same seed and case-count rules as the proto harness).

fn settings() -> (u64, u32) {
    let seed = match std::env::var("VODUP_FUZZ_SEED") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_SEED is a u64"),
        Err(_) => rand::random(),
    };
    let cases = match std::env::var("VODUP_FUZZ_CASES") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_CASES is a number"),
        Err(_) => 10_000,
    };
    (seed, cases)
}

/// Runs `check` on inputs from `strategy`; panics with the seed and the shrunk input on failure.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let (seed, cases) = settings();
    println!("fuzz {name}: seed {seed} (replay: VODUP_FUZZ_SEED={seed}), {cases} cases");
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..8 + name.len().min(24)].copy_from_slice(&name.as_bytes()[..name.len().min(24)]);
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 512, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    match runner.run(&strategy, check) {
        Ok(()) => {}
        Err(TestError::Fail(why, input)) => {
            panic!(
                "fuzz {name} failed with seed {seed} (VODUP_FUZZ_SEED={seed}): {why}\nminimal input: {input:#?}"
            )
        }
        Err(e) => panic!("fuzz {name} with seed {seed}: {e}"),
    }
}

/// Runs an async check from the synchronous runner, on a multi-threaded test runtime whose other workers
/// keep the server going meanwhile.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// Sends `head` (request line and headers, without the final blank line) and `body` on a new connection.
/// `None` when the server drops the connection without an answer.
async fn send(addr: &str, head: &str, body: &[u8]) -> Option<RawResponse> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = head.as_bytes().to_vec();
    request
        .extend_from_slice(format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(body);
    stream.write_all(&request).await.ok()?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        // read_response asserts on a connection closed before the head; turn that into `None`.
        tokio::spawn(async move { read_response(&mut stream).await }).await.ok()
    });
    answer.await.expect("an answer within 20 s (a hang is a failure)")
}

/// A refusal or a success: any status below 500, or 501 for an operation this service does not serve.
/// Any other 5xx means a request broke something inside.
fn answered_cleanly(status: u16) -> bool {
    status < 500 || status == 501
}

// ---------------------------------------------------------------------------------------------------
// Broken values.

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "01",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "10000",
    "10001",
    "2592000",
    "2592001",
    " 1",
    "1e9",
    "NaN",
];

const UNITS: &[&str] = &["9", ",", "-", "=", "%", "%2F", "%FF", "&", "/", "..", "bytes=0-1,", "\u{e9}"];

fn broken() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(NUMBERS).prop_map(str::to_owned),
        2 => (select(UNITS), 1usize..=2000).prop_map(|(unit, n)| unit.repeat(n.min(16 * 1024 / unit.len()))),
        2 => "[ -~]{0,32}",
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// Visible ASCII only: what a header value can carry on the wire unchanged.
fn header_safe(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect()
}

// ---------------------------------------------------------------------------------------------------
// Endpoint classification, called directly.

#[test]
fn endpoint_classification_survives_fuzzing() {
    let names = select(&["uploads", "uploadId", "partNumber", "acl", "x-oss-process", ""][..]);
    let strategy = (
        prop_oneof![
            select(&["GET", "PUT", "POST", "HEAD", "DELETE"][..]).prop_map(str::to_owned),
            "[A-Z]{0,8}"
        ],
        any::<bool>(),
        prop::collection::vec((names, broken()), 0..5),
    );
    fuzz("endpoint classification", strategy, |(method, has_key, query)| {
        let query: Vec<(String, String)> = query.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Ok(endpoint) = Endpoint::classify(&method, has_key, &query) {
            prop_assert!(!endpoint.name().is_empty());
            if let Endpoint::UploadPart { part_number, .. } = endpoint {
                prop_assert!((1..=10_000).contains(&part_number));
            }
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------------
// The data plane: addressing, query, Range.

#[derive(Debug, Clone)]
struct DataCase {
    method: &'static str,
    /// Index into the stored objects (a scratch key of the same index for writes), or a fuzzed key.
    key: Result<usize, String>,
    /// How the path spells the key.
    path: PathStyle,
    query: Vec<(String, String)>,
    /// Appended to the encoded query as is (visible ASCII).
    raw_query: Option<String>,
    range: Option<String>,
    v4: bool,
    /// A header replaced after signing, so the signature or date no longer holds.
    tamper: Option<(&'static str, String)>,
}

#[derive(Debug, Clone)]
enum PathStyle {
    Plain,
    VirtualHost,
    EncodedSlashes,
    /// A suffix (percent-encoded as a client would) appended to the path.
    Suffix(String),
    /// Bytes a careless client might put in a path, sent as visible ASCII.
    Raw(String),
}

fn range() -> impl Strategy<Value = String> {
    let bound = prop_oneof![
        3 => (0u64..6000).prop_map(|n| n.to_string()),
        2 => select(NUMBERS).prop_map(str::to_owned),
        1 => Just(String::new()),
    ];
    prop_oneof![
        6 => (bound.clone(), bound.clone()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        1 => (bound.clone(), bound.clone(), bound).prop_map(|(a, b, c)| format!("bytes={a}-{b},{c}-")),
        1 => select(&["bytes = 1-2", "items=0-1", "bytes=-0", "bytes=--1", "bytes=1", "bytes=", "bytes=0-0"][..])
            .prop_map(str::to_owned),
        1 => broken(),
    ]
}

fn data_case() -> impl Strategy<Value = DataCase> {
    let key = prop_oneof![
        6 => (0..OBJECT_SIZES.len()).prop_map(Ok),
        1 => broken().prop_map(Err),
    ];
    let path = prop_oneof![
        6 => Just(PathStyle::Plain),
        2 => Just(PathStyle::VirtualHost),
        1 => Just(PathStyle::EncodedSlashes),
        1 => broken().prop_map(PathStyle::Suffix),
        1 => "[!-~]{0,40}".prop_map(PathStyle::Raw),
    ];
    let query_name =
        select(&["uploads", "uploadId", "partNumber", "encoding-type", "x-oss-process", "Expires"][..]);
    let tamper = prop::option::weighted(
        0.1,
        (select(&["date", "x-oss-date", "authorization", "x-oss-content-sha256"][..]), broken()),
    );
    (
        select(&["GET", "GET", "GET", "HEAD", "PUT", "POST", "DELETE"][..]),
        key,
        path,
        prop::option::weighted(
            0.2,
            prop::collection::vec((query_name.prop_map(str::to_owned), broken()), 1..3),
        )
        .prop_map(Option::unwrap_or_default),
        prop::option::weighted(0.1, "[!-~&&[^#]]{0,40}"),
        prop::option::weighted(0.8, range()),
        any::<bool>(),
        tamper,
    )
        .prop_map(|(method, key, path, query, raw_query, range, v4, tamper)| DataCase {
            method,
            key,
            path,
            query,
            raw_query,
            range,
            v4,
            tamper,
        })
}

struct DataPlane {
    server: TestServer,
    objects: Vec<(String, Vec<u8>)>,
}

impl DataPlane {
    /// Builds the request line and headers of `case`, signed with the server's key over what the server
    /// will decode from them.
    fn head(&self, case: &DataCase) -> String {
        let server = &self.server;
        let bucket = server.bucket();
        let oss = server.oss_url.strip_prefix("http://").expect("http URL");
        let key = match &case.key {
            // Writes go to keys of their own, so the reference objects stay as stored.
            Ok(i) if !matches!(case.method, "GET" | "HEAD") => format!("fz/w{i}"),
            Ok(i) => self.objects[*i].0.clone(),
            Err(k) => k.clone(),
        };
        let mut host = oss.to_owned();
        let path = match &case.path {
            PathStyle::Plain => format!("/{bucket}/{}", percent_encode_path(&key)),
            PathStyle::VirtualHost => {
                host = format!("{bucket}.{oss}");
                format!("/{}", percent_encode_path(&key))
            }
            PathStyle::EncodedSlashes => {
                format!("/{bucket}/{}", percent_encode_path(&key).replace('/', "%2F"))
            }
            PathStyle::Suffix(s) => {
                format!("/{bucket}/{}{}", percent_encode_path(&key), percent_encode_path(s))
            }
            PathStyle::Raw(raw) => format!("/{bucket}/{raw}"),
        };
        let mut query = query_encode(&case.query);
        if let Some(raw) = &case.raw_query {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(raw);
        }
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };

        // What the server sees: the bucket and key from Host and path, the query form-decoded.
        let raw_path = path.strip_prefix('/').unwrap_or(&path);
        let (seen_bucket, raw_key) = if matches!(case.path, PathStyle::VirtualHost) {
            (bucket.to_owned(), raw_path)
        } else {
            raw_path.split_once('/').map_or((raw_path.to_owned(), ""), |(b, k)| (b.to_owned(), k))
        };
        let seen_key = percent_decode(raw_key).unwrap_or_default();
        let seen_query = form_decode(&query);
        let now = SystemTime::now();
        let mut headers = HeaderMap::new();
        if let Some(range) = &case.range
            && let Ok(value) = HeaderValue::from_str(&header_safe(range))
        {
            headers.insert("range", value);
        }
        if case.v4 {
            headers.insert("x-oss-date", HeaderValue::from_str(&oss_v4_date(now)).expect("date"));
            headers.insert("x-oss-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        } else {
            headers.insert("date", HeaderValue::from_str(&http_date(now)).expect("date"));
        }
        let request = OssRequest {
            method: case.method,
            bucket: Some(&seen_bucket),
            key: (!seen_key.is_empty()).then_some(seen_key.as_str()),
            query: &seen_query,
            headers: &headers,
        };
        let authorization = if case.v4 {
            let region = &server.state.site.region;
            signature_v4::authorization(&request, &server.key_id, &server.key_secret, region, now, &[])
        } else {
            signature_v1::authorization(&request, &server.key_id, &server.key_secret)
        };
        headers.insert("authorization", HeaderValue::from_str(&authorization).expect("authorization"));
        if let Some((name, value)) = &case.tamper
            && let Ok(value) = HeaderValue::from_str(&header_safe(value))
        {
            headers.insert(HeaderName::from_static(name), value);
        }
        let mut head = format!("{} {target} HTTP/1.1\r\nhost: {host}\r\n", case.method);
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().expect("visible ASCII")));
        }
        head
    }

    async fn check(&self, case: &DataCase) -> Result<(), TestCaseError> {
        let head = self.head(case);
        let oss = self.server.oss_url.strip_prefix("http://").expect("http URL");
        let response = send(oss, &head, b"").await;
        let Some(response) = response else {
            return Err(TestCaseError::fail(format!("no answer to {head:?}")));
        };
        prop_assert!(
            answered_cleanly(response.status),
            "{} for {head:?}: {:?}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let largest = OBJECT_SIZES.iter().max().copied().unwrap_or(0);
        prop_assert!(
            response.body.len() <= largest + DATA_BODY_SLACK,
            "a {} byte answer",
            response.body.len()
        );
        // A successful GET of a stored object returns exactly the bytes it says.
        if let (Ok(i), "GET", 200 | 206) = (&case.key, case.method, response.status)
            && matches!(case.path, PathStyle::Plain | PathStyle::VirtualHost | PathStyle::EncodedSlashes)
            && case.query.is_empty()
            && case.raw_query.is_none()
        {
            let data = &self.objects[*i].1;
            let expected = match response.header("content-range") {
                Some(range) => {
                    let spec = range.strip_prefix("bytes ").expect("bytes range");
                    let (span, total) = spec.split_once('/').expect("a/b");
                    let (start, end) = span.split_once('-').expect("s-e");
                    let (start, end): (usize, usize) = (start.parse().unwrap(), end.parse().unwrap());
                    prop_assert_eq!(total.parse::<usize>().unwrap(), data.len());
                    prop_assert!(start <= end && end < data.len(), "Content-Range {range} of {}", data.len());
                    &data[start..=end]
                }
                None => data.as_slice(),
            };
            prop_assert!(
                response.body == expected,
                "GET body differs from the object (range {:?})",
                case.range
            );
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_requests_survive_fuzzing() {
    let server = TestServer::start().await;
    let mut objects = Vec::new();
    for (i, size) in OBJECT_SIZES.into_iter().enumerate() {
        let key = format!("fz/o{i} +é.bin");
        let data = bytes(size, i as u8);
        // reqwest sends no Content-Length for an empty body; OSS requires one.
        let call = put(&key, server.key_credential(), &data).header("content-length", &size.to_string());
        assert_eq!(server.oss(call).await.status(), 200, "PUT {key}");
        objects.push((key, data));
    }
    let plane = DataPlane { server, objects };
    fuzz("data plane", data_case(), |case| block_on(plane.check(&case)));
}

// ---------------------------------------------------------------------------------------------------
// The control plane: action parameters.

/// Parameter names the handlers read, and a few they do not.
const PARAMS: &[&str] = &[
    "VideoId",
    "VideoIds",
    "ImageId",
    "MediaIds",
    "Title",
    "FileName",
    "FileSize",
    "CateId",
    "Tags",
    "Description",
    "AuthTimeout",
    "OutputType",
    "PageNo",
    "PageSize",
    "StartTime",
    "EndTime",
    "Status",
    "SortBy",
    "ImageType",
    "ImageExt",
    "BusinessType",
    "MediaExt",
    "MediaType",
    "StorageLocation",
    "ReferenceId",
    "ReferenceIds",
    "UserData",
    "UploadRatio",
    "DonePartsCount",
    "PartSize",
    "Timestamp",
    "SignatureNonce",
    "Version",
    "Format",
];

#[derive(Debug, Clone)]
struct ControlCase {
    action: String,
    /// Plausible values for the parameters actions require, then fuzzed ones over them.
    params: Vec<(&'static str, String)>,
    /// Parameters in a form body instead of the query.
    form: bool,
    /// A parameter replaced after signing.
    tamper: Option<(&'static str, String)>,
}

/// What the actions need to get past their required parameters, so the fuzzed values reach the code
/// that reads them.
fn base_params(video_id: &str) -> Vec<(&'static str, String)> {
    [
        ("VideoId", video_id),
        ("VideoIds", video_id),
        ("MediaIds", video_id),
        ("ImageId", video_id),
        ("Title", "fuzz"),
        ("FileName", "fuzz.mp4"),
        ("ImageType", "default"),
        ("BusinessType", "watermark"),
        ("MediaExt", "png"),
        ("OutputType", "oss"),
        ("AuthTimeout", "3600"),
    ]
    .map(|(k, v)| (k, v.to_owned()))
    .to_vec()
}

fn control_case(video_id: String) -> impl Strategy<Value = ControlCase> {
    // Left out: UploadMediaByURL fetches the URLs it is given (a fuzzer must not reach out), and the
    // actions this service answers with InvalidAction.NotFound at once.
    let unserved = ["UploadMediaByURL", "GetURLUploadInfos", "SearchMedia", "GetPlayInfo", "RegisterMedia"];
    let actions: Vec<&'static str> =
        Action::ALL.iter().map(|a| a.as_str()).filter(|a| !unserved.contains(a)).collect();
    let value = prop_oneof![
        4 => broken(),
        1 => Just(video_id.clone()),
        1 => Just(format!("{video_id},{video_id}")),
        1 => select(&["mp4", "cover", "oss", "cdn", "video", "Normal", "CreationTime:Desc", "2026-11-25T08:00:00Z"][..])
            .prop_map(str::to_owned),
        1 => "[a-z0-9]{1,12}\\.(mp4|m3u8|jpg|png)",
    ];
    let base = base_params(&video_id);
    (
        prop_oneof![9 => select(actions).prop_map(str::to_owned), 1 => broken()],
        prop::collection::vec(prop::bool::weighted(0.8), base.len()),
        prop::collection::vec((select(PARAMS), value), 1..5),
        any::<bool>(),
        prop::option::weighted(0.1, (select(PARAMS), broken())),
    )
        .prop_map(move |(action, keep, fuzzed, form, tamper)| {
            let mut params: Vec<(&'static str, String)> =
                base.iter().zip(keep).filter(|(_, keep)| *keep).map(|(p, _)| p.clone()).collect();
            for (name, value) in fuzzed {
                match params.iter_mut().find(|(k, _)| *k == name) {
                    Some(param) => param.1 = value,
                    None => params.push((name, value)),
                }
            }
            // Deleting the one known video would leave every later case a NotFound.
            if action.starts_with("Delete") {
                for (_, value) in &mut params {
                    *value = value.replace(&video_id, "00000000000000000000000000000000");
                }
            }
            ControlCase { action, params, form, tamper }
        })
}

static NONCE: AtomicU64 = AtomicU64::new(0);

async fn check_control(server: &TestServer, case: &ControlCase) -> Result<(), TestCaseError> {
    let nonce = format!("fuzz-{}-{}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed));
    let params: Vec<(&str, &str)> = case.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut pairs, _) = signed_vod_query(
        &server.key_id,
        &server.key_secret,
        &case.action,
        &params,
        SystemTime::now(),
        &nonce,
    );
    let signature = vodup_server::proto::vod::signature_v1::sign_params("POST", &pairs, &server.key_secret);
    pairs.push(("Signature".into(), signature));
    if let Some((name, value)) = &case.tamper {
        match pairs.iter_mut().find(|(k, _)| k == name) {
            Some(pair) => pair.1.clone_from(value),
            None => pairs.push(((*name).to_owned(), value.clone())),
        }
    }
    let encoded = query_encode(&pairs);
    let vod = server.vod_url.strip_prefix("http://").expect("http URL");
    let (head, body) = if case.form {
        (
            format!("POST / HTTP/1.1\r\nhost: {vod}\r\ncontent-type: application/x-www-form-urlencoded\r\n"),
            encoded.into_bytes(),
        )
    } else {
        (format!("POST /?{encoded} HTTP/1.1\r\nhost: {vod}\r\n"), Vec::new())
    };
    let Some(response) = send(vod, &head, &body).await else {
        return Err(TestCaseError::fail(format!("no answer to {case:?}")));
    };
    let text = String::from_utf8_lossy(&response.body);
    prop_assert!(answered_cleanly(response.status), "{} for {case:?}: {text}", response.status);
    prop_assert!(response.body.len() <= CONTROL_BODY_MAX, "a {} byte answer", response.body.len());
    prop_assert!(serde_json::from_slice::<serde_json::Value>(&response.body).is_ok(), "not JSON: {text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_requests_survive_fuzzing() {
    let server = TestServer::start().await;
    let video = create_video(&server, "fuzz.mp4").await;
    assert_eq!(server.oss(put(video.key(), video.sts(), b"video")).await.status(), 200);
    fuzz("control plane", control_case(video.id.clone()), |case| block_on(check_control(&server, &case)));
}
