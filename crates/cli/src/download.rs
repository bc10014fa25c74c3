//! `vodup download ID -o FILE`: the source of a video (or image, or attached media) back from VOD or
//! `vodup serve`, verified. The flags become an SDK client (the same endpoint and credential flags as
//! `vodup upload`) and download options; the SDK's outcome becomes output and an exit code. All the work
//! is the SDK's (`vodup_sdk::download`).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::{Value, json};
use tokio::io::{AsyncWrite, BufWriter};
use vodup_sdk::download::{DownloadEvent, DownloadOptions, Downloaded};
use vodup_sdk::vod::MediaKind;
use vodup_sdk::{Error, ErrorKind};

use crate::args::ConnectArgs;
use crate::bar::{self, Baseline, Shape};
use crate::exit;
use crate::interrupt::cancel_on_ctrl_c;

/// Standard output is written in blocks this large (network chunks are small).
const STDOUT_BUFFER: usize = 1 << 20;

/// Flags of `vodup download`.
#[derive(Debug, Args)]
#[command(override_usage = concat!(
    "vodup download [OPTIONS] <ID> -o <FILE>\n\n",
    "The AccessKey comes from ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or\n",
    "--profile), the endpoint from VODUP_ENDPOINT (default: VOD in VODUP_REGION, else cn-shanghai),\n",
    "as for `vodup upload`."
))]
pub struct DownloadArgs {
    /// The VideoId (the ImageId with --image, the MediaId with --attached).
    #[arg(value_name = "ID")]
    id: String,
    /// Where to write: a file, replaced only once the download is verified (a failed download leaves it
    /// as it was), or `-` for standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: PathBuf,
    /// The id is an ImageId: download the image's source (GetImageInfo).
    #[arg(long, conflicts_with = "attached")]
    image: bool,
    /// The id is a MediaId of attached media (GetAttachedMediaInfo).
    #[arg(long)]
    attached: bool,
    /// Download even when OSS gives no CRC-64 (x-oss-hash-crc64ecma) to verify against; only the length
    /// is then checked. A CRC-64 that is given is checked anyway.
    #[arg(long)]
    no_verify: bool,
    /// One JSON line on stdout: the `result` (or `error`). Not with `-o -`.
    #[arg(long)]
    json: bool,
    /// No progress bar, and with `-o -` no result line on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl DownloadArgs {
    fn kind(&self) -> MediaKind {
        if self.image {
            MediaKind::Image
        } else if self.attached {
            MediaKind::Attached
        } else {
            MediaKind::Video
        }
    }

    fn to_stdout(&self) -> bool {
        self.output.as_os_str() == "-"
    }
}

/// Runs the download; returns the exit code.
pub async fn run(args: DownloadArgs) -> u8 {
    if args.to_stdout() && args.json {
        eprintln!(
            "vodup: --json prints its result line on standard output, which `-o -` uses for the bytes; \
             write to a file, or leave out --json"
        );
        return exit::USAGE;
    }
    if args.output.as_os_str().is_empty() {
        eprintln!("vodup: -o needs a file name (or `-` for standard output)");
        return exit::USAGE;
    }
    let bar = (!args.json && !args.quiet && std::io::stderr().is_terminal()).then(|| Bar::new(&args.id));
    let stdout_broken = Arc::new(AtomicBool::new(false));
    let outcome = download(&args, bar.clone(), Arc::clone(&stdout_broken)).await;
    if let Some(bar) = &bar {
        bar.end(outcome.is_ok());
    }
    match outcome {
        Ok(done) => {
            report(&args, &done);
            exit::OK
        }
        // The reader of `-o -` went away (`| head`): its choice, as with any tool writing to a pipe.
        Err(_) if stdout_broken.load(Ordering::Relaxed) => exit::OK,
        Err(error) => {
            let code = exit::of(error.kind());
            if args.json {
                println!("{}", error_line(&error, code));
            }
            eprintln!("vodup: {error}");
            code
        }
    }
}

