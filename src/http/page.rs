//! Pagination of every list (SPEC §10, GitLab's conventions): `?page=&per_page=` in, a JSON array
//! of the page's rows out, with `X-Total`, `X-Total-Pages`, `X-Page`, `X-Per-Page`,
//! `X-Next-Page`, `X-Prev-Page` (empty on the first/last page) and `Link` (rel next, prev, first,
//! last; absolute URLs with the request's other query parameters kept).
//!
//! A list handler takes [`Pagination`] beside its own filters (a `web::Query` of a struct that
//! does not deny unknown fields, since `page` and `per_page` share the query string), asks the
//! store for `Listed<T>` of that page and answers [`respond`].

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue, LINK};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;
use crate::store::page::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
use crate::store::{Listed, Page};

/// Extractor: the page a list request asks for. `page` and `per_page` must be positive
/// integers when present (a 400 otherwise); `per_page` above 100 is clamped to 100.
#[derive(Debug, Clone, Copy)]
pub struct Pagination(pub Page);

impl FromRequest for Pagination {
    type Error = ApiError;
    type Future = Ready<Result<Pagination, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Pagination))
    }
}

fn parse(query: &str) -> Result<Page, ApiError> {
    let (mut number, mut per_page) = (1, DEFAULT_PER_PAGE);
    for (key, value) in form_urlencoded(query) {
        let slot = match key.as_str() {
            "page" => &mut number,
            "per_page" => &mut per_page,
            _ => continue,
        };
        *slot = match value.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(ApiError::BadRequest(format!("{key} must be a positive integer"))),
        };
    }
    Ok(Page::new(number, per_page.min(MAX_PER_PAGE)))
}

fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

/// `200 OK` with the page's rows as a JSON array and the pagination headers.
pub fn respond<T: Serialize>(req: &HttpRequest, page: Page, listed: Listed<T>) -> HttpResponse {
    let pages = page.pages(listed.total);
    let n = page.number();
    let next = (n < pages).then_some(n + 1);
    let prev = (n > 1).then(|| (n - 1).min(pages));
    let mut res = HttpResponse::Ok();
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for (name, value) in [
        ("x-total", listed.total.to_string()),
        ("x-total-pages", pages.to_string()),
        ("x-page", n.to_string()),
        ("x-per-page", page.per_page().to_string()),
        ("x-next-page", opt(next)),
        ("x-prev-page", opt(prev)),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.insert_header((HeaderName::from_static(name), value));
        }
    }
    let mut links = Vec::new();
    for (rel, target) in [("next", next), ("prev", prev), ("first", Some(1)), ("last", Some(pages))] {
        if let Some(target) = target {
            links.push(format!("<{}>; rel=\"{rel}\"", page_url(req, target, page.per_page())));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        res.insert_header((LINK, value));
    }
    res.json(listed.items)
}

/// The request's own absolute URL with `page` and `per_page` set and every other query
/// parameter kept in order.
fn page_url(req: &HttpRequest, number: u64, per_page: u64) -> String {
    let info = req.connection_info();
    let mut pairs: Vec<(String, String)> =
        form_urlencoded(req.query_string()).into_iter().filter(|(k, _)| k != "page" && k != "per_page").collect();
    pairs.push(("page".into(), number.to_string()));
    pairs.push(("per_page".into(), per_page.to_string()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{}://{}{}?{query}", info.scheme(), info.host(), req.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn page_and_per_page_are_validated_and_clamped() {
        assert_eq!(parse("").unwrap(), Page::new(1, 20));
        assert_eq!(parse("page=3&per_page=500&search=x").unwrap(), Page::new(3, 100));
        for bad in ["page=0", "page=-1", "per_page=abc", "per_page=0", "page=1.5"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_name_the_neighbouring_pages() {
        let req = TestRequest::get().uri("/api/v1/projects?search=a%20b&page=2&per_page=2").to_http_request();
        let items: Vec<u32> = vec![3, 4];
        let res = respond(&req, Page::new(2, 2), Listed { total: 5, items });
        let h = |n: &str| res.headers().get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!((h("x-total"), h("x-total-pages"), h("x-page")), ("5".into(), "3".into(), "2".into()));
        assert_eq!((h("x-next-page"), h("x-prev-page"), h("x-per-page")), ("3".into(), "1".into(), "2".into()));
        let link = h("link");
        assert!(link.contains("/api/v1/projects?search=a+b&page=3&per_page=2>; rel=\"next\""), "{link}");
        assert!(link.contains("page=1&per_page=2>; rel=\"first\""), "{link}");
        assert!(link.contains("page=3&per_page=2>; rel=\"last\""), "{link}");
        let last = respond(&req, Page::new(3, 2), Listed { total: 5, items: vec![5] });
        assert_eq!(last.headers().get("x-next-page").unwrap(), "");
        assert!(!last.headers().get("link").unwrap().to_str().unwrap().contains("rel=\"next\""));
    }
}
