//! Parameter rules shared by the Create*/Update* actions (vod-api.md §5.1-5.4, §5.16): lengths in UTF-8
//! bytes (what voduploadsdk truncates to), no emoji in titles, tag counts, UserData as a JSON object,
//! ReferenceId's alphabet, StorageLocation naming this service's bucket, and the extensions each media
//! type accepts.

use vodup_proto::vod::VodErrorCode;

use super::error::ApiError;
use super::request::Params;
use crate::site::Site;

pub use vodup_proto::vod::media::{IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, attached_extensions, extension_of};

/// The extension of `file_name` if it is one of `allowed`, else `InvalidFileName.Extension`.
pub fn allowed_extension(file_name: &str, allowed: &[&str]) -> Result<String, ApiError> {
    match extension_of(file_name) {
        Some(ext) if allowed.contains(&ext.as_str()) => Ok(ext),
        _ => Err(ApiError::new(
            VodErrorCode::InvalidFileNameExtension,
            "The specified FileName's extension is illegal.",
        )),
    }
}

fn is_emoji(c: char) -> bool {
    matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xFE0F | 0xE0020..=0xE007F)
}

fn length_exceeded(name: &str, max: usize) -> ApiError {
    ApiError::new(
        VodErrorCode::LengthExceededMax,
        format!("The specified {name} length has exceeded {max} bytes."),
    )
}

/// A title: at most 128 UTF-8 bytes, no emoji.
pub fn title(params: &Params, name: &str, required: bool) -> Result<String, ApiError> {
    let value = if required { params.required(name)? } else { params.opt(name).unwrap_or("") };
    if value.len() > 128 {
        return Err(length_exceeded(name, 128));
    }
    if value.chars().any(is_emoji) {
        return Err(ApiError::new(
            VodErrorCode::IllegalCharacters,
            format!("The specified {name} contains illegal characters (emoji)."),
        ));
    }
    Ok(value.to_owned())
}

/// A description: at most 1024 UTF-8 bytes, no emoji.
pub fn description(params: &Params) -> Result<String, ApiError> {
    let value = params.opt("Description").unwrap_or("");
    if value.len() > 1024 {
        return Err(length_exceeded("Description", 1024));
    }
    if value.chars().any(is_emoji) {
        return Err(ApiError::new(
            VodErrorCode::IllegalCharacters,
            "The specified Description contains illegal characters (emoji).",
        ));
    }
    Ok(value.to_owned())
}

/// Tags: comma-separated, at most 16, each at most 32 bytes; normalized to `a,b`.
pub fn tags(params: &Params) -> Result<String, ApiError> {
    let Some(value) = params.opt("Tags") else { return Ok(String::new()) };
    let tags: Vec<&str> = value.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    if tags.len() > 16 {
        return Err(ApiError::new(VodErrorCode::TagsExceededMax, "The specified Tags has exceeded 16 tags."));
    }
    if tags.iter().any(|t| t.len() > 32) {
        return Err(length_exceeded("Tag", 32));
    }
    if tags.iter().any(|t| t.chars().any(is_emoji)) {
        return Err(ApiError::new(
            VodErrorCode::IllegalCharacters,
            "The specified Tags contain illegal characters (emoji).",
        ));
    }
    Ok(tags.join(","))
}

/// UserData: a JSON object, kept as sent.
pub fn user_data(params: &Params) -> Result<String, ApiError> {
    let Some(value) = params.opt("UserData") else { return Ok(String::new()) };
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(value.to_owned()),
        _ => Err(ApiError::invalid("UserData", "must be a JSON object, e.g. {\"Extend\":{\"k\":\"v\"}}")),
    }
}

/// A per-upload callback URL in UserData must start with a configured prefix, so an API caller cannot
/// make the service POST to an address of its choosing (an internal one, say). An empty list refuses all.
pub fn callback_url(user_data: &str, allowed_prefixes: &[String]) -> Result<(), ApiError> {
    match crate::events::callback_url_of(user_data) {
        Some(url) if !crate::events::callback_allowed(&url, allowed_prefixes) => Err(ApiError::invalid(
            "UserData",
            format!(
                "MessageCallback.CallbackURL {url:?} is not allowed by this service; use a URL under one of the \
                 prefixes its operator allowed ([events] allowed_callback_prefixes: {}), or omit it to use the \
                 global callback",
                if allowed_prefixes.is_empty() {
                    "none configured".to_owned()
                } else {
                    allowed_prefixes.join(", ")
                }
            ),
        )),
        _ => Ok(()),
    }
}

/// ReferenceId: 6-64 characters of `A-Za-z0-9_-`.
pub fn reference_id(params: &Params) -> Result<String, ApiError> {
    let Some(value) = params.opt("ReferenceId") else { return Ok(String::new()) };
    let ok = (6..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid("ReferenceId", "must be 6-64 characters of A-Z a-z 0-9 _ -"))
    }
}