async fn download(
    args: &DownloadArgs,
    bar: Option<Bar>,
    stdout_broken: Arc<AtomicBool>,
) -> Result<Downloaded, Error> {
    let client = args.connect.client()?;
    let mut options = DownloadOptions { require_crc64: !args.no_verify, ..DownloadOptions::default() };
    if let Some(bar) = bar {
        options.progress = Some(Arc::new(move |event| bar.on_event(event)));
    }
    let interrupt = cancel_on_ctrl_c(options.cancel.clone());
    let kind = args.kind();
    let outcome = if args.to_stdout() {
        let stdout = WatchBrokenPipe { inner: tokio::io::stdout(), broken: stdout_broken };
        let mut writer = BufWriter::with_capacity(STDOUT_BUFFER, stdout);
        client.download(kind, &args.id, &mut writer, &options).await
    } else {
        client.download_to_file(kind, &args.id, &args.output, &options).await
    };
    interrupt.abort();
    outcome.map_err(|e| if e.kind() == ErrorKind::Cancelled { e.with_hint(cancel_hint(args)) } else { e })
}

fn cancel_hint(args: &DownloadArgs) -> String {
    if args.to_stdout() {
        "interrupted; standard output got part of the source".to_owned()
    } else {
        format!("interrupted; {} was left as it was", args.output.display())
    }
}

/// The result: a JSON line, or the plain line `VideoId <id>  <n> bytes  CRC-64 <crc>  <path>`, shaped
/// like `vodup upload`'s so the same `awk '{print $2}'` reads the id of either. With `-o -` the plain
/// line goes to stderr, since stdout carries the bytes.
fn report(args: &DownloadArgs, done: &Downloaded) {
    let path = args.output.display().to_string();
    if args.json {
        let line = json!({
            "Event": "result",
            done.kind.id_field(): done.media_id,
            "RequestId": done.request_id,
            "Size": done.size,
            "Crc64": done.crc64.to_string(),
            "Verified": done.crc64_verified,
            "Path": path,
        });
        println!("{line}");
        return;
    }
    let note = if done.crc64_verified { "" } else { "  (CRC-64 not verified: OSS gave none)" };
    let line = format!(
        "{} {}  {} bytes  CRC-64 {}  {path}{note}",
        done.kind.id_field(),
        done.media_id,
        done.size,
        done.crc64
    );
    if args.to_stdout() {
        if !args.quiet {
            eprintln!("{line}");
        }
    } else {
        // A closed pipe is the reader's choice; nothing to report.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

fn error_line(error: &Error, code: u8) -> Value {
    json!({
        "Event": "error",
        "ErrorKind": error.kind().as_str(),
        "Code": error.service_code(),
        "Message": error.to_string(),
        "Hint": error.hint(),
        "RequestId": error.request_id(),
        "ExitCode": code,
    })
}

/// The progress bar on a terminal, drawn as an upload's (`bar.rs`): a bar with the time left once the
/// length is known, bytes and rate before that, where it stopped after a failure.
#[derive(Debug, Clone)]
struct Bar {
    bar: ProgressBar,
    baseline: Baseline,
}

impl Bar {
    fn new(label: &str) -> Self {
        let baseline = Baseline::default();
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(bar::style(Shape::Unsized, false, &baseline));
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, baseline }
    }

    fn on_event(&self, event: DownloadEvent) {
        match event {
            DownloadEvent::Started { size } => {
                self.baseline.set(0);
                if let Some(size) = size {
                    self.bar.set_length(size);
                    self.bar.set_style(bar::style(Shape::Sized, false, &self.baseline));
                }
            }
            DownloadEvent::Received { bytes } => self.bar.inc(bytes),
        }
    }

    /// Clears the bar after a success; leaves it where it stopped after a failure.
    fn end(&self, succeeded: bool) {
        if succeeded {
            self.bar.finish_and_clear();
        } else {
            let shape = if self.bar.length().is_some() { Shape::Stopped } else { Shape::StoppedUnsized };
            self.bar.set_style(bar::style(shape, false, &self.baseline));
            self.bar.abandon();
        }
    }
}

/// Standard output that remembers whether its reader went away, so a closed pipe can end the command
/// quietly instead of as a failed download.
struct WatchBrokenPipe<W> {
    inner: W,
    broken: Arc<AtomicBool>,
}

impl<W> WatchBrokenPipe<W> {
    fn note<T>(&self, poll: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            self.broken.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WatchBrokenPipe<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note(poll)
    }
}
