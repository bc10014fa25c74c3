//! The VOD side of an upload: [`VodClient`] signs and sends the API calls (ACS3-HMAC-SHA256, as the
//! current official SDK does), and [`media`] holds the typed metadata of each media type with the checks
//! the service would make, so bad input fails before any request; [`StoredSource`] is what the service
//! holds for a media item's source.

mod client;
pub mod media;
mod stored;

pub use client::{UploadTicket, VodClient};
pub use media::{AttachedMeta, ImageMeta, MediaKind, VideoMeta};
pub use stored::{ObjectDigest, StoredSource, object_digest};
