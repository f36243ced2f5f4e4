//! `/api/v1/{projects,groups}/{id}/job_token_scope…`: inbound allowlists, outbound entries,
//! settings, the authorization log and autopopulate (SPEC §4.3–§4.5). Each handler parses its
//! input, calls one use case of [`crate::service::job_token_scope`] and renders the answer.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::auth::Actor;
use super::input::nullable;
use super::page::{self, Pagination};
use super::refs::{GroupRef, ProjectRef};
use crate::app::AppState;
use crate::domain::{GroupId, ProjectId, ScopeSet};
use crate::error::ApiError;
use crate::service::job_token_scope::{
    self as service, GroupChange, ProjectChange, ScopeError, ShownEntry, ShownOutbound,
};
use crate::service::now;
use crate::store::allowlist::{EntryScopes, Node};

type Reply = Result<HttpResponse, ApiError>;

/// The one mapping of the use case's refusals to the API's error shape.
impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        match e {
            ScopeError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ScopeError::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            ScopeError::ElevationForbidden { .. }
            | ScopeError::AllowlistEnforced
            | ScopeError::OwnProjectAsSource
            | ScopeError::OwnProjectAsTarget => ApiError::Conflict(e.to_string()),
            ScopeError::AllowlistFull { .. } | ScopeError::CannotAutopopulate(_) | ScopeError::SubComponents(_) => {
                ApiError::Unprocessable(e.to_string())
            }
            ScopeError::Store(e) => e.into(),
        }
    }
}

fn parse_scopes(names: &[String]) -> Result<ScopeSet, ApiError> {
    names.iter().map(|n| n.parse()).collect::<Result<ScopeSet, _>>().map_err(|e| ApiError::Unprocessable(e.to_string()))
}

// ---- settings ----

pub async fn get_project(actor: Actor, state: web::Data<AppState>, id: ProjectRef) -> Reply {
    let view = service::project_settings_of(&state.store, actor, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default, deserialize_with = "nullable")]
    inbound_enabled: Option<Option<bool>>,
    outbound_enabled: Option<bool>,
    job_token_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    id_token_sub_claim_components: Option<Option<Vec<String>>>,
}

