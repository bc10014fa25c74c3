//! The server crate's single integration test binary: one module per concern.

mod meta;
mod storage;
