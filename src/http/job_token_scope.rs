//! `/api/v1/{projects,groups}/{id}/job_token_scope…`: inbound allowlists, outbound entries,
//! settings, the authorization log and autopopulate (SPEC §4.3–§4.5).

use crate::store::Db;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Actor;
use super::input::nullable;
use crate::app::AppState;
use crate::domain::{GroupId, ProjectId, ScopeSet};
use crate::error::ApiError;
use crate::policy::{self, autopopulate, ElevationBlock};
use crate::service::{editor, now};
use crate::store::allowlist::{self, Entry, EntryScopes, Node, MAX_ENTRIES};
use crate::store::namespaces::{self, Group};
use crate::store::{atomic, settings, Result as StoreResult, StoreError};

type Reply = Result<HttpResponse, ApiError>;

/// Runs `f` after checking that `actor` may edit `owner`; everything in one transaction.
async fn edit<T, F>(state: &AppState, actor: Actor, owner: Node, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Db) -> StoreResult<Result<T, ApiError>> + Send + 'static,
{
    state
        .store
        .run(move |c| {
            atomic(c, |tx| match editor::may_edit(tx, actor, owner)? {
                Ok(_) => f(tx),
                Err(denied) => Ok(Err(denied)),
            })
        })
        .await?
}

/// The owner's groups, nearest first (a group owner's own group first).
fn owner_groups(conn: &Db, owner: Node) -> StoreResult<Vec<Group>> {
    let traversal = match owner {
        Node::Project(id) => {
            let p = namespaces::get_project(conn, id)?;
            namespaces::get_group(conn, p.namespace_id)?.traversal_ids
        }
        Node::Group(id) => namespaces::get_group(conn, id)?.traversal_ids,
    };
    namespaces::groups_nearest_first(conn, &traversal)
}

/// Refuses elevated scopes while elevation is forbidden for `owner`, naming the level (409).
fn check_elevation(conn: &Db, owner: Node, scopes: ScopeSet) -> StoreResult<Result<(), ApiError>> {
    let elevated = scopes.intersect(ScopeSet::elevated());
    if elevated.is_empty() {
        return Ok(Ok(()));
    }
    let groups = owner_groups(conn, owner)?;
    let instance = settings::get(conn)?.job_token_elevation_allowed;
    let level = match policy::elevation_allowed(instance, groups.iter().map(|g| (g.id, g.job_token_elevation_allowed)))
    {
        Ok(()) => return Ok(Ok(())),
        Err(ElevationBlock::Instance) => "the instance".to_owned(),
        Err(ElevationBlock::Group(id)) => {
            format!("group {}", groups.iter().find(|g| g.id == id).map_or("", |g| g.full_path.as_str()))
        }
    };
    Ok(Err(ApiError::Conflict(format!(
        "elevated job token scopes ({}) are not allowed: {level} forbids them (job_token_elevation_allowed = false)",
        elevated.names().join(", ")
    ))))
}

fn parse_scopes(names: &[String]) -> Result<ScopeSet, ApiError> {
    names.iter().map(|n| n.parse()).collect::<Result<ScopeSet, _>>().map_err(|e| ApiError::Unprocessable(e.to_string()))
}

// ---- settings ----

#[derive(Serialize)]
struct ProjectSettingsView {
    /// Effective: is the inbound allowlist in force?
    inbound_enabled: bool,
    /// The explicit setting; `null` inherits.
    inbound_setting: Option<bool>,
    outbound_enabled: bool,
    job_token_scopes: ScopeSet,
}

fn project_settings(conn: &Db, id: ProjectId) -> StoreResult<ProjectSettingsView> {
    let project = namespaces::get_project(conn, id)?;
    let groups = owner_groups(conn, Node::Project(id))?;
    let group_settings: Vec<Option<bool>> = groups.iter().map(|g| g.inbound_enabled).collect();
    let enforce = settings::get(conn)?.enforce_job_token_allowlist;
    Ok(ProjectSettingsView {
        inbound_enabled: policy::inbound_in_force(enforce, project.inbound_enabled, &group_settings),
        inbound_setting: project.inbound_enabled,
        outbound_enabled: project.outbound_enabled,
        job_token_scopes: project.job_token_scopes.unwrap_or_else(ScopeSet::default_set),
    })
}

