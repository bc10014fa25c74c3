//! What `vodup upload` shows while it works: a progress bar (indicatif) when standard error is a
//! terminal, JSON lines on standard output with `--json` (every event, then one `result` or `error`
//! line last), and nothing but the result otherwise, so pipes and cron logs stay quiet.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::{Value, json};
use vodup_sdk::upload::UploadResult;
use vodup_sdk::upload::progress::{Event, Progress};

use crate::bar::{self, Baseline, Shape};
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
    bar: Option<ProgressBar>,
    baseline: Baseline,
    stdout: Mutex<()>,
    waiting: Waiting,
}

impl Reporter {
    /// A reporter for `mode`, labelled with the source's name.
    pub fn new(mode: Mode, label: &str) -> Self {
        let baseline = Baseline::default();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            // Until the size is known (it may never be, from a pipe), no total and no ETA.
            bar.set_style(bar::style(Shape::Unsized, false, &baseline));
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { mode, bar, baseline, stdout: Mutex::new(()), waiting: Waiting::default() }
    }

    fn line(&self, value: &Value) {
        json_line(&self.stdout, value);
    }

    /// The final line of a successful upload.
    pub fn result(&self, label: &str, result: &UploadResult) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let id_field = result.kind.id_field();
        match self.mode {
            Mode::Json => {
                let mut line = result_fields(result);
                line["event"] = json!("result");
                line["source"] = json!(label);
                self.line(&line);
            }
            Mode::Bar | Mode::Quiet => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{id_field} {}  {} bytes  CRC-64 {}  {} part(s){}  {label}",
                    result.media_id,
                    result.size,
                    result.crc64,
                    result.parts,
                    if result.resumed_parts > 0 {
                        format!(", {} resumed", result.resumed_parts)
                    } else {
                        String::new()
                    },
                );
            }
        }
    }

    /// The final line of a failed upload (JSON mode; the message itself goes to stderr).
    pub fn error(&self, error: &vodup_sdk::Error, exit_code: u8) {
        if let Some(bar) = &self.bar {
            // The last frame stays on screen: without an ETA, which would claim it was about to finish.
            let shape = if bar.length().is_some() { Shape::Stopped } else { Shape::StoppedUnsized };
            bar.set_style(bar::style(shape, false, &self.baseline));
            bar.abandon();
        }
        if self.mode == Mode::Json {
            self.line(&error_line(error, exit_code));
        }
    }
}

/// The JSON `error` line of a failed upload or batch: the error's kind, message, what to do next (every
/// error has a hint) and the exit code.
pub fn error_line(error: &vodup_sdk::Error, exit_code: u8) -> Value {
    json!({
        "event": "error",
        "kind": error.kind().as_str(),
        "message": error.to_string(),
        "hint": error.hint(),
        "exit_code": exit_code,
    })
}

impl Progress for Reporter {
    fn on_event(&self, event: &Event) {
        match self.mode {
            Mode::Json => {
                // Byte counts come many times a second; parts and the rest carry the same information.
                if !matches!(event, Event::BytesSent { .. })
                    && let Ok(value) = serde_json::to_value(event)
                {
                    self.line(&value);
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

/// Writes one JSON line to stdout, whole, under `lock` (lines from concurrent tasks never interleave).
pub fn json_line(lock: &Mutex<()>, value: &Value) {
    let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = std::io::stdout().lock();
    // A closed pipe is the reader's choice; nothing to report.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The fields of a `result` line that describe the upload (one file, or one file of a batch).
pub fn result_fields(result: &UploadResult) -> Value {
    let mut fields = json!({
        "kind": result.kind.as_str(),
        result.kind.id_field(): result.media_id,
        "RequestId": result.request_id,
        "Crc64": result.crc64.to_string(),
        "Size": result.size,
        "Bucket": result.bucket,
        "Key": result.key,
        "Parts": result.parts,
        "ResumedParts": result.resumed_parts,
    });
    if let Some(url) = &result.media_url {
        fields["MediaURL"] = json!(url);
    }
    if let Some(url) = &result.file_url {
        fields["FileURL"] = json!(url);
    }
    if result.segments > 0 {
        fields["Segments"] = json!(result.segments);
    }
    fields
}

#[cfg(test)]
mod tests {
    use vodup_sdk::{Error, ErrorKind};

    use super::*;
    use crate::exit;

    #[test]
    fn every_error_kind_has_a_hint_in_its_json_line() {
        for kind in ErrorKind::ALL {
            let line = error_line(&Error::new(kind, "UploadPart", "failed"), exit::of(kind));
            assert_eq!(line["kind"], kind.as_str());
            let hint = line["hint"].as_str().unwrap_or_else(|| panic!("{kind:?}: no hint in {line}"));
            assert!(hint.len() > 10, "{kind:?}: {line}");
            assert_eq!(line["exit_code"], exit::of(kind), "{line}");
        }
    }
}
