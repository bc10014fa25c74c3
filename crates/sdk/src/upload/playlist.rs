//! M3U8 uploads: read the playlist (local or remote), plan its segments with [`source::m3u8`], check that
//! every segment can be read before any VOD request, create the video with the playlist's name, send
//! the segments in parallel to `ObjectPrefix + name` (the same key layout voduploadsdk uses, so the
//! service and players find them), and put the rewritten playlist last, so the video never points at
//! segments that are not there yet.
//!
//! Resumable like any upload: a checkpoint (keyed by the playlist's identity) names the video and the
//! segments already sent, so a re-run after a crash refreshes the same video's credentials, skips the
//! segments whose sources are unchanged, and, when the crash came after the playlist itself was put,
//! finds the video whole instead of uploading it again.
//!
//! [`source::m3u8`]: crate::source::m3u8

use futures_util::StreamExt as _;
use futures_util::stream;
use reqwest::Url;
use vodup_proto::upload_auth::UploadAddress;

use super::checkpoint::{Checkpoint, DoneSegment, Purpose};
use super::fault::{self, UploadPoint};
use super::multipart::{Recorder, SendContext};
use super::plan::Layout;
use super::progress::{Event, Reporter};
use super::{Outcome, UploadOptions, UploadResult, content_type_of, feed::Feed, multipart, plan};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result, network_error};
use crate::retry;
use crate::source::m3u8::{self, Location, Segment};
use crate::source::{self, Opened, Reader, Source, SourceIdentity};
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
    let Playlist { text, location, name, identity } = read_playlist(client, playlist).await?;
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
        let opened = source::open(client.http(), client.retry_policy(), source).await.map_err(|e| {
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
    let part_size = options.part_size.unwrap_or(plan::DEFAULT_PART_SIZE);
    let endpoint = client.vod().endpoint().to_string();
    let (file, previous) = client.open_checkpoint(Purpose::Playlist, Some(&identity), options)?;
    let mut resumed = previous.filter(|c| {
        c.kind == MediaKind::Video
            && c.endpoint == endpoint
            && c.source == identity
            && c.part_size == part_size
    });
    // A run killed between putting the playlist and removing the checkpoint: the video may be whole.
    if let Some(checkpoint) = &resumed
        && let Some(done) = client.already_committed(Purpose::Playlist, checkpoint, reporter).await?
    {
        if let Some(file) = file {
            file.remove();
        }
        fault::hit(UploadPoint::Finished);
        return Ok(done);
    }
    let ticket = match &resumed {
        Some(checkpoint) => client.resumed_ticket(checkpoint, reporter).await?,
        None => None,
    };
    let ticket = match ticket {
        Some(ticket) => ticket,
        None => {
            resumed = None;
            let ticket = client.vod().create_upload_video(&params).await?;
            reporter.emit(Event::Created { kind: MediaKind::Video, media_id: ticket.media_id.clone() });
            fault::hit(UploadPoint::Created);
            ticket
        }
    };
    let state = resumed.unwrap_or_else(|| Checkpoint::new(endpoint, identity, &ticket, part_size));
    let mut recorder = Recorder { file, state };
    recorder.save().await?;
    fault::hit(UploadPoint::Checkpointed);

    // Segments an earlier run sent are skipped while their source is unchanged.
    let (done, to_send): (Vec<_>, Vec<_>) = opened.into_iter().partition(|(segment, opened)| {
        recorder
            .state
            .segments
            .iter()
            .any(|d| d.name == segment.object_name && Some(&d.source) == opened.identity.as_ref())
    });
    let resumed_bytes: u64 = done.iter().filter_map(|(_, o)| o.size).sum();
    let total_segments = done.len() + to_send.len();
    recorder.state.segments.retain(|d| done.iter().any(|(segment, _)| segment.object_name == d.name));

    let prefix = object_prefix(&ticket.address);
    let context = client.send_context(MediaKind::Video, &ticket, options, reporter)?;
    reporter.emit(Event::Started {
        kind: MediaKind::Video,
        media_id: ticket.media_id.clone(),
        bucket: ticket.address.bucket.clone(),
        key: ticket.address.file_name.clone(),
        size: to_send
            .iter()
            .map(|(_, o)| o.size)
            .sum::<Option<u64>>()
            .map(|s| s + resumed_bytes + plan.rewritten.len() as u64),
        multipart: false,
        part_size,
        parts: u32::try_from(total_segments + 1).ok(),
        parallel: options.parallel.unwrap_or_else(|| plan::default_parallel(None)),
        resumed_parts: u32::try_from(done.len()).unwrap_or(u32::MAX),
        resumed_bytes,
    });

    let parallel = options.parallel.unwrap_or_else(|| plan::default_parallel(None)).max(1);
    let recorder_lock = tokio::sync::Mutex::new(recorder);
    let sent: Vec<Result<Outcome>> = stream::iter(to_send.into_iter().map(|(segment, opened)| {
        let context = SendContext { key: format!("{prefix}{}", segment.object_name), ..context.clone() };
        let recorder = &recorder_lock;
        async move {
            let source = opened.identity.clone();
            let outcome = send_segment(&context, opened, options).await?;
            fault::hit(UploadPoint::SegmentSent);
            // A segment without an identity (a URL with no validators) cannot be recognised later.
            if let Some(source) = source {
                let mut recorder = recorder.lock().await;
                let name = segment.object_name.clone();
                recorder.state.segments.push(DoneSegment { name, source, size: outcome.size });
                recorder.save().await?;
            }
            context
                .reporter
                .emit(Event::SegmentSent { name: segment.object_name.clone(), size: outcome.size });
            Ok(outcome)
        }
    }))
    .buffer_unordered(parallel)
    .collect()
    .await;
    let mut sent_bytes = 0;
    for result in sent {
        sent_bytes += result?.size;
    }
    let mut recorder = recorder_lock.into_inner();

    let data = bytes::Bytes::from(plan.rewritten.into_bytes());
    let content_type = content_type_of(&ticket.address.file_name);
    let outcome = client.put_whole(&context, data, &content_type, Some(&mut recorder)).await?;
    if let Some(file) = recorder.file.take() {
        file.remove();
    }
    fault::hit(UploadPoint::Finished);
    // The whole upload, as `Started` announced it: the playlist and every segment, one object each.
    let segments = u32::try_from(total_segments).unwrap_or(u32::MAX);
    Ok(UploadResult {
        kind: MediaKind::Video,
        media_id: ticket.media_id,
        request_id: ticket.request_id,
        bucket: ticket.address.bucket,
        key: ticket.address.file_name.clone(),
        size: outcome.size + resumed_bytes + sent_bytes,
        crc64: outcome.crc64,
        parts: segments.saturating_add(1),
        resumed_parts: u32::try_from(done.len()).unwrap_or(u32::MAX),
        media_url: ticket.media_url,
        file_url: ticket.file_url,
        segments,
        playlist: Some(super::ObjectFigures {
            key: ticket.address.file_name,
            size: outcome.size,
            crc64: outcome.crc64,
        }),
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
            // A segment's own parts are not checkpointed: a resumed playlist sends a half-sent segment again.
            let state = Checkpoint::scratch(upload_id.clone(), layout.first_part_size());
            let recorder = tokio::sync::Mutex::new(Recorder { file: None, state });
            let parallel = options.parallel.unwrap_or(2).clamp(1, 4);
            let parts = multipart::run(context, &upload_id, &feed, None, parallel, &recorder).await?;
            multipart::finish(context, &upload_id, &parts, opened_size, 0, None).await
        }
    }
}

/// A playlist as read: its text, where it is (to resolve segment URIs), the FileName to send, and what
/// identifies it across runs (as any other source: path, size and time, or a URL's validators).
struct Playlist {
    text: String,
    location: Location,
    name: String,
    identity: SourceIdentity,
}

async fn read_playlist(client: &Client, playlist: Source) -> Result<Playlist> {
    match playlist {
        Source::File(path) => {
            let io_error = |e: std::io::Error| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Io
                };
                Error::new(kind, "read playlist", e.to_string()).with_path(&path).with_hint("check the path")
            };
            let metadata = tokio::fs::metadata(&path).await.map_err(io_error)?;
            let bytes = tokio::fs::read(&path).await.map_err(io_error)?;
            let text = playlist_text(bytes)?;
            let name = path.to_string_lossy().into_owned();
            let absolute = std::path::absolute(&path).unwrap_or(path);
            let identity = source::file::identity(&absolute, &metadata);
            Ok(Playlist { text, location: Location::File(absolute), name, identity })
        }
        Source::Url(url) => {
            let (final_url, etag, last_modified, bytes) =
                retry::run(client.retry_policy(), "read playlist", || fetch_playlist(client.http(), &url))
                    .await?;
            let mut name = final_url.clone();
            name.set_query(None);
            name.set_fragment(None);
            let identity = SourceIdentity {
                location: url.to_string(),
                size: Some(bytes.len() as u64),
                mtime_ns: None,
                etag,
                last_modified,
            };
            let text = playlist_text(bytes.to_vec())?;
            Ok(Playlist { text, location: Location::Url(final_url), name: name.to_string(), identity })
        }
        Source::Stream { .. } => Err(Error::invalid_input("an M3U8 playlist must be a file or a URL")
            .with_hint("its segments are found relative to where the playlist is")),
    }
}

/// One GET of a playlist URL: where it ended after redirects, its validators and its bytes.
async fn fetch_playlist(
    http: &reqwest::Client,
    url: &Url,
) -> Result<(Url, Option<String>, Option<String>, bytes::Bytes)> {
    let response = http.get(url.clone()).send().await.map_err(|e| {
        network_error("read playlist", &e)
            .with_hint(format!("check that {} is up and reachable", url.host_str().unwrap_or("the server")))
    })?;
    if !response.status().is_success() {
        return Err(source::url::status_error(url, response.status()));
    }
    let final_url: Url = response.url().clone();
    let header = |name: http::HeaderName| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned)
    };
    let (etag, last_modified) = (header(http::header::ETAG), header(http::header::LAST_MODIFIED));
    let bytes = response.bytes().await.map_err(|e| network_error("read playlist", &e))?;
    Ok((final_url, etag, last_modified, bytes))
}

fn playlist_text(bytes: Vec<u8>) -> Result<String> {
    if bytes.len() > MAX_PLAYLIST_BYTES {
        return Err(Error::invalid_input("the playlist is larger than 16 MiB; that is not an M3U8"));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid_input("the playlist is not UTF-8 text").with_hint("give an .m3u8 file"))
}
