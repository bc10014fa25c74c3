//! Property-based fuzzing of every vodup-proto parser a client can reach (issue 11): OSS credentials
//! (V1/V4 `Authorization` headers and presigned query parameters) with their time checks and signature
//! verification, VOD RPC signatures (v1 parameters and ACS3 headers), the wire date formats, part numbers
//! and CRC headers, the OSS XML bodies, UploadAuth/UploadAddress, and percent/form decoding.
//!
//! cargo-fuzz needs nightly, so this runs on stable under `cargo test`. Generators start from a real,
//! correctly signed request (or a valid body) and mutate one thing: a field replaced by an overflowing
//! number, a near-valid date, a huge repeat or random text, a field removed or duplicated, a byte edited.
//! That reaches the code behind the parsers (time arithmetic, canonicalization, HMAC), not just their
//! first `split`. Unmutated cases must be accepted, so the generators are known to produce valid input.
//!
//! Properties, for every case: no panic (proptest catches it and shrinks the input); no hang (a watchdog
//! thread aborts the binary, printing parser, seed and case number, when one case runs past a minute);
//! and no allocation beyond a stated bound, measured with a counting global allocator ([`cap`]): the bytes
//! allocated while parsing one input are at most 64 × its size + 256 KiB (`runner::bounded`). A hard cap
//! of 1 GiB over the start turns a runaway allocation into an abort instead of an out-of-memory machine.
//!
//! Each run prints its seed; `VODUP_FUZZ_SEED=<seed>` replays it and `VODUP_FUZZ_CASES` sets the cases per
//! parser (default 10,000). Inputs that once failed are kept as regression cases (`oss::oss_regressions`) and run first.
//!
//! The counter is global, so the tests in this binary take turns (`SERIAL`).
//!
//! Modules: [`runner`] (seed, cases, the allocation bound), [`values`] (broken values and byte edits),
//! [`request`] (a request to sign and mutate), and one module per family of parsers.

use std::alloc::System;

use cap::Cap;

mod bodies;
mod oss;
mod request;
mod runner;
mod values;
mod vod;

/// Counts every allocation of this test binary, for [`runner::bounded`].
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);
