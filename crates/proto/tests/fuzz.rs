//! Property-based fuzzing of every vodup-proto parser a client can reach (issue 11): OSS credentials
//! (V1/V4 `Authorization` headers and presigned query parameters) with their time checks and signature
//! verification, VOD RPC signatures (v1 parameters and ACS3 headers), the wire date formats, part numbers
//! and CRC headers, the OSS XML bodies, UploadAuth/UploadAddress, and percent/form decoding.
//!
//! cargo-fuzz needs nightly, so this runs on stable under `cargo test`. Generators start from a real,
//! correctly signed request (or a valid body) and mutate one thing: a field replaced by an overflowing
//! number, a near-valid date, a huge repeat or random text, a field removed or duplicated, a byte edited.
//! That reaches the code behind the parsers (time arithmetic, canonicalization, HMAC), not just their
//! first `split`. Unmutated cases must be accepted, so the generators are known to produce valid input.
//!
//! Properties, for every case: no panic (proptest catches it and shrinks the input); no hang (a case is
//! linear work; the whole run is a few seconds); and no allocation beyond a stated bound, measured with a
//! counting global allocator ([`cap`]): the bytes allocated while parsing one input are at most
//! [`ALLOC_PER_INPUT_BYTE`] × its size + [`ALLOC_BASE`]. A hard cap of 1 GiB over the start turns a runaway
//! allocation into an abort instead of an out-of-memory machine.
//!
//! Each run prints its seed; `VODUP_FUZZ_SEED=<seed>` replays it and `VODUP_FUZZ_CASES` sets the cases per
//! parser (default 10,000). Inputs that once failed are kept in the `REGRESSIONS` lists and run first.
//!
//! The counter is global, so the tests in this binary take turns (`SERIAL`).

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap::Cap;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use vodup_proto::oss::authorization::{security_token, unsupported_payload_hash};
use vodup_proto::oss::error::OssError;
use vodup_proto::oss::validity::{self, CLOCK_SKEW, TimePolicy};
use vodup_proto::oss::xml::{
    CompleteMultipartUpload, CompleteMultipartUploadResult, CompletePart, InitiateMultipartUploadResult,
    ListMultipartUploadsResult, ListPartsResult, from_xml, to_xml_fragment,
};
use vodup_proto::oss::{OssCredential, OssRequest, part, signature_v1, signature_v4};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::vod::{signature_acs3, signature_v1 as vod_v1};
use vodup_proto::{Secret, crc64, encoding, mac, timestamp};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes one parse may allocate per byte of input: every parser here copies its input a bounded number
/// of times (percent-encoding triples it, canonical strings copy it again, HMAC pads it).
const ALLOC_PER_INPUT_BYTE: usize = 64;
/// Bytes one parse may allocate whatever its input: fixed buffers, error messages, small maps.
const ALLOC_BASE: usize = 256 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());

/// 2026-11-25 08:00:00 UTC, around which requests are signed.
const NOW: u64 = 1_795_593_600;
const SECRET: &str = "ExampleSecretKey123";

// ---------------------------------------------------------------------------------------------------
// The runner: seed, case count, allocation bound.

struct Run {
    seed: u64,
    cases: u32,
    _serial: MutexGuard<'static, ()>,
}

fn start() -> Run {
    let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = match std::env::var("VODUP_FUZZ_SEED") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_SEED is a u64"),
        Err(_) => rand::random(),
    };
    let cases = match std::env::var("VODUP_FUZZ_CASES") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_CASES is a number"),
        Err(_) => 10_000,
    };
    // A runaway allocation aborts the binary instead of exhausting the machine.
    let _ = ALLOCATOR.set_limit(ALLOCATOR.allocated().saturating_add(1 << 30));
    Run { seed, cases, _serial: serial }
}

