//! The VOD RPC API (2017-03-21) as it appears on the wire: the two signature schemes, the action names,
//! and the JSON error body (vod-api.md §1-3).
//!
//! Both schemes verify from the request's parts (method, decoded query and form parameters, headers,
//! body) so the service never trusts a client's own canonicalization.

pub mod action;
pub mod error;
pub mod media;
pub mod signature_acs3;
pub mod signature_v1;

pub use action::Action;
pub use error::{VodError, VodErrorCode};

/// The API version every VOD call carries (`Version` parameter or `x-acs-version` header).
pub const API_VERSION: &str = "2017-03-21";
