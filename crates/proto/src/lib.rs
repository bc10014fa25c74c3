//! The vodup wire protocol, written once and shared by the SDK (which signs and sends) and the service
//! (which verifies and answers).
//!
//! Everything here is synchronous and does no I/O; wherever time matters it comes in as an argument, so
//! every function can be tested against known answers captured from Alibaba's official clients.
//!
//! The major components are:
//!
//! * [`vod`]: the VOD RPC API (2017-03-21): signature v1 (HMAC-SHA1) and ACS3-HMAC-SHA256, and the
//!   JSON error body with its [`vod::VodErrorCode`]s.
//! * [`oss`]: the OSS object API used for uploads: signature V1 and V4 (header and presigned URL), the
//!   XML bodies, and the [`oss::OssErrorCode`]s.
//! * [`upload_auth`]: `UploadAddress` / `UploadAuth`, the Base64 JSON credentials VOD hands out.
//! * [`crc64`]: CRC-64/XZ as OSS reports it in `x-oss-hash-crc64ecma`, with `combine` for part CRCs.
//! * [`secret`]: secrets as a type: redacted, zeroized, compared in constant time.
//! * [`encoding`] and [`timestamp`]: the percent-encoding and date formats the signatures are built from.
//!
//! The specifications behind each module are `shared/specs/vod-api.md` and `shared/specs/oss-api.md`.
#![deny(missing_docs)]

mod auth_header;
pub mod crc64;
pub mod encoding;
pub mod mac;
pub mod oss;
pub mod secret;
pub mod signature_error;
pub mod timestamp;
pub mod upload_auth;
pub mod vod;

pub use secret::Secret;
pub use signature_error::SignatureError;
