//! The catalogue actions: read, update and delete videos, images and attached media, the mezzanine
//! (source file) with a presigned URL, and upload details (vod-api.md §5.7-5.20).
//!
//! Response shapes follow the official models exactly, including their inconsistencies: GetVideoInfo
//! wraps snapshots (`Snapshots.Snapshot`), GetVideoInfos does not, GetVideoList wraps the list
//! (`VideoList.Video`). Unknown or empty fields are left out rather than sent as null.

use std::time::Duration;

use serde_json::{Map, Value, json};
use vodup_proto::timestamp::iso8601;
use vodup_proto::vod::VodErrorCode;

use super::error::ApiError;
use super::request::Call;
use crate::meta::{Media, MediaKind, MediaStatus, MediaUpdate, VideoQuery};
use crate::state::AppState;

/// How many ids the batch actions take.
const MAX_IDS: usize = 20;
/// The longest AuthTimeout for a presigned URL (30 days, as VOD-managed buckets allow).
const MAX_AUTH_TIMEOUT: u64 = 2_592_000;

/// A JSON object builder that leaves out empty strings and `None`s.
struct Fields(Map<String, Value>);

impl Fields {
    fn new() -> Self {
        Self(Map::new())
    }
    fn text(mut self, name: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.insert(name.into(), Value::String(value.to_owned()));
        }
        self
    }
    fn value(mut self, name: &str, value: Option<Value>) -> Self {
        if let Some(value) = value {
            self.0.insert(name.into(), value);
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn video_fields(media: &Media) -> Fields {
    let m = &media.new;
    Fields::new()
        .text("VideoId", &m.id)
        .text("Title", &m.title)
        .text("Description", &m.description)
        .text("CoverURL", &m.cover_url)
        .text("Status", media.status.as_str())
        .text("CreationTime", &iso8601(m.created_at))
        .text("ModificationTime", &iso8601(media.modified_at))
        .value("Size", media.size.map(Value::from))
        .value("CateId", m.cate_id.map(Value::from))
        .text("Tags", &m.tags)
        .text("StorageLocation", &m.storage_location)
        .text("StorageClass", "Standard")
        .text("AppId", &m.app_id)
        .text("UserData", &m.user_data)
        .text("ReferenceId", &m.reference_id)
}

async fn find(state: &AppState, call: &Call, id: &str, kind: MediaKind) -> Result<Option<Media>, ApiError> {
    let media = state.meta.get_media(id).await.map_err(|e| ApiError::internal(&call.request_id, &e))?;
    Ok(media.filter(|m| m.new.kind == kind))
}

fn ids(call: &Call, name: &str, too_many: VodErrorCode) -> Result<Vec<String>, ApiError> {
    call.params
        .list(name, MAX_IDS, || ApiError::new(too_many, format!("{name} has more than {MAX_IDS} ids.")))
}

/// `AuthTimeout`, at most 30 days and never longer than the data plane accepts a V1 presigned URL
/// (`max_v1_presign_lifetime`), so every URL the service issues works for its whole life.
fn auth_timeout(state: &AppState, call: &Call) -> Result<Duration, ApiError> {
    let max = MAX_AUTH_TIMEOUT.min(state.settings.max_v1_presign_lifetime.as_secs()).max(1);
    let seconds = call.params.opt_u64("AuthTimeout")?.unwrap_or(3600.min(max));
    if !(1..=max).contains(&seconds) {
        return Err(ApiError::invalid("AuthTimeout", format!("must be 1..={max} seconds")));
    }
    Ok(Duration::from_secs(seconds))
}

fn output_type(call: &Call) -> Result<&'static str, ApiError> {
    match call.params.opt("OutputType") {
        None | Some("cdn") => Ok("cdn"),
        Some("oss") => Ok("oss"),
        Some(_) => Err(ApiError::invalid("OutputType", "must be oss or cdn")),
    }
}

/// A URL for the media's object: presigned for GET until `timeout` from now, since the bucket is
/// private (no CDN here, so `cdn` output gets the same URL).
fn presigned_url(state: &AppState, call: &Call, media: &Media, timeout: Duration) -> String {
    state.presigner.get_url(&state.site, &media.new.object_key, call.now + timeout)
}

/// GetVideoInfo.
pub async fn get_video_info(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let media = match (call.params.opt("VideoId"), call.params.opt("ReferenceId")) {
        (Some(id), _) => find(state, call, id, MediaKind::Video).await?,
        (None, Some(reference)) => state
            .meta
            .get_media_by_reference(reference)
            .await
            .map_err(|e| ApiError::internal(&call.request_id, &e))?
            .filter(|m| m.new.kind == MediaKind::Video),
        (None, None) => return Err(ApiError::missing("VideoId")),
    };
    let media = media
        .ok_or_else(|| ApiError::new(VodErrorCode::InvalidVideoNotFound, "The video does not exist."))?;
    let video = video_fields(&media)
        .text("TemplateGroupId", &media.new.template_group_id)
        .text("RegionId", &state.site.region)
        .text("DownloadSwitch", "on")
        .value("Snapshots", Some(json!({ "Snapshot": [] })))
        .done();
    Ok(json!({ "Video": video }))
}

/// GetVideoInfos.
pub async fn get_video_infos(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let video_ids = ids(call, "VideoIds", VodErrorCode::VideoIdsExceededMax)?;
    let reference_ids = ids(call, "ReferenceIds", VodErrorCode::VideoIdsExceededMax)?;
    if video_ids.is_empty() && reference_ids.is_empty() {
        return Err(ApiError::missing("VideoIds"));
    }
    let (mut list, mut missing, mut missing_refs) = (Vec::new(), Vec::new(), Vec::new());
    for id in &video_ids {
        match find(state, call, id, MediaKind::Video).await? {
            Some(media) => list.push(
                video_fields(&media)
                    .text("TemplateGroupId", &media.new.template_group_id)
                    .text("DownloadSwitch", "on")
                    .value("Snapshots", Some(json!([])))
                    .done(),
            ),
            None => missing.push(id.clone()),
        }
    }
    for reference in &reference_ids {
        let media = state
            .meta
            .get_media_by_reference(reference)
            .await
            .map_err(|e| ApiError::internal(&call.request_id, &e))?;
        match media.filter(|m| m.new.kind == MediaKind::Video) {
            Some(media) => list.push(video_fields(&media).value("Snapshots", Some(json!([]))).done()),
            None => missing_refs.push(reference.clone()),
        }
    }
    Ok(json!({ "VideoList": list, "NonExistVideoIds": missing, "NonExistReferenceIds": missing_refs }))
}

/// GetVideoList.
pub async fn get_video_list(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let page_no = p.opt_u64("PageNo")?.unwrap_or(1).max(1);
    let page_size = p.opt_u64("PageSize")?.unwrap_or(10);
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::invalid("PageSize", "must be 1..=100"));
    }
    if page_no.saturating_sub(1).saturating_mul(page_size) >= 5000 {
        return Err(ApiError::new(
            VodErrorCode::VideoListExceededMax,
            "Only the first 5000 videos can be paged through; narrow StartTime/EndTime.",
        ));
    }
    let time = |name: &str| -> Result<Option<std::time::SystemTime>, ApiError> {
        p.opt(name)
            .map(|t| {
                vodup_proto::timestamp::parse_iso8601(t)
                    .ok_or_else(|| ApiError::invalid(name, "expected yyyy-MM-ddTHH:mm:ssZ"))
            })
            .transpose()
    };
    let (start, end) = (time("StartTime")?, time("EndTime")?);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(ApiError::invalid("EndTime", "must be later than StartTime"));
    }
    let statuses = p
        .list("Status", 16, || ApiError::invalid("Status", "too many values"))?
        .iter()
        .map(|s| {
            MediaStatus::parse(s).ok_or_else(|| ApiError::invalid("Status", format!("unknown status {s:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ascending = match p.opt("SortBy") {
        None | Some("CreationTime:Desc") => false,
        Some("CreationTime:Asc") => true,
        Some(_) => return Err(ApiError::invalid("SortBy", "must be CreationTime:Desc or CreationTime:Asc")),
    };
    let query = VideoQuery {
        cate_id: p.opt_i64("CateId")?,
        statuses,
        start,
        end,
        storage_location: p.opt("StorageLocation").map(str::to_owned),
        reference_ids: ids(call, "ReferenceIds", VodErrorCode::VideoIdsExceededMax)?,
        ascending,
        offset: (page_no - 1) * page_size,
        limit: page_size,
    };
    let (total, videos) =
        state.meta.list_videos(&query).await.map_err(|e| ApiError::internal(&call.request_id, &e))?;
    let videos: Vec<Value> = videos
        .iter()
        .map(|m| video_fields(m).value("Snapshots", Some(json!({ "Snapshot": [] }))).done())
        .collect();
    Ok(json!({ "Total": total.min(5000), "VideoList": { "Video": videos } }))
}

/// UpdateVideoInfo.
pub async fn update_video_info(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let id = p.required("VideoId")?;
    if find(state, call, id, MediaKind::Video).await?.is_none() {
        return Err(ApiError::new(VodErrorCode::InvalidVideoNotFound, "The video does not exist."));
    }
    let given = |name: &str| p.get(name).is_some();
    let update = MediaUpdate {
        title: if given("Title") { Some(super::validate::title(p, "Title", false)?) } else { None },
        description: if given("Description") { Some(super::validate::description(p)?) } else { None },
        tags: if given("Tags") { Some(super::validate::tags(p)?) } else { None },
        cover_url: if given("CoverURL") { Some(super::validate::url(p, "CoverURL")?) } else { None },
        cate_id: p.opt_i64("CateId")?,
        reference_id: if p.opt("ReferenceId").is_some() {
            Some(super::validate::reference_id(p)?)
        } else {
            None
        },
        user_data: if given("UserData") { Some(super::validate::user_data(p)?) } else { None },
    };
    state.meta.update_media(id, &update, call.now).await.map_err(|e| match e {
        e if e.is_not_found() => {
            ApiError::new(VodErrorCode::InvalidVideoNotFound, "The video does not exist.")
        }
        e if e.is_conflict() => ApiError::invalid("ReferenceId", "is already used by another video"),
        e => ApiError::internal(&call.request_id, &e),
    })?;
    Ok(json!({}))
}

/// Deletes media in one catalogue transaction, with their objects (a playlist's segments too) and open
/// uploads; the blobs go to the collector. Once the catalogue says deleted, no write can complete
/// (vod-api.md §12.2).
async fn delete(state: &AppState, call: &Call, ids: &[String]) -> Result<Vec<String>, ApiError> {
    let deleted =
        state.meta.delete_media(ids, call.now).await.map_err(|e| ApiError::internal(&call.request_id, &e))?;
    for id in &deleted.deleted {
        state.revocations.note_media_deleted(id);
    }
    Ok(deleted.deleted)
}

/// DeleteVideo.
pub async fn delete_video(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let video_ids = ids(call, "VideoIds", VodErrorCode::VideoIdsExceededMax)?;
    let reference_ids = ids(call, "ReferenceIds", VodErrorCode::VideoIdsExceededMax)?;
    if video_ids.is_empty() && reference_ids.is_empty() {
        return Err(ApiError::missing("VideoIds"));
    }
    let (mut targets, mut missing, mut missing_refs) = (Vec::new(), Vec::new(), Vec::new());
    for id in video_ids {
        match find(state, call, &id, MediaKind::Video).await? {
            Some(_) => targets.push(id),
            None => missing.push(id),
        }
    }
    for reference in reference_ids {
        let media = state
            .meta
            .get_media_by_reference(&reference)
            .await
            .map_err(|e| ApiError::internal(&call.request_id, &e))?;
        match media.filter(|m| m.new.kind == MediaKind::Video) {
            Some(media) => targets.push(media.new.id),
            None => missing_refs.push(reference),
        }
    }
    delete(state, call, &targets).await?;
    Ok(json!({ "NonExistVideoIds": missing, "ForbiddenVideoIds": [], "NonExistReferenceIds": missing_refs }))
}

/// GetMezzanineInfo: the source file, with a URL presigned for `AuthTimeout` seconds.
pub async fn get_mezzanine_info(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let id = call.params.required("VideoId")?;
    let output = output_type(call)?;
    let timeout = auth_timeout(state, call)?;
    let media = find(state, call, id, MediaKind::Video)
        .await?
        .ok_or_else(|| ApiError::new(VodErrorCode::InvalidVideoNotFound, "The video does not exist."))?;
    let file_status = match media.status {
        MediaStatus::Normal | MediaStatus::UploadSucc => "Normal",
        MediaStatus::Uploading => "Uploading",
        MediaStatus::UploadFail => "UploadFail",
    };
    let mezzanine = Fields::new()
        .text("VideoId", &media.new.id)
        .text("FileName", file_name_of(&media))
        .text("FileURL", &presigned_url(state, call, &media, timeout))
        .value("Size", media.size.map(Value::from))
        .text("Status", file_status)
        .text("CreationTime", &iso8601(media.new.created_at))
        .text("OutputType", output)
        .text("StorageClass", "Standard")
        .text("PreprocessStatus", "UnPreprocess")
        .done();
    Ok(json!({ "Mezzanine": mezzanine }))
}

fn file_name_of(media: &Media) -> &str {
    let name = &media.new.file_name;
    name.rsplit(['/', '\\']).next().filter(|n| !n.is_empty()).unwrap_or(&media.new.object_key)
}

/// GetImageInfo.
pub async fn get_image_info(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let id = call.params.required("ImageId")?;
    output_type(call)?;
    let timeout = auth_timeout(state, call)?;
    let media = find(state, call, id, MediaKind::Image)
        .await?
        .ok_or_else(|| ApiError::new(VodErrorCode::InvalidImageNotFound, "The image does not exist."))?;
    let url = presigned_url(state, call, &media, timeout);
    let mezzanine = Fields::new()
        .text("FileURL", &url)
        .text("OriginalFileName", &media.new.file_name)
        .value("FileSize", media.size.map(|s| Value::String(s.to_string())))
        .done();
    let info = Fields::new()
        .text("ImageId", &media.new.id)
        .text("Title", &media.new.title)
        .text("Description", &media.new.description)
        .text("ImageType", &media.new.image_type)
        .text("Status", media.status.as_str())
        .text("URL", &url)
        .text("CreationTime", &iso8601(media.new.created_at))
        .value("CateId", media.new.cate_id.map(Value::from))
        .text("Tags", &media.new.tags)
        .text("StorageLocation", &media.new.storage_location)
        .text("AppId", &media.new.app_id)
        .value("Mezzanine", Some(mezzanine))
        .done();
    Ok(json!({ "ImageInfo": info }))
}

/// DeleteImage.
pub async fn delete_image(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    let mut targets = Vec::new();
    match p.required("DeleteImageType")? {
        "ImageId" => {
            let image_ids = ids(call, "ImageIds", VodErrorCode::InvalidParameter)?;
            if image_ids.is_empty() {
                return Err(ApiError::missing("ImageIds"));
            }
            for id in image_ids {
                if find(state, call, &id, MediaKind::Image).await?.is_some() {
                    targets.push(id);
                }
            }
        }
        "ImageURL" => {
            let urls = ids(call, "ImageURLs", VodErrorCode::InvalidParameter)?;
            if urls.is_empty() {
                return Err(ApiError::missing("ImageURLs"));
            }
            // An ImageURL is the object URL CreateUploadImage returned; its last segment names the image.
            for url in urls {
                let key_start = url.find("/image/").map(|i| &url[i + 1..]);
                if let Some(id) =
                    key_start.map(|k| k.split('?').next().unwrap_or(k)).and_then(image_id_for_key)
                    && find(state, call, &id, MediaKind::Image).await?.is_some()
                {
                    targets.push(id);
                }
            }
        }
        "VideoId" => {
            p.required("VideoId")?;
            p.required("ImageType")?;
            // Snapshots are made by transcoding, which this service does not do: nothing to delete.
        }
        other => {
            return Err(ApiError::invalid(
                "DeleteImageType",
                format!("{other:?} is not ImageURL, ImageId or VideoId"),
            ));
        }
    }
    delete(state, call, &targets).await?;
    Ok(json!({}))
}

/// The ImageId named by an image key `image/<type>/<IMAGEID>-6-2.<ext>` (see `upload`), if it is one.
fn image_id_for_key(key: &str) -> Option<String> {
    let key = vodup_proto::encoding::percent_decode(key).unwrap_or_else(|_| key.to_owned());
    let name = key.strip_prefix("image/")?.rsplit('/').next()?;
    let id = name.split('-').next()?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// GetAttachedMediaInfo.
pub async fn get_attached_media_info(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let media_ids = ids(call, "MediaIds", VodErrorCode::InvalidParameter)?;
    if media_ids.is_empty() {
        return Err(ApiError::missing("MediaIds"));
    }
    output_type(call)?;
    let timeout = auth_timeout(state, call)?;
    let (mut list, mut missing) = (Vec::new(), Vec::new());
    for id in media_ids {
        let Some(media) = find(state, call, &id, MediaKind::Attached).await? else {
            missing.push(id);
            continue;
        };
        let categories: Vec<Value> = media
            .new
            .cate_ids
            .split(',')
            .filter_map(|c| c.parse::<i64>().ok())
            .map(|c| json!({ "CateId": c, "Level": 0, "ParentId": -1 }))
            .collect();
        list.push(
            Fields::new()
                .text("MediaId", &media.new.id)
                .text("Title", &media.new.title)
                .text("Description", &media.new.description)
                .text("Type", &media.new.business_type)
                .text("Status", media.status.as_str())
                .text("URL", &presigned_url(state, call, &media, timeout))
                .text("StorageLocation", &media.new.storage_location)
                .text("Tags", &media.new.tags)
                .text("AppId", &media.new.app_id)
                .text("CreationTime", &iso8601(media.new.created_at))
                .text("ModificationTime", &iso8601(media.modified_at))
                .value("Categories", Some(Value::Array(categories)))
                .done(),
        );
    }
    Ok(json!({ "AttachedMediaList": list, "NonExistMediaIds": missing }))
}

/// DeleteAttachedMedia.
pub async fn delete_attached_media(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let media_ids = ids(call, "MediaIds", VodErrorCode::InvalidParameter)?;
    if media_ids.is_empty() {
        return Err(ApiError::missing("MediaIds"));
    }
    let (mut targets, mut missing) = (Vec::new(), Vec::new());
    for id in media_ids {
        match find(state, call, &id, MediaKind::Attached).await? {
            Some(_) => targets.push(id),
            None => missing.push(id),
        }
    }
    delete(state, call, &targets).await?;
    Ok(json!({ "NonExistMediaIds": missing }))
}

/// GetUploadDetails: catalogue facts plus the latest advisory progress report.
pub async fn get_upload_details(state: &AppState, call: &Call) -> Result<Value, ApiError> {
    let media_ids = ids(call, "MediaIds", VodErrorCode::InvalidParameter)?;
    if media_ids.is_empty() {
        return Err(ApiError::missing("MediaIds"));
    }
    if call.params.opt("MediaType").is_some_and(|t| t != "video") {
        return Err(ApiError::invalid("MediaType", "only video is supported"));
    }
    let (mut details, mut missing) = (Vec::new(), Vec::new());
    for id in media_ids {
        let Some(media) = find(state, call, &id, MediaKind::Video).await? else {
            missing.push(id);
            continue;
        };
        let complete = matches!(media.status, MediaStatus::Normal | MediaStatus::UploadSucc);
        let upload_status = match media.status {
            MediaStatus::Normal | MediaStatus::UploadSucc => "UploadSucc",
            MediaStatus::Uploading => "Uploading",
            MediaStatus::UploadFail => "UploadFail",
        };
        let progress = media.progress.as_ref();
        let file_size = media.size.or(media.new.declared_size).or(progress.and_then(|p| p.file_size));
        let upload_size = if complete { media.size } else { progress.and_then(|p| p.done_bytes) };
        let ratio = match (complete, upload_size, file_size) {
            (true, _, _) => Some(1.0),
            (false, Some(done), Some(total)) if total > 0 => Some((done as f64 / total as f64).min(1.0)),
            _ => None,
        };
        details.push(
            Fields::new()
                .text("MediaId", &media.new.id)
                .text("Title", &media.new.title)
                .value("FileSize", file_size.map(Value::from))
                .text("Status", media.status.as_str())
                .text("UploadStatus", upload_status)
                .value("UploadSize", upload_size.map(Value::from))
                .value("UploadRatio", ratio.map(Value::from))
                .text("UploadIP", progress.map_or("", |p| p.client_ip.as_str()))
                .text("UploadSource", progress.map_or("", |p| p.source.as_str()))
                .text("DeviceModel", progress.map_or("", |p| p.device_model.as_str()))
                .text("CreationTime", &iso8601(media.new.created_at))
                .text("ModificationTime", &iso8601(media.modified_at))
                .value("CompletionTime", media.completed_at.map(|t| Value::String(iso8601(t))))
                .done(),
        );
    }
    Ok(json!({ "UploadDetails": details, "NonExistMediaIds": missing, "ForbiddenMediaIds": [] }))
}