impl Run {
    /// Runs `check` on `cases` inputs from `strategy`, with an RNG derived from the seed and `name`.
    fn fuzz<S: Strategy>(
        &self,
        name: &str,
        strategy: S,
        check: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) where
        S::Value: Clone,
    {
        println!(
            "fuzz {name}: seed {} (replay: VODUP_FUZZ_SEED={}), {} cases",
            self.seed, self.seed, self.cases
        );
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        // FNV-1a of the name, so each parser draws its own stream from the one seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        key[8..16].copy_from_slice(&hash.to_le_bytes());
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        match runner.run(&strategy, check) {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => panic!(
                "fuzz {name} failed with seed {} (VODUP_FUZZ_SEED={}): {why}\nminimal input: {input:#?}",
                self.seed, self.seed
            ),
            Err(e) => panic!("fuzz {name} with seed {}: {e}", self.seed),
        }
    }
}

/// Runs `parse` and fails the case if it allocated more than the bound for `input_len` bytes of input.
fn bounded<T>(input_len: usize, parse: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let before = ALLOCATOR.total_allocated();
    let out = parse();
    let used = ALLOCATOR.total_allocated().saturating_sub(before);
    let bound = ALLOC_PER_INPUT_BYTE.saturating_mul(input_len).saturating_add(ALLOC_BASE);
    prop_assert!(used <= bound, "allocated {used} bytes for {input_len} bytes of input (bound {bound})");
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Broken values: what replaces a field.

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "+1",
    "01",
    "00000000000000000000000001",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "10000000000000000000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "253402300799",
    "253402300800",
    "1099511627775",
    "604800",
    "604801",
    "-9223372036854775808",
    " 1",
    "1 ",
    "1e9",
    "0x10",
    "NaN",
    "１２３",
];

const DATES: &[&str] = &[
    "20261125T080000Z",
    "99991231T235959Z",
    "00000101T000000Z",
    "20261325T250000Z",
    "20260229T000000Z",
    "202611250T80000Z",
    "+20261125T080000Z",
    "2026-11-25T08:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "-001-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "2026-11-25T08:00:60Z",
    "Wed, 25 Nov 2026 08:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sat, 01 Jan 10000 00:00:00 GMT",
    "Wednesday, 25-Nov-26 08:00:00 GMT",
    "Wed Nov 25 08:00:00 2026",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Wed, 31 Dec 1969 23:59:59 GMT",
];

/// The longest value a repeat makes: large enough to expose quadratic work and unbounded allocation,
/// small enough that 10,000 cases stay quick in a debug build.
const MAX_REPEAT_BYTES: usize = 64 * 1024;

/// Pieces that parsers split on or look for, to repeat thousands of times.
const UNITS: &[&str] = &[
    "9",
    "a",
    ",",
    ";",
    "=",
    "/",
    "%",
    "%2F",
    "%FF",
    "&",
    " ",
    "Credential=a/b/c/d/e,",
    "Signature=ab,",
    "AdditionalHeaders=x;",
    "x-oss-",
    "<Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>",
    "<a>",
    "\u{1F600}",
];

/// Mostly near-valid broken values, sometimes plain random text.
fn broken() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(NUMBERS).prop_map(str::to_owned),
        3 => select(DATES).prop_map(str::to_owned),
        2 => (select(UNITS), 1usize..=4096).prop_map(|(unit, n)| unit.repeat(n.min(MAX_REPEAT_BYTES / unit.len()))),
        2 => "[ -~]{0,48}",
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// A byte-level edit of an existing value.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, char),
    Repeat(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Insert(at, c)),
        (2usize..=2000).prop_map(Edit::Repeat),
    ]
}

