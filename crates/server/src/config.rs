//! The service's configuration: one serde struct read from TOML, overridden by environment and flags in
//! the CLI, then validated once into [`Settings`] before any socket is bound (ripgrep's LowArgs → HiArgs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vodup_proto::Secret;

use crate::meta::MetaLocation;
use crate::storage::{S3Settings, StorageLocation};

/// The TOML file, section by section. Every field is optional; [`Config::validate`] fills defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: where things live and listen.
    #[serde(default)]
    pub server: ServerSection,
    /// `[control]`: the VOD RPC plane.
    #[serde(default)]
    pub control: ControlSection,
    /// `[data]`: the OSS plane.
    #[serde(default)]
    pub data: DataSection,
    /// `[events]`: upload-complete callbacks.
    #[serde(default)]
    pub events: EventsSection,
    /// `[sweeper]`: abandoned uploads.
    #[serde(default)]
    pub sweeper: SweeperSection,
    /// `[http]`: connection limits of both listeners.
    #[serde(default)]
    pub http: HttpSection,
    /// `[s3]`: how to reach the store of `storage = "s3://…"`.
    #[serde(default)]
    pub s3: S3Section,
}

/// `[s3]`: the S3-compatible store that `--storage s3://BUCKET[/PREFIX]` names a bucket of. The keys
/// come from here or from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (the CLI puts those here), never
/// from a flag, where `ps` would show them; `Debug` shows the secret as `******`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The store's URL, `http(s)://HOST[:PORT]` (`--s3-endpoint`, `VODUP_S3_ENDPOINT`); none for AWS.
    pub endpoint: Option<String>,
    /// The region requests are signed for (`--s3-region`, `VODUP_S3_REGION`), default `us-east-1`;
    /// Garage wants its `s3_region` (`garage` unless configured).
    pub region: Option<String>,
    /// Path-style requests, `ENDPOINT/BUCKET/KEY` (`--s3-path-style`, `VODUP_S3_PATH_STYLE`); default on
    /// with an endpoint (self-hosted stores), off without (AWS's virtual-hosted style).
    pub path_style: Option<bool>,
    /// The access key id (`AWS_ACCESS_KEY_ID` wins over this).
    pub access_key_id: Option<String>,
    /// The secret access key (`AWS_SECRET_ACCESS_KEY` wins over this).
    pub secret_access_key: Option<Secret>,
}

/// `[http]`: applies to each listener (VOD and OSS) separately.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Seconds a request head may take to arrive whole, counted from its first byte (from the accept for
    /// a new connection's first head) (`--header-read-timeout`, `VODUP_HEADER_READ_TIMEOUT`), default 20.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may stay with no request in progress and no byte moving before it is closed
    /// (`--idle-timeout`, `VODUP_IDLE_TIMEOUT`), default 60.
    pub idle_timeout_secs: Option<u64>,
    /// Open connections per listener (`--max-connections`, `VODUP_MAX_CONNECTIONS`); default a quarter
    /// of the descriptor limit less 64, between 8 and 4096.
    pub max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) per listener
    /// (`--max-connections-per-client`, `VODUP_MAX_CONNECTIONS_PER_CLIENT`); default a quarter of
    /// `max_connections`.
    pub max_connections_per_client: Option<usize>,
}

/// `[sweeper]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweeperSection {
    /// Age in seconds after which an open multipart upload is aborted and an `Uploading` media becomes
    /// `UploadFail` (`--abandon-after`, `VODUP_ABANDON_AFTER`), default 604800 (7 days).
    pub max_age_secs: Option<u64>,
    /// Seconds between sweeps, default 3600.
    pub interval_secs: Option<u64>,
    /// Milliseconds between sweeps, for tests; wins over `interval_secs`.
    pub interval_ms: Option<u64>,
    /// Seconds a blob nothing references is kept before the collector removes it (`--blob-grace`,
    /// `VODUP_BLOB_GRACE`), default 3600. It also bounds how long a GET that started before an overwrite
    /// or delete can go on reading the old bytes.
    pub blob_grace_secs: Option<u64>,
    /// Seconds between collector rounds, default 300.
    pub collect_interval_secs: Option<u64>,
    /// Milliseconds between collector rounds, for tests; wins over `collect_interval_secs`.
    pub collect_interval_ms: Option<u64>,
}

