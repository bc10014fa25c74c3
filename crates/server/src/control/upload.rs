//! The actions that hand out upload addresses and credentials: CreateUploadVideo, RefreshUploadVideo,
//! CreateUploadImage and CreateUploadAttachedMedia (vod-api.md §4, §5.1-5.4).
//!
//! Each creates (or finds) the media item in `Uploading`, assigns its object key in the real layouts
//! (`sv/<id>/<id>.<ext>`, `image/<type>/<ID>-6-2.<ext>`), and mints a credential scoped to that key (and,
//! for a playlist, to its `ObjectPrefix`).

use rand::RngExt as _;
use serde_json::{Value, json};
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};
use vodup_proto::vod::VodErrorCode;

use super::error::ApiError;
use super::request::Call;
use super::validate;
use crate::meta::{Media, MediaKind, MediaStatus, NewMedia};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::sts::StsClaims;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// A media id: 32 lowercase hex characters.
fn new_media_id() -> String {
    random_hex(16)
}

/// `sv/<8hex>-<11hex>/<8hex>-<11hex>.<ext>`, the 11 hex digits being the issue time in epoch ms.
fn video_key(call: &Call, ext: &str) -> (String, String) {
    let millis = call.now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let stem = format!("{}-{millis:011x}", random_hex(4));
    (format!("sv/{stem}/{stem}.{ext}"), format!("sv/{stem}/"))
}

fn blank_media(call: &Call, kind: MediaKind, id: String, state: &AppState) -> NewMedia {
    NewMedia {
        id,
        kind,
        title: String::new(),
        description: String::new(),
        file_name: String::new(),
        file_ext: String::new(),
        declared_size: None,
        cover_url: String::new(),
        cate_id: None,
        cate_ids: String::new(),
        tags: String::new(),
        template_group_id: String::new(),
        workflow_id: String::new(),
        storage_location: state.site.storage_location(),
        app_id: "app-1000000".into(),
        user_data: String::new(),
        reference_id: String::new(),
        image_type: String::new(),
        business_type: String::new(),
        bucket: state.site.bucket.clone(),
        object_key: String::new(),
        object_prefix: None,
        issuing_key_id: call.key_id.clone(),
        created_at: call.now,
    }
}

/// The parameters every Create* action shares: Description, Tags, StorageLocation, AppId, UserData.
fn shared_fields(call: &Call, state: &AppState, media: &mut NewMedia) -> Result<(), ApiError> {
    let p = &call.params;
    media.description = validate::description(p)?;
    media.tags = validate::tags(p)?;
    media.storage_location = validate::storage_location(p, &state.site)?;
    media.app_id = validate::app_id(p)?;
    media.user_data = validate::user_data(p)?;
    validate::callback_url(&media.user_data, &state.settings.events.allowed_callback_prefixes)?;
    Ok(())
}

/// Stores the media and mints its credential: `(UploadAddress, UploadAuth)` in Base64.
async fn create_and_issue(
    state: &AppState,
    call: &Call,
    media: &NewMedia,
) -> Result<(String, String), ApiError> {
    state.meta.create_media(media).await.map_err(|e| {
        if e.is_conflict() {
            ApiError::invalid("ReferenceId", "is already used by another video")
        } else {
            ApiError::internal(&call.request_id, &e)
        }
    })?;
    Ok(issue(state, call, media, false))
}

/// Mints the credential of `media`'s upload; `overwrite` lets it replace the source of a `Normal` video.
fn issue(state: &AppState, call: &Call, media: &NewMedia, overwrite: bool) -> (String, String) {
    let lifetime = state.settings.credential_lifetime;
    let sts = state.sts.mint(StsClaims {
        version: 0,
        sts_id: String::new(),
        issuing_key_id: call.key_id.clone(),
        media_id: media.id.clone(),
        bucket: media.bucket.clone(),
        key: media.object_key.clone(),
        prefix: media.object_prefix.clone(),
        expires_at: vodup_proto::timestamp::unix_seconds_up(call.now + lifetime),
        overwrite,
    });
    let address = UploadAddress {
        endpoint: state.site.endpoint.clone(),
        bucket: media.bucket.clone(),
        file_name: media.object_key.clone(),
        object_prefix: media.object_prefix.clone(),
    };
    let auth = UploadAuth::new(
        sts.access_key_id,
        sts.access_key_secret,
        sts.security_token,
        call.now,
        lifetime,
        state.site.region.clone(),
    );
    (address.encode(), auth.encode())
}

/// CreateUploadVideo.
pub async fn create_upload_video(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let title = validate::title(p, "Title", true)?;
    let file_name = p.required("FileName")?;
    let ext = validate::allowed_extension(file_name, validate::VIDEO_EXTENSIONS)?;
    let mut media = blank_media(call, MediaKind::Video, new_media_id(), state);
    let (key, prefix) = video_key(call, &ext);
    media.object_prefix = (ext == "m3u8").then_some(prefix);
    media.object_key = key;
    media.title = title;
    media.file_name = file_name.to_owned();
    media.file_ext = ext;
    media.declared_size = p.opt_u64("FileSize")?;
    media.cover_url = validate::url(p, "CoverURL")?;
    media.cate_id = p.opt_i64("CateId")?;
    media.template_group_id = validate::short_id(p, "TemplateGroupId")?;
    media.workflow_id = validate::short_id(p, "WorkflowId")?;
    media.reference_id = validate::reference_id(p)?;
    shared_fields(call, state, &mut media)?;
    let (address, auth) = create_and_issue(state, call, &media).await?;
    Ok(json!({ "VideoId": media.id, "UploadAddress": address, "UploadAuth": auth }))
}