impl Edit {
    fn apply(&self, text: &str) -> String {
        let boundary = |at: usize| {
            let mut at = if text.is_empty() { 0 } else { at % (text.len() + 1) };
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        };
        match self {
            Self::Truncate(at) => text[..boundary(*at)].to_owned(),
            Self::Flip(at, bit) => {
                let mut bytes = text.as_bytes().to_vec();
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] ^= bit;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Self::Insert(at, c) => {
                let at = boundary(*at);
                format!("{}{c}{}", &text[..at], &text[at..])
            }
            Self::Repeat(n) => text.repeat((*n).min(MAX_REPEAT_BYTES / text.len().max(1)).max(1)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Requests: a list of query pairs and headers, signed, then mutated once.

/// Header and parameter names the parsers look for, to add or replace.
const NAMES: &[&str] = &[
    "authorization",
    "date",
    "x-oss-date",
    "x-oss-content-sha256",
    "x-oss-security-token",
    "security-token",
    "content-type",
    "content-md5",
    "OSSAccessKeyId",
    "Expires",
    "Signature",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-expires",
    "x-oss-signature",
    "x-oss-additional-headers",
    "partNumber",
    "uploadId",
    "Timestamp",
    "SignatureNonce",
    "AccessKeyId",
    "x-acs-date",
    "x-acs-content-sha256",
    "x-acs-signature-nonce",
];

#[derive(Debug, Clone)]
enum Mutation {
    None,
    SetQuery(usize, String),
    SetHeader(usize, String),
    EditQuery(usize, Edit),
    EditHeader(usize, Edit),
    AddQuery(&'static str, String),
    AddHeader(&'static str, String),
    RemoveQuery(usize),
    RemoveHeader(usize),
    DuplicateQuery(usize),
    DuplicateHeader(usize),
    Key(String),
    Method(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::None),
        3 => (any::<usize>(), broken()).prop_map(|(i, v)| Mutation::SetQuery(i, v)),
        3 => (any::<usize>(), broken()).prop_map(|(i, v)| Mutation::SetHeader(i, v)),
        2 => (any::<usize>(), edit()).prop_map(|(i, e)| Mutation::EditQuery(i, e)),
        2 => (any::<usize>(), edit()).prop_map(|(i, e)| Mutation::EditHeader(i, e)),
        2 => (select(NAMES), broken()).prop_map(|(n, v)| Mutation::AddQuery(n, v)),
        2 => (select(NAMES), broken()).prop_map(|(n, v)| Mutation::AddHeader(n, v)),
        1 => any::<usize>().prop_map(Mutation::RemoveQuery),
        1 => any::<usize>().prop_map(Mutation::RemoveHeader),
        1 => any::<usize>().prop_map(Mutation::DuplicateQuery),
        1 => any::<usize>().prop_map(Mutation::DuplicateHeader),
        1 => broken().prop_map(Mutation::Key),
        1 => "[A-Z]{0,8}".prop_map(Mutation::Method),
    ]
}

#[derive(Debug, Clone)]
struct Req {
    method: String,
    bucket: String,
    key: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn mutate(mut self, mutation: &Mutation) -> Self {
        fn at<T>(list: &[T], i: usize) -> Option<usize> {
            (!list.is_empty()).then(|| i % list.len())
        }
        match mutation {
            Mutation::None => {}
            Mutation::SetQuery(i, v) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query[i].1.clone_from(v);
                }
            }
            Mutation::SetHeader(i, v) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers[i].1.clone_from(v);
                }
            }
            Mutation::EditQuery(i, e) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query[i].1 = e.apply(&self.query[i].1);
                }
            }
            Mutation::EditHeader(i, e) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers[i].1 = e.apply(&self.headers[i].1);
                }
            }
            Mutation::AddQuery(n, v) => self.query.push(((*n).to_owned(), v.clone())),
            Mutation::AddHeader(n, v) => self.headers.push((n.to_ascii_lowercase(), v.clone())),
            Mutation::RemoveQuery(i) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query.remove(i);
                }
            }
            Mutation::RemoveHeader(i) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers.remove(i);
                }
            }
            Mutation::DuplicateQuery(i) => {
                if let Some(i) = at(&self.query, *i) {
                    self.query.push(self.query[i].clone());
                }
            }
            Mutation::DuplicateHeader(i) => {
                if let Some(i) = at(&self.headers, *i) {
                    self.headers.push(self.headers[i].clone());
                }
            }
            Mutation::Key(k) => self.key.clone_from(k),
            Mutation::Method(m) => self.method.clone_from(m),
        }
        self
    }

    /// The headers as a server receives them: a value with bytes HTTP cannot carry loses those bytes
    /// (hyper would refuse the request outright; the rest still reaches the parsers).
    fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
            let bytes: Vec<u8> = value.bytes().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)).collect();
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(name, value);
            }
        }
        map
    }

    fn oss<'a>(&'a self, headers: &'a HeaderMap) -> OssRequest<'a> {
        OssRequest {
            method: &self.method,
            bucket: Some(&self.bucket),
            key: Some(&self.key),
            query: &self.query,
            headers,
        }
    }

    fn input_len(&self) -> usize {
        let pairs =
            |list: &[(String, String)]| list.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>();
        self.method.len()
            + self.bucket.len()
            + self.key.len()
            + pairs(&self.query)
            + pairs(&self.headers)
            + self.body.len()
    }
}