/// AppId: `app-` and digits; `app-1000000` by default.
pub fn app_id(params: &Params) -> Result<String, ApiError> {
    let Some(value) = params.opt("AppId") else { return Ok("app-1000000".to_owned()) };
    let ok = value
        .strip_prefix("app-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(value.to_owned()) } else { Err(ApiError::invalid("AppId", "must look like app-1000000")) }
}

/// StorageLocation: must name this service's bucket (its host, or the bare bucket name).
pub fn storage_location(params: &Params, site: &Site) -> Result<String, ApiError> {
    let expected = site.storage_location();
    match params.opt("StorageLocation") {
        None => Ok(expected),
        Some(value) if value == expected || value == site.bucket => Ok(expected),
        Some(value) => Err(ApiError::new(
            VodErrorCode::InvalidStorageNotFound,
            format!(
                "The specified StorageLocation {value:?} does not exist; this service stores into {expected}."
            ),
        )),
    }
}

/// A URL-ish parameter (CoverURL): at most 1024 bytes.
pub fn url(params: &Params, name: &str) -> Result<String, ApiError> {
    let value = params.opt(name).unwrap_or("");
    if value.len() > 1024 {
        return Err(length_exceeded(name, 1024));
    }
    Ok(value.to_owned())
}

/// An identifier-ish parameter (TemplateGroupId, WorkflowId): at most 64 bytes of visible ASCII.
pub fn short_id(params: &Params, name: &str) -> Result<String, ApiError> {
    let value = params.opt(name).unwrap_or("");
    if value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(name, "must be at most 64 visible ASCII characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn extensions_come_from_the_last_segment() {
        assert_eq!(extension_of("/data/x.y/a.MP4").as_deref(), Some("mp4"));
        assert_eq!(extension_of("https://h/v/a.m3u8?token=1.2").as_deref(), Some("m3u8"));
        assert_eq!(extension_of("/data/x.y/noext"), None);
        assert_eq!(extension_of("a."), None);
        assert!(allowed_extension("a.exe", VIDEO_EXTENSIONS).is_err());
        assert_eq!(allowed_extension("C:\\v\\a.flv", VIDEO_EXTENSIONS).unwrap(), "flv");
    }

    #[test]
    fn title_counts_bytes_and_refuses_emoji() {
        assert!(title(&params(&[("Title", &"测".repeat(42))]), "Title", true).is_ok()); // 126 bytes
        let err = title(&params(&[("Title", &"测".repeat(43))]), "Title", true).unwrap_err();
        assert_eq!(err.code, VodErrorCode::LengthExceededMax);
        let err = title(&params(&[("Title", "fun 🎬")]), "Title", true).unwrap_err();
        assert_eq!(err.code, VodErrorCode::IllegalCharacters);
        assert_eq!(title(&params(&[]), "Title", true).unwrap_err().code, VodErrorCode::MissingParameter);
    }

    #[test]
    fn tags_and_user_data() {
        assert_eq!(tags(&params(&[("Tags", " a, b ,,c")])).unwrap(), "a,b,c");
        let many = vec!["t"; 17].join(",");
        assert_eq!(tags(&params(&[("Tags", &many)])).unwrap_err().code, VodErrorCode::TagsExceededMax);
        assert!(user_data(&params(&[("UserData", "{\"Extend\":{}}")])).is_ok());
        assert!(user_data(&params(&[("UserData", "[1]")])).is_err());
        assert!(user_data(&params(&[("UserData", "{bad")])).is_err());
    }

    #[test]
    fn reference_ids_and_app_ids() {
        assert!(reference_id(&params(&[("ReferenceId", "abc_12-3")])).is_ok());
        assert!(reference_id(&params(&[("ReferenceId", "short")])).is_err());
        assert!(reference_id(&params(&[("ReferenceId", "has space")])).is_err());
        assert_eq!(app_id(&params(&[])).unwrap(), "app-1000000");
        assert!(app_id(&params(&[("AppId", "app-x")])).is_err());
    }

    #[test]
    fn storage_location_must_be_ours() {
        let site =
            Site { bucket: "outin-b".into(), endpoint: "http://127.0.0.1:9000".into(), region: "r".into() };
        assert_eq!(storage_location(&params(&[]), &site).unwrap(), "outin-b.127.0.0.1:9000");
        assert!(storage_location(&params(&[("StorageLocation", "outin-b")]), &site).is_ok());
        let err = storage_location(&params(&[("StorageLocation", "other.oss.com")]), &site).unwrap_err();
        assert_eq!(err.code, VodErrorCode::InvalidStorageNotFound);
    }
}
