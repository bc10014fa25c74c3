//! M3U8 uploads: read the playlist (local or remote), plan its segments with [`source::m3u8`], check that
//! every segment can be read before any VOD request, create the video with the playlist's name, send
//! the segments in parallel to `ObjectPrefix + name` (the same key layout voduploadsdk uses, so the
//! service and players find them), and put the rewritten playlist last, so the video never points at
//! segments that are not there yet.
//!
//! [`source::m3u8`]: crate::source::m3u8

use futures_util::StreamExt as _;
use futures_util::stream;
use reqwest::Url;
use vodup_proto::upload_auth::UploadAddress;

use super::multipart::{Recorder, SendContext};
use super::plan::Layout;
use super::progress::{Event, Reporter};
use super::{Outcome, UploadOptions, UploadResult, checkpoint, content_type_of, feed::Feed, multipart, plan};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result, network_error};
use crate::source::m3u8::{self, Location, Segment};
use crate::source::{self, Opened, Reader, Source, redact_url};
use crate::vod::{MediaKind, VideoMeta};

/// The largest playlist read (playlists are text; a bigger one is not a playlist).
const MAX_PLAYLIST_BYTES: usize = 16 << 20;

pub(crate) async fn upload(
    client: &Client,
    playlist: Source,
    meta: &VideoMeta,
    options: &UploadOptions,
    reporter: &Reporter,
) -> Result<UploadResult> {
    let (text, location, name) = read_playlist(client, playlist).await?;
    let file_name = meta.file_name.clone().unwrap_or(name);
    if vodup_proto::vod::media::extension_of(&file_name).as_deref() != Some("m3u8") {
        return Err(Error::invalid_input(format!("{file_name:?} is not an .m3u8 playlist"))
            .with_hint("use `vodup upload video` for media files, or give --file-name NAME.m3u8"));
    }
    meta.params(&file_name, None)?;
    let plan = m3u8::plan(&text, &location, options.include_keys)
        .map_err(|e| Error::invalid_input(e.to_string()).with_hint("fix the playlist, then re-run"))?;

    // Open every segment first: an unreadable one fails before the video exists.
    let opened: Vec<(Segment, Opened)> = stream::iter(plan.segments.into_iter().map(|segment| async move {
        let source = match &segment.location {
            Location::File(path) => Source::File(path.clone()),
            Location::Url(url) => Source::Url(url.clone()),
        };
        let opened = source::open(client.http(), source).await.map_err(|e| {
            e.or_hint(format!("segment {} of the playlist cannot be read", segment.object_name))
        })?;
        Ok::<_, Error>((segment, opened))
    }))
    .buffered(8)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_>>()?;

    let params = meta.params(&file_name, Some(text.len() as u64))?;
    let ticket = client.vod().create_upload_video(&params).await?;
    reporter.emit(Event::Created { kind: MediaKind::Video, media_id: ticket.media_id.clone() });
    let prefix = object_prefix(&ticket.address);
    let context = client.send_context(MediaKind::Video, &ticket, options, reporter)?;
    reporter.emit(Event::Started {
        kind: MediaKind::Video,
        media_id: ticket.media_id.clone(),
        bucket: ticket.address.bucket.clone(),
        key: ticket.address.file_name.clone(),
        size: opened
            .iter()
            .map(|(_, o)| o.size)
            .sum::<Option<u64>>()
            .map(|s| s + plan.rewritten.len() as u64),
        multipart: false,
        part_size: options.part_size.unwrap_or(plan::DEFAULT_PART_SIZE),
        parts: u32::try_from(opened.len() + 1).ok(),
        parallel: options.parallel.unwrap_or_else(|| plan::default_parallel(None)),
        resumed_parts: 0,
        resumed_bytes: 0,
    });

    let parallel = options.parallel.unwrap_or_else(|| plan::default_parallel(None)).max(1);
    let segments = opened.len();
    let sent: Vec<Result<Outcome>> = stream::iter(opened.into_iter().map(|(segment, opened)| {
        let context = SendContext { key: format!("{prefix}{}", segment.object_name), ..context.clone() };
        async move {
            let outcome = send_segment(&context, opened, options).await?;
            context
                .reporter
                .emit(Event::SegmentSent { name: segment.object_name.clone(), size: outcome.size });
            Ok(outcome)
        }
    }))
    .buffer_unordered(parallel)
    .collect()
    .await;
    for result in sent {
        result?;
    }

    let data = bytes::Bytes::from(plan.rewritten.into_bytes());
    let crc = vodup_proto::crc64::checksum(&data);
    context.send("PutObject", None, &data, crc, &content_type_of(&ticket.address.file_name)).await?;
    Ok(UploadResult {
        kind: MediaKind::Video,
        media_id: ticket.media_id,
        request_id: ticket.request_id,
        bucket: ticket.address.bucket,
        key: ticket.address.file_name,
        size: data.len() as u64,
        crc64: crc,
        parts: 1,
        resumed_parts: 0,
        media_url: ticket.media_url,
        file_url: ticket.file_url,
        segments: u32::try_from(segments).unwrap_or(u32::MAX),
    })
}

