//! Starting and running the service: open the catalogue and storage in the data folder, load or create
//! the bucket name and the server secret, then serve the control plane and the data plane until the
//! shutdown signal, with a background task refreshing the revocation set.
//!
//! `run(listeners, state, shutdown)` is the whole server (mini-redis); the binary and the tests only
//! choose the listeners and the signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use vodup_proto::Secret;

use crate::config::{Settings, check_bucket};
use crate::control;
use crate::credentials::{KeyCache, NonceCache, RevocationSet};
use crate::data;
use crate::meta::{MetaError, MetaStore, SqliteMeta};
use crate::metrics::Metrics;
use crate::presign::Presigner;
use crate::rate_limit::ProgressLimiter;
use crate::state::{AppState, Inner, Site};
use crate::storage::{BlobStore, LocalStore, StorageError};
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
    /// The catalogue failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The catalogue and storage could not be brought to agree after a crash.
    #[error(transparent)]
    Reconcile(#[from] crate::reconcile::ReconcileError),
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
    let folder_error = |source| StartError::DataFolder { path: data.display().to_string(), source };
    tokio::fs::create_dir_all(data).await.map_err(folder_error)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        tokio::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(folder_error)?;
    }
    Ok(SqliteMeta::open(&meta_path(data)).await?)
}

/// Opens everything and builds the shared state. `bound_oss` is the data plane's bound address (it
/// fills the public endpoint when none is configured).
pub async fn build_state(settings: Settings, bound_oss: SocketAddr) -> Result<AppState, StartError> {
    let settings = settings.with_bound_oss(bound_oss);
    crate::fault::announce();
    tracing::info!(data = %settings.data.display(), "opening the catalogue");
    let meta: Arc<dyn MetaStore> = Arc::new(open_meta(&settings.data).await?);
    tracing::info!("opening storage");
    let storage: Arc<dyn BlobStore> = Arc::new(LocalStore::open(settings.data.join("store")).await?);
    storage.health_check().await?;

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
    let revocations = RevocationSet::new(settings.revocation_refresh);
    revocations.refresh(meta.as_ref(), SystemTime::now(), revocation_horizon(&settings)).await?;
    let state = AppState(Arc::new(Inner {
        presigner: Presigner::new(sts.presign_secret()),
        sts,
        site,
        meta,
        storage,
        keys: KeyCache::default(),
        nonces: NonceCache::new(control::auth::TIMESTAMP_WINDOW * 2),
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
        clock: SystemTime::now,
        settings,
    }));
    crate::reconcile::run(&state).await?;
    Ok(state)
}

/// No credential lives longer than this, so deletions older than it no longer matter.
fn revocation_horizon(settings: &Settings) -> Duration {
    settings.credential_lifetime + Duration::from_secs(300)
}

/// Serves both planes until `shutdown` completes, then lets in-flight requests finish (up to
/// [`GRACEFUL_SHUTDOWN`]).
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

    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let control_app = control::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let data_app = data::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tracing::info!(control = %control_listener.local_addr()?, data = %data_listener.local_addr()?, "serving");
    let control_server = tokio::spawn(
        axum::serve(control_listener, control_app)
            .with_graceful_shutdown(wait(stop_rx.clone()))
            .into_future(),
    );
    let data_server = tokio::spawn(
        axum::serve(data_listener, data_app).with_graceful_shutdown(wait(stop_rx.clone())).into_future(),
    );

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(GRACEFUL_SHUTDOWN, async {
        let _ = control_server.await;
        let _ = data_server.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still in flight after {} s; stopping anyway", GRACEFUL_SHUTDOWN.as_secs());
    }
    let _ = refresher.await;
    let _ = events.await;
    let _ = sweeper.await;
    Ok(())
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
