//! Health, metrics and key management.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::Admin;
use crate::app::AppState;
use crate::error::ApiError;
use crate::keys::KeyFamily;
use crate::service::now;
use crate::service::ops::{self, RotateError};

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the database answers and an active signing key is loaded.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let readiness = ops::readiness(&state.store, &state.keys).await;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": word(readiness.ready()),
        "checks": { "database": word(readiness.database), "signing_key": word(readiness.signing_key) },
    });
    match readiness.ready() {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    family: Option<KeyFamily>,
}

/// Both families' keys (job-token keys first), or one family's with `?family=`.
pub async fn list_keys(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.list(&state.store, query.family).await?;
    Ok(HttpResponse::Ok().json(keys))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateQuery {
    #[serde(default)]
    force: bool,
    family: Option<KeyFamily>,
}

/// Rotates one family now (`?family=`, default `job`) and answers that family's keys. Refused
/// (409) while its next key is younger than the JWKS cache lifetime, unless `?force=true`.
pub async fn rotate_keys(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<RotateQuery>,
) -> Result<HttpResponse, ApiError> {
    let family = query.family.unwrap_or(KeyFamily::Job);
    let keys = ops::rotate(&state.keys, &state.store, family, query.force, now()).await?;
    Ok(HttpResponse::Ok().json(keys))
}

/// The one mapping of rotation refusals to the API's error shape.
impl From<RotateError> for ApiError {
    fn from(e: RotateError) -> Self {
        match e {
            RotateError::TooSoon(e) => ApiError::Conflict(e.to_string()),
            RotateError::Failed(e) => ApiError::Internal(e.to_string()),
            RotateError::Store(e) => e.into(),
        }
    }
}
