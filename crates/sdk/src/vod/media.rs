//! What the caller says about the media being uploaded (title, tags, category…), per media type, and
//! the parameters each Create* call sends. Limits are checked here against the rules in vod-api.md
//! §5.1-5.4 (shared with the service through `vodup_proto::vod::media`), so a 200-byte title fails
//! before any request instead of after the source was read.

use vodup_proto::vod::media::{
    self as rules, IMAGE_EXTENSIONS, MAX_DESCRIPTION_BYTES, MAX_TAG_CHARS, MAX_TAGS, MAX_TITLE_BYTES,
    VIDEO_EXTENSIONS,
};

use crate::error::{Error, Result};

/// The three media types VOD accepts uploads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// A video or audio file (also an M3U8 playlist): `VideoId`.
    Video,
    /// An image: `ImageId`.
    Image,
    /// A watermark, subtitle or material: `MediaId`.
    Attached,
}

impl MediaKind {
    /// `video`, `image` or `attached`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Image => "image",
            Self::Attached => "attached",
        }
    }

    /// The name of the id field on the wire: `VideoId`, `ImageId`, `MediaId`.
    pub fn id_field(self) -> &'static str {
        match self {
            Self::Video => "VideoId",
            Self::Image => "ImageId",
            Self::Attached => "MediaId",
        }
    }
}

/// Fields every media type has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonMeta {
    /// Title (≤128 UTF-8 bytes). Videos default to the source's file name.
    pub title: Option<String>,
    /// Description (≤1024 bytes).
    pub description: Option<String>,
    /// Tags (≤16, each ≤32 characters).
    pub tags: Vec<String>,
    /// Storage location (`bucket.endpoint-host`).
    pub storage_location: Option<String>,
    /// Application id.
    pub app_id: Option<String>,
    /// UserData JSON object (callbacks, `Extend`).
    pub user_data: Option<String>,
}

/// CreateUploadVideo's optional parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoMeta {
    /// Title, description, tags…
    pub common: CommonMeta,
    /// Category id.
    pub cate_id: Option<i64>,
    /// Cover image URL.
    pub cover_url: Option<String>,
    /// Transcoding template group.
    pub template_group_id: Option<String>,
    /// Workflow (wins over the template group).
    pub workflow_id: Option<String>,
    /// The FileName sent, when the source's own name is not the right one (stdin, a URL without a name).
    pub file_name: Option<String>,
    /// ReferenceId: 6 to 64 of `[A-Za-z0-9_-]`, unique per account. VOD refuses a second video with the
    /// same one, and finds a video by it (GetVideoInfo, DeleteVideo), which is how a batch re-run finds
    /// a video an interrupted run created.
    pub reference_id: Option<String>,
}

/// CreateUploadImage's optional parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageMeta {
    /// Title, description, tags…
    pub common: CommonMeta,
    /// `default` (the default) or `cover`.
    pub image_type: Option<String>,
    /// Category id.
    pub cate_id: Option<i64>,
    /// The original file name, when the source's own name is not the right one.
    pub file_name: Option<String>,
}

/// CreateUploadAttachedMedia's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachedMeta {
    /// Title, description, tags…
    pub common: CommonMeta,
    /// `watermark`, `subtitle` or `material` (required).
    pub business_type: String,
    /// Up to 5 category ids.
    pub cate_ids: Vec<i64>,
    /// The FileName sent, when the source's own name is not the right one.
    pub file_name: Option<String>,
}

