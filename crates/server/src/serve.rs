//! Starting and running the service: open the catalogue and the storage (in the data folder, or where
//! `--meta` and `--storage` name), proving each usable before anything is served, load or create the
//! bucket name and the server secret, then serve the control plane and the data plane until the
//! shutdown signal, with a background task refreshing the revocation set.
//!
//! `run(listeners, state, shutdown)` is the whole server (mini-redis); the binary and the tests only
//! choose the listeners and the signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, Request, header};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use vodup_proto::Secret;
use vodup_proto::oss::OssErrorCode;
use vodup_proto::vod::VodErrorCode;

use crate::config::{ConfigError, Http, Settings, Storage, check_bucket};
use crate::control;
use crate::control::error::ApiError;
use crate::credentials::{KeyCache, RevocationSet};
use crate::data;
use crate::data::error::OssApiError;
use crate::listener::{self, Limits, Plane, Refusal};
use crate::meta::{MetaError, MetaLocation, MetaStore, SqliteMeta};
use crate::metrics::Metrics;
use crate::presign::Presigner;
use crate::rate_limit::ProgressLimiter;
use crate::request_id::new_request_id;
use crate::site::Site;
use crate::state::{AppState, Inner};
use crate::storage::s3::Problem;
use crate::storage::{BlobStore, LocalStore, S3Settings, S3Store, StorageError};
use crate::sts::StsAuthority;

/// How long in-flight requests get to finish after the shutdown signal.
pub const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder could not be prepared.
    #[error("cannot prepare the data folder {path}: {source}")]
    DataFolder {
        /// The folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process (a running `vodup serve`) holds the store's folder.
    #[error(
        "the store {store} is in use by another running vodup serve: stop that process, or give this one \
         another --data or --storage"
    )]
    InUse {
        /// The store's folder.
        store: String,
    },
    /// The data folder has no catalogue, and the command must not create one.
    #[error(
        "{data} has no catalogue (meta.sqlite): check --data, or create one with `vodup keys create` or \
         `vodup serve`"
    )]
    NoCatalogue {
        /// The data folder.
        data: String,
    },
    /// `--meta` names an SQLite file that does not exist, and the command must not create one.
    #[error(
        "there is no catalogue at {path}: check --meta, or create one with `vodup keys create` or `vodup serve`"
    )]
    NoCatalogueFile {
        /// The file.
        path: String,
    },
    /// The catalogue failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The store's old layout could not be migrated.
    #[error(transparent)]
    Upgrade(#[from] crate::upgrade::UpgradeError),
    /// The stored bucket name is invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

/// The catalogue file inside a data folder.
pub fn meta_path(data: &Path) -> std::path::PathBuf {
    data.join("meta.sqlite")
}

/// Creates the data folder readable only by the service's user, and opens the catalogue in it.
pub async fn open_meta(data: &Path) -> Result<SqliteMeta, StartError> {
    prepare_data_folder(data).await?;
    Ok(SqliteMeta::open(&meta_path(data)).await?)
}

/// Creates the data folder (if absent) readable only by the service's user.
async fn prepare_data_folder(data: &Path) -> Result<(), StartError> {
    let folder_error = |source| StartError::DataFolder { path: data.display().to_string(), source };
    tokio::fs::create_dir_all(data).await.map_err(folder_error)?;
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).await.map_err(folder_error)
}

/// Opens the catalogue of a data folder that already has one and creates nothing, no folder and no file:
/// `vodup keys list` and `revoke` only read or change what is there.
pub async fn open_existing_meta(data: &Path) -> Result<SqliteMeta, StartError> {
    let path = meta_path(data);
    if !path.is_file() {
        return Err(StartError::NoCatalogue { data: data.display().to_string() });
    }
    Ok(SqliteMeta::open_existing(&path).await?)
}