#[derive(Serialize)]
struct GroupSettingsView {
    inbound_enabled: bool,
    inbound_setting: Option<bool>,
    /// The explicit setting; `null` inherits.
    job_token_elevation_allowed: Option<bool>,
    /// Effective: instance and every group up to the root allow elevated scopes.
    job_token_elevation_effective: bool,
}

fn group_settings(conn: &Db, id: GroupId) -> StoreResult<GroupSettingsView> {
    let groups = owner_groups(conn, Node::Group(id))?;
    let instance = settings::get(conn)?;
    let own = groups.first().ok_or_else(|| StoreError::NotFound(format!("group {id} not found")))?;
    let inherited: Vec<Option<bool>> = groups.iter().skip(1).map(|g| g.inbound_enabled).collect();
    Ok(GroupSettingsView {
        inbound_enabled: policy::inbound_in_force(
            instance.enforce_job_token_allowlist,
            own.inbound_enabled,
            &inherited,
        ),
        inbound_setting: own.inbound_enabled,
        job_token_elevation_allowed: own.job_token_elevation_allowed,
        job_token_elevation_effective: policy::elevation_allowed(
            instance.job_token_elevation_allowed,
            groups.iter().map(|g| (g.id, g.job_token_elevation_allowed)),
        )
        .is_ok(),
    })
}

fn refuse_disabling_enforced(conn: &Db, inbound: Option<Option<bool>>) -> StoreResult<Result<(), ApiError>> {
    if inbound == Some(Some(false)) && settings::get(conn)?.enforce_job_token_allowlist {
        return Ok(Err(ApiError::Conflict(
            "the instance enforces job token allowlists (enforce_job_token_allowlist); they cannot be turned off"
                .into(),
        )));
    }
    Ok(Ok(()))
}

pub async fn get_project(actor: Actor, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Reply {
    let id = id.into_inner();
    let view = edit(&state, actor, Node::Project(id), move |c| Ok(Ok(project_settings(c, id)?))).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default, deserialize_with = "nullable")]
    inbound_enabled: Option<Option<bool>>,
    outbound_enabled: Option<bool>,
    job_token_scopes: Option<Vec<String>>,
}

