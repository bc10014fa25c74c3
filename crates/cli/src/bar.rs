//! How a progress bar looks, for a single upload, for each file of a batch, and for a download. The rate and the time
//! left are computed here from the bytes sent in this run only: indicatif's own estimate would count the
//! bytes an earlier run already sent (set as the starting position on resume) as if they had just gone
//! out, and show hundreds of MiB/s for the first seconds of every resumed upload.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, HumanDuration, ProgressState, ProgressStyle};

/// What a bar shows, by what is known of the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The size is known: a bar, the total, the rate and the time left.
    Sized,
    /// The size is not known (a pipe): the bytes so far and the rate, no total, no time left.
    Unsized,
    /// Stopped (failed or interrupted) with a known size: where it stopped, no rate, no time left.
    Stopped,
    /// Stopped without a known size.
    StoppedUnsized,
}

/// Where this run's bytes start: the position (bytes an earlier run sent) and when it was set.
#[derive(Debug, Clone)]
pub struct Baseline(Arc<Mutex<(u64, Instant)>>);

impl Default for Baseline {
    fn default() -> Self {
        Self(Arc::new(Mutex::new((0, Instant::now()))))
    }
}

impl Baseline {
    /// This run starts at `position` now.
    pub fn set(&self, position: u64) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = (position, Instant::now());
    }

    /// Bytes per second sent in this run; None in its first moments, when a rate means nothing.
    fn rate(&self, position: u64) -> Option<f64> {
        let (start, at) = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let seconds = at.elapsed().as_secs_f64();
        (seconds >= 0.25).then(|| position.saturating_sub(start) as f64 / seconds)
    }
}

/// The style of a bar of `shape`: a single upload's, or (`batch`) one file's under a batch's overall bar.
pub fn style(shape: Shape, batch: bool, baseline: &Baseline) -> ProgressStyle {
    let template = match (shape, batch) {
        (Shape::Sized, false) => "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {rate} ETA {left}",
        (Shape::Unsized, false) => "{spinner} {msg} {bytes} {rate} elapsed {elapsed}",
        (Shape::Stopped, false) => "  {msg} [{bar:30}] {bytes}/{total_bytes} stopped after {elapsed}",
        (Shape::StoppedUnsized, false) => "  {msg} {bytes} stopped after {elapsed}",
        (Shape::Sized | Shape::Stopped, true) => "  {msg:30!} [{bar:20}] {bytes}/{total_bytes} {rate}",
        (Shape::Unsized | Shape::StoppedUnsized, true) => "  {msg:30!} {bytes} {rate}",
    };
    let rate = baseline.clone();
    let left = baseline.clone();
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
        .with_key("rate", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = match rate.rate(state.pos()) {
                Some(rate) => write!(w, "{}/s", BinaryBytes(rate as u64)),
                None => write!(w, "-"),
            };
        })
        .with_key("left", move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let remaining = state.len().map(|len| len.saturating_sub(state.pos()));
            let _ = match (left.rate(state.pos()).filter(|r| *r > 0.0), remaining) {
                (Some(rate), Some(remaining)) => {
                    write!(w, "{}", HumanDuration(Duration::from_secs_f64(remaining as f64 / rate)))
                }
                _ => write!(w, "-"),
            };
        })
}

/// The overall bar of a batch (files, not bytes).
pub fn batch_overall() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} files [{bar:30}] {pos}/{len} {msg} elapsed {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
