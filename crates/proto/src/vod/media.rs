//! What each media type accepts (vod-api.md §5.1-5.4): the extensions of videos, images and each
//! attached-media BusinessType, and the rule for reading an extension out of a FileName. The service
//! refuses anything else with `InvalidFileName.Extension`; the SDK checks the same lists before it sends
//! a request, so a wrong file fails at once with a clear message.

/// Video and audio extensions CreateUploadVideo accepts.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "ts", "3gp", "mpg", "mpeg", "mpe", "dat", "vob", "asf", "avi", "wmv", "flv", "f4v", "rm", "rmvb",
    "mov", "mkv", "m3u8", "dv", "gif", "m2t", "m4v", "mj2", "mjpeg", "mts", "ogg", "qt", "swf", "webm",
    "mp3", "wma", "wav", "aac", "ra", "m4a", "flac", "ape", "ac3", "amr", "caf", "acm",
];

/// Image extensions CreateUploadImage accepts.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "heic", "webp"];

/// The attached-media business types.
pub const BUSINESS_TYPES: &[&str] = &["watermark", "subtitle", "material"];

/// Extensions per attached-media BusinessType.
pub fn attached_extensions(business_type: &str) -> Option<&'static [&'static str]> {
    match business_type {
        "watermark" => Some(&["png", "gif", "apng", "mov"]),
        "subtitle" => Some(&["srt", "ass", "stl", "ttml", "vtt"]),
        "material" => Some(&["jpg", "gif", "png", "mp4", "mat", "zip", "apk"]),
        _ => None,
    }
}

/// The extension of a FileName: the text after the last `.` of the last path segment, lower-cased,
/// with any URL query or fragment dropped (voduploadsdk sends full paths and URLs).
pub fn extension_of(file_name: &str) -> Option<String> {
    let without_query = file_name.split(['?', '#']).next().unwrap_or(file_name);
    let segment = without_query.rsplit(['/', '\\']).next().unwrap_or(without_query);
    let (_, ext) = segment.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Title and Description limits in UTF-8 bytes.
pub const MAX_TITLE_BYTES: usize = 128;
/// See [`MAX_TITLE_BYTES`].
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// At most this many comma-separated tags…
pub const MAX_TAGS: usize = 16;
/// …each at most this many characters.
pub const MAX_TAG_CHARS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_comes_from_the_last_segment_without_query() {
        assert_eq!(extension_of("/data/x.y/a.MP4").as_deref(), Some("mp4"));
        assert_eq!(extension_of("https://h/p/v.m3u8?sig=a.b").as_deref(), Some("m3u8"));
        assert_eq!(extension_of("/data/x.y/noext"), None);
        assert_eq!(extension_of("trailing."), None);
    }
}
