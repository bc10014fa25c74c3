//! The VOD side of an upload: [`VodClient`] signs and sends the API calls (ACS3-HMAC-SHA256, as the
//! current official SDK does), and [`media`] holds the typed metadata of each media type with the checks
//! the service would make, so bad input fails before any request.

mod client;
pub mod media;

pub use client::{UploadTicket, VodClient};
pub use media::{AttachedMeta, ImageMeta, MediaKind, VideoMeta};
