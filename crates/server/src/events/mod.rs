//! Upload-complete events (vod-api.md §6): FileUploadComplete, ImageUploadComplete and
//! AttachedMediaUploadComplete, built when a media turns `Normal` and written to the outbox in the same
//! transaction as that status change, then POSTed by [`delivery`] at least once.
//!
//! This module owns the pure parts: the payload of each event type, where it goes (the upload's own
//! `UserData.MessageCallback.CallbackURL`, else the configured global URL), the allow-list that keeps API
//! callers from aiming the service at arbitrary addresses, and the `X-VOD-SIGNATURE` of a delivery.

pub mod delivery;

use std::time::SystemTime;

use serde_json::{Value, json};
use vodup_proto::timestamp::iso8601;

use crate::config::EventDelivery;
pub use crate::meta::model::NewEvent;
use crate::meta::model::{Media, MediaKind};

/// Header carrying the event id, for receivers to drop duplicates (delivery is at least once).
pub const EVENT_ID_HEADER: &str = "x-vod-event-id";
/// Header of the Unix time a delivery was signed at.
pub const TIMESTAMP_HEADER: &str = "x-vod-timestamp";
/// Header of the delivery's signature.
pub const SIGNATURE_HEADER: &str = "x-vod-signature";

/// The per-upload callback URL in a UserData JSON text (`MessageCallback` as an object or as a JSON
/// string; vod-api.md §5.12 shows both), if any.
pub fn callback_url_of(user_data: &str) -> Option<String> {
    let data: Value = serde_json::from_str(user_data).ok()?;
    let callback = match &data["MessageCallback"] {
        Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    let url = callback["CallbackURL"].as_str()?.trim();
    (!url.is_empty()).then(|| url.to_owned())
}

/// `Extend` of a UserData text, always as a JSON string (receivers get it that way from Alibaba).
fn extend_of(user_data: &str) -> Option<String> {
    let data: Value = serde_json::from_str(user_data).ok()?;
    match &data["Extend"] {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether a per-upload callback URL may be used: http(s), and starting with an allowed prefix.
pub fn callback_allowed(url: &str, prefixes: &[String]) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && prefixes.iter().any(|prefix| !prefix.is_empty() && url.starts_with(prefix.as_str()))
}

/// The event of a media that just turned `Normal`, or `None` when it has nowhere to go.
pub fn upload_complete(
    media: &Media,
    file_url: &str,
    settings: &EventDelivery,
    at: SystemTime,
) -> Option<NewEvent> {
    let own = callback_url_of(&media.new.user_data);
    if own.is_none() && settings.callback_url.is_none() {
        return None;
    }
    let size = media.size.unwrap_or(0);
    let time = iso8601(at);
    let (event_type, mut payload) = match media.new.kind {
        MediaKind::Video => (
            "FileUploadComplete",
            json!({"EventTime": time, "EventType": "FileUploadComplete", "VideoId": media.new.id,
                   "Size": size, "FileUrl": file_url, "Status": "success"}),
        ),
        MediaKind::Image => (
            "ImageUploadComplete",
            json!({"EventTime": time, "EventType": "ImageUploadComplete", "ImageId": media.new.id,
                   "Size": size, "FileURL": file_url, "Status": "success", "AppId": media.new.app_id}),
        ),
        MediaKind::Attached => (
            "AttachedMediaUploadComplete",
            json!({"EventTime": time, "EventType": "AttachedMediaUploadComplete",
                   "AttachedMediaId": media.new.id, "Size": size, "FileURL": file_url, "Status": "success"}),
        ),
    };
    if let Some(extend) = extend_of(&media.new.user_data) {
        payload["Extend"] = Value::String(extend);
    }
    Some(NewEvent {
        id: format!("{:032x}", rand::random::<u128>()),
        media_id: media.new.id.clone(),
        event_type: event_type.to_owned(),
        payload: payload.to_string(),
        callback_url: own,
        created_at: at,
    })
}

/// `X-VOD-SIGNATURE`: lower-case hex MD5 of `url|timestamp|auth_key`.
pub fn signature(url: &str, timestamp: u64, auth_key: &str) -> String {
    hex::encode(vodup_proto::mac::md5(format!("{url}|{timestamp}|{auth_key}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_examples() {
        assert_eq!(
            signature("https://www.example.com/your/callback", 1_519_375_990, "test123"),
            "c72b60894140fa98920f1279219b7ed4"
        );
        assert_eq!(
            signature("http://cb.example.com/vod/callback", 1_700_000_000, "FakeAuthKey123"),
            "507423fa6fd53d71ffc187c351e719ba"
        );
    }

    #[test]
    fn callback_urls_come_from_user_data_in_both_forms() {
        let object = r#"{"MessageCallback":{"CallbackURL":"http://a/cb","CallbackType":"http"}}"#;
        assert_eq!(callback_url_of(object).as_deref(), Some("http://a/cb"));
        let string = r#"{"MessageCallback":"{\"CallbackURL\":\"http://b/cb\"}"}"#;
        assert_eq!(callback_url_of(string).as_deref(), Some("http://b/cb"));
        assert_eq!(callback_url_of(r#"{"Extend":{"a":1}}"#), None);
        assert_eq!(extend_of(r#"{"Extend":{"a":1}}"#).as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn the_allow_list_is_prefixes_and_empty_allows_none() {
        let prefixes = vec!["https://hooks.example.com/vod/".to_owned()];
        assert!(callback_allowed("https://hooks.example.com/vod/a", &prefixes));
        assert!(!callback_allowed("https://hooks.example.com.evil/vod/a", &prefixes));
        assert!(!callback_allowed("http://169.254.169.254/", &prefixes));
        assert!(!callback_allowed("https://hooks.example.com/vod/a", &[]));
        assert!(!callback_allowed("file:///etc/passwd", &["file:".to_owned()]));
    }
}
