//! `POST /api/v1/job_token/authorize`: the live cross-project decision for resource servers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{authenticate_client, client_credentials_basic, is_admin, Client};
use crate::app::AppState;
use crate::domain::{Scope, ScopeSet};
use crate::error::ApiError;
use crate::service::decision::{self, JobSide};
use crate::service::{live, now};
use crate::store::{namespaces, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    token: String,
    /// A project id (number) or full path (string).
    project: Value,
    scope: String,
}

/// Resource servers (HTTP Basic) and the admin may ask.
async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    if is_admin(req, state) {
        return Ok(());
    }
    let creds = client_credentials_basic(req).ok_or(ApiError::Unauthorized)?;
    match authenticate_client(state, &creds)? {
        Some(Client::ResourceServer(_)) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

fn denied(reason: String, source: Option<&str>, target: Option<&str>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "allowed": false, "reason": reason, "source_project": source, "target_project": target, "granted_scopes": [],
    }))
}

pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<AuthorizeBody>,
) -> Result<HttpResponse, ApiError> {
    authenticate(&state, &req).await?;
    let scope: Scope =
        body.scope.parse().map_err(|e: crate::domain::UnknownScope| ApiError::Unprocessable(e.to_string()))?;
    let target_ref = match &body.project {
        Value::Number(n) => n.as_i64().map(Target::Id),
        Value::String(s) if !s.is_empty() => Some(Target::Path(s.clone())),
        _ => None,
    }
    .ok_or_else(|| ApiError::Unprocessable("project must be a project id or a full path".into()))?;

    let at = now();
    let token = match live::live(&state, &body.token, at).await? {
        Ok(found) => found,
        Err(inactive) => {
            state.metrics.deny(inactive.reason());
            return Ok(denied(format!("the job token is not active: {inactive}"), None, None));
        }
    };
    let claims = token.claims;
    let job = JobSide { source: claims.project_id, user_id: claims.user_id, ref_protected: claims.ref_protected };
    let token_scopes = ScopeSet::parse_space_separated(&claims.scope).unwrap_or_default();
    let source_path = claims.project_path.clone();
    let decided = state.store.read(|c| {
        let target = match target_ref {
            Target::Id(id) => namespaces::get_project(c, id).map(Some).or_else(|e| match e {
                StoreError::NotFound(_) => Ok(None),
                e => Err(e),
            })?,
            Target::Path(path) => namespaces::find_project_by_path(c, &path)?,
        };
        let Some(target) = target else { return Ok(None) };
        let (allowed, reason) = if target.id == job.source {
            own_project(scope, token_scopes, &target.path_with_namespace)
        } else {
            let input = decision::load_input(c, &job, &target)?;
            let decision = crate::policy::decide_for(&input, scope);
            let granted = if decision.allows(scope) { decision.allowed } else { ScopeSet::EMPTY };
            (granted, decision.reason)
        };
        Ok(Some((target.id, target.path_with_namespace, allowed, reason)))
    })?;
    let Some((target_id, target_path, granted, reason)) = decided else {
        state.metrics.deny("target_not_found");
        return Ok(denied(format!("project {} does not exist", body.project), Some(&source_path), None));
    };
    let allowed = granted.contains(scope);
    if allowed && target_id != job.source {
        state.authlog.record(target_id, job.source, at);
    }
    if !allowed {
        state.metrics.deny("cross_project");
    }
    Ok(HttpResponse::Ok().json(json!({
        "allowed": allowed,
        "reason": reason,
        "source_project": source_path,
        "target_project": target_path,
        "granted_scopes": if allowed { granted.names() } else { Vec::new() },
    })))
}

enum Target {
    Id(i64),
    Path(String),
}

/// S = T: the token's own grant decides (SPEC §4.3 step 6).
fn own_project(scope: Scope, granted: ScopeSet, path: &str) -> (ScopeSet, String) {
    match granted.contains(scope) {
        true => (granted, format!("allowed: the job token of {path} carries {scope} on its own project")),
        false => (ScopeSet::EMPTY, format!("job token from {path} does not carry {scope} on its own project")),
    }
}
