//! Peak resident memory of a process, read from Linux's `/proc/<pid>/status`, so tests and benchmarks can
//! hold the upload engine to its promise that memory stays near part size × parallelism however large the
//! file is.
//!
//! `VmHWM` is the kernel's own high-water mark of resident memory, so sampling it every 10 ms misses no
//! peak; the watcher exists to keep the last value once the process has exited and its `/proc` entry is
//! gone (for a child that has exited but not been reaped, the entry remains but has no memory lines, which
//! counts as gone too). Linux only: elsewhere nothing is ever read and the peak stays 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the watcher samples.
const INTERVAL: Duration = Duration::from_millis(10);

/// A thread watching one process's peak resident memory. Dropping it stops the thread.
#[derive(Debug)]
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeakRss {
    /// Starts watching `pid` (one sample is taken before this returns).
    pub fn watch(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(current_vm_hwm(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("peak-rss-{pid}"))
            .spawn({
                let (peak, stop) = (peak.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        match current_vm_hwm(pid) {
                            Some(bytes) => peak.fetch_max(bytes, Ordering::Relaxed),
                            None => return,
                        };
                        std::thread::sleep(INTERVAL);
                    }
                }
            })
            .expect("spawn the peak-rss thread");
        Self { peak, stop, thread: Some(thread) }
    }

    /// The highest `VmHWM` seen so far, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Whether the thread is still sampling (false once the process is gone).
    pub fn is_watching(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops watching and returns the peak in bytes.
    pub fn stop(mut self) -> u64 {
        self.halt();
        self.peak_bytes()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.halt();
    }
}

/// `VmHWM` of `pid` in bytes, or `None` when the process is gone, is a zombie, or this is not Linux.
pub fn current_vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_hwm(&status)
}

/// The `VmHWM:   12345 kB` line; the kernel always reports it in kB (KiB).
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_format() {
        let status = "Name:\tcat\nVmPeak:\t    8000 kB\nVmHWM:\t    1204 kB\nVmRSS:\t    1204 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1204 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tkthreadd\nState:\tS (sleeping)\n"), None);
    }
}
