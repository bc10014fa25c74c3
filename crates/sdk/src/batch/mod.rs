//! Batch uploads: many files, `jobs` of them in flight, all sharing one pool of part slots (so memory is
//! part size × slots however many files run) and one rate limiter, recorded in a manifest so the same
//! batch can be run again after any interruption.
//!
//! Each file goes through [`journal`]: an `intent` before its media is created (a video carries a fresh
//! ReferenceId), `created` as soon as CreateUpload* answers, `done` after. Running the batch again:
//! - a file `done` with the same size and modification time is skipped;
//! - a video the journal knows by ReferenceId that is already `Normal` (the crash came after the upload,
//!   before the record) is recorded done, not uploaded again;
//! - a half-done file whose upload checkpoint names its media resumes it (the upload engine's own
//!   checkpoint, see [`crate::upload`]);
//! - any other media the journal (or a checkpoint) saw created for the file is deleted before the file is
//!   uploaded again, so no file ever ends with two media items.
//!
//! One file failing does not stop the others; the summary says which failed and why.

pub mod journal;

use std::sync::Arc;

use futures_util::StreamExt as _;

use self::journal::{Entry, Journal, Record};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::rate::RateLimiter;
use crate::source::{Source, SourceIdentity};
use crate::upload::checkpoint::Purpose;
use crate::upload::plan::Layout;
use crate::upload::progress::{Event, Progress};
use crate::upload::slots::PartSlots;
use crate::upload::{UploadOptions, UploadResult, checkpoint};
use crate::vod::{AttachedMeta, ImageMeta, MediaKind, VideoMeta};

/// What one file becomes, with its metadata.
#[derive(Debug, Clone)]
pub enum BatchMedia {
    /// A video or audio file (CreateUploadVideo).
    Video(VideoMeta),
    /// An M3U8 playlist with its segments (CreateUploadVideo for the playlist).
    M3u8(VideoMeta),
    /// An image (CreateUploadImage).
    Image(ImageMeta),
    /// A watermark, subtitle or material (CreateUploadAttachedMedia).
    Attached(AttachedMeta),
}

impl BatchMedia {
    /// The media type created.
    pub fn kind(&self) -> MediaKind {
        match self {
            Self::Video(_) | Self::M3u8(_) => MediaKind::Video,
            Self::Image(_) => MediaKind::Image,
            Self::Attached(_) => MediaKind::Attached,
        }
    }
}

/// One file of a batch.
#[derive(Debug)]
pub struct BatchItem {
    /// Where its bytes are.
    pub source: Source,
    /// How it is named in events, the manifest and the summary: the absolute path or the URL.
    pub file: String,
    /// What it becomes.
    pub media: BatchMedia,
}

/// How to run a batch.
#[derive(Debug, Default)]
pub struct BatchOptions {
    /// Files in flight (`--jobs`), at least 1.
    pub jobs: usize,
    /// Part slots shared by all files (`--parallel`): parts in flight, and part buffers in memory.
    pub parallel: usize,
    /// Everything else, as for one upload; `limit_rate` is for the whole batch.
    pub upload: UploadOptions,
    /// What names this batch (the command's sources and filters): the same key finds the same manifest.
    pub key: Vec<String>,
}

/// How a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Uploaded by this run.
    Done,
    /// Done by an earlier run (or found done after an interruption).
    Skipped,
    /// Failed; a re-run tries it again.
    Failed,
}

impl FileStatus {
    /// `done`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
        }
    }
}

/// What happened to one file.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub file: String,
    /// How it ended.
    pub status: FileStatus,
    /// Its media id (done or skipped).
    pub media_id: Option<String>,
    /// The upload's result (done).
    pub result: Option<UploadResult>,
    /// Why it failed.
    pub error: Option<Error>,
    /// Media of earlier, interrupted runs that were deleted as strays.
    pub cleaned: Vec<String>,
}

