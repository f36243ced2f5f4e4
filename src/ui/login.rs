//! `GET/POST /ui/login` and `POST /ui/logout`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::session::{self, Fields};
use crate::app::AppState;
use crate::service::{console, now};

fn form(status: StatusCode, error: Option<&str>) -> HttpResponse {
    super::page(
        status,
        "Sign in",
        None,
        html! {
            h1 { "Sign in to the jobtoken console" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/ui/login" {
                label for="token" { "Personal access token (or the admin token)" }
                input #token type="password" name="token" autocomplete="off" required;
                p.muted { "The token is checked once; the console keeps a session, not the token." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match session::signed(&req, &state).await {
        Some(_) => super::see_other("/ui/"),
        None => form(StatusCode::OK, None),
    }
}

/// Opens a session for a valid token; anything else gets one message that says nothing about
/// which part was wrong.
/// A sign-in posted from another site (login CSRF: signing the victim in as someone else) is
/// refused where the browser says so (`Sec-Fetch-Site`); the session cookie is `SameSite=Strict`.
pub async fn submit(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let site = req.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return form(StatusCode::FORBIDDEN, Some("Sign in from this page."));
    }
    let fields = Fields::parse(&body);
    let token = fields.one("token").unwrap_or_default().trim();
    if token.is_empty() {
        return form(StatusCode::UNAUTHORIZED, Some("Sign-in failed: the token is not valid."));
    }
    // A new sign-in replaces the session this browser had (no fixation, no orphan).
    if let Some(old) = session::cookie(&req, session::COOKIE) {
        if let Err(e) = console::sign_out(&state.store, old).await {
            log::error!("console sign-in could not end the previous session: {e}");
        }
    }
    // With split listeners the admin token signs in on the admin listener only; on the public
    // one it is just not a valid token.
    let admin_hash = crate::http::listeners::admin_token_accepted(&req).then_some(&state.admin_hash);
    match console::sign_in(&state.store, admin_hash, token, now()).await {
        Ok(Some(id)) => {
            let mut res = super::see_other("/ui/");
            session::start(&mut res, &state, id.expose());
            res
        }
        Ok(None) => form(StatusCode::UNAUTHORIZED, Some("Sign-in failed: the token is not valid.")),
        Err(e) => {
            log::error!("console sign-in failed: {e}");
            form(StatusCode::SERVICE_UNAVAILABLE, Some("Sign-in is not available right now. Try again later."))
        }
    }
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let signed = match session::posted(&req, &state, &body).await {
        Ok((signed, _)) => signed,
        Err(res) => return res,
    };
    if let Err(e) = console::sign_out(&state.store, &signed.id).await {
        log::error!("console sign-out failed: {e}");
    }
    let mut res = super::see_other("/ui/login");
    session::end(&mut res, &state);
    res
}
