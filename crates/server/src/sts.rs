//! Per-upload temporary credentials ("STS" in VOD's UploadAuth), minted by the control plane and
//! verified by the data plane with no database lookup (vod-api.md §12).
//!
//! The SecurityToken is self-describing: it carries its claims (STS id, issuing AccessKeyId, media id,
//! bucket, object key or playlist prefix, expiry) and an HMAC-SHA256 under the server secret. The STS
//! AccessKeySecret is derived from the server secret and the STS id, so any node holding the server
//! secret can check a signature made with it. What a token cannot carry (revocation) is enforced by the
//! caller against the revocation set and, for writes that touch the catalogue, in the catalogue.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use vodup_proto::Secret;
use vodup_proto::mac::{constant_time_eq, hmac_sha256};
use vodup_proto::timestamp::{from_unix_seconds, unix_seconds};

/// The prefix of every STS AccessKeyId, as in Alibaba's STS.
pub const STS_ID_PREFIX: &str = "STS.";
/// The prefix of every token (Alibaba's tokens start with `CAIS` too; clients treat it as opaque).
const TOKEN_PREFIX: &str = "CAIS";
const TOKEN_VERSION: u8 = 1;

/// What a token grants: writes to one object (and, for a playlist, every key under its prefix) of one
/// media item, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsClaims {
    /// Format version.
    #[serde(rename = "v")]
    pub version: u8,
    /// The STS AccessKeyId (`STS.…`).
    #[serde(rename = "id")]
    pub sts_id: String,
    /// The long-lived key that asked for it; revoking that key revokes this credential.
    #[serde(rename = "ak")]
    pub issuing_key_id: String,
    /// The media item; deleting it revokes this credential.
    #[serde(rename = "m")]
    pub media_id: String,
    /// The bucket.
    #[serde(rename = "b")]
    pub bucket: String,
    /// The object key (`UploadAddress.FileName`).
    #[serde(rename = "k")]
    pub key: String,
    /// For a `.m3u8` playlist, `ObjectPrefix`: every key under it is in scope too.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// Minted by RefreshUploadVideo for a `Normal` video: it may overwrite the video's source (the media
    /// stays `Normal` meanwhile), where a plain credential only writes media still `Uploading`.
    #[serde(rename = "o", default, skip_serializing_if = "std::ops::Not::not")]
    pub overwrite: bool,
}

impl StsClaims {
    /// Whether `bucket`/`key` is in scope.
    pub fn allows(&self, bucket: &str, key: &str) -> bool {
        bucket == self.bucket
            && (key == self.key
                || self.prefix.as_deref().is_some_and(|p| !p.is_empty() && key.starts_with(p)))
    }

    /// Whether the credential has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        unix_seconds(now) >= self.expires_at
    }

    /// The expiry instant.
    pub fn expiry(&self) -> SystemTime {
        from_unix_seconds(self.expires_at)
    }
}

/// A minted credential, as it goes into UploadAuth.
#[derive(Debug, Clone)]
pub struct IssuedSts {
    /// `STS.…`.
    pub access_key_id: String,
    /// The derived secret.
    pub access_key_secret: Secret,
    /// The token.
    pub security_token: Secret,
    /// The claims inside the token.
    pub claims: StsClaims,
}

/// Why a token was refused. Expiry is checked separately ([`StsClaims::is_expired`]) because it has its
/// own wire error (`SecurityTokenExpired`) and comes later in the check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// Not a token of this service, tampered with, or not matching the AccessKeyId it came with.
    #[error("invalid security token: {0}")]
    Invalid(&'static str),
}

/// Mints and verifies tokens with the server secret, and derives the presign secret from it.
#[derive(Clone)]
pub struct StsAuthority {
    token_key: [u8; 32],
    secret_key: [u8; 32],
    presign_key: [u8; 32],
    upload_key: [u8; 32],
}

impl std::fmt::Debug for StsAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StsAuthority(******)")
    }
}

