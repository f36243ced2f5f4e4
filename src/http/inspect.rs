//! `POST /api/v1/tokens/inspect`: why is this token refused?

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Actor;
use crate::app::AppState;
use crate::error::ApiError;
use crate::service::inspect::{self, InspectError, InspectRequest};
use crate::service::now;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectBody {
    token: String,
    /// A project id (number) or full path (string); goes with `scope`.
    project: Option<Value>,
    scope: Option<String>,
}

impl From<InspectError> for ApiError {
    fn from(e: InspectError) -> Self {
        match e {
            InspectError::Malformed(_) => ApiError::BadRequest(e.to_string()),
            InspectError::Unverifiable | InspectError::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            InspectError::NotFound => ApiError::NotFound(e.to_string()),
            InspectError::Store(e) => e.into(),
        }
    }
}

pub async fn inspect(
    actor: Actor,
    state: web::Data<AppState>,
    body: web::Json<InspectBody>,
) -> Result<HttpResponse, ApiError> {
    let InspectBody { token, project, scope } = body.into_inner();
    let target = match (project, scope) {
        (Some(project), Some(scope)) => Some((super::decision::target(&project)?, super::decision::scope(&scope)?)),
        (None, None) => None,
        _ => return Err(ApiError::Unprocessable("project and scope are given together, or neither".into())),
    };
    let inspection = inspect::inspect(state.deps(), actor, InspectRequest { token, target }, now()).await?;
    Ok(crate::error::no_store(&mut HttpResponse::Ok()).json(inspection))
}
