//! What the service holds for a media item's source: whether its upload finished, its size, and a URL it
//! can be read from (GetMezzanineInfo for a video, GetImageInfo for an image, GetAttachedMediaInfo for
//! attached media), plus the object's CRC-64 as OSS reports it on a GET of that URL.
//!
//! Two callers need the same answer: a resumed upload whose checkpoint may predate a Complete that did
//! succeed (is the media already whole, with these exact bytes?), and `download` (fetch the source back
//! and verify it). Both trust only what the service reports, never a local record.

use http::header::CONTENT_LENGTH;
use serde_json::Value;
use vodup_proto::crc64;
use vodup_proto::oss::header::X_OSS_HASH_CRC64ECMA;

use super::client::VodClient;
use super::media::MediaKind;
use crate::error::{Error, ErrorKind, Result, network_error};

/// How long the read URL the service presigns stays valid, in seconds (an hour: enough for a download
/// of many gigabytes, short enough not to leave a long-lived link behind).
const READ_URL_SECONDS: u64 = 3600;

/// A media item's source as the service describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSource {
    /// The media type.
    pub kind: MediaKind,
    /// `VideoId`, `ImageId` or `MediaId`.
    pub media_id: String,
    /// The status of the source file (`Normal` once uploaded; `Uploading`, `UploadFail`, …).
    pub status: String,
    /// The source's size in bytes, when the service gives it.
    pub size: Option<u64>,
    /// A URL the source can be read from (presigned for an hour), when the service gives one.
    pub url: Option<String>,
    /// The RequestId of the call.
    pub request_id: String,
}

impl StoredSource {
    /// Whether the upload of the source finished (the bytes are in place).
    pub fn is_uploaded(&self) -> bool {
        self.status == "Normal"
    }
}

/// What a GET of a stored object's URL says about it before any body byte is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectDigest {
    /// `Content-Length`.
    pub size: Option<u64>,
    /// `x-oss-hash-crc64ecma`.
    pub crc64: Option<u64>,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(ToOwned::to_owned)
}

/// A size that may come as a number or a string (VOD uses both).
fn number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl VodClient {
    /// The source of `media_id` as the service describes it. A media item that does not exist is an
    /// error of kind [`ErrorKind::NotFound`].
    pub async fn stored_source(&self, kind: MediaKind, media_id: &str) -> Result<StoredSource> {
        let timeout = READ_URL_SECONDS.to_string();
        let (status, size, url, reply) = match kind {
            MediaKind::Video => {
                let params = [
                    ("VideoId".to_owned(), media_id.to_owned()),
                    ("OutputType".to_owned(), "oss".to_owned()),
                    ("AuthTimeout".to_owned(), timeout),
                ];
                let reply = self.call("GetMezzanineInfo", &params).await?;
                let m = &reply["Mezzanine"];
                (text(&m["Status"]), number(&m["Size"]), text(&m["FileURL"]), reply)
            }
            MediaKind::Image => {
                let params = [
                    ("ImageId".to_owned(), media_id.to_owned()),
                    ("OutputType".to_owned(), "oss".to_owned()),
                    ("AuthTimeout".to_owned(), timeout),
                ];
                let reply = self.call("GetImageInfo", &params).await?;
                let i = &reply["ImageInfo"];
                let url = text(&i["Mezzanine"]["FileURL"]).or_else(|| text(&i["URL"]));
                (text(&i["Status"]), number(&i["Mezzanine"]["FileSize"]), url, reply)
            }
            MediaKind::Attached => {
                let params = [
                    ("MediaIds".to_owned(), media_id.to_owned()),
                    ("OutputType".to_owned(), "oss".to_owned()),
                    ("AuthTimeout".to_owned(), timeout),
                ];
                let reply = self.call("GetAttachedMediaInfo", &params).await?;
                let found = reply["AttachedMediaList"]
                    .as_array()
                    .and_then(|list| list.iter().find(|m| m["MediaId"].as_str() == Some(media_id)))
                    .cloned();
                let Some(m) = found else {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        "GetAttachedMediaInfo",
                        format!("attached media {media_id} does not exist"),
                    )
                    .with_hint("check the MediaId"));
                };
                (text(&m["Status"]), number(&m["FileSize"]), text(&m["URL"]), reply)
            }
        };
        Ok(StoredSource {
            kind,
            media_id: media_id.to_owned(),
            status: status.unwrap_or_default(),
            size,
            url,
            request_id: text(&reply["RequestId"]).unwrap_or_default(),
        })
    }
}

/// Sends a GET to `url` and reads only the headers: the object's size and CRC-64 as OSS reports them.
/// (A GET, not a HEAD: a presigned URL is signed for one method.) The body is dropped unread.
pub async fn object_digest(http: &reqwest::Client, url: &str) -> Result<ObjectDigest> {
    let response = http.get(url).send().await.map_err(|e| network_error("read stored object", &e))?;
    if !response.status().is_success() {
        let status = response.status();
        let kind = if status.as_u16() == 404 { ErrorKind::NotFound } else { ErrorKind::Service };
        return Err(Error::new(kind, "read stored object", format!("the object URL answered HTTP {status}"))
            .with_hint("the media's source is not readable; check it with GetMezzanineInfo"));
    }
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(ObjectDigest {
        size: header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()),
        crc64: header(X_OSS_HASH_CRC64ECMA).and_then(|v| crc64::parse_header(&v)),
    })
}
