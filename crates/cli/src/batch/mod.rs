//! `vodup upload KIND SOURCE...` with several sources, a folder or `--from-list`: a batch. The SDK runs it
//! (`vodup_sdk::batch`: jobs sharing part slots and a rate limit, a manifest that makes re-runs safe);
//! this module finds the files, picks the defaults and turns the outcome into output and an exit code.

mod list;
mod output;
mod sources;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;
use vodup_sdk::batch::{BatchOptions, BatchProgress};
use vodup_sdk::upload::plan::default_parallel;

use self::output::BatchReporter;
use crate::exit;
use crate::output::Mode;
use crate::upload::UploadCommand;

/// Files in flight when `--jobs` is not given.
const DEFAULT_JOBS: u16 = 4;

/// The flags that make and shape a batch.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Walk folders given as SOURCE into their subfolders too.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Only files matching this glob (path below the folder, or file name); repeatable.
    #[arg(long)]
    pub include: Vec<String>,
    /// Skip files matching this glob; repeatable.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Read sources (one per line, with optional metadata) from this file; see the README.
    #[arg(long)]
    pub from_list: Option<PathBuf>,
    /// Files in flight at once (default 4). They share --parallel part slots and --limit-rate.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
}

/// Whether the command is a batch: several sources, a folder, or a list.
pub fn is_batch(sources: &[String], args: &BatchArgs) -> bool {
    sources.len() > 1 || args.from_list.is_some() || sources.iter().any(|s| std::path::Path::new(s).is_dir())
}

/// Cancels `cancel` on Ctrl-C: uploads stop between requests and keep their checkpoints.
pub fn cancel_on_ctrl_c(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    })
}

/// Runs the batch; returns the exit code.
pub async fn run(command: &UploadCommand) -> u8 {
    let (sources, common) = command.parts();
    let mode = Mode::choose(common.json, common.quiet);
    let fail = |error: vodup_sdk::Error| {
        let code = exit::of(error.kind());
        BatchReporter::new(mode, 0).fatal(&error, code);
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
    let include_keys = matches!(command, UploadCommand::M3u8 { include_keys: true, .. });
    let jobs = usize::from(common.batch.jobs.unwrap_or(DEFAULT_JOBS));
    let parallel = common.parallel.map_or_else(|| default_parallel(None), usize::from);
    let upload = common.options(None, include_keys);
    let interrupt = cancel_on_ctrl_c(upload.cancel.clone());
    let options = BatchOptions { jobs, parallel, upload, key: batch_key(command) };
    let reporter = Arc::new(BatchReporter::new(mode, items.len()));
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
