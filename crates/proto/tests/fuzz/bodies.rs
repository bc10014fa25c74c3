//! Dates, part numbers and CRC headers, percent and form decoding, the OSS XML bodies, and
//! UploadAuth/UploadAddress.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use vodup_proto::oss::error::OssError;
use vodup_proto::oss::part;
use vodup_proto::oss::xml::{
    CompleteMultipartUpload, CompleteMultipartUploadResult, CompletePart, InitiateMultipartUploadResult,
    ListMultipartUploadsResult, ListPartsResult, from_xml, to_xml_fragment,
};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::{Secret, crc64, encoding, mac, timestamp};

use crate::runner::{NOW, bounded, start};
use crate::values::{broken, edit};

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
