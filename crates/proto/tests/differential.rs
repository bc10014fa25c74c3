//! Differential test against Alibaba's official Python clients: `compat/differential/gen_vectors.py`
//! signs random requests with aliyun-python-sdk-core, alibabacloud-tea-openapi, oss2 and
//! alibabacloud-oss-v2 and computes CRC-64s with crcmod; every case must come out the same from
//! vodup-proto, and must verify from its wire form (raw path, query, headers) the way the service
//! will see it.
//!
//! A fresh seed is drawn each run and printed; `VODUP_DIFF_SEED` replays one and `VODUP_DIFF_COUNT`
//! sets the cases per scheme (default 500). The Python comes from `VODUP_PYTHON` (`scripts/test` points
//! it at the pinned venv). Cases that once exposed a bug live in `tests/vectors/*.jsonl` and run
//! without Python.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use vodup_proto::crc64;
use vodup_proto::encoding::{form_decode, percent_decode};
use vodup_proto::oss::{OssCredential, OssRequest, signature_v1, signature_v4};
use vodup_proto::timestamp;
use vodup_proto::vod::{signature_acs3, signature_v1 as vod_v1};
use vodup_proto::{Secret, SignatureError};

const SCHEMES: &[&str] =
    &["vod_v1", "vod_acs3", "oss_v1_header", "oss_v1_presign", "oss_v4_header", "oss_v4_presign", "crc64"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn official_clients_agree_on_random_cases() {
    let Some(python) = std::env::var_os("VODUP_PYTHON") else {
        let reason = "VODUP_PYTHON is not set (run scripts/test, which builds the pinned venv)";
        assert!(std::env::var("VODUP_REQUIRE_ALL").as_deref() != Ok("1"), "VODUP_REQUIRE_ALL=1 and {reason}");
        eprintln!("SKIPPED: {reason}");
        return;
    };
    let seed: u64 = std::env::var("VODUP_DIFF_SEED")
        .ok()
        .map(|s| s.parse().expect("VODUP_DIFF_SEED is a number"))
        .unwrap_or_else(rand::random);
    let count: usize = std::env::var("VODUP_DIFF_COUNT").ok().map_or(500, |s| s.parse().expect("a number"));
    eprintln!("differential seed: {seed} ({count} cases per scheme; replay with VODUP_DIFF_SEED={seed})");

    let output = Command::new(&python)
        .arg(repo_root().join("compat/differential/gen_vectors.py"))
        .args(["--seed", &seed.to_string(), "--count", &count.to_string()])
        .output()
        .expect("run the vector generator");
    assert!(
        output.status.success(),
        "gen_vectors.py failed (seed {seed}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("generator output is UTF-8");
    let failures = check_all(&text);

    let mut per_scheme = BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let case: Value = serde_json::from_str(line).expect("generator prints JSON lines");
        *per_scheme.entry(case["scheme"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }
    eprintln!("cases per scheme: {per_scheme:?}");
    for scheme in SCHEMES {
        let n = per_scheme.get(*scheme).copied().unwrap_or(0);
        assert!(n >= count, "scheme {scheme}: only {n} cases of {count} (seed {seed})");
    }
    report(&failures, &format!("seed {seed}"));
}

#[test]
fn fixed_vectors_still_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/vectors exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            total += text.lines().filter(|l| !l.trim().is_empty()).count();
            report(&check_all(&text), &path.display().to_string());
        }
    }
    assert!(total > 0, "no fixed vectors in {}", dir.display());
}

fn report(failures: &[(String, String)], origin: &str) {
    if failures.is_empty() {
        return;
    }
    let dump = repo_root().join("target/differential-failures.jsonl");
    let lines: Vec<&str> = failures.iter().map(|(line, _)| line.as_str()).collect();
    let _ = std::fs::write(&dump, lines.join("\n") + "\n");
    for (line, why) in failures.iter().take(5) {
        eprintln!("MISMATCH: {why}\n  case: {line}");
    }
    panic!(
        "{} differential case(s) disagree ({origin}); all written to {} — fix the bug and add them to crates/proto/tests/vectors/",
        failures.len(),
        dump.display()
    );
}

fn check_all(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let case: Value = serde_json::from_str(line).expect("a JSON line");
            check(&case).err().map(|why| (line.to_owned(), why))
        })
        .collect()
}

