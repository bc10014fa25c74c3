//! The vodup upload SDK: asks a VOD endpoint (Alibaba Cloud ApsaraVideo VOD, or `vodup serve`) for an
//! upload address and temporary credentials, then uploads to OSS with them: multipart, parts in
//! parallel, resumable across restarts, credentials refreshed mid-upload, CRC-64 checked end to end.
//!
//! The major components are:
//! - [`Client`] ([`client`]): credentials, endpoint, one pooled HTTPS client, retry policy.
//! - [`vod`]: the signed VOD API calls and the typed metadata of each media type.
//! - [`oss`]: signed OSS requests with the temporary credentials.
//! - [`upload`]: the orchestration: plan parts, keep N in flight with bounded memory, checkpoint after
//!   each acknowledged part, refresh credentials, check CRC-64, report progress.
//! - [`download`]: a media item's source back, streamed to a file or any writer, its CRC-64 checked
//!   against the one OSS reports.
//! - [`batch`]: many files at once, sharing part slots and a rate limit, recorded in a manifest so an
//!   interrupted batch can be run again without uploading a file twice.
//! - [`source`]: where bytes come from: local files, URLs (ranged or streamed), any `AsyncRead`, and
//!   M3U8 playlists with their segments.
#![deny(missing_docs)]

pub mod batch;
pub mod client;
pub mod credentials;
pub mod download;
pub mod error;
pub mod oss;
mod plain_http;
pub mod rate;
pub mod retry;
pub mod source;
pub mod upload;
pub mod vod;

pub use client::{Client, ClientBuilder};
pub use credentials::Credentials;
pub use error::{Error, ErrorKind, Result, Retry};
pub use vodup_proto as proto;
