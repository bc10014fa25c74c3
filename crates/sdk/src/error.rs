//! The one error type of the SDK (opendal's shape): a [`ErrorKind`] to branch on, whether retrying can
//! help, the service's own code and request id, and the context a person needs to act: which operation,
//! which object or part, which local file, and what to do next.
//!
//! `Display` reads "what failed, where: why (what to do next)". The CLI prints it as is and maps
//! [`ErrorKind`] to its exit codes.

use std::fmt;
use std::path::PathBuf;

/// What kind of failure this is; decides retries and the CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input found before or without a request: missing file, bad extension, bad playlist, bad flag.
    InvalidInput,
    /// The source or a server object is not there.
    NotFound,
    /// Credentials were refused or do not allow the operation.
    PermissionDenied,
    /// Temporary credentials expired and could not be refreshed.
    CredentialsExpired,
    /// Bytes arrived different from what was sent, even after resending.
    ChecksumMismatch,
    /// The service asked us to slow down.
    RateLimited,
    /// The connection failed or timed out.
    Network,
    /// The service answered with an error not covered above.
    Service,
    /// The source changed while it was being uploaded.
    SourceChanged,
    /// Local I/O failed (reading the source, writing the checkpoint).
    Io,
    /// Another process holds the checkpoint of this upload.
    Locked,
    /// The caller cancelled the upload.
    Cancelled,
}

impl ErrorKind {
    /// A short lower-case name (`checksum_mismatch`), used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::PermissionDenied => "permission_denied",
            Self::CredentialsExpired => "credentials_expired",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::RateLimited => "rate_limited",
            Self::Network => "network",
            Self::Service => "service",
            Self::SourceChanged => "source_changed",
            Self::Io => "io",
            Self::Locked => "locked",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Whether the same request could succeed if sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Sending it again cannot help.
    Permanent,
    /// It may succeed if sent again.
    Temporary,
    /// It was temporary, but the retries ran out.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
    },
}

/// An SDK error. Boxed, so results stay one pointer wide on the happy path.
#[derive(Debug, Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    retry: Retry,
    operation: &'static str,
    message: String,
    service_code: Option<String>,
    request_id: Option<String>,
    object: Option<String>,
    part_number: Option<u32>,
    path: Option<PathBuf>,
    hint: Option<String>,
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` in `operation` (`UploadPart`, `CreateUploadVideo`, `read source`…).
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        let retry = match kind {
            ErrorKind::Network | ErrorKind::RateLimited => Retry::Temporary,
            _ => Retry::Permanent,
        };
        Self {
            inner: Box::new(Inner {
                kind,
                retry,
                operation,
                message: message.into(),
                service_code: None,
                request_id: None,
                object: None,
                part_number: None,
                path: None,
                hint: None,
            }),
        }
    }

    /// Bad input, found before any request.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, "check input", message)
    }

    /// Sets whether a retry may help.
    #[must_use]
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.inner.retry = retry;
        self
    }

    /// Sets the service's error code (an empty one, from an answer without a code, is ignored).
    #[must_use]
    pub fn with_service_code(mut self, code: impl Into<String>) -> Self {
        let code = code.into();
        if !code.is_empty() {
            self.inner.service_code = Some(code);
        }
        self
    }

    /// Sets the service's request id.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.inner.request_id = Some(id);
        }
        self
    }

    /// Names the object (`bucket/key`) the operation was on.
    #[must_use]
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.inner.object = Some(object.into());
        self
    }

    /// Names the part.
    #[must_use]
    pub fn with_part(mut self, part_number: u32) -> Self {
        self.inner.part_number = Some(part_number);
        self
    }

    /// Names the local file.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.inner.path = Some(path.into());
        self
    }

    /// Says what to do next.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.inner.hint = Some(hint.into());
        self
    }

    /// Adds a hint only when there is none yet (the innermost hint is the most specific).
    #[must_use]
    pub fn or_hint(self, hint: impl Into<String>) -> Self {
        if self.inner.hint.is_some() { self } else { self.with_hint(hint) }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether sending the request again may help ([`Retry::Temporary`]).
    pub fn is_retryable(&self) -> bool {
        self.inner.retry == Retry::Temporary
    }

    /// Retry status, including how many attempts were made when they ran out.
    pub fn retry(&self) -> Retry {
        self.inner.retry
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        self.inner.operation
    }

    /// The service's error code (`SecurityTokenExpired`, `InvalidFileName.Extension`…).
    pub fn service_code(&self) -> Option<&str> {
        self.inner.service_code.as_deref()
    }

    /// The service's request id, to quote to its operators.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// The part number, for part errors.
    pub fn part_number(&self) -> Option<u32> {
        self.inner.part_number
    }

    /// The hint on what to do next.
    pub fn hint(&self) -> Option<&str> {
        self.inner.hint.as_deref()
    }

    /// The bare message, without context.
    pub fn message(&self) -> &str {
        &self.inner.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.operation)?;
        if let Some(part) = self.inner.part_number {
            write!(f, " part {part}")?;
        }
        if let Some(path) = &self.inner.path {
            write!(f, " of {}", path.display())?;
        }
        if let Some(object) = &self.inner.object {
            write!(f, " to {object}")?;
        }
        write!(f, ": ")?;
        if let Some(code) = &self.inner.service_code {
            write!(f, "{code}: ")?;
        }
        f.write_str(&self.inner.message)?;
        if let Retry::Exhausted { attempts } = self.inner.retry {
            write!(f, " (after {attempts} attempts)")?;
        }
        if let Some(id) = &self.inner.request_id {
            write!(f, " [request id {id}]")?;
        }
        if let Some(hint) = &self.inner.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A transport failure (connect, TLS, timeout, reset) of `operation`, with the whole cause chain in the
/// message: reqwest's own message alone ("error sending request") says nothing actionable.
pub(crate) fn network_error(operation: &'static str, error: &reqwest::Error) -> Error {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    Error::new(ErrorKind::Network, operation, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_what_where_why_next() {
        let error = Error::new(ErrorKind::Service, "UploadPart", "the clock is 17 min off")
            .with_service_code("RequestTimeTooSkewed")
            .with_part(37)
            .with_path("video.mp4")
            .with_object("bucket/obj")
            .with_request_id("ABC")
            .with_retry(Retry::Exhausted { attempts: 5 })
            .with_hint("sync the clock and re-run; the checkpoint is kept");
        assert_eq!(
            error.to_string(),
            "UploadPart part 37 of video.mp4 to bucket/obj: RequestTimeTooSkewed: the clock is 17 min off \
             (after 5 attempts) [request id ABC]; sync the clock and re-run; the checkpoint is kept"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn network_errors_are_retryable_by_default() {
        assert!(Error::new(ErrorKind::Network, "PutObject", "reset").is_retryable());
        assert!(!Error::invalid_input("no file").is_retryable());
        assert!(Error::invalid_input("x").with_hint("a").or_hint("b").hint() == Some("a"));
    }
}