/// Opens the catalogue `location` names and brings its schema up to date. An SQLite file is created
/// only when `create` (its folder must exist); a PostgreSQL database must exist, and its tables are created
/// on first use. A database that cannot be reached, refuses the login or does not exist is a
/// [`StartError::Config`] that names `--meta` and what to fix.
pub async fn open_catalogue(location: &MetaLocation, create: bool) -> Result<Arc<dyn MetaStore>, StartError> {
    match location {
        MetaLocation::Sqlite(path) if create => Ok(Arc::new(SqliteMeta::open(path).await?)),
        MetaLocation::Sqlite(path) => {
            if !path.is_file() {
                return Err(StartError::NoCatalogueFile { path: path.display().to_string() });
            }
            Ok(Arc::new(SqliteMeta::open_existing(path).await?))
        }
        #[cfg(feature = "postgres")]
        MetaLocation::Postgres(url) => match crate::meta::PostgresMeta::connect(url).await {
            Ok(meta) => Ok(Arc::new(meta)),
            Err(crate::meta::postgres::ConnectError::Setting(problem)) => {
                Err(StartError::Config(crate::config::ConfigError(format!(
                    "cannot use the catalogue {url} (--meta, VODUP_META or [server] meta): {problem}"
                ))))
            }
            Err(crate::meta::postgres::ConnectError::Meta(error)) => Err(error.into()),
        },
        #[cfg(not(feature = "postgres"))]
        MetaLocation::Postgres(_) => Err(StartError::Config(crate::config::ConfigError(
            "--meta names a PostgreSQL database, but this vodup was built without PostgreSQL support".into(),
        ))),
    }
}

/// Opens everything and builds the shared state. `bound_oss` is the data plane's bound address (it
/// fills the public endpoint when none is configured).
pub async fn build_state(settings: Settings, bound_oss: SocketAddr) -> Result<AppState, StartError> {
    let settings = settings.with_bound_oss(bound_oss);
    crate::fault::announce();
    tracing::info!(
        data = settings.data.as_ref().map(|d| d.display().to_string()),
        catalogue = %settings.meta,
        storage = %settings.storage,
        "starting"
    );
    // A bucket that cannot be used is refused before anything is created on disk (it is probed first), a
    // database too; an SQLite file needs its folder first. Without a data folder (catalogue and storage
    // both elsewhere) nothing is created on this machine.
    let s3 = match &settings.storage {
        Storage::S3(s3) => {
            tracing::info!(storage = %settings.storage, "checking the bucket");
            Some(open_s3_store(s3).await?)
        }
        Storage::Local(_) => None,
    };
    let meta = match &settings.meta {
        MetaLocation::Sqlite(_) => {
            if let Some(data) = &settings.data {
                prepare_data_folder(data).await?;
            }
            open_catalogue(&settings.meta, true).await?
        }
        MetaLocation::Postgres(_) => {
            let meta = open_catalogue(&settings.meta, true).await?;
            if let Some(data) = &settings.data {
                prepare_data_folder(data).await?;
            }
            meta
        }
    };
    let local = match &settings.storage {
        Storage::Local(path) => {
            tracing::info!(storage = %settings.storage, "opening storage");
            Some(open_local_store(path).await?)
        }
        Storage::S3(_) => None,
    };

    let generated_bucket = format!("outin-{}", hex::encode(rand::random::<[u8; 16]>()));
    let bucket = match &settings.bucket {
        Some(bucket) => bucket.clone(),
        None => meta.get_or_create_setting("bucket", &generated_bucket).await?,
    };
    check_bucket(&bucket)?;
    let server_secret = Secret::new(
        meta.get_or_create_setting("server_secret", &hex::encode(rand::random::<[u8; 32]>())).await?,
    );
    let sts = StsAuthority::new(&server_secret);
    let site = Site {
        bucket,
        endpoint: settings.public_oss_endpoint.clone().unwrap_or_else(|| format!("http://{bound_oss}")),
        region: settings.region.clone(),
    };
    tracing::info!(bucket = site.bucket, endpoint = site.endpoint, region = site.region, "site");
    // Only a folder can hold the layout from before catalogue commits; a bucket never did.
    let storage: Arc<dyn BlobStore> = match (local, s3) {
        (Some(local), _) => {
            crate::upgrade::run(meta.as_ref(), &local, &site.bucket, SystemTime::now()).await?;
            Arc::new(local)
        }
        (None, Some(s3)) => Arc::new(s3),
        (None, None) => unreachable!("one store is always opened"),
    };
    let revocations = RevocationSet::new(settings.revocation_refresh);
    revocations.refresh(meta.as_ref(), SystemTime::now(), revocation_horizon(&settings)).await?;
    let state = AppState(Arc::new(Inner {
        presigner: Presigner::new(sts.presign_secret()),
        sts,
        site,
        meta,
        storage,
        keys: KeyCache::default(),
        revocations,
        progress_limiter: ProgressLimiter::new(
            settings.progress_rate_per_ip,
            settings.progress_rate_per_media,
            settings.progress_table_entries,
        ),
        progress_writes: control::progress::pending_writes(),
        metrics: Metrics::default(),
        body_budget: crate::buffered_body::BodyBudget::new(settings.buffered_body_budget),
        readiness: Default::default(),
        node: crate::lease::node_name(),
        clock: SystemTime::now,
        settings,
    }));
    Ok(state)
}

