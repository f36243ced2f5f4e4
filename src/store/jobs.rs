//! Pipelines and jobs, and the one query the token endpoint needs about a job.

use serde::Serialize;

use super::db::{params, Db, Dialect, Row};
use super::namespaces::{self, Group, Project};
use super::settings::{self, InstanceSettings};
use super::users::{self, User};
use super::{atomic, Listed, OptionalExt, Page, Result, StoreError};
use crate::domain::{AccessLevel, JobId, JobStatus, PipelineId, ProjectId, RefType, RunnerId, UserId};
use crate::policy;

#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    pub id: PipelineId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    #[serde(rename = "ref")]
    pub ref_: String,
    pub ref_type: RefType,
    pub ref_protected: bool,
    pub sha: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: JobId,
    pub name: String,
    pub stage: String,
    pub status: JobStatus,
    pub pipeline_id: PipelineId,
    pub project_id: ProjectId,
    pub runner_id: Option<RunnerId>,
    pub timeout: Option<i64>,
    pub environment: Option<String>,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "crate::domain::time::ser_opt")]
    pub finished_at: Option<i64>,
}

/// A job in a new pipeline.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub stage: String,
    pub timeout: Option<i64>,
    pub environment: Option<String>,
}

/// A pipeline about to be created.
#[derive(Debug, Clone)]
pub struct NewPipeline {
    pub user_id: UserId,
    pub ref_: String,
    pub ref_type: RefType,
    pub ref_protected: bool,
    pub sha: String,
    pub source: String,
    pub jobs: Vec<NewJob>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineWithJobs {
    #[serde(flatten)]
    pub pipeline: Pipeline,
    pub jobs: Vec<Job>,
}

/// Creates the pipeline and all its jobs in one transaction.
pub fn insert_pipeline(db: &Db, project_id: ProjectId, new: &NewPipeline, now: i64) -> Result<PipelineWithJobs> {
    namespaces::get_project(db, project_id)?;
    users::get(db, new.user_id)?;
    let (pipeline_id, ids) = atomic(db, |tx| {
        let pipeline_id: PipelineId = tx
            .query_one(
                "INSERT INTO pipelines (project_id, user_id, ref, ref_type, ref_protected, sha, source, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                params![
                    project_id,
                    new.user_id,
                    new.ref_,
                    new.ref_type.as_str(),
                    new.ref_protected,
                    new.sha,
                    new.source,
                    now
                ],
            )?
            .get(0)?;
        let mut ids = Vec::with_capacity(new.jobs.len());
        for job in &new.jobs {
            let row = tx.query_one(
                "INSERT INTO jobs (pipeline_id, name, stage, timeout, environment) VALUES (?1, ?2, ?3, ?4, ?5)
                 RETURNING id",
                params![pipeline_id, job.name, job.stage, job.timeout, job.environment],
            )?;
            ids.push(row.get(0)?);
        }
        Ok((pipeline_id, ids))
    })?;
    let jobs = ids.into_iter().map(|id| get_job(db, id)).collect::<Result<_>>()?;
    Ok(PipelineWithJobs { pipeline: get_pipeline(db, pipeline_id)?, jobs })
}

pub fn get_pipeline(db: &Db, id: PipelineId) -> Result<Pipeline> {
    let r = db
        .query_opt(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = ?1"), params![id])
        .or_not_found(|| format!("pipeline {id} not found"))?;
    pipeline_from_row(&r)
}

fn pipeline_from_row(r: &Row) -> Result<Pipeline> {
    Ok(Pipeline {
        id: r.get(0)?,
        project_id: r.get(1)?,
        user_id: r.get(2)?,
        ref_: r.get(3)?,
        ref_type: r.parse(4)?,
        ref_protected: r.get(5)?,
        sha: r.get(6)?,
        source: r.get(7)?,
    })
}

// No JOINs in hot queries: this SQLite build re-prepares a JOIN with bound parameters on every
// step (measured: a third of introspection time), while a correlated subquery stays prepared.
const JOB_COLUMNS: &str = "j.id, j.name, j.stage, j.status, j.pipeline_id, \
    (SELECT project_id FROM pipelines WHERE id = j.pipeline_id), j.runner_id, j.timeout, \
    j.environment, j.started_at, j.finished_at";

fn job_from_row(r: &Row) -> Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        name: r.get(1)?,
        stage: r.get(2)?,
        status: r.parse(3)?,
        pipeline_id: r.get(4)?,
        project_id: r.get(5)?,
        runner_id: r.get(6)?,
        timeout: r.get(7)?,
        environment: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
}

