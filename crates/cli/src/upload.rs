//! `vodup upload video|image|attached|m3u8 SOURCE` with one source: the flags (`args.rs`) turned into an
//! SDK client, metadata and upload options; the outcome, turned into output and an exit code. All the
//! work is the SDK's.

use std::sync::Arc;

use vodup_sdk::Error;
use vodup_sdk::batch::BatchMedia;
use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadResult;

use crate::args::{CommonArgs, UploadCommand};
use crate::exit;
use crate::interrupt::cancel_on_ctrl_c;
use crate::output::{Mode, Reporter};

/// Runs the upload of the one source; returns the exit code.
pub async fn run(command: UploadCommand) -> u8 {
    let (sources, common) = command.parts();
    let source_text = sources[0].clone();
    let mode = Mode::choose(common.json, common.quiet);
    let reporter = Arc::new(Reporter::new(mode, &source_text, command.media().kind()));
    let outcome = upload(&command, common, &source_text, Arc::clone(&reporter)).await;
    match outcome {
        Ok(result) => {
            reporter.result(&result);
            exit::OK
        }
        Err(error) => {
            let code = exit::of(error.kind());
            reporter.error(&error, code);
            eprintln!("vodup: {error}");
            code
        }
    }
}

async fn upload(
    command: &UploadCommand,
    common: &CommonArgs,
    source_text: &str,
    reporter: Arc<Reporter>,
) -> Result<UploadResult, Error> {
    let client = common.client()?;
    let source = Source::parse(source_text)?;
    let options = common.options(Some(reporter), command.include_keys());
    let cancel = options.cancel.clone();
    let interrupt = cancel_on_ctrl_c(cancel);
    let result = match command.media() {
        BatchMedia::Video(meta) => client.upload_video(source, &meta, &options).await,
        BatchMedia::M3u8(meta) => client.upload_m3u8(source, &meta, &options).await,
        BatchMedia::Image(meta) => client.upload_image(source, &meta, &options).await,
        BatchMedia::Attached(meta) => client.upload_attached(source, &meta, &options).await,
    };
    interrupt.abort();
    result
}
