//! Upload orchestration: from a [`Source`] and the media's metadata to a verified object in VOD.
//!
//! The steps, each in its own module: check the metadata and open the source before any VOD request;
//! [`plan`] the parts; find a [`checkpoint`] of an earlier run and keep it only if the source is the
//! same and OSS still lists its parts; create the media (or refresh its credentials); send the parts
//! through [`multipart`] (or one PutObject); complete and compare the object's CRC-64 with the one the
//! parts combine to. [`playlist`] does the same for an M3U8 and its segments.

pub mod checkpoint;
pub mod fault;
mod feed;
pub mod multipart;
pub mod plan;
mod playlist;
pub mod progress;
mod session;
pub mod slots;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};

use self::checkpoint::{Checkpoint, CheckpointFile, Committing, DonePart, Purpose};
use self::fault::UploadPoint;
use self::feed::Feed;
use self::multipart::{Recorder, SendContext};
use self::plan::Layout;
pub use self::progress::Progress;
use self::progress::{Event, Reporter};
use self::session::{Refresher, Session};
use self::slots::{PartSlots, Slot};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::oss::{OssClient, OssTarget};
use crate::rate::RateLimiter;
use crate::source::{self, Opened, Reader, Source};
use crate::vod::{AttachedMeta, ImageMeta, MediaKind, UploadTicket, VideoMeta};

/// How to upload (the same for every media type).
#[derive(Clone)]
pub struct UploadOptions {
    /// Part size (`--part-size`); default 8 MiB, raised when a file would need more than 10,000 parts.
    pub part_size: Option<u64>,
    /// Parts in flight (`--parallel`); default twice the cores, between 2 and 8.
    pub parallel: Option<usize>,
    /// Sizes up to this go in one PutObject; default the part size.
    pub multipart_threshold: Option<u64>,
    /// Where checkpoints live (`--checkpoint-dir`); default `~/.local/state/vodup/checkpoints`.
    pub checkpoint_dir: Option<PathBuf>,
    /// Resume from a checkpoint and write one (`--no-resume` turns it off).
    pub resume: bool,
    /// Bytes per second for the whole upload (`--limit-rate`).
    pub limit_rate: Option<u64>,
    /// Progress events.
    pub progress: Option<Arc<dyn Progress>>,
    /// Cancels the upload; the checkpoint is kept.
    pub cancel: CancellationToken,
    /// Upload `EXT-X-KEY` key files beside the segments (`--include-keys`).
    pub include_keys: bool,
    /// Part slots shared with other uploads running at the same time (a batch): memory and parts in
    /// flight are then bounded for all of them together. `None`: this upload has `parallel` of its own.
    pub slots: Option<Arc<PartSlots>>,
    /// A rate limiter shared with other uploads (a batch's global `--limit-rate`); wins over `limit_rate`.
    pub limiter: Option<Arc<RateLimiter>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            part_size: None,
            parallel: None,
            multipart_threshold: None,
            checkpoint_dir: None,
            resume: true,
            limit_rate: None,
            progress: None,
            cancel: CancellationToken::new(),
            include_keys: false,
            slots: None,
            limiter: None,
        }
    }
}

impl std::fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadOptions")
            .field("part_size", &self.part_size)
            .field("parallel", &self.parallel)
            .field("resume", &self.resume)
            .field("limit_rate", &self.limit_rate)
            .field("shared_slots", &self.slots.as_ref().map(|s| s.size()))
            .field("shared_limiter", &self.limiter.is_some())
            .finish_non_exhaustive()
    }
}

