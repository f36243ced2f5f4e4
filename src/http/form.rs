//! `application/x-www-form-urlencoded` bodies of the OAuth endpoints, read with a size limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::OAuthError;

/// Largest OAuth request body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// A parsed form. RFC 6749 §3.1: parameters without a value are treated as omitted, and a
/// parameter must not appear more than once (except the repeatable ones, read with `all`).
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub async fn read(req: &HttpRequest, mut payload: web::Payload) -> Result<Form, OAuthError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
            if body.len() + chunk.len() > MAX_FORM_BYTES {
                return Err(OAuthError::too_large(MAX_FORM_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Form::parse(&body)
    }

    /// Parses strictly: a bad `%` escape or invalid UTF-8 is refused rather than replaced.
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let invalid = || OAuthError::invalid_request("the form body is not valid urlencoded UTF-8");
        let body = std::str::from_utf8(body).map_err(|_| invalid())?;
        let mut pairs = Vec::new();
        for part in body.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let (key, value) = (form_unescape(key).ok_or_else(invalid)?, form_unescape(value).ok_or_else(invalid)?);
            if !value.is_empty() {
                pairs.push((key, value));
            }
        }
        Ok(Form { pairs })
    }

    /// A single-valued parameter; repeating it is `invalid_request`.
    pub fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        match values.next() {
            Some(_) => Err(OAuthError::invalid_request(format!("the parameter {name} must not be repeated"))),
            None => Ok(first),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?.ok_or_else(|| OAuthError::invalid_request(format!("the parameter {name} is required")))
    }

    /// Every value of a repeatable parameter (`audience`, `resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte).
pub fn form_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_single_parameters_are_refused_and_empty_values_ignored() {
        let form = Form::parse(b"a=1&a=2&b=&c=x%20y&r=1&r=2").unwrap();
        assert!(form.one("a").is_err());
        assert_eq!(form.one("b").unwrap(), None);
        assert_eq!(form.one("c").unwrap(), Some("x y"));
        assert_eq!(form.all("r"), vec!["1", "2"]);
        assert!(form.required("missing").is_err());
    }

    #[test]
    fn form_unescape_decodes_plus_and_percent_and_rejects_bad_escapes() {
        assert_eq!(form_unescape("a+b%3Ac%25").as_deref(), Some("a b:c%"));
        assert_eq!(form_unescape("%zz"), None);
        assert_eq!(form_unescape("%4"), None);
    }

    #[test]
    fn invalid_utf8_is_an_invalid_request() {
        let err = Form::parse(b"a=%ff%fe").err().unwrap();
        assert_eq!(err.code.as_str(), "invalid_request");
    }
}