fn check(case: &Value) -> Result<(), String> {
    match str_field(case, "scheme")? {
        "vod_v1" => check_vod_v1(case),
        "vod_acs3" => check_vod_acs3(case),
        "oss_v1_header" => check_oss_header(case, false),
        "oss_v4_header" => check_oss_header(case, true),
        "oss_v1_presign" => check_oss_presign(case, false),
        "oss_v4_presign" => check_oss_presign(case, true),
        "crc64" => check_crc64(case),
        other => Err(format!("unknown scheme {other}")),
    }
}

fn str_field<'a>(case: &'a Value, name: &str) -> Result<&'a str, String> {
    case[name].as_str().ok_or_else(|| format!("case has no string field {name}"))
}

fn same(what: &str, ours: &str, theirs: &str) -> Result<(), String> {
    if ours == theirs {
        Ok(())
    } else {
        Err(format!("{what} differs:\n  ours:   {ours:?}\n  theirs: {theirs:?}"))
    }
}

fn header_map(case: &Value) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for pair in case["headers"].as_array().ok_or("headers is not a list")? {
        let (name, value) = (pair[0].as_str().ok_or("header name")?, pair[1].as_str().ok_or("header value")?);
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header name {name:?}: {e}"))?;
        // The Python clients send header values encoded as Latin-1.
        let bytes: Vec<u8> = value.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
        map.append(
            name,
            HeaderValue::from_bytes(&bytes).map_err(|e| format!("header value {value:?}: {e}"))?,
        );
    }
    Ok(map)
}

fn mismatch(err: SignatureError) -> String {
    format!("verification failed: {err}")
}

fn check_vod_v1(case: &Value) -> Result<(), String> {
    let secret = Secret::new(str_field(case, "secret")?);
    let method = str_field(case, "method")?;
    let mut params = form_decode(str_field(case, "query")?);
    params.extend(form_decode(str_field(case, "body")?));
    same("string to sign", &vod_v1::string_to_sign(method, &params), str_field(case, "string_to_sign")?)?;
    same("signature", &vod_v1::sign_params(method, &params, &secret), str_field(case, "signature")?)?;
    vod_v1::verify(method, &params, &secret).map_err(mismatch)
}

fn check_vod_acs3(case: &Value) -> Result<(), String> {
    let secret = Secret::new(str_field(case, "secret")?);
    let method = str_field(case, "method")?;
    let path = str_field(case, "path")?;
    let query = form_decode(str_field(case, "query")?);
    let headers = header_map(case)?;
    let body = str_field(case, "body")?.as_bytes();
    let header =
        headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or("no authorization header")?;
    let auth = signature_acs3::Acs3Authorization::parse(header).map_err(mismatch)?;
    let hashed = vodup_proto::mac::sha256_hex(body);
    let request = signature_acs3::Acs3Request {
        method,
        path,
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };
    let canonical = signature_acs3::canonical_request(&request, &auth.signed_headers).map_err(mismatch)?;
    same("canonical request", &canonical, str_field(case, "canonical_request")?)?;
    let string_to_sign = signature_acs3::string_to_sign(&canonical);
    same("string to sign", &string_to_sign, str_field(case, "string_to_sign")?)?;
    same("signature", &signature_acs3::sign(&secret, &string_to_sign), str_field(case, "signature")?)?;
    let ours =
        signature_acs3::authorization(&request, &auth.access_key_id, &secret, auth.signed_headers.clone())
            .map_err(mismatch)?;
    same("authorization", &ours.to_header_value(), header)?;
    signature_acs3::verify(method, path, &query, &headers, body, &auth, &secret).map_err(mismatch)
}

/// Bucket and decoded key from the wire path: virtual-host style when the Host starts with the bucket.
fn bucket_and_key(host: &str, path: &str, bucket: &str) -> Result<(String, Option<String>), String> {
    let rest = if host.starts_with(&format!("{bucket}.")) {
        path.strip_prefix('/').ok_or("path does not start with /")?
    } else {
        let rest =
            path.strip_prefix('/').and_then(|p| p.strip_prefix(bucket)).ok_or("path lacks the bucket")?;
        rest.strip_prefix('/').unwrap_or(rest)
    };
    let key = percent_decode(rest).map_err(|e| format!("path is not UTF-8: {e}"))?;
    Ok((bucket.to_owned(), (!key.is_empty()).then_some(key)))
}