pub async fn patch_project(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
    body: web::Json<ProjectPatch>,
) -> Reply {
    let id = id.into_inner();
    let scopes = body.job_token_scopes.as_deref().map(parse_scopes).transpose()?;
    let (inbound, outbound) = (body.inbound_enabled, body.outbound_enabled);
    let view = edit(&state, actor, Node::Project(id), move |c| {
        if let Err(e) = refuse_disabling_enforced(c, inbound)? {
            return Ok(Err(e));
        }
        if let Some(scopes) = scopes {
            if let Err(e) = check_elevation(c, Node::Project(id), scopes)? {
                return Ok(Err(e));
            }
            namespaces::set_job_token_scopes(c, id, scopes)?;
        }
        if let Some(value) = inbound {
            allowlist::set_project_inbound(c, id, value)?;
        }
        if let Some(value) = outbound {
            allowlist::set_project_outbound(c, id, value)?;
        }
        Ok(Ok(project_settings(c, id)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub async fn get_group(actor: Actor, state: web::Data<AppState>, id: web::Path<GroupId>) -> Reply {
    let id = id.into_inner();
    let view = edit(&state, actor, Node::Group(id), move |c| Ok(Ok(group_settings(c, id)?))).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    #[serde(default, deserialize_with = "nullable")]
    inbound_enabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    job_token_elevation_allowed: Option<Option<bool>>,
}

pub async fn patch_group(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<GroupId>,
    body: web::Json<GroupPatch>,
) -> Reply {
    let id = id.into_inner();
    let (inbound, elevation) = (body.inbound_enabled, body.job_token_elevation_allowed);
    let view = edit(&state, actor, Node::Group(id), move |c| {
        if let Err(e) = refuse_disabling_enforced(c, inbound)? {
            return Ok(Err(e));
        }
        if let Some(value) = inbound {
            allowlist::set_group_inbound(c, id, value)?;
        }
        if let Some(value) = elevation {
            allowlist::set_group_elevation(c, id, value)?;
        }
        Ok(Ok(group_settings(c, id)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

// ---- allowlist entries ----

/// An entry as the API shows it.
fn entry_view(entry: &Entry, source_path: &str) -> serde_json::Value {
    let mut v = json!({
        "source_path": source_path,
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

fn source_path(conn: &Db, source: Node) -> StoreResult<String> {
    Ok(match source {
        Node::Project(id) => namespaces::get_project(conn, id)?.path_with_namespace,
        Node::Group(id) => namespaces::get_group(conn, id)?.full_path,
    })
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

fn kind_of(source: Node) -> &'static str {
    match source {
        Node::Project(_) => "project",
        Node::Group(_) => "group",
    }
}

async fn list(state: &AppState, actor: Actor, owner: Node, kind: &'static str) -> Reply {
    let views = edit(state, actor, owner, move |c| {
        let entries = allowlist::list_entries(c, owner, kind)?;
        let views: StoreResult<Vec<_>> =
            entries.iter().map(|e| Ok(entry_view(e, &source_path(c, e.source)?))).collect();
        Ok(Ok(views?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(views))
}

async fn add(state: &AppState, actor: Actor, owner: Node, source: Node, grant: EntryScopes) -> Reply {
    // A group may list itself (its projects reach each other); a project listing itself means nothing.
    if let (Node::Project(a), Node::Project(b)) = (owner, source) {
        if a == b {
            return Err(ApiError::Conflict("a project cannot add itself to its own allowlist".into()));
        }
    }
    let added_by = match actor {
        Actor::User(id) => Some(id),
        Actor::Admin => None,
    };
    let view = edit(state, actor, owner, move |c| {
        let path = match editor::may_see(c, actor, source)? {
            Ok(path) => path,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(scopes) = grant {
            if let Err(e) = check_elevation(c, owner, scopes)? {
                return Ok(Err(e));
            }
        }
        match allowlist::insert_entry(c, owner, source, grant, false, added_by, now())? {
            Ok(entry) => Ok(Ok(entry_view(&entry, &path))),
            Err(limit) => Ok(Err(ApiError::Unprocessable(format!(
                "the allowlist already has the maximum of {} {} entries (project and group entries are counted apart)",
                limit.limit, limit.kind
            )))),
        }
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn update(state: &AppState, actor: Actor, owner: Node, source: Node, grant: EntryScopes) -> Reply {
    let view = edit(state, actor, owner, move |c| {
        if let Some(scopes) = grant {
            if let Err(e) = check_elevation(c, owner, scopes)? {
                return Ok(Err(e));
            }
        }
        let entry = allowlist::update_entry(c, owner, source, grant)?;
        Ok(Ok(entry_view(&entry, &source_path(c, source)?)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn remove(state: &AppState, actor: Actor, owner: Node, source: Node) -> Reply {
    edit(state, actor, owner, move |c| Ok(Ok(allowlist::delete_entry(c, owner, source)?))).await?;
    Ok(HttpResponse::NoContent().finish())
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

/// Declares the list/add/update/remove handlers for one (owner kind, source kind) pair.
macro_rules! entry_handlers {
    ($list:ident, $add:ident, $update:ident, $remove:ident, $owner:ident, $source:ident, $kind:literal, $pick:ident) => {
        pub async fn $list(actor: Actor, state: web::Data<AppState>, id: web::Path<i64>) -> Reply {
            list(&state, actor, Node::$owner(id.into_inner()), $kind).await
        }

        pub async fn $add(
            actor: Actor,
            state: web::Data<AppState>,
            id: web::Path<i64>,
            body: web::Json<EntryBody>,
        ) -> Reply {
            let source = $pick(&body)?;
            add(&state, actor, Node::$owner(id.into_inner()), source, body.grant()?).await
        }

        pub async fn $update(
            actor: Actor,
            state: web::Data<AppState>,
            path: web::Path<(i64, i64)>,
            body: web::Json<EntryBody>,
        ) -> Reply {
            no_source(&body)?;
            if body.scopes.is_none() && body.default_permissions.is_none() {
                return Err(ApiError::Unprocessable("give scopes or default_permissions: true".into()));
            }
            let (owner, source) = path.into_inner();
            update(&state, actor, Node::$owner(owner), Node::$source(source), body.grant()?).await
        }

        pub async fn $remove(actor: Actor, state: web::Data<AppState>, path: web::Path<(i64, i64)>) -> Reply {
            let (owner, source) = path.into_inner();
            remove(&state, actor, Node::$owner(owner), Node::$source(source)).await
        }
    };
}

entry_handlers!(list_pp, add_pp, update_pp, remove_pp, Project, Project, "project", project_source);
entry_handlers!(list_pg, add_pg, update_pg, remove_pg, Project, Group, "group", group_source);
entry_handlers!(list_gp, add_gp, update_gp, remove_gp, Group, Project, "project", project_source);
entry_handlers!(list_gg, add_gg, update_gg, remove_gg, Group, Group, "group", group_source);

// ---- outbound ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundBody {
    target_project_id: Option<ProjectId>,
    target_group_id: Option<GroupId>,
    scopes: Vec<String>,
}

fn outbound_view(c: &Db, e: &allowlist::OutboundEntry) -> StoreResult<serde_json::Value> {
    let mut v = json!({ "target_path": source_path(c, e.target)?, "scopes": e.scopes,
                        "created_at": crate::domain::time::rfc3339(e.created_at) });
    match e.target {
        Node::Project(id) => v["target_project_id"] = json!(id),
        Node::Group(id) => v["target_group_id"] = json!(id),
    }
    Ok(v)
}

pub async fn list_outbound(actor: Actor, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Reply {
    let id = id.into_inner();
    let views = edit(&state, actor, Node::Project(id), move |c| {
        let views: StoreResult<Vec<_>> = allowlist::list_outbound(c, id)?.iter().map(|e| outbound_view(c, e)).collect();
        Ok(Ok(views?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(views))
}

pub async fn add_outbound(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
    body: web::Json<OutboundBody>,
) -> Reply {
    let id = id.into_inner();
    let target = match (body.target_project_id, body.target_group_id) {
        (Some(p), None) => Node::Project(p),
        (None, Some(g)) => Node::Group(g),
        _ => return Err(ApiError::Unprocessable("give target_project_id or target_group_id".into())),
    };
    if target == Node::Project(id) {
        return Err(ApiError::Conflict("a project's own jobs need no outbound entry for itself".into()));
    }
    let scopes = parse_scopes(&body.scopes)?;
    if scopes.is_empty() {
        return Err(ApiError::Unprocessable("scopes must not be empty".into()));
    }
    let view = edit(&state, actor, Node::Project(id), move |c| {
        if let Err(e) = editor::may_see(c, actor, target)? {
            return Ok(Err(e));
        }
        allowlist::insert_outbound(c, id, target, scopes, now())?;
        let entry = allowlist::list_outbound(c, id)?.into_iter().find(|e| e.target == target);
        Ok(Ok(entry.map(|e| outbound_view(c, &e)).transpose()?))
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn remove_outbound(state: &AppState, actor: Actor, id: ProjectId, target: Node) -> Reply {
    edit(state, actor, Node::Project(id), move |c| Ok(Ok(allowlist::delete_outbound(c, id, target)?))).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn remove_outbound_project(actor: Actor, state: web::Data<AppState>, path: web::Path<(i64, i64)>) -> Reply {
    let (id, target) = path.into_inner();
    remove_outbound(&state, actor, id, Node::Project(target)).await
}

pub async fn remove_outbound_group(actor: Actor, state: web::Data<AppState>, path: web::Path<(i64, i64)>) -> Reply {
    let (id, target) = path.into_inner();
    remove_outbound(&state, actor, id, Node::Group(target)).await
}

// ---- authorization log and autopopulate ----

pub async fn authorizations(actor: Actor, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Reply {
    let id = id.into_inner();
    let rows = edit(&state, actor, Node::Project(id), move |c| Ok(Ok(allowlist::list_authorizations(c, id)?))).await?;
    Ok(HttpResponse::Ok().json(rows))
}

/// Turns the target's authorization log into allowlist entries with exactly the scopes each
/// source used (compacted into groups when they would not fit), marks them autopopulated, and
/// switches the allowlist on. Sources that used only visibility reads get no entry.
pub async fn autopopulate(actor: Actor, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Reply {
    let id = id.into_inner();
    // Off the async worker: the PostgreSQL client must not block on it.
    let (authlog, store) = (state.authlog.clone(), state.store.clone());
    web::block(move || authlog.flush_all(&store, now())).await.map_err(|_| crate::store::StoreError::Blocking)?;
    let owner = Node::Project(id);
    let added = edit(&state, actor, owner, move |c| {
        let mut seen = Vec::new();
        for row in allowlist::list_authorizations(c, id)? {
            let source = namespaces::get_project(c, row.source_project_id)?;
            let groups = namespaces::get_group(c, source.namespace_id)?.traversal_ids;
            let covered = allowlist::get_entry(c, owner, Node::Project(source.id))?.is_some()
                || !allowlist::entries_for_sources(
                    c,
                    owner,
                    &groups.iter().map(|g| Node::Group(*g)).collect::<Vec<_>>(),
                )?
                .is_empty();
            if !covered {
                seen.push(autopopulate::Seen { project: source.id, groups, scopes: row.scopes });
            }
        }
        let room =
            |kind| Ok::<_, StoreError>((MAX_ENTRIES - allowlist::count_entries(c, owner, kind)?).max(0) as usize);
        let entries = match autopopulate::entries(&seen, room("project")?, room("group")?) {
            Ok(entries) => entries,
            Err(e) => return Ok(Err(ApiError::Unprocessable(e.to_string()))),
        };
        let mut added = Vec::new();
        for (entry, mut scopes) in entries {
            // Elevated scopes used while elevation was allowed are not re-added once it is not.
            if check_elevation(c, owner, scopes)?.is_err() {
                scopes = scopes.minus(ScopeSet::elevated());
            }
            let source = match entry {
                autopopulate::NewEntry::Project(p) => Node::Project(p),
                autopopulate::NewEntry::Group(g) => Node::Group(g),
            };
            match allowlist::insert_entry(c, owner, source, Some(scopes), true, None, now())? {
                Ok(e) => added.push(entry_view(&e, &source_path(c, source)?)),
                Err(limit) => {
                    return Ok(Err(ApiError::Unprocessable(format!(
                        "allowlist limit of {} {} entries",
                        limit.limit,
                        kind_of(source)
                    ))))
                }
            }
        }
        allowlist::switch_inbound_on_for_autopopulate(c, id)?;
        Ok(Ok(added))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "added": added })))
}

pub async fn remove_autopopulated(actor: Actor, state: web::Data<AppState>, id: web::Path<ProjectId>) -> Reply {
    let owner = Node::Project(id.into_inner());
    edit(&state, actor, owner, move |c| {
        allowlist::delete_autopopulated(c, owner)?;
        if let Node::Project(project) = owner {
            allowlist::restore_inbound_after_autopopulate(c, project)?;
        }
        Ok(Ok(()))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