/// A finished upload.
///
/// `size`, `parts` and `resumed_parts` count the whole upload, as the `Started` event announced it: for an
/// M3U8, the playlist and every segment (each segment one object, whatever its own parts), so the figures
/// of its start and its end agree. `key` and `crc64` are the media's own object (the playlist, for an
/// M3U8), whose own figures [`playlist`](Self::playlist) repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadResult {
    /// The media type.
    pub kind: MediaKind,
    /// `VideoId`, `ImageId` or `MediaId`.
    pub media_id: String,
    /// The RequestId of the VOD call that issued the upload credentials.
    pub request_id: String,
    /// The bucket.
    pub bucket: String,
    /// The media's object key (the playlist's, for M3U8).
    pub key: String,
    /// Bytes uploaded in all: the object's, or for an M3U8 the playlist's plus every segment's (segments
    /// an earlier run sent included).
    pub size: u64,
    /// The CRC-64/ECMA of the object at `key`, as OSS reports it.
    pub crc64: u64,
    /// Parts (1 for a PutObject); for an M3U8, objects: the playlist plus every segment.
    pub parts: u32,
    /// Parts an earlier run had already sent (for an M3U8, segments).
    pub resumed_parts: u32,
    /// `ImageURL` / `MediaURL`, when VOD gave one.
    pub media_url: Option<String>,
    /// `FileURL`, when VOD gave one.
    pub file_url: Option<String>,
    /// Segments uploaded with an M3U8 playlist.
    pub segments: u32,
    /// The playlist object's own figures, for an M3U8 upload; None otherwise.
    pub playlist: Option<ObjectFigures>,
}

/// One object's own figures (an M3U8 upload's playlist, beside the whole upload's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectFigures {
    /// The object key.
    pub key: String,
    /// Bytes in the object.
    pub size: u64,
    /// Its CRC-64/ECMA, as OSS reports it.
    pub crc64: u64,
}

/// What is being created, with its metadata.
#[derive(Debug, Clone)]
pub(crate) enum MediaRequest {
    Video(VideoMeta),
    Image(ImageMeta),
    Attached(AttachedMeta),
}

impl MediaRequest {
    fn kind(&self) -> MediaKind {
        match self {
            Self::Video(_) => MediaKind::Video,
            Self::Image(_) => MediaKind::Image,
            Self::Attached(_) => MediaKind::Attached,
        }
    }

    fn file_name_override(&self) -> Option<&str> {
        match self {
            Self::Video(m) => m.file_name.as_deref(),
            Self::Image(m) => m.file_name.as_deref(),
            Self::Attached(m) => m.file_name.as_deref(),
        }
    }

    fn params(&self, file_name: &str, size: Option<u64>) -> Result<Vec<(String, String)>> {
        match self {
            Self::Video(m) => m.params(file_name, size),
            Self::Image(m) => m.params(file_name),
            Self::Attached(m) => m.params(file_name, size),
        }
    }

    async fn create(&self, client: &Client, params: &[(String, String)]) -> Result<UploadTicket> {
        let vod = client.vod();
        match self {
            Self::Video(_) => vod.create_upload_video(params).await,
            Self::Image(_) => vod.create_upload_image(params).await,
            Self::Attached(_) => vod.create_upload_attached_media(params).await,
        }
    }
}

/// The name a source goes by before it is opened: the path, the URL without query, the stream's name.
fn declared_name(source: &Source) -> Option<String> {
    match source {
        Source::File(path) => Some(path.to_string_lossy().into_owned()),
        Source::Url(url) => {
            let mut url = url.clone();
            url.set_query(None);
            url.set_fragment(None);
            Some(url.to_string())
        }
        Source::Stream { name, .. } => name.clone(),
    }
}

impl Client {
    /// Uploads a video or audio file (CreateUploadVideo). M3U8 playlists go through
    /// [`upload_m3u8`](Self::upload_m3u8).
    pub async fn upload_video(
        &self,
        source: Source,
        meta: &VideoMeta,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        self.upload(MediaRequest::Video(meta.clone()), source, options).await
    }

    /// Uploads an image (CreateUploadImage).
    pub async fn upload_image(
        &self,
        source: Source,
        meta: &ImageMeta,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        self.upload(MediaRequest::Image(meta.clone()), source, options).await
    }

    /// Uploads a watermark, subtitle or material (CreateUploadAttachedMedia).
    pub async fn upload_attached(
        &self,
        source: Source,
        meta: &AttachedMeta,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        self.upload(MediaRequest::Attached(meta.clone()), source, options).await
    }

