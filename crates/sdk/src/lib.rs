//! The vodup upload SDK: asks a VOD endpoint for an upload address and temporary credentials, then
//! uploads to OSS with them.
//!
//! This release holds only the wire layer it shares with the service, re-exported as [`proto`]; the
//! VOD client, the multipart engine, checkpoints and sources arrive with the upload-SDK issue. The wire
//! types are already the ones the SDK will sign with, so anything built on them now keeps working.
#![deny(missing_docs)]

pub use vodup_proto as proto;
