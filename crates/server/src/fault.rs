//! Named fault points for crash tests: places where a crash would leave the most to repair, at which a
//! test build of `vodup serve` kills itself with SIGKILL when `VODUP_FAULT` names the point.
//!
//! `VODUP_FAULT=blob-written` kills the process the first time a blob is written; `blob-written:3` the third
//! time, so a test can let some writes be acknowledged first. The points exist only with the
//! `fault-points` feature (the CLI's tests turn it on); elsewhere [`hit`] compiles to nothing and the
//! variable is ignored with a warning, so no production binary can be told to crash.
//!
//! The crash is a real SIGKILL (sent to ourselves through `kill`, as the crate forbids `unsafe`), not a
//! panic or an exit: no destructor, no flush, no graceful shutdown runs, exactly as after the OOM killer.
//! One point is different: `handler-panics` panics inside a request handler, to prove that a panic
//! becomes a 500 and costs neither the connection nor the process.
//!
//! Cargo unifies features across a build, so `cargo build --release --all-targets` would turn the
//! feature on for the release binary through the CLI's dev-dependency. The points therefore also need
//! `debug_assertions`: no optimized release binary contains them, whatever the build command.

/// A moment between two steps of a write that must survive a crash between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// A blob's bytes are whole and fsynced under a temporary name, not yet in place.
    BlobWritten,
    /// The blob store holds a new blob (durable, in place); the catalogue has not yet committed the
    /// write that references it (a part, a PutObject).
    BlobStored,
    /// The catalogue committed a write (a part recorded, an object version switched, a media status
    /// changed with its event queued); the client has no answer yet and no event is delivered.
    StatusCommitted,
    /// An event was POSTed and the receiver answered 2xx; the outbox does not yet record it delivered.
    EventPosted,
    /// The collector marked unreferenced blobs collected in the catalogue; storage still holds them.
    GarbageClaimed,
    /// The collector removed one blob of a claimed batch from storage; the others are still there.
    BlobDeleted,
    /// A request handler of either plane is about to run: it panics instead of crashing the process.
    HandlerPanics,
}

impl FaultPoint {
    /// Every point, for tests and for checking `VODUP_FAULT`.
    pub const ALL: [Self; 7] = [
        Self::BlobWritten,
        Self::BlobStored,
        Self::StatusCommitted,
        Self::EventPosted,
        Self::GarbageClaimed,
        Self::BlobDeleted,
        Self::HandlerPanics,
    ];

    /// The name `VODUP_FAULT` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::BlobWritten => "blob-written",
            Self::BlobStored => "blob-stored",
            Self::StatusCommitted => "status-committed",
            Self::EventPosted => "event-posted",
            Self::GarbageClaimed => "garbage-claimed",
            Self::BlobDeleted => "blob-deleted",
            Self::HandlerPanics => "handler-panics",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The environment variable naming the point (and optionally the hit) to crash at.
pub const ENV: &str = "VODUP_FAULT";

/// `name` or `name:N` (N ≥ 1, the hit that kills).
fn parse_spec(spec: &str) -> Result<(FaultPoint, u64), String> {
    let (name, nth) = match spec.split_once(':') {
        Some((name, nth)) => {
            (name, nth.parse::<u64>().ok().filter(|n| *n >= 1).ok_or("N must be 1 or more")?)
        }
        None => (spec, 1),
    };
    let names: Vec<&str> = FaultPoint::ALL.iter().map(|p| p.name()).collect();
    let point = FaultPoint::parse(name)
        .ok_or_else(|| format!("unknown point; the points are {}", names.join(", ")))?;
    Ok((point, nth))
}

/// Reports at startup what `VODUP_FAULT` will do, so a misspelled point does not silently test nothing.
pub fn announce() {
    let Ok(spec) = std::env::var(ENV) else { return };
    if !ENABLED {
        tracing::warn!(
            spec,
            "{ENV} is ignored: this build has no fault points (feature fault-points, debug builds only)"
        );
        return;
    }
    match parse_spec(&spec) {
        Ok((point, nth)) => {
            tracing::warn!(point = point.name(), nth, "{ENV} is set: the process will kill itself there");
        }
        Err(why) => tracing::error!(spec, "{ENV} is not understood ({why}); no fault will fire"),
    }
}

/// Whether this build has fault points.
const ENABLED: bool = cfg!(all(feature = "fault-points", debug_assertions));

/// Marks `point`; kills the process if `VODUP_FAULT` names it and this is the hit it names.
#[cfg(all(feature = "fault-points", debug_assertions))]
pub fn hit(point: FaultPoint) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARMED: OnceLock<Option<(FaultPoint, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| std::env::var(ENV).ok().and_then(|spec| parse_spec(&spec).ok()));
    let Some((armed, nth)) = *armed else { return };
    if armed != point || HITS.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    if point == FaultPoint::HandlerPanics {
        panic!("fault point {} reached (hit {nth})", point.name());
    }
    eprintln!("vodup: fault point {} reached (hit {nth}): killing the process", point.name());
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    // The signal is on its way; nothing after this point may run. `abort` is the fallback if `kill` is
    // missing, and still skips every destructor.
    std::thread::sleep(std::time::Duration::from_secs(5));
    std::process::abort();
}

/// Marks `point` when `reached`: for steps that only count when they did something (a claim that
/// claimed no blob is not the step a crash test means).
pub fn hit_if(reached: bool, point: FaultPoint) {
    if reached {
        hit(point);
    }
}

/// Marks `point`; this build has no fault points.
#[cfg(not(all(feature = "fault-points", debug_assertions)))]
#[inline(always)]
pub fn hit(_point: FaultPoint) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_point_and_optionally_a_hit() {
        assert_eq!(parse_spec("blob-written"), Ok((FaultPoint::BlobWritten, 1)));
        assert_eq!(parse_spec("event-posted:3"), Ok((FaultPoint::EventPosted, 3)));
        assert!(parse_spec("blob-written:0").is_err());
        assert!(parse_spec("nowhere").unwrap_err().contains("garbage-claimed"));
        for point in FaultPoint::ALL {
            assert_eq!(FaultPoint::parse(point.name()), Some(point));
        }
    }
}
