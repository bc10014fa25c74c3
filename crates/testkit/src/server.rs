//! A real `vodup serve` on 127.0.0.1 port 0 with its own temp data folder and a fresh AccessKey, plus
//! hand-signed VOD and OSS calls built on vodup-proto, so tests speak real HTTP to the real server
//! (mini-redis `start_server`, axum `the_real_deal`). Tests can also read its `/metrics` counters and
//! put something (a [`CorruptingProxy`](crate::CorruptingProxy)) in front of its OSS plane.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vodup_server::config::Config;
use vodup_server::serve::{build_state, run};
use vodup_server::state::AppState;

use crate::api::Api;
use crate::backend::{Backend, Remote};

/// A running server.
#[derive(Debug)]
pub struct TestServer {
    /// Signed calls to it (also reached through `Deref`: `server.vod(…)`, `server.key_id`).
    pub api: Api,
    /// The server's state (catalogue, storage…), for checks behind its back.
    pub state: AppState,
    /// The data folder (removed on drop).
    pub dir: tempfile::TempDir,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// The PostgreSQL database and Garage prefix, when the server runs on them; dropped last.
    remote: Option<Remote>,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with default settings on `backend`: SQLite and local disk in its data folder, or a
    /// fresh PostgreSQL database and a fresh Garage prefix. `None` when the backend is absent and the test
    /// skips (the skip rule).
    #[track_caller]
    pub fn start_on(backend: Backend) -> impl Future<Output = Option<Self>> {
        Self::start_on_with(backend, |_| {})
    }

    /// [`TestServer::start_on`] after `tweak` adjusts the configuration.
    #[track_caller]
    pub fn start_on_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> impl Future<Output = Option<Self>> {
        let remote = backend.prepare();
        async move {
            let remote = remote.await?;
            let mut server = Self::start_with(|config| {
                if let Some(remote) = &remote {
                    remote.configure(config);
                }
                tweak(config);
            })
            .await;
            server.remote = remote;
            Some(server)
        }
    }

    /// Starts a server after `tweak` adjusts its configuration (for example
    /// `config.control.credential_lifetime_secs = Some(2)` to make upload credentials expire mid-upload,
    /// or a fixed `config.server.public_oss_endpoint`).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::launch(tweak, async |_| None::<(String, ())>).await.0
    }

    /// Starts a server with something in front of its OSS plane. Once the OSS listener is bound,
    /// `front` gets its address and returns the URL clients should use instead (written into every
    /// UploadAddress as the public OSS endpoint) together with whatever it started, which comes back
    /// beside the server. The VOD plane stays direct, and so does [`TestServer::oss_url`] (use
    /// [`TestServer::oss_at`] to sign a call through the front).
    ///
    /// ```no_run
    /// # async fn example() {
    /// use vodup_testkit::{Corruption, CorruptingProxy, TestServer};
    /// let (server, proxy) = TestServer::start_behind(
    ///     |_| {},
    ///     async |oss| {
    ///         let proxy = CorruptingProxy::start(oss, Corruption::OncePart(2)).await;
    ///         (proxy.url(), proxy)
    ///     },
    /// )
    /// .await;
    /// # }
    /// ```
    pub async fn start_behind<T>(
        tweak: impl FnOnce(&mut Config),
        front: impl AsyncFnOnce(SocketAddr) -> (String, T),
    ) -> (Self, T) {
        let (server, front) = Self::launch(tweak, async |oss| Some(front(oss).await)).await;
        (server, front.expect("the front was started"))
    }

    async fn launch<T>(
        tweak: impl FnOnce(&mut Config),
        front: impl AsyncFnOnce(SocketAddr) -> Option<(String, T)>,
    ) -> (Self, Option<T>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.server.data = Some(dir.path().join("data"));
        config.server.listen = Some("127.0.0.1:0".into());
        config.server.oss_listen = Some("127.0.0.1:0".into());
        tweak(&mut config);
        let settings = config.validate().expect("valid test config");
        let control = TcpListener::bind(settings.listen).await.expect("bind vod");
        let data = TcpListener::bind(settings.oss_listen).await.expect("bind oss");
        let (vod_addr, oss_addr) = (control.local_addr().unwrap(), data.local_addr().unwrap());
        let (settings, front) = match front(oss_addr).await {
            // Validated again so the front's URL passes the same checks as a configured one.
            Some((url, front)) => {
                config.server.public_oss_endpoint = Some(url);
                (config.validate().expect("valid public OSS endpoint"), Some(front))
            }
            None => (settings, None),
        };
        let (state, tx, task) = serve(control, data, settings, oss_addr).await;
        let key = vodup_server::keys::create_key(state.meta.as_ref(), "test", SystemTime::now())
            .await
            .expect("key");
        let api = Api::new(
            format!("http://{vod_addr}"),
            format!("http://{oss_addr}"),
            state.site.bucket.clone(),
            key.id,
            key.secret,
        );
        let server = Self { api, state, dir, config, shutdown: Some(tx), task: Some(task), remote: None };
        (server, front)
    }

    /// Stops the server gracefully and starts it again on the same data folder and configuration, on new
    /// ports: what the new one knows is what the old one wrote to disk. The test key stays valid.
    pub async fn restart(self) -> Self {
        // No Drop impl: dropping the shutdown sender also stops the server, so the fields can move out.
        let TestServer { state, api, dir, config, shutdown, task, remote } = self;
        if let Some(tx) = shutdown {
            let _ = tx.send(());
        }
        if let Some(task) = task {
            task.await.expect("server task").expect("server ran");
        }
        // The old state holds the store's folder lock; it must be gone before the new one opens it.
        drop(state);
        let settings = config.validate().expect("valid test config");
        let control = TcpListener::bind(settings.listen).await.expect("bind vod");
        let data = TcpListener::bind(settings.oss_listen).await.expect("bind oss");
        let (vod_addr, oss_addr) = (control.local_addr().unwrap(), data.local_addr().unwrap());
        let (state, tx, task) = serve(control, data, settings, oss_addr).await;
        let api = api.at(format!("http://{vod_addr}"), format!("http://{oss_addr}"));
        Self { api, state, dir, config, shutdown: Some(tx), task: Some(task), remote }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
    }
}

/// Builds the state and runs the server on the bound listeners until the returned sender fires or is
/// dropped (so dropping a [`TestServer`] stops its server).
async fn serve(
    control: TcpListener,
    data: TcpListener,
    settings: vodup_server::config::Settings,
    oss_addr: SocketAddr,
) -> (AppState, oneshot::Sender<()>, JoinHandle<std::io::Result<()>>) {
    let state = build_state(settings, oss_addr).await.expect("server starts");
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(run(control, data, state.clone(), async {
        let _ = rx.await;
    }));
    (state, tx, task)
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}
