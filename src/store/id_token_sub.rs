//! The values the ID-token `sub` checks need (policy::id_token): what a project contributes, the
//! `id_token_sub_claim_components` settings that govern it with where each sits, and its jobs
//! that can still get an ID token. SQL only; the checks are the service's.

use super::db::{params, Db};
use super::namespaces;
use super::Result;
use crate::domain::{GroupId, JobId, PipelineId, ProjectId, RefType, UserId};

/// What a project contributes to every `sub` of its jobs.
#[derive(Debug, Clone)]
pub struct ProjectPart {
    pub id: ProjectId,
    pub path_with_namespace: String,
    pub namespace_id: GroupId,
    /// The namespace group's full path.
    pub namespace_path: String,
    /// The settings that govern the project: its own first, then its groups' nearest first,
    /// each with the full path of the group it is set on (`None`: the project's own).
    pub settings: Vec<(Option<String>, Option<Vec<String>>)>,
}

/// A job that is not finished: it can still get ID tokens, so its values must fit.
#[derive(Debug, Clone)]
pub struct OpenJob {
    pub id: JobId,
    pub name: String,
    pub pipeline_id: PipelineId,
    pub user_id: UserId,
    pub user_login: String,
    pub ref_: String,
    pub ref_type: RefType,
    pub ref_protected: bool,
    pub sha: String,
    pub source: String,
    pub environment: Option<String>,
}

/// `project`'s part of its `sub`s.
pub fn project_part(db: &Db, project: ProjectId) -> Result<ProjectPart> {
    let p = namespaces::get_project(db, project)?;
    let namespace = namespaces::get_group(db, p.namespace_id)?;
    let groups = namespaces::groups_nearest_first(db, &namespace.traversal_ids)?;
    let own = namespaces::id_token_sub_settings(db, project)?;
    let levels = std::iter::once(None).chain(groups.iter().map(|g| Some(g.full_path.clone())));
    Ok(ProjectPart {
        id: p.id,
        path_with_namespace: p.path_with_namespace,
        namespace_id: namespace.id,
        namespace_path: namespace.full_path,
        settings: levels.zip(own).collect(),
    })
}

/// The jobs of `project` that are pending or running, oldest first; only those of `pipeline`
/// when given.
pub fn open_jobs(db: &Db, project: ProjectId, pipeline: Option<PipelineId>) -> Result<Vec<OpenJob>> {
    const SQL: &str =
        "SELECT j.id, j.name, pl.id, pl.user_id, u.username, pl.ref, pl.ref_type, pl.ref_protected, pl.sha, pl.source,
                j.environment
         FROM jobs j
         JOIN pipelines pl ON pl.id = j.pipeline_id
         JOIN users u ON u.id = pl.user_id
         WHERE pl.project_id = ?1 AND j.status IN ('pending', 'running')";
    let rows = match pipeline {
        None => db.query(&format!("{SQL} ORDER BY j.id"), params![project])?,
        Some(pipeline) => db.query(&format!("{SQL} AND pl.id = ?2 ORDER BY j.id"), params![project, pipeline])?,
    };
    rows.iter()
        .map(|r| {
            Ok(OpenJob {
                id: r.get(0)?,
                name: r.get(1)?,
                pipeline_id: r.get(2)?,
                user_id: r.get(3)?,
                user_login: r.get(4)?,
                ref_: r.get(5)?,
                ref_type: r.parse(6)?,
                ref_protected: r.get(7)?,
                sha: r.get(8)?,
                source: r.get(9)?,
                environment: r.get(10)?,
            })
        })
        .collect()
}

/// Every project in `group` or a group below it, by id.
pub fn projects_below(db: &Db, group: GroupId) -> Result<Vec<ProjectId>> {
    let rows = db.query(
        "SELECT p.id FROM projects p JOIN groups g ON g.id = p.namespace_id
         WHERE (' ' || g.traversal_ids || ' ') LIKE ?1 ORDER BY p.id",
        params![format!("% {group} %")],
    )?;
    rows.iter().map(|r| r.get(0)).collect()
}
