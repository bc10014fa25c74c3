//! The one line an outage shows. While the service is down every request in flight fails and retries on
//! its own schedule, each retry a `retried` event: a person needs to read once that the upload is
//! waiting, for what, and for how long at most, not a line per attempt. Retries less than [`SAME_OUTAGE`]
//! apart are one outage. The details (operation, part, full error) stay in the `--json` events and, with
//! `VODUP_LOG=info`, in the log.
//!
//! A part resent because its bytes arrived damaged is no outage: the service answered. It gets a line of
//! its own each time (they are rare, and each one matters).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use vodup_sdk::upload::progress::Event;

/// Retries closer together than this belong to the same outage. Longer than the largest backoff (5 s)
/// plus a connect timeout (10 s), so a long outage never shows twice.
const SAME_OUTAGE: Duration = Duration::from_secs(30);

/// Whether an outage is being shown, shared by every upload a command runs.
#[derive(Debug, Default)]
pub struct Waiting {
    last_retry: Mutex<Option<Instant>>,
}

impl Waiting {
    /// The line to show for `event`, if any: the first retry of an outage, or a damaged part's resend.
    pub fn line(&self, event: &Event) -> Option<String> {
        let Event::Retried { operation, part_number, kind, cause, budget_left_ms, .. } = event else {
            return None;
        };
        if kind == "checksum_mismatch" {
            let what = part_number.map_or_else(|| operation.clone(), |n| format!("part {n}"));
            return Some(format!("resending {what}: {cause}"));
        }
        let now = Instant::now();
        let mut last = self.last_retry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let new_outage = last.is_none_or(|at| now.duration_since(at) > SAME_OUTAGE);
        *last = Some(now);
        let waiting_for = if operation.starts_with("read source") || operation.starts_with("read playlist") {
            "the source's server"
        } else {
            "the service"
        };
        let seconds = budget_left_ms.div_ceil(1000);
        new_outage.then(|| format!("waiting for {waiting_for} ({cause}); retrying for up to {seconds} s"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retried(kind: &str, cause: &str, left_ms: u64) -> Event {
        Event::Retried {
            operation: "UploadPart".into(),
            part_number: Some(3),
            attempt: 1,
            kind: kind.into(),
            reason: format!(
                "UploadPart part 3 to b/k: error sending request for url (http://127.0.0.1:9/): {cause}"
            ),
            cause: cause.into(),
            delay_ms: 100,
            budget_left_ms: left_ms,
            wasted_bytes: 0,
        }
    }

    #[test]
    fn an_outage_is_one_line_without_addresses() {
        let waiting = Waiting::default();
        let first = waiting.line(&retried("network", "connection refused", 57_400)).expect("a line");
        assert_eq!(first, "waiting for the service (connection refused); retrying for up to 58 s");
        for _ in 0..20 {
            assert_eq!(waiting.line(&retried("network", "connection refused", 50_000)), None);
        }
    }

    #[test]
    fn a_damaged_part_is_said_each_time() {
        let waiting = Waiting::default();
        let line = waiting.line(&retried("checksum_mismatch", "the bytes were damaged", 60_000));
        assert_eq!(line.as_deref(), Some("resending part 3: the bytes were damaged"));
        assert!(waiting.line(&retried("checksum_mismatch", "the bytes were damaged", 60_000)).is_some());
        assert!(waiting.line(&Event::BytesSent { bytes: 1 }).is_none());
    }
}
