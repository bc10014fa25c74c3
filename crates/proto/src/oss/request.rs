//! The parts of an OSS request that a signature covers, in decoded form.
//!
//! Both signers and verifiers take an [`OssRequest`]: the bucket and key come from the path or the Host
//! (a signature always uses `/{bucket}/{key}`, whatever the addressing style), the key is decoded even
//! when the client sent `%2F`, and query values are form-decoded.

use http::HeaderMap;

/// A request as the signatures see it.
#[derive(Debug, Clone, Copy)]
pub struct OssRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The bucket, or `None` for service-level requests.
    pub bucket: Option<&'a str>,
    /// The decoded object key, or `None` for bucket-level requests.
    pub key: Option<&'a str>,
    /// Decoded query parameters, in any order.
    pub query: &'a [(String, String)],
    /// Headers as sent.
    pub headers: &'a HeaderMap,
}

impl OssRequest<'_> {
    /// The first value of header `name`, if present and visible ASCII; `""` otherwise.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of query parameter `name`, if present.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` joined with `,` (how a repeated header reads as one), or `None`
    /// if absent. Non-ASCII bytes are kept as Latin-1, which is what the Python clients send.
    pub(crate) fn header_joined(&self, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter().peekable();
        values.peek()?;
        Some(
            values
                .map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect::<String>())
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// `/{bucket}/{key}`, `/{bucket}/` or `/`: the resource path both signature versions start from.
    pub(crate) fn resource_path(&self) -> String {
        match (self.bucket, self.key) {
            (None, _) => "/".to_owned(),
            (Some(bucket), None) => format!("/{bucket}/"),
            (Some(bucket), Some(key)) => format!("/{bucket}/{key}"),
        }
    }
}