// ---------------------------------------------------------------------------------------------------
// OSS credentials.

#[derive(Debug, Clone, Copy)]
enum Scheme {
    V1Header,
    V4Header,
    V1Presign,
    V4Presign,
}

#[derive(Debug, Clone)]
struct OssCase {
    request: Req,
    mutation: Mutation,
    /// When it was signed; also the "now" at which an unmutated request must be accepted.
    at: SystemTime,
}

fn base_request() -> impl Strategy<Value = Req> {
    (
        select(&["GET", "PUT", "POST", "HEAD", "DELETE"][..]),
        "[a-z0-9][a-z0-9-]{2,20}",
        "[a-zA-Z0-9/._ %+~-]{1,40}|sv/测试/a b.mp4",
        prop::option::of((1u32..=10_000, "[0-9A-F]{32}")),
        prop::option::of("[a-z]{1,10}/[a-z0-9.+-]{1,12}"),
        prop::option::of("[A-Za-z0-9+/]{22}=="),
        prop::collection::vec(("[a-z0-9-]{1,10}", "[ -~]{0,24}"), 0..3),
    )
        .prop_map(|(method, bucket, key, upload, content_type, md5, meta)| {
            let mut query = Vec::new();
            if let Some((number, id)) = upload {
                query.push(("partNumber".to_owned(), number.to_string()));
                query.push(("uploadId".to_owned(), id));
            }
            let mut headers = Vec::new();
            if let Some(t) = content_type {
                headers.push(("content-type".to_owned(), t));
            }
            if let Some(m) = md5 {
                headers.push(("content-md5".to_owned(), m));
            }
            for (name, value) in meta {
                headers.push((format!("x-oss-meta-{name}"), value.trim().to_owned()));
            }
            Req { method: method.to_owned(), bucket, key, query, headers, body: Vec::new() }
        })
}

fn secret() -> Secret {
    Secret::new(SECRET)
}

