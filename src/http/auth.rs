//! Credentials at the edge: the admin bearer token and OAuth client authentication
//! (HTTP Basic per RFC 6749 §2.3.1, or client_secret_post).

use std::future::{ready, Ready};

use actix_web::http::header;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::form::{form_unescape, Form};
use crate::app::AppState;
use crate::error::{ApiError, OAuthError};
use crate::secret;

/// The `Authorization: Bearer` value, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// True when the request carries the admin token (compared in constant time).
pub fn is_admin(req: &HttpRequest, state: &AppState) -> bool {
    bearer(req).is_some_and(|token| secret::verify(token, Some(&state.admin_hash)))
}

/// Extractor: the request is authenticated with the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ok = req.app_data::<web::Data<AppState>>().is_some_and(|state| is_admin(req, state));
        ready(if ok { Ok(Admin) } else { Err(ApiError::Unauthorized) })
    }
}

pub use crate::service::clients::{authenticate as authenticate_client, Client, ClientCredentials};

/// Reads client credentials from HTTP Basic or the form. Using both methods at once is
/// `invalid_request` (RFC 6749 §2.3); none is `Ok(None)`.
pub fn client_credentials(req: &HttpRequest, form: &Form) -> Result<Option<ClientCredentials>, OAuthError> {
    let basic = basic_credentials(req)?;
    let posted_id = form.one("client_id")?;
    let posted_secret = form.one("client_secret")?;
    match (basic, posted_id, posted_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request("use one client authentication method, not two")),
        (Some(creds), Some(id), None) if id != creds.client_id => {
            Err(OAuthError::invalid_request("client_id does not match the authenticated client"))
        }
        (Some(creds), _, None) => Ok(Some(creds)),
        (None, Some(id), Some(secret)) => {
            Ok(Some(ClientCredentials { client_id: id.to_owned(), secret: secret.to_owned() }))
        }
        (None, _, _) => Ok(None),
    }
}

fn basic_credentials(req: &HttpRequest) -> Result<Option<ClientCredentials>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(OAuthError::invalid_client()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(OAuthError::invalid_client)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    let unescape = |s: &str| form_unescape(s).ok_or_else(OAuthError::invalid_client);
    Ok(Some(ClientCredentials { client_id: unescape(id)?, secret: unescape(secret)? }))
}

/// HTTP Basic client credentials outside the OAuth endpoints (a runner finishing its job).
pub fn client_credentials_basic(req: &HttpRequest) -> Option<ClientCredentials> {
    basic_credentials(req).ok().flatten()
}

/// Who edits job token scope settings: the admin, or a user by personal access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Admin,
    User(crate::domain::UserId),
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Actor, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req).map(str::to_owned);
        let admin = state.as_ref().is_some_and(|s| is_admin(req, s));
        Box::pin(async move {
            if admin {
                return Ok(Actor::Admin);
            }
            let (Some(state), Some(token)) = (state, token) else { return Err(ApiError::Unauthorized) };
            let user =
                crate::service::credentials::authenticate_pat(&state.store, &token, crate::service::now()).await?;
            user.map(Actor::User).ok_or(ApiError::Unauthorized)
        })
    }
}