fn check_common(common: &CommonMeta) -> Result<()> {
    if let Some(title) = &common.title {
        if title.len() > MAX_TITLE_BYTES {
            return Err(Error::invalid_input(format!(
                "the title is {} bytes long; VOD allows at most {MAX_TITLE_BYTES} UTF-8 bytes",
                title.len()
            ))
            .with_hint("shorten --title"));
        }
        if title.trim().is_empty() {
            return Err(Error::invalid_input("the title is empty").with_hint("give a non-empty --title"));
        }
    }
    if let Some(description) = &common.description
        && description.len() > MAX_DESCRIPTION_BYTES
    {
        return Err(Error::invalid_input(format!(
            "the description is {} bytes long; VOD allows at most {MAX_DESCRIPTION_BYTES}",
            description.len()
        ))
        .with_hint("shorten --description"));
    }
    if common.tags.len() > MAX_TAGS {
        return Err(Error::invalid_input(format!(
            "{} tags given; VOD allows at most {MAX_TAGS}",
            common.tags.len()
        ))
        .with_hint("drop some --tags"));
    }
    if let Some(tag) = common.tags.iter().find(|t| t.chars().count() > MAX_TAG_CHARS || t.contains(',')) {
        return Err(Error::invalid_input(format!(
            "tag {tag:?} is too long or contains a comma (at most {MAX_TAG_CHARS} characters)"
        ))
        .with_hint("shorten the tag"));
    }
    if let Some(user_data) = &common.user_data {
        let parsed: serde_json::Value = serde_json::from_str(user_data).map_err(|e| {
            Error::invalid_input(format!("--user-data is not JSON: {e}")).with_hint("give a JSON object")
        })?;
        if !parsed.is_object() {
            return Err(Error::invalid_input("--user-data must be a JSON object").with_hint("wrap it in {…}"));
        }
    }
    Ok(())
}

fn push_common(params: &mut Vec<(String, String)>, common: &CommonMeta) {
    let mut push = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            params.push((name.to_owned(), value.clone()));
        }
    };
    push("Description", &common.description);
    push("StorageLocation", &common.storage_location);
    push("AppId", &common.app_id);
    push("UserData", &common.user_data);
    if !common.tags.is_empty() {
        params.push(("Tags".to_owned(), common.tags.join(",")));
    }
}

/// The extension of `file_name` if `allowed` has it, else a clear error naming the choices.
fn extension_in(file_name: &str, allowed: &[&str], what: &str) -> Result<String> {
    match rules::extension_of(file_name) {
        Some(ext) if allowed.contains(&ext.as_str()) => Ok(ext),
        Some(ext) => Err(Error::invalid_input(format!(
            "{file_name:?} has extension .{ext}, which VOD does not accept for {what}"
        ))
        .with_hint(format!("accepted: {}", allowed.join(" ")))),
        None => Err(Error::invalid_input(format!("{file_name:?} has no extension"))
            .with_hint("rename the file or give --file-name NAME.EXT")),
    }
}

/// The title a file gets when none is given: its base name, truncated to 128 bytes on a char boundary
/// (voduploadsdk does the same).
pub fn default_title(file_name: &str) -> String {
    let without_query = file_name.split(['?', '#']).next().unwrap_or(file_name);
    let base = without_query.rsplit(['/', '\\']).next().unwrap_or(without_query);
    let base = if base.is_empty() { "untitled" } else { base };
    let mut end = base.len().min(MAX_TITLE_BYTES);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base[..end].to_owned()
}

impl VideoMeta {
    /// Checks the metadata and the FileName, and returns CreateUploadVideo's parameters.
    pub fn params(&self, file_name: &str, file_size: Option<u64>) -> Result<Vec<(String, String)>> {
        check_common(&self.common)?;
        extension_in(file_name, VIDEO_EXTENSIONS, "videos")?;
        let title = self.common.title.clone().unwrap_or_else(|| default_title(file_name));
        let mut params = vec![("Title".to_owned(), title), ("FileName".to_owned(), file_name.to_owned())];
        if let Some(size) = file_size {
            params.push(("FileSize".to_owned(), size.to_string()));
        }
        push_common(&mut params, &self.common);
        let mut push = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push((name.to_owned(), value));
            }
        };
        push("CoverURL", self.cover_url.clone());
        push("CateId", self.cate_id.map(|c| c.to_string()));
        push("TemplateGroupId", self.template_group_id.clone());
        push("WorkflowId", self.workflow_id.clone());
        if let Some(reference_id) = &self.reference_id {
            if !is_reference_id(reference_id) {
                return Err(Error::invalid_input(format!("ReferenceId {reference_id:?} is not valid"))
                    .with_hint("use 6 to 64 letters, digits, '_' or '-'"));
            }
            push("ReferenceId", Some(reference_id.clone()));
        }
        Ok(params)
    }
}