pub async fn patch_project(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    body: web::Json<ProjectPatch>,
) -> Reply {
    let change = ProjectChange {
        inbound_enabled: body.inbound_enabled,
        outbound_enabled: body.outbound_enabled,
        job_token_scopes: body.job_token_scopes.as_deref().map(parse_scopes).transpose()?,
        id_token_sub_claim_components: body.id_token_sub_claim_components.clone(),
    };
    let view = service::change_project_settings(&state.store, actor, id.into_inner(), change, now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

pub async fn get_group(actor: Actor, state: web::Data<AppState>, id: GroupRef) -> Reply {
    let view = service::group_settings_of(&state.store, actor, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    #[serde(default, deserialize_with = "nullable")]
    inbound_enabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    job_token_elevation_allowed: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    id_token_sub_claim_components: Option<Option<Vec<String>>>,
}

pub async fn patch_group(actor: Actor, state: web::Data<AppState>, id: GroupRef, body: web::Json<GroupPatch>) -> Reply {
    let change = GroupChange {
        inbound_enabled: body.inbound_enabled,
        job_token_elevation_allowed: body.job_token_elevation_allowed,
        id_token_sub_claim_components: body.id_token_sub_claim_components.clone(),
    };
    let view = service::change_group_settings(&state.store, actor, id.into_inner(), change, now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

// ---- allowlist entries ----

/// An entry as the API shows it.
fn entry_view(shown: &ShownEntry) -> serde_json::Value {
    let entry = &shown.entry;
    let mut v = json!({
        "source_path": shown.source_path,
        "scopes": entry.scopes.map(|s| s.names()),
        "default_permissions": entry.scopes.is_none(),
        "autopopulated": entry.autopopulated,
        "added_by": entry.added_by,
        "created_at": crate::domain::time::rfc3339(entry.created_at),
    });
    match entry.source {
        Node::Project(id) => v["source_project_id"] = json!(id),
        Node::Group(id) => v["source_group_id"] = json!(id),
    }
    v
}

/// `{"scopes"?, "default_permissions"?}`: neither means default permissions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    source_project_id: Option<ProjectId>,
    source_group_id: Option<GroupId>,
    scopes: Option<Vec<String>>,
    default_permissions: Option<bool>,
}

impl EntryBody {
    fn grant(&self) -> Result<EntryScopes, ApiError> {
        match (&self.scopes, self.default_permissions) {
            (Some(_), Some(true)) => {
                Err(ApiError::Unprocessable("give scopes or default_permissions: true, not both".into()))
            }
            (Some(names), _) if names.is_empty() => Err(ApiError::Unprocessable("scopes must not be empty".into())),
            (Some(names), _) => Ok(Some(parse_scopes(names)?)),
            (None, Some(false)) => Err(ApiError::Unprocessable("give scopes when default_permissions is false".into())),
            (None, _) => Ok(None),
        }
    }
}

fn project_source(body: &EntryBody) -> Result<Node, ApiError> {
    match (body.source_project_id, body.source_group_id) {
        (Some(id), None) => Ok(Node::Project(id)),
        _ => Err(ApiError::Unprocessable("give source_project_id".into())),
    }
}

fn group_source(body: &EntryBody) -> Result<Node, ApiError> {
    match (body.source_group_id, body.source_project_id) {
        (Some(id), None) => Ok(Node::Group(id)),
        _ => Err(ApiError::Unprocessable("give source_group_id".into())),
    }
}

fn no_source(body: &EntryBody) -> Result<(), ApiError> {
    match body.source_project_id.is_some() || body.source_group_id.is_some() {
        true => Err(ApiError::Unprocessable("the source is named in the path".into())),
        false => Ok(()),
    }
}

/// The source segment of an entry route (`{source_project_id}` or `{source_group_id}`).
#[derive(Deserialize)]
pub struct SourcePath {
    source_project_id: Option<i64>,
    source_group_id: Option<i64>,
}

impl SourcePath {
    fn id(&self) -> i64 {
        self.source_project_id.or(self.source_group_id).unwrap_or_default()
    }
}

/// The `{target_id}` segment of an outbound route.
#[derive(Deserialize)]
pub struct TargetPath {
    target_id: i64,
}

/// Declares the list/add/update/remove handlers for one (owner kind, source kind) pair.
macro_rules! entry_handlers {
    ($list:ident, $get:ident, $add:ident, $update:ident, $remove:ident, $owner:ident, $by:ident, $source:ident, $kind:literal, $pick:ident) => {
        pub async fn $get(actor: Actor, state: web::Data<AppState>, owner: $by, path: web::Path<SourcePath>) -> Reply {
            let (owner, source) = (Node::$owner(owner.into_inner()), Node::$source(path.id()));
            Ok(HttpResponse::Ok().json(entry_view(&service::entry(&state.store, actor, owner, source).await?)))
        }

        pub async fn $list(
            actor: Actor,
            state: web::Data<AppState>,
            req: HttpRequest,
            id: $by,
            Pagination(p): Pagination,
        ) -> Reply {
            let listed = service::entries(&state.store, actor, Node::$owner(id.into_inner()), $kind, p).await?;
            Ok(page::respond(&req, p, listed.map(|e| entry_view(&e))))
        }

        pub async fn $add(actor: Actor, state: web::Data<AppState>, id: $by, body: web::Json<EntryBody>) -> Reply {
            let source = $pick(&body)?;
            let owner = Node::$owner(id.into_inner());
            let added = service::add_entry(&state.store, actor, owner, source, body.grant()?, now()).await?;
            Ok(HttpResponse::Created().json(entry_view(&added)))
        }

        pub async fn $update(
            actor: Actor,
            state: web::Data<AppState>,
            owner: $by,
            path: web::Path<SourcePath>,
            body: web::Json<EntryBody>,
        ) -> Reply {
            no_source(&body)?;
            if body.scopes.is_none() && body.default_permissions.is_none() {
                return Err(ApiError::Unprocessable("give scopes or default_permissions: true".into()));
            }
            let (owner, source) = (Node::$owner(owner.into_inner()), Node::$source(path.id()));
            let changed = service::change_entry(&state.store, actor, owner, source, body.grant()?, now()).await?;
            Ok(HttpResponse::Ok().json(entry_view(&changed)))
        }

        pub async fn $remove(
            actor: Actor,
            state: web::Data<AppState>,
            owner: $by,
            path: web::Path<SourcePath>,
        ) -> Reply {
            let (owner, source) = (Node::$owner(owner.into_inner()), Node::$source(path.id()));
            service::remove_entry(&state.store, actor, owner, source, now()).await?;
            Ok(HttpResponse::NoContent().finish())
        }
    };
}

entry_handlers!(list_pp, get_pp, add_pp, update_pp, remove_pp, Project, ProjectRef, Project, "project", project_source);
entry_handlers!(list_pg, get_pg, add_pg, update_pg, remove_pg, Project, ProjectRef, Group, "group", group_source);
entry_handlers!(list_gp, get_gp, add_gp, update_gp, remove_gp, Group, GroupRef, Project, "project", project_source);
entry_handlers!(list_gg, get_gg, add_gg, update_gg, remove_gg, Group, GroupRef, Group, "group", group_source);

// ---- outbound ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundBody {
    target_project_id: Option<ProjectId>,
    target_group_id: Option<GroupId>,
    scopes: Vec<String>,
}

/// An outbound entry as the API shows it.
fn outbound_view(shown: &ShownOutbound) -> serde_json::Value {
    let e = &shown.entry;
    let mut v = json!({ "target_path": shown.target_path, "scopes": e.scopes,
                        "created_at": crate::domain::time::rfc3339(e.created_at) });
    match e.target {
        Node::Project(id) => v["target_project_id"] = json!(id),
        Node::Group(id) => v["target_group_id"] = json!(id),
    }
    v
}

pub async fn list_outbound(
    actor: Actor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: ProjectRef,
    Pagination(p): Pagination,
) -> Reply {
    let listed = service::outbound(&state.store, actor, id.into_inner(), p).await?;
    Ok(page::respond(&req, p, listed.map(|e| outbound_view(&e))))
}

pub async fn add_outbound(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    body: web::Json<OutboundBody>,
) -> Reply {
    let id = id.into_inner();
    let target = match (body.target_project_id, body.target_group_id) {
        (Some(p), None) => Node::Project(p),
        (None, Some(g)) => Node::Group(g),
        _ => return Err(ApiError::Unprocessable("give target_project_id or target_group_id".into())),
    };
    if target == Node::Project(id) {
        return Err(ScopeError::OwnProjectAsTarget.into());
    }
    let scopes = parse_scopes(&body.scopes)?;
    if scopes.is_empty() {
        return Err(ApiError::Unprocessable("scopes must not be empty".into()));
    }
    let added = service::add_outbound(&state.store, actor, id, target, scopes, now()).await?;
    Ok(HttpResponse::Created().json(added.as_ref().map(outbound_view)))
}

pub async fn get_outbound_project(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    path: web::Path<TargetPath>,
) -> Reply {
    let entry = service::outbound_entry(&state.store, actor, id.into_inner(), Node::Project(path.target_id)).await?;
    Ok(HttpResponse::Ok().json(outbound_view(&entry)))
}

pub async fn get_outbound_group(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    path: web::Path<TargetPath>,
) -> Reply {
    let entry = service::outbound_entry(&state.store, actor, id.into_inner(), Node::Group(path.target_id)).await?;
    Ok(HttpResponse::Ok().json(outbound_view(&entry)))
}

pub async fn remove_outbound_project(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    path: web::Path<TargetPath>,
) -> Reply {
    service::remove_outbound(&state.store, actor, id.into_inner(), Node::Project(path.target_id), now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_outbound_group(
    actor: Actor,
    state: web::Data<AppState>,
    id: ProjectRef,
    path: web::Path<TargetPath>,
) -> Reply {
    service::remove_outbound(&state.store, actor, id.into_inner(), Node::Group(path.target_id), now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- authorization log and autopopulate ----

pub async fn authorizations(
    actor: Actor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: ProjectRef,
    Pagination(p): Pagination,
) -> Reply {
    let listed = service::authorizations(&state.store, actor, id.into_inner(), p).await?;
    Ok(page::respond(&req, p, listed))
}

/// Turns the authorization log into autopopulated allowlist entries (see [`service::autopopulate`]).
pub async fn autopopulate(actor: Actor, state: web::Data<AppState>, id: ProjectRef) -> Reply {
    let added = service::autopopulate(&state.store, &state.authlog, actor, id.into_inner(), now()).await?;
    Ok(HttpResponse::Ok().json(json!({ "added": added.iter().map(entry_view).collect::<Vec<_>>() })))
}

pub async fn remove_autopopulated(actor: Actor, state: web::Data<AppState>, id: ProjectRef) -> Reply {
    service::remove_autopopulated(&state.store, actor, id.into_inner(), now()).await?;
    Ok(HttpResponse::NoContent().finish())
}
