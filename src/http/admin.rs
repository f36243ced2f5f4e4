//! The admin API: the domain of SPEC §2 (Appendix A shapes).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::auth::{Admin, ApiCaller, Client};
use super::input::{self, nullable};
use super::page::{self, Pagination};
use super::refs::{GroupRef, ProjectRef};
use crate::app::AppState;
use crate::domain::{
    AccessLevel, FeatureAccess, GroupId, JobId, JobStatus, PipelineId, ProjectId, RefType, RunnerId, RunnerType,
    UserId, UserState, Visibility,
};
use crate::error::ApiError;
use crate::secret::Secret;
use crate::service::admin as audited;
use crate::service::credentials::{self, PatError};
use crate::service::jobs::{self as job_service, FinishError, Finisher};
use crate::service::now;
use crate::store::audit::Actor as AuditActor;
use crate::store::clients::{self, NewResourceServer, NewRunner, ResourceServerPatch, RunnerPatch};
use crate::store::jobs::{self, NewJob, NewPipeline};
use crate::store::namespaces::{self, MemberOf, ProjectFields, ProjectFilter};
use crate::store::{pats, settings, tokens, users};

type Reply = Result<HttpResponse, ApiError>;

/// Every change through these routes is the admin's (the `Admin` extractor), recorded as such.
const BY_ADMIN: AuditActor = AuditActor::Admin;

fn created(body: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Created().json(body))
}

fn ok(body: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Ok().json(body))
}

fn no_content() -> Reply {
    Ok(HttpResponse::NoContent().finish())
}

/// The `user_id` segment of a membership route (its `{id}` is a [`ProjectRef`] or [`GroupRef`]).
#[derive(Deserialize)]
pub struct MemberPath {
    user_id: UserId,
}

