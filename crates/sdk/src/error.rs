//! The one error type of the SDK (opendal's shape): a [`ErrorKind`] to branch on, whether retrying can
//! help, the service's own code and request id, and the context a person needs to act: which operation,
//! which object or part, which local file, and what to do next.
//!
//! `Display` reads "what failed, where: why; what to do next". Every error has a next step: the one its
//! maker gave, or its kind's own ([`ErrorKind::hint`]). The CLI prints it as is and maps [`ErrorKind`] to
//! its exit codes.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 12] = [
        Self::InvalidInput,
        Self::NotFound,
        Self::PermissionDenied,
        Self::CredentialsExpired,
        Self::ChecksumMismatch,
        Self::RateLimited,
        Self::Network,
        Self::Service,
        Self::SourceChanged,
        Self::Io,
        Self::Locked,
        Self::Cancelled,
    ];

    /// What to do next about an error of this kind, when its maker knew nothing more precise.
    pub fn hint(self) -> &'static str {
        match self {
            Self::InvalidInput => "fix what the message names, then re-run",
            Self::NotFound => "check the name, id or path the message names",
            Self::PermissionDenied => {
                "check the AccessKey (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET) and what it may do"
            }
            Self::CredentialsExpired => "re-run: the upload asks for new credentials and resumes",
            Self::ChecksumMismatch => {
                "something on the way damages data (proxy, network card, memory); re-run to resume"
            }
            Self::RateLimited => "the service asks to slow down; lower --parallel or --jobs, then re-run",
            Self::Network => {
                "check that the service runs and that the endpoint's host and port are right, then re-run"
            }
            Self::Service => "re-run later; if it persists, give the request id to the service's operator",
            Self::SourceChanged => "re-run once the source stays unchanged",
            Self::Io => "check the path, its permissions and the free space, then re-run",
            Self::Locked => "another vodup process is uploading this source; let it finish, or stop it",
            Self::Cancelled => "re-run the same command to resume",
        }
    }

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

/// What to do about a `503 ServiceUnavailable` from OSS or VOD once its retries ran out: the service runs but
/// cannot serve for now (vodup's store without a quorum of its nodes, an overloaded OSS), so the same
/// command succeeds later (an upload resuming where it stopped); waiting longer in-process is `--retry-for`.
pub(crate) const SERVICE_UNAVAILABLE_HINT: &str = "the service is unavailable for now (HTTP 503); re-run the same \
     command later (an upload resumes where it stopped), or give --retry-for more seconds to wait longer";

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
    /// The innermost cause of a transport failure (`connection refused`), without addresses.
    cause: Option<String>,
    /// How long the request was retried before this error was given up on.
    retried_for: Option<Duration>,
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
                cause: None,
                retried_for: None,
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

    /// Marks a retryable error given up on after `attempts` attempts over `waited`.
    #[must_use]
    pub fn after_retries(mut self, attempts: u32, waited: Duration) -> Self {
        self.inner.retry = Retry::Exhausted { attempts };
        self.inner.retried_for = Some(waited);
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

    /// What to do next: the hint given where the error was made, else the kind's own.
    pub fn hint(&self) -> &str {
        self.inner.hint.as_deref().unwrap_or(self.inner.kind.hint())
    }

    /// Why, in a few words and without addresses, for one-line summaries: the innermost cause of a
    /// transport failure (`connection refused`), else the service's code, else the message.
    pub fn cause(&self) -> &str {
        self.inner.cause.as_deref().or(self.inner.service_code.as_deref()).unwrap_or(&self.inner.message)
    }

    /// How long the request was retried before it was given up on, when it was.
    pub fn retried_for(&self) -> Option<Duration> {
        self.inner.retried_for
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
        match (self.inner.retry, self.inner.retried_for) {
            (Retry::Exhausted { attempts }, Some(waited)) if attempts > 1 => {
                write!(f, " (after {attempts} attempts in {} s)", waited.as_secs_f64().round())?;
            }
            (Retry::Exhausted { attempts }, None) if attempts > 1 => {
                write!(f, " (after {attempts} attempts)")?;
            }
            _ => {}
        }
        if let Some(id) = &self.inner.request_id {
            write!(f, " [request id {id}]")?;
        }
        write!(f, "; {}", self.hint())
    }
}

impl std::error::Error for Error {}

/// A transport failure (connect, TLS, timeout, reset) of `operation`, with the whole cause chain in the
/// message: reqwest's own message alone ("error sending request") says nothing actionable.
pub(crate) fn network_error(operation: &'static str, error: &reqwest::Error) -> Error {
    let mut message = error.to_string();
    let mut innermost = None;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        innermost = Some(inner);
        source = inner.source();
    }
    let mut made = Error::new(ErrorKind::Network, operation, message);
    made.inner.cause = Some(if error.is_timeout() {
        "timed out".to_owned()
    } else {
        innermost.map_or_else(|| "no answer".to_owned(), |inner| brief(&inner.to_string()))
    });
    made
}

/// `Connection refused (os error 111)` → `connection refused`: the words a person reads, without the
/// errno or anything after a colon (where addresses go).
fn brief(text: &str) -> String {
    let text = text.split(" (os error").next().unwrap_or(text);
    let text = text.split(": ").next().unwrap_or(text).trim();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "no answer".to_owned(),
    }
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
            .after_retries(5, Duration::from_millis(59_600))
            .with_hint("sync the clock and re-run; the checkpoint is kept");
        assert_eq!(
            error.to_string(),
            "UploadPart part 37 of video.mp4 to bucket/obj: RequestTimeTooSkewed: the clock is 17 min off \
             (after 5 attempts in 60 s) [request id ABC]; sync the clock and re-run; the checkpoint is kept"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn network_errors_are_retryable_by_default() {
        assert!(Error::new(ErrorKind::Network, "PutObject", "reset").is_retryable());
        assert!(!Error::invalid_input("no file").is_retryable());
        assert!(Error::invalid_input("x").with_hint("a").or_hint("b").hint() == "a");
    }

    #[test]
    fn every_kind_has_a_next_step() {
        for kind in ErrorKind::ALL {
            // A kind added without a place in ALL fails this match's exhaustiveness first.
            match kind {
                ErrorKind::InvalidInput
                | ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::CredentialsExpired
                | ErrorKind::ChecksumMismatch
                | ErrorKind::RateLimited
                | ErrorKind::Network
                | ErrorKind::Service
                | ErrorKind::SourceChanged
                | ErrorKind::Io
                | ErrorKind::Locked
                | ErrorKind::Cancelled => {}
            }
            let error = Error::new(kind, "UploadPart", "failed");
            assert!(!error.hint().is_empty(), "{kind:?}");
            assert!(error.to_string().ends_with(kind.hint()), "{error}");
        }
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len(), "each kind once");
    }

    #[test]
    fn the_cause_is_short_and_has_no_address() {
        assert_eq!(brief("Connection refused (os error 111)"), "connection refused");
        assert_eq!(
            brief("connection closed before message completed"),
            "connection closed before message completed"
        );
        assert_eq!(brief("dns error: failed to lookup address"), "dns error");
        let error =
            Error::new(ErrorKind::Service, "UploadPart", "HTTP 503").with_service_code("ServiceUnavailable");
        assert_eq!(error.cause(), "ServiceUnavailable");
    }
}