pub fn get_job(db: &Db, id: JobId) -> Result<Job> {
    db.query_opt(&format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ?1"), params![id])
        .or_not_found(|| format!("job {id} not found"))
        .and_then(|r| job_from_row(&r))
}

/// Everything minting needs to know about a job, loaded in one place.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Job,
    pub pipeline: Pipeline,
    pub project: Project,
    /// The project's namespace group.
    pub namespace: Group,
    /// The project's groups, nearest first (the namespace is the first).
    pub ancestors: Vec<Group>,
    pub user: User,
}

/// The job, or `None` when there is none. On PostgreSQL this is [`grant_context`]'s one
/// statement (the extra columns cost less than the round trips they save).
pub fn job_context(db: &Db, job_id: JobId) -> Result<Option<JobContext>> {
    match db.dialect() {
        Dialect::Sqlite => job_context_point_reads(db, job_id),
        Dialect::Postgres => Ok(grant_context_postgres(db, job_id)?.map(|g| g.ctx)),
    }
}

/// A [`JobContext`] with everything else the job's own-project grant is computed from.
#[derive(Debug, Clone)]
pub struct GrantContext {
    pub ctx: JobContext,
    /// The user's effective access on the project (SPEC §4.1).
    pub access: Option<AccessLevel>,
    pub settings: InstanceSettings,
}

/// The job with its grant's inputs; `None` when there is no such job. SQLite reads them point
/// by point (each a few microseconds, prepared once); PostgreSQL in one statement, since there
/// every statement is a round trip that costs more than the query.
pub fn grant_context(db: &Db, job_id: JobId) -> Result<Option<GrantContext>> {
    match db.dialect() {
        Dialect::Sqlite => {
            let Some(ctx) = job_context_point_reads(db, job_id)? else { return Ok(None) };
            let access = namespaces::effective_access(db, ctx.user.id, ctx.project.id, &ctx.namespace.traversal_ids)?;
            Ok(Some(GrantContext { ctx, access, settings: settings::get(db)? }))
        }
        Dialect::Postgres => grant_context_postgres(db, job_id),
    }
}

