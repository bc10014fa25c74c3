//! `vodup serve` and `vodup keys`: flags (with their `VODUP_*` environment variables) over the TOML
//! config file over defaults, validated once, then the server crate does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use tokio::net::TcpListener;
use vodup_server::config::{Config, ConfigError, check_meta};
use vodup_server::keys::create_key;
use vodup_server::meta::MetaStore;
use vodup_server::serve::{StartError, build_state, open_catalogue, open_existing_meta, open_meta, run};

/// Flags of `vodup serve`. Each overrides the same key of the config file.
#[derive(Debug, Args)]
#[command(after_help = "\
Every setting comes, in order of precedence, from its flag, its VODUP_* environment variable, or the --config \
file ([server] unless said otherwise), else its default.

S3 keys for --storage s3://… are never flags: they come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
else from access_key_id and secret_access_key in the [s3] section of the --config file.")]
pub struct ServeArgs {
    /// Data folder (objects unless --storage names another place, and the catalogue unless --meta
    /// does). Required unless both --meta and --storage are given: from this flag, VODUP_DATA, or `data`
    /// in the [server] section of the --config file.
    #[arg(long, env = "VODUP_DATA")]
    data: Option<PathBuf>,
    /// Where the blobs live: file://PATH, or s3://BUCKET[/PREFIX] in an S3-compatible store (Garage,
    /// SeaweedFS, Ceph, MinIO, AWS) shared by several nodes [default: file:// + DATA/store] ([server]
    /// storage).
    #[arg(long, env = "VODUP_STORAGE")]
    storage: Option<String>,
    /// URL of the S3-compatible store, as http://127.0.0.1:3900 [default: AWS] ([s3] endpoint).
    #[arg(long, env = "VODUP_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Region S3 requests are signed for (Garage: its s3_region, `garage` by default) [default:
    /// us-east-1] ([s3] region).
    #[arg(long, env = "VODUP_S3_REGION")]
    s3_region: Option<String>,
    /// Path-style S3 requests (ENDPOINT/BUCKET/KEY), which most self-hosted stores need [default: on with
    /// --s3-endpoint, off without] ([s3] path_style).
    #[arg(long, env = "VODUP_S3_PATH_STYLE", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    s3_path_style: Option<bool>,
    /// Where the catalogue lives: sqlite://PATH, or postgres://USER:PASSWORD@HOST:PORT/DATABASE (shared
    /// by several nodes) [default: sqlite:// + DATA/meta.sqlite].
    #[arg(long, env = "VODUP_META", hide_env_values = true)]
    meta: Option<String>,
    /// VOD RPC listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "VODUP_LISTEN")]
    listen: Option<String>,
    /// OSS data-plane listen address [default: 127.0.0.1:9000].
    #[arg(long, env = "VODUP_OSS_LISTEN")]
    oss_listen: Option<String>,
    /// OSS URL clients are told to use (behind a proxy) [default: http:// + the OSS listen address].
    #[arg(long, env = "VODUP_PUBLIC_OSS_ENDPOINT")]
    public_oss_endpoint: Option<String>,
    /// Region in UploadAuth and the one OSS V4 signatures must be scoped to [default: cn-shanghai].
    #[arg(long, env = "VODUP_SERVE_REGION")]
    region: Option<String>,
    /// Storage bucket name [default: generated once at first start].
    #[arg(long, env = "VODUP_BUCKET")]
    bucket: Option<String>,
    /// Lifetime of upload credentials in seconds [default: 3600].
    #[arg(long, env = "VODUP_CREDENTIAL_LIFETIME")]
    credential_lifetime: Option<u64>,
    /// Global callback URL for upload-complete events.
    #[arg(long, env = "VODUP_CALLBACK_URL")]
    callback_url: Option<String>,
    /// AuthKey that signs event deliveries (X-VOD-TIMESTAMP / X-VOD-SIGNATURE), up to 32 characters.
    #[arg(long, env = "VODUP_CALLBACK_AUTH_KEY", hide_env_values = true)]
    callback_auth_key: Option<String>,
    /// URL prefix (ending in `/`) a per-upload MessageCallback.CallbackURL may use; repeat or separate
    /// with commas. None by default: per-upload callback URLs are refused.
    #[arg(long = "allow-callback-prefix", env = "VODUP_ALLOWED_CALLBACK_PREFIXES", value_delimiter = ',')]
    allowed_callback_prefixes: Vec<String>,
    /// Seconds after which an unfinished upload is abandoned: its multipart uploads aborted, its media
    /// marked UploadFail [default: 604800, 7 days].
    #[arg(long, env = "VODUP_ABANDON_AFTER")]
    abandon_after: Option<u64>,
    /// Seconds bytes nothing references any more (an overwritten or deleted object, an aborted upload's
    /// parts, a refused write) are kept before the collector removes them; also how long a GET that began
    /// before an overwrite can keep reading [default: 3600].
    #[arg(long, env = "VODUP_BLOB_GRACE")]
    blob_grace: Option<u64>,
    /// Seconds a request head may take to arrive whole (a new connection's first: from the accept)
    /// [default: 20].
    #[arg(long, env = "VODUP_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// Seconds a connection may stay with no request in progress and no byte moving [default: 60].
    #[arg(long, env = "VODUP_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Open connections per listener [default: a quarter of the descriptor limit less 64, 8 to 4096].
    #[arg(long, env = "VODUP_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) per listener [default: a quarter of
    /// --max-connections].
    #[arg(long, env = "VODUP_MAX_CONNECTIONS_PER_CLIENT")]
    max_connections_per_client: Option<usize>,
    /// Longest lifetime in seconds of a V1 presigned URL (`Expires` - now); V4 URLs are capped at 7 days
    /// by OSS [default: 2592000, 30 days, the longest AuthTimeout the service issues].
    #[arg(long, env = "VODUP_MAX_V1_PRESIGN_LIFETIME")]
    max_v1_presign_lifetime: Option<u64>,
    /// TOML config file with [server], [control], [data], [events], [sweeper], [http] and [s3] sections.
    #[arg(long, env = "VODUP_CONFIG")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    fn into_config(self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                Config::from_toml(&text)?
            }
            None => Config::default(),
        };
        let s = &mut config.server;
        if self.data.is_some() {
            s.data = self.data;
        }
        for (slot, value) in [
            (&mut s.meta, self.meta),
            (&mut s.storage, self.storage),
            (&mut s.listen, self.listen),
            (&mut s.oss_listen, self.oss_listen),
            (&mut s.public_oss_endpoint, self.public_oss_endpoint),
            (&mut s.region, self.region),
            (&mut s.bucket, self.bucket),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        let s3 = &mut config.s3;
        for (slot, value) in [(&mut s3.endpoint, self.s3_endpoint), (&mut s3.region, self.s3_region)] {
            if value.is_some() {
                *slot = value;
            }
        }
        if self.s3_path_style.is_some() {
            s3.path_style = self.s3_path_style;
        }
        // The standard variables of every S3 client, over the file; never a flag (ps would show it).
        if let Some(id) = std::env::var("AWS_ACCESS_KEY_ID").ok().filter(|v| !v.is_empty()) {
            s3.access_key_id = Some(id);
        }
        if let Some(secret) = std::env::var("AWS_SECRET_ACCESS_KEY").ok().filter(|v| !v.is_empty()) {
            s3.secret_access_key = Some(secret.into());
        }
        if self.credential_lifetime.is_some() {
            config.control.credential_lifetime_secs = self.credential_lifetime;
        }
        if self.abandon_after.is_some() {
            config.sweeper.max_age_secs = self.abandon_after;
        }
        if self.blob_grace.is_some() {
            config.sweeper.blob_grace_secs = self.blob_grace;
        }
        let http = &mut config.http;
        for (slot, value) in [
            (&mut http.header_read_timeout_secs, self.header_read_timeout),
            (&mut http.idle_timeout_secs, self.idle_timeout),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        for (slot, value) in [
            (&mut http.max_connections, self.max_connections),
            (&mut http.max_connections_per_client, self.max_connections_per_client),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        if self.max_v1_presign_lifetime.is_some() {
            config.data.max_v1_presign_lifetime_secs = self.max_v1_presign_lifetime;
        }
        let events = &mut config.events;
        if self.callback_url.is_some() {
            events.callback_url = self.callback_url;
        }
        if self.callback_auth_key.is_some() {
            events.auth_key = self.callback_auth_key;
        }
        if !self.allowed_callback_prefixes.is_empty() {
            events.allowed_callback_prefixes = self.allowed_callback_prefixes;
        }
        Ok(config)
    }
}

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let settings = args.into_config()?.validate()?;
    vodup_server::envelope::install_panic_hook();
    vodup_server::listener::raise_descriptor_limit();
    let control = bind(settings.listen, "VOD API", "--listen", "VODUP_LISTEN").await?;
    let data = bind(settings.oss_listen, "OSS data plane", "--oss-listen", "VODUP_OSS_LISTEN").await?;
    let (vod_addr, oss_addr) = (control.local_addr()?, data.local_addr()?);
    let state = build_state(settings, oss_addr).await.map_err(start_error)?;
    // Signal handlers go in before the ready line: a SIGTERM sent right after it must stop us gracefully,
    // not hit the default action.
    let shutdown = shutdown_signal()?;
    // One line on stdout for scripts and tests that bind port 0; logs go to stderr.
    println!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "vod": vod_addr.to_string(),
            "oss": oss_addr.to_string(),
            "oss_endpoint": state.site.endpoint,
            "bucket": state.site.bucket,
            "region": state.site.region,
        })
    );
    run(control, data, state, shutdown).await?;
    Ok(())
}