impl StsAuthority {
    /// An authority over `server_secret` (the `sts_secret` setting, shared by every node). Separate keys
    /// are derived for token MACs and for STS secrets, so one can never stand in for the other.
    pub fn new(server_secret: &Secret) -> Self {
        let root = server_secret.expose().as_bytes();
        Self {
            token_key: hmac_sha256(root, b"vodup sts token mac v1"),
            secret_key: hmac_sha256(root, b"vodup sts secret v1"),
            presign_key: hmac_sha256(root, b"vodup presign secret v1"),
            upload_key: hmac_sha256(root, b"vodup upload id v1"),
        }
    }

    /// The secret of the internal presign key (see `presign`), derived like the STS secrets.
    pub fn presign_secret(&self) -> Secret {
        Secret::new(URL_SAFE_NO_PAD.encode(self.presign_key))
    }

    /// Mints a credential for `claims`; its `sts_id` and `version` are chosen here, whatever they were.
    pub fn mint(&self, claims: StsClaims) -> IssuedSts {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::rng();
        let suffix: String =
            (0..24).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
        let claims =
            StsClaims { version: TOKEN_VERSION, sts_id: format!("{STS_ID_PREFIX}{suffix}"), ..claims };
        let payload = serde_json::to_vec(&claims).expect("claims always serialize");
        let mac = hmac_sha256(&self.token_key, &payload);
        let token =
            format!("{TOKEN_PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(mac));
        IssuedSts {
            access_key_id: claims.sts_id.clone(),
            access_key_secret: self.secret_for(&claims.sts_id),
            security_token: Secret::new(token),
            claims,
        }
    }

    /// A new multipart upload id for `bucket`/`key`: 32 upper-case hex characters like OSS's, half random
    /// and half a MAC over the random half and the key. UploadPart can thus tell, without a database
    /// lookup, that an upload id was issued for the key it is used with.
    pub fn new_upload_id(&self, bucket: &str, key: &str) -> String {
        let random: [u8; 8] = rand::rng().random();
        let mac = self.upload_mac(&random, bucket, key);
        format!("{}{}", hex::encode_upper(random), hex::encode_upper(&mac[..8]))
    }

    /// Whether `upload_id` was issued for `bucket`/`key` by [`Self::new_upload_id`].
    pub fn upload_id_matches(&self, upload_id: &str, bucket: &str, key: &str) -> bool {
        if upload_id.len() != 32 || upload_id.bytes().any(|b| b.is_ascii_lowercase()) {
            return false;
        }
        let Ok(bytes) = hex::decode(upload_id) else { return false };
        let mac = self.upload_mac(&bytes[..8], bucket, key);
        constant_time_eq(&bytes[8..], &mac[..8])
    }

    fn upload_mac(&self, random: &[u8], bucket: &str, key: &str) -> [u8; 32] {
        let mut data = Vec::with_capacity(random.len() + bucket.len() + key.len() + 1);
        data.extend_from_slice(random);
        data.extend_from_slice(bucket.as_bytes());
        data.push(b'/');
        data.extend_from_slice(key.as_bytes());
        hmac_sha256(&self.upload_key, &data)
    }

    /// The secret of an STS AccessKeyId (derived, never stored).
    pub fn secret_for(&self, sts_id: &str) -> Secret {
        Secret::new(URL_SAFE_NO_PAD.encode(hmac_sha256(&self.secret_key, sts_id.as_bytes())))
    }

    /// Checks the token's MAC and that it belongs to `access_key_id`; returns its claims. Does not look at
    /// expiry or revocation.
    pub fn verify(&self, access_key_id: &str, token: &str) -> Result<StsClaims, StsError> {
        let body = token.strip_prefix(TOKEN_PREFIX).ok_or(StsError::Invalid("unknown token format"))?;
        let (payload, mac) = body.split_once('.').ok_or(StsError::Invalid("unknown token format"))?;
        let payload =
            URL_SAFE_NO_PAD.decode(payload).map_err(|_| StsError::Invalid("token is not Base64"))?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| StsError::Invalid("token is not Base64"))?;
        if !constant_time_eq(&mac, &hmac_sha256(&self.token_key, &payload)) {
            return Err(StsError::Invalid("token signature does not match"));
        }
        let claims: StsClaims =
            serde_json::from_slice(&payload).map_err(|_| StsError::Invalid("token claims are unreadable"))?;
        if claims.version != TOKEN_VERSION {
            return Err(StsError::Invalid("unsupported token version"));
        }
        if claims.sts_id != access_key_id {
            return Err(StsError::Invalid("token belongs to another AccessKeyId"));
        }
        Ok(claims)
    }
}

