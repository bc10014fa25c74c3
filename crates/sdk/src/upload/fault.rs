//! The uploader's named fault points, for crash tests: the steps of one file's life between which a
//! crash leaves the most for the next run to sort out. A test build of `vodup upload` (feature
//! `fault-points`, debug builds only) kills itself there with SIGKILL when `VODUP_FAULT` names the point
//! (`upload-part-sent:3` for the third part); the mechanism is `vodup_fault`'s. In any other build the
//! points are constant no-ops.

/// A moment in an upload that a crash test stops the process at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadPoint {
    /// CreateUpload* answered: the media exists; no checkpoint names it yet.
    Created,
    /// The checkpoint names the media; no byte is sent yet.
    Checkpointed,
    /// InitiateMultipartUpload answered; the checkpoint does not have the upload id yet.
    Initiated,
    /// OSS acknowledged a part; the checkpoint does not list it yet.
    PartSent,
    /// The checkpoint lists an acknowledged part.
    PartRecorded,
    /// OSS acknowledged a playlist segment; the checkpoint does not list it yet.
    SegmentSent,
    /// The checkpoint holds the figures of the object about to be committed; the commit
    /// (CompleteMultipartUpload or PutObject) is not sent yet.
    Committing,
    /// The commit was acknowledged: the media is whole in the service, and the checkpoint still says
    /// only that it was about to commit.
    Committed,
    /// The checkpoint is removed; the caller (the CLI, or a batch's journal) has not had the result yet.
    Finished,
}

impl UploadPoint {
    /// Every point, for tests and for checking `VODUP_FAULT`.
    pub const ALL: [Self; 9] = [
        Self::Created,
        Self::Checkpointed,
        Self::Initiated,
        Self::PartSent,
        Self::PartRecorded,
        Self::SegmentSent,
        Self::Committing,
        Self::Committed,
        Self::Finished,
    ];

    /// The name `VODUP_FAULT` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "upload-created",
            Self::Checkpointed => "upload-checkpointed",
            Self::Initiated => "upload-initiated",
            Self::PartSent => "upload-part-sent",
            Self::PartRecorded => "upload-part-recorded",
            Self::SegmentSent => "upload-segment-sent",
            Self::Committing => "upload-committing",
            Self::Committed => "upload-committed",
            Self::Finished => "upload-finished",
        }
    }
}

/// What `VODUP_FAULT` will do in this program, for a startup warning; `None` when it is unset.
pub fn describe() -> Option<String> {
    let names: Vec<&str> = UploadPoint::ALL.iter().map(|p| p.name()).collect();
    vodup_fault::describe(&names)
}

/// Marks `point`: kills the process if `VODUP_FAULT` names it and this is the hit it names.
pub(crate) fn hit(point: UploadPoint) {
    vodup_fault::hit(point.name());
}