/// `[events]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    /// Global callback URL for upload-complete events (`--callback-url`, `VODUP_CALLBACK_URL`); none by
    /// default (then only uploads with their own allowed URL get events).
    pub callback_url: Option<String>,
    /// AuthKey signing deliveries with `X-VOD-TIMESTAMP`/`X-VOD-SIGNATURE` (`VODUP_CALLBACK_AUTH_KEY`),
    /// at most 32 characters.
    pub auth_key: Option<String>,
    /// URL prefixes (each ending in `/`) a per-upload `UserData.MessageCallback.CallbackURL` must start
    /// with; empty (the default) refuses every per-upload URL.
    #[serde(default)]
    pub allowed_callback_prefixes: Vec<String>,
    /// How long delivery is retried, in seconds, default 86400.
    pub horizon_secs: Option<u64>,
    /// Longest wait between two attempts, in seconds, default 300.
    pub max_backoff_secs: Option<u64>,
    /// How often the outbox is polled, in milliseconds, default 1000.
    pub poll_interval_ms: Option<u64>,
    /// How long a node's claim on the events it is delivering keeps the other nodes off them, in seconds,
    /// default 60: the events a node claimed and could not deliver before it died are sent by another
    /// node this long after the claim. Shorter than a delivery's 10 s timeout risks sending an event twice
    /// (receivers deduplicate on `X-VOD-Event-Id`), never losing one.
    pub claim_secs: Option<u64>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Data folder: the stored objects unless `storage` names another place, and the SQLite catalogue
    /// unless `meta` names another (`--data`, `VODUP_DATA`). Not needed when both do.
    pub data: Option<PathBuf>,
    /// Where the blobs live (`--storage`, `VODUP_STORAGE`): `file://PATH`, or `s3://BUCKET[/PREFIX]` for
    /// a bucket of an S3-compatible store (see `[s3]`) that several nodes can share; default `file://` +
    /// the data folder's `store`.
    pub storage: Option<String>,
    /// Where the catalogue lives (`--meta`, `VODUP_META`): `sqlite://PATH`, or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` for a PostgreSQL database that several nodes can share;
    /// default `sqlite://` + the data folder's `meta.sqlite`.
    pub meta: Option<String>,
    /// VOD RPC listen address (`--listen`, `VODUP_LISTEN`), default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// OSS listen address (`--oss-listen`, `VODUP_OSS_LISTEN`), default `127.0.0.1:9000`.
    pub oss_listen: Option<String>,
    /// The OSS URL written into UploadAddress and file URLs (`--public-oss-endpoint`,
    /// `VODUP_PUBLIC_OSS_ENDPOINT`), default `http://` + the OSS listen address.
    pub public_oss_endpoint: Option<String>,
    /// Region in UploadAuth and the only region OSS V4 signatures may be scoped to (`--region`,
    /// `VODUP_SERVE_REGION`), default `cn-shanghai`.
    pub region: Option<String>,
    /// Storage bucket name (`--bucket`, `VODUP_BUCKET`); generated once at first start when absent.
    pub bucket: Option<String>,
    /// MiB that request bodies read whole (RPC forms, Complete part lists) may hold at once, across
    /// both planes, default 64.
    pub buffered_body_budget_mib: Option<u64>,
}

/// `[control]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Lifetime of upload credentials in seconds (`--credential-lifetime`), default 3600.
    pub credential_lifetime_secs: Option<u64>,
    /// ReportUploadProgress reports per second per client IP, default 50.
    pub progress_rate_per_ip: Option<u32>,
    /// ReportUploadProgress reports per second per VideoId, default 20.
    pub progress_rate_per_media: Option<u32>,
    /// Entries each ReportUploadProgress rate table (client addresses, videos) may hold, default 100000.
    pub progress_table_entries: Option<u64>,
}

/// `[data]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// How often the in-memory revocation set is refreshed, in seconds, default 5.
    pub revocation_refresh_secs: Option<u64>,
    /// Seconds without a byte of a request body before it is dropped, default 60 (every body read, on
    /// both planes).
    pub body_idle_timeout_secs: Option<u64>,
    /// `/readyz` reports the store full below this many free MiB (local disk), default 64.
    pub ready_min_free_mib: Option<u64>,
    /// Longest lifetime of a V1 presigned URL, in seconds from the request (`--max-v1-presign-lifetime`,
    /// `VODUP_MAX_V1_PRESIGN_LIFETIME`), default [`DEFAULT_MAX_V1_PRESIGN_LIFETIME_SECS`]. OSS caps V4 URLs at
    /// 7 days and documents no cap for V1; without one, a URL valid until the year 36812 would be accepted.
    pub max_v1_presign_lifetime_secs: Option<u64>,
}

