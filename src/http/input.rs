//! Validation of JSON API input: raw strings stop here.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::{is_absolute_uri, time};
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

/// Most audience values a resource server may have.
pub const MAX_AUDIENCES: usize = 16;
/// Longest audience value (the same limit as a requested `audience`).
pub const MAX_AUDIENCE_LEN: usize = 512;

/// A resource server's audience: a URI, an array of URIs, or `null`/`[]` for none. Each is an
/// absolute URI without a fragment of at most 512 characters; at most 16, no duplicates.
pub fn audience(value: &Value) -> Result<Vec<String>, ApiError> {
    let values: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if values.len() > MAX_AUDIENCES {
        return Err(ApiError::Unprocessable(format!("audience has at most {MAX_AUDIENCES} values")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let Value::String(uri) = value else {
            return Err(ApiError::BadRequest("audience must be a URI or an array of URIs".into()));
        };
        if uri.len() > MAX_AUDIENCE_LEN || !is_absolute_uri(uri) {
            return Err(ApiError::Unprocessable(format!(
                "audience values must be absolute URIs without a fragment, at most {MAX_AUDIENCE_LEN} characters"
            )));
        }
        if out.contains(uri) {
            return Err(ApiError::Unprocessable(format!("audience lists {uri} twice")));
        }
        out.push(uri.clone());
    }
    Ok(out)
}

/// An instant given as an ISO 8601 date or an RFC 3339 date-time; 400 otherwise.
pub fn instant(what: &str, text: &str) -> Result<i64, ApiError> {
    time::parse_instant(text).map_err(|e| ApiError::BadRequest(format!("{what} {e}")))
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
    fn an_audience_is_one_uri_or_a_list_of_distinct_uris_and_null_clears_it() {
        use serde_json::json;
        assert_eq!(audience(&json!("https://a.example")).unwrap(), ["https://a.example"]);
        assert_eq!(audience(&json!(["https://a.example", "https://b.example"])).unwrap().len(), 2);
        assert!(audience(&json!(null)).unwrap().is_empty());
        assert!(audience(&json!([])).unwrap().is_empty());
        let long = format!("https://{}", "a".repeat(MAX_AUDIENCE_LEN));
        let many: Vec<String> = (0..=MAX_AUDIENCES).map(|i| format!("https://{i}.example")).collect();
        for bad in [json!("a"), json!(["https://a.example", "https://a.example"]), json!(long), json!(many)] {
            assert!(matches!(audience(&bad), Err(ApiError::Unprocessable(_))), "{bad}");
        }
        for bad in [json!(1), json!([true]), json!({"uri": "https://a.example"})] {
            assert!(matches!(audience(&bad), Err(ApiError::BadRequest(_))), "{bad}");
        }
    }

    #[test]
    fn timeouts_must_be_positive_and_at_most_thirty_days() {
        assert!(timeout("t", 0).is_err());
        assert!(timeout("t", MAX_TIMEOUT + 1).is_err());
        assert_eq!(timeout("t", 60).unwrap(), 60);
    }
}