fn job_context_point_reads(db: &Db, job_id: JobId) -> Result<Option<JobContext>> {
    let job = match get_job(db, job_id) {
        Ok(job) => job,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let pipeline = get_pipeline(db, job.pipeline_id)?;
    let project = namespaces::get_project(db, pipeline.project_id)?;
    let namespace = namespaces::get_group(db, project.namespace_id)?;
    let ancestors = namespaces::groups_nearest_first(db, &namespace.traversal_ids)?;
    let user = users::get(db, pipeline.user_id)?;
    Ok(Some(JobContext { job, pipeline, project, namespace, ancestors, user }))
}

/// One row per group of the project's namespace chain, nearest first; every row repeats the
/// job, pipeline, project, user, instance settings and project membership, and adds the group
/// with the user's membership on it. Column ranges below follow the row readers' layouts.
const GRANT_CONTEXT_POSTGRES: &str =
    "SELECT j.id, j.name, j.stage, j.status, j.pipeline_id, pl.project_id, j.runner_id,
        j.timeout, j.environment, j.started_at, j.finished_at,
        pl.id, pl.project_id, pl.user_id, pl.ref, pl.ref_type, pl.ref_protected, pl.sha, pl.source,
        p.id, p.path, p.namespace_id, p.path_with_namespace, p.visibility, p.build_timeout,
        p.repository_access_level, p.container_registry_access_level, p.package_registry_access_level,
        p.job_token_scopes, p.inbound_enabled, p.outbound_enabled,
        u.id, u.username, u.state, u.created_at,
        s.enforce_job_token_allowlist, s.job_token_elevation_allowed,
        (SELECT access_level FROM project_members WHERE project_id = p.id AND user_id = u.id),
        g.id, g.path, g.full_path, g.parent_id, g.traversal_ids, g.inbound_enabled, g.job_token_elevation_allowed,
        (SELECT access_level FROM group_members WHERE group_id = g.id AND user_id = u.id)
     FROM jobs j
     JOIN pipelines pl ON pl.id = j.pipeline_id
     JOIN projects p ON p.id = pl.project_id
     JOIN users u ON u.id = pl.user_id
     JOIN groups ns ON ns.id = p.namespace_id
     JOIN instance_settings s ON s.id = 1
     CROSS JOIN LATERAL unnest(string_to_array(ns.traversal_ids, ' ')::bigint[]) WITH ORDINALITY AS chain(id, pos)
     JOIN groups g ON g.id = chain.id
     WHERE j.id = ?1
     ORDER BY chain.pos DESC";

fn grant_context_postgres(db: &Db, job_id: JobId) -> Result<Option<GrantContext>> {
    let rows = db.query(GRANT_CONTEXT_POSTGRES, params![job_id])?;
    let Some(first) = rows.first() else { return Ok(None) };
    let ancestors = rows.iter().map(|r| namespaces::group_from_row(&r.columns(38..45)?)).collect::<Result<Vec<_>>>()?;
    let Some(namespace) = ancestors.first().cloned() else { return Ok(None) };
    let mut levels = vec![first.get::<Option<i64>>(37)?];
    for r in &rows {
        levels.push(r.get(45)?);
    }
    let levels = levels.into_iter().flatten().filter_map(|l| AccessLevel::from_i64(l).ok());
    let ctx = JobContext {
        job: job_from_row(&first.columns(0..11)?)?,
        pipeline: pipeline_from_row(&first.columns(11..19)?)?,
        project: namespaces::project_from_row(&first.columns(19..31)?)?,
        namespace,
        ancestors,
        user: users::from_row(&first.columns(31..35)?)?,
    };
    let settings =
        InstanceSettings { enforce_job_token_allowlist: first.get(35)?, job_token_elevation_allowed: first.get(36)? };
    Ok(Some(GrantContext { ctx, access: policy::effective_access(levels), settings }))
}

/// Moves a pending job to running on `runner` at `now`. Returns false when another request got
/// there first (the job is no longer pending), so two runners can never both start it.
pub fn start(db: &Db, job_id: JobId, runner: RunnerId, now: i64) -> Result<bool> {
    let n = db.execute(
        "UPDATE jobs SET status = 'running', runner_id = ?2, started_at = ?3 WHERE id = ?1 AND status = 'pending'",
        params![job_id, runner, now],
    )?;
    Ok(n == 1)
}

/// Finishes a job and revokes all its tokens in one transaction.
pub fn finish(db: &Db, job_id: JobId, status: JobStatus, now: i64) -> Result<Job> {
    atomic(db, |tx| {
        let job = get_job(tx, job_id)?;
        if job.status.is_finished() {
            return Err(StoreError::Conflict(format!("job {job_id} has already finished ({})", job.status)));
        }
        tx.execute(
            "UPDATE jobs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![job_id, status.as_str(), now],
        )?;
        tx.execute(
            "UPDATE issued_tokens SET revoked_at = ?2 WHERE job_id = ?1 AND revoked_at IS NULL",
            params![job_id, now],
        )?;
        get_job(tx, job_id)
    })
}

/// The runner a job is bound to, if any (for authorizing `finish`).
pub fn job_runner(db: &Db, job_id: JobId) -> Result<Option<RunnerId>> {
    Ok(db
        .query_opt("SELECT runner_id FROM jobs WHERE id = ?1", params![job_id])?
        .map(|r| r.get(0))
        .transpose()?
        .flatten())
}

const PIPELINE_COLUMNS: &str = "id, project_id, user_id, ref, ref_type, ref_protected, sha, source";

/// One page of project `project`'s pipelines, by id. An unknown project is `NotFound`.
pub fn list_pipelines(db: &Db, project: ProjectId, page: Page) -> Result<Listed<Pipeline>> {
    namespaces::get_project(db, project)?;
    super::page::fetch(
        db,
        PIPELINE_COLUMNS,
        "pipelines WHERE project_id = ?1",
        "id",
        params![project],
        page,
        pipeline_from_row,
    )
}

/// The pipeline with all its jobs (at most 500), as its creation answered.
pub fn get_pipeline_with_jobs(db: &Db, id: PipelineId) -> Result<PipelineWithJobs> {
    let pipeline = get_pipeline(db, id)?;
    let jobs = db
        .query(&format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.pipeline_id = ?1 ORDER BY j.id"), params![id])?
        .iter()
        .map(job_from_row)
        .collect::<Result<_>>()?;
    Ok(PipelineWithJobs { pipeline, jobs })
}

/// One page of pipeline `pipeline`'s jobs, by id, optionally only those in `status`. An unknown
/// pipeline is `NotFound`.
pub fn list_jobs(db: &Db, pipeline: PipelineId, status: Option<JobStatus>, page: Page) -> Result<Listed<Job>> {
    get_pipeline(db, pipeline)?;
    match status {
        None => super::page::fetch(
            db,
            JOB_COLUMNS,
            "jobs j WHERE j.pipeline_id = ?1",
            "j.id",
            params![pipeline],
            page,
            job_from_row,
        ),
        Some(status) => super::page::fetch(
            db,
            JOB_COLUMNS,
            "jobs j WHERE j.pipeline_id = ?1 AND j.status = ?2",
            "j.id",
            params![pipeline, status.as_str()],
            page,
            job_from_row,
        ),
    }
}