/// Whether an AccessKeyId names an STS credential.
pub fn is_sts_id(access_key_id: &str) -> bool {
    access_key_id.starts_with(STS_ID_PREFIX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn authority() -> StsAuthority {
        StsAuthority::new(&Secret::new("server secret for tests"))
    }

    fn mint(prefix: Option<&str>) -> IssuedSts {
        let expiry = from_unix_seconds(2_000_000_000);
        authority().mint(StsClaims {
            version: 0,
            sts_id: String::new(),
            issuing_key_id: "LTAIkey".into(),
            media_id: "0123abcd".into(),
            bucket: "outin-b".into(),
            key: "sv/a/a.m3u8".into(),
            prefix: prefix.map(str::to_owned),
            expires_at: unix_seconds(expiry),
            overwrite: false,
        })
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_scope() {
        let issued = mint(Some("sv/a/"));
        assert!(is_sts_id(&issued.access_key_id));
        let claims = authority().verify(&issued.access_key_id, issued.security_token.expose()).unwrap();
        assert_eq!(claims, issued.claims);
        assert!(claims.allows("outin-b", "sv/a/a.m3u8"));
        assert!(claims.allows("outin-b", "sv/a/seg_000.ts"));
        assert!(!claims.allows("outin-b", "sv/b/x.ts"));
        assert!(!claims.allows("other", "sv/a/a.m3u8"));
        assert_eq!(authority().secret_for(&issued.access_key_id), issued.access_key_secret);
    }

    #[test]
    fn without_prefix_only_the_key_is_in_scope() {
        let claims = mint(None).claims;
        assert!(claims.allows("outin-b", "sv/a/a.m3u8"));
        assert!(!claims.allows("outin-b", "sv/a/a.m3u8x"));
        assert!(!claims.allows("outin-b", "sv/a/seg.ts"));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let issued = mint(None);
        let token = issued.security_token.expose();
        // Flip each character of the token in turn: every variant must be refused.
        for i in 0..token.len() {
            let mut bytes = token.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let tampered = String::from_utf8_lossy(&bytes);
            assert!(authority().verify(&issued.access_key_id, &tampered).is_err(), "flip at {i}");
        }
        assert!(authority().verify("STS.other", token).is_err());
        let other = StsAuthority::new(&Secret::new("another server"));
        assert!(other.verify(&issued.access_key_id, token).is_err());
        assert_ne!(other.secret_for(&issued.access_key_id), issued.access_key_secret);
    }

    #[test]
    fn upload_ids_are_bound_to_their_key() {
        let a = authority();
        let id = a.new_upload_id("b", "sv/x.mp4");
        assert_eq!(id.len(), 32);
        assert!(a.upload_id_matches(&id, "b", "sv/x.mp4"));
        assert!(!a.upload_id_matches(&id, "b", "sv/y.mp4"));
        assert!(!a.upload_id_matches(&id, "c", "sv/x.mp4"));
        assert!(!a.upload_id_matches(&id.to_ascii_lowercase(), "b", "sv/x.mp4"));
        assert!(!a.upload_id_matches("not hex", "b", "sv/x.mp4"));
        assert_ne!(id, a.new_upload_id("b", "sv/x.mp4"));
    }

    #[test]
    fn expiry_is_a_claim() {
        let claims = mint(None).claims;
        assert!(!claims.is_expired(from_unix_seconds(1_999_999_999)));
        assert!(claims.is_expired(from_unix_seconds(2_000_000_000)));
        assert_eq!(claims.expiry() + Duration::from_secs(1), from_unix_seconds(2_000_000_001));
    }
}
