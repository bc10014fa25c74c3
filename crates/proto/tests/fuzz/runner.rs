//! The fuzz runner: the seed (printed, replayed from `VODUP_FUZZ_SEED`), the case count
//! (`VODUP_FUZZ_CASES`), proptest's runner with shrinking, and the allocation bound of one parse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::ALLOCATOR;

/// Bytes one parse may allocate per byte of input: every parser here copies its input a bounded number
/// of times (percent-encoding triples it, canonical strings copy it again, HMAC pads it).
const ALLOC_PER_INPUT_BYTE: usize = 64;
/// Bytes one parse may allocate whatever its input: fixed buffers, error messages, small maps.
const ALLOC_BASE: usize = 256 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());

/// How long one case may run before the watchdog calls it a hang. A case is linear work on at most a
/// few hundred KiB, done in milliseconds; this is only far enough above that to survive a loaded machine.
const HANG: Duration = Duration::from_secs(60);

/// Milliseconds since [`EPOCH`] at which the running case started, 0 between cases.
static CASE_STARTED_MS: AtomicU64 = AtomicU64::new(0);
/// How many cases the running parser has started.
static CASE_NUMBER: AtomicU64 = AtomicU64::new(0);
/// `fuzz <name>: seed <seed>`, for the watchdog's message.
static RUNNING: Mutex<String> = Mutex::new(String::new());
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
static WATCHDOG: Once = Once::new();

fn now_ms() -> u64 {
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A thread that aborts the binary, naming the parser, seed and case, when one case runs past [`HANG`]:
/// a hung case never returns to be reported by proptest.
fn start_watchdog() {
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let started = CASE_STARTED_MS.load(Ordering::SeqCst);
                if started != 0 && now_ms().saturating_sub(started) > HANG.as_millis() as u64 {
                    let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
                    let case = CASE_NUMBER.load(Ordering::SeqCst);
                    // Straight to the stderr handle: the test harness captures eprintln!, and the abort would lose it.
                    let message = format!(
                        "{running}: case {case} has run for over {HANG:?}: a hang
"
                    );
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
                    std::process::abort();
                }
            }
        });
    });
}

/// 2026-11-25 08:00:00 UTC, around which requests are signed.
pub const NOW: u64 = 1_795_593_600;
/// The secret every request here is signed with.
pub const SECRET: &str = "ExampleSecretKey123";

pub struct Run {
    seed: u64,
    cases: u32,
    _serial: MutexGuard<'static, ()>,
}

pub fn start() -> Run {
    let serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = match std::env::var("VODUP_FUZZ_SEED") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_SEED is a u64"),
        Err(_) => rand::random(),
    };
    let cases = match std::env::var("VODUP_FUZZ_CASES") {
        Ok(text) => text.trim().parse().expect("VODUP_FUZZ_CASES is a number"),
        Err(_) => 10_000,
    };
    // A runaway allocation aborts the binary instead of exhausting the machine.
    let _ = ALLOCATOR.set_limit(ALLOCATOR.allocated().saturating_add(1 << 30));
    Run { seed, cases, _serial: serial }
}

impl Run {
    /// Runs `check` on `cases` inputs from `strategy`, with an RNG derived from the seed and `name`.
    pub fn fuzz<S: Strategy>(
        &self,
        name: &str,
        strategy: S,
        check: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) where
        S::Value: Clone,
    {
        println!(
            "fuzz {name}: seed {} (replay: VODUP_FUZZ_SEED={}), {} cases",
            self.seed, self.seed, self.cases
        );
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        // FNV-1a of the name, so each parser draws its own stream from the one seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        key[8..16].copy_from_slice(&hash.to_le_bytes());
        let config = Config {
            cases: self.cases,
            failure_persistence: None,
            max_shrink_iters: 4096,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
        if let Ok(mut running) = RUNNING.lock() {
            *running = format!("fuzz {name}: seed {} (VODUP_FUZZ_SEED={})", self.seed, self.seed);
        }
        CASE_NUMBER.store(0, Ordering::SeqCst);
        start_watchdog();
        let timed = |value: S::Value| {
            CASE_NUMBER.fetch_add(1, Ordering::SeqCst);
            CASE_STARTED_MS.store(now_ms(), Ordering::SeqCst);
            let result = check(value);
            CASE_STARTED_MS.store(0, Ordering::SeqCst);
            result
        };
        let outcome = runner.run(&strategy, timed);
        CASE_STARTED_MS.store(0, Ordering::SeqCst);
        match outcome {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => panic!(
                "fuzz {name} failed with seed {} (VODUP_FUZZ_SEED={}): {why}\nminimal input: {input:#?}",
                self.seed, self.seed
            ),
            Err(e) => panic!("fuzz {name} with seed {}: {e}", self.seed),
        }
    }
}

/// Runs `parse` and fails the case if it allocated more than the bound for `input_len` bytes of input.
pub fn bounded<T>(input_len: usize, parse: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let before = ALLOCATOR.total_allocated();
    let out = parse();
    let used = ALLOCATOR.total_allocated().saturating_sub(before);
    let bound = ALLOC_PER_INPUT_BYTE.saturating_mul(input_len).saturating_add(ALLOC_BASE);
    prop_assert!(used <= bound, "allocated {used} bytes for {input_len} bytes of input (bound {bound})");
    Ok(out)
}
