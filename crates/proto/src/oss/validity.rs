//! When a signed OSS request is valid in time, as a pure function of the credential, the request, the
//! server's clock and the service's limits, so the rules are written and tested once.
//!
//! | credential | rule | refusal (oss-api.md §6.7) |
//! |---|---|---|
//! | header (V1 `Date`/`x-oss-date`, V4 `x-oss-date`) | within [`CLOCK_SKEW`] of now, either way | 403 `RequestTimeTooSkewed`, EC 0002-00000504 |
//! | V4 URL | `x-oss-expires` in 1..=[`MAX_V4_PRESIGN_EXPIRES`] | 403 `AccessDenied`, EC 0002-00000232 |
//! | V4 URL | `x-oss-date` no more than [`CLOCK_SKEW`] ahead of now | 403 `AccessDenied`, EC 0002-00000235 |
//! | V4 URL | now ≤ `x-oss-date` + `x-oss-expires` | 403 `AccessDenied`, EC 0002-00000236 |
//! | V1 URL | `Expires` is a number of seconds | 403 `AccessDenied`, EC 0002-00000070 |
//! | V1 URL | now ≤ `Expires` | 403 `AccessDenied`, EC 0002-00000069 |
//! | V1 URL | `Expires` ≤ now + the service's maximum lifetime | 403 `AccessDenied` (a vodup rule: OSS sets no cap) |
//!
//! A presigned URL's age is bounded by its expiry, not by the skew window: a V4 URL signed six days ago
//! for seven days is valid. The EC numbers are the ones Alibaba's OSS troubleshooting reference gives for
//! each case; the codes that go with them follow the reference's pattern for authentication refusals.
//!
//! Every number here comes off the wire, so every step is checked arithmetic: an overflow is a refusal,
//! never a panic (issue 11).

use std::time::{Duration, SystemTime};

use crate::oss::OssErrorCode;
use crate::oss::authorization::OssCredential;
use crate::oss::request::OssRequest;
use crate::timestamp;

/// How far a signing date may be from the server's clock: OSS's 15 minutes.
pub const CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The longest `x-oss-expires` a V4 presigned URL may carry: 7 days, as OSS documents (EC 0002-00000232).
pub const MAX_V4_PRESIGN_EXPIRES: u64 = 7 * 86_400;

/// The service's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePolicy {
    /// How far a header signature's date may be from now, and a V4 URL's `x-oss-date` ahead of now.
    pub max_skew: Duration,
    /// How far in the future a V1 URL's `Expires` may lie.
    pub max_v1_presign_lifetime: Duration,
}

/// Why a signed request is not valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeRefusal {
    /// A header signature without a readable `Date` or `x-oss-date`.
    #[error("the request has no readable Date or x-oss-date header")]
    NoDate,
    /// A header signature dated too far from now.
    #[error("the difference between the request time and the current time is too large; sync the clock")]
    TooSkewed,
    /// A V1 URL whose `Expires` is not a number of seconds.
    #[error("the presigned URL's Expires is not a Unix time in seconds")]
    UnreadableExpiry,
    /// A V4 URL whose `x-oss-expires` is outside 1..=604800.
    #[error("x-oss-expires must be 1 to 604800 seconds (7 days)")]
    ExpiresOutOfRange,
    /// A V4 URL signed for later than the skew window allows.
    #[error(
        "the presigned URL is not valid yet: its x-oss-date is more than 15 minutes ahead of the server's clock"
    )]
    NotYetValid,
    /// A presigned URL past its expiry.
    #[error("Request has expired")]
    Expired,
    /// A V1 URL that expires later than the service allows.
    #[error("the presigned URL expires later than this service allows ({max_secs} seconds from now)")]
    LifetimeTooLong {
        /// The limit, in seconds.
        max_secs: u64,
    },
}

impl TimeRefusal {
    /// The OSS error code to answer with.
    pub fn code(self) -> OssErrorCode {
        match self {
            Self::TooSkewed => OssErrorCode::RequestTimeTooSkewed,
            Self::NoDate
            | Self::UnreadableExpiry
            | Self::ExpiresOutOfRange
            | Self::NotYetValid
            | Self::Expired
            | Self::LifetimeTooLong { .. } => OssErrorCode::AccessDenied,
        }
    }

