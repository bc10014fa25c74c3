//! `UploadAddress` and `UploadAuth`: the Base64(JSON) credentials that CreateUploadVideo and friends
//! return, with field names and JSON types exactly as VOD sends them (vod-api.md §4).
//!
//! Two details break real clients when wrong: `Expiration` is a JSON *string* of seconds (Go clients
//! declare it `string`), and a `.m3u8` address must carry `ObjectPrefix` (voduploadsdk puts the segments
//! under it and crashes without it). The service encodes with [`UploadAddress::new`] and
//! [`UploadAuth::new`], which get both right; the SDK decodes what any VOD endpoint sends.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::mac::{base64_decode_strict, base64_encode};
use crate::secret::{AccessKeySecret, SecurityToken};
use crate::timestamp;

/// Why an `UploadAddress` or `UploadAuth` could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum UploadAuthError {
    /// The field is not standard Base64.
    #[error("{field} is not valid Base64: {source}")]
    Base64 {
        /// `UploadAddress` or `UploadAuth`.
        field: &'static str,
        /// The decoder's complaint.
        source: base64::DecodeError,
    },
    /// The decoded bytes are not the expected JSON object.
    #[error("{field} is not the expected JSON: {source}")]
    Json {
        /// `UploadAddress` or `UploadAuth`.
        field: &'static str,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The JSON parsed but a value is unusable.
    #[error("{field} has an invalid {name}: {detail}")]
    Invalid {
        /// `UploadAddress` or `UploadAuth`.
        field: &'static str,
        /// The JSON key.
        name: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Where to upload: the OSS endpoint, bucket and object key that VOD assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadAddress {
    /// OSS endpoint with its scheme, e.g. `https://oss-cn-shanghai.aliyuncs.com`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// The object key to upload to (`sv/…/….mp4`, `image/default/….png`).
    pub file_name: String,
    /// For a `.m3u8` playlist, the key prefix (ending in `/`) under which its segments go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_prefix: Option<String>,
}

impl UploadAddress {
    /// An address for `file_name`; a `.m3u8` key gets `ObjectPrefix` = its directory with a trailing `/`.
    pub fn new(endpoint: impl Into<String>, bucket: impl Into<String>, file_name: impl Into<String>) -> Self {
        let file_name = file_name.into();
        let object_prefix = is_playlist(&file_name).then(|| directory_of(&file_name));
        Self { endpoint: endpoint.into(), bucket: bucket.into(), file_name, object_prefix }
    }

    /// Base64(JSON), as the `UploadAddress` response field.
    pub fn encode(&self) -> String {
        base64_encode(&serde_json::to_vec(self).expect("UploadAddress always serializes"))
    }

    /// Decodes the `UploadAddress` response field. A playlist address without `ObjectPrefix` gets the
    /// playlist's directory, which is what VOD sends.
    pub fn decode(text: &str) -> Result<Self, UploadAuthError> {
        const FIELD: &str = "UploadAddress";
        let mut address: Self = decode_json(FIELD, text)?;
        for (name, value) in [("Endpoint", &address.endpoint), ("Bucket", &address.bucket)] {
            if value.is_empty() {
                return Err(UploadAuthError::Invalid { field: FIELD, name, detail: "empty".into() });
            }
        }
        if address.file_name.is_empty() {
            return Err(UploadAuthError::Invalid { field: FIELD, name: "FileName", detail: "empty".into() });
        }
        if address.object_prefix.is_none() && is_playlist(&address.file_name) {
            address.object_prefix = Some(directory_of(&address.file_name));
        }
        Ok(address)
    }
}

/// The temporary STS credential for one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadAuth {
    /// The STS security token, sent as `x-oss-security-token`.
    pub security_token: SecurityToken,
    /// The STS AccessKeyId (`STS.…`).
    pub access_key_id: String,
    /// The expiry instant, `YYYY-MM-DDThh:mm:ssZ`.
    #[serde(rename = "ExpireUTCTime")]
    pub expire_utc_time: String,
    /// The STS AccessKeySecret.
    pub access_key_secret: AccessKeySecret,
    /// The lifetime in seconds as a decimal *string* (a number breaks Go clients).
    #[serde(deserialize_with = "string_or_number")]
    pub expiration: String,
    /// The OSS region, e.g. `cn-shanghai`.
    #[serde(default)]
    pub region: String,
}

impl UploadAuth {
    /// A credential issued at `issued_at` and valid for `lifetime`; its `ExpireUTCTime` is rounded up to
    /// the whole second, as the service's token expiry is ([`timestamp::unix_seconds_up`]).
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: AccessKeySecret,
        security_token: SecurityToken,
        issued_at: SystemTime,
        lifetime: Duration,
        region: impl Into<String>,
    ) -> Self {
        Self {
            security_token,
            access_key_id: access_key_id.into(),
            expire_utc_time: timestamp::iso8601(timestamp::from_unix_seconds(timestamp::unix_seconds_up(
                issued_at + lifetime,
            ))),
            access_key_secret,
            expiration: lifetime.as_secs().to_string(),
            region: region.into(),
        }
    }

    /// Base64(JSON), as the `UploadAuth` response field.
    pub fn encode(&self) -> String {
        base64_encode(&serde_json::to_vec(self).expect("UploadAuth always serializes"))
    }

    /// Decodes the `UploadAuth` response field.
    pub fn decode(text: &str) -> Result<Self, UploadAuthError> {
        const FIELD: &str = "UploadAuth";
        let auth: Self = decode_json(FIELD, text)?;
        if auth.access_key_id.is_empty() {
            return Err(UploadAuthError::Invalid {
                field: FIELD,
                name: "AccessKeyId",
                detail: "empty".into(),
            });
        }
        Ok(auth)
    }

    /// When the credential expires: `ExpireUTCTime`, or `None` if it is absent or unreadable (callers then
    /// fall back to `Expiration` counted from when they received it, see [`Self::lifetime`]).
    pub fn expires_at(&self) -> Option<SystemTime> {
        timestamp::parse_iso8601(&self.expire_utc_time)
    }

    /// The lifetime from `Expiration`, if it is a number of seconds.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expiration.trim().parse().ok().map(Duration::from_secs)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    text: &str,
) -> Result<T, UploadAuthError> {
    let bytes =
        base64_decode_strict(text.trim()).map_err(|source| UploadAuthError::Base64 { field, source })?;
    serde_json::from_slice(&bytes).map_err(|source| UploadAuthError::Json { field, source })
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Text(text) => text,
        Either::Number(n) => n.to_string(),
    })
}

