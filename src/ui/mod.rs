//! The web console (issue 10): server-rendered pages under `/ui/` for the people who set job
//! token permissions. Handlers are as thin as the API's: extract → call the same service
//! function the API handler calls → render. Templates are `maud` (compiled, escaping every
//! interpolated value by default); the one stylesheet is embedded in the binary.
//!
//! Security invariants, for every `/ui/` response ([`headers`]): a strict
//! `Content-Security-Policy` (no script at all, no framing, forms only to this origin),
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and `Cache-Control:
//! no-store` on everything but the assets. Every state-changing form carries the session's CSRF
//! token ([`session::Signed::refuse_without_csrf`]); a POST without it is a 403 before anything is read.

pub mod admin;
pub mod assets;
pub mod groups;
pub mod home;
pub mod login;
pub mod project;
pub mod session;
pub mod tokens;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

use session::Signed;

/// Every console path starts with this.
pub const PREFIX: &str = "/ui";

/// The console's Content-Security-Policy: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Middleware: the security headers of every `/ui` response, the error pages included.
pub async fn headers<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    // The path the router matches (percent-decoded): `/%75i/login` is a console page too.
    let path = req.match_info().as_str();
    let console = path == PREFIX || path.starts_with("/ui/");
    let asset = path.starts_with(assets::PREFIX);
    let mut res = next.call(req).await?;
    if console {
        let h = res.headers_mut();
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !asset {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    Ok(res)
}

/// An HTML page with `status`.
pub fn page(status: StatusCode, title: &str, signed: Option<&Signed>, body: Markup) -> HttpResponse {
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(layout(title, signed, body).into_string())
}

/// A 303 to `location` (a path of this console).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// An error page: `message` is safe to show (a service's refusal, never an internal cause).
pub fn error_page(status: StatusCode, signed: Option<&Signed>, message: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Error");
    page(
        status,
        title,
        signed,
        html! {
            h1 { (title) }
            p.error role="alert" { (message) }
            p { a href="/ui/" { "Back to your projects" } }
        },
    )
}

/// The frame of every page: a skip link, the header with sign-out, and `body` as the main part.
fn layout(title: &str, signed: Option<&Signed>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · jobtoken" }
                link rel="stylesheet" href=(assets::CSS_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "jobtoken" }
                    @if let Some(signed) = signed {
                        nav aria-label="Console" {
                            a href="/ui/tokens" { "Token inspector" }
                            @if signed.session.actor == crate::service::editor::Actor::Admin {
                                @for (href, label) in admin::PAGES { " " a href=(href) { (label) } }
                            }
                        }
                        span.who { "Signed in as " strong { (signed.display_name()) } }
                        form.inline method="post" action="/ui/logout" {
                            (csrf_field(signed))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(session::CSRF_FIELD) value=(signed.session.csrf); }
}

/// A flash message shown once after a redirect.
pub fn flash(signed: &Signed) -> Markup {
    html! {
        @if let Some(message) = &signed.flash {
            p.flash role="status" { (message) }
        }
    }
}

/// Previous/next links for page `number` of a list of `total` rows, `per_page` a page, at
/// `base`; `kept` is the rest of the query string (the list's filters, URL-encoded), which the
/// links keep.
pub fn pager(base: &str, kept: &str, number: u64, per_page: u64, total: u64) -> Markup {
    let pages = total.div_ceil(per_page.max(1)).max(1);
    let href = |n: u64| match kept.is_empty() {
        true => format!("{base}?page={n}"),
        false => format!("{base}?{kept}&page={n}"),
    };
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if number > 1 { a rel="prev" href=(href(number - 1)) { "Previous" } " " }
                span { "Page " (number) " of " (pages) }
                @if number < pages { " " a rel="next" href=(href(number + 1)) { "Next" } }
            }
        }
    }
}
