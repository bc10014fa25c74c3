//! The caller's own credentials: an AccessKey pair, optionally with an STS token, read from arguments or
//! from the environment variables every Alibaba Cloud SDK reads. They sign the VOD calls only; the OSS
//! uploads use the temporary credentials VOD hands out.

use vodup_proto::Secret;

use crate::error::{Error, ErrorKind, Result};

/// Env var of the AccessKey id.
pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
/// Env var of the AccessKey secret.
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
/// Env var of an STS security token, when the key pair is temporary.
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// An AccessKey pair with an optional STS token. The secret parts never print.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The AccessKey id (`LTAI…`, or `STS.…` with a token).
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Secret,
    /// The STS token, sent as `x-acs-security-token`.
    pub security_token: Option<Secret>,
}

impl Credentials {
    /// A long-lived key pair.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(access_key_secret),
            security_token: None,
        }
    }

    /// Adds an STS token.
    #[must_use]
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    /// Reads `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and, if set,
    /// `ALIBABA_CLOUD_SECURITY_TOKEN`.
    pub fn from_env() -> Result<Self> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (Some(id), Some(secret)) = (read(ENV_ACCESS_KEY_ID), read(ENV_ACCESS_KEY_SECRET)) else {
            return Err(Error::new(ErrorKind::PermissionDenied, "read credentials", "no AccessKey given")
                .with_hint(format!(
                    "set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} (and {ENV_SECURITY_TOKEN} for STS \
                     keys), or pass them as flags"
                )));
        };
        let mut credentials = Self::new(id.trim(), secret.trim());
        if let Some(token) = read(ENV_SECURITY_TOKEN) {
            credentials = credentials.with_security_token(token.trim());
        }
        Ok(credentials)
    }
}