/// A start error as the CLI reports it: an unusable setting (a catalogue that cannot be reached, a stored
/// bucket name that is invalid) stays a `ConfigError`, so it exits with the usage code.
fn start_error(error: StartError) -> anyhow::Error {
    match error {
        StartError::Config(error) => error.into(),
        error => error.into(),
    }
}

/// Binds one plane's port; a failure names the address and the flag and variable that change it, since
/// "Address already in use" alone does not say which of the two ports, nor how to move it.
async fn bind(addr: SocketAddr, plane: &str, flag: &str, variable: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|error| {
        let why = match error.kind() {
            std::io::ErrorKind::AddrInUse => "another process already listens there".to_owned(),
            _ => error.to_string(),
        };
        anyhow::anyhow!(
            "cannot listen on {addr} for the {plane}: {why}; choose another address with {flag} or {variable}"
        )
    })
}

/// Registers SIGINT and SIGTERM now and returns the future that completes on the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Where `vodup keys` finds the catalogue: `--meta URL` (VODUP_META), or the data folder's `meta.sqlite`.
#[derive(Debug, Args)]
pub struct CatalogueArgs {
    /// The server's data folder; its catalogue is DATA/meta.sqlite. Not needed with --meta.
    #[arg(long, env = "VODUP_DATA")]
    data: Option<PathBuf>,
    /// The server's catalogue: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE, as given to
    /// `vodup serve --meta`. Wins over --data.
    #[arg(long, env = "VODUP_META", hide_env_values = true)]
    meta: Option<String>,
}

