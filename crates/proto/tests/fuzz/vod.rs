//! VOD RPC: signature v1 parameters (query or form) and ACS3 headers.

use proptest::prelude::*;
use proptest::sample::select;
use vodup_proto::vod::{signature_acs3, signature_v1 as vod_v1};
use vodup_proto::{mac, timestamp};

use crate::oss::secret;
use crate::request::{Mutation, Req, mutation};
use crate::runner::{NOW, bounded, start};

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