impl ImageMeta {
    /// Checks the metadata and the file's extension, and returns CreateUploadImage's parameters.
    pub fn params(&self, file_name: &str) -> Result<Vec<(String, String)>> {
        check_common(&self.common)?;
        let image_type = self.image_type.clone().unwrap_or_else(|| "default".to_owned());
        if !matches!(image_type.as_str(), "default" | "cover") {
            return Err(Error::invalid_input(format!("image type {image_type:?} is not known"))
                .with_hint("use --image-type default or cover"));
        }
        let ext = extension_in(file_name, IMAGE_EXTENSIONS, "images")?;
        let mut params = vec![("ImageType".to_owned(), image_type), ("ImageExt".to_owned(), ext)];
        params.push((
            "Title".to_owned(),
            self.common.title.clone().unwrap_or_else(|| default_title(file_name)),
        ));
        params.push(("OriginalFileName".to_owned(), file_name.to_owned()));
        push_common(&mut params, &self.common);
        if let Some(cate_id) = self.cate_id {
            params.push(("CateId".to_owned(), cate_id.to_string()));
        }
        Ok(params)
    }
}

impl AttachedMeta {
    /// Checks the metadata, the business type and the file's extension, and returns
    /// CreateUploadAttachedMedia's parameters.
    pub fn params(&self, file_name: &str, file_size: Option<u64>) -> Result<Vec<(String, String)>> {
        check_common(&self.common)?;
        let Some(allowed) = rules::attached_extensions(&self.business_type) else {
            return Err(Error::invalid_input(format!("business type {:?} is not known", self.business_type))
                .with_hint(format!("use --business-type {}", rules::BUSINESS_TYPES.join("|"))));
        };
        let ext = extension_in(file_name, allowed, &format!("{}s", self.business_type))?;
        if self.cate_ids.len() > 5 {
            return Err(Error::invalid_input("at most 5 category ids").with_hint("drop some --cate-id"));
        }
        let mut params = vec![
            ("BusinessType".to_owned(), self.business_type.clone()),
            ("MediaExt".to_owned(), ext),
            ("Title".to_owned(), self.common.title.clone().unwrap_or_else(|| default_title(file_name))),
            ("FileName".to_owned(), file_name.to_owned()),
        ];
        if let Some(size) = file_size {
            params.push(("FileSize".to_owned(), size.to_string()));
        }
        push_common(&mut params, &self.common);
        if !self.cate_ids.is_empty() {
            let ids: Vec<String> = self.cate_ids.iter().map(ToString::to_string).collect();
            params.push(("CateIds".to_owned(), ids.join(",")));
        }
        Ok(params)
    }
}

/// Whether `id` is a valid ReferenceId: 6 to 64 of `[A-Za-z0-9_-]`.
pub fn is_reference_id(id: &str) -> bool {
    (6..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_title_and_bad_extension_fail_before_any_request() {
        let meta = VideoMeta {
            common: CommonMeta { title: Some("é".repeat(65)), ..CommonMeta::default() },
            ..VideoMeta::default()
        };
        let error = meta.params("a.mp4", None).unwrap_err();
        assert!(error.to_string().contains("130 bytes"), "{error}");
        let error = VideoMeta::default().params("/x/a.exe", None).unwrap_err();
        assert!(error.to_string().contains(".exe"), "{error}");
        assert!(error.hint().contains("mp4"));
        let error = AttachedMeta { business_type: "subtitle".into(), ..AttachedMeta::default() }
            .params("a.png", None)
            .unwrap_err();
        assert!(error.to_string().contains("subtitles"), "{error}");
    }

    #[test]
    fn video_params_default_the_title_to_the_base_name() {
        let params = VideoMeta::default().params("/data/clips/a b.mp4", Some(7)).unwrap();
        assert_eq!(params[0], ("Title".into(), "a b.mp4".into()));
        assert_eq!(params[1], ("FileName".into(), "/data/clips/a b.mp4".into()));
        assert_eq!(params[2], ("FileSize".into(), "7".into()));
        assert_eq!(default_title(&"ü".repeat(100)).len(), 128);
    }
}