/// The default cap on V1 presigned URLs: 30 days, the longest `AuthTimeout` GetMezzanineInfo and
/// GetImageInfo accept (vod-api.md, `AuthTimeout` at most 2592000 s), so the service's own URLs always
/// pass. A lower setting refuses those URLs when they were issued for longer.
pub const DEFAULT_MAX_V1_PRESIGN_LIFETIME_SECS: u64 = 30 * 86_400;

/// Validated settings, with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Data folder; `None` when both the catalogue and the storage are elsewhere (then nothing is
    /// written on this machine's disk).
    pub data: Option<PathBuf>,
    /// Where the catalogue lives.
    pub meta: MetaLocation,
    /// Where the blobs live.
    pub storage: Storage,
    /// VOD RPC listen address.
    pub listen: SocketAddr,
    /// OSS listen address.
    pub oss_listen: SocketAddr,
    /// Public OSS endpoint, with scheme, without trailing slash; `None` until the OSS port is known
    /// (a `:0` listen address), then filled by [`Settings::with_bound_oss`].
    pub public_oss_endpoint: Option<String>,
    /// Region.
    pub region: String,
    /// Bucket, if configured.
    pub bucket: Option<String>,
    /// Upload credential lifetime.
    pub credential_lifetime: Duration,
    /// ReportUploadProgress rate per IP.
    pub progress_rate_per_ip: u32,
    /// ReportUploadProgress rate per media.
    pub progress_rate_per_media: u32,
    /// Entries per ReportUploadProgress rate table.
    pub progress_table_entries: usize,
    /// Bytes all buffered request bodies may hold at once.
    pub buffered_body_budget: usize,
    /// Revocation set refresh interval.
    pub revocation_refresh: Duration,
    /// Request-body idle timeout, both planes.
    pub body_idle_timeout: Duration,
    /// Free bytes below which `/readyz` reports the store full.
    pub ready_min_free: u64,
    /// Longest lifetime of a V1 presigned URL.
    pub max_v1_presign_lifetime: Duration,
    /// Event delivery.
    pub events: EventDelivery,
    /// The sweeper.
    pub sweep: Sweep,
    /// Connection limits.
    pub http: Http,
}

/// The validated blob store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A folder on this machine.
    Local(PathBuf),
    /// A bucket of an S3-compatible store.
    S3(S3Settings),
}

impl std::fmt::Display for Storage {
    /// The location as `--storage` names it, with the endpoint of an S3 store; never a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(path) => write!(f, "file://{}", path.display()),
            Self::S3(s3) => {
                write!(f, "s3://{}", s3.bucket)?;
                if !s3.prefix.is_empty() {
                    write!(f, "/{}", s3.prefix)?;
                }
                write!(f, " at {}", s3.endpoint.as_deref().unwrap_or("AWS"))
            }
        }
    }
}

/// Validated `[http]`. The caps left `None` are derived from the descriptor limit when the service
/// starts (`crate::listener::default_caps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http {
    /// Header-read timeout.
    pub header_read_timeout: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Open connections per listener, if configured.
    pub max_connections: Option<usize>,
    /// Open connections per client address, if configured.
    pub max_connections_per_client: Option<usize>,
}

/// Validated `[sweeper]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Uploads and media older than this are abandoned.
    pub max_age: Duration,
    /// Time between sweeps.
    pub interval: Duration,
    /// How long an unreferenced blob is kept.
    pub blob_grace: Duration,
    /// Time between collector rounds.
    pub collect_interval: Duration,
}

/// Validated `[events]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDelivery {
    /// Global callback URL.
    pub callback_url: Option<String>,
    /// Signing key.
    pub auth_key: Option<String>,
    /// Allowed per-upload URL prefixes.
    pub allowed_callback_prefixes: Vec<String>,
    /// Retry horizon.
    pub horizon: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Outbox poll interval.
    pub poll_interval: Duration,
    /// How long a claim on events lasts.
    pub claim: Duration,
}

