//! The console's session cookie, its CSRF check and the one-time flash message.
//!
//! The cookie carries the random session id (`HttpOnly; SameSite=Strict; Path=/ui`, `Secure`
//! when the server speaks HTTPS or its issuer is https); the server keeps only its hash and
//! re-checks the session on every request ([`crate::service::console::session`]).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::app::AppState;
use crate::service::console::{self, Session};
use crate::service::editor::Actor;
use crate::service::now;

/// The session cookie.
pub const COOKIE: &str = "jt_session";
/// The flash cookie: a message shown once after a redirect.
const FLASH: &str = "jt_flash";
/// The form field of the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A request with a live session.
pub struct Signed {
    pub session: Session,
    /// The session id from the cookie.
    pub id: String,
    /// The flash message the previous redirect left, if any.
    pub flash: Option<String>,
}

impl Signed {
    /// Who is signed in, for the header.
    pub fn display_name(&self) -> &str {
        match (&self.session.actor, &self.session.username) {
            (Actor::User(_), Some(name)) => name,
            _ => "the administrator",
        }
    }

    /// The 403 page for a form without this session's CSRF token; `None` when it has it.
    pub fn refuse_without_csrf(&self, form: &Fields) -> Option<HttpResponse> {
        match form.one(CSRF_FIELD) {
            Some(token) if console::csrf_matches(&self.session, token) => None,
            _ => Some(super::error_page(
                actix_web::http::StatusCode::FORBIDDEN,
                Some(self),
                "This form is missing its security token or it has expired. Reload the page and try again.",
            )),
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The live session of the request, or `None` (no cookie, unknown, expired, its token revoked,
/// its user blocked, an admin session on the public listener). A store failure reads as signed out, and is logged.
pub async fn signed(req: &HttpRequest, state: &web::Data<AppState>) -> Option<Signed> {
    let id = cookie(req, COOKIE)?.to_owned();
    let session = match console::session(&state.store, &state.admin_hash, &id, now()).await {
        Ok(found) => found?,
        Err(e) => {
            log::error!("console session lookup failed: {e}");
            return None;
        }
    };
    // An admin session is signed out on a listener that does not accept the admin token (the
    // public one when split): the browser sends the cookie to both ports of a host.
    if session.actor == Actor::Admin && !crate::http::listeners::admin_token_accepted(req) {
        return None;
    }
    let flash =
        cookie(req, FLASH).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok()).and_then(|bytes| String::from_utf8(bytes).ok());
    if let Actor::User(id) = session.actor {
        crate::http::access::record(req, crate::http::access::Who::User(id));
    } else {
        crate::http::access::record(req, crate::http::access::Who::Admin);
    }
    Some(Signed { session, id, flash })
}

/// Whether cookies get `Secure`: the server speaks HTTPS, or its issuer is https (behind a
/// TLS-terminating proxy).
fn secure(state: &AppState) -> bool {
    state.config.tls.is_some() || state.config.issuer.starts_with("https://")
}

fn set_cookie(res: &mut HttpResponse, state: &AppState, name: &str, value: &str, max_age: Option<i64>) {
    let mut c = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure(state) {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Sets the session cookie (a session cookie for the browser; the server enforces the lifetimes).
pub fn start(res: &mut HttpResponse, state: &AppState, id: &str) {
    set_cookie(res, state, COOKIE, id, None);
}

/// Clears the session cookie.
pub fn end(res: &mut HttpResponse, state: &AppState) {
    set_cookie(res, state, COOKIE, "", Some(0));
}

/// A 303 to `location` that shows `message` once there.
pub fn redirect_with(state: &AppState, location: &str, message: &str) -> HttpResponse {
    let mut res = super::see_other(location);
    set_cookie(&mut res, state, FLASH, &URL_SAFE_NO_PAD.encode(message.as_bytes()), Some(60));
    res
}

/// A page response that also clears the flash cookie it showed.
pub fn shown(mut res: HttpResponse, state: &AppState, signed: &Signed) -> HttpResponse {
    if signed.flash.is_some() {
        set_cookie(&mut res, state, FLASH, "", Some(0));
    }
    res
}

/// A URL-encoded form body: repeated fields (checkboxes) are kept in order.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses a form body; a malformed one is empty (its CSRF check then fails).
    pub fn parse(body: &[u8]) -> Fields {
        Fields(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The first value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The preamble of every console POST: a live session (else the sign-in page), then the form
/// with this session's CSRF token (else the 403), before anything else of the form is read.
/// `Err` is the response to send.
pub async fn posted(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    body: &[u8],
) -> Result<(Signed, Fields), HttpResponse> {
    let Some(signed) = signed(req, state).await else { return Err(to_login()) };
    with_csrf(signed, body)
}

/// The form of `signed`'s POST if it carries the session's CSRF token; `Err` is the 403.
// The `Err` is the response about to be sent, made at most once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
pub fn with_csrf(signed: Signed, body: &[u8]) -> Result<(Signed, Fields), HttpResponse> {
    let form = Fields::parse(body);
    match signed.refuse_without_csrf(&form) {
        Some(refused) => Err(refused),
        None => Ok((signed, form)),
    }
}

/// Signs in or sends to the sign-in page.
pub fn to_login() -> HttpResponse {
    super::see_other("/ui/login")
}
