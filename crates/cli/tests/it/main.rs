//! The `vodup` binary as users run it, against a real `vodup serve` on loopback: every upload source,
//! resume after SIGKILL, the server killed at its fault points, credential refresh, corruption on the wire,
//! memory bounds, the terminal bar, a data folder written by an older storage layout (upgrade), and the
//! catalogue on PostgreSQL (`--meta`).

mod batch;
mod catalogue;
mod corruption;
mod crash;
mod edges;
mod kill_points;
mod memory;
mod refresh;
mod region;
mod resume;
mod serve;
mod serve_edges;
mod sources;
mod support;
mod terminal;
mod upgrade;
mod usage;
