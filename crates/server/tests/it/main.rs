//! The server crate's single integration test binary: one module per concern.

mod auth_limits;
mod auth_oss;
mod auth_vod;
mod bodies;
mod collector;
mod complete;
mod connections;
mod disk_full;
mod drain;
mod events;
mod fuzz;
mod garage_nodes;
mod hashing;
mod meta;
mod meta_postgres;
mod observability;
mod races;
mod storage;
mod storage_s3;
mod support;
mod sweeper;
mod traversal;