/// `search`: a substring of a full path, 1 to 255 characters (empty is no filter).
pub(crate) fn search_filter(search: Option<&str>) -> Result<Option<String>, ApiError> {
    match search {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > 255 || text.chars().any(char::is_control) => {
            Err(ApiError::BadRequest("search must be up to 255 characters without control characters".into()))
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

pub async fn list_users(_: Admin, state: web::Data<AppState>, req: HttpRequest, Pagination(p): Pagination) -> Reply {
    Ok(page::respond(&req, p, state.store.read(move |c| users::list(c, p)).await?))
}

/// `body` with a freshly generated secret added under `field`: the only time it is shown.
fn shown_once(body: impl serde::Serialize, field: &str, secret: &Secret) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    value[field] = Value::from(secret.expose());
    Ok(value)
}

// ---- users ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
}

pub async fn create_user(_: Admin, state: web::Data<AppState>, body: web::Json<NewUserBody>) -> Reply {
    let username = input::path_segment("username", &body.username)?;
    created(state.store.run(move |c| audited::create_user(c, BY_ADMIN, &username, now())).await?)
}

pub async fn get_user(_: Admin, state: web::Data<AppState>, id: web::Path<UserId>) -> Reply {
    let id = id.into_inner();
    ok(state.store.run(move |c| users::get(c, id)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    state: UserState,
}

pub async fn update_user(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<UserId>,
    body: web::Json<UserPatch>,
) -> Reply {
    let (id, new_state) = (id.into_inner(), body.state);
    ok(state.store.run(move |c| audited::set_user_state(c, BY_ADMIN, id, new_state, now())).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPatBody {
    name: String,
    expires_at: Option<String>,
}

/// A user's personal access token for the job token scope API; shown once, stored hashed.
pub async fn create_pat(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<UserId>,
    body: web::Json<NewPatBody>,
) -> Reply {
    let (user, name) = (id.into_inner(), input::text("name", &body.name, 255, false)?);
    let expires_at = body.expires_at.as_deref().map(|t| input::instant("expires_at", t)).transpose()?;
    let (pat, token) = credentials::create_pat(&state.store, BY_ADMIN, user, name, expires_at, now()).await?;
    created(shown_once(pat, "token", &token)?)
}

/// A user's personal access tokens: metadata only, never the token or its hash.
pub async fn list_pats(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<UserId>,
    Pagination(p): Pagination,
) -> Reply {
    let user = id.into_inner();
    Ok(page::respond(&req, p, state.store.read(move |c| pats::list(c, user, p)).await?))
}

/// One personal access token's metadata; another user's token is not found.
pub async fn get_pat(_: Admin, state: web::Data<AppState>, path: web::Path<(UserId, i64)>) -> Reply {
    let (user, pat) = path.into_inner();
    ok(state.store.read(move |c| pats::get(c, user, pat)).await?)
}

/// Revokes a personal access token: it authenticates nothing from now on.
pub async fn revoke_pat(_: Admin, state: web::Data<AppState>, path: web::Path<(UserId, i64)>) -> Reply {
    let ((user, pat), at) = (path.into_inner(), now());
    state.store.run(move |c| credentials::revoke_pat(c, BY_ADMIN, user, pat, at)).await?;
    Ok(HttpResponse::NoContent().finish())
}

impl From<PatError> for ApiError {
    fn from(e: PatError) -> Self {
        match e {
            PatError::Expiry(refused) => ApiError::BadRequest(refused.to_string()),
            PatError::Store(e) => e.into(),
        }
    }
}

// ---- groups ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroupBody {
    path: String,
    parent_id: Option<GroupId>,
}

pub async fn create_group(_: Admin, state: web::Data<AppState>, body: web::Json<NewGroupBody>) -> Reply {
    let path = input::path_segment("path", &body.path)?;
    let parent = body.parent_id;
    created(state.store.run(move |c| audited::create_group(c, BY_ADMIN, &path, parent, now())).await?)
}

pub async fn get_group(_: Admin, state: web::Data<AppState>, id: GroupRef) -> Reply {
    let id = id.into_inner();
    ok(state.store.read(move |c| namespaces::get_group(c, id)).await?)
}

#[derive(Deserialize)]
pub struct GroupQuery {
    search: Option<String>,
}

/// Groups by id; `search` keeps those whose full path contains it (case-insensitive).
pub async fn list_groups(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<GroupQuery>,
    Pagination(p): Pagination,
) -> Reply {
    let search = search_filter(query.search.as_deref())?;
    Ok(page::respond(&req, p, state.store.read(move |c| namespaces::list_groups(c, search.as_deref(), p)).await?))
}

/// Deletes an empty group: refused (409, naming them) while subgroups, projects, group runners
/// or other owners' job token entries depend on it.
pub async fn delete_group(_: Admin, state: web::Data<AppState>, id: GroupRef) -> Reply {
    let id = id.into_inner();
    state.store.run(move |c| audited::delete_group(c, BY_ADMIN, id, now())).await?;
    no_content()
}

pub async fn list_group_members(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: GroupRef,
    Pagination(p): Pagination,
) -> Reply {
    let of = MemberOf::Group(id.into_inner());
    Ok(page::respond(&req, p, state.store.read(move |c| namespaces::list_members(c, of, p)).await?))
}

// ---- projects ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    path: Option<String>,
    namespace_id: Option<GroupId>,
    visibility: Option<Visibility>,
    build_timeout: Option<i64>,
    repository_access_level: Option<FeatureAccess>,
    container_registry_access_level: Option<FeatureAccess>,
    package_registry_access_level: Option<FeatureAccess>,
}

impl ProjectBody {
    fn fields(&self) -> Result<ProjectFields, ApiError> {
        Ok(ProjectFields {
            visibility: self.visibility,
            build_timeout: self.build_timeout.map(|t| input::timeout("build_timeout", t)).transpose()?,
            repository_access_level: self.repository_access_level,
            container_registry_access_level: self.container_registry_access_level,
            package_registry_access_level: self.package_registry_access_level,
        })
    }
}

pub async fn create_project(_: Admin, state: web::Data<AppState>, body: web::Json<ProjectBody>) -> Reply {
    let path = input::path_segment("path", body.path.as_deref().unwrap_or_default())?;
    let namespace = body.namespace_id.ok_or_else(|| ApiError::Unprocessable("namespace_id is required".into()))?;
    let fields = body.fields()?;
    created(
        state.store.run(move |c| Ok(audited::create_project(c, BY_ADMIN, &path, namespace, &fields, now()))).await??,
    )
}

pub async fn get_project(_: Admin, state: web::Data<AppState>, id: ProjectRef) -> Reply {
    let id = id.into_inner();
    ok(state.store.read(move |c| namespaces::get_project(c, id)).await?)
}

#[derive(Deserialize)]
pub struct ProjectQuery {
    namespace_id: Option<GroupId>,
    search: Option<String>,
}

/// Projects by id; `namespace_id` keeps those directly in that group, `search` those whose path
/// with namespace contains it (case-insensitive).
pub async fn list_projects(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ProjectQuery>,
    Pagination(p): Pagination,
) -> Reply {
    if query.namespace_id.is_some_and(|id| id < 1) {
        return Err(ApiError::BadRequest("namespace_id must be a positive integer".into()));
    }
    let filter = ProjectFilter { namespace_id: query.namespace_id, search: search_filter(query.search.as_deref())? };
    Ok(page::respond(&req, p, state.store.read(move |c| namespaces::list_projects(c, &filter, p)).await?))
}

/// Deletes a project without pipelines: refused (409, naming them) while it has pipelines or
/// other projects' and groups' job token entries name it.
pub async fn delete_project(_: Admin, state: web::Data<AppState>, id: ProjectRef) -> Reply {
    let id = id.into_inner();
    state.store.run(move |c| audited::delete_project(c, BY_ADMIN, id, now())).await?;
    no_content()
}

pub async fn list_project_members(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: ProjectRef,
    Pagination(p): Pagination,
) -> Reply {
    let of = MemberOf::Project(id.into_inner());
    Ok(page::respond(&req, p, state.store.read(move |c| namespaces::list_members(c, of, p)).await?))
}

pub async fn list_pipelines(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: ProjectRef,
    Pagination(p): Pagination,
) -> Reply {
    let project = id.into_inner();
    Ok(page::respond(&req, p, state.store.read(move |c| jobs::list_pipelines(c, project, p)).await?))
}

pub async fn update_project(
    _: Admin,
    state: web::Data<AppState>,
    id: ProjectRef,
    body: web::Json<ProjectBody>,
) -> Reply {
    if body.path.is_some() || body.namespace_id.is_some() {
        return Err(ApiError::Unprocessable("path and namespace_id cannot be changed".into()));
    }
    let (id, fields) = (id.into_inner(), body.fields()?);
    ok(state.store.run(move |c| audited::update_project(c, BY_ADMIN, id, &fields, now())).await?)
}

// ---- memberships ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    access_level: AccessLevel,
}

pub async fn put_project_member(
    _: Admin,
    state: web::Data<AppState>,
    project: ProjectRef,
    path: web::Path<MemberPath>,
    body: web::Json<MemberBody>,
) -> Reply {
    let (project, user, level) = (project.into_inner(), path.user_id, body.access_level);
    ok(state
        .store
        .run(move |c| audited::put_member(c, BY_ADMIN, MemberOf::Project(project), user, level, now()))
        .await?)
}

pub async fn delete_project_member(
    _: Admin,
    state: web::Data<AppState>,
    project: ProjectRef,
    path: web::Path<MemberPath>,
) -> Reply {
    let (project, user) = (project.into_inner(), path.user_id);
    state.store.run(move |c| audited::delete_member(c, BY_ADMIN, MemberOf::Project(project), user, now())).await?;
    no_content()
}

pub async fn put_group_member(
    _: Admin,
    state: web::Data<AppState>,
    group: GroupRef,
    path: web::Path<MemberPath>,
    body: web::Json<MemberBody>,
) -> Reply {
    let (group, user, level) = (group.into_inner(), path.user_id, body.access_level);
    ok(state.store.run(move |c| audited::put_member(c, BY_ADMIN, MemberOf::Group(group), user, level, now())).await?)
}

pub async fn delete_group_member(
    _: Admin,
    state: web::Data<AppState>,
    group: GroupRef,
    path: web::Path<MemberPath>,
) -> Reply {
    let (group, user) = (group.into_inner(), path.user_id);
    state.store.run(move |c| audited::delete_member(c, BY_ADMIN, MemberOf::Group(group), user, now())).await?;
    no_content()
}

// ---- runners and resource servers ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRunnerBody {
    pub(crate) runner_type: RunnerType,
    pub(crate) group_id: Option<GroupId>,
    #[serde(default)]
    pub(crate) project_ids: Vec<ProjectId>,
    pub(crate) maximum_timeout: Option<i64>,
    #[serde(default)]
    pub(crate) description: String,
}

impl NewRunnerBody {
    /// The store's new runner, or the 422 naming what is wrong; the console's runner form is
    /// checked by this too.
    pub(crate) fn validate(&self) -> Result<NewRunner, ApiError> {
        let bad = |m: &str| Err(ApiError::Unprocessable(m.into()));
        match self.runner_type {
            RunnerType::Group if self.group_id.is_none() => return bad("a group runner needs group_id"),
            RunnerType::Project if self.project_ids.is_empty() => return bad("a project runner needs project_ids"),
            RunnerType::Instance | RunnerType::Project if self.group_id.is_some() => {
                return bad("group_id is only for group runners")
            }
            RunnerType::Instance | RunnerType::Group if !self.project_ids.is_empty() => {
                return bad("project_ids is only for project runners")
            }
            _ => {}
        }
        if self.project_ids.len() > 1000 {
            return bad("a runner serves at most 1000 projects");
        }
        Ok(NewRunner {
            runner_type: self.runner_type,
            group_id: self.group_id,
            project_ids: self.project_ids.clone(),
            maximum_timeout: self.maximum_timeout.map(|t| input::timeout("maximum_timeout", t)).transpose()?,
            description: input::text("description", &self.description, 255, true)?,
        })
    }
}

pub async fn create_runner(_: Admin, state: web::Data<AppState>, body: web::Json<NewRunnerBody>) -> Reply {
    let new = body.validate()?;
    let (runner, client_secret) = state.store.run(move |c| audited::register_runner(c, BY_ADMIN, &new, now())).await?;
    created(shown_once(runner, "client_secret", &client_secret)?)
}

/// A new secret for the runner, shown once; the old one is dead at once.
pub async fn reset_runner_secret(_: Admin, state: web::Data<AppState>, id: web::Path<RunnerId>) -> Reply {
    let (runner, client_secret) =
        credentials::reset_runner_secret(&state.store, BY_ADMIN, id.into_inner(), now()).await?;
    ok(shown_once(runner, "client_secret", &client_secret)?)
}

pub async fn get_runner(_: Admin, state: web::Data<AppState>, id: web::Path<RunnerId>) -> Reply {
    let id = id.into_inner();
    ok(state.store.read(move |c| clients::get_runner(c, id)).await?)
}

pub async fn list_runners(_: Admin, state: web::Data<AppState>, req: HttpRequest, Pagination(p): Pagination) -> Reply {
    Ok(page::respond(&req, p, state.store.read(move |c| clients::list_runners(c, p)).await?))
}

/// Deletes a runner and its credentials: refused (409, naming them) while jobs it runs hold
/// live tokens.
pub async fn delete_runner(_: Admin, state: web::Data<AppState>, id: web::Path<RunnerId>) -> Reply {
    let id = id.into_inner();
    state.store.run(move |c| audited::delete_runner(c, BY_ADMIN, id, now())).await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerPatchBody {
    paused: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    maximum_timeout: Option<Option<i64>>,
    description: Option<String>,
}

pub async fn update_runner(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<RunnerId>,
    body: web::Json<RunnerPatchBody>,
) -> Reply {
    let patch = RunnerPatch {
        paused: body.paused,
        maximum_timeout: match body.maximum_timeout {
            Some(Some(t)) => Some(Some(input::timeout("maximum_timeout", t)?)),
            other => other,
        },
        description: body.description.as_deref().map(|d| input::text("description", d, 255, true)).transpose()?,
    };
    let id = id.into_inner();
    ok(state.store.run(move |c| audited::update_runner(c, BY_ADMIN, id, &patch, now())).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResourceServerBody {
    name: String,
    #[serde(default)]
    audience: Value,
}

pub async fn create_resource_server(
    _: Admin,
    state: web::Data<AppState>,
    body: web::Json<NewResourceServerBody>,
) -> Reply {
    let new = NewResourceServer {
        name: input::text("name", &body.name, 255, false)?,
        audience: input::audience(&body.audience)?,
    };
    let (server, client_secret) =
        state.store.run(move |c| audited::register_resource_server(c, BY_ADMIN, &new, now())).await?;
    created(shown_once(server, "client_secret", &client_secret)?)
}

pub async fn list_resource_servers(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    Pagination(p): Pagination,
) -> Reply {
    Ok(page::respond(&req, p, state.store.read(move |c| clients::list_resource_servers(c, p)).await?))
}

pub async fn get_resource_server(_: Admin, state: web::Data<AppState>, id: web::Path<i64>) -> Reply {
    let id = id.into_inner();
    ok(state.store.run(move |c| clients::get_resource_server(c, id)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerPatchBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    audience: Option<Option<Value>>,
    disabled: Option<bool>,
}

/// Renames, re-targets (`audience`; `null` or `[]` clears it), disables or re-enables a resource
/// server. A disabled resource server authenticates nothing.
pub async fn update_resource_server(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ResourceServerPatchBody>,
) -> Reply {
    let patch = ResourceServerPatch {
        name: body.name.as_deref().map(|n| input::text("name", n, 255, false)).transpose()?,
        audience: body.audience.as_ref().map(|a| input::audience(a.as_ref().unwrap_or(&Value::Null))).transpose()?,
        disabled: body.disabled,
    };
    let id = id.into_inner();
    ok(state.store.run(move |c| audited::update_resource_server(c, BY_ADMIN, id, &patch, now())).await?)
}

pub async fn delete_resource_server(_: Admin, state: web::Data<AppState>, id: web::Path<i64>) -> Reply {
    let id = id.into_inner();
    state.store.run(move |c| audited::delete_resource_server(c, BY_ADMIN, id, now())).await?;
    no_content()
}

/// A new secret for the resource server, shown once; the old one is dead at once.
pub async fn reset_resource_server_secret(_: Admin, state: web::Data<AppState>, id: web::Path<i64>) -> Reply {
    let (server, client_secret) =
        credentials::reset_resource_server_secret(&state.store, BY_ADMIN, id.into_inner(), now()).await?;
    ok(shown_once(server, "client_secret", &client_secret)?)
}

// ---- pipelines and jobs ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPipelineBody {
    user_id: UserId,
    #[serde(rename = "ref")]
    ref_: String,
    ref_type: RefType,
    ref_protected: bool,
    sha: Option<String>,
    source: Option<String>,
    jobs: Vec<NewJobBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJobBody {
    name: String,
    stage: Option<String>,
    timeout: Option<i64>,
    environment: Option<String>,
}

impl NewPipelineBody {
    fn validate(&self) -> Result<NewPipeline, ApiError> {
        if self.jobs.is_empty() || self.jobs.len() > 500 {
            return Err(ApiError::Unprocessable("a pipeline has 1 to 500 jobs".into()));
        }
        let sha = self.sha.as_deref().unwrap_or_default();
        if sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::Unprocessable("sha must be up to 64 hexadecimal characters".into()));
        }
        let jobs = self
            .jobs
            .iter()
            .map(|j| {
                Ok(NewJob {
                    name: input::text("job name", &j.name, 255, false)?,
                    stage: input::text("stage", j.stage.as_deref().unwrap_or("test"), 255, false)?,
                    timeout: j.timeout.map(|t| input::timeout("job timeout", t)).transpose()?,
                    environment: j
                        .environment
                        .as_deref()
                        .map(|e| input::text("environment", e, 255, false))
                        .transpose()?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(NewPipeline {
            user_id: self.user_id,
            ref_: input::text("ref", &self.ref_, 255, false)?,
            ref_type: self.ref_type,
            ref_protected: self.ref_protected,
            sha: sha.to_ascii_lowercase(),
            source: input::text("source", self.source.as_deref().unwrap_or("push"), 64, false)?,
            jobs,
        })
    }
}

pub async fn create_pipeline(
    _: Admin,
    state: web::Data<AppState>,
    id: ProjectRef,
    body: web::Json<NewPipelineBody>,
) -> Reply {
    let (project, new) = (id.into_inner(), body.validate()?);
    created(state.store.run(move |c| Ok(audited::create_pipeline(c, BY_ADMIN, project, &new, now()))).await??)
}

pub async fn get_job(_: Admin, state: web::Data<AppState>, id: web::Path<JobId>) -> Reply {
    let id = id.into_inner();
    ok(state.store.read(move |c| jobs::get_job(c, id)).await?)
}

/// The pipeline with its jobs, as its creation answered.
pub async fn get_pipeline(_: Admin, state: web::Data<AppState>, id: web::Path<PipelineId>) -> Reply {
    let id = id.into_inner();
    ok(state.store.read(move |c| jobs::get_pipeline_with_jobs(c, id)).await?)
}

#[derive(Deserialize)]
pub struct JobQuery {
    status: Option<JobStatus>,
}

/// A pipeline's jobs by id; `status` keeps those in that status.
pub async fn list_jobs(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<PipelineId>,
    query: web::Query<JobQuery>,
    Pagination(p): Pagination,
) -> Reply {
    let (pipeline, status) = (id.into_inner(), query.status);
    Ok(page::respond(&req, p, state.store.read(move |c| jobs::list_jobs(c, pipeline, status, p)).await?))
}

/// The tokens issued for a job: metadata only (jti, kid, times, parent), never a token.
pub async fn list_job_tokens(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<JobId>,
    Pagination(p): Pagination,
) -> Reply {
    let job = id.into_inner();
    Ok(page::respond(&req, p, state.store.read(move |c| tokens::list_for_job(c, job, p)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishBody {
    status: JobStatus,
}

/// Finishing a job revokes all its tokens at once. The admin or the job's own runner may call it.
pub async fn finish_job(
    caller: ApiCaller,
    state: web::Data<AppState>,
    id: web::Path<JobId>,
    body: web::Json<FinishBody>,
) -> Reply {
    let finisher = match caller {
        ApiCaller::Admin => Finisher::Admin,
        ApiCaller::Client(Client::Runner(runner)) => Finisher::Runner(runner.id),
        _ => return Err(ApiError::Unauthorized),
    };
    ok(job_service::finish(&state.store, finisher, id.into_inner(), body.status, now()).await?)
}

/// The one mapping of finishing refusals to the API's error shape.
impl From<FinishError> for ApiError {
    fn from(e: FinishError) -> Self {
        match e {
            FinishError::OtherRunner(_) => ApiError::Forbidden(e.to_string()),
            FinishError::NotAFinalStatus => ApiError::Unprocessable(e.to_string()),
            FinishError::Store(e) => e.into(),
        }
    }
}

// ---- instance settings ----

pub async fn get_settings(_: Admin, state: web::Data<AppState>) -> Reply {
    ok(state.store.run(settings::get).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    enforce_job_token_allowlist: Option<bool>,
    job_token_elevation_allowed: Option<bool>,
}

pub async fn update_settings(_: Admin, state: web::Data<AppState>, body: web::Json<SettingsPatch>) -> Reply {
    let (enforce, elevation) = (body.enforce_job_token_allowlist, body.job_token_elevation_allowed);
    ok(state.store.run(move |c| audited::update_settings(c, BY_ADMIN, enforce, elevation, now())).await?)
}
