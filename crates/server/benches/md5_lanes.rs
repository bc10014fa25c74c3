//! How fast MD5 runs on one core: one stream with RustCrypto's `md-5` (the engine before issue 15) and
//! with `md5-many`, and several independent streams of 8 MiB fed chunk by chunk, as the server's
//! concurrent writes are, hashed one after another with `md-5`, together through `md5-many`'s own
//! scheduler (`update_many` with whatever lengths come), and together in lockstep padded to the engine's
//! native lane count (every lane fed the same block-aligned length, idle lanes repeating a real one),
//! which is how the server's hashing service drives it.
//!
//! The figure is thread CPU time, not wall time: this machine is shared with other builds, and CPU
//! seconds per GiB is what issue 15 budgets. `cargo bench -p vodup-server --bench md5_lanes`; the
//! table goes to BENCHMARKS.md.

use std::hint::black_box;

use md5::{Digest as _, Md5};
use md5_many::{Md5Many, Md5State};
use rustix::time::{ClockId, clock_gettime};

/// Bytes per stream: a default vodup part.
const LEN: usize = 8 << 20;
/// Measurements per case; the table shows the median and the best.
const REPS: usize = 9;

fn cpu_ns() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// `streams` deterministic, incompressible-looking buffers of [`LEN`] bytes.
fn data(streams: usize) -> Vec<Vec<u8>> {
    (0..streams).map(|s| vodup_testkit::fixtures::random_bytes(LEN, 0x9E37_79B9 ^ (s as u64 + 1))).collect()
}

/// Median and best GB/s of `f` hashing `bytes` bytes, in thread CPU time.
fn measure(bytes: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut ns: Vec<u64> = (0..REPS)
        .map(|_| {
            let start = cpu_ns();
            f();
            cpu_ns() - start
        })
        .collect();
    ns.sort_unstable();
    let gbs = |ns: u64| bytes as f64 / ns.max(1) as f64;
    (gbs(ns[REPS / 2]), gbs(ns[0]))
}

fn row(case: &str, bytes: usize, reference: Option<f64>, f: impl FnMut()) -> f64 {
    let (median, best) = measure(bytes, f);
    let ratio = reference.map_or(String::new(), |r| format!("{:.2}x", median / r));
    // CPU-seconds per GiB, issue 15's unit.
    let cpu_per_gib = (1u64 << 30) as f64 / (median * 1e9);
    println!("| {case} | {median:.3} | {best:.3} | {cpu_per_gib:.3} | {ratio} |");
    median
}

fn md5_each(streams: &[Vec<u8>], chunk: usize) -> Vec<[u8; 16]> {
    streams
        .iter()
        .map(|s| {
            let mut h = Md5::new();
            for c in s.chunks(chunk) {
                h.update(c);
            }
            h.finalize().into()
        })
        .collect()
}

/// `md5-many`'s own scheduler: every stream's next chunk in one `update_many` call.
fn many_native(engine: Md5Many, streams: &[Vec<u8>], chunk: usize) -> Vec<[u8; 16]> {
    let mut states = vec![Md5State::new(); streams.len()];
    for at in (0..LEN).step_by(chunk) {
        let inputs: Vec<&[u8]> = streams.iter().map(|s| &s[at..(at + chunk).min(LEN)]).collect();
        engine.update_many(&mut states, &inputs);
    }
    states.iter().map(Md5State::finalize).collect()
}

/// Lockstep over the engine's native lane count: idle lanes hash a copy of lane 0's input into scratch
/// states, so every call takes `md5-many`'s full-width kernel.
fn many_padded(engine: Md5Many, streams: &[Vec<u8>], chunk: usize) -> Vec<[u8; 16]> {
    let lanes = engine.lanes().max(streams.len().next_multiple_of(engine.lanes()));
    let mut states = vec![Md5State::new(); lanes];
    for at in (0..LEN).step_by(chunk) {
        let end = (at + chunk).min(LEN);
        let inputs: Vec<&[u8]> = (0..lanes).map(|l| &streams[l % streams.len()][at..end]).collect();
        engine.update_many(&mut states, &inputs);
    }
    states[..streams.len()].iter().map(Md5State::finalize).collect()
}

/// The narrower engines this CPU also runs (AVX2's 8 lanes and SSE4.2's 4 under AVX-512), by lanes.
fn narrower(engine: Md5Many) -> Vec<Md5Many> {
    let level = fearless_simd::Level::new();
    let mut engines = Vec::new();
    if let Some(avx2) = level.as_avx2() {
        engines.push(Md5Many::from_level(fearless_simd::Level::Avx2(avx2)));
    }
    if let Some(sse) = level.as_sse4_2() {
        engines.push(Md5Many::from_level(fearless_simd::Level::Sse4_2(sse)));
    }
    engines.retain(|e| e.lanes() < engine.lanes());
    engines
}

fn main() {
    let engine = Md5Many::new();
    println!("md5-many native lanes here: {}\n", engine.lanes());
    println!("| case | median GB/s | best GB/s | CPU-s/GiB (median) | vs md-5 |");
    println!("|---|---|---|---|---|");
    let one = data(1);
    let reference = row("1 stream, md-5", LEN, None, || {
        black_box(Md5::digest(black_box(&one[0])));
    });
    row("1 stream, md5-many `Md5State::update`, 256 KiB chunks", LEN, Some(reference), || {
        let mut state = Md5State::new();
        for c in black_box(&one[0]).chunks(256 << 10) {
            state.update(c);
        }
        black_box(state.finalize());
    });
    for chunk in [64 << 10, 1 << 20] {
        for n in [2usize, 3, 4, 6, 8, 12, 16] {
            let streams = data(n);
            let expected = md5_each(&streams, chunk);
            assert_eq!(many_native(engine, &streams, chunk), expected, "md5-many's scheduler, {n} streams");
            assert_eq!(many_padded(engine, &streams, chunk), expected, "padded lockstep, {n} streams");
            let kib = chunk >> 10;
            let reference =
                row(&format!("{n} streams, {kib} KiB chunks, md-5 one after another"), LEN * n, None, || {
                    black_box(md5_each(black_box(&streams), chunk));
                });
            row(
                &format!("{n} streams, {kib} KiB chunks, md5-many `update_many`"),
                LEN * n,
                Some(reference),
                || {
                    black_box(many_native(engine, black_box(&streams), chunk));
                },
            );
            row(
                &format!("{n} streams, {kib} KiB chunks, md5-many lockstep padded to lanes"),
                LEN * n,
                Some(reference),
                || {
                    black_box(many_padded(engine, black_box(&streams), chunk));
                },
            );
            for narrow in narrower(engine) {
                assert_eq!(many_padded(narrow, &streams, chunk), expected, "{} lanes", narrow.lanes());
                row(
                    &format!("{n} streams, {kib} KiB chunks, lockstep padded to {} lanes", narrow.lanes()),
                    LEN * n,
                    Some(reference),
                    || {
                        black_box(many_padded(narrow, black_box(&streams), chunk));
                    },
                );
            }
        }
    }
}
