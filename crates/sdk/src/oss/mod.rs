//! The OSS side of an upload, with the temporary credentials VOD hands out: [`request`] builds and
//! signs requests (V4, as alibabacloud-oss-v2 does) without I/O, [`body`] turns a part in memory into a
//! paced, counted request body, and [`client`] sends them and turns answers into results or [`Error`]s.
//!
//! [`Error`]: crate::Error

pub mod body;
pub mod client;
pub mod request;

pub use client::{OssClient, PutAnswer};
pub use request::{OssTarget, StsCredentials};
