//! Health, metrics and key management.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::Admin;
use crate::app::AppState;
use crate::error::ApiError;
use crate::service::now;
use crate::signing::KeyRingError;
use crate::store::db;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready when the database answers and an active signing key is loaded.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.run(|c| c.query_one("SELECT 1", db::params![])?.get::<i64>(0)).await.is_ok();
    // The key ring always holds an active key; ready means it can still sign.
    let key = state.keys.active().sign(b"readiness").is_ok();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": word(database && key),
        "checks": { "database": word(database), "signing_key": word(key) },
    });
    match database && key {
        true => HttpResponse::Ok().json(body),
        false => HttpResponse::ServiceUnavailable().json(body),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}

pub async fn list_keys(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.list(&state.store).await?;
    Ok(HttpResponse::Ok().json(keys))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateQuery {
    #[serde(default)]
    force: bool,
}

/// Rotates now. Refused (409) while the next key is younger than the JWKS cache lifetime,
/// unless `?force=true`.
pub async fn rotate_keys(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<RotateQuery>,
) -> Result<HttpResponse, ApiError> {
    let (ring, store, force) = (state.keys.clone(), state.store.clone(), query.force);
    let rotated = web::block(move || ring.rotate_manual(&store, force, now()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    match rotated {
        Ok(()) => {}
        Err(e @ KeyRingError::TooSoon { .. }) => return Err(ApiError::Conflict(e.to_string())),
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    }
    let keys = state.keys.list(&state.store).await?;
    Ok(HttpResponse::Ok().json(keys))
}