/// Receives a batch's progress. Called from its tasks: keep it quick.
pub trait BatchProgress: Send + Sync {
    /// An upload event of `file`.
    fn on_event(&self, file: &str, event: &Event);
    /// A file ended.
    fn on_file(&self, outcome: &FileOutcome);
}

/// The whole batch.
#[derive(Debug, Default)]
pub struct BatchSummary {
    /// Files uploaded by this run.
    pub done: usize,
    /// Files already done.
    pub skipped: usize,
    /// Files that failed.
    pub failed: usize,
    /// Every file's outcome, in the order they ended.
    pub outcomes: Vec<FileOutcome>,
}

/// What every file of a batch shares.
struct Shared {
    journal: Arc<Journal>,
    slots: Arc<PartSlots>,
    limiter: Option<Arc<RateLimiter>>,
    progress: Arc<dyn BatchProgress>,
}

impl Client {
    /// Uploads every item, `options.jobs` at a time, recording each in the batch manifest. Fails only if
    /// the batch cannot start (the manifest is locked by another run, say); a file that fails is in the
    /// summary.
    pub async fn upload_batch(
        &self,
        items: Vec<BatchItem>,
        options: &BatchOptions,
        progress: Arc<dyn BatchProgress>,
    ) -> Result<BatchSummary> {
        let dir = options.upload.checkpoint_dir.clone().unwrap_or_else(checkpoint::default_dir);
        let endpoint = self.vod().endpoint().to_string();
        let mut key: Vec<&str> = vec!["batch", &endpoint];
        key.extend(options.key.iter().map(String::as_str));
        let shared = Shared {
            journal: Arc::new(Journal::open(&dir, &key)?),
            slots: PartSlots::new(options.parallel),
            limiter: options.upload.limit_rate.map(|rate| Arc::new(RateLimiter::new(rate))),
            progress,
        };
        let mut summary = BatchSummary::default();
        let mut running =
            futures_util::stream::iter(items.into_iter().map(|item| self.run_file(item, options, &shared)))
                .buffer_unordered(options.jobs.max(1));
        while let Some(outcome) = running.next().await {
            shared.progress.on_file(&outcome);
            match outcome.status {
                FileStatus::Done => summary.done += 1,
                FileStatus::Skipped => summary.skipped += 1,
                FileStatus::Failed => summary.failed += 1,
            }
            summary.outcomes.push(outcome);
        }
        Ok(summary)
    }

    async fn run_file(&self, item: BatchItem, options: &BatchOptions, shared: &Shared) -> FileOutcome {
        let mut cleaned = Vec::new();
        let file = item.file.clone();
        let outcome = self.upload_file(item, options, shared, &mut cleaned).await;
        let (status, media_id, result, error) = match outcome {
            Ok((status, media_id, result)) => (status, Some(media_id), result, None),
            Err(error) => {
                if error.kind() != ErrorKind::Cancelled {
                    shared
                        .journal
                        .append_later(Record::Failed { file: file.clone(), error: error.to_string() });
                }
                (FileStatus::Failed, None, None, Some(error))
            }
        };
        FileOutcome { file, status, media_id, result, error, cleaned }
    }

