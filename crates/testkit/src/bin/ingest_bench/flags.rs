//! What the `deployments` and `control` modes check of their flags alike: a count or a size is a
//! positive whole number, and the `vodup` binary to start exists (with how to build it when it does not).

use std::path::Path;

/// `value` of `flag` as a positive whole number, or an error that shows the mode's `usage`.
pub fn positive(flag: &str, value: &str, usage: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} takes a positive whole number, not {value:?}; {usage}")),
    }
}

/// Fails unless `vodup` names a file.
pub fn require_vodup(vodup: &Path) -> Result<(), String> {
    if vodup.is_file() {
        return Ok(());
    }
    Err(format!(
        "no vodup binary at {}: build it with `cargo build --release -p vodup-cli`, or pass --vodup PATH",
        vodup.display()
    ))
}