/// A configuration that cannot work, said plainly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads a TOML file.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("config file: {e}")))
    }

    /// Applies defaults and checks combinations.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let s = &self.server;
        let data = s.data.clone();
        let no_data = |what: &str| {
            ConfigError(format!(
                "no data folder for {what}: give --data DIR, set VODUP_DATA, or set `data` in the [server] \
                 section of the config file (--config); or name both the catalogue (--meta) and the storage \
                 (--storage) elsewhere"
            ))
        };
        let meta = match (&s.meta, &data) {
            (Some(url), _) => check_meta(url)?,
            (None, Some(data)) => MetaLocation::Sqlite(data.join("meta.sqlite")),
            (None, None) => return Err(no_data("the catalogue")),
        };
        let storage = match (&s.storage, &data) {
            (Some(url), _) => check_storage(url)?,
            (None, Some(data)) => StorageLocation::File(data.join("store")),
            (None, None) => return Err(no_data("the storage")),
        };
        let storage = self.s3.validate(storage)?;
        let parse_addr =
            |name: &str, value: Option<&String>, default: &str| -> Result<SocketAddr, ConfigError> {
                let text = value.map_or(default, String::as_str);
                text.parse().map_err(|_| {
                    ConfigError(format!("{name} {text:?} is not an address like 127.0.0.1:8080"))
                })
            };
        let listen = parse_addr("--listen", s.listen.as_ref(), "127.0.0.1:8080")?;
        let oss_listen = parse_addr("--oss-listen", s.oss_listen.as_ref(), "127.0.0.1:9000")?;
        if listen == oss_listen && listen.port() != 0 {
            return Err(ConfigError(format!(
                "--listen and --oss-listen are both {listen}; give them different ports"
            )));
        }
        let public_oss_endpoint = match &s.public_oss_endpoint {
            Some(url) => Some(check_endpoint(url)?),
            None if oss_listen.port() != 0 => Some(format!("http://{oss_listen}")),
            None => None,
        };
        let region = s.region.clone().unwrap_or_else(|| "cn-shanghai".to_owned());
        if region.is_empty()
            || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError(format!("--region {region:?} is not a region name like cn-shanghai")));
        }
        if let Some(bucket) = &s.bucket {
            check_bucket(bucket)?;
        }
        let lifetime = self.control.credential_lifetime_secs.unwrap_or(3600);
        if !(1..=86_400 * 7).contains(&lifetime) {
            return Err(ConfigError(format!("credential lifetime {lifetime} s is outside 1..=604800")));
        }
        let max_v1_presign_lifetime =
            self.data.max_v1_presign_lifetime_secs.unwrap_or(DEFAULT_MAX_V1_PRESIGN_LIFETIME_SECS);
        if max_v1_presign_lifetime == 0 {
            return Err(ConfigError("--max-v1-presign-lifetime must be at least 1 second".into()));
        }
        let events = self.events.validate()?;
        let max_age = self.sweeper.max_age_secs.unwrap_or(7 * 86_400);
        if max_age == 0 {
            return Err(ConfigError("the sweeper's max age must be at least 1 second".into()));
        }
        let sweep = Sweep {
            max_age: Duration::from_secs(max_age),
            interval: match self.sweeper.interval_ms {
                Some(ms) => Duration::from_millis(ms.max(10)),
                None => Duration::from_secs(self.sweeper.interval_secs.unwrap_or(3600).max(1)),
            },
            blob_grace: match self.sweeper.blob_grace_secs.unwrap_or(3600) {
                0 => return Err(ConfigError("--blob-grace must be at least 1 second".into())),
                secs => Duration::from_secs(secs),
            },
            collect_interval: match self.sweeper.collect_interval_ms {
                Some(ms) => Duration::from_millis(ms.max(10)),
                None => Duration::from_secs(self.sweeper.collect_interval_secs.unwrap_or(300).max(1)),
            },
        };
        let http = self.http.validate()?;
        Ok(Settings {
            http,
            events,
            sweep,
            data,
            meta,
            storage,
            listen,
            oss_listen,
            public_oss_endpoint,
            region,
            bucket: s.bucket.clone(),
            credential_lifetime: Duration::from_secs(lifetime),
            progress_rate_per_ip: self.control.progress_rate_per_ip.unwrap_or(50).max(1),
            progress_rate_per_media: self.control.progress_rate_per_media.unwrap_or(20).max(1),
            progress_table_entries: usize::try_from(self.control.progress_table_entries.unwrap_or(100_000))
                .unwrap_or(usize::MAX)
                .max(1),
            buffered_body_budget: usize::try_from(
                s.buffered_body_budget_mib.unwrap_or(64).max(1).saturating_mul(1024 * 1024),
            )
            .unwrap_or(usize::MAX),
            revocation_refresh: Duration::from_secs(self.data.revocation_refresh_secs.unwrap_or(5).max(1)),
            body_idle_timeout: Duration::from_secs(self.data.body_idle_timeout_secs.unwrap_or(60).max(1)),
            ready_min_free: self.data.ready_min_free_mib.unwrap_or(64).saturating_mul(1024 * 1024),
            max_v1_presign_lifetime: Duration::from_secs(max_v1_presign_lifetime),
        })
    }
}

