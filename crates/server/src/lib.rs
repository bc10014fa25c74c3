//! `vodup serve`: the self-hosted VOD upload service, a control plane speaking the VOD RPC API and a
//! data plane speaking the OSS API, both verifying requests with the shared wire crate.
//!
//! The major components are:
//!
//! * [`control`]: the VOD RPC plane (signatures, the upload and catalogue actions).
//! * [`data`]: the OSS plane (object and multipart operations, addressing, authorization).
//! * [`storage`]: immutable blobs behind the small [`storage::BlobStore`] trait (local disk).
//! * [`meta`]: the catalogue, the only source of truth for objects, keys and uploads, behind repository
//!   traits (SQLite); every commit is one of its transactions.
//! * [`collector`]: removes blobs nothing references, after a grace period; the only blob deleter.
//! * [`lease`]: background work one node does at a time when several share a catalogue.
//! * [`sts`]: the per-upload temporary credentials, verifiable without a database lookup.
//! * [`upgrade`]: migrates a data folder written before the catalogue owned objects, once, at startup.
//! * [`serve`]: startup and `run(listeners, state, shutdown)`.
//! * [`listener`]: the HTTP listener both planes run on: connection caps, timeouts, framing checks.

pub mod buffered_body;
pub mod client_address;
pub mod collector;
pub mod config;
pub mod control;
pub mod credentials;
pub mod data;
pub mod envelope;
pub mod events;
pub mod fault;
pub mod health;
pub mod keys;
pub mod lease;
pub mod listener;
pub mod meta;
pub mod metrics;
pub mod presign;
pub mod rate_limit;
pub mod request_body;
pub mod request_id;
pub mod serve;
pub mod site;
pub mod state;
pub mod storage;
pub mod sts;
pub mod sweeper;
pub mod upgrade;

pub use vodup_proto as proto;