/// `vodup keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a long-lived AccessKey; works at once, also while the server runs.
    Create {
        /// Where the catalogue is.
        #[command(flatten)]
        catalogue: CatalogueArgs,
        /// A note to remember what the key is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Print {"AccessKeyId": …, "AccessKeySecret": …}.
        #[arg(long)]
        json: bool,
        /// Print `export ALIBABA_CLOUD_ACCESS_KEY_ID=…` and `…_SECRET=…` lines for the shell:
        /// `eval "$(vodup keys create --data DIR --env)"` sets up the current shell for `vodup upload`.
        #[arg(long, conflicts_with = "json")]
        env: bool,
    },
    /// List keys (ids and state, never secrets).
    List {
        /// Where the catalogue is.
        #[command(flatten)]
        catalogue: CatalogueArgs,
        /// JSON lines output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its VOD calls fail at once, its upload credentials within seconds.
    Revoke {
        /// Where the catalogue is.
        #[command(flatten)]
        catalogue: CatalogueArgs,
        /// The AccessKeyId.
        access_key_id: String,
    },
}

impl CatalogueArgs {
    /// Opens the catalogue; only `create` makes the data folder or the SQLite file when they are missing,
    /// so a mistyped `--data` or path for `list` or `revoke` is an error, not a new empty catalogue. Returns
    /// it with how to name it in messages (a PostgreSQL URL without its password).
    async fn open(&self, create: bool) -> Result<(Arc<dyn MetaStore>, String)> {
        if let Some(url) = &self.meta {
            let location = check_meta(url)?;
            let meta = open_catalogue(&location, create).await.map_err(start_error)?;
            return Ok((meta, location.to_string()));
        }
        let Some(data) = &self.data else {
            return Err(ConfigError(
                "no catalogue: give --data DIR (the catalogue is DIR/meta.sqlite) or --meta URL, or set VODUP_DATA \
                 or VODUP_META"
                    .into(),
            )
            .into());
        };
        let opened = if create { open_meta(data).await } else { open_existing_meta(data).await };
        match opened {
            Ok(meta) => Ok((Arc::new(meta), data.display().to_string())),
            Err(error @ StartError::NoCatalogue { .. }) => Err(error.into()),
            Err(error) => {
                Err(anyhow::Error::new(error)
                    .context(format!("cannot open the catalogue in {}", data.display())))
            }
        }
    }
}

