//! [`Client`]: the SDK's entry point. It holds the caller's credentials, the VOD endpoint, one pooled
//! HTTPS client (rustls) shared by VOD calls, OSS uploads and URL sources, and the retry policy.
//!
//! Built with [`Client::builder`] or [`Client::from_env`]. For tests and private deployments the builder
//! overrides name resolution (`VODUP_RESOLVE`) and adds root certificates (`VODUP_CA_FILE`), so a test
//! can send the exact requests that would go to Alibaba Cloud to a local recording server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::RetryPolicy;
use crate::vod::VodClient;

/// Env var: comma-separated `host=ip:port` DNS overrides.
pub const ENV_RESOLVE: &str = "VODUP_RESOLVE";
/// Env var: a PEM file of extra root certificates.
pub const ENV_CA_FILE: &str = "VODUP_CA_FILE";
/// Env var: the VOD endpoint URL (wins over the region).
pub const ENV_ENDPOINT: &str = "VODUP_ENDPOINT";
/// Env var: how long a failing request is retried, in seconds (default 60; 0 never retries).
pub const ENV_RETRY_FOR: &str = "VODUP_RETRY_FOR";
/// Env var: the region (`cn-shanghai` by default).
pub const ENV_REGION: &str = "VODUP_REGION";
/// The default region, as in voduploadsdk.
pub const DEFAULT_REGION: &str = "cn-shanghai";

/// Builds a [`Client`].
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    credentials: Option<Credentials>,
    endpoint: Option<String>,
    region: Option<String>,
    resolve: Vec<(String, SocketAddr)>,
    root_certificates: Vec<Vec<u8>>,
    root_certificate_files: Vec<PathBuf>,
    connect_timeout: Option<Duration>,
    api_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    user_agent: Option<String>,
}

impl ClientBuilder {
    /// The credentials that sign VOD calls (env `ALIBABA_CLOUD_ACCESS_KEY_ID`/`…_SECRET`/`…_SECURITY_TOKEN`).
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The VOD endpoint URL, e.g. `http://127.0.0.1:8080` for `vodup serve` (env `VODUP_ENDPOINT`,
    /// flag `--endpoint`). Wins over [`region`](Self::region).
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region (env `VODUP_REGION`, flag `--region`): the endpoint becomes
    /// `https://vod.<region>.aliyuncs.com`. Default `cn-shanghai`.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Resolves `host` to `addr` instead of asking DNS (env `VODUP_RESOLVE=host=ip:port,…`). The port is
    /// used when the URL has none.
    #[must_use]
    pub fn resolve(mut self, host: impl Into<String>, addr: SocketAddr) -> Self {
        self.resolve.push((host.into(), addr));
        self
    }

    /// Parses `host=ip:port,host2=ip:port` (the `VODUP_RESOLVE` format) into overrides.
    pub fn resolve_spec(mut self, spec: &str) -> Result<Self> {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(host, addr)| {
                Some((host.trim().to_owned(), addr.trim().parse::<SocketAddr>().ok()?))
            });
            let Some((host, addr)) = parsed else {
                return Err(Error::invalid_input(format!("bad resolve override {entry:?}"))
                    .with_hint("write host=ip:port, several separated by commas"));
            };
            self.resolve.push((host, addr));
        }
        Ok(self)
    }

    /// Trusts the root certificates in this PEM text, besides the system's.
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Trusts the root certificates in this PEM file (env `VODUP_CA_FILE`), besides the system's.
    #[must_use]
    pub fn add_root_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificate_files.push(path.into());
        self
    }

    /// TCP+TLS connect timeout (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Whole-request timeout of VOD API calls (default 30 s).
    #[must_use]
    pub fn api_timeout(mut self, timeout: Duration) -> Self {
        self.api_timeout = Some(timeout);
        self
    }

    /// Longest silence on a connection before an upload or download request fails (default 60 s). Uploads
    /// have no whole-request deadline: a large part over a slow link is legitimate.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Retry policy for every request (env `VODUP_RETRY_FOR` and flag `--retry-for` set its budget;
    /// default: retry for 60 s).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Appended to the User-Agent.
    #[must_use]
    pub fn user_agent(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent = Some(suffix.into());
        self
    }

    /// Fills everything not set yet from the environment: credentials, `VODUP_ENDPOINT`, `VODUP_REGION`,
    /// `VODUP_RESOLVE`, `VODUP_CA_FILE`, `VODUP_RETRY_FOR`.
    pub fn with_env(mut self) -> Result<Self> {
        if self.credentials.is_none() {
            self.credentials = Some(Credentials::from_env()?);
        }
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if self.endpoint.is_none() && self.region.is_none() {
            self.endpoint = read(ENV_ENDPOINT);
            self.region = read(ENV_REGION);
        }
        if let Some(spec) = read(ENV_RESOLVE) {
            self = self.resolve_spec(&spec)?;
        }
        if let Some(file) = read(ENV_CA_FILE) {
            self.root_certificate_files.push(file.into());
        }
        if self.retry.is_none()
            && let Some(seconds) = read(ENV_RETRY_FOR)
        {
            let seconds: u64 = seconds.trim().parse().map_err(|_| {
                Error::invalid_input(format!("{ENV_RETRY_FOR}={seconds:?} is not a number of seconds"))
                    .with_hint("give whole seconds, for example 60 (0 never retries)")
            })?;
            self.retry = Some(RetryPolicy::for_budget(Duration::from_secs(seconds)));
        }
        Ok(self)
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let credentials = self.credentials.ok_or_else(|| {
            Error::new(ErrorKind::PermissionDenied, "build client", "no credentials given")
                .with_hint("set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        })?;
        let region = self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let endpoint_text = self.endpoint.unwrap_or_else(|| format!("https://vod.{region}.aliyuncs.com"));
        let endpoint = Url::parse(&endpoint_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Error::invalid_input(format!("bad VOD endpoint {endpoint_text:?}")).with_hint(
                    "give a URL such as https://vod.cn-shanghai.aliyuncs.com or http://127.0.0.1:8080",
                )
            })?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
            .read_timeout(self.read_timeout.unwrap_or(Duration::from_secs(60)))
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .user_agent(user_agent(self.user_agent.as_deref()));
        for (host, addr) in &self.resolve {
            http = http.resolve(host, *addr);
        }
        let mut pems = self.root_certificates;
        for path in &self.root_certificate_files {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "read root certificate", e.to_string()).with_path(path)
            })?;
            pems.push(pem);
        }
        let mut certificates = Vec::new();
        for pem in &pems {
            let parsed = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::invalid_input(format!("bad PEM root certificate: {e}"))
                    .with_hint("give a PEM file with -----BEGIN CERTIFICATE----- blocks")
            })?;
            certificates.extend(parsed);
        }
        if !certificates.is_empty() {
            http = http.tls_certs_merge(certificates);
        }
        let http = http
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "build HTTP client", e.to_string()))?;
        let retry = self.retry.unwrap_or_default();
        let vod = VodClient::new(
            http.clone(),
            endpoint,
            credentials,
            self.api_timeout.unwrap_or(Duration::from_secs(30)),
            retry,
        );
        Ok(Client { inner: Arc::new(Inner { http, vod, retry }) })
    }
}

