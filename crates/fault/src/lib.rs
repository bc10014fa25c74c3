//! Named fault points for crash tests: places between two steps of a write where a crash would leave the
//! most to repair, at which a test build kills itself with SIGKILL when `VODUP_FAULT` names the point.
//!
//! `VODUP_FAULT=blob-written` fires the first time the point is reached; `blob-written:3` the third
//! time, so a test can let some steps finish first. The server (`vodup serve`) and the upload SDK each
//! name their own points and call [`fires`]; this crate owns what they share: the variable, its syntax,
//! the hit counting and the kill.
//!
//! The points exist only with the `enabled` feature (the CLI's tests turn it on) and `debug_assertions`:
//! Cargo unifies features across a build, so `cargo build --release --all-targets` would turn the
//! feature on for a release binary through a dev-dependency; no optimized binary ever contains a point,
//! whatever the build command. Elsewhere [`fires`] is a constant `false` and the variable is ignored.
//!
//! The crash is a real SIGKILL (sent to ourselves through `kill`, as the workspace forbids `unsafe`), not
//! a panic or an exit: no destructor, no flush, no graceful shutdown runs, exactly as after the OOM
//! killer.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point (and optionally the hit) to crash at.
pub const ENV: &str = "VODUP_FAULT";

/// Whether this build has fault points.
pub const ENABLED: bool = cfg!(all(feature = "enabled", debug_assertions));

/// `name` or `name:N` (N ≥ 1, the hit that fires), checked against the points a program knows.
pub fn parse_spec<'a>(spec: &'a str, known: &[&str]) -> Result<(&'a str, u64), String> {
    let (name, nth) = match spec.split_once(':') {
        Some((name, nth)) => {
            (name, nth.parse::<u64>().ok().filter(|n| *n >= 1).ok_or("N must be 1 or more")?)
        }
        None => (spec, 1),
    };
    if !known.contains(&name) {
        return Err(format!("unknown point; the points are {}", known.join(", ")));
    }
    Ok((name, nth))
}

/// What `VODUP_FAULT` will do in a program that knows the points `known`, for a startup message, so a
/// misspelled point does not silently test nothing: `None` when the variable is unset.
pub fn describe(known: &[&str]) -> Option<String> {
    let spec = std::env::var(ENV).ok()?;
    if !ENABLED {
        return Some(format!(
            "{ENV}={spec} is ignored: this build has no fault points (feature enabled, debug builds only)"
        ));
    }
    Some(match parse_spec(&spec, known) {
        Ok((name, nth)) => format!("{ENV} is set: the process will stop at point {name}, hit {nth}"),
        Err(why) => format!("{ENV}={spec} is not understood ({why}); no fault will fire"),
    })
}

/// Counts a hit of point `name`; true exactly when `VODUP_FAULT` names it and this is the hit it names.
pub fn fires(name: &str) -> bool {
    if !ENABLED {
        return false;
    }
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var(ENV).ok()?;
        let (name, nth) = spec.split_once(':').map_or((spec.as_str(), Some(1)), |(n, k)| (n, k.parse().ok()));
        Some((name.to_owned(), nth.filter(|n| *n >= 1)?))
    });
    match armed {
        Some((armed, nth)) if armed == name => HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth,
        _ => false,
    }
}

/// Kills this process with SIGKILL at point `name`. Nothing after the call runs.
pub fn kill(name: &str) -> ! {
    eprintln!("vodup: fault point {name} reached: killing the process");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    // The signal is on its way; nothing after this point may run. `abort` is the fallback if `kill` is
    // missing, and still skips every destructor.
    std::thread::sleep(std::time::Duration::from_secs(5));
    std::process::abort();
}

/// Kills the process if `VODUP_FAULT` names point `name` and this is the hit it names.
pub fn hit(name: &str) {
    if fires(name) {
        kill(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_known_point_and_optionally_a_hit() {
        let known = ["blob-written", "event-posted"];
        assert_eq!(parse_spec("blob-written", &known), Ok(("blob-written", 1)));
        assert_eq!(parse_spec("event-posted:3", &known), Ok(("event-posted", 3)));
        assert!(parse_spec("blob-written:0", &known).is_err());
        assert!(parse_spec("nowhere", &known).unwrap_err().contains("event-posted"));
    }
}
