//! A VOD RPC call as the handlers see it: parameters from the query and the form body (decoded with
//! form rules), the action from `Action` or `x-acs-action`, and typed accessors that turn a bad value
//! into the right `MissingParameter` / `InvalidParameter` error.

use std::net::IpAddr;
use std::time::SystemTime;

use vodup_proto::vod::Action;

use super::error::ApiError;

/// Decoded parameters, in the order received. The first occurrence of a name wins.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Wraps decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// Every pair (what signature v1 covers).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The value of `name`, if present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name` if present and non-empty.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The non-empty value of `name`, or `MissingParameter`.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.opt(name).ok_or_else(|| ApiError::missing(name))
    }

    /// An optional integer.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.opt(name)
            .map(|v| v.trim().parse().map_err(|_| ApiError::invalid(name, "not an integer")))
            .transpose()
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.opt(name)
            .map(|v| v.trim().parse().map_err(|_| ApiError::invalid(name, "not a non-negative integer")))
            .transpose()
    }

    /// A comma-separated list of non-empty items, at most `max`.
    pub fn list(
        &self,
        name: &str,
        max: usize,
        too_many: impl FnOnce() -> ApiError,
    ) -> Result<Vec<String>, ApiError> {
        let items: Vec<String> = self
            .opt(name)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        if items.len() > max {
            return Err(too_many());
        }
        Ok(items)
    }
}

/// An authenticated call, ready for its handler.
#[derive(Debug)]
pub struct Call {
    /// The request id (also in every response).
    pub request_id: String,
    /// The action.
    pub action: Action,
    /// Its parameters.
    pub params: Params,
    /// The long-lived AccessKeyId that signed it.
    pub key_id: String,
    /// When it arrived.
    pub now: SystemTime,
    /// The client's address.
    pub peer: IpAddr,
}
