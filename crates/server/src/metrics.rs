//! Prometheus counters served at `/metrics`: requests by plane, action and code, bytes received,
//! parts and uploads, credential refreshes. Hand-rolled text exposition: a few labelled counters do
//! not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, String), u64>>,
    /// Request body bytes stored by the data plane.
    pub bytes_received: AtomicU64,
    /// Parts stored.
    pub parts_uploaded: AtomicU64,
    /// Objects published (PutObject and Complete).
    pub objects_completed: AtomicU64,
    /// Multipart uploads initiated.
    pub uploads_initiated: AtomicU64,
    /// RefreshUploadVideo calls answered.
    pub credential_refreshes: AtomicU64,
    /// Requests refused because the disk (store or catalogue) was full: the one counter an operator
    /// must alert on, so it stands apart from the per-code request counts.
    pub storage_full: AtomicU64,
}

impl Metrics {
    /// Counts one request of `plane` (`vod` or `oss`) for `action` answered with `code` (`OK` or an
    /// error code).
    pub fn count_request(&self, plane: &'static str, action: &str, code: &str) {
        if code == "InsufficientStorage" {
            Self::add(&self.storage_full, 1);
        }
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((plane, action.to_owned(), code.to_owned()))
            .or_default() += 1;
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP vodup_requests_total Requests answered, by plane, action and code.\n");
        out.push_str("# TYPE vodup_requests_total counter\n");
        for ((plane, action, code), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "vodup_requests_total{{plane=\"{plane}\",action=\"{}\",code=\"{}\"}} {n}",
                escape(action),
                escape(code)
            );
        }
        for (name, help, counter) in [
            (
                "vodup_bytes_received_total",
                "Request body bytes stored by the data plane.",
                &self.bytes_received,
            ),
            ("vodup_parts_uploaded_total", "Multipart parts stored.", &self.parts_uploaded),
            (
                "vodup_objects_completed_total",
                "Objects published by PutObject or Complete.",
                &self.objects_completed,
            ),
            ("vodup_uploads_initiated_total", "Multipart uploads initiated.", &self.uploads_initiated),
            (
                "vodup_credential_refreshes_total",
                "RefreshUploadVideo calls answered.",
                &self.credential_refreshes,
            ),
            (
                "vodup_storage_full_total",
                "Requests refused with InsufficientStorage because the service's disk was full.",
                &self.storage_full,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// The outbox as gauges, from the catalogue (so they survive restarts and agree across nodes).
pub fn render_events(counts: &crate::meta::EventCounts) -> String {
    let mut out = String::from(
        "# HELP vodup_events Upload-complete events in the outbox, by state.\n# TYPE vodup_events gauge\n",
    );
    for (state, n) in
        [("pending", counts.pending), ("delivered", counts.delivered), ("given_up", counts.given_up)]
    {
        let _ = writeln!(out, "vodup_events{{state=\"{state}\"}} {n}");
    }
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.count_request("vod", "CreateUploadVideo", "OK");
        metrics.count_request("vod", "CreateUploadVideo", "OK");
        Metrics::add(&metrics.bytes_received, 10);
        let text = metrics.render();
        assert!(
            text.contains("vodup_requests_total{plane=\"vod\",action=\"CreateUploadVideo\",code=\"OK\"} 2"),
            "{text}"
        );
        assert!(text.contains("vodup_bytes_received_total 10"));
    }
}