    /// Uploads an M3U8 playlist (a local path or a URL) with every segment it references: segments in
    /// parallel under the video's ObjectPrefix, then the rewritten playlist.
    pub async fn upload_m3u8(
        &self,
        playlist: Source,
        meta: &VideoMeta,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        let reporter = Reporter::new(options.progress.clone());
        let result =
            reporter.reporting_retries(playlist::upload(self, playlist, meta, options, &reporter)).await;
        report_end(&reporter, &result);
        result
    }

    async fn upload(
        &self,
        media: MediaRequest,
        source: Source,
        options: &UploadOptions,
    ) -> Result<UploadResult> {
        let reporter = Reporter::new(options.progress.clone());
        let result = reporter.reporting_retries(self.upload_object(&media, source, options, &reporter)).await;
        report_end(&reporter, &result);
        result
    }

    async fn upload_object(
        &self,
        media: &MediaRequest,
        source: Source,
        options: &UploadOptions,
        reporter: &Reporter,
    ) -> Result<UploadResult> {
        let kind = media.kind();
        let name =
            media.file_name_override().map(ToOwned::to_owned).or_else(|| declared_name(&source)).ok_or_else(
                || {
                    Error::invalid_input("a stream has no file name, and VOD needs one for its extension")
                        .with_hint("give --file-name NAME.EXT (for example --file-name clip.mp4)")
                },
            )?;
        // Everything that can be checked without the source is checked before touching it.
        media.params(&name, None)?;
        let opened = source::open(self.http(), self.inner.retry, source).await?;
        let (layout, notice) = Layout::plan(opened.size, options.part_size, options.multipart_threshold)?;
        if let Some(notice) = notice {
            reporter.notice(notice);
        }
        let params = media.params(&name, opened.size)?;

        let (file, previous) =
            self.open_checkpoint(Purpose::Media(kind), opened.identity.as_ref(), options)?;
        let mut resumed = previous.and_then(|c| self.usable_checkpoint(c, kind, &opened, layout, reporter));
        // A run killed between its commit and the checkpoint's removal: the media may already be whole.
        if let Some(checkpoint) = &resumed
            && let Some(done) = self.already_committed(Purpose::Media(kind), checkpoint, reporter).await?
        {
            if let Some(file) = file {
                file.remove();
            }
            fault::hit(UploadPoint::Finished);
            return Ok(done);
        }
        let ticket = match &resumed {
            Some(checkpoint) => self.resumed_ticket(checkpoint, reporter).await?,
            None => None,
        };
        let ticket = match ticket {
            Some(ticket) => ticket,
            None => {
                resumed = None;
                let ticket = media.create(self, &params).await?;
                reporter.emit(Event::Created { kind, media_id: ticket.media_id.clone() });
                fault::hit(UploadPoint::Created);
                ticket
            }
        };
        let mut state = resumed.unwrap_or_else(|| {
            let source = opened.identity.clone().unwrap_or_else(|| source::SourceIdentity {
                location: opened.display.clone(),
                size: opened.size,
                mtime_ns: None,
                etag: None,
                last_modified: None,
            });
            Checkpoint::new(self.vod().endpoint().to_string(), source, &ticket, layout.first_part_size())
        });
        // Videos get fresh credentials on resume; the others can only reuse theirs, so only they keep them.
        state.upload_auth = if kind == MediaKind::Video { String::new() } else { ticket.auth.encode() };
        let mut recorder = Recorder { file, state };
        recorder.save().await?;
        fault::hit(UploadPoint::Checkpointed);

        let context = self.send_context(kind, &ticket, options, reporter)?;
        let outcome = self.send_object(&context, opened, layout, &mut recorder, options, &ticket).await?;
        let Recorder { file, state } = recorder;
        if let Some(file) = file {
            file.remove();
        }
        fault::hit(UploadPoint::Finished);
        Ok(UploadResult {
            kind,
            media_id: state.media_id,
            request_id: ticket.request_id,
            bucket: ticket.address.bucket,
            key: ticket.address.file_name,
            size: outcome.size,
            crc64: outcome.crc64,
            parts: outcome.parts,
            resumed_parts: outcome.resumed_parts,
            media_url: state.media_url,
            file_url: state.file_url,
            segments: 0,
            playlist: None,
        })
    }

