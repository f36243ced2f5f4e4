//! Validation of JSON API input: raw strings stop here.

use serde::{Deserialize, Deserializer};

use crate::error::ApiError;

/// Longest timeout accepted anywhere (30 days).
pub const MAX_TIMEOUT: i64 = 30 * 86_400;

/// A path segment of a group, project or username: letters, digits, `_`, `-`, `.`; not starting
/// with `.` or `-`; 1 to 255 characters.
pub fn path_segment(what: &str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !value.starts_with(['.', '-'])
        && !value.ends_with(".git");
    match ok {
        true => Ok(value.to_owned()),
        false => Err(ApiError::Unprocessable(format!(
            "{what} must be 1-255 letters, digits, '_', '-' or '.', not starting with '.' or '-'"
        ))),
    }
}

/// Free text up to `max` characters without control characters.
pub fn text(what: &str, value: &str, max: usize, allow_empty: bool) -> Result<String, ApiError> {
    let ok = (allow_empty || !value.is_empty()) && value.chars().count() <= max && !value.chars().any(char::is_control);
    match ok {
        true => Ok(value.to_owned()),
        false => Err(ApiError::Unprocessable(format!(
            "{what} must be {}up to {max} characters without control characters",
            if allow_empty { "" } else { "1 to " }
        ))),
    }
}

pub fn timeout(what: &str, seconds: i64) -> Result<i64, ApiError> {
    match (1..=MAX_TIMEOUT).contains(&seconds) {
        true => Ok(seconds),
        false => Err(ApiError::Unprocessable(format!("{what} must be between 1 and {MAX_TIMEOUT} seconds"))),
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_refuse_traversal_and_odd_characters() {
        assert!(path_segment("path", "my-app_2.0").is_ok());
        for bad in ["", "..", ".hidden", "-x", "a/b", "a b", "x.git", &"a".repeat(256)] {
            assert!(path_segment("path", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeouts_must_be_positive_and_at_most_thirty_days() {
        assert!(timeout("t", 0).is_err());
        assert!(timeout("t", MAX_TIMEOUT + 1).is_err());
        assert_eq!(timeout("t", 60).unwrap(), 60);
    }
}