/// Opens and locks the blob folder and proves it writable.
async fn open_local_store(path: &Path) -> Result<LocalStore, StartError> {
    let local = LocalStore::open(path.to_owned()).await.map_err(|error| match error {
        StorageError::InUse { .. } => StartError::InUse { store: path.display().to_string() },
        error => error.into(),
    })?;
    local.health_check().await?;
    Ok(local)
}

/// Opens the bucket and proves it usable (a probe object written and deleted). A bucket that cannot be
/// used is a [`StartError::Config`] naming the setting to fix: the endpoint when nothing answers, the
/// bucket when it does not exist, the keys when they are refused.
pub async fn open_s3_store(s3: &S3Settings) -> Result<S3Store, StartError> {
    let store = S3Store::new(s3.clone())?;
    let Err(failure) = store.probe().await else { return Ok(store) };
    let endpoint = s3.endpoint.as_deref().unwrap_or("AWS S3");
    let code = failure.service_code.as_deref().map_or_else(String::new, |code| format!(" ({code})"));
    let why = match failure.problem {
        Problem::Unreachable => format!(
            "nothing answers at the S3 endpoint {endpoint}: check --s3-endpoint (VODUP_S3_ENDPOINT, [s3] \
             endpoint) and that the store is running"
        ),
        // SeaweedFS answers a PUT into a missing bucket with 500 InternalError, so a 5xx may be either.
        Problem::Unavailable => format!(
            "the S3 store at {endpoint} answers a test write into bucket {} with a server error{code}: check \
             that the bucket exists (--storage, VODUP_STORAGE, [server] storage) and that the store is healthy \
             (a Garage cluster needs a quorum of its nodes), then start again",
            s3.bucket
        ),
        Problem::NoSuchBucket => format!(
            "the bucket {} does not exist at {endpoint}{code}: create it, or fix the bucket in --storage \
             (VODUP_STORAGE, [server] storage)",
            s3.bucket
        ),
        Problem::Denied => format!(
            "the S3 store at {endpoint} refused the keys{code}: check AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (or [s3] access_key_id and secret_access_key), and that the key may \
             read, write and delete in bucket {}",
            s3.bucket
        ),
        Problem::Other => format!(
            "the S3 store at {endpoint} refused a test write to bucket {}{code}: check --storage, \
             --s3-endpoint, --s3-region (it is {}) and --s3-path-style",
            s3.bucket, s3.region
        ),
    };
    Err(StartError::Config(ConfigError(format!(
        "cannot use the storage {}: {why}; the store said: {}",
        crate::config::Storage::S3(s3.clone()),
        failure.error
    ))))
}

/// No credential lives longer than this, so deletions older than it no longer matter.
fn revocation_horizon(settings: &Settings) -> Duration {
    settings.credential_lifetime + Duration::from_secs(300)
}