    /// The EC number OSS documents for this case, if it documents one. `Expired` has two (V1 and V4);
    /// see [`check`], which picks by credential.
    fn ec(self, v4: bool) -> Option<&'static str> {
        match self {
            Self::NoDate => Some("0002-00000503"),
            Self::TooSkewed => Some("0002-00000504"),
            Self::UnreadableExpiry => Some("0002-00000070"),
            Self::ExpiresOutOfRange => Some("0002-00000232"),
            Self::NotYetValid => Some("0002-00000235"),
            Self::Expired if v4 => Some("0002-00000236"),
            Self::Expired => Some("0002-00000069"),
            Self::LifetimeTooLong { .. } => None,
        }
    }
}

/// A refusal with the EC number for the credential it was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{refusal}")]
pub struct TimeError {
    /// What was wrong.
    pub refusal: TimeRefusal,
    /// OSS's EC number for it, if it has one.
    pub ec: Option<&'static str>,
}

/// Whether `credential` is valid at `now` under `policy`. Anonymous requests have no time to check.
pub fn check(
    credential: &OssCredential,
    request: &OssRequest<'_>,
    now: SystemTime,
    policy: &TimePolicy,
) -> Result<(), TimeError> {
    let v4 = matches!(credential, OssCredential::V4Header { .. } | OssCredential::V4Presign { .. });
    check_inner(credential, request, now, policy).map_err(|refusal| TimeError { refusal, ec: refusal.ec(v4) })
}

fn check_inner(
    credential: &OssCredential,
    request: &OssRequest<'_>,
    now: SystemTime,
    policy: &TimePolicy,
) -> Result<(), TimeRefusal> {
    match credential {
        OssCredential::Anonymous => Ok(()),
        OssCredential::V1Header { .. } | OssCredential::V4Header { .. } => {
            let signed_at = credential.signed_at(request).ok_or(TimeRefusal::NoDate)?;
            if distance(signed_at, now) > policy.max_skew {
                return Err(TimeRefusal::TooSkewed);
            }
            Ok(())
        }
        OssCredential::V1Presign { expires, .. } => {
            let expires = parse_seconds(expires).ok_or(TimeRefusal::UnreadableExpiry)?;
            let now_secs = timestamp::unix_seconds(now);
            if now_secs > expires {
                return Err(TimeRefusal::Expired);
            }
            let max = policy.max_v1_presign_lifetime.as_secs();
            // `expires - now_secs` cannot underflow: expires >= now_secs here.
            if expires - now_secs > max {
                return Err(TimeRefusal::LifetimeTooLong { max_secs: max });
            }
            Ok(())
        }
        OssCredential::V4Presign { expires_in, .. } => {
            if !(1..=MAX_V4_PRESIGN_EXPIRES).contains(expires_in) {
                return Err(TimeRefusal::ExpiresOutOfRange);
            }
            // The credential parser has already refused an unreadable x-oss-date.
            let signed_at = credential.signed_at(request).ok_or(TimeRefusal::NoDate)?;
            if signed_at.duration_since(now).is_ok_and(|ahead| ahead > policy.max_skew) {
                return Err(TimeRefusal::NotYetValid);
            }
            // A parsed x-oss-date is at most year 9999 and expires_in at most 7 days: no overflow, but
            // checked all the same.
            let expires =
                signed_at.checked_add(Duration::from_secs(*expires_in)).ok_or(TimeRefusal::Expired)?;
            if now > expires {
                return Err(TimeRefusal::Expired);
            }
            Ok(())
        }
    }
}

/// `|a - b|`.
fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).or_else(|_| b.duration_since(a)).unwrap_or_default()
}