impl S3Section {
    /// The storage settings: `location` as is for a folder, completed with this section for a bucket.
    fn validate(&self, location: StorageLocation) -> Result<Storage, ConfigError> {
        let (bucket, prefix) = match location {
            StorageLocation::File(path) => {
                for (set, flag) in [
                    (self.endpoint.is_some(), "--s3-endpoint (VODUP_S3_ENDPOINT, [s3] endpoint)"),
                    (self.region.is_some(), "--s3-region (VODUP_S3_REGION, [s3] region)"),
                    (self.path_style.is_some(), "--s3-path-style (VODUP_S3_PATH_STYLE, [s3] path_style)"),
                ] {
                    if set {
                        return Err(ConfigError(format!(
                            "{flag} is set, but the storage is the folder {}: give --storage s3://BUCKET to \
                             store blobs in a bucket, or remove the setting",
                            path.display()
                        )));
                    }
                }
                return Ok(Storage::Local(path));
            }
            StorageLocation::S3 { bucket, prefix } => (bucket, prefix),
        };
        let endpoint = match &self.endpoint {
            Some(url) => Some(check_s3_endpoint(url)?),
            None => None,
        };
        let region = self.region.clone().unwrap_or_else(|| "us-east-1".to_owned());
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ConfigError(format!(
                "--s3-region (VODUP_S3_REGION, [s3] region) {region:?} is not a region name like us-east-1 or garage"
            )));
        }
        let keys = (
            self.access_key_id.clone().filter(|id| !id.is_empty()),
            self.secret_access_key.clone().filter(|secret| !secret.is_empty()),
        );
        let (Some(access_key_id), Some(secret_access_key)) = keys else {
            return Err(ConfigError(format!(
                "--storage s3://{bucket} needs the bucket's keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 in the environment, or access_key_id and secret_access_key in the [s3] section of the config file"
            )));
        };
        Ok(Storage::S3(S3Settings {
            bucket,
            prefix,
            path_style: self.path_style.unwrap_or(endpoint.is_some()),
            endpoint,
            region,
            access_key_id,
            secret_access_key,
        }))
    }
}

impl HttpSection {
    fn validate(&self) -> Result<Http, ConfigError> {
        let secs = |name: &str, value: Option<u64>, default: u64| -> Result<Duration, ConfigError> {
            let value = value.unwrap_or(default);
            if (1..=86_400).contains(&value) {
                Ok(Duration::from_secs(value))
            } else {
                Err(ConfigError(format!("{name} {value} s is outside 1..=86400")))
            }
        };
        let positive = |name: &str, value: Option<usize>| match value {
            Some(0) => Err(ConfigError(format!("{name} must be at least 1"))),
            other => Ok(other),
        };
        let max_connections = positive("--max-connections", self.max_connections)?;
        let max_connections_per_client =
            positive("--max-connections-per-client", self.max_connections_per_client)?;
        if let (Some(total), Some(per_client)) = (max_connections, max_connections_per_client)
            && per_client > total
        {
            return Err(ConfigError(format!(
                "--max-connections-per-client {per_client} is above --max-connections {total}"
            )));
        }
        Ok(Http {
            header_read_timeout: secs("--header-read-timeout", self.header_read_timeout_secs, 20)?,
            idle_timeout: secs("--idle-timeout", self.idle_timeout_secs, 60)?,
            max_connections,
            max_connections_per_client,
        })
    }
}

