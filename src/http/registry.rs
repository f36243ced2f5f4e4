//! `GET /jwt/auth` (the container registry token service, at the path GitLab uses) and
//! `GET /api/v1/keys/registry_bundle.pem` (the registry's `rootcertbundle`).

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

use super::auth::Admin;
use crate::app::AppState;
use crate::error::ApiError;
use crate::policy::registry::{ResourceScope, MAX_SCOPES};
use crate::service::now;
use crate::service::registry::{self, Credential, RegistryError};

/// The distribution token spec's request: `service` once, `scope` any number of times (each may
/// hold several space-separated scopes); `account`, `client_id` and `offline_token` are ignored.
pub async fn auth(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (service, scopes) = match parse_query(req.query_string()) {
        Ok(parsed) => parsed,
        Err(message) => return refusal(StatusCode::BAD_REQUEST, "invalid_request", message),
    };
    let credential = match credential(&req, &state) {
        Some(credential) => credential,
        None => return unauthorized("the Authorization header must be HTTP Basic with a job token as password".into()),
    };
    match registry::issue(state.deps(), service, scopes, credential, now()).await {
        Ok(issued) => HttpResponse::Ok().insert_header(CacheControl(vec![CacheDirective::NoStore])).json(json!({
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": crate::domain::time::rfc3339(issued.issued_at),
        })),
        Err(e @ RegistryError::Inactive(_)) => unauthorized(e.to_string()),
        Err(e @ RegistryError::UnknownService(_)) => refusal(StatusCode::BAD_REQUEST, "unknown_service", e.to_string()),
        Err(e @ RegistryError::UnsupportedAlg(_)) => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, "unsupported_signing_key", e.to_string())
        }
        Err(RegistryError::Key(cause)) => ApiError::Internal(cause).error_response(),
        Err(RegistryError::Store(e)) => ApiError::from(e).error_response(),
    }
}

fn parse_query(query: &str) -> Result<(String, Vec<ResourceScope>), String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| format!("invalid query string: {e}"))?;
    let mut service = None;
    let mut scopes = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "service" if service.is_some() => return Err("service must be given once".into()),
            "service" if value.is_empty() => return Err("service must not be empty".into()),
            "service" => service = Some(value),
            "scope" => {
                for raw in value.split(' ').filter(|s| !s.is_empty()) {
                    scopes.push(ResourceScope::parse(raw).map_err(|e| e.to_string())?);
                }
            }
            _ => {}
        }
    }
    if scopes.len() > MAX_SCOPES {
        return Err(format!("at most {MAX_SCOPES} scopes per request"));
    }
    let service = service.ok_or("service is required (the registry's auth.token.service)")?;
    Ok((service, scopes))
}

/// No Authorization header: anonymous. HTTP Basic: the password is the admin token or a job
/// token, the user name is anything (`gitlab-ci-token` by custom). Anything else: `None`.
fn credential(req: &HttpRequest, state: &AppState) -> Option<Credential> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Some(Credential::Anonymous) };
    let (scheme, encoded) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    match crate::secret::verify(password, Some(&state.admin_hash)) {
        true => Some(Credential::Admin),
        false => Some(Credential::JobToken(password.to_owned())),
    }
}

fn refusal(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({ "error": code, "message": message }))
}

fn unauthorized(message: String) -> HttpResponse {
    let mut res = refusal(StatusCode::UNAUTHORIZED, "unauthorized", message);
    res.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"jobtoken\""));
    res
}

/// The PEM bundle of certificates for every published key distribution can verify.
pub async fn bundle(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pem = state.keys.registry_bundle();
    if pem.is_empty() {
        return Err(ApiError::Conflict(
            "no published signing key is one distribution can verify (ES256 or RS256); run `jobtoken keys \
             set-algorithm ES256`"
                .into(),
        ));
    }
    Ok(HttpResponse::Ok().content_type("application/x-pem-file").body(pem.to_string()))
}
