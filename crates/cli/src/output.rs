//! What `vodup upload` shows while it works: a progress bar (indicatif) when standard error is a
//! terminal, JSON lines on standard output with `--json` (every event, then one `result` or `error`
//! line last, in the vocabulary of `json.rs`), and nothing but the result otherwise, so pipes and cron
//! logs stay quiet.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use vodup_sdk::Error;
use vodup_sdk::upload::UploadResult;
use vodup_sdk::upload::progress::{Event, Progress};
use vodup_sdk::vod::MediaKind;

use crate::bar::{self, Baseline, Shape};
use crate::json::JsonLines;
use crate::waiting::Waiting;

/// How to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// JSON lines on stdout.
    Json,
    /// A bar on stderr.
    Bar,
    /// The result only.
    Quiet,
}

impl Mode {
    /// `--json` wins; then a bar when stderr is a terminal and `--quiet` is not given.
    pub fn choose(json: bool, quiet: bool) -> Self {
        if json {
            Self::Json
        } else if !quiet && std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Quiet
        }
    }
}

/// The [`Progress`] the CLI hands to the SDK.
#[derive(Debug)]
pub struct Reporter {
    mode: Mode,
    /// The source as given: the bar's label and every JSON line's `File`.
    label: String,
    bar: Option<ProgressBar>,
    baseline: Baseline,
    json: JsonLines,
    waiting: Waiting,
}

impl Reporter {
    /// A reporter for `mode`, labelled with the source's name, for an upload creating a `kind` media.
    pub fn new(mode: Mode, label: &str, kind: MediaKind) -> Self {
        let baseline = Baseline::default();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            // Until the size is known (it may never be, from a pipe), no total and no ETA.
            bar.set_style(bar::style(Shape::Unsized, false, &baseline));
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            mode,
            label: label.to_owned(),
            bar,
            baseline,
            json: JsonLines::new(kind),
            waiting: Waiting::default(),
        }
    }

    /// The final line of a successful upload.
    pub fn result(&self, result: &UploadResult) {
        let label = &self.label;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let id_field = result.kind.id_field();
        match self.mode {
            Mode::Json => self.json.write(&self.json.done(label, result, &[])),
            Mode::Bar | Mode::Quiet => {
                let resumed = if result.resumed_parts > 0 {
                    format!(", {} resumed", result.resumed_parts)
                } else {
                    String::new()
                };
                // A playlist's CRC-64 is the playlist object's; its size and count are the whole upload's.
                let (crc_of, unit) = if result.playlist.is_some() {
                    (" of the playlist", format!("object(s), {} segment(s)", result.segments))
                } else {
                    ("", "part(s)".to_owned())
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{id_field} {}  {} bytes  CRC-64{crc_of} {}  {} {unit}{resumed}  {label}",
                    result.media_id, result.size, result.crc64, result.parts,
                );
            }
        }
    }

    /// The final line of a failed upload (JSON mode; the message itself goes to stderr).
    pub fn error(&self, error: &Error, exit_code: u8) {
        if let Some(bar) = &self.bar {
            // The last frame stays on screen: without an ETA, which would claim it was about to finish.
            let shape = if bar.length().is_some() { Shape::Stopped } else { Shape::StoppedUnsized };
            bar.set_style(bar::style(shape, false, &self.baseline));
            bar.abandon();
        }
        if self.mode == Mode::Json {
            self.json.write(&self.json.failed(Some(&self.label), error, exit_code, &[]));
        }
    }
}

impl Progress for Reporter {
    fn on_event(&self, event: &Event) {
        match self.mode {
            Mode::Json => {
                if let Some(line) = self.json.event(&self.label, event) {
                    self.json.write(&line);
                }
            }
            Mode::Bar => {
                let Some(bar) = &self.bar else { return };
                match event {
                    Event::Started { size, resumed_bytes, media_id, kind, .. } => {
                        // Bytes an earlier run sent fill the bar but not the rate: this run starts now.
                        bar.set_position(*resumed_bytes);
                        self.baseline.set(*resumed_bytes);
                        if let Some(size) = size {
                            bar.set_length(*size);
                            bar.set_style(bar::style(Shape::Sized, false, &self.baseline));
                        }
                        bar.println(format!("{} {media_id}", kind.id_field()));
                    }
                    Event::BytesSent { bytes } => bar.inc(*bytes),
                    Event::Retried { wasted_bytes, .. } => {
                        bar.set_position(bar.position().saturating_sub(*wasted_bytes));
                        if let Some(line) = self.waiting.line(event) {
                            bar.println(line);
                        }
                    }
                    Event::CredentialsRefreshed { .. } => bar.set_message("credentials refreshed"),
                    Event::Notice { message } => bar.println(message),
                    _ => {}
                }
            }
            // Quiet is for pipes and cron logs: an outage is one line on stderr, nothing else is.
            Mode::Quiet => {
                if let Some(line) = self.waiting.line(event).filter(|_| is_outage(event)) {
                    eprintln!("vodup: {line}");
                }
            }
        }
    }
}

/// A retry because the service (or a source's server) failed to answer, not because bytes were damaged.
pub fn is_outage(event: &Event) -> bool {
    matches!(event, Event::Retried { kind, .. } if kind != "checksum_mismatch")
}
