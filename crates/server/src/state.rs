//! The shared state every handler sees: settings, the metadata store, the blob store, the STS
//! authority and the in-memory caches that keep the data plane free of database lookups.

use std::sync::Arc;
use std::time::SystemTime;

use vodup_proto::encoding::percent_encode_path;

use crate::config::Settings;
use crate::credentials::{KeyCache, NonceCache, RevocationSet};
use crate::meta::MetaStore;
use crate::metrics::Metrics;
use crate::presign::Presigner;
use crate::rate_limit::ProgressLimiter;
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
    /// VOD nonces seen inside the timestamp window.
    pub nonces: NonceCache,
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

/// How the service names its bucket and objects in URLs (vod-api.md §4, oss-api.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The bucket.
    pub bucket: String,
    /// `http(s)://host[:port]` of the OSS plane as clients reach it.
    pub endpoint: String,
    /// The region.
    pub region: String,
}

impl Site {
    /// The host (and port) part of the endpoint.
    pub fn endpoint_host(&self) -> &str {
        self.endpoint.split_once("://").map_or(self.endpoint.as_str(), |(_, host)| host)
    }

    fn scheme(&self) -> &str {
        self.endpoint.split_once("://").map_or("http", |(scheme, _)| scheme)
    }

    /// Whether the endpoint is an IP literal or `localhost`, which the clients address path-style.
    pub fn is_path_style(&self) -> bool {
        let host = self.endpoint_host();
        let name = if host.starts_with('[') {
            return true;
        } else {
            host.rsplit_once(':').map_or(host, |(name, _)| name)
        };
        name == "localhost" || name.parse::<std::net::IpAddr>().is_ok()
    }

    /// `StorageLocation`: the bucket's host, as in real VOD (`outin-….oss-cn-shanghai.aliyuncs.com`).
    pub fn storage_location(&self) -> String {
        format!("{}.{}", self.bucket, self.endpoint_host())
    }

    /// The plain URL of an object: path style for an IP endpoint, virtual-host style for a DNS name.
    pub fn object_url(&self, key: &str) -> String {
        let key = percent_encode_path(key);
        if self.is_path_style() {
            format!("{}/{}/{key}", self.endpoint, self.bucket)
        } else {
            format!("{}://{}.{}/{key}", self.scheme(), self.bucket, self.endpoint_host())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(endpoint: &str) -> Site {
        Site { bucket: "outin-b".into(), endpoint: endpoint.into(), region: "cn-shanghai".into() }
    }

    #[test]
    fn ip_endpoints_are_path_style() {
        let s = site("http://127.0.0.1:9000");
        assert!(s.is_path_style());
        assert_eq!(s.object_url("sv/a b/c.mp4"), "http://127.0.0.1:9000/outin-b/sv/a%20b/c.mp4");
        assert_eq!(s.storage_location(), "outin-b.127.0.0.1:9000");
        assert!(site("http://localhost:9000").is_path_style());
        assert!(site("http://[::1]:9000").is_path_style());
    }

    #[test]
    fn dns_endpoints_are_virtual_host_style() {
        let s = site("https://oss.example.com");
        assert!(!s.is_path_style());
        assert_eq!(s.object_url("image/x.png"), "https://outin-b.oss.example.com/image/x.png");
        assert_eq!(s.storage_location(), "outin-b.oss.example.com");
    }
}
