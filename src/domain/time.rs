//! Unix-second timestamps rendered as RFC 3339 on the wire.

use chrono::{DateTime, SecondsFormat};
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

#[cfg(test)]
mod tests {
    #[test]
    fn renders_utc_with_second_precision() {
        assert_eq!(super::rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
