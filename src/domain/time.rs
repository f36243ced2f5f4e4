//! Unix-second timestamps rendered as RFC 3339 on the wire.

use chrono::{DateTime, NaiveDate, SecondsFormat};
use serde::Serializer;

pub fn rfc3339(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default()
}

/// `#[serde(serialize_with = "crate::domain::time::ser")]` for an `i64` timestamp.
pub fn ser<S: Serializer>(ts: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ts))
}

/// `#[serde(serialize_with = "crate::domain::time::ser_opt")]` for an `Option<i64>` timestamp.
pub fn ser_opt<S: Serializer>(ts: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.serialize_str(&rfc3339(*ts)),
        None => s.serialize_none(),
    }
}

/// Text that is neither an ISO 8601 calendar date nor an RFC 3339 date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an ISO 8601 date (2027-01-31, meaning 00:00:00 UTC that day) or an RFC 3339 date-time with an offset (2027-01-31T12:00:00Z)")]
pub struct InvalidInstant;

/// Parses an instant given as an ISO 8601 calendar date (`2027-01-31`: the start of that day,
/// 00:00:00 UTC, as GitLab reads a token's expiry date) or an RFC 3339 date-time with an offset
/// (`2027-01-31T12:00:00Z`, `…+02:00`). Fractions of a second are dropped.
pub fn parse_instant(text: &str) -> Result<i64, InvalidInstant> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).ok_or(InvalidInstant);
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.timestamp()).map_err(|_| InvalidInstant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_utc_with_second_precision() {
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn a_date_means_midnight_utc_and_a_date_time_keeps_its_offset() {
        assert_eq!(parse_instant("2027-01-15"), Ok(1_800_000_000 - 8 * 3600));
        assert_eq!(parse_instant("2027-01-15T08:00:00Z"), Ok(1_800_000_000));
        assert_eq!(parse_instant("2027-01-15T10:00:00.5+02:00"), Ok(1_800_000_000));
    }

    #[test]
    fn other_spellings_of_time_are_refused() {
        for bad in ["", "2027-1-5x", "2027-02-30", "2027-01-15T08:00:00", "tomorrow", "1800000000", "2027-01-15 08:00"]
        {
            assert_eq!(parse_instant(bad), Err(InvalidInstant), "{bad:?}");
        }
    }
}
