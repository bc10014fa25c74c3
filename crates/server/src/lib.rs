//! `vodup serve`: the self-hosted VOD upload service, a control plane speaking the VOD RPC API and a
//! data plane speaking the OSS API, both verifying requests with the shared wire crate.
//!
//! This release holds only the wire layer, re-exported as [`proto`]; the planes, storage backends,
//! metadata stores and events arrive with the service-core issue.

pub use vodup_proto as proto;