impl EventsSection {
    fn validate(&self) -> Result<EventDelivery, ConfigError> {
        let http_url = |what: &str, url: &str| -> Result<(), ConfigError> {
            let lower = url.to_ascii_lowercase();
            let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
            match rest {
                Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
                _ => Err(ConfigError(format!("{what} {url:?} is not an http(s) URL"))),
            }
        };
        if let Some(url) = &self.callback_url {
            http_url("--callback-url", url)?;
        }
        for prefix in &self.allowed_callback_prefixes {
            http_url("allowed callback prefix", prefix)?;
            // Without the slash, `https://hooks.example.com` would also allow `https://hooks.example.com.evil`.
            if !prefix.ends_with('/') {
                return Err(ConfigError(format!(
                    "allowed callback prefix {prefix:?} must end with `/` (e.g. {prefix:?}/), or it allows other hosts"
                )));
            }
        }
        if let Some(key) = &self.auth_key
            && (key.is_empty() || key.chars().count() > 32)
        {
            return Err(ConfigError("the callback AuthKey must be 1 to 32 characters".into()));
        }
        Ok(EventDelivery {
            callback_url: self.callback_url.clone(),
            auth_key: self.auth_key.clone(),
            allowed_callback_prefixes: self.allowed_callback_prefixes.clone(),
            horizon: Duration::from_secs(self.horizon_secs.unwrap_or(86_400).max(1)),
            max_backoff: Duration::from_secs(self.max_backoff_secs.unwrap_or(300).max(1)),
            poll_interval: Duration::from_millis(self.poll_interval_ms.unwrap_or(1000).clamp(10, 60_000)),
            claim: Duration::from_secs(self.claim_secs.unwrap_or(60).max(1)),
        })
    }
}

impl Settings {
    /// Fills the public endpoint from the bound OSS address when it was left to the default.
    #[must_use]
    pub fn with_bound_oss(mut self, bound: SocketAddr) -> Self {
        self.oss_listen = bound;
        if self.public_oss_endpoint.is_none() {
            self.public_oss_endpoint = Some(format!("http://{bound}"));
        }
        self
    }
}

