//! `POST /api/v1/job_token/authorize`: the live cross-project decision for resource servers.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{ApiCaller, Client};
use crate::app::AppState;
use crate::domain::Scope;
use crate::error::ApiError;
use crate::service::decision::{self, TargetRef};
use crate::service::now;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    token: String,
    /// A project id (number) or full path (string).
    project: Value,
    scope: String,
}

/// Resource servers (HTTP Basic) and the admin may ask (the middleware authenticated them);
/// returns the asker's audience (none for the admin).
fn may_ask(caller: &ApiCaller) -> Result<Vec<String>, ApiError> {
    match caller {
        ApiCaller::Admin => Ok(Vec::new()),
        ApiCaller::Client(Client::ResourceServer(server)) => Ok(server.audience.clone()),
        _ => Err(ApiError::Unauthorized),
    }
}

pub async fn authorize(
    caller: ApiCaller,
    state: web::Data<AppState>,
    body: web::Json<AuthorizeBody>,
) -> Result<HttpResponse, ApiError> {
    let audience = may_ask(&caller)?;
    let scope = scope(&body.scope)?;
    let target = target(&body.project)?;
    let answer = decision::authorize(state.deps(), &audience, &body.token, target, scope, now()).await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// A scope name; unknown ones are 422.
pub(super) fn scope(name: &str) -> Result<Scope, ApiError> {
    name.parse().map_err(|e: crate::domain::UnknownScope| ApiError::Unprocessable(e.to_string()))
}

/// A project named by id (a JSON number) or full path (a non-empty string); anything else is 422.
pub(super) fn target(project: &Value) -> Result<TargetRef, ApiError> {
    match project {
        Value::Number(n) => n.as_i64().map(TargetRef::Id),
        Value::String(s) if !s.is_empty() => Some(TargetRef::Path(s.clone())),
        _ => None,
    }
    .ok_or_else(|| ApiError::Unprocessable("project must be a project id or a full path".into()))
}
