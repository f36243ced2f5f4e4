//! Credentials at the edge: the admin bearer token and OAuth client authentication
//! (HTTP Basic per RFC 6749 §2.3.1, or client_secret_post).

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::access::Who;
use super::form::{form_unescape, Form};
use crate::app::AppState;
use crate::domain::UserId;
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

/// Every route under this prefix authenticates in [`authenticate_api`] before anything else.
pub const API_PREFIX: &str = "/api/v1/";

/// Who called an `/api/v1` route, authenticated once by [`authenticate_api`] and kept in the
/// request's extensions for the extractors below. Which kinds a route accepts is its own
/// decision (authorization); that the credential is valid is settled before routing.
pub enum ApiCaller {
    Admin,
    /// An active user, by personal access token.
    User(UserId),
    /// A runner or resource server, by HTTP Basic.
    Client(Client),
}

/// Middleware: an `/api/v1` request without a valid credential is a 401 before its path, query
/// or body is parsed, so malformed input never tells an anonymous caller what exists.
pub async fn authenticate_api<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    // The path the router matches (percent-decoded), not the raw one: `/%61pi/v1/…` is routed too.
    if !req.match_info().as_str().starts_with(API_PREFIX) {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let caller = match req.app_data::<web::Data<AppState>>().cloned() {
        Some(state) => api_caller(&state, req.request()).await,
        None => Err(ApiError::Unauthorized),
    };
    match caller {
        Ok((caller, who)) => {
            super::access::record(req.request(), who);
            req.extensions_mut().insert(caller);
            next.call(req).await.map(ServiceResponse::map_into_left_body)
        }
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

/// The admin token, an active user's personal access token, or a client's HTTP Basic
/// credentials; with who that is for the access log.
async fn api_caller(state: &AppState, req: &HttpRequest) -> Result<(ApiCaller, Who), ApiError> {
    if is_admin(req, state) {
        return Ok((ApiCaller::Admin, Who::Admin));
    }
    if let Some(token) = bearer(req) {
        let user = crate::service::credentials::authenticate_pat(&state.store, token, crate::service::now()).await?;
        return user.map(|id| (ApiCaller::User(id), Who::User(id))).ok_or(ApiError::Unauthorized);
    }
    let creds = client_credentials_basic(req).ok_or(ApiError::Unauthorized)?;
    let client_id = creds.client_id.clone();
    let client = authenticate_client(&state.store, &state.metrics, creds).await?.ok_or(ApiError::Unauthorized)?;
    Ok((ApiCaller::Client(client), Who::Client(client_id)))
}

pub(super) fn caller_of(req: &HttpRequest) -> Option<std::cell::Ref<'_, ApiCaller>> {
    std::cell::Ref::filter_map(req.extensions(), |ext| ext.get::<ApiCaller>()).ok()
}

/// Extractor: the caller [`authenticate_api`] authenticated (taken out of the request, so use it
/// once per handler).
impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = Ready<Result<ApiCaller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions_mut().remove::<ApiCaller>().ok_or(ApiError::Unauthorized))
    }
}

/// Extractor: the request is authenticated with the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ok = caller_of(req).is_some_and(|c| matches!(*c, ApiCaller::Admin));
        ready(if ok { Ok(Admin) } else { Err(ApiError::Unauthorized) })
    }
}

pub use crate::service::editor::Actor;

/// Extractor: an actor that may edit job token scope settings (the admin or a user).
impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let actor = caller_of(req).and_then(|c| match *c {
            ApiCaller::Admin => Some(Actor::Admin),
            ApiCaller::User(id) => Some(Actor::User(id)),
            ApiCaller::Client(_) => None,
        });
        ready(actor.ok_or(ApiError::Unauthorized))
    }
}
