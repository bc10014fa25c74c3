//! testkit's own integration tests: each helper is checked against real sockets, files and processes
//! before the SDK's tests rely on it. One binary, one module per helper.

mod fixtures;
mod origin;
mod proxy;
mod raw;
mod rss;
mod server;