/// Serves both planes until `shutdown` completes, then lets in-flight requests finish (up to
/// [`GRACEFUL_SHUTDOWN`]). Each plane runs on a [`listener`] with the `[http]` connection limits.
pub async fn run(
    control_listener: TcpListener,
    data_listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(refresh_revocations(state.clone(), stop_rx.clone()));
    let events = tokio::spawn(crate::events::delivery::run(state.clone(), stop_rx.clone()));
    let sweeper = tokio::spawn(crate::sweeper::run(state.clone(), stop_rx.clone()));
    let collector = tokio::spawn(crate::collector::run(state.clone(), stop_rx.clone()));

    let limits = listener_limits(&state.settings.http);
    tracing::info!(
        control = %control_listener.local_addr()?,
        data = %data_listener.local_addr()?,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_per_client,
        header_read_timeout_s = limits.header_read_timeout.as_secs(),
        idle_timeout_s = limits.idle_timeout.as_secs(),
        "serving (connection limits per listener)"
    );
    let control_plane = Plane {
        name: "vod",
        router: control::router(state.clone()),
        refuse: refuse_vod(state.clone()),
        metrics: state.metrics.vod_connections.clone(),
    };
    let data_plane = Plane {
        name: "oss",
        router: data::router(state.clone()),
        refuse: refuse_oss(state.clone()),
        metrics: state.metrics.oss_connections.clone(),
    };
    let control_server =
        tokio::spawn(listener::serve(control_listener, control_plane, limits, stop_rx.clone()));
    let data_server = tokio::spawn(listener::serve(data_listener, data_plane, limits, stop_rx.clone()));

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Each listener drains its connections for at most GRACEFUL_SHUTDOWN, then drops the rest.
    let _ = control_server.await;
    let _ = data_server.await;
    let _ = refresher.await;
    let _ = events.await;
    let _ = sweeper.await;
    let _ = collector.await;
    // Another node may take the background work over now rather than when the leases expire.
    crate::sweeper::lease(&state).release(&state).await;
    crate::collector::lease(&state).release(&state).await;
    Ok(())
}

/// The configured limits, with the caps left unset derived from the descriptor limit.
fn listener_limits(http: &Http) -> Limits {
    let descriptors = listener::descriptor_limit();
    let (total, per_client) = listener::default_caps(descriptors);
    let max_connections = http.max_connections.unwrap_or(total);
    let max_per_client = http
        .max_connections_per_client
        .unwrap_or_else(|| per_client.min(max_connections))
        .min(max_connections);
    if http.max_connections.is_none() {
        tracing::info!(
            descriptor_limit = descriptors,
            max_connections,
            "connection cap per listener derived from the descriptor limit (set [http] max_connections to choose)"
        );
    }
    Limits {
        max_connections,
        max_per_client,
        header_read_timeout: http.header_read_timeout,
        idle_timeout: http.idle_timeout,
        grace: GRACEFUL_SHUTDOWN,
    }
}

fn refusal_message(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::AmbiguousFraming => {
            "The request has both Content-Length and Transfer-Encoding; send exactly one of them."
        }
        Refusal::LostFraming => "The request framing of this connection could not be followed; reconnect.",
    }
}

fn host_of(request: &Request<Incoming>, default: &str) -> String {
    request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(default).to_owned()
}

/// The control plane's answer to a request the listener refuses: VOD JSON, 400 InvalidParameter.
fn refuse_vod(state: AppState) -> listener::Refuse {
    Arc::new(move |request, refusal| {
        let request_id = new_request_id();
        state.metrics.count_request("vod", "Unknown", VodErrorCode::InvalidParameter.as_str());
        tracing::info!(request_id, ?refusal, "vod call refused before parsing");
        ApiError::new(VodErrorCode::InvalidParameter, refusal_message(refusal))
            .into_response_for(&request_id, &host_of(request, "vod"))
    })
}

/// The data plane's answer to a request the listener refuses: OSS XML, 400 InvalidRequest.
fn refuse_oss(state: AppState) -> listener::Refuse {
    Arc::new(move |request, refusal| {
        let request_id = new_request_id();
        state.metrics.count_request("oss", "Unknown", OssErrorCode::InvalidRequest.as_str());
        tracing::info!(request_id, ?refusal, "oss request refused before parsing");
        let mut response = OssApiError::with_message(OssErrorCode::InvalidRequest, refusal_message(refusal))
            .into_response_for(request.method(), &request_id, &host_of(request, ""));
        response.headers_mut().insert(header::SERVER, HeaderValue::from_static("AliyunOSS"));
        response
    })
}

async fn refresh_revocations(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = state.settings.revocation_refresh;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        if let Err(e) = state
            .revocations
            .refresh(state.meta.as_ref(), state.now(), revocation_horizon(&state.settings))
            .await
        {
            tracing::warn!(error = %e, "could not refresh the revocation set");
        }
    }
}