/// Runs a keys command.
pub async fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create { catalogue, description, json, env } => {
            let (meta, _) = catalogue.open(true).await?;
            let key = create_key(meta.as_ref(), &description, SystemTime::now()).await?;
            if env {
                println!(
                    "export ALIBABA_CLOUD_ACCESS_KEY_ID={}\nexport ALIBABA_CLOUD_ACCESS_KEY_SECRET={}",
                    shell_quote(&key.id),
                    shell_quote(key.secret.expose())
                );
            } else if json {
                println!(
                    "{}",
                    serde_json::json!({ "AccessKeyId": key.id, "AccessKeySecret": key.secret.expose() })
                );
            } else {
                println!("AccessKeyId:     {}\nAccessKeySecret: {}", key.id, key.secret.expose());
            }
        }
        KeysCommand::List { catalogue, json } => {
            let (meta, _) = catalogue.open(false).await?;
            let mut rows = vec![["ACCESS KEY ID", "CREATED", "STATE", "DESCRIPTION"].map(str::to_owned)];
            for key in meta.list_keys().await? {
                let created = vodup_proto::timestamp::iso8601(key.created_at);
                let revoked = key.revoked_at.map(vodup_proto::timestamp::iso8601);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "AccessKeyId": key.id, "Description": key.description, "CreationTime": created, "RevokedTime": revoked })
                    );
                } else {
                    let state = revoked.map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
                    rows.push([key.id, created, state, key.description]);
                }
            }
            if !json {
                print!("{}", table(&rows));
            }
        }
        KeysCommand::Revoke { catalogue, access_key_id } => {
            let (meta, name) = catalogue.open(false).await?;
            if !meta.revoke_key(&access_key_id, SystemTime::now()).await? {
                anyhow::bail!("no active key {access_key_id} in {name}");
            }
            eprintln!("revoked {access_key_id}");
        }
    }
    Ok(())
}

/// `text` as one POSIX shell word: in single quotes, each `'` written as `'\''`. Keys are plain ASCII
/// today; quoting anyway means `eval` can never run anything but the two assignments.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Rows as columns two spaces apart, each as wide as its widest cell; the last column is not padded, so
/// no line ends in spaces.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_eval_of_any_text() {
        assert_eq!(shell_quote("LTAIabc"), "'LTAIabc'");
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }
}
