//! The shared state every handler sees: settings, the metadata store, the blob store, the STS
//! authority and the in-memory caches that keep the data plane free of database lookups.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Settings;
use crate::credentials::{KeyCache, RevocationSet};
use crate::meta::MetaStore;
use crate::metrics::Metrics;
use crate::presign::Presigner;
use crate::rate_limit::ProgressLimiter;
use crate::site::Site;
use crate::storage::BlobStore;
use crate::sts::StsAuthority;

/// Everything a request handler needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Inner>);

/// The fields of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// Validated settings.
    pub settings: Settings,
    /// Where the service addresses its objects.
    pub site: Site,
    /// The catalogue.
    pub meta: Arc<dyn MetaStore>,
    /// The bytes.
    pub storage: Arc<dyn BlobStore>,
    /// Mints and verifies upload credentials.
    pub sts: StsAuthority,
    /// Signs the service's own download URLs.
    pub presigner: Presigner,
    /// Long-lived key secrets, cached so the data plane does not hit the database per request.
    pub keys: KeyCache,
    /// Revoked keys and deleted media, refreshed in the background.
    pub revocations: RevocationSet,
    /// ReportUploadProgress limits.
    pub progress_limiter: ProgressLimiter,
    /// Permits for ReportUploadProgress's background writes.
    pub progress_writes: std::sync::Arc<tokio::sync::Semaphore>,
    /// Prometheus counters.
    pub metrics: Metrics,
    /// The memory that request bodies read whole may hold at once.
    pub body_budget: crate::buffered_body::BodyBudget,
    /// The last readiness probe (`/readyz`).
    pub readiness: crate::health::Readiness,
    /// This process's name among the nodes sharing the catalogue ([`crate::lease::node_name`]).
    pub node: String,
    /// Source of time, replaceable in tests.
    pub clock: fn() -> SystemTime,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The current time.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }
}
