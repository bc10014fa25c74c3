//! Prometheus counters served at `/metrics`: requests by plane, action and code, bytes received,
//! parts and uploads, credential refreshes. Hand-rolled text exposition: a few labelled counters do
//! not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, String), u64>>,
    /// Request body bytes stored by the data plane.
    pub bytes_received: AtomicU64,
    /// Request bodies being written to storage now (PutObject and UploadPart between their checks and
    /// their commit): what a node is ingesting, and when a write that was let in has begun.
    pub blob_writes_in_flight: AtomicU64,
    /// Parts stored.
    pub parts_uploaded: AtomicU64,
    /// Objects published (PutObject and Complete).
    pub objects_completed: AtomicU64,
    /// Multipart uploads initiated.
    pub uploads_initiated: AtomicU64,
    /// Blobs the collector removed from storage.
    pub blobs_collected: AtomicU64,
    /// RefreshUploadVideo calls answered.
    pub credential_refreshes: AtomicU64,
    /// Requests refused because the disk (store or catalogue) was full: the one counter an operator
    /// must alert on, so it stands apart from the per-code request counts.
    pub storage_full: AtomicU64,
    /// The VOD listener's connections.
    pub vod_connections: Arc<ConnectionMetrics>,
    /// The OSS listener's connections.
    pub oss_connections: Arc<ConnectionMetrics>,
}

/// One unit of a gauge, given back when dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One listener's connections (crate::listener): what its caps and timeouts did.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections closed at once because their address had its share open.
    pub refused_per_client: AtomicU64,
    /// Times the listener reached its connection cap and stopped accepting until one closed.
    pub cap_reached: AtomicU64,
    /// Connections closed because a request head did not arrive whole within the header-read timeout.
    pub header_timeouts: AtomicU64,
    /// Connections closed after the idle timeout.
    pub idle_timeouts: AtomicU64,
    /// Requests refused for ambiguous framing (both Content-Length and Transfer-Encoding).
    pub ambiguous_framing: AtomicU64,
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

    /// Counts a blob write as in flight until the returned guard is dropped (its end, or the request's).
    pub fn blob_write_started(&self) -> InFlight<'_> {
        Self::add(&self.blob_writes_in_flight, 1);
        InFlight(&self.blob_writes_in_flight)
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
                "vodup_blobs_collected_total",
                "Blobs the collector removed from storage (released by a commit, or never committed).",
                &self.blobs_collected,
            ),
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
        let _ = writeln!(
            out,
            "# HELP vodup_blob_writes_in_flight Request bodies being written to storage now.\n\
             # TYPE vodup_blob_writes_in_flight gauge\nvodup_blob_writes_in_flight {}",
            self.blob_writes_in_flight.load(Ordering::Relaxed)
        );
        render_connections(&mut out, [("vod", &self.vod_connections), ("oss", &self.oss_connections)]);
        out
    }
}

/// The listeners' counters, one family at a time (a family's samples must be together).
fn render_connections(out: &mut String, planes: [(&str, &Arc<ConnectionMetrics>); 2]) {
    type Field = fn(&ConnectionMetrics) -> &AtomicU64;
    let families: [(&str, &str, &str, Field); 7] = [
        ("vodup_connections_open", "gauge", "Connections open now.", |c| &c.open),
        ("vodup_connections_accepted_total", "counter", "Connections accepted.", |c| &c.accepted),
        (
            "vodup_connections_refused_per_client_total",
            "counter",
            "Connections closed at once: their client address had its share open.",
            |c| &c.refused_per_client,
        ),
        (
            "vodup_connections_cap_reached_total",
            "counter",
            "Times a listener reached its connection cap and waited for a connection to close.",
            |c| &c.cap_reached,
        ),
        (
            "vodup_connections_header_timeout_total",
            "counter",
            "Connections closed: a request head did not arrive within the header-read timeout.",
            |c| &c.header_timeouts,
        ),
        (
            "vodup_connections_idle_timeout_total",
            "counter",
            "Connections closed after the idle timeout.",
            |c| &c.idle_timeouts,
        ),
        (
            "vodup_requests_ambiguous_framing_total",
            "counter",
            "Requests refused for both Content-Length and Transfer-Encoding, or lost framing.",
            |c| &c.ambiguous_framing,
        ),
    ];
    for (name, kind, help, field) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (plane, metrics) in planes {
            let _ = writeln!(out, "{name}{{plane=\"{plane}\"}} {}", field(metrics).load(Ordering::Relaxed));
        }
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

/// The catalogue's blobs as gauges: referenced, waiting for the grace period, and collected tombstones.
pub fn render_blobs(counts: &crate::meta::BlobCounts) -> String {
    let mut out =
        String::from("# HELP vodup_blobs Blobs the catalogue knows, by state.\n# TYPE vodup_blobs gauge\n");
    for (state, n) in [("live", counts.live), ("garbage", counts.garbage), ("collected", counts.collected)] {
        let _ = writeln!(out, "vodup_blobs{{state=\"{state}\"}} {n}");
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