/// Where segments go: the UploadAddress's ObjectPrefix, else the playlist key's folder.
fn object_prefix(address: &UploadAddress) -> String {
    match &address.object_prefix {
        Some(prefix) if !prefix.is_empty() => prefix.clone(),
        _ => address.file_name.rsplit_once('/').map(|(dir, _)| format!("{dir}/")).unwrap_or_default(),
    }
}

/// One segment: a PutObject when it fits a part, else a multipart upload without checkpoint.
async fn send_segment(context: &SendContext, opened: Opened, options: &UploadOptions) -> Result<Outcome> {
    let (layout, _) = Layout::plan(opened.size, options.part_size, options.multipart_threshold)?;
    let opened_size = opened.size;
    let content_type = content_type_of(&context.key);
    match (opened.reader, layout) {
        (Reader::Random(source), Layout::Single { size }) => {
            let len =
                usize::try_from(size).map_err(|_| Error::invalid_input("segment too large for memory"))?;
            let data = source.read_at(0, len, bytes::BytesMut::new()).await?.freeze();
            let crc = vodup_proto::crc64::checksum(&data);
            context.send("PutObject", None, &data, crc, &content_type).await?;
            Ok(Outcome { size: data.len() as u64, crc64: crc, parts: 1, resumed_parts: 0 })
        }
        (reader, layout) => {
            let feed = match reader {
                Reader::Random(source) => Feed::random(source, layout, &[]),
                Reader::Sequential(stream) => Feed::sequential(stream, layout, &[]),
            };
            let credentials = context.session.credentials().await?;
            let upload_id = context.session.oss.initiate(&credentials, &context.key, &content_type).await?;
            let recorder = tokio::sync::Mutex::new(Recorder {
                file: None,
                state: checkpoint::Checkpoint {
                    version: checkpoint::VERSION,
                    kind: MediaKind::Video,
                    endpoint: String::new(),
                    source: source::SourceIdentity {
                        location: String::new(),
                        size: None,
                        mtime_ns: None,
                        etag: None,
                        last_modified: None,
                    },
                    media_id: String::new(),
                    upload_address: String::new(),
                    upload_auth: String::new(),
                    request_id: String::new(),
                    media_url: None,
                    file_url: None,
                    upload_id: Some(upload_id.clone()),
                    part_size: layout.first_part_size(),
                    parts: Vec::new(),
                },
            });
            let parallel = options.parallel.unwrap_or(2).clamp(1, 4);
            let parts = multipart::run(context, &upload_id, &feed, None, parallel, &recorder).await?;
            multipart::finish(context, &upload_id, &parts, opened_size, 0).await
        }
    }
}

/// The playlist's text, where it is (to resolve segment URIs), and the FileName to send.
async fn read_playlist(client: &Client, playlist: Source) -> Result<(String, Location, String)> {
    match playlist {
        Source::File(path) => {
            let bytes = tokio::fs::read(&path).await.map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Io
                };
                Error::new(kind, "read playlist", e.to_string()).with_path(&path).with_hint("check the path")
            })?;
            let text = playlist_text(bytes)?;
            let name = path.to_string_lossy().into_owned();
            let absolute = std::path::absolute(&path).unwrap_or(path);
            Ok((text, Location::File(absolute), name))
        }
        Source::Url(url) => {
            let response = client
                .http()
                .get(url.clone())
                .send()
                .await
                .map_err(|e| network_error("read playlist", &e))?;
            if !response.status().is_success() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "read playlist",
                    format!("{} answered HTTP {}", redact_url(&url), response.status()),
                ));
            }
            let final_url: Url = response.url().clone();
            let bytes = response.bytes().await.map_err(|e| network_error("read playlist", &e))?;
            let mut name = final_url.clone();
            name.set_query(None);
            name.set_fragment(None);
            Ok((playlist_text(bytes.to_vec())?, Location::Url(final_url), name.to_string()))
        }
        Source::Stream { .. } => Err(Error::invalid_input("an M3U8 playlist must be a file or a URL")
            .with_hint("its segments are found relative to where the playlist is")),
    }
}

fn playlist_text(bytes: Vec<u8>) -> Result<String> {
    if bytes.len() > MAX_PLAYLIST_BYTES {
        return Err(Error::invalid_input("the playlist is larger than 16 MiB; that is not an M3U8"));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid_input("the playlist is not UTF-8 text").with_hint("give an .m3u8 file"))
}
