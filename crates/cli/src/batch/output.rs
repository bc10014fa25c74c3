//! What a batch shows: with `--json`, every upload event as a JSON line naming its `File`, one `result`
//! (or `error`) line per file, and a final `summary` line, all in the vocabulary of `json.rs` (the same
//! lines a single upload writes); on a terminal, one overall bar and one bar per file in flight, then a
//! summary table; otherwise one line per file and the summary on stderr.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use vodup_sdk::batch::{BatchProgress, BatchSummary, FileOutcome, FileStatus};
use vodup_sdk::upload::progress::Event;
use vodup_sdk::vod::MediaKind;

use crate::bar::{self, Baseline, Shape};
use crate::exit;
use crate::json::JsonLines;
use crate::output::{Mode, is_outage};
use crate::waiting::Waiting;

/// The batch's [`BatchProgress`].
#[derive(Debug)]
pub struct BatchReporter {
    mode: Mode,
    bars: Option<Bars>,
    json: JsonLines,
    /// Held while a plain result line is written (files end concurrently).
    stdout: Mutex<()>,
    waiting: Waiting,
}

#[derive(Debug)]
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    files: Mutex<HashMap<String, ProgressBar>>,
}

impl BatchReporter {
    /// A reporter for `files` files, each becoming a `kind` media.
    pub fn new(mode: Mode, files: usize, kind: MediaKind) -> Self {
        let bars = (mode == Mode::Bar).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let overall = multi.add(ProgressBar::new(files as u64));
            overall.set_style(bar::batch_overall());
            overall.enable_steady_tick(Duration::from_millis(200));
            Bars { multi, overall, files: Mutex::new(HashMap::new()) }
        });
        Self { mode, bars, json: JsonLines::new(kind), stdout: Mutex::new(()), waiting: Waiting::default() }
    }

    /// The batch could not start (or stopped as a whole).
    pub fn fatal(&self, error: &vodup_sdk::Error, exit_code: u8) {
        if self.mode == Mode::Json {
            self.json.write(&self.json.failed(None, error, exit_code, &[]));
        }
        eprintln!("vodup: {error}");
    }

    /// The final line (JSON) or table (stderr).
    pub fn summary(&self, summary: &BatchSummary) {
        if let Some(bars) = &self.bars {
            bars.overall.finish_and_clear();
        }
        if self.mode == Mode::Json {
            self.json.write(&self.json.summary(summary));
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "\n{:<10} {:>6}", "files", summary.outcomes.len());
        let _ = writeln!(err, "{:<10} {:>6}", "done", summary.done);
        let _ = writeln!(err, "{:<10} {:>6}", "skipped", summary.skipped);
        let _ = writeln!(err, "{:<10} {:>6}", "failed", summary.failed);
        for outcome in summary.outcomes.iter().filter(|o| o.status == FileStatus::Failed) {
            let Some(error) = &outcome.error else { continue };
            let _ = writeln!(err, "  FAILED {}: {error}", outcome.file);
            let _ = writeln!(err, "         next: {}", error.hint());
        }
        if summary.failed > 0 {
            let _ =
                writeln!(err, "Run the same command again to retry the failed files; done ones are skipped.");
        }
    }
}

impl BatchProgress for BatchReporter {
    fn on_event(&self, file: &str, event: &Event) {
        match self.mode {
            Mode::Json => {
                if let Some(line) = self.json.event(file, event) {
                    self.json.write(&line);
                }
            }
            Mode::Bar => {
                let Some(bars) = &self.bars else { return };
                let mut files = bars.files.lock().unwrap_or_else(PoisonError::into_inner);
                match event {
                    Event::Started { size, resumed_bytes, .. } => {
                        let bar = bars.multi.add(ProgressBar::new(size.unwrap_or(0)));
                        // Bytes an earlier run sent fill the bar but not the rate.
                        let baseline = Baseline::default();
                        baseline.set(*resumed_bytes);
                        let shape = if size.is_some() { Shape::Sized } else { Shape::Unsized };
                        bar.set_style(bar::style(shape, true, &baseline));
                        bar.set_message(short_name(file));
                        bar.set_position(*resumed_bytes);
                        files.insert(file.to_owned(), bar);
                    }
                    Event::BytesSent { bytes } => {
                        if let Some(bar) = files.get(file) {
                            bar.inc(*bytes);
                        }
                    }
                    Event::Notice { message } => {
                        bars.multi.suspend(|| eprintln!("{}: {message}", short_name(file)));
                    }
                    Event::Retried { .. } => {
                        // An outage is the service's, not one file's; a damaged part is one file's.
                        if let Some(line) = self.waiting.line(event) {
                            let file = if is_outage(event) {
                                String::new()
                            } else {
                                format!("{}: ", short_name(file))
                            };
                            bars.multi.suspend(|| eprintln!("{file}{line}"));
                        }
                    }
                    _ => {}
                }
            }
            Mode::Quiet => {
                if let Some(line) = self.waiting.line(event).filter(|_| is_outage(event)) {
                    eprintln!("vodup: {line}");
                }
            }
        }
    }

    fn on_file(&self, outcome: &FileOutcome) {
        if let Some(bars) = &self.bars {
            if let Some(bar) = bars.files.lock().unwrap_or_else(PoisonError::into_inner).remove(&outcome.file)
            {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
            }
            bars.overall.inc(1);
            // Drawn now, not at the next tick: the outcome line below and the count must agree.
            bars.overall.force_draw();
            // The outcome goes above the bars, which are cleared for it and drawn again below: written
            // while they are on screen, it would be drawn over (lost) and leave old frames behind.
            bars.multi.suspend(|| self.outcome_line(outcome));
            return;
        }
        match self.mode {
            Mode::Json => {
                let line = match (outcome.status, &outcome.result, &outcome.media_id, &outcome.error) {
                    (FileStatus::Done, Some(result), ..) => {
                        self.json.done(&outcome.file, result, &outcome.cleaned)
                    }
                    (FileStatus::Failed, _, _, Some(error)) => {
                        self.json.failed(Some(&outcome.file), error, exit::of(error.kind()), &outcome.cleaned)
                    }
                    (_, _, Some(media_id), _) => self.json.skipped(&outcome.file, media_id, &outcome.cleaned),
                    // The SDK gives every outcome its figures, id or error; nothing to say without them.
                    _ => return,
                };
                self.json.write(&line);
            }
            Mode::Bar | Mode::Quiet => self.outcome_line(outcome),
        }
    }
}

impl BatchReporter {
    /// A file's one line: `done`/`skipped` with its id on stdout, `FAILED` on stderr (the summary says
    /// why).
    fn outcome_line(&self, outcome: &FileOutcome) {
        if outcome.status == FileStatus::Failed {
            if self.mode == Mode::Bar {
                eprintln!("FAILED   {}", outcome.file);
            }
            return;
        }
        let _guard = self.stdout.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = std::io::stdout().lock();
        let id = outcome.media_id.as_deref().unwrap_or("-");
        let _ = writeln!(out, "{:<8} {id}  {}", outcome.status.as_str(), outcome.file);
        let _ = out.flush();
    }
}

/// The last 30 characters of a path, for a bar's label.
fn short_name(file: &str) -> String {
    let chars: Vec<char> = file.chars().collect();
    if chars.len() <= 30 {
        file.to_owned()
    } else {
        format!("…{}", chars[chars.len() - 29..].iter().collect::<String>())
    }
}