/// A decimal count of seconds: ASCII digits only (no sign, no spaces), at most what a `u64` holds.
pub(crate) fn parse_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    const NOW: u64 = 1_795_593_600; // 2026-11-25 08:00:00 UTC

    fn policy() -> TimePolicy {
        TimePolicy { max_skew: CLOCK_SKEW, max_v1_presign_lifetime: Duration::from_secs(30 * 86_400) }
    }

    fn at(seconds: u64) -> SystemTime {
        timestamp::from_unix_seconds(seconds)
    }

    fn check_at(credential: &OssCredential, now: u64) -> Result<(), TimeRefusal> {
        let headers = HeaderMap::new();
        let request =
            OssRequest { method: "GET", bucket: Some("b"), key: Some("k"), query: &[], headers: &headers };
        check(credential, &request, at(now), &policy()).map_err(|e| e.refusal)
    }

    fn v1(expires: &str) -> OssCredential {
        OssCredential::V1Presign {
            access_key_id: "ak".into(),
            expires: expires.into(),
            signature: "s".into(),
        }
    }

    fn v4(signed_at: u64, expires_in: u64) -> OssCredential {
        let oss_date = timestamp::oss_v4_date(at(signed_at));
        OssCredential::V4Presign {
            access_key_id: "ak".into(),
            scope: format!("{}/r/oss/aliyun_v4_request", &oss_date[..8]).parse().unwrap(),
            additional_headers: Vec::new(),
            oss_date,
            expires_in,
            signature: "s".into(),
        }
    }

    // See: issue 11. These numbers once overflowed `UNIX_EPOCH + Duration` inside the handler.
    #[test]
    fn absurd_v1_expiries_are_refused_not_panicked_on() {
        for expires in ["10000000000000000000", "18446744073709551615", "9223372036854775807", "253402300800"]
        {
            assert_eq!(
                check_at(&v1(expires), NOW),
                Err(TimeRefusal::LifetimeTooLong { max_secs: 30 * 86_400 }),
                "{expires}"
            );
        }
        for expires in ["", "-1", "+5", " 5", "1e9", "18446744073709551616", "0x10"] {
            assert_eq!(check_at(&v1(expires), NOW), Err(TimeRefusal::UnreadableExpiry), "{expires:?}");
        }
    }

    #[test]
    fn v1_url_lives_until_expires_and_no_longer_than_the_limit() {
        assert_eq!(check_at(&v1(&NOW.to_string()), NOW), Ok(()));
        assert_eq!(check_at(&v1(&(NOW - 1).to_string()), NOW), Err(TimeRefusal::Expired));
        assert_eq!(check_at(&v1(&(NOW + 30 * 86_400).to_string()), NOW), Ok(()));
        assert!(matches!(
            check_at(&v1(&(NOW + 30 * 86_400 + 1).to_string()), NOW),
            Err(TimeRefusal::LifetimeTooLong { .. })
        ));
        // Year 36812, from issue 11.
        assert!(matches!(check_at(&v1("1099511627775"), NOW), Err(TimeRefusal::LifetimeTooLong { .. })));
    }

    #[test]
    fn v4_url_expires_is_one_second_to_seven_days() {
        assert_eq!(check_at(&v4(NOW, 604_800), NOW), Ok(()));
        for expires_in in [0, 604_801, 30 * 86_400, u64::MAX, i64::MAX as u64] {
            assert_eq!(
                check_at(&v4(NOW, expires_in), NOW),
                Err(TimeRefusal::ExpiresOutOfRange),
                "{expires_in}"
            );
        }
    }

    #[test]
    fn v4_url_is_valid_from_fifteen_minutes_before_its_date_until_its_expiry() {
        assert_eq!(check_at(&v4(NOW + 15 * 60, 60), NOW), Ok(()));
        assert_eq!(check_at(&v4(NOW + 15 * 60 + 1, 60), NOW), Err(TimeRefusal::NotYetValid));
        assert_eq!(check_at(&v4(NOW + 3600, 86_400), NOW), Err(TimeRefusal::NotYetValid));
        // Old is fine while unexpired: the age is bounded by the expiry, not by the skew window.
        assert_eq!(check_at(&v4(NOW - 6 * 86_400, 604_800), NOW), Ok(()));
        assert_eq!(check_at(&v4(NOW - 61, 60), NOW), Err(TimeRefusal::Expired));
    }

    #[test]
    fn refusals_carry_the_documented_codes() {
        let headers = HeaderMap::new();
        let request =
            OssRequest { method: "GET", bucket: Some("b"), key: Some("k"), query: &[], headers: &headers };
        let error = check(&v4(NOW, 0), &request, at(NOW), &policy()).unwrap_err();
        assert_eq!((error.refusal.code(), error.ec), (OssErrorCode::AccessDenied, Some("0002-00000232")));
        let error = check(&v4(NOW - 100, 60), &request, at(NOW), &policy()).unwrap_err();
        assert_eq!(error.ec, Some("0002-00000236"));
        let error = check(&v1("1"), &request, at(NOW), &policy()).unwrap_err();
        assert_eq!(error.ec, Some("0002-00000069"));
        assert_eq!(TimeRefusal::TooSkewed.code(), OssErrorCode::RequestTimeTooSkewed);
    }
}
