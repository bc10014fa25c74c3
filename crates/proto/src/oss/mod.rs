//! The OSS object API as the upload path uses it (oss-api.md): request parts that signatures cover,
//! signature V1 and V4 (header and presigned URL), credentials parsed out of a request, XML bodies,
//! error codes, and the part and ETag rules.
//!
//! The SDK signs with the same functions the service verifies with; the differential test in
//! `tests/differential.rs` proves both agree with oss2 and alibabacloud-oss-v2.

pub mod authorization;
pub mod error;
pub mod header;
pub mod part;
pub mod request;
pub mod signature_v1;
pub mod signature_v4;
pub mod xml;

pub use authorization::{OssCredential, V4Scope};
pub use error::OssErrorCode;
pub use request::OssRequest;