fn expected_key(case: &Value) -> Option<String> {
    case["key"].as_str().map(str::to_owned)
}

fn check_oss_header(case: &Value, v4: bool) -> Result<(), String> {
    let secret = Secret::new(str_field(case, "secret")?);
    let method = str_field(case, "method")?;
    let headers = header_map(case)?;
    let (bucket, key) =
        bucket_and_key(str_field(case, "host")?, str_field(case, "path")?, str_field(case, "bucket")?)?;
    if key != expected_key(case) {
        return Err(format!(
            "key decoded from the path is {key:?}, the client meant {:?}",
            expected_key(case)
        ));
    }
    let query = form_decode(str_field(case, "query")?);
    let request =
        OssRequest { method, bucket: Some(&bucket), key: key.as_deref(), query: &query, headers: &headers };
    let credential = OssCredential::from_request(&request).map_err(mismatch)?;
    let access_key_id = credential.access_key_id().ok_or("anonymous")?.to_owned();
    same("access key id", &access_key_id, str_field(case, "access_key_id")?)?;
    if v4 {
        let OssCredential::V4Header {
            ref scope, ref additional_headers, ref oss_date, ref signature, ..
        } = credential
        else {
            return Err(format!("not parsed as V4: {credential:?}"));
        };
        same("region", &scope.region, str_field(case, "region")?)?;
        let payload = request.header("x-oss-content-sha256");
        let canonical = signature_v4::canonical_request(&request, additional_headers, payload);
        same("canonical request", &canonical, str_field(case, "canonical_request")?)?;
        let string_to_sign = signature_v4::string_to_sign(oss_date, &scope.to_string(), &canonical);
        same("string to sign", &string_to_sign, str_field(case, "string_to_sign")?)?;
        same("signature", signature, str_field(case, "signature")?)?;
        let at = timestamp::from_unix_seconds(case["time"].as_u64().ok_or("time")?);
        let ours = signature_v4::authorization(
            &request,
            &access_key_id,
            &secret,
            &scope.region,
            at,
            additional_headers,
        );
        same("our signature", ours.rsplit_once("Signature=").map_or("", |(_, s)| s), signature)?;
    } else {
        let date = signature_v1::header_date(&request);
        let string_to_sign = signature_v1::string_to_sign_over(&request, &date, v1_reading(case)?);
        same("string to sign", &string_to_sign, str_field(case, "string_to_sign")?)?;
        same("our signature", &signature_v1::sign(&secret, &string_to_sign), str_field(case, "signature")?)?;
        if v1_reading(case)? == signature_v1::SubResourceList::Full {
            let ours = signature_v1::authorization(&request, &access_key_id, &secret);
            same(
                "our authorization",
                ours.rsplit_once(':').map_or("", |(_, s)| s),
                str_field(case, "signature")?,
            )?;
        }
    }
    credential.verify(&request, &secret).map_err(mismatch)
}

/// The sub-resource list the case's client signs with: alibabacloud-oss-v2 has its own shorter one.
fn v1_reading(case: &Value) -> Result<signature_v1::SubResourceList, String> {
    Ok(if str_field(case, "client")?.starts_with("alibabacloud-oss-v2") {
        signature_v1::SubResourceList::OssV2Client
    } else {
        signature_v1::SubResourceList::Full
    })
}

fn split_url(url: &str) -> Result<(&str, &str, &str), String> {
    let rest = url.split_once("://").ok_or("URL has no scheme")?.1;
    let (host, path_query) = rest.split_at(rest.find('/').ok_or("URL has no path")?);
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Ok((host, path, query))
}

