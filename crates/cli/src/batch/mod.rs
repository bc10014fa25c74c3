//! `vodup upload KIND SOURCE...` with several sources, a folder or `--from-list`: a batch. The SDK runs it
//! (`vodup_sdk::batch`: jobs sharing part slots and a rate limit, a manifest that makes re-runs safe);
//! this module finds the files, picks the defaults and turns the outcome into output and an exit code.

mod list;
mod output;
mod sources;

use std::sync::Arc;

use vodup_sdk::batch::{BatchOptions, BatchProgress};
use vodup_sdk::upload::plan::default_parallel;

use self::output::BatchReporter;
use crate::args::UploadCommand;
use crate::exit;
use crate::interrupt::cancel_on_ctrl_c;
use crate::output::Mode;

/// Files in flight when `--jobs` is not given.
const DEFAULT_JOBS: u16 = 4;

/// Runs the batch; returns the exit code.
pub async fn run(command: &UploadCommand) -> u8 {
    let (sources, common) = command.parts();
    let mode = Mode::choose(common.json, common.quiet);
    let kind = command.media().kind();
    let fail = |error: vodup_sdk::Error| {
        let code = exit::of(error.kind());
        BatchReporter::new(mode, 0, kind).fatal(&error, code);
        code
    };
    let media = command.media();
    let items = match sources::expand(sources, &common.batch, &media) {
        Ok(items) => items,
        Err(error) => return fail(error),
    };
    let client = match common.client() {
        Ok(client) => client,
        Err(error) => return fail(error),
    };
    let jobs = usize::from(common.batch.jobs.unwrap_or(DEFAULT_JOBS));
    let parallel = common.parallel.map_or_else(|| default_parallel(None), usize::from);
    let upload = common.options(None, command.include_keys());
    let interrupt = cancel_on_ctrl_c(upload.cancel.clone());
    let options = BatchOptions { jobs, parallel, upload, key: batch_key(command) };
    let reporter = Arc::new(BatchReporter::new(mode, items.len(), kind));
    let progress: Arc<dyn BatchProgress> = reporter.clone();
    let summary = client.upload_batch(items, &options, progress).await;
    interrupt.abort();
    match summary {
        Ok(summary) => {
            reporter.summary(&summary);
            if options.upload.cancel.is_cancelled() {
                exit::INTERRUPTED
            } else if summary.failed > 0 {
                exit::SOME_FAILED
            } else {
                exit::OK
            }
        }
        Err(error) => fail(error),
    }
}

/// What names the batch: the media type, the sources as absolute paths, and the filters. The same
/// command in any working folder finds the same manifest.
fn batch_key(command: &UploadCommand) -> Vec<String> {
    let (sources, common) = command.parts();
    let absolute = |s: &String| {
        if s.starts_with("http://") || s.starts_with("https://") {
            s.clone()
        } else {
            std::path::absolute(s).map_or_else(|_| s.clone(), |p| p.to_string_lossy().into_owned())
        }
    };
    let kind = match command {
        UploadCommand::Video { .. } => "video",
        UploadCommand::Image { .. } => "image",
        UploadCommand::Attached { .. } => "attached",
        UploadCommand::M3u8 { .. } => "m3u8",
    };
    let args = &common.batch;
    let mut key = vec![kind.to_owned()];
    key.extend(sources.iter().map(absolute));
    key.push(format!("recursive={}", args.recursive));
    key.extend(args.include.iter().map(|g| format!("include={g}")));
    key.extend(args.exclude.iter().map(|g| format!("exclude={g}")));
    if let Some(list) = &args.from_list {
        key.push(format!("list={}", std::path::absolute(list).unwrap_or_else(|_| list.clone()).display()));
    }
    key
}