    async fn upload_file(
        &self,
        item: BatchItem,
        options: &BatchOptions,
        shared: &Shared,
        cleaned: &mut Vec<String>,
    ) -> Result<(FileStatus, String, Option<UploadResult>)> {
        if options.upload.cancel.is_cancelled() {
            return Err(crate::upload::multipart::cancelled());
        }
        let BatchItem { source, file, mut media } = item;
        let kind = media.kind();
        let file = &file;
        let identity = identity_of(&source).await;
        let entry = shared.journal.entry(file);
        if let Some((media_id, done_identity, _)) = &entry.done
            && (identity.is_none() || identity == *done_identity)
        {
            return Ok((FileStatus::Skipped, media_id.clone(), None));
        }
        // The media an interrupted run of this file will resume, if its checkpoint is still good for it.
        let purpose = match media {
            BatchMedia::M3u8(_) => Purpose::Playlist,
            _ => Purpose::Media(kind),
        };
        let resumable = identity
            .as_ref()
            .filter(|_| options.upload.resume)
            .and_then(|identity| {
                self.peek_checkpoint(purpose, &identity.location, &options.upload)
                    .filter(|c| c.source == *identity && c.kind == kind)
            })
            .map(|c| c.media_id);
        let (reference_id, recheck) =
            match self.settle(file, kind, &entry, resumable.as_ref(), shared, cleaned).await? {
                Settled::Finished { video_id, size } => {
                    let done =
                        Record::Done { file: file.clone(), media_id: video_id.clone(), identity, size };
                    shared.journal.append(done).await?;
                    return Ok((FileStatus::Skipped, video_id, None));
                }
                Settled::Continue { reference_id, recheck } => (reference_id, recheck),
            };

        let reference_id = match &mut media {
            BatchMedia::Video(meta) | BatchMedia::M3u8(meta) => {
                // The caller's own ReferenceId wins; a stray that holds it was deleted above.
                let id = meta.reference_id.clone().or(reference_id).unwrap_or_else(new_reference_id);
                meta.reference_id = Some(id.clone());
                Some(id)
            }
            BatchMedia::Image(_) | BatchMedia::Attached(_) => None,
        };
        shared.journal.append(Record::Intent { file: file.clone(), reference_id }).await?;

        // A file sent in one PutObject has no parts to resume, and the journal already finds its media
        // again (`created`, and a video's ReferenceId): its own checkpoint would only cost two fsyncs
        // and four file operations per file, the larger share of a small file's client time.
        let single_put = !matches!(media, BatchMedia::M3u8(_))
            && identity.as_ref().is_some_and(|identity| {
                matches!(
                    Layout::plan(identity.size, options.upload.part_size, options.upload.multipart_threshold),
                    Ok((Layout::Single { .. }, _))
                )
            });
        let upload = UploadOptions {
            part_size: options.upload.part_size,
            parallel: Some(shared.slots.size()),
            multipart_threshold: options.upload.multipart_threshold,
            checkpoint_dir: options.upload.checkpoint_dir.clone(),
            resume: options.upload.resume && !single_put,
            limit_rate: None,
            progress: Some(Arc::new(FileProgress {
                file: file.clone(),
                journal: Arc::clone(&shared.journal),
                progress: Arc::clone(&shared.progress),
            })),
            cancel: options.upload.cancel.clone(),
            include_keys: options.upload.include_keys,
            slots: Some(Arc::clone(&shared.slots)),
            limiter: shared.limiter.clone(),
        };
        let result = match &media {
            BatchMedia::Video(meta) => self.upload_video(source, meta, &upload).await,
            BatchMedia::M3u8(meta) => self.upload_m3u8(source, meta, &upload).await,
            BatchMedia::Image(meta) => self.upload_image(source, meta, &upload).await,
            BatchMedia::Attached(meta) => self.upload_attached(source, meta, &upload).await,
        }?;
        let done = Record::Done {
            file: file.clone(),
            media_id: result.media_id.clone(),
            identity,
            size: result.size,
        };
        shared.journal.append(done).await?;
        if let Some(reference) = recheck {
            self.remove_late_stray(file, kind, &reference, &result.media_id, shared, cleaned).await;
        }
        Ok((FileStatus::Done, result.media_id.clone(), Some(result)))
    }

    /// Deletes the video an interrupted run created with `reference` if its CreateUploadVideo committed
    /// only after this run had looked for it (the request was on its way when that run was killed). By
    /// now, a whole upload later, it has. Best effort: the file is uploaded either way, and a stray left
    /// here stays `Uploading` until the service's sweeper marks it failed.
    async fn remove_late_stray(
        &self,
        file: &str,
        kind: MediaKind,
        reference: &str,
        uploaded: &str,
        shared: &Shared,
        cleaned: &mut Vec<String>,
    ) {
        let Ok(Some((stray, ..))) = self.vod().find_video_by_reference(reference).await else { return };
        if stray == uploaded || self.vod().delete_media(kind, &[&stray]).await.is_err() {
            return;
        }
        let record = Record::Cleaned { file: file.to_owned(), media_id: stray.clone() };
        if shared.journal.append(record).await.is_ok() {
            cleaned.push(stray);
        }
    }
}

