//! The flags of `vodup upload KIND SOURCE...`, shared by a single upload (`upload.rs`) and a batch
//! (`batch/`): both read them from here, so neither depends on the other. `main` picks which one runs.
//! The flags also know what they describe: the SDK client, the upload options, the media metadata.
//! The endpoint and credential flags ([`ConnectArgs`]) are `vodup download`'s too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use vodup_sdk::batch::BatchMedia;
use vodup_sdk::client::DEFAULT_REGION;
use vodup_sdk::retry::RetryPolicy;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::upload::progress::Progress;
use vodup_sdk::vod::media::CommonMeta;
use vodup_sdk::vod::{AttachedMeta, ImageMeta, VideoMeta};
use vodup_sdk::{Client, Credentials, Error};

/// The usage line of `vodup upload KIND`. Clap's own lists every flag whose environment variable is set as
/// if it were required, and so shows `--access-key-secret <ACCESS_KEY_SECRET>` to whoever left out the
/// SOURCE: this one shows only what is required, and says where keys and endpoint come from instead.
macro_rules! usage {
    ($kind:literal $(, $required:literal)?) => {
        concat!(
            "vodup upload ", $kind, $($required,)? " [OPTIONS] <SOURCE>...\n",
            "       vodup upload ", $kind, $($required,)? " [OPTIONS] --from-list <FILE>\n\n",
            "The AccessKey comes from ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or\n",
            "--profile), the endpoint from VODUP_ENDPOINT (default: VOD in VODUP_REGION, else cn-shanghai).\n",
            "Keep the secret off the command line: other users see it in `ps`."
        )
    };
}