fn is_playlist(key: &str) -> bool {
    key.rsplit_once('.').is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("m3u8"))
}

fn directory_of(key: &str) -> String {
    key.rfind('/').map_or_else(String::new, |i| key[..=i].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    // The worked example of vod-api.md §4.
    const ADDRESS_B64: &str = "eyJFbmRwb2ludCI6Imh0dHBzOi8vb3NzLWNuLXNoYW5naGFpLmFsaXl1bmNzLmNvbSIsIkJ1Y2tldCI6Im91dGluLTAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIiwiRmlsZU5hbWUiOiJzdi8xYTJiM2M0ZC0xOGYyYTNiNGM1ZC8xYTJiM2M0ZC0xOGYyYTNiNGM1ZC5tcDQifQ==";

    #[test]
    fn decodes_the_spec_example_address() {
        let address = UploadAddress::decode(ADDRESS_B64).unwrap();
        assert_eq!(address.endpoint, "https://oss-cn-shanghai.aliyuncs.com");
        assert_eq!(address.bucket, "outin-0123456789abcdef0123456789abcdef");
        assert_eq!(address.file_name, "sv/1a2b3c4d-18f2a3b4c5d/1a2b3c4d-18f2a3b4c5d.mp4");
        assert_eq!(address.object_prefix, None);
    }

    #[test]
    fn encodes_the_spec_example_address_byte_for_byte() {
        let address = UploadAddress::new(
            "https://oss-cn-shanghai.aliyuncs.com",
            "outin-0123456789abcdef0123456789abcdef",
            "sv/1a2b3c4d-18f2a3b4c5d/1a2b3c4d-18f2a3b4c5d.mp4",
        );
        assert_eq!(address.encode(), ADDRESS_B64);
    }

    #[test]
    fn playlist_address_carries_object_prefix() {
        let address = UploadAddress::new("http://127.0.0.1:9000", "b", "sv/1a2b-18f/1a2b-18f.M3U8");
        assert_eq!(address.object_prefix.as_deref(), Some("sv/1a2b-18f/"));
        let json = String::from_utf8(base64_decode_strict(&address.encode()).unwrap()).unwrap();
        assert!(json.ends_with(r#""ObjectPrefix":"sv/1a2b-18f/"}"#), "{json}");
        let decoded = UploadAddress::decode(&address.encode()).unwrap();
        assert_eq!(decoded, address);
    }

    #[test]
    fn playlist_without_object_prefix_gets_its_directory() {
        let json = r#"{"Endpoint":"http://e","Bucket":"b","FileName":"sv/x/y.m3u8"}"#;
        let decoded = UploadAddress::decode(&base64_encode(json.as_bytes())).unwrap();
        assert_eq!(decoded.object_prefix.as_deref(), Some("sv/x/"));
    }

    #[test]
    fn upload_auth_keeps_the_real_key_order_and_string_expiration() {
        let auth = UploadAuth::new(
            "STS.FAKEAKID",
            Secret::new("FAKESTSSECRET"),
            Secret::new("FAKE-STS-TOKEN"),
            timestamp::parse_iso8601("2030-01-01T00:00:00Z").unwrap(),
            Duration::from_secs(3600),
            "cn-shanghai",
        );
        let json = String::from_utf8(base64_decode_strict(&auth.encode()).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"SecurityToken":"FAKE-STS-TOKEN","AccessKeyId":"STS.FAKEAKID","ExpireUTCTime":"2030-01-01T01:00:00Z","AccessKeySecret":"FAKESTSSECRET","Expiration":"3600","Region":"cn-shanghai"}"#
        );
        let decoded = UploadAuth::decode(&auth.encode()).unwrap();
        assert_eq!(decoded, auth);
        assert_eq!(decoded.lifetime(), Some(Duration::from_secs(3600)));
        assert_eq!(decoded.expires_at(), timestamp::parse_iso8601("2030-01-01T01:00:00Z"));
    }

    #[test]
    fn upload_auth_accepts_a_numeric_expiration() {
        let json = r#"{"SecurityToken":"t","AccessKeyId":"STS.a","ExpireUTCTime":"","AccessKeySecret":"s","Expiration":3000}"#;
        let decoded = UploadAuth::decode(&base64_encode(json.as_bytes())).unwrap();
        assert_eq!(decoded.expiration, "3000");
        assert_eq!(decoded.expires_at(), None);
        assert_eq!(decoded.region, "");
    }

    #[test]
    fn bad_input_says_which_field() {
        let err = UploadAuth::decode("not base64!").unwrap_err();
        assert!(err.to_string().starts_with("UploadAuth is not valid Base64"), "{err}");
        let err = UploadAddress::decode(&base64_encode(b"[1,2]")).unwrap_err();
        assert!(err.to_string().starts_with("UploadAddress is not the expected JSON"), "{err}");
    }

    #[test]
    fn debug_output_redacts_the_secrets() {
        let auth = UploadAuth::new(
            "STS.a",
            Secret::new("sekrit"),
            Secret::new("tok3n"),
            SystemTime::UNIX_EPOCH,
            Duration::from_secs(1),
            "r",
        );
        let debug = format!("{auth:?}");
        assert!(!debug.contains("sekrit") && !debug.contains("tok3n"), "{debug}");
    }
}
