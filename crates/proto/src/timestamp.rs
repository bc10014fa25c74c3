//! The date formats on the wire, each formatted from and parsed to [`SystemTime`].
//!
//! | format | where |
//! |---|---|
//! | `2024-01-01T12:00:00Z` ([`iso8601`]) | VOD `Timestamp`, `x-acs-date`, `ExpireUTCTime`, catalogue times |
//! | `Wed, 25 Nov 2026 08:00:00 GMT` ([`http_date`]) | HTTP `Date`, OSS V1 string to sign, `Last-Modified` |
//! | `20261125T080000Z` ([`oss_v4_date`]) | OSS V4 `x-oss-date`, with the scope date `20261125` |
//! | `2026-11-25T20:36:49.000Z` ([`oss_xml_time`]) | OSS XML (`LastModified`, `Initiated`) |
//!
//! Every function here is total: no input panics. Instants from the wire are converted with
//! [`checked_from_unix_seconds`] and refused past [`MAX_UNIX_SECONDS`] (the last second any of these
//! formats can write), and the formatters clamp an instant outside years 1970..=9999 to that range
//! rather than panic in `time` or `httpdate` (issue 11: `Expires=10000000000000000000` overflowed
//! `UNIX_EPOCH + Duration` and killed the connection).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const ISO8601: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const OSS_XML_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");
const OSS_V4_DATE: &[FormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// 9999-12-31T23:59:59Z: the last instant a four-digit year (every wire date format here) can write.
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// `at`, or the nearest instant in 1970..=9999 when it lies outside.
fn clamp(at: SystemTime) -> SystemTime {
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) if since.as_secs() > MAX_UNIX_SECONDS => UNIX_EPOCH + Duration::from_secs(MAX_UNIX_SECONDS),
        Ok(_) => at,
        Err(_) => UNIX_EPOCH,
    }
}

fn utc(at: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(clamp(at))
}

fn format(at: SystemTime, description: &[FormatItem<'static>]) -> String {
    // Formatting a UTC date with numeric fields cannot fail for years 1970..=9999, which `utc` ensures.
    utc(at).format(description).expect("a numeric date format always formats")
}

/// `YYYY-MM-DDThh:mm:ssZ` in UTC.
pub fn iso8601(at: SystemTime) -> String {
    format(at, ISO8601)
}

/// `YYYY-MM-DDThh:mm:ss.000Z` in UTC: how OSS writes times in XML. The milliseconds are always `000`
/// because oss2 parses these times with that literal suffix and fails on anything else.
pub fn oss_xml_time(at: SystemTime) -> String {
    format(at, OSS_XML_TIME)
}

/// RFC 1123 date in GMT, as HTTP `Date` and OSS V1 use it.
pub fn http_date(at: SystemTime) -> String {
    // httpdate panics past year 9999.
    httpdate::fmt_http_date(clamp(at))
}

/// `YYYYMMDDTHHMMSSZ` in UTC, the OSS V4 `x-oss-date`.
pub fn oss_v4_date(at: SystemTime) -> String {
    format(at, OSS_V4_DATE)
}

/// Parses `YYYY-MM-DDThh:mm:ssZ`.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    time::PrimitiveDateTime::parse(text, ISO8601).ok().map(|t| t.assume_utc().into())
}

/// Parses an HTTP date (RFC 1123, and the obsolete forms HTTP allows).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text).ok()
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_oss_v4_date(text: &str) -> Option<SystemTime> {
    time::PrimitiveDateTime::parse(text, OSS_V4_DATE).ok().map(|t| t.assume_utc().into())
}

/// Seconds since the Unix epoch (0 for earlier times).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch, rounded up to the next whole second: for an expiry, so that a
/// credential stored in whole seconds lives at least the lifetime it was given, never up to a second less
/// (a 1 s credential minted at .97 of a second otherwise expired 30 ms later).
pub fn unix_seconds_up(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// The instant `seconds` after the Unix epoch, or `None` past [`MAX_UNIX_SECONDS`]: the form for numbers
/// that come off the wire.
pub fn checked_from_unix_seconds(seconds: u64) -> Option<SystemTime> {
    (seconds <= MAX_UNIX_SECONDS).then(|| UNIX_EPOCH + Duration::from_secs(seconds))
}

/// The instant `seconds` after the Unix epoch, saturating at [`MAX_UNIX_SECONDS`], for numbers the
/// service wrote itself (an STS token's MAC-protected expiry). Wire numbers use
/// [`checked_from_unix_seconds`] so that an absurd one is refused, not quietly moved.
pub fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.min(MAX_UNIX_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: u64 = 1_795_593_600; // 2026-11-25 08:00:00 UTC

    #[test]
    fn formats_match_the_wire() {
        let at = from_unix_seconds(AT);
        assert_eq!(iso8601(at), "2026-11-25T08:00:00Z");
        assert_eq!(http_date(at), "Wed, 25 Nov 2026 08:00:00 GMT");
        assert_eq!(oss_v4_date(at), "20261125T080000Z");
        assert_eq!(oss_xml_time(at + Duration::from_millis(7)), "2026-11-25T08:00:00.000Z");
    }

    #[test]
    fn expiries_round_up_to_whole_seconds() {
        let at = from_unix_seconds(AT);
        assert_eq!(unix_seconds_up(at), AT);
        assert_eq!(unix_seconds_up(at + Duration::from_nanos(1)), AT + 1);
        assert_eq!(unix_seconds_up(at + Duration::from_millis(970)), AT + 1);
        assert_eq!(unix_seconds(at + Duration::from_millis(970)), AT);
    }

    #[test]
    fn parsers_invert_formatters() {
        let at = from_unix_seconds(AT);
        assert_eq!(parse_iso8601(&iso8601(at)), Some(at));
        assert_eq!(parse_http_date(&http_date(at)), Some(at));
        assert_eq!(parse_oss_v4_date(&oss_v4_date(at)), Some(at));
        assert_eq!(parse_iso8601("2026-11-25 08:00:00"), None);
    }

    // See: issue 11 (an Expires of 10^19 seconds panicked the handler).
    #[test]
    fn out_of_range_instants_neither_panic_nor_wrap() {
        assert_eq!(checked_from_unix_seconds(MAX_UNIX_SECONDS + 1), None);
        assert_eq!(checked_from_unix_seconds(u64::MAX), None);
        let last = checked_from_unix_seconds(MAX_UNIX_SECONDS).unwrap();
        assert_eq!(iso8601(last), "9999-12-31T23:59:59Z");
        assert_eq!(from_unix_seconds(u64::MAX), last);
        let far = last + Duration::from_secs(10_000 * 365 * 86_400);
        assert_eq!(iso8601(far), "9999-12-31T23:59:59Z");
        assert_eq!(http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(oss_v4_date(UNIX_EPOCH - Duration::from_secs(1)), "19700101T000000Z");
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