    /// The credentials to go on with the media of a usable `checkpoint`, or None when a new media item
    /// is needed (the media is gone, or an image's credentials expired), with a notice saying why.
    pub(crate) async fn resumed_ticket(
        &self,
        checkpoint: &Checkpoint,
        reporter: &Reporter,
    ) -> Result<Option<UploadTicket>> {
        let kind = checkpoint.kind;
        match self.resume_ticket(kind, checkpoint).await {
            Ok(Some(ticket)) => Ok(Some(ticket)),
            Ok(None) => {
                reporter.notice(format!(
                    "the upload credentials of {} {} expired and cannot be refreshed; starting a new upload",
                    kind.id_field(),
                    checkpoint.media_id
                ));
                Ok(None)
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                reporter.notice(format!(
                    "{} {} is gone; starting a new upload",
                    kind.id_field(),
                    checkpoint.media_id
                ));
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// When `checkpoint` says a commit was about to be sent, asks the service whether the media is
    /// already whole with exactly the recorded size and CRC-64 (the commit went through and the run
    /// died before removing the checkpoint). Then the upload is done: the result is built from the
    /// checkpoint and nothing is sent again. Anything else (not uploaded, other figures, no readable
    /// URL, no CRC-64 from the service) resumes as usual. `purpose` tells a playlist's checkpoint (whose
    /// result also counts its segments) from a plain object's.
    pub(crate) async fn already_committed(
        &self,
        purpose: Purpose,
        checkpoint: &Checkpoint,
        reporter: &Reporter,
    ) -> Result<Option<UploadResult>> {
        let Some(committing) = checkpoint.committing else { return Ok(None) };
        let kind = checkpoint.kind;
        let stored = match self.vod().stored_source(kind, &checkpoint.media_id).await {
            Ok(stored) => stored,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if !stored.is_uploaded() || stored.size.is_some_and(|size| size != committing.size) {
            return Ok(None);
        }
        let Some(url) = stored.url.as_deref() else { return Ok(None) };
        let digest = crate::vod::object_digest(self.http(), url).await?;
        if digest.crc64 != Some(committing.crc64) || digest.size.is_some_and(|size| size != committing.size) {
            return Ok(None);
        }
        let Ok(address) = UploadAddress::decode(&checkpoint.upload_address) else { return Ok(None) };
        reporter.notice(format!(
            "{} {} is already uploaded whole (the interrupted run committed it; size and CRC-64 match): nothing to send",
            kind.id_field(),
            checkpoint.media_id
        ));
        // A playlist's checkpoint lists its segments: the result counts them as the upload did.
        let segments = u32::try_from(checkpoint.segments.len()).unwrap_or(u32::MAX);
        let playlist = (purpose == Purpose::Playlist).then(|| ObjectFigures {
            key: address.file_name.clone(),
            size: committing.size,
            crc64: committing.crc64,
        });
        Ok(Some(UploadResult {
            kind,
            media_id: checkpoint.media_id.clone(),
            request_id: checkpoint.request_id.clone(),
            bucket: address.bucket,
            key: address.file_name,
            size: committing.size + checkpoint.segments.iter().map(|s| s.size).sum::<u64>(),
            crc64: committing.crc64,
            parts: committing.parts.saturating_add(segments),
            resumed_parts: committing.parts.saturating_add(segments),
            media_url: checkpoint.media_url.clone(),
            file_url: checkpoint.file_url.clone(),
            segments,
            playlist,
        }))
    }

    /// Locks the checkpoint of an upload of the source `identity` names (none without an identity, or
    /// with resume off) and reads what an earlier run left there.
    pub(crate) fn open_checkpoint(
        &self,
        purpose: Purpose,
        identity: Option<&source::SourceIdentity>,
        options: &UploadOptions,
    ) -> Result<(Option<CheckpointFile>, Option<Checkpoint>)> {
        let Some(identity) = identity.filter(|_| options.resume) else {
            return Ok((None, None));
        };
        let dir = options.checkpoint_dir.clone().unwrap_or_else(checkpoint::default_dir);
        let endpoint = self.vod().endpoint().to_string();
        let (file, previous) = CheckpointFile::open(&dir, &[purpose.label(), &endpoint, &identity.location])?;
        Ok((Some(file), previous))
    }

    /// The checkpoint an interrupted upload of `location` left in `options`' folder, if any, unlocked.
    pub fn peek_checkpoint(
        &self,
        purpose: Purpose,
        location: &str,
        options: &UploadOptions,
    ) -> Option<Checkpoint> {
        let dir = options.checkpoint_dir.clone().unwrap_or_else(checkpoint::default_dir);
        let endpoint = self.vod().endpoint().to_string();
        checkpoint::peek(&dir, &[purpose.label(), &endpoint, location])
    }

    /// Keeps a checkpoint only when it is for the same media type, source content and part size.
    fn usable_checkpoint(
        &self,
        checkpoint: Checkpoint,
        kind: MediaKind,
        opened: &Opened,
        layout: Layout,
        reporter: &Reporter,
    ) -> Option<Checkpoint> {
        if checkpoint.kind != kind || checkpoint.endpoint != self.vod().endpoint().as_str() {
            return None;
        }
        if Some(&checkpoint.source) != opened.identity.as_ref() {
            reporter.notice(format!(
                "{} changed since the checkpoint of {} {} (size, time or validators differ); starting a new upload",
                opened.display,
                kind.id_field(),
                checkpoint.media_id
            ));
            return None;
        }
        if checkpoint.part_size != layout.first_part_size() {
            reporter.notice("the part size differs from the checkpoint's; starting a new upload");
            return None;
        }
        Some(checkpoint)
    }

    /// Credentials for a resumed upload: RefreshUploadVideo for a video (fresh credentials, same
    /// address); for images and attached media, which cannot refresh, the stored ones while they stay
    /// valid for another minute, else None (a new address is needed).
    async fn resume_ticket(&self, kind: MediaKind, checkpoint: &Checkpoint) -> Result<Option<UploadTicket>> {
        if kind == MediaKind::Video {
            return self.vod().refresh_upload_video(&checkpoint.media_id).await.map(Some);
        }
        let address = UploadAddress::decode(&checkpoint.upload_address).ok();
        let auth = UploadAuth::decode(&checkpoint.upload_auth).ok();
        let (Some(address), Some(auth)) = (address, auth) else { return Ok(None) };
        if auth.expires_at().is_none_or(|at| at <= SystemTime::now() + Duration::from_secs(60)) {
            return Ok(None);
        }
        Ok(Some(UploadTicket {
            kind,
            media_id: checkpoint.media_id.clone(),
            address,
            auth,
            address_b64: checkpoint.upload_address.clone(),
            request_id: checkpoint.request_id.clone(),
            media_url: checkpoint.media_url.clone(),
            file_url: checkpoint.file_url.clone(),
        }))
    }

    pub(crate) fn send_context(
        &self,
        kind: MediaKind,
        ticket: &UploadTicket,
        options: &UploadOptions,
        reporter: &Reporter,
    ) -> Result<SendContext> {
        let target = OssTarget::new(&ticket.address, &ticket.auth)?;
        let oss = OssClient::new(self.http().clone(), target).with_retry(self.inner.retry);
        let refresher: Option<Refresher> = (kind == MediaKind::Video).then(|| {
            let client = self.clone();
            let video_id = ticket.media_id.clone();
            let refresher: Refresher = Arc::new(move || {
                let client = client.clone();
                let video_id = video_id.clone();
                Box::pin(async move { client.vod().refresh_upload_video(&video_id).await })
            });
            refresher
        });
        let session = Arc::new(Session::new(oss, ticket, refresher, reporter.clone()));
        Ok(SendContext {
            session,
            key: ticket.address.file_name.clone(),
            retry: self.inner.retry,
            limiter: options
                .limiter
                .clone()
                .or_else(|| options.limit_rate.map(|rate| Arc::new(RateLimiter::new(rate)))),
            reporter: reporter.clone(),
            cancel: options.cancel.clone(),
            slots: options.slots.clone(),
        })
    }

    /// Sends the object: one PutObject, or a (resumed) multipart upload. Returns size, CRC and part
    /// counts.
    async fn send_object(
        &self,
        context: &SendContext,
        opened: Opened,
        layout: Layout,
        recorder: &mut Recorder,
        options: &UploadOptions,
        ticket: &UploadTicket,
    ) -> Result<Outcome> {
        let content_type = content_type_of(&ticket.address.file_name);
        let parallel = options.parallel.unwrap_or_else(|| plan::default_parallel(layout.parts())).max(1);
        let start = |multipart: bool, resumed: &[DonePart]| Event::Started {
            kind: ticket.kind,
            media_id: ticket.media_id.clone(),
            bucket: ticket.address.bucket.clone(),
            key: ticket.address.file_name.clone(),
            size: opened.size,
            multipart,
            part_size: layout.first_part_size(),
            parts: layout.parts(),
            parallel: if multipart { parallel } else { 1 },
            resumed_parts: u32::try_from(resumed.len()).unwrap_or(u32::MAX),
            resumed_bytes: resumed.iter().map(|p| p.size).sum(),
        };
        let reporter = &context.reporter;
        let path = opened.path.clone();
        let with_path = |e: Error| match &path {
            Some(p) => e.with_path(p),
            None => e,
        };

        // A known small size: one PutObject.
        let reader = match (opened.reader, layout) {
            (Reader::Random(source), Layout::Single { size }) => {
                let len =
                    usize::try_from(size).map_err(|_| Error::invalid_input("file too large for memory"))?;
                // A shared pool bounds whole-file puts too; alone, one buffer is the upload's memory.
                let mut slot = match &context.slots {
                    Some(slots) => Some(slots.acquire().await),
                    None => None,
                };
                let buffer = slot.as_mut().map(Slot::take_buffer).unwrap_or_default();
                let data = source.read_at(0, len, buffer).await.map_err(&with_path)?.freeze();
                reporter.emit(start(false, &[]));
                let outcome =
                    self.put_whole(context, data, &content_type, Some(recorder)).await.map_err(with_path);
                drop(slot);
                return outcome;
            }
            (reader, _) => reader,
        };

        // An earlier run's multipart upload is checked against ListParts before the feed is built, so the
        // feed skips exactly the parts OSS holds. Built from the checkpoint first, it would skip parts (or
        // a whole upload) gone from OSS, never send them, and Complete would lack them.
        let resumed_upload = self.reconcile_upload(context, recorder).await?;
        let (feed, first) = match reader {
            Reader::Random(source) => (Feed::random(source, layout, &recorder.state.parts), None),
            Reader::Sequential(stream) => {
                let feed = Feed::sequential(stream, layout, &recorder.state.parts);
                // A new upload of a stream: its first part tells whether one PutObject is all it needs.
                let first = if resumed_upload.is_none() { feed.next(&mut None).await? } else { None };
                if let Some(job) = &first
                    && (job.data.len() as u64) < layout.first_part_size()
                {
                    if job.data.is_empty() {
                        return Err(
                            Error::invalid_input("the source is empty").with_hint("upload a non-empty file")
                        );
                    }
                    reporter.emit(start(false, &[]));
                    return self.put_whole(context, job.data.clone(), &content_type, Some(recorder)).await;
                }
                (feed, first)
            }
        };
        let upload_id = match resumed_upload {
            Some(upload_id) => upload_id,
            None => self.initiate_upload(context, recorder, &content_type).await?,
        };
        reporter.emit(start(true, &recorder.state.parts));
        let resumed_parts = u32::try_from(recorder.state.parts.len()).unwrap_or(u32::MAX);
        let recorder_lock = tokio::sync::Mutex::new(std::mem::replace(
            recorder,
            Recorder { file: None, state: recorder.state.clone() },
        ));
        let outcome = match multipart::run(context, &upload_id, &feed, first, parallel, &recorder_lock).await
        {
            Ok(parts) => {
                multipart::finish(
                    context,
                    &upload_id,
                    &parts,
                    opened.size,
                    resumed_parts,
                    Some(&recorder_lock),
                )
                .await
            }
            Err(error) => Err(error),
        };
        *recorder = recorder_lock.into_inner();
        outcome.map_err(with_path)
    }

    /// One PutObject of the whole object. With a `recorder`, the object's figures are recorded before
    /// the put ([`Checkpoint::committing`]), so a run killed after it finds the media whole.
    pub(crate) async fn put_whole(
        &self,
        context: &SendContext,
        data: bytes::Bytes,
        content_type: &str,
        recorder: Option<&mut Recorder>,
    ) -> Result<Outcome> {
        let crc = vodup_proto::crc64::checksum(&data);
        let size = data.len() as u64;
        let committing = recorder.is_some();
        if let Some(recorder) = recorder {
            recorder.state.committing = Some(Committing { size, crc64: crc, parts: 1 });
            recorder.save().await?;
            fault::hit(UploadPoint::Committing);
        }
        context.send("PutObject", None, &data, crc, content_type).await?;
        if committing {
            fault::hit(UploadPoint::Committed);
        }
        Ok(Outcome { size, crc64: crc, parts: 1, resumed_parts: 0 })
    }

    /// The checkpoint's multipart upload if OSS still lists it, keeping only the parts OSS lists with the
    /// same ETag and size; None (and no parts) when there is none or it is gone (completed or aborted).
    async fn reconcile_upload(
        &self,
        context: &SendContext,
        recorder: &mut Recorder,
    ) -> Result<Option<String>> {
        let Some(upload_id) = recorder.state.upload_id.clone() else { return Ok(None) };
        let credentials = context.session.credentials().await?;
        match context.session.oss.list_parts(&credentials, &context.key, &upload_id).await {
            Ok(listed) => {
                let before = recorder.state.parts.len();
                recorder.state.parts.retain(|done| {
                    listed.iter().any(|l| {
                        l.part_number == done.number
                            && l.size == done.size
                            && vodup_proto::oss::part::etags_match(&l.etag, &done.etag)
                    })
                });
                if recorder.state.parts.len() < before {
                    context.reporter.notice(format!(
                        "{} checkpointed parts are not on the server any more and will be sent again",
                        before - recorder.state.parts.len()
                    ));
                }
                recorder.save().await?;
                Ok(Some(upload_id))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                context.reporter.notice(
                    "the multipart upload of the checkpoint is gone (completed or aborted); sending every part again",
                );
                recorder.state.upload_id = None;
                recorder.state.parts.clear();
                recorder.state.committing = None;
                recorder.save().await?;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Starts a new multipart upload and records its id (with no parts) before any part is sent.
    async fn initiate_upload(
        &self,
        context: &SendContext,
        recorder: &mut Recorder,
        content_type: &str,
    ) -> Result<String> {
        let credentials = context.session.credentials().await?;
        let upload_id = context.session.oss.initiate(&credentials, &context.key, content_type).await?;
        fault::hit(UploadPoint::Initiated);
        recorder.state.upload_id = Some(upload_id.clone());
        recorder.state.parts.clear();
        recorder.state.committing = None;
        recorder.save().await?;
        Ok(upload_id)
    }
}

#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) size: u64,
    pub(crate) crc64: u64,
    pub(crate) parts: u32,
    pub(crate) resumed_parts: u32,
}

fn report_end(reporter: &Reporter, result: &Result<UploadResult>) {
    match result {
        Ok(done) => reporter.emit(Event::Completed {
            media_id: done.media_id.clone(),
            size: done.size,
            crc64: done.crc64.to_string(),
        }),
        Err(error) => {
            reporter.emit(Event::Failed { kind: error.kind().as_str().to_owned(), error: error.to_string() });
        }
    }
}

/// The Content-Type OSS stores, from the key's extension (as both official OSS clients guess it).
pub fn content_type_of(key: &str) -> String {
    let ext = vodup_proto::vod::media::extension_of(key).unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" | "qt" => "video/quicktime",
        "ts" | "m2t" | "mts" => "video/mp2t",
        "m3u8" => "application/x-mpegURL",
        "flv" => "video/x-flv",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mp3" => "audio/mpeg",
        "m4a" | "aac" => "audio/aac",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "png" | "apng" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
    .to_owned()
}
