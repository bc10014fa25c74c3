//! Test-only helpers shared by the integration tests of every vodup crate. The major components are:
//!
//! - [`TestServer`]: a real `vodup serve` on loopback, in this process ([`server`]);
//! - [`ServeProcess`]: the `vodup` binary serving as a child process, to kill and restart ([`process`]);
//! - [`Api`]: request signing for raw VOD and OSS calls to either, and their `/metrics` ([`api`]);
//! - a loopback receiver of upload-complete events ([`receiver`]);
//! - [`OriginServer`]: a plain HTTP origin serving a folder, with or without ranges, lengths and
//!   validators, for uploads from a URL ([`origin`]);
//! - [`CorruptingProxy`]: a reverse proxy that can flip a byte of chosen UploadPart bodies
//!   ([`proxy`]);
//! - [`PeakRss`]: peak resident memory of a process ([`rss`]);
//! - [`edge::Edge`]: slow-header clients, idle keep-alive sockets and an anonymous flood, with a sampler
//!   of a process's descriptors and memory ([`edge`]);
//! - [`Tmpfs`]: a small tmpfs to fill, for a real full disk ([`disk`]);
//! - [`s3::test_s3`]: a fresh prefix in the test S3 bucket, when one is configured ([`s3`]);
//! - [`garage::test_garage`]: the same on the shared Garage cluster, and [`GarageCluster`], a private
//!   one whose nodes a test may kill ([`garage`]);
//! - [`TestDatabase`]: a fresh PostgreSQL database per test on the server `VODUP_TEST_POSTGRES_URL`
//!   names ([`postgres`]);
//! - [`Backend`]: the two deployments a server test runs on, SQLite + disk or PostgreSQL + Garage
//!   ([`backend`]);
//! - [`Tmux`]: a real terminal of a given size whose screen a test reads back ([`tmux`]);
//! - [`fixtures`]: deterministic pseudo-random files and small real media made with ffmpeg;
//! - the skip rule.
//!
//! The skip rule: a test whose component is absent says why and skips, unless `VODUP_REQUIRE_ALL=1` (set
//! by `.ci/run`), in which case the skip is a failure, so CI never passes by running less than
//! everything.

pub mod api;
pub mod backend;
pub mod disk;
pub mod edge;
pub mod fixtures;
pub mod garage;
pub mod origin;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod receiver;
pub mod round_robin;
pub mod rss;
pub mod s3;
pub mod server;
pub mod tmux;

pub use api::{Api, OssCall, OssCredential, VodReply};
pub use backend::Backend;
pub use disk::Tmpfs;
pub use fixtures::{have_ffmpeg, make_hls, make_png, make_srt, random_bytes, write_random_file};
pub use garage::GarageCluster;
pub use origin::{OriginOptions, OriginServer};
pub use postgres::{POSTGRES_URL, TestDatabase};
pub use process::{ServeOptions, ServeProcess};
pub use proxy::{CorruptingProxy, Corruption};
pub use round_robin::RoundRobin;
pub use rss::{PeakRss, current_vm_hwm};
pub use server::TestServer;
pub use tmux::{Tmux, have_tmux};

/// The environment variable that turns skips into failures.
pub const REQUIRE_ALL: &str = "VODUP_REQUIRE_ALL";

/// Whether skips are failures in this run.
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Skips the calling test with `reason` (printed to stderr) or, under `VODUP_REQUIRE_ALL=1`, fails it.
/// Returns so the caller can `return` right after.
#[track_caller]
pub fn skip(reason: &str) {
    assert!(!require_all(), "{REQUIRE_ALL}=1 and this test would skip: {reason}");
    eprintln!("SKIPPED: {reason}");
}
