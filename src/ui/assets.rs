//! Static assets, embedded in the binary and served with long cache lifetimes (their URLs carry
//! the crate version, so a new release gets new URLs).

use actix_web::http::header;
use actix_web::HttpResponse;

/// Where the assets live.
pub const PREFIX: &str = "/ui/assets/";

/// The stylesheet's URL.
pub const CSS_PATH: &str = concat!("/ui/assets/console.css?v=", env!("CARGO_PKG_VERSION"));

const CSS: &str = include_str!("console.css");

pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(CSS)
}
