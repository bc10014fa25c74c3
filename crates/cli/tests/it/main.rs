//! The `vodup` binary as users run it, against a real `vodup serve` on loopback: every upload source,
//! resume after SIGKILL, the server killed at its fault points, credential refresh, corruption on the wire,
//! memory bounds, the terminal bar, retries through a server restart and errors that must not be retried,
//! every `--json` line against its schema, a data folder written by an older storage layout (upgrade),
//! files downloaded back and verified, the README's quick start run as written, the catalogue on
//! PostgreSQL (`--meta`), the blobs in an S3 bucket (`--storage`), two nodes on PostgreSQL + Garage
//! behind a balancer, one of them killed, and Garage losing one or two of its three nodes under uploads.

mod batch;
mod catalogue;
mod corruption;
mod crash;
mod download;
mod edges;
mod garage_failure;
mod json_schema;
mod kill_points;
mod memory;
mod nodes;
mod readme;
mod refresh;
mod region;
mod resume;
mod retry;
mod serve;
mod serve_edges;
mod sources;
mod storage;
mod support;
mod terminal;
mod upgrade;
mod usage;