/// RefreshUploadVideo: fresh credentials for the same object. For a video still `Uploading` they continue
/// its upload; for a `Normal` video they overwrite its source, as Alibaba's reference for the action
/// describes (the VideoId stays the same): the video stays `Normal` with its old source readable until the
/// new one is committed, which switches the key in one step, updates Size and the figures, and queues a
/// new FileUploadComplete event. A video that failed (`UploadFail`) gets none: its upload was abandoned.
pub async fn refresh_upload_video(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let media: Option<Media> = match (p.opt("VideoId"), p.opt("ReferenceId")) {
        (Some(id), _) => state.meta.get_media(id).await,
        (None, Some(reference)) => state.meta.get_media_by_reference(reference).await,
        (None, None) => return Err(ApiError::missing("VideoId")),
    }
    .map_err(|e| ApiError::internal(&call.request_id, &e))?;
    let media = media
        .filter(|m| m.new.kind == MediaKind::Video)
        .ok_or_else(|| ApiError::new(VodErrorCode::InvalidVideoNotFound, "The video does not exist."))?;
    let overwrite = match media.status {
        MediaStatus::Uploading => false,
        MediaStatus::Normal | MediaStatus::UploadSucc => true,
        MediaStatus::UploadFail => {
            return Err(ApiError::new(
                VodErrorCode::ForbiddenIllegalStatus,
                "The video's upload failed (UploadFail); create a new video with CreateUploadVideo.",
            ));
        }
    };
    let (address, auth) = issue(state, call, &media.new, overwrite);
    Metrics::add(&state.metrics.credential_refreshes, 1);
    Ok(json!({ "VideoId": media.new.id, "UploadAddress": address, "UploadAuth": auth }))
}

/// CreateUploadImage.
pub async fn create_upload_image(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let image_type = p.required("ImageType")?;
    if !matches!(image_type, "default" | "cover") {
        return Err(ApiError::invalid("ImageType", "must be default or cover"));
    }
    let ext = match p.opt("ImageExt") {
        Some(ext) => {
            let ext = ext.to_ascii_lowercase();
            if !validate::IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                return Err(ApiError::invalid("ImageExt", "must be one of png, jpg, jpeg, gif, heic, webp"));
            }
            ext
        }
        None => "png".to_owned(),
    };
    let mut media = blank_media(call, MediaKind::Image, new_media_id(), state);
    // The key carries the ImageId (upper case, as VOD writes it), so an ImageURL leads back to its image.
    media.object_key = format!("image/{image_type}/{}-6-2.{ext}", media.id.to_ascii_uppercase());
    media.image_type = image_type.to_owned();
    media.file_ext = ext;
    media.title = validate::title(p, "Title", false)?;
    media.file_name = p.opt("OriginalFileName").unwrap_or("").to_owned();
    media.cate_id = p.opt_i64("CateId")?;
    shared_fields(call, state, &mut media)?;
    let (address, auth) = create_and_issue(state, call, &media).await?;
    let url = state.site.object_url(&media.object_key);
    Ok(json!({
        "ImageId": media.id,
        "ImageURL": url,
        "FileURL": url,
        "UploadAddress": address,
        "UploadAuth": auth,
    }))
}

/// CreateUploadAttachedMedia.
pub async fn create_upload_attached_media(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let business_type = p.required("BusinessType")?;
    let allowed = validate::attached_extensions(business_type)
        .ok_or_else(|| ApiError::invalid("BusinessType", "must be watermark, subtitle or material"))?;
    let ext = match (p.opt("MediaExt"), p.opt("FileName")) {
        (Some(ext), _) => {
            let ext = ext.trim_start_matches('.').to_ascii_lowercase();
            if !allowed.contains(&ext.as_str()) {
                return Err(ApiError::new(
                    VodErrorCode::InvalidFileNameExtension,
                    format!(
                        "The specified MediaExt is illegal for {business_type}: use one of {}.",
                        allowed.join(", ")
                    ),
                ));
            }
            ext
        }
        (None, Some(file_name)) => validate::allowed_extension(file_name, allowed)?,
        (None, None) => return Err(ApiError::missing("MediaExt")),
    };
    let cate_ids = p.list("CateIds", 5, || ApiError::invalid("CateIds", "at most 5 categories"))?;
    let cate_ids_parsed = cate_ids
        .iter()
        .map(|c| c.parse::<i64>().map_err(|_| ApiError::invalid("CateIds", "must be integers")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut media = blank_media(call, MediaKind::Attached, new_media_id(), state);
    media.object_key = format!("attached/{business_type}/{}.{ext}", media.id.to_ascii_uppercase());
    media.business_type = business_type.to_owned();
    media.file_ext = ext;
    media.title = validate::title(p, "Title", false)?;
    media.file_name = p.opt("FileName").unwrap_or("").to_owned();
    media.declared_size = p.opt_u64("FileSize")?;
    media.cate_id = cate_ids_parsed.first().copied();
    media.cate_ids = cate_ids.join(",");
    shared_fields(call, state, &mut media)?;
    let (address, auth) = create_and_issue(state, call, &media).await?;
    let url = state.site.object_url(&media.object_key);
    Ok(json!({
        "MediaId": media.id,
        "MediaURL": url,
        "FileURL": url,
        "UploadAddress": address,
        "UploadAuth": auth,
    }))
}
