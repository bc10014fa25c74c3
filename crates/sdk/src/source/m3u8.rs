//! Placeholder until the planner lands.
use std::path::PathBuf;
/// Where a playlist or segment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file.
    File(PathBuf),
    /// A URL.
    Url(reqwest::Url),
}
/// A segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Where.
    pub location: Location,
    /// Name.
    pub object_name: String,
}
/// Plan.
#[derive(Debug)]
pub struct PlaylistPlan {
    /// Segments.
    pub segments: Vec<Segment>,
    /// Text.
    pub rewritten: String,
}
/// Plan.
pub fn plan(_text: &str, _playlist: &Location, _include_keys: bool) -> Result<PlaylistPlan, String> {
    Err("not yet".into())
}
