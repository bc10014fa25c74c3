//! Why a signature could not be verified, shared by the VOD and OSS verifiers.
//!
//! The variants are what a server needs to pick the wire error: a malformed credential is
//! `IncompleteSignature`/`AccessDenied`-like, a mismatch is `SignatureDoesNotMatch` and must echo the
//! string the server signed (the VOD core SDK parses it out of the message).

/// A signature that did not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is well formed but does not match what the server computed.
    #[error("signature does not match; the server signed: {string_to_sign:?}")]
    Mismatch {
        /// The string the server signed, to be echoed in `SignatureDoesNotMatch` errors.
        string_to_sign: String,
    },
    /// A required part of the credential is absent (e.g. no `Signature` parameter).
    #[error("missing {0}")]
    Missing(&'static str),
    /// The credential is present but cannot be parsed (bad Base64 or hex, bad scope, bad header).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which part was malformed.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

impl SignatureError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed { what, detail: detail.into() }
    }
}
