//! What a batch shows: with `--json`, every upload event as a JSON line with a `file` field, one `result`
//! (or `error`) line per file, and a final `summary` line; on a terminal, one overall bar and one bar per
//! file in flight, then a summary table; otherwise one line per file and the summary on stderr.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use serde_json::{Value, json};
use vodup_sdk::batch::{BatchProgress, BatchSummary, FileOutcome, FileStatus};
use vodup_sdk::upload::progress::Event;

use crate::bar::{self, Baseline, Shape};
use crate::output::{Mode, error_line, is_outage, json_line, result_fields};
use crate::waiting::Waiting;

/// The batch's [`BatchProgress`].
#[derive(Debug)]
pub struct BatchReporter {
    mode: Mode,
    bars: Option<Bars>,
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
    /// A reporter for `files` files.
    pub fn new(mode: Mode, files: usize) -> Self {
        let bars = (mode == Mode::Bar).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let overall = multi.add(ProgressBar::new(files as u64));
            overall.set_style(bar::batch_overall());
            overall.enable_steady_tick(Duration::from_millis(200));
            Bars { multi, overall, files: Mutex::new(HashMap::new()) }
        });
        Self { mode, bars, stdout: Mutex::new(()), waiting: Waiting::default() }
    }

    fn line(&self, value: &Value) {
        json_line(&self.stdout, value);
    }

    /// The batch could not start (or stopped as a whole).
    pub fn fatal(&self, error: &vodup_sdk::Error, exit_code: u8) {
        if self.mode == Mode::Json {
            self.line(&error_line(error, exit_code));
        }
        eprintln!("vodup: {error}");
    }

    /// The final line (JSON) or table (stderr).
    pub fn summary(&self, summary: &BatchSummary) {
        if let Some(bars) = &self.bars {
            bars.overall.finish_and_clear();
        }
        let failures: Vec<Value> = summary
            .outcomes
            .iter()
            .filter(|o| o.status == FileStatus::Failed)
            .map(|o| {
                let error = o.error.as_ref();
                json!({
                    "file": o.file,
                    "kind": error.map(|e| e.kind().as_str()),
                    "message": error.map(ToString::to_string),
                    "hint": error.map(vodup_sdk::Error::hint),
                })
            })
            .collect();
        if self.mode == Mode::Json {
            self.line(&json!({
                "event": "summary",
                "files": summary.outcomes.len(),
                "done": summary.done,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "cleaned": summary.outcomes.iter().map(|o| o.cleaned.len()).sum::<usize>(),
                "failures": failures,
            }));
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
                if !matches!(event, Event::BytesSent { .. })
                    && let Ok(mut value) = serde_json::to_value(event)
                {
                    value["file"] = json!(file);
                    self.line(&value);
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
                let mut line = outcome.result.as_ref().map_or_else(|| json!({}), result_fields);
                line["event"] = json!(if outcome.status == FileStatus::Failed { "error" } else { "result" });
                line["file"] = json!(outcome.file);
                line["status"] = json!(outcome.status.as_str());
                line["MediaId"] = json!(outcome.media_id);
                line["cleaned"] = json!(outcome.cleaned);
                if let Some(error) = &outcome.error {
                    line["kind"] = json!(error.kind().as_str());
                    line["message"] = json!(error.to_string());
                    line["hint"] = json!(error.hint());
                }
                self.line(&line);
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