fn sign_oss(mut req: Req, scheme: Scheme, token: Option<String>, at: SystemTime, lifetime: u64) -> Req {
    let secret = secret();
    let id = if token.is_some() { "STS.NTestExampleAK" } else { "LTAItestkey" };
    match scheme {
        Scheme::V1Header | Scheme::V4Header => {
            if let Some(token) = &token {
                req.headers.push(("x-oss-security-token".into(), token.clone()));
            }
            if matches!(scheme, Scheme::V1Header) {
                req.headers.push(("date".into(), timestamp::http_date(at)));
            } else {
                req.headers.push(("x-oss-date".into(), timestamp::oss_v4_date(at)));
                req.headers.push(("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
            }
            let headers = req.header_map();
            let value = if matches!(scheme, Scheme::V1Header) {
                signature_v1::authorization(&req.oss(&headers), id, &secret)
            } else {
                signature_v4::authorization(&req.oss(&headers), id, &secret, "cn-hangzhou", at, &[])
            };
            req.headers.push(("authorization".into(), value));
        }
        Scheme::V1Presign => {
            let token = token.map(Secret::new);
            if let Some(token) = &token {
                req.query.push(("security-token".into(), token.expose().to_owned()));
            }
            let headers = req.header_map();
            let expires = timestamp::unix_seconds(at) + lifetime;
            let mut added =
                signature_v1::presign_query(&req.oss(&headers), id, &secret, expires, token.as_ref());
            added.retain(|(k, _)| k != "security-token");
            req.query.extend(added);
        }
        Scheme::V4Presign => {
            let token = token.map(Secret::new);
            let headers = req.header_map();
            let lifetime = lifetime.clamp(1, validity::MAX_V4_PRESIGN_EXPIRES);
            let added = signature_v4::presign_query(
                &req.oss(&headers),
                id,
                &secret,
                token.as_ref(),
                "cn-hangzhou",
                at,
                lifetime,
            );
            req.query.extend(added);
        }
    }
    req
}

fn oss_case() -> impl Strategy<Value = OssCase> {
    (
        base_request(),
        select(&[Scheme::V1Header, Scheme::V4Header, Scheme::V1Presign, Scheme::V4Presign][..]),
        prop::option::of("CAIS[A-Za-z0-9+/=]{8,40}"),
        0u64..86_400,
        1u64..30 * 86_400,
        mutation(),
    )
        .prop_map(|(req, scheme, token, offset, lifetime, mutation)| {
            let at = timestamp::from_unix_seconds(NOW + offset);
            let request = sign_oss(req, scheme, token, at, lifetime).mutate(&mutation);
            OssCase { request, mutation, at }
        })
}

fn policy() -> TimePolicy {
    TimePolicy { max_skew: CLOCK_SKEW, max_v1_presign_lifetime: Duration::from_secs(30 * 86_400) }
}

fn check_oss(case: &OssCase) -> Result<(), TestCaseError> {
    let headers = case.request.header_map();
    let request = case.request.oss(&headers);
    let secret = secret();
    let nows = [
        case.at,
        UNIX_EPOCH,
        timestamp::from_unix_seconds(u64::MAX),
        case.at + Duration::from_secs(8 * 86_400),
    ];
    let (verified, in_time) = bounded(case.request.input_len(), || {
        let _ = unsupported_payload_hash(&request);
        let _ = security_token(&request);
        let Ok(credential) = OssCredential::from_request(&request) else { return (None, None) };
        let _ = (credential.access_key_id(), credential.region(), credential.is_presigned());
        let _ = (credential.signed_at(&request), credential.expires_at());
        let mut in_time = None;
        for now in nows {
            let checked = validity::check(&credential, &request, now, &policy());
            in_time.get_or_insert(checked.map_err(|e| e.to_string()));
        }
        (Some(credential.verify(&request, &secret)), in_time)
    })?;
    if matches!(case.mutation, Mutation::None) {
        prop_assert!(
            matches!(verified, Some(Ok(()))),
            "a correctly signed request must verify: {verified:?}"
        );
        prop_assert_eq!(in_time, Some(Ok(())), "a fresh request must be in time");
    }
    Ok(())
}

/// The requests of issue 11 that panicked before any signature check.
fn oss_regressions() -> Vec<OssCase> {
    let v1 = |expires: &str| Req {
        method: "GET".into(),
        bucket: "anybucket".into(),
        key: "k".into(),
        query: [("OSSAccessKeyId", "vodup-presign"), ("Expires", expires), ("Signature", "AAAA")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let v4 = |expires: &str| Req {
        query: [
            ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
            ("x-oss-credential", "LTAItestkey/20261125/cn-hangzhou/oss/aliyun_v4_request"),
            ("x-oss-date", "20261125T080000Z"),
            ("x-oss-expires", expires),
            ("x-oss-signature", "AAAA"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
        ..v1("0")
    };
    let at = timestamp::from_unix_seconds(NOW);
    let case = |request| OssCase { request, mutation: Mutation::SetQuery(0, String::new()), at };
    vec![
        case(v1("10000000000000000000")),
        case(v1("18446744073709551615")),
        case(v4("18446744073709551615")),
        case(v4("9223372036854775807")),
    ]
}

#[test]
fn oss_credentials_survive_fuzzing() {
    let run = start();
    for case in oss_regressions() {
        check_oss(&case).unwrap_or_else(|e| panic!("regression {case:?}: {e}"));
    }
    run.fuzz("oss credentials", oss_case(), |case| check_oss(&case));
}

// ---------------------------------------------------------------------------------------------------
// VOD RPC: signature v1 parameters and ACS3 headers.

fn vod_params() -> impl Strategy<Value = Req> {
    (
        select(&["GET", "POST"][..]),
        "[A-Za-z]{3,24}",
        "[ -~]{0,32}|My video 测试*~",
        "[a-f0-9-]{8,36}",
        0u64..86_400,
    )
        .prop_map(|(method, action, title, nonce, offset)| {
            let timestamp = timestamp::iso8601(timestamp::from_unix_seconds(NOW + offset));
            let query = [
                ("Action", action.as_str()),
                ("Version", "2017-03-21"),
                ("Format", "JSON"),
                ("AccessKeyId", "LTAItestkey"),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureVersion", "1.0"),
                ("SignatureNonce", nonce.as_str()),
                ("Timestamp", timestamp.as_str()),
                ("Title", title.as_str()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec();
            Req {
                method: method.to_owned(),
                bucket: String::new(),
                key: String::new(),
                query,
                headers: Vec::new(),
                body: Vec::new(),
            }
        })
}

#[test]
fn vod_v1_parameters_survive_fuzzing() {
    let run = start();
    let strategy = (vod_params(), mutation()).prop_map(|(mut req, mutation)| {
        let signature = vod_v1::sign_params(&req.method, &req.query, &secret());
        req.query.push(("Signature".into(), signature));
        (req.mutate(&mutation), mutation)
    });
    run.fuzz("vod v1", strategy, |(req, mutation)| {
        let verified = bounded(req.input_len(), || {
            for (name, value) in &req.query {
                if name == "Timestamp" {
                    let _ = timestamp::parse_iso8601(value);
                }
            }
            vod_v1::verify(&req.method, &req.query, &secret())
        })?;
        if matches!(mutation, Mutation::None) {
            prop_assert_eq!(verified, Ok(()));
        }
        Ok(())
    });
}

fn acs3_request() -> impl Strategy<Value = Req> {
    (vod_params(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()).prop_map(
        |(mut req, body, token)| {
            let date =
                req.query.iter().find(|(k, _)| k == "Timestamp").map(|(_, v)| v.clone()).unwrap_or_default();
            let nonce = req
                .query
                .iter()
                .find(|(k, _)| k == "SignatureNonce")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let action = req.query[0].1.clone();
            req.query.retain(|(k, _)| k == "Title");
            req.headers = [
                ("host", "vod.cn-shanghai.aliyuncs.com".to_owned()),
                ("x-acs-action", action),
                ("x-acs-version", "2017-03-21".to_owned()),
                ("x-acs-date", date),
                ("x-acs-signature-nonce", nonce),
                ("x-acs-content-sha256", mac::sha256_hex(&body)),
            ]
            .map(|(k, v)| (k.to_owned(), v))
            .to_vec();
            if token {
                req.headers.push(("x-acs-security-token".into(), "CAIS-token".into()));
            }
            req.body = body;
            let headers = req.header_map();
            let hashed = mac::sha256_hex(&req.body);
            let acs3 = signature_acs3::Acs3Request {
                method: &req.method,
                path: "/",
                query: &req.query,
                headers: &headers,
                hashed_payload: &hashed,
            };
            let signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
            let authorization = signature_acs3::authorization(&acs3, "LTAItestkey", &secret(), signed)
                .expect("every signed header is present");
            req.headers.push(("authorization".into(), authorization.to_header_value()));
            req
        },
    )
}

#[test]
fn vod_acs3_headers_survive_fuzzing() {
    let run = start();
    let strategy = (acs3_request(), mutation()).prop_map(|(req, mutation)| (req.mutate(&mutation), mutation));
    run.fuzz("vod acs3", strategy, |(req, mutation)| {
        let headers = req.header_map();
        let verified = bounded(req.input_len(), || {
            if let Some(date) = headers.get("x-acs-date").and_then(|v| v.to_str().ok()) {
                let _ = timestamp::parse_iso8601(date);
            }
            let value = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
            let authorization = signature_acs3::Acs3Authorization::parse(value)?;
            signature_acs3::verify(
                &req.method,
                "/",
                &req.query,
                &headers,
                &req.body,
                &authorization,
                &secret(),
            )
        })?;
        if matches!(mutation, Mutation::None) {
            prop_assert_eq!(verified, Ok(()));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------------
// Dates, numbers, encodings.

#[test]
fn dates_survive_fuzzing() {
    let run = start();
    let instant = prop_oneof![
        (0u64..=timestamp::MAX_UNIX_SECONDS).prop_map(Some),
        any::<u64>().prop_map(Some),
        Just(None),
    ];
    let text = prop_oneof![
        (instant.clone(), 0usize..3, prop::option::of(edit())).prop_map(|(at, format, edit)| {
            let at = at.map_or(UNIX_EPOCH, timestamp::from_unix_seconds);
            let text = match format {
                0 => timestamp::iso8601(at),
                1 => timestamp::http_date(at),
                _ => timestamp::oss_v4_date(at),
            };
            edit.map_or(text.clone(), |e| e.apply(&text))
        }),
        broken(),
    ];
    run.fuzz("dates", (instant, text), |(seconds, text)| {
        bounded(text.len(), || {
            let _ = timestamp::parse_iso8601(&text);
            let _ = timestamp::parse_http_date(&text);
            let _ = timestamp::parse_oss_v4_date(&text);
        })?;
        // Every instant formats (clamped to 1970..=9999), and a representable one reads back.
        let at = seconds.and_then(timestamp::checked_from_unix_seconds);
        if let Some(at) = at {
            prop_assert_eq!(timestamp::parse_iso8601(&timestamp::iso8601(at)), Some(at));
            prop_assert_eq!(timestamp::parse_http_date(&timestamp::http_date(at)), Some(at));
            prop_assert_eq!(timestamp::parse_oss_v4_date(&timestamp::oss_v4_date(at)), Some(at));
        }
        let far = UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unwrap_or(0)));
        for at in far.into_iter().chain([UNIX_EPOCH - Duration::from_secs(seconds.unwrap_or(1) % (1 << 40))])
        {
            let _ = (timestamp::iso8601(at), timestamp::http_date(at), timestamp::oss_v4_date(at));
            let _ = (timestamp::oss_xml_time(at), timestamp::unix_seconds(at));
        }
        Ok(())
    });
}

#[test]
fn numbers_and_encodings_survive_fuzzing() {
    let run = start();
    let text = prop_oneof![
        (1u32..=10_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        ("[0-9]{1,6}", prop::option::of(edit())).prop_map(|(t, e)| e.map_or(t.clone(), |e| e.apply(&t))),
        broken(),
        "(%[0-9A-Fa-f]{0,2}|\\+|&|=|[a-z]){0,64}",
    ];
    run.fuzz("numbers and encodings", text, |text| {
        let (number, decoded, pairs) = bounded(text.len(), || {
            let number = part::parse_part_number(&text);
            let _ = crc64::parse_header(&text);
            (number, encoding::percent_decode(&text), encoding::form_decode(&text))
        })?;
        // Part numbers: exactly the canonical decimals 1..=10000 (leading zeros allowed up to 5 digits).
        if let Some(n) = number {
            prop_assert!(part::is_valid_part_number(n));
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= 5);
        }
        // Decoding never grows the input.
        if let Ok(decoded) = decoded {
            prop_assert!(decoded.len() <= text.len());
        }
        prop_assert!(pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= text.len() * 3);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------------
// XML bodies and UploadAuth.

fn complete_xml() -> impl Strategy<Value = String> {
    let body = prop::collection::vec((1u32..=10_000, "[0-9A-F]{32}"), 0..20).prop_map(|parts| {
        let parts = parts
            .into_iter()
            .map(|(n, e)| CompletePart { part_number: n, etag: format!("\"{e}\"") })
            .collect();
        to_xml_fragment(&CompleteMultipartUpload { parts })
    });
    prop_oneof![
        4 => (body.clone(), prop::option::of(edit())).prop_map(|(b, e)| e.map_or(b.clone(), |e| e.apply(&b))),
        3 => (body.clone(), any::<usize>(), broken()).prop_map(|(b, at, insert)| {
            let mut at = at % (b.len() + 1);
            while !b.is_char_boundary(at) {
                at -= 1;
            }
            format!("{}{insert}{}", &b[..at], &b[at..])
        }),
        1 => (1usize..5000).prop_map(|n| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n))),
        // 1000 parts is 53 KB; parsing is linear, so more would only cost time.
        1 => (1usize..1000).prop_map(|n| {
            format!("<CompleteMultipartUpload>{}</CompleteMultipartUpload>", "<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>".repeat(n))
        }),
        2 => broken(),
    ]
}

#[test]
fn xml_bodies_survive_fuzzing() {
    let run = start();
    run.fuzz("xml bodies", complete_xml(), |text| {
        let parts = bounded(text.len(), || {
            let parts = from_xml::<CompleteMultipartUpload>(&text).map(|c| c.parts.len());
            let _ = OssError::from_xml(&text);
            let _ = from_xml::<InitiateMultipartUploadResult>(&text);
            let _ = from_xml::<CompleteMultipartUploadResult>(&text);
            let _ = from_xml::<ListPartsResult>(&text);
            let _ = from_xml::<ListMultipartUploadsResult>(&text);
            parts
        })?;
        if let Ok(parts) = parts {
            // A part takes at least `<Part></Part>` of input: the output is bounded by the input.
            prop_assert!(parts <= text.len() / 13 + 1);
        }
        Ok(())
    });
}

#[test]
fn upload_auth_survives_fuzzing() {
    let run = start();
    let valid =
        (any::<bool>(), "[ -~]{0,40}", 0u64..=u64::from(u32::MAX)).prop_map(|(address, text, lifetime)| {
            if address {
                UploadAddress::new(
                    "https://oss-cn-shanghai.aliyuncs.com",
                    "outin-b",
                    format!("sv/{text}.m3u8"),
                )
                .encode()
            } else {
                UploadAuth::new(
                    "STS.id",
                    Secret::new(text.clone()),
                    Secret::new("CAIS"),
                    timestamp::from_unix_seconds(NOW),
                    Duration::from_secs(lifetime),
                    "cn-shanghai",
                )
                .encode()
            }
        });
    let json = prop_oneof![
        "\\{\"Expiration\": ?(\"[0-9]{1,30}\"|[0-9]{1,30}|-1|1e400), \"AccessKeyId\": \"a\", \"ExpireUTCTime\": \"[0-9:TZ-]{0,25}\"\\}",
        (1usize..5000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
    .prop_map(|j| mac::base64_encode(j.as_bytes()));
    let text = prop_oneof![
        (valid, prop::option::of(edit())).prop_map(|(v, e)| e.map_or(v.clone(), |e| e.apply(&v))),
        json,
        broken(),
    ];
    run.fuzz("upload auth", text, |text| {
        bounded(text.len(), || {
            if let Ok(auth) = UploadAuth::decode(&text) {
                let _ = (auth.expires_at(), auth.lifetime());
            }
            let _ = UploadAddress::decode(&text);
        })
    });
}
