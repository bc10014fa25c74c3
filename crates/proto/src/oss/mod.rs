//! The OSS object API as the upload path uses it (oss-api.md): request parts that signatures cover,
//! signature V1 and V4 (header and presigned URL), credentials parsed out of a request, XML bodies,
//! error codes, the part and ETag rules, and when a signed request is valid in time.
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
pub mod validity;
pub mod xml;

pub use authorization::{OssCredential, V4Scope};
pub use error::OssErrorCode;
pub use request::OssRequest;