fn user_agent(suffix: Option<&str>) -> String {
    let base =
        format!("vodup/{} ({}; {})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH);
    match suffix {
        Some(s) if !s.is_empty() => format!("{base} {s}"),
        _ => base,
    }
}

/// The SDK client: cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) vod: VodClient,
    pub(crate) retry: RetryPolicy,
}

impl Client {
    /// A builder with nothing set.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured entirely from the environment (see [`ClientBuilder::with_env`]).
    pub fn from_env() -> Result<Self> {
        ClientBuilder::default().with_env()?.build()
    }

    /// The VOD API client, for calls the upload helpers do not wrap.
    pub fn vod(&self) -> &VodClient {
        &self.inner.vod
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The retry policy every request follows.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_makes_the_endpoint_and_endpoint_wins() {
        let client = Client::builder()
            .credentials(Credentials::new("id", "secret"))
            .region("cn-beijing")
            .build()
            .unwrap();
        assert_eq!(client.vod().endpoint().as_str(), "https://vod.cn-beijing.aliyuncs.com/");
        let client = Client::builder()
            .credentials(Credentials::new("id", "secret"))
            .region("cn-beijing")
            .endpoint("http://127.0.0.1:9")
            .build()
            .unwrap();
        assert_eq!(client.vod().endpoint().as_str(), "http://127.0.0.1:9/");
    }

    #[test]
    fn bad_resolve_spec_and_endpoint_are_clear() {
        let error = Client::builder().resolve_spec("vod.example=nonsense").unwrap_err();
        assert!(error.to_string().contains("host=ip:port"), "{error}");
        let error = Client::builder()
            .credentials(Credentials::new("a", "b"))
            .endpoint("ftp://x")
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let builder = Client::builder().resolve_spec("a.example=127.0.0.1:1, b.example=[::1]:2").unwrap();
        assert_eq!(builder.resolve.len(), 2);
    }
}