/// What an earlier, interrupted run of a file left, once settled.
enum Settled {
    /// Its video was uploaded; only the record was missing.
    Finished { video_id: String, size: u64 },
    /// Upload it, with this ReferenceId if the earlier one may be reused. `recheck` is an earlier run's
    /// ReferenceId that named no video yet: its CreateUploadVideo may still have been on its way, so the
    /// upload takes a new ReferenceId and looks for that one again once done.
    Continue { reference_id: Option<String>, recheck: Option<String> },
}

impl Client {
    /// Settles what earlier runs left of `file`: a video found `Normal` by its ReferenceId is finished;
    /// every media created for it that its checkpoint will not resume is deleted (a stray), so the upload
    /// that follows is the file's only media.
    async fn settle(
        &self,
        file: &str,
        kind: MediaKind,
        entry: &Entry,
        resumable: Option<&String>,
        shared: &Shared,
        cleaned: &mut Vec<String>,
    ) -> Result<Settled> {
        let mut strays: Vec<String> = entry.created.clone();
        // Done before, but the file changed since: it becomes a new item, with a new ReferenceId (the old
        // one names the finished video, which stays).
        let mut reference_id = if entry.done.is_some() { None } else { entry.reference_id.clone() };
        let mut recheck = None;
        if let Some(reference) = reference_id.as_deref().filter(|_| kind == MediaKind::Video) {
            match self.vod().find_video_by_reference(reference).await? {
                Some((video_id, status, size)) if status != "Uploading" && status != "UploadFail" => {
                    // Uploaded before the interruption could record it.
                    return Ok(Settled::Finished { video_id, size: size.unwrap_or_default() });
                }
                Some((video_id, ..)) => {
                    if resumable != Some(&video_id) {
                        reference_id = None;
                    }
                    if !strays.contains(&video_id) {
                        strays.push(video_id);
                    }
                }
                None => recheck = reference_id.take(),
            }
        }
        strays.retain(|id| resumable != Some(id));
        for media_id in strays {
            match self.vod().delete_media(kind, &[&media_id]).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let record = Record::Cleaned { file: file.to_owned(), media_id: media_id.clone() };
            shared.journal.append(record).await?;
            cleaned.push(media_id);
        }
        Ok(Settled::Continue { reference_id, recheck })
    }
}

/// One file's upload events: `created` goes into the journal at once, everything goes to the batch's
/// progress with the file's name.
struct FileProgress {
    file: String,
    journal: Arc<Journal>,
    progress: Arc<dyn BatchProgress>,
}

impl Progress for FileProgress {
    fn on_event(&self, event: &Event) {
        if let Event::Created { media_id, .. } = event {
            // Queued, not awaited (this callback is synchronous): the `done` record awaited later is
            // durable only after it, and a video is also found by its ReferenceId.
            self.journal
                .append_later(Record::Created { file: self.file.clone(), media_id: media_id.clone() });
        }
        self.progress.on_event(&self.file, event);
    }
}

/// A file's identity before it is opened: absolute path, size and modification time (as the upload
/// engine computes it); `None` for URLs, streams and files that cannot be read.
async fn identity_of(source: &Source) -> Option<SourceIdentity> {
    let Source::File(path) = source else { return None };
    let path = path.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = std::fs::metadata(&path).ok()?;
        let absolute = std::path::absolute(&path).unwrap_or(path);
        Some(crate::source::file::identity(&absolute, &metadata))
    })
    .await
    .ok()
    .flatten()
}

/// A ReferenceId no other video has: `vodup-` and 32 random hex digits.
fn new_reference_id() -> String {
    format!("vodup-{:032x}", rand::random::<u128>())
}