/// What to upload.
#[derive(Debug, Subcommand)]
pub enum UploadCommand {
    /// A video or audio file (CreateUploadVideo).
    #[command(override_usage = usage!("video"))]
    Video {
        /// Local paths, folders, http(s) URLs, or `-` for standard input (several make a batch).
        #[arg(required_unless_present = "from_list", value_name = "SOURCE")]
        sources: Vec<String>,
        #[command(flatten)]
        meta: VideoArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// An image (CreateUploadImage).
    #[command(override_usage = usage!("image"))]
    Image {
        /// Local paths, folders, http(s) URLs, or `-` for standard input (several make a batch).
        #[arg(required_unless_present = "from_list", value_name = "SOURCE")]
        sources: Vec<String>,
        /// `default` or `cover`.
        #[arg(long, default_value = "default")]
        image_type: String,
        /// Category id.
        #[arg(long)]
        cate_id: Option<i64>,
        #[command(flatten)]
        meta: MetaArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// A watermark, subtitle or material (CreateUploadAttachedMedia).
    #[command(override_usage = usage!("attached", " --business-type <BUSINESS_TYPE>"))]
    Attached {
        /// Local paths, folders, http(s) URLs, or `-` for standard input (several make a batch).
        #[arg(required_unless_present = "from_list", value_name = "SOURCE")]
        sources: Vec<String>,
        /// watermark, subtitle or material.
        #[arg(long)]
        business_type: String,
        /// Category ids (up to 5; repeat the flag or separate with commas).
        #[arg(long, value_delimiter = ',')]
        cate_id: Vec<i64>,
        #[command(flatten)]
        meta: MetaArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// An M3U8 playlist with its segments: segments first, the rewritten playlist last.
    #[command(override_usage = usage!("m3u8"))]
    M3u8 {
        /// Local paths or http(s) URLs of media playlists, or folders of them (several make a batch).
        #[arg(required_unless_present = "from_list", value_name = "SOURCE")]
        sources: Vec<String>,
        /// Also upload EXT-X-KEY key files beside the segments (publishing keys defeats the encryption).
        #[arg(long)]
        include_keys: bool,
        #[command(flatten)]
        meta: VideoArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Title, description, tags and the rest every media type takes.
#[derive(Debug, Args)]
pub struct MetaArgs {
    /// Title (at most 128 UTF-8 bytes); default the file's name.
    #[arg(long)]
    title: Option<String>,
    /// Description (at most 1024 bytes).
    #[arg(long)]
    description: Option<String>,
    /// Comma-separated tags (at most 16).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Storage location (`bucket.oss-host`).
    #[arg(long)]
    storage_location: Option<String>,
    /// Application id.
    #[arg(long)]
    app_id: Option<String>,
    /// UserData as a JSON object (callback URL, Extend).
    #[arg(long)]
    user_data: Option<String>,
    /// The FileName to send (required for standard input; its extension says what the media is).
    #[arg(long)]
    file_name: Option<String>,
}

impl MetaArgs {
    fn common(&self) -> CommonMeta {
        CommonMeta {
            title: self.title.clone(),
            description: self.description.clone(),
            tags: self.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
            storage_location: self.storage_location.clone(),
            app_id: self.app_id.clone(),
            user_data: self.user_data.clone(),
        }
    }
}

/// CreateUploadVideo's parameters.
#[derive(Debug, Args)]
pub struct VideoArgs {
    #[command(flatten)]
    meta: MetaArgs,
    /// Category id.
    #[arg(long)]
    cate_id: Option<i64>,
    /// Cover image URL.
    #[arg(long)]
    cover_url: Option<String>,
    /// Transcoding template group id.
    #[arg(long)]
    template_group_id: Option<String>,
    /// Workflow id (wins over the template group).
    #[arg(long)]
    workflow_id: Option<String>,
    /// ReferenceId: 6 to 64 of [A-Za-z0-9_-], unique per account (one file only; a batch makes its own).
    #[arg(long)]
    reference_id: Option<String>,
}

impl VideoArgs {
    fn meta(&self) -> VideoMeta {
        VideoMeta {
            common: self.meta.common(),
            cate_id: self.cate_id,
            cover_url: self.cover_url.clone(),
            template_group_id: self.template_group_id.clone(),
            workflow_id: self.workflow_id.clone(),
            file_name: self.meta.file_name.clone(),
            reference_id: self.reference_id.clone(),
        }
    }
}

/// Which VOD endpoint, as whom: the flags every command that calls VOD shares (`upload`, `download`),
/// with the same environment variables, so one environment serves both, against Alibaba Cloud or
/// `vodup serve` alike.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// VOD endpoint URL (e.g. http://127.0.0.1:8080 for vodup serve); wins over --region.
    #[arg(long, env = "VODUP_ENDPOINT")]
    endpoint: Option<String>,
    /// Region: the endpoint becomes https://vod.REGION.aliyuncs.com (default cn-shanghai, or the
    /// profile's region).
    #[arg(long, env = "VODUP_REGION")]
    region: Option<String>,
    /// AccessKey id.
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    /// AccessKey secret (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "ALIBABA_CLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: Option<String>,
    /// STS security token, for temporary AccessKeys.
    #[arg(long, env = "ALIBABA_CLOUD_SECURITY_TOKEN", hide_env_values = true)]
    security_token: Option<String>,
    /// DNS overrides, `host=ip:port,...` (for tests and private deployments).
    #[arg(long, env = "VODUP_RESOLVE")]
    resolve: Option<String>,
    /// A PEM file of extra root certificates.
    #[arg(long, env = "VODUP_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Credentials (and region) from this profile of the aliyun CLI's config.json (~/.aliyun/config.json).
    #[arg(long, env = "ALIBABA_CLOUD_PROFILE")]
    profile: Option<String>,
    /// How long a failing request is retried, in seconds, with backoff (0: never). Network faults,
    /// server faults and throttling are retried; answers that cannot change are not.
    #[arg(long, env = "VODUP_RETRY_FOR", value_name = "SECS", default_value_t = 60)]
    pub(crate) retry_for: u64,
}

/// Where to upload, as whom, and how.
#[derive(Debug, Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Part size, with K/M/G suffixes (default 8M; raised if the file needs more than 10,000 parts).
    #[arg(long, value_parser = parse_size)]
    pub(crate) part_size: Option<u64>,
    /// Parts in flight (default twice the cores, 2 to 8).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) parallel: Option<u16>,
    /// Where checkpoints live (default ~/.local/state/vodup/checkpoints).
    #[arg(long, env = "VODUP_CHECKPOINT_DIR")]
    pub(crate) checkpoint_dir: Option<PathBuf>,
    /// Do not resume from a checkpoint, and write none.
    #[arg(long)]
    pub(crate) no_resume: bool,
    /// Bytes per second for the whole upload, with K/M/G suffixes.
    #[arg(long, value_parser = parse_size)]
    pub(crate) limit_rate: Option<u64>,
    /// JSON lines on stdout: every event, then a `result` (or `error`) line.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
}

fn parse_size(text: &str) -> Result<u64, String> {
    vodup_sdk::rate::parse_size(text)
        .ok_or_else(|| format!("{text:?} is not a size (examples: 100K, 8M, 1G)"))
}

impl ConnectArgs {
    /// The SDK client the flags, the environment and the aliyun profile describe.
    pub fn client(&self) -> Result<Client, Error> {
        let mut region = self.region.clone();
        let credentials = match (&self.profile, &self.access_key_id, &self.access_key_secret) {
            // An explicit profile wins, as with the aliyun CLI; without one, keys from flags or the
            // environment, then the config file's current profile.
            (None, Some(id), Some(secret)) => {
                let mut credentials = Credentials::new(id.trim(), secret.trim());
                if let Some(token) = self.security_token.as_deref().filter(|t| !t.is_empty()) {
                    credentials = credentials.with_security_token(token);
                }
                credentials
            }
            (name, _, _) => {
                let profile = crate::profile::load(name.as_deref())?;
                region = region.or(profile.region);
                profile.credentials
            }
        };
        let region = region.unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let mut builder = Client::builder()
            .credentials(credentials)
            .region(&region)
            .retry(RetryPolicy::for_budget(Duration::from_secs(self.retry_for)));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(spec) = &self.resolve {
            builder = builder.resolve_spec(spec)?;
        }
        if let Some(file) = &self.ca_file {
            builder = builder.add_root_certificate_file(file);
        }
        builder.build()
    }
}

impl CommonArgs {
    /// The SDK client the flags, the environment and the aliyun profile describe.
    pub fn client(&self) -> Result<Client, Error> {
        self.connect.client()
    }

    /// The upload options the flags give.
    pub fn options(&self, progress: Option<Arc<dyn Progress>>, include_keys: bool) -> UploadOptions {
        UploadOptions {
            part_size: self.part_size,
            parallel: self.parallel.map(usize::from),
            checkpoint_dir: self.checkpoint_dir.clone(),
            resume: !self.no_resume,
            limit_rate: self.limit_rate,
            progress,
            include_keys,
            ..UploadOptions::default()
        }
    }
}

impl UploadCommand {
    /// The SOURCE arguments and the shared flags.
    pub fn parts(&self) -> (&[String], &CommonArgs) {
        match self {
            Self::Video { sources, common, .. }
            | Self::Image { sources, common, .. }
            | Self::Attached { sources, common, .. }
            | Self::M3u8 { sources, common, .. } => (sources, common),
        }
    }

    /// Whether the command is a batch: several sources, a folder, or a list.
    pub fn is_batch(&self) -> bool {
        let (sources, common) = self.parts();
        sources.len() > 1
            || common.batch.from_list.is_some()
            || sources.iter().any(|s| std::path::Path::new(s).is_dir())
    }

    /// Whether an M3U8 upload also takes the playlist's key files.
    pub fn include_keys(&self) -> bool {
        matches!(self, Self::M3u8 { include_keys: true, .. })
    }

    /// What each file becomes, with the metadata the flags give.
    pub fn media(&self) -> BatchMedia {
        match self {
            Self::Video { meta, .. } => BatchMedia::Video(meta.meta()),
            Self::M3u8 { meta, .. } => BatchMedia::M3u8(meta.meta()),
            Self::Image { image_type, cate_id, meta, .. } => BatchMedia::Image(ImageMeta {
                common: meta.common(),
                image_type: Some(image_type.clone()),
                cate_id: *cate_id,
                file_name: meta.file_name.clone(),
            }),
            Self::Attached { business_type, cate_id, meta, .. } => BatchMedia::Attached(AttachedMeta {
                common: meta.common(),
                business_type: business_type.clone(),
                cate_ids: cate_id.clone(),
                file_name: meta.file_name.clone(),
            }),
        }
    }
}

/// The flags that make and shape a batch.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Walk folders given as SOURCE into their subfolders too.
    #[arg(long, short = 'r')]
    pub recursive: bool,
    /// Only files matching this glob (path below the folder, or file name); repeatable.
    #[arg(long)]
    pub include: Vec<String>,
    /// Skip files matching this glob; repeatable.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Read sources (one per line, with optional metadata) from this file; see the README.
    #[arg(long)]
    pub from_list: Option<PathBuf>,
    /// Files in flight at once (default 4). They share --parallel part slots and --limit-rate.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
}