fn check_endpoint(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let rest =
        trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://")).ok_or_else(|| {
            ConfigError(format!("--public-oss-endpoint {url:?} must start with http:// or https://"))
        })?;
    if rest.is_empty() || rest.contains('/') || rest.contains('?') {
        return Err(ConfigError(format!(
            "--public-oss-endpoint {url:?} must be scheme://host[:port] without a path"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Parses a `--meta` URL. It names the setting in all three of its spellings, and never repeats the value
/// (a PostgreSQL URL carries a password).
pub fn check_meta(url: &str) -> Result<MetaLocation, ConfigError> {
    let what = "--meta (VODUP_META, [server] meta)";
    let location = MetaLocation::parse(url).map_err(|e| ConfigError(format!("{what}: {e}")))?;
    if matches!(location, MetaLocation::Postgres(_)) && !cfg!(feature = "postgres") {
        return Err(ConfigError(format!(
            "{what} names a PostgreSQL database, but this vodup was built without PostgreSQL support (cargo \
             feature `postgres` of vodup-cli): rebuild with it, or use sqlite://PATH"
        )));
    }
    Ok(location)
}

/// Parses a `--storage` URL, naming the setting in all three of its spellings.
pub fn check_storage(url: &str) -> Result<StorageLocation, ConfigError> {
    StorageLocation::parse(url)
        .map_err(|e| ConfigError(format!("--storage (VODUP_STORAGE, [server] storage): {e}")))
}

/// An S3 endpoint: `http(s)://HOST[:PORT]`, no path, no query.
fn check_s3_endpoint(url: &str) -> Result<String, ConfigError> {
    let what = "--s3-endpoint (VODUP_S3_ENDPOINT, [s3] endpoint)";
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@']) => Ok(trimmed.to_owned()),
        _ => Err(ConfigError(format!(
            "{what} {url:?} is not a URL like http://127.0.0.1:3900 or https://s3.example.com (scheme, host, \
             optional port, no path)"
        ))),
    }
}

/// OSS bucket names: 3-63 characters of `a-z 0-9 -`, not starting or ending with `-`.
pub fn check_bucket(bucket: &str) -> Result<(), ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!("bucket {bucket:?} must be 3-63 characters of a-z, 0-9 and -")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_data() -> Config {
        let mut config = Config::default();
        config.server.data = Some("/tmp/vodup".into());
        config
    }

    #[test]
    fn defaults() {
        let settings = with_data().validate().unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_oss_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(settings.region, "cn-shanghai");
        assert_eq!(settings.credential_lifetime, Duration::from_secs(3600));
        assert_eq!(settings.max_v1_presign_lifetime, Duration::from_secs(2_592_000));
    }

    #[test]
    fn the_catalogue_defaults_to_the_data_folder_and_meta_chooses_another() {
        let settings = with_data().validate().unwrap();
        assert_eq!(settings.meta, MetaLocation::Sqlite("/tmp/vodup/meta.sqlite".into()));
        assert_eq!(settings.data.as_deref(), Some(std::path::Path::new("/tmp/vodup")));
        let config =
            Config::from_toml("[server]\ndata = \"/d\"\nmeta = \"sqlite:///elsewhere/c.db\"\n").unwrap();
        assert_eq!(config.validate().unwrap().meta, MetaLocation::Sqlite("/elsewhere/c.db".into()));
        let mut config = with_data();
        config.server.meta = Some("mysql://root:hunter2@db/vodup".into());
        let error = config.validate().unwrap_err().0;
        assert!(error.contains("--meta (VODUP_META, [server] meta)"), "{error}");
        assert!(!error.contains("hunter2"), "the error repeats the password: {error}");
    }

    #[test]
    fn storage_defaults_to_the_data_folder_and_storage_chooses_a_folder_or_a_bucket() {
        let settings = with_data().validate().unwrap();
        assert_eq!(settings.storage, Storage::Local("/tmp/vodup/store".into()));
        let mut config = with_data();
        config.server.storage = Some("file:///elsewhere/blobs".into());
        assert_eq!(config.validate().unwrap().storage, Storage::Local("/elsewhere/blobs".into()));
        let config = Config::from_toml(
            "[server]\ndata = \"/d\"\nstorage = \"s3://media/vodup\"\n[s3]\nendpoint = \"http://127.0.0.1:3900/\"\n\
             region = \"garage\"\naccess_key_id = \"GKid\"\nsecret_access_key = \"hunter2\"\n",
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"), "Debug shows the secret: {config:?}");
        let settings = config.validate().unwrap();
        let Storage::S3(s3) = &settings.storage else { panic!("an S3 store: {:?}", settings.storage) };
        assert_eq!(
            (
                s3.bucket.as_str(),
                s3.prefix.as_str(),
                s3.endpoint.as_deref(),
                s3.region.as_str(),
                s3.path_style
            ),
            ("media", "vodup", Some("http://127.0.0.1:3900"), "garage", true)
        );
        assert_eq!((s3.access_key_id.as_str(), s3.secret_access_key.expose()), ("GKid", "hunter2"));
        assert!(!format!("{settings:?}").contains("hunter2"), "Debug shows the secret");
        assert_eq!(settings.storage.to_string(), "s3://media/vodup at http://127.0.0.1:3900");
    }

    #[test]
    fn s3_storage_needs_keys_and_a_plain_endpoint() {
        let mut config = with_data();
        config.server.storage = Some("s3://media".into());
        let error = config.validate().unwrap_err().0;
        assert!(error.contains("AWS_ACCESS_KEY_ID") && error.contains("[s3]"), "{error}");
        config.s3.access_key_id = Some("id".into());
        config.s3.secret_access_key = Some("secret".into());
        let Storage::S3(s3) = config.validate().unwrap().storage else { panic!("an S3 store") };
        assert_eq!((s3.region.as_str(), s3.path_style, s3.endpoint), ("us-east-1", false, None));
        for bad in ["127.0.0.1:3900", "http://h/path", "ftp://h"] {
            config.s3.endpoint = Some(bad.into());
            let error = config.validate().unwrap_err().0;
            assert!(error.contains("--s3-endpoint"), "{bad}: {error}");
        }
        config.server.storage = Some("s3://Bad_Bucket".into());
        assert!(config.validate().unwrap_err().0.contains("--storage (VODUP_STORAGE, [server] storage)"));
    }

    #[test]
    fn s3_settings_without_an_s3_store_are_refused() {
        let mut config = with_data();
        config.s3.endpoint = Some("http://127.0.0.1:3900".into());
        let error = config.validate().unwrap_err().0;
        assert!(error.contains("--s3-endpoint") && error.contains("--storage s3://"), "{error}");
        // Keys alone are no mistake: AWS_* may be set for other tools.
        let mut config = with_data();
        config.s3.access_key_id = Some("id".into());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn no_data_folder_is_needed_when_catalogue_and_storage_are_elsewhere() {
        let mut config = Config::default();
        config.server.storage = Some("s3://media".into());
        config.s3.access_key_id = Some("id".into());
        config.s3.secret_access_key = Some("secret".into());
        let error = config.validate().unwrap_err().0;
        assert!(error.contains("--data") && error.contains("catalogue"), "{error}");
        config.server.meta = Some("sqlite:///var/lib/vodup/meta.sqlite".into());
        let settings = config.validate().unwrap();
        assert_eq!(settings.data, None);
        let mut config = Config::default();
        config.server.meta = Some("sqlite:///m.sqlite".into());
        assert!(config.validate().unwrap_err().0.contains("no data folder for the storage"));
    }

    #[test]
    fn v1_presign_lifetime_is_a_data_setting_of_at_least_a_second() {
        let config =
            Config::from_toml("[server]\ndata = \"/d\"\n[data]\nmax_v1_presign_lifetime_secs = 60\n")
                .unwrap();
        assert_eq!(config.validate().unwrap().max_v1_presign_lifetime, Duration::from_secs(60));
        let mut config = with_data();
        config.data.max_v1_presign_lifetime_secs = Some(0);
        assert!(config.validate().unwrap_err().0.contains("--max-v1-presign-lifetime"));
    }

    #[test]
    fn toml_sections_parse_and_unknown_keys_are_refused() {
        let config = Config::from_toml(
            "[server]\ndata = \"/d\"\nregion = \"cn-beijing\"\n[control]\ncredential_lifetime_secs = 5\n",
        )
        .unwrap();
        assert_eq!(config.validate().unwrap().credential_lifetime, Duration::from_secs(5));
        assert!(Config::from_toml("[server]\ndatta = \"/d\"\n").is_err());
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        assert!(Config::default().validate().unwrap_err().0.contains("--data"));
        let mut config = with_data();
        config.server.public_oss_endpoint = Some("oss.example.com".into());
        assert!(config.validate().unwrap_err().0.contains("http://"));
        let mut config = with_data();
        config.server.listen = Some("127.0.0.1:9000".into());
        assert!(config.validate().is_err());
        let mut config = with_data();
        config.server.bucket = Some("Bad_Bucket".into());
        assert!(config.validate().is_err());
    }

    #[test]
    fn http_limits_default_and_refuse_nonsense() {
        let http = with_data().validate().unwrap().http;
        assert_eq!(http.header_read_timeout, Duration::from_secs(20));
        assert_eq!(http.idle_timeout, Duration::from_secs(60));
        assert_eq!((http.max_connections, http.max_connections_per_client), (None, None));
        let config = Config::from_toml(
            "[server]\ndata = \"/d\"\n[http]\nidle_timeout_secs = 5\nmax_connections = 10\nmax_connections_per_client = 3\n",
        )
        .unwrap();
        let http = config.validate().unwrap().http;
        assert_eq!(
            (http.idle_timeout, http.max_connections, http.max_connections_per_client),
            (Duration::from_secs(5), Some(10), Some(3))
        );
        for bad in [
            "header_read_timeout_secs = 0",
            "max_connections = 0",
            "max_connections = 2\nmax_connections_per_client = 3",
        ] {
            let config = Config::from_toml(&format!("[server]\ndata = \"/d\"\n[http]\n{bad}\n")).unwrap();
            assert!(config.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn port_zero_waits_for_the_bound_address() {
        let mut config = with_data();
        config.server.oss_listen = Some("127.0.0.1:0".into());
        let settings = config.validate().unwrap();
        assert_eq!(settings.public_oss_endpoint, None);
        let bound = settings.with_bound_oss("127.0.0.1:4567".parse().unwrap());
        assert_eq!(bound.public_oss_endpoint.as_deref(), Some("http://127.0.0.1:4567"));
    }
}
