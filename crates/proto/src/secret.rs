//! Secrets as a type: AccessKeySecrets, STS security tokens and DSNs never print, are wiped from memory
//! when dropped, and compare in constant time.
//!
//! The only way to read the value is [`Secret::expose`], so a `grep expose` finds every place a secret
//! leaves its box (to be HMAC'd, or written to the one file that stores it).

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string: `Debug` and `Display` print `******`; the bytes are zeroized on drop.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

/// The secret half of an AccessKey pair (long-lived or STS).
pub type AccessKeySecret = Secret;

/// An STS security token, sent as `x-oss-security-token` / `SecurityToken`. It is a bearer credential
/// when paired with its AccessKeyId and secret, so it is kept out of logs like a secret.
pub type SecurityToken = Secret;

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value must leave the box (signing, storing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl PartialEq for Secret {
    /// Constant time in the contents (the length may leak, as it does on the wire anyway).
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(******)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

impl serde::Serialize for Secret {
    /// Serializes the real value: serialization is how a secret reaches the wire (UploadAuth) or its
    /// 0600 file. Logging goes through `Debug`, which redacts.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(******)");
        assert_eq!(format!("{secret}"), "******");
        assert!(!format!("{secret:#?}").contains("hunter2"));
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
    }

    #[test]
    fn expose_returns_the_value() {
        assert_eq!(Secret::from("k").expose(), "k");
    }
}
