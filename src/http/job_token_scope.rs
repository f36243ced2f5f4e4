//! `/api/v1/projects/{id}/job_token_scope`: a project's own job token settings.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use crate::app::AppState;
use crate::domain::{ProjectId, ScopeSet};
use crate::error::ApiError;
use crate::policy::{self, ElevationBlock};
use crate::store::namespaces::{self, Group, Project};
use crate::store::{atomic, settings, Result as StoreResult};

#[derive(Serialize)]
pub struct ProjectScopeView {
    /// Effective: is the inbound allowlist in force for this project?
    inbound_enabled: bool,
    /// The project's explicit setting; `null` inherits.
    inbound_setting: Option<bool>,
    outbound_enabled: bool,
    job_token_scopes: ScopeSet,
}

/// A project with its groups (nearest first) and the instance settings.
struct Loaded {
    project: Project,
    groups: Vec<Group>,
    settings: settings::InstanceSettings,
}

fn load(conn: &rusqlite::Connection, id: ProjectId) -> StoreResult<Loaded> {
    let project = namespaces::get_project(conn, id)?;
    let namespace = namespaces::get_group(conn, project.namespace_id)?;
    let groups = namespaces::groups_nearest_first(conn, &namespace.traversal_ids)?;
    Ok(Loaded { project, groups, settings: settings::get(conn)? })
}

fn view(l: &Loaded) -> ProjectScopeView {
    let group_settings: Vec<Option<bool>> = l.groups.iter().map(|g| g.inbound_enabled).collect();
    ProjectScopeView {
        inbound_enabled: policy::inbound_in_force(
            l.settings.enforce_job_token_allowlist,
            l.project.inbound_enabled,
            &group_settings,
        ),
        inbound_setting: l.project.inbound_enabled,
        outbound_enabled: l.project.outbound_enabled,
        job_token_scopes: l.project.job_token_scopes.unwrap_or_else(ScopeSet::default_set),
    }
}

pub async fn get(_: Admin, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let loaded = state.store.run(move |c| load(c, id)).await?;
    Ok(HttpResponse::Ok().json(view(&loaded)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    job_token_scopes: Option<Vec<String>>,
}

pub async fn update(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
    body: web::Json<Patch>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let scopes: Option<ScopeSet> = body
        .job_token_scopes
        .as_ref()
        .map(|names| names.iter().map(|n| n.parse()).collect::<Result<ScopeSet, _>>())
        .transpose()
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let loaded = state
        .store
        .run(move |c| {
            atomic(c, |tx| {
                let loaded = load(tx, id)?;
                let Some(scopes) = scopes else { return Ok(Ok(loaded)) };
                if let Err(block) = elevation_check(&loaded, scopes) {
                    return Ok(Err(block));
                }
                namespaces::set_job_token_scopes(tx, id, scopes)?;
                Ok(Ok(load(tx, id)?))
            })
        })
        .await?
        .map_err(ApiError::Conflict)?;
    Ok(HttpResponse::Ok().json(view(&loaded)))
}

/// Refuses elevated scopes while elevation is forbidden, naming the level that forbids it.
fn elevation_check(l: &Loaded, scopes: ScopeSet) -> Result<(), String> {
    let elevated = scopes.intersect(ScopeSet::elevated());
    if elevated.is_empty() {
        return Ok(());
    }
    let groups = l.groups.iter().map(|g| (g.id, g.job_token_elevation_allowed));
    match policy::elevation_allowed(l.settings.job_token_elevation_allowed, groups) {
        Ok(()) => Ok(()),
        Err(block) => {
            let level = match block {
                ElevationBlock::Instance => "the instance".to_owned(),
                ElevationBlock::Group(id) => {
                    let path = l.groups.iter().find(|g| g.id == id).map_or(String::new(), |g| g.full_path.clone());
                    format!("group {path}")
                }
            };
            Err(format!(
                "elevated job token scopes ({}) are not allowed: {level} forbids them (job_token_elevation_allowed = false)",
                elevated.names().join(", ")
            ))
        }
    }
}