fn check_oss_presign(case: &Value, v4: bool) -> Result<(), String> {
    let secret = Secret::new(str_field(case, "secret")?);
    let method = str_field(case, "method")?;
    let headers = header_map(case)?;
    let (host, path, raw_query) = split_url(str_field(case, "url")?)?;
    let (bucket, key) = bucket_and_key(host, path, str_field(case, "bucket")?)?;
    if key != expected_key(case) {
        return Err(format!(
            "key decoded from the URL is {key:?}, the client meant {:?}",
            expected_key(case)
        ));
    }
    let query = form_decode(raw_query);
    let request =
        OssRequest { method, bucket: Some(&bucket), key: key.as_deref(), query: &query, headers: &headers };
    let credential = OssCredential::from_request(&request).map_err(mismatch)?;
    if !credential.is_presigned() {
        return Err(format!("not parsed as a presigned URL: {credential:?}"));
    }
    let expires = case["expires"].as_u64().ok_or("expires")?;
    if credential.expires_at() != Some(timestamp::from_unix_seconds(expires)) {
        return Err(format!("expiry {:?} differs from the client's {expires}", credential.expires_at()));
    }
    let token = vodup_proto::oss::authorization::security_token(&request).map(Secret::new);
    let access_key_id = credential.access_key_id().ok_or("anonymous")?.to_owned();
    // The caller's own parameters: everything the presign step did not add.
    let presign_params = [
        "OSSAccessKeyId",
        "Expires",
        "Signature",
        "x-oss-signature-version",
        "x-oss-credential",
        "x-oss-date",
        "x-oss-expires",
        "x-oss-signature",
        "x-oss-security-token",
    ];
    let own: Vec<(String, String)> =
        query.iter().filter(|(k, _)| !presign_params.contains(&k.as_str())).cloned().collect();
    let unsigned = OssRequest { query: &own, ..request };
    match &credential {
        OssCredential::V4Presign { scope, additional_headers, oss_date, expires_in, signature, .. } if v4 => {
            let canonical = signature_v4::canonical_request(&request, additional_headers, "UNSIGNED-PAYLOAD");
            same("canonical request", &canonical, str_field(case, "canonical_request")?)?;
            let string_to_sign = signature_v4::string_to_sign(oss_date, &scope.to_string(), &canonical);
            same("string to sign", &string_to_sign, str_field(case, "string_to_sign")?)?;
            same("signature", signature, str_field(case, "signature")?)?;
            if additional_headers.is_empty() {
                let at = timestamp::parse_oss_v4_date(oss_date).ok_or("x-oss-date")?;
                let ours = signature_v4::presign_query(
                    &unsigned,
                    &access_key_id,
                    &secret,
                    token.as_ref(),
                    &scope.region,
                    at,
                    *expires_in,
                );
                let ours = ours.iter().find(|(k, _)| k == "x-oss-signature").map_or("", |(_, v)| v.as_str());
                same("our signature", ours, signature)?;
            }
        }
        OssCredential::V1Presign { expires, signature, .. } if !v4 => {
            let string_to_sign = signature_v1::string_to_sign_over(&request, expires, v1_reading(case)?);
            same("string to sign", &string_to_sign, str_field(case, "string_to_sign")?)?;
            same("signature", signature, str_field(case, "signature")?)?;
            // `security-token` is a signed sub-resource, so it stays in the request we sign.
            let with_token: Vec<(String, String)> =
                query.iter().filter(|(k, _)| !presign_params[..3].contains(&k.as_str())).cloned().collect();
            if v1_reading(case)? == signature_v1::SubResourceList::Full {
                let unsigned = OssRequest { query: &with_token, ..request };
                let expires = expires.parse().map_err(|_| "Expires")?;
                let ours = signature_v1::presign_query(&unsigned, &access_key_id, &secret, expires, None);
                same("our signature", &ours.last().ok_or("no signature")?.1, signature)?;
            }
        }
        other => return Err(format!("wrong presign version: {other:?}")),
    }
    credential.verify(&request, &secret).map_err(mismatch)
}

fn check_crc64(case: &Value) -> Result<(), String> {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(str_field(case, "data_b64")?)
        .map_err(|e| e.to_string())?;
    let crc = crc64::checksum(&data);
    same("crc64", &crc.to_string(), str_field(case, "crc")?)?;
    if let (Some(split), Some(combined)) = (case["split"].as_u64(), case["combined"].as_str()) {
        let split = usize::try_from(split).map_err(|e| e.to_string())?;
        let (a, b) = data.split_at(split);
        let ours = crc64::combine(crc64::checksum(a), crc64::checksum(b), b.len() as u64);
        same("combined crc64", &ours.to_string(), combined)?;
        same("combined vs whole", &ours.to_string(), &crc.to_string())?;
    }
    Ok(())
}
