//! The service's named fault points for crash tests: places where a crash would leave the most to
//! repair, at which a test build of `vodup serve` kills itself with SIGKILL when `VODUP_FAULT` names the
//! point (`blob-written`, or `blob-written:3` for the third hit). The mechanism (the variable, the hit
//! count, the kill, and why no release binary contains a point) is `vodup_fault`'s; this module names
//! the service's points. One point is different: `handler-panics` panics inside a request handler, to
//! prove that a panic becomes a 500 and costs neither the connection nor the process.

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
}

fn names() -> Vec<&'static str> {
    FaultPoint::ALL.iter().map(|p| p.name()).collect()
}

/// Reports at startup what `VODUP_FAULT` will do, so a misspelled point does not silently test nothing.
pub fn announce() {
    if let Some(message) = vodup_fault::describe(&names()) {
        tracing::warn!("{message}");
    }
}

/// Marks `point`; kills the process (or, for [`FaultPoint::HandlerPanics`], panics) if `VODUP_FAULT`
/// names it and this is the hit it names. Without fault points this is a constant no-op.
pub fn hit(point: FaultPoint) {
    if vodup_fault::fires(point.name()) {
        if point == FaultPoint::HandlerPanics {
            panic!("fault point {} reached", point.name());
        }
        vodup_fault::kill(point.name());
    }
}

/// Marks `point` when `reached`: for steps that only count when they did something (a claim that
/// claimed no blob is not the step a crash test means).
pub fn hit_if(reached: bool, point: FaultPoint) {
    if reached {
        hit(point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_has_a_spec_name() {
        for point in FaultPoint::ALL {
            assert_eq!(vodup_fault::parse_spec(point.name(), &names()), Ok((point.name(), 1)));
        }
    }
}
