//! Exit codes, one per kind of outcome, so scripts can tell "fix your input" from "retry later". The
//! README has the same table. A bad command line exits with 2, clap's own code.

use std::process::ExitCode;

use vodup_sdk::ErrorKind;

/// Everything done.
pub const OK: u8 = 0;
/// A missing or invalid flag, variable or config value (clap exits with the same code for its own).
pub const USAGE: u8 = 2;
/// Bad input: missing file, bad extension or playlist, a source that changed, local I/O.
pub const INPUT: u8 = 3;
/// Credentials refused or expired.
pub const AUTH: u8 = 4;
/// Network failure or throttling, after retries.
pub const NETWORK: u8 = 5;
/// The service refused or failed.
pub const SERVICE: u8 = 6;
/// Data was damaged on the way, after resending.
pub const CHECKSUM: u8 = 7;
/// Another process is uploading the same source.
pub const BUSY: u8 = 8;
/// A batch finished, but some of its files failed (the others are done and stay done).
pub const SOME_FAILED: u8 = 9;
/// Interrupted (Ctrl-C); the checkpoint is kept.
pub const INTERRUPTED: u8 = 130;

/// The exit code of an SDK error.
pub fn of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::PermissionDenied | ErrorKind::CredentialsExpired => AUTH,
        ErrorKind::Network | ErrorKind::RateLimited => NETWORK,
        ErrorKind::Service => SERVICE,
        ErrorKind::ChecksumMismatch => CHECKSUM,
        ErrorKind::Locked => BUSY,
        ErrorKind::Cancelled => INTERRUPTED,
        _ => INPUT,
    }
}

/// As an [`ExitCode`].
pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [OK, USAGE, INPUT, AUTH, NETWORK, SERVICE, CHECKSUM, BUSY, SOME_FAILED, INTERRUPTED];
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }
}
